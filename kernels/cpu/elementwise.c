/* Elementwise operations and embeddings: exact GELU, tanh, dropout, add, scale, the
 * embedding sum and its scatter-add backward (the ops of kernels/cuda/elementwise.cu).
 *
 * GELU is the erf form BERT uses, 0.5 x (1 + erf(x / sqrt 2)), with derivative
 * 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi); both in float libm.
 *
 * Dropout draws nothing it has to remember: element (r, c) is dropped when
 *     simcse_rng_u32(seed, simcse_dropout_subsequence(step, site), simcse_dropout_offset(row, c))
 *         < simcse_dropout_threshold(p),   row = row_ids ? row_ids[r] : r
 * and kept elements are multiplied by 1.0f / (1.0f - p) (computed in float, as PyTorch
 * does). The backward is the same call on the gradient. p <= 0 is a copy; p >= 1 zeroes.
 * One Philox block serves four consecutive columns (simcse_rng_fill_u32).
 *
 * Embeddings: out[t] = word[ids[t]] + pos[pos_ids[t]] + type[type_ids[t] or 0].
 * The sum is formed in that order, (word + pos) + type, in float. The backward scatters
 * dout rows into the three tables, accumulating (a token id may repeat); any of the three
 * gradient tables may be NULL to skip it (a frozen table). Ids are trusted: the caller
 * (the tokenizer and position logic) guarantees they are in range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"
#include "simcse/rng.h"

void cpu_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    }
}

void cpu_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n) {
    (void)be;
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

void cpu_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void cpu_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void cpu_dropout_row_factor(simcse_dropout d, uint64_t row, float *factor, uint32_t *scratch, int n) {
    if (d.p >= 1.0f) {
        for (int j = 0; j < n; j++) factor[j] = 0.0f;
        return;
    }
    const uint32_t thr = simcse_dropout_threshold(d.p);
    const float keep = 1.0f / (1.0f - d.p);
    simcse_rng_fill_u32_at(d.seed, simcse_dropout_subsequence(d.step, d.site), simcse_dropout_offset(row, 0), scratch,
                           n);
    for (int j = 0; j < n; j++) factor[j] = scratch[j] < thr ? 0.0f : keep;
}

void cpu_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d) {
    (void)be;
    size_t n = (size_t)rows * cols;
    if (!(d.p > 0.0f)) {
        if (y != x && n) memmove(y, x, n * sizeof(float));
        return;
    }
    float *f = simcse_xmalloc((size_t)cols * sizeof(float) + 1);
    uint32_t *u = simcse_xmalloc((size_t)cols * sizeof(uint32_t) + 1);
    for (int r = 0; r < rows; r++) {
        cpu_dropout_row_factor(d, d.row_ids ? (uint64_t)d.row_ids[r] : (uint64_t)r, f, u, cols);
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        for (int c = 0; c < cols; c++) yr[c] = xr[c] * f[c];
    }
    free(f);
    free(u);
}

void cpu_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void cpu_scale(simcse_backend *be, float *y, float s, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] *= s;
}

/* ---- embeddings ---- */

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
