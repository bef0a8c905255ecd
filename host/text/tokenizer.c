/* The tokenizer object: construction, the vocabulary and the added-token table,
 * accessors, freeing. The loaders (tokenizer_load.c, tokenizer_files.c) fill it
 * in; the stages (tokenizer_normalize.c, tokenizer_pretok.c, tokenizer_wordpiece.c,
 * tokenizer_bpe.c) read it; tokenizer_encode.c runs them in order. Nothing here
 * calls a stage, so the stages can depend on the object without a circle. */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* ---- construction -------------------------------------------------------- */

simcse_tokenizer *tok_new(const char *source) {
    simcse_tokenizer *t = simcse_xcalloc(1, sizeof *t);
    t->source = simcse_xstrdup(source);
    t->unk_id = -1;
    t->pad_id = -1;
    t->max_input_chars = 100;
    t->subword_prefix = simcse_xstrdup("");
    t->end_suffix = simcse_xstrdup("");
    return t;
}

void tok_vocab_add(simcse_tokenizer *t, const char *token, size_t n, int32_t id) {
    tok_map_put(&t->vocab, token, n, id);
    if (id >= t->cap_ids) {
        int cap = t->cap_ids ? t->cap_ids : 1024;
        while (cap <= id) cap *= 2;
        t->id_to_token = simcse_xrealloc(t->id_to_token, (size_t)cap * sizeof(char *));
        memset(t->id_to_token + t->cap_ids, 0, (size_t)(cap - t->cap_ids) * sizeof(char *));
        t->cap_ids = cap;
    }
    if (id >= t->n_ids) t->n_ids = id + 1;
    if (!t->id_to_token[id]) {
        char *k = simcse_xmalloc(n + 1);
        memcpy(k, token, n);
        k[n] = 0;
        t->id_to_token[id] = k;
    }
}

void tok_add_token(simcse_tokenizer *t, const char *content, int32_t id, int single_word, int lstrip, int rstrip,
                   int normalized) {
    size_t n = strlen(content);
    if (!n) return; /* HF ignores empty added tokens */
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, content, n)) return;
    if (tok_map_get(&t->vocab, content, n) < 0) tok_vocab_add(t, content, n, id);
    /* Matching happens on repaired text, so the pattern is repaired the same
     * way (a stray byte in it must not split a character of the text). */
    tok_str fixed = {0};
    tok_utf8_sanitize(content, n, &fixed);
    t->added = simcse_xrealloc(t->added, (size_t)(t->n_added + 1) * sizeof *t->added);
    t->added[t->n_added++] = (tok_added){fixed.s, fixed.n, id, single_word, lstrip, rstrip, normalized};
}

void simcse_tokenizer_free(simcse_tokenizer *t) {
    if (!t) return;
    free(t->source);
    tok_map_free(&t->vocab);
    for (int i = 0; i < t->n_ids; i++) free(t->id_to_token[i]);
    free(t->id_to_token);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    if (t->regex) pcre2_code_free(t->regex);
    free(t->subword_prefix);
    free(t->end_suffix);
    free(t->merges.slots);
    free(t->tpl_pre);
    free(t->tpl_post);
    free(t);
}

/* ---- accessors ----------------------------------------------------------- */

int simcse_tokenizer_vocab_size(const simcse_tokenizer *t) { return t->n_ids; }
int simcse_tokenizer_pad_id(const simcse_tokenizer *t) { return t->pad_id; }
int simcse_tokenizer_is_bpe(const simcse_tokenizer *t) { return t->model == TOK_MODEL_BPE; }
int simcse_tokenizer_num_special(const simcse_tokenizer *t) { return t->n_pre + t->n_post; }

const char *simcse_tokenizer_id_to_token(const simcse_tokenizer *t, int id) {
    return id >= 0 && id < t->n_ids ? t->id_to_token[id] : NULL;
}

int simcse_tokenizer_token_to_id(const simcse_tokenizer *t, const char *token) {
    return tok_map_get(&t->vocab, token, strlen(token));
}

/* Every id encode() or a padded batch can put out: the vocabulary (its largest id
 * is n_ids - 1, added tokens' contents included), the ids added tokens map to
 * (an added token already in the vocabulary keeps its own id), the template's
 * special tokens (a post-processor may name ids the vocabulary lacks), the
 * padding id and the unknown token. */
int simcse_tokenizer_check_ids(const simcse_tokenizer *t, int vocab_size) {
    const char *src = t->source;
    if (t->n_ids > vocab_size) {
        const char *tok = t->id_to_token[t->n_ids - 1];
        return simcse_error("%s: vocabulary token '%.40s' has id %d, past the model's embedding table "
                            "(vocab_size %d)",
                            src, tok ? tok : "?", t->n_ids - 1, vocab_size);
    }
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id >= vocab_size)
            return simcse_error("%s: added token '%.40s' has id %d, past the model's embedding table (vocab_size %d)",
                                src, t->added[i].content, t->added[i].id, vocab_size);
    for (int i = 0; i < t->n_pre + t->n_post; i++) {
        int32_t id = i < t->n_pre ? t->tpl_pre[i] : t->tpl_post[i - t->n_pre];
        if (id >= vocab_size)
            return simcse_error("%s: post-processor special token id %d is past the model's embedding table "
                                "(vocab_size %d)",
                                src, id, vocab_size);
    }
    if (t->pad_id >= vocab_size)
        return simcse_error("%s: padding id %d is past the model's embedding table (vocab_size %d)", src, t->pad_id,
                            vocab_size);
    if (t->unk_id >= vocab_size)
        return simcse_error("%s: unknown-token id %d is past the model's embedding table (vocab_size %d)", src,
                            t->unk_id, vocab_size);
    return 0;
}
