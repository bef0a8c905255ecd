/* Sentences in, pooled embeddings out: tokenizer + packing + encoder forward,
 * in batches. Its embed function has the shape of the evaluation callback
 * (include/simcse/eval.h), so evaluation does not depend on the model. */
#ifndef SIMCSE_EMBEDDER_H
#define SIMCSE_EMBEDDER_H

#include "simcse/data.h"
#include "simcse/encoder.h"
#include "simcse/tokenizer.h"

typedef struct {
    const simcse_tokenizer *tok;
    simcse_encoder *enc;
    simcse_pooler pooler;
    int apply_mlp;
    int max_len, pos_offset, batch_size, hidden;
    simcse_token_batch tb;
    long long n_sentences, n_tokens; /* counters, for throughput */
} simcse_embedder;

/* The token capacity an inference encoder needs for batches of `batch` sentences of at
 * most max_len tokens: batch * max_len, capped at SIMCSE_EMBED_TOKENS (but never below
 * max_len, so one sentence always fits). Sentences are far shorter than the limit on
 * average, so sizing for the worst case would cost memory for padding never computed; a
 * batch whose real tokens exceed the capacity is embedded in smaller pieces instead. */
#define SIMCSE_EMBED_TOKENS 4096
int simcse_embedder_max_tokens(int batch, int max_len);

/* enc must hold batch_size sequences and at least max_len tokens (see
 * simcse_embedder_max_tokens). */
int simcse_embedder_init(simcse_embedder *em, const simcse_tokenizer *tok, simcse_encoder *enc, const simcse_model *m,
                         simcse_pooler pooler, int apply_mlp, int max_len, int batch_size);
void simcse_embedder_free(simcse_embedder *em);
/* out: [n, hidden] host memory. ctx is a simcse_embedder. */
int simcse_embedder_embed(void *ctx, const char *const *sents, int n, float *out);
/* Same for sentences of lens[i] bytes, which may hold NUL bytes (input lines). */
int simcse_embedder_embed_lines(simcse_embedder *em, const char *const *sents, const size_t *lens, int n, float *out);

#endif
