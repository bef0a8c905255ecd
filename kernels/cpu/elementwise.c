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
 * (the tokenizer and position logic) guarantees they are in range.
 *
 * Threads: every op is split over the pool in contiguous ranges (elements; rows for dropout
 * and the embedding sum); the embedding backward, whose rows repeat, is split by columns,
 * each column scattered over the tokens in ascending order. Each element is therefore
 * computed exactly as by the one-thread loops, kept as cpu_ref_* (the oracle), for every
 * thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"
#include "simcse/rng.h"

void cpu_ref_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    }
}

void cpu_ref_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n) {
    (void)be;
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

void cpu_ref_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void cpu_ref_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n) {
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

/* rows [r0, r1) of the dropout; rng row = row_ids[r] or r */
static void dropout_rows(float *y, const float *x, int r0, int r1, int cols, simcse_dropout d) {
    float *f = simcse_xmalloc((size_t)cols * sizeof(float) + 1);
    uint32_t *u = simcse_xmalloc((size_t)cols * sizeof(uint32_t) + 1);
    for (int r = r0; r < r1; r++) {
        cpu_dropout_row_factor(d, d.row_ids ? (uint64_t)d.row_ids[r] : (uint64_t)r, f, u, cols);
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        for (int c = 0; c < cols; c++) yr[c] = xr[c] * f[c];
    }
    free(f);
    free(u);
}

void cpu_ref_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d) {
    (void)be;
    size_t n = (size_t)rows * cols;
    if (!(d.p > 0.0f)) {
        if (y != x && n) memmove(y, x, n * sizeof(float));
        return;
    }
    dropout_rows(y, x, 0, rows, cols, d);
}

void cpu_ref_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void cpu_ref_scale(simcse_backend *be, float *y, float s, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] *= s;
}

/* ---- embeddings ---- */

void cpu_ref_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids,
                       const int32_t *type_ids, const float *word, const float *pos, const float *type, int T, int H) {
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

void cpu_ref_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout,
                       const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids, int T, int H) {
    (void)be;
    for (int t = 0; t < T; t++) {
        const float *g = dout + (size_t)t * H;
        if (dword) scatter_add(dword, g, ids[t], H);
        if (dpos) scatter_add(dpos, g, pos_ids[t], H);
        if (dtype) scatter_add(dtype, g, type_ids ? type_ids[t] : 0, H);
    }
}

/* ---- the same ops on the thread pool ---- */

typedef struct {
    int kind, parts, T, H;
    float *y, *dword, *dpos, *dtype;
    const float *a, *b, *word, *pos, *type;
    const int32_t *ids, *pos_ids, *type_ids;
    float s;
    size_t n;
    simcse_dropout d;
} ew_job;

enum { EW_GELU_FWD, EW_GELU_BWD, EW_TANH_FWD, EW_TANH_BWD, EW_ADD, EW_SCALE, EW_DROPOUT, EW_EMBED_FWD, EW_EMBED_BWD };

