/* Embeddings: out[t] = word[ids[t]] + pos[pos_ids[t]] + type[type_ids[t] or 0].
 *
 * The sum is formed in that order, (word + pos) + type, in float. The backward scatters
 * dout rows into the three tables, accumulating (a token id may repeat); any of the three
 * gradient tables may be NULL to skip it (a frozen table). Ids are trusted: the caller
 * (the tokenizer and position logic) guarantees they are in range. */
#include "kernels/cpu/cpu_ops.h"

void cpu_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids,
                   const int32_t *type_ids, const float *word, const float *pos, const float *type,
                   int T, int H) {
    (void)be;
    for (int t = 0; t < T; t++) {
        const float *w = word + (size_t)ids[t] * H;
        const float *p = pos + (size_t)pos_ids[t] * H;
        const float *ty = type + (size_t)(type_ids ? type_ids[t] : 0) * H;
        float *y = out + (size_t)t * H;
        for (int h = 0; h < H; h++) y[h] = (w[h] + p[h]) + ty[h];
    }
}

static void scatter_add(float *table, const float *g, int row, int H) {
    float *d = table + (size_t)row * H;
    for (int h = 0; h < H; h++) d[h] += g[h];
}

void cpu_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout,
                   const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids, int T, int H) {
    (void)be;
    for (int t = 0; t < T; t++) {
        const float *g = dout + (size_t)t * H;
        if (dword) scatter_add(dword, g, ids[t], H);
        if (dpos) scatter_add(dpos, g, pos_ids[t], H);
        if (dtype) scatter_add(dtype, g, type_ids ? type_ids[t] : 0, H);
    }
}
