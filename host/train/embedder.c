/* Batched sentence embedding. Sentences are packed without padding and the
 * encoder is run in inference mode (no dropout) once per batch. The encoder's token
 * capacity is bounded (simcse_embedder_max_tokens), not batch * max_len: a batch whose
 * packed tokens do not fit is split in halves until each piece fits, so memory depends on
 * the batch and the capacity only, never on the input. */
#include "simcse/embedder.h"

#include <stdio.h>
#include <string.h>

#include "simcse/common.h"

int simcse_embedder_init(simcse_embedder *em, const simcse_tokenizer *tok, simcse_encoder *enc, const simcse_model *m,
                         simcse_pooler pooler, int apply_mlp, int max_len, int batch_size) {
    memset(em, 0, sizeof *em);
    /* an id past the table would read outside it: refuse the pair before any forward */
    if (simcse_tokenizer_check_ids(tok, m->cfg.vocab_size) != 0) return -1;
    if (apply_mlp && !m->has_mlp_weights)
        fprintf(stderr, "simcse: warning: the model has no pooler.dense weights; the cls pooler's MLP head is "
                        "randomly initialised (use cls_before_pooler for the raw [CLS] vector)\n");
    em->tok = tok;
    em->enc = enc;
    em->pooler = pooler;
    em->apply_mlp = apply_mlp;
    em->max_len = max_len;
    em->pos_offset = simcse_config_position_offset(&m->cfg);
    em->batch_size = batch_size;
    em->hidden = m->cfg.hidden;
    return simcse_token_batch_init(&em->tb, batch_size, max_len);
}

void simcse_embedder_free(simcse_embedder *em) { simcse_token_batch_free(&em->tb); }

int simcse_embedder_embed(void *ctx, const char *const *sents, int n, float *out) {
    return simcse_embedder_embed_lines(ctx, sents, NULL, n, out);
}

int simcse_embedder_max_tokens(int batch, int max_len) {
    long long t = (long long)batch * max_len;
    if (t > SIMCSE_EMBED_TOKENS) t = SIMCSE_EMBED_TOKENS;
    if (t < max_len) t = max_len;
    return (int)t;
}

int simcse_embedder_embed_lines(simcse_embedder *em, const char *const *sents, const size_t *lens, int n, float *out) {
    simcse_encoder_set_dropout(em->enc, 0, 0, 0);
    const int capacity = simcse_encoder_max_tokens(em->enc);
    for (int i = 0; i < n;) {
        int k = n - i < em->batch_size ? n - i : em->batch_size;
        for (;;) {
            if (simcse_pack_sentences(em->tok, sents + i, lens ? lens + i : NULL, k, em->pos_offset, &em->tb) != 0)
                return -1;
            if (em->tb.T <= capacity || k == 1) break;
            k = (k + 1) / 2; /* too many real tokens for the encoder: a smaller piece */
        }
        simcse_packed p = {.n_seq = em->tb.n_seq,
                           .T = em->tb.T,
                           .ids = em->tb.ids,
                           .pos_ids = em->tb.pos_ids,
                           .type_ids = NULL,
                           .offsets = em->tb.offsets};
        if (simcse_encoder_forward(em->enc, &p, em->pooler, em->apply_mlp) != 0) return -1;
        simcse_encoder_output_to_host(em->enc, out + (size_t)i * em->hidden);
        em->n_sentences += k;
        em->n_tokens += em->tb.T;
        i += k;
    }
    return 0;
}