static void ew_part(void *arg, int part) {
    const ew_job *j = arg;
    if (j->kind == EW_DROPOUT || j->kind == EW_EMBED_FWD || j->kind == EW_EMBED_BWD) {
        const int len = j->kind == EW_EMBED_BWD ? j->H : j->T; /* columns, or rows */
        const int a = (int)((long long)len * part / j->parts), b = (int)((long long)len * (part + 1) / j->parts);
        if (j->kind == EW_DROPOUT) {
            dropout_rows(j->y, j->a, a, b, j->H, j->d);
        } else if (j->kind == EW_EMBED_FWD) {
            cpu_ref_embed_fwd(NULL, j->y + (size_t)a * j->H, j->ids + a, j->pos_ids + a,
                              j->type_ids ? j->type_ids + a : NULL, j->word, j->pos, j->type, b - a, j->H);
        } else {
            for (int t = 0; t < j->T; t++) {
                const float *g = j->a + (size_t)t * j->H;
                float *rows[3] = {j->dword ? j->dword + (size_t)j->ids[t] * j->H : NULL,
                                  j->dpos ? j->dpos + (size_t)j->pos_ids[t] * j->H : NULL,
                                  j->dtype ? j->dtype + (size_t)(j->type_ids ? j->type_ids[t] : 0) * j->H : NULL};
                for (int k = 0; k < 3; k++)
                    if (rows[k])
                        for (int h = a; h < b; h++) rows[k][h] += g[h];
            }
        }
        return;
    }
    const size_t i0 = (size_t)((double)j->n * part / j->parts), i1 = (size_t)((double)j->n * (part + 1) / j->parts);
    const size_t k = i1 - i0;
    switch (j->kind) {
    case EW_GELU_FWD: cpu_ref_gelu_fwd(NULL, j->y + i0, j->a + i0, k); break;
    case EW_GELU_BWD: cpu_ref_gelu_bwd(NULL, j->y + i0, j->a + i0, j->b + i0, k); break;
    case EW_TANH_FWD: cpu_ref_tanh_fwd(NULL, j->y + i0, j->a + i0, k); break;
    case EW_TANH_BWD: cpu_ref_tanh_bwd(NULL, j->y + i0, j->a + i0, j->b + i0, k); break;
    case EW_ADD: cpu_ref_add(NULL, j->y + i0, j->a + i0, j->b + i0, k); break;
    case EW_SCALE: cpu_ref_scale(NULL, j->y + i0, j->s, k); break;
    }
}

/* elements per task below which a thread is not worth waking (erf costs ~20 ns) */
#define EW_MIN (1 << 14)

static void ew_run(ew_job *j, double work, int items) {
    j->parts = cpu_split(work, EW_MIN, items);
    cpu_parallel(j->parts, ew_part, j);
}

static int n_items(size_t n) { return n / 1024 < (1 << 20) ? (int)(n / 1024) : (1 << 20); }

void cpu_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    ew_job j = {.kind = EW_GELU_FWD, .y = y, .a = x, .n = n};
    ew_run(&j, (double)n, n_items(n));
}

void cpu_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n) {
    (void)be;
    ew_job j = {.kind = EW_GELU_BWD, .y = dx, .a = dy, .b = x, .n = n};
    ew_run(&j, (double)n, n_items(n));
}

void cpu_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    ew_job j = {.kind = EW_TANH_FWD, .y = y, .a = x, .n = n};
    ew_run(&j, (double)n, n_items(n));
}

void cpu_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n) {
    (void)be;
    ew_job j = {.kind = EW_TANH_BWD, .y = dx, .a = dy, .b = y, .n = n};
    ew_run(&j, (double)n / 8, n_items(n));
}

void cpu_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n) {
    (void)be;
    ew_job j = {.kind = EW_ADD, .y = y, .a = a, .b = b, .n = n};
    ew_run(&j, (double)n / 8, n_items(n));
}

void cpu_scale(simcse_backend *be, float *y, float s, size_t n) {
    (void)be;
    ew_job j = {.kind = EW_SCALE, .y = y, .s = s, .n = n};
    ew_run(&j, (double)n / 8, n_items(n));
}

void cpu_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d) {
    if (!(d.p > 0.0f)) {
        cpu_ref_dropout(be, y, x, rows, cols, d);
        return;
    }
    ew_job j = {.kind = EW_DROPOUT, .y = y, .a = x, .T = rows, .H = cols, .d = d};
    ew_run(&j, (double)rows * cols, rows);
}

void cpu_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids,
                   const float *word, const float *pos, const float *type, int T, int H) {
    (void)be;
    ew_job j = {.kind = EW_EMBED_FWD,
                .y = out,
                .ids = ids,
                .pos_ids = pos_ids,
                .type_ids = type_ids,
                .word = word,
                .pos = pos,
                .type = type,
                .T = T,
                .H = H};
    ew_run(&j, (double)T * H / 8, T);
}

void cpu_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout, const int32_t *ids,
                   const int32_t *pos_ids, const int32_t *type_ids, int T, int H) {
    (void)be;
    ew_job j = {.kind = EW_EMBED_BWD,
                .dword = dword,
                .dpos = dpos,
                .dtype = dtype,
                .a = dout,
                .ids = ids,
                .pos_ids = pos_ids,
                .type_ids = type_ids,
                .T = T,
                .H = H};
    ew_run(&j, (double)T * H / 2, H / 16);
}
