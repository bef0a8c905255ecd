/* The CPU backend's forward semantics (suite cpu_ops): each op against a naive formula
 * written independently here (mostly in double), the exact dropout mask specification,
 * closed-form InfoNCE values, a hand-computed AdamW step and the backend's memory calls.
 * The backward passes are checked by finite differences in tests/test_cpu_ops_grad.c. */
#include <stdint.h>
#include <stdio.h>

#include "simcse/common.h"
#include "tests/test_cpu_ops.h"

/* ---- backend and memory ---- */

Test(cpu_ops, vtable_is_complete) {
    simcse_backend *be = cpu();
    cr_assert_not_null(be);
    cr_assert_eq(be, simcse_backend_cpu());
    cr_assert_str_eq(be->name, "cpu");
    const void *fns[] = {(void *)be->alloc,
                         (void *)be->free,
                         (void *)be->to_device,
                         (void *)be->to_host,
                         (void *)be->zero,
                         (void *)be->copy,
                         (void *)be->sync,
                         (void *)be->embed_fwd,
                         (void *)be->embed_bwd,
                         (void *)be->linear_fwd,
                         (void *)be->linear_bwd,
                         (void *)be->layernorm_fwd,
                         (void *)be->layernorm_bwd,
                         (void *)be->gelu_fwd,
                         (void *)be->gelu_bwd,
                         (void *)be->tanh_fwd,
                         (void *)be->tanh_bwd,
                         (void *)be->dropout,
                         (void *)be->attention_fwd,
                         (void *)be->attention_bwd,
                         (void *)be->pool_first_fwd,
                         (void *)be->pool_first_bwd,
                         (void *)be->pool_mean_fwd,
                         (void *)be->pool_mean_bwd,
                         (void *)be->add,
                         (void *)be->scale,
                         (void *)be->infonce,
                         (void *)be->sumsq,
                         (void *)be->adamw};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) cr_assert_not_null(fns[i], "entry %zu is NULL", i);
}

Test(cpu_ops, memory_alloc_copy_zero) {
    simcse_backend *be = cpu();
    float host[37], back[37];
    for (int i = 0; i < 37; i++) host[i] = (float)i * 0.5f - 3.0f;
    float *d = be->alloc(be, sizeof host);
    cr_assert_not_null(d);
    cr_assert_eq((uintptr_t)d % 64, 0, "not 64-byte aligned");
    for (int i = 0; i < 37; i++) cr_assert_eq(d[i], 0.0f, "fresh memory not zeroed");
    be->to_device(be, d, host, sizeof host);
    be->sync(be);
    be->to_host(be, back, d, sizeof back);
    cr_assert_eq(memcmp(host, back, sizeof host), 0);
    be->zero(be, d + 5, 10 * sizeof(float));
    for (int i = 0; i < 37; i++) cr_assert_eq(d[i], i >= 5 && i < 15 ? 0.0f : host[i]);
    float *d2 = be->alloc(be, sizeof host);
    be->copy(be, d2, d, sizeof host);
    cr_assert_eq(memcmp(d2, d, sizeof host), 0);
    be->free(be, d2);
    be->free(be, d);
    void *z = be->alloc(be, 0);
    cr_assert_not_null(z);
    be->free(be, z);
}

Test(cpu_ops, alloc_too_large_fails_with_message) {
    simcse_backend *be = cpu();
    simcse_clear_error();
    cr_assert_null(be->alloc(be, SIZE_MAX / 2));
    cr_assert(strstr(simcse_last_error(), "cpu backend") != NULL, "message: %s", simcse_last_error());
    cr_assert_null(be->alloc(be, SIZE_MAX - 3)); /* rounding up would overflow */
}

/* ---- linear ---- */

static void naive_linear(double *out, const float *in, const float *W, const float *b, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < I; i++) s += (double)in[(size_t)n * I + i] * W[(size_t)o * I + i];
            out[(size_t)n * O + o] = s;
        }
}

static void check_close(const char *what, const float *got, const double *want, size_t n, double tol) {
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])), "%s[%zu]: %.8g vs %.8g", what, i, got[i],
                  want[i]);
}

static void linear_fwd_case(int N, int I, int O, int with_bias) {
    float *in = rnd((size_t)N * I, -1, 1, 101), *W = rnd((size_t)O * I, -1, 1, 102);
    float *b = with_bias ? rnd((size_t)O, -1, 1, 103) : NULL;
    float *out = rnd((size_t)N * O, 7, 8, 104); /* garbage: overwritten */
    double *want = malloc((size_t)N * O * sizeof(double));
    cpu()->linear_fwd(cpu(), out, in, W, b, N, I, O);
    naive_linear(want, in, W, b, N, I, O);
    check_close("linear out", out, want, (size_t)N * O, 2e-5 * sqrt((double)I));
    /* the same call again gives the same bits (the split is a function of the shapes and
     * the thread count); the plain-loop reference computes each row alone the same way */
    float *again = rnd((size_t)N * O, 7, 8, 105);
    cpu()->linear_fwd(cpu(), again, in, W, b, N, I, O);
    cr_assert_eq(memcmp(again, out, (size_t)N * O * sizeof(float)), 0, "a second call differs");
    simcse_backend *ref = simcse_backend_cpu_reference();
    ref->linear_fwd(ref, out, in, W, b, N, I, O);
    check_close("reference linear out", out, want, (size_t)N * O, 2e-5 * sqrt((double)I));
    float *row = zeros((size_t)O);
    for (int n = 0; n < N; n++) {
        ref->linear_fwd(ref, row, in + (size_t)n * I, W, b, 1, I, O);
        cr_assert_eq(memcmp(row, out + (size_t)n * O, (size_t)O * sizeof(float)), 0, "row %d differs", n);
    }
    free(in), free(W), free(b), free(out), free(want), free(row), free(again);
}

Test(cpu_ops, linear_fwd_matches_naive) {
    linear_fwd_case(3, 5, 4, 1);
    linear_fwd_case(37, 300, 270, 1); /* crosses the 256 tiles */
    linear_fwd_case(37, 300, 270, 0);
    linear_fwd_case(65, 260, 300, 1); /* large enough for two threads */
}

static void linear_bwd_case(int N, int I, int O, int with_din, int with_db) {
    float *in = rnd((size_t)N * I, -1, 1, 111), *W = rnd((size_t)O * I, -1, 1, 112);
    float *g = rnd((size_t)N * O, -1, 1, 113);
    float *din = with_din ? rnd((size_t)N * I, 7, 8, 114) : NULL;                                  /* overwritten */
    float *dW = rnd((size_t)O * I, -1, 1, 115), *db = with_db ? rnd((size_t)O, -1, 1, 116) : NULL; /* accumulated */
    float *dW0 = copyf(dW, (size_t)O * I), *db0 = with_db ? copyf(db, (size_t)O) : NULL;
    cpu()->linear_bwd(cpu(), din, dW, db, g, in, W, N, I, O);
    double *want = malloc(((size_t)N * I + (size_t)O * I + O) * sizeof(double));
    if (with_din) {
        for (int n = 0; n < N; n++)
            for (int i = 0; i < I; i++) {
                double s = 0.0;
                for (int o = 0; o < O; o++) s += (double)g[(size_t)n * O + o] * W[(size_t)o * I + i];
                want[(size_t)n * I + i] = s;
            }
        check_close("din", din, want, (size_t)N * I, 2e-5 * sqrt((double)O));
    }
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) {
            double s = dW0[(size_t)o * I + i];
            for (int n = 0; n < N; n++) s += (double)g[(size_t)n * O + o] * in[(size_t)n * I + i];
            want[(size_t)o * I + i] = s;
        }
    check_close("dW", dW, want, (size_t)O * I, 2e-5 * sqrt((double)N));
    if (with_db) {
        for (int o = 0; o < O; o++) {
            double s = db0[o];
            for (int n = 0; n < N; n++) s += g[(size_t)n * O + o];
            want[o] = s;
        }
        check_close("db", db, want, (size_t)O, 2e-5 * sqrt((double)N));
    }
    free(in), free(W), free(g), free(din), free(dW), free(db), free(dW0), free(db0), free(want);
}

Test(cpu_ops, linear_bwd_matches_naive_and_accumulates) {
    linear_bwd_case(4, 3, 5, 1, 1);
    linear_bwd_case(33, 270, 300, 1, 1);
    linear_bwd_case(33, 270, 300, 0, 0);
    linear_bwd_case(70, 300, 260, 1, 1); /* threaded */
}

/* ---- embeddings ---- */

Test(cpu_ops, embed_fwd_sums_three_rows) {
    const int T = 5, H = 4;
    int32_t ids[5] = {2, 0, 2, 1, 3}, pos[5] = {0, 1, 2, 0, 1}, types[5] = {1, 0, 1, 1, 0};
    float *word = rnd(4 * H, -1, 1, 121), *pe = rnd(3 * H, -1, 1, 122), *te = rnd(2 * H, -1, 1, 123);
    float *out = zeros((size_t)T * H);
    for (int with_types = 0; with_types < 2; with_types++) {
        cpu()->embed_fwd(cpu(), out, ids, pos, with_types ? types : NULL, word, pe, te, T, H);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                float want = word[ids[t] * H + h] + pe[pos[t] * H + h] + te[(with_types ? types[t] : 0) * H + h];
                cr_assert_eq(out[t * H + h], want, "t %d h %d", t, h);
            }
    }
    free(word), free(pe), free(te), free(out);
}

Test(cpu_ops, embed_bwd_accumulates_repeated_ids) {
    const int H = 3;
    int32_t ids[3] = {1, 1, 0}, pos[3] = {0, 1, 0};
    float dout[9] = {1, 2, 3, 10, 20, 30, 100, 200, 300};
    float dword[6] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, dpos[6] = {0}, dtype[6] = {0};
    cpu()->embed_bwd(cpu(), dword, dpos, dtype, dout, ids, pos, NULL, 3, H);
    const float wword[6] = {100.5f, 200.5f, 300.5f, 11.5f, 22.5f, 33.5f};
    const float wpos[6] = {101, 202, 303, 10, 20, 30}, wtype[6] = {111, 222, 333, 0, 0, 0};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(dword[i], wword[i]);
        cr_assert_eq(dpos[i], wpos[i]);
        cr_assert_eq(dtype[i], wtype[i]);
    }
    cpu()->embed_bwd(cpu(), NULL, dpos, NULL, dout, ids, pos, NULL, 3, H); /* NULL tables skipped */
    cr_assert_eq(dpos[0], 202.0f);
}

/* ---- layernorm ---- */

/* eps 1e-12 (BERT) is invisible next to the variance; eps 0.5 on inputs of variance
 * about 0.3 shows where it goes (inside the square root, as torch). */
static void layernorm_case(int with_residual, float eps) {
    const int N = 5, H = 40;
    const float span = eps > 0.1f ? 1.0f : 4.0f;
    float *x = rnd((size_t)N * H, -span + 1, span + 1, 131), *r = with_residual ? rnd((size_t)N * H, -1, 1, 132) : NULL;
    float *g = rnd(H, 0.5f, 1.5f, 133), *b = rnd(H, -1, 1, 134);
    float *y = zeros((size_t)N * H), *mean = zeros(N), *rstd = zeros(N);
    cpu()->layernorm_fwd(cpu(), y, mean, rstd, x, r, g, b, N, H, eps);
    for (int n = 0; n < N; n++) {
        double z[40], mu = 0, var = 0;
        for (int h = 0; h < H; h++) mu += z[h] = (double)x[n * H + h] + (r ? r[n * H + h] : 0.0);
        mu /= H;
        for (int h = 0; h < H; h++) var += (z[h] - mu) * (z[h] - mu);
        var /= H; /* biased, as torch */
        double rs = 1.0 / sqrt(var + eps);
        cr_assert(fabs(mean[n] - mu) < 1e-6 * (1 + fabs(mu)));
        cr_assert(fabs(rstd[n] - rs) < 1e-6 * rs);
        for (int h = 0; h < H; h++) {
            double want = (z[h] - mu) * rs * g[h] + b[h];
            cr_assert(fabs(y[n * H + h] - want) < 2e-6 * (1 + fabs(want)), "n %d h %d: %g vs %g", n, h, y[n * H + h],
                      want);
        }
    }
    free(x), free(r), free(g), free(b), free(y), free(mean), free(rstd);
}

Test(cpu_ops, layernorm_fwd_matches_naive) { layernorm_case(0, 1e-12f); }
Test(cpu_ops, layernorm_fwd_with_residual_matches_naive) { layernorm_case(1, 1e-12f); }
Test(cpu_ops, layernorm_fwd_large_eps_inside_the_square_root) {
    layernorm_case(0, 0.5f);
    layernorm_case(1, 0.5f);
}

Test(cpu_ops, layernorm_bwd_accumulates_params_and_overwrites_dx) {
    const int N = 3, H = 8;
    float *x = rnd(N * H, -1, 1, 141), *g = rnd(H, 0.5f, 1.5f, 142), *b = rnd(H, -1, 1, 143);
    float *dy = rnd(N * H, -1, 1, 144), *y = zeros(N * H), *mean = zeros(N), *rstd = zeros(N);
    cpu()->layernorm_fwd(cpu(), y, mean, rstd, x, NULL, g, b, N, H, 1e-5f);
    float *dx1 = zeros(N * H), *dx2 = rnd(N * H, 9, 10, 145), *dg = zeros(H), *db = zeros(H);
    cpu()->layernorm_bwd(cpu(), dx1, dg, db, dy, x, NULL, mean, rstd, g, N, H);
    float *dg1 = copyf(dg, H), *db1 = copyf(db, H);
    cpu()->layernorm_bwd(cpu(), dx2, dg, db, dy, x, NULL, mean, rstd, g, N, H);
    for (int i = 0; i < N * H; i++) cr_assert_eq(dx1[i], dx2[i]);
    for (int h = 0; h < H; h++) {
        cr_assert(fabs(dg[h] - 2 * dg1[h]) <= 1e-6f * fabs(dg1[h]) + 1e-7f);
        cr_assert(fabs(db[h] - 2 * db1[h]) <= 1e-6f * fabs(db1[h]) + 1e-7f);
    }
    /* db is the column sum of dy */
    for (int h = 0; h < H; h++) cr_assert(fabs(db1[h] - (dy[h] + dy[H + h] + dy[2 * H + h])) < 1e-6);
    free(x), free(g), free(b), free(dy), free(y), free(mean), free(rstd), free(dx1), free(dx2), free(dg), free(db),
        free(dg1), free(db1);
}

/* ---- activations ---- */

Test(cpu_ops, gelu_and_tanh_match_formulas) {
    const size_t n = 1201;
    float *x = zeros(n), *y = zeros(n), *dx = zeros(n), *ones = zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = -6.0f + 0.01f * (float)i, ones[i] = 1.0f;
    cpu()->gelu_fwd(cpu(), y, x, n);
    cpu()->gelu_bwd(cpu(), dx, ones, x, n);
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        double want = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        double dwant = 0.5 * (1.0 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2.0 * M_PI);
        cr_assert(fabs(y[i] - want) < 1e-6 * (1 + fabs(want)), "gelu(%g) = %g, want %g", v, y[i], want);
        cr_assert(fabs(dx[i] - dwant) < 1e-6 * (1 + fabs(dwant)), "gelu'(%g) = %g, want %g", v, dx[i], dwant);
    }
    cr_assert(fabs(y[600] - 0.0f) < 1e-6 && fabs(y[700] - 0.8413447f) < 1e-6); /* gelu(0), gelu(1) */
    float *z = copyf(x, n);
    cpu()->gelu_fwd(cpu(), z, z, n); /* in place */
    cr_assert_eq(memcmp(z, y, n * sizeof(float)), 0);
    cpu()->tanh_fwd(cpu(), y, x, n);
    cpu()->tanh_bwd(cpu(), dx, x, y, n); /* dy = x */
    for (size_t i = 0; i < n; i++) {
        double t = tanh((double)x[i]);
        cr_assert(fabs(y[i] - t) < 1e-6);
        cr_assert(fabs(dx[i] - x[i] * (1 - t * t)) < 1e-5);
    }
    free(x), free(y), free(dx), free(ones), free(z);
}

Test(cpu_ops, add_and_scale) {
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -1, 2, 0, 1}, y[5];
    cpu()->add(cpu(), y, a, b, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(y[i], a[i] + b[i]);
    cpu()->add(cpu(), a, a, b, 5); /* y += b */
    for (int i = 0; i < 5; i++) cr_assert_eq(a[i], y[i]);
    cpu()->scale(cpu(), y, -2.0f, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(y[i], -2.0f * a[i]);
}

/* ---- dropout ---- */

Test(cpu_ops, dropout_follows_the_mask_specification) {
    const int rows = 7, cols = 45;
    simcse_dropout d = {.seed = 0x5eed, .step = 12, .site = 3, .p = 0.4f};
    float *x = rnd((size_t)rows * cols, 0.5f, 2, 151), *y = zeros((size_t)rows * cols);
    cpu()->dropout(cpu(), y, x, rows, cols, d);
    const uint32_t thr = simcse_dropout_threshold(d.p);
    const float keep = 1.0f / (1.0f - d.p);
    int dropped = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            uint32_t u = simcse_rng_u32(d.seed, simcse_dropout_subsequence(d.step, d.site),
                                        simcse_dropout_offset((uint64_t)r, (uint32_t)c));
            float want = u < thr ? 0.0f : x[r * cols + c] * keep;
            cr_assert_eq(y[r * cols + c], want, "(%d, %d)", r, c);
            dropped += u < thr;
        }
    cr_assert(dropped > 0 && dropped < rows * cols);
    free(x), free(y);
}

Test(cpu_ops, dropout_rate_determinism_and_backward) {
    const int rows = 64, cols = 4096;
    const size_t n = (size_t)rows * cols;
    simcse_dropout d = {.seed = 42, .step = 1, .site = 7, .p = 0.1f};
    float *x = zeros(n), *y = zeros(n), *y2 = zeros(n), *g = rnd(n, -1, 1, 161), *dg = zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    cpu()->dropout(cpu(), y, x, rows, cols, d);
    size_t zero = 0;
    for (size_t i = 0; i < n; i++) {
        zero += y[i] == 0.0f;
        cr_assert(y[i] == 0.0f || y[i] == 1.0f / 0.9f);
    }
    double frac = (double)zero / n; /* sd = sqrt(0.09 / n) = 0.0006 */
    cr_assert(fabs(frac - 0.1) < 0.004, "dropped fraction %f", frac);
    cpu()->dropout(cpu(), y2, x, rows, cols, d);
    cr_assert_eq(memcmp(y, y2, n * sizeof(float)), 0, "not deterministic");
    /* backward = the same call on the gradient: the same mask, the same scale */
    cpu()->dropout(cpu(), dg, g, rows, cols, d);
    for (size_t i = 0; i < n; i++) cr_assert_eq(dg[i], g[i] * y[i], "%zu", i);
    /* in place equals out of place */
    float *g2 = copyf(g, n);
    cpu()->dropout(cpu(), g2, g2, rows, cols, d);
    cr_assert_eq(memcmp(g2, dg, n * sizeof(float)), 0);
    /* another step, site or seed draws another mask (about 18% of elements differ) */
    simcse_dropout other[3] = {d, d, d};
    other[0].step = 2, other[1].site = 8, other[2].seed = 43;
    for (int k = 0; k < 3; k++) {
        cpu()->dropout(cpu(), y2, x, rows, cols, other[k]);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += y[i] != y2[i];
        cr_assert(diff > n / 10, "variant %d: only %zu elements differ", k, diff);
    }
    free(x), free(y), free(y2), free(g), free(dg), free(g2);
}

Test(cpu_ops, dropout_p0_copies_and_p1_zeroes) {
    const int rows = 3, cols = 5;
    float *x = rnd(15, -1, 1, 171), *y = zeros(15);
    simcse_dropout d = {.seed = 1, .step = 1, .site = 1, .p = 0.0f};
    cpu()->dropout(cpu(), y, x, rows, cols, d);
    cr_assert_eq(memcmp(x, y, sizeof(float) * 15), 0);
    d.p = 1.0f;
    cpu()->dropout(cpu(), y, x, rows, cols, d);
    for (int i = 0; i < 15; i++) cr_assert_eq(y[i], 0.0f);
    free(x), free(y);
}

/* ---- attention ---- */

/* Padded reference: every sequence laid out in a [Lmax] row with -inf scores past its end,
 * softmax over the whole row in double, dropout from simcse_rng_u32 element by element. */
static void attention_reference(double *out, double *lse, const float *q, const float *k, const float *v,
                                const int32_t *off, int B, int heads, int hd, simcse_dropout d) {
    const int H = heads * hd;
    int Lmax = 0;
    for (int b = 0; b < B; b++)
        if (off[b + 1] - off[b] > Lmax) Lmax = off[b + 1] - off[b];
    double *s = malloc((size_t)Lmax * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < off[b + 1] - off[b]; i++) {
                const int t = off[b] + i;
                double m = -INFINITY;
                for (int j = 0; j < Lmax; j++) {
                    if (off[b] + j >= off[b + 1]) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    double dotp = 0;
                    for (int e = 0; e < hd; e++)
                        dotp += (double)q[(size_t)t * H + h * hd + e] * k[(size_t)(off[b] + j) * H + h * hd + e];
                    s[j] = dotp / sqrt((double)hd);
                    if (s[j] > m) m = s[j];
                }
                double z = 0;
                for (int j = 0; j < Lmax; j++) z += exp(s[j] - m);
                lse[(size_t)t * heads + h] = m + log(z);
                for (int e = 0; e < hd; e++) out[(size_t)t * H + h * hd + e] = 0;
                for (int j = 0; j < Lmax; j++) {
                    double p = exp(s[j] - m) / z;
                    if (p == 0) continue;
                    if (d.p > 0) {
                        uint64_t sub = simcse_dropout_subsequence(d.step, d.site);
                        p = simcse_rng_u32(d.seed, sub, simcse_dropout_offset((uint64_t)(t * heads + h), (uint32_t)j)) <
                                    simcse_dropout_threshold(d.p)
                                ? 0.0
                                : p * (1.0f / (1.0f - d.p));
                    }
                    for (int e = 0; e < hd; e++)
                        out[(size_t)t * H + h * hd + e] += p * v[(size_t)(off[b] + j) * H + h * hd + e];
                }
            }
    free(s);
}

static void attention_fwd_case(float p) {
    static const int32_t off[6] = {0, 5, 6, 13, 16, 26}; /* lengths 5, 1, 7, 3, 10 */
    const int B = 5, T = 26, heads = 3, hd = 8, H = heads * hd;
    simcse_dropout d = {.seed = 77, .step = 4, .site = 9, .p = p};
    float *q = rnd((size_t)T * H, -2, 2, 181), *k = rnd((size_t)T * H, -2, 2, 182), *v = rnd((size_t)T * H, -1, 1, 183);
    float *out = rnd((size_t)T * H, 5, 6, 184), *lse = zeros((size_t)T * heads);
    double *want = malloc((size_t)T * H * sizeof(double)), *wlse = malloc((size_t)T * heads * sizeof(double));
    cpu()->attention_fwd(cpu(), out, lse, q, k, v, off, B, T, heads, hd, d);
    attention_reference(want, wlse, q, k, v, off, B, heads, hd, d);
    check_close("attention out", out, want, (size_t)T * H, 2e-6);
    check_close("attention lse", lse, wlse, (size_t)T * heads, 2e-6);
    /* the length-1 sequence (token 5) attends only to itself */
    const float keep = 1.0f / (1.0f - p);
    for (int h = 0; h < heads; h++) {
        int dropped =
            p > 0 && simcse_rng_u32(d.seed, simcse_dropout_subsequence(d.step, d.site),
                                    simcse_dropout_offset((uint64_t)(5 * heads + h), 0)) < simcse_dropout_threshold(p);
        for (int e = 0; e < hd; e++) {
            float w = dropped ? 0.0f : v[5 * H + h * hd + e] * (p > 0 ? keep : 1.0f);
            cr_assert(fabs(out[5 * H + h * hd + e] - w) < 1e-6, "length-1 sequence, head %d", h);
        }
    }
    free(q), free(k), free(v), free(out), free(lse), free(want), free(wlse);
}

Test(cpu_ops, attention_fwd_matches_padded_reference) { attention_fwd_case(0.0f); }
Test(cpu_ops, attention_fwd_with_dropout_matches_padded_reference) { attention_fwd_case(0.3f); }

Test(cpu_ops, attention_sequences_do_not_mix) {
    /* changing a token of sequence 1 leaves sequence 0's outputs bit-identical */
    static const int32_t off[3] = {0, 4, 9};
    const int T = 9, heads = 2, hd = 4, H = heads * hd;
    simcse_dropout d = {.seed = 1, .step = 1, .site = 1, .p = 0.2f};
    float *q = rnd(T * H, -1, 1, 191), *k = rnd(T * H, -1, 1, 192), *v = rnd(T * H, -1, 1, 193);
    float *o1 = zeros(T * H), *o2 = zeros(T * H), *l = zeros(T * heads);
    cpu()->attention_fwd(cpu(), o1, l, q, k, v, off, 2, T, heads, hd, d);
    for (int e = 0; e < H; e++) k[6 * H + e] += 1.0f, v[6 * H + e] -= 1.0f;
    cpu()->attention_fwd(cpu(), o2, l, q, k, v, off, 2, T, heads, hd, d);
    cr_assert_eq(memcmp(o1, o2, 4 * H * sizeof(float)), 0);
    cr_assert_neq(memcmp(o1 + 4 * H, o2 + 4 * H, 5 * H * sizeof(float)), 0);
    free(q), free(k), free(v), free(o1), free(o2), free(l);
}

/* ---- pooling ---- */

Test(cpu_ops, pools_forward_and_accumulating_backward) {
    static const int32_t off[4] = {0, 3, 4, 8};
    const int B = 3, H = 2;
    float x[16], out[6], dout[6] = {1, 2, 3, 4, 5, 6}, dx[16];
    for (int i = 0; i < 16; i++) x[i] = (float)(i * i) * 0.25f;
    cpu()->pool_first_fwd(cpu(), out, x, off, B, H);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) cr_assert_eq(out[b * H + h], x[off[b] * H + h]);
    cpu()->pool_mean_fwd(cpu(), out, x, off, B, H);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            double s = 0;
            for (int t = off[b]; t < off[b + 1]; t++) s += x[t * H + h];
            cr_assert(fabs(out[b * H + h] - s / (off[b + 1] - off[b])) < 1e-6);
        }
    for (int i = 0; i < 16; i++) dx[i] = 1.0f;
    cpu()->pool_first_bwd(cpu(), dx, dout, off, B, H);
    for (int t = 0; t < 8; t++)
        for (int h = 0; h < H; h++) {
            int b = t == 0 ? 0 : t == 3 ? 1 : t == 4 ? 2 : -1;
            cr_assert_eq(dx[t * H + h], 1.0f + (b >= 0 ? dout[b * H + h] : 0.0f), "t %d", t);
        }
    for (int i = 0; i < 16; i++) dx[i] = 1.0f;
    cpu()->pool_mean_bwd(cpu(), dx, dout, off, B, H);
    for (int t = 0; t < 8; t++)
        for (int h = 0; h < H; h++) {
            int b = t < 3 ? 0 : t < 4 ? 1 : 2;
            float want = 1.0f + dout[b * H + h] / (float)(off[b + 1] - off[b]);
            cr_assert(fabs(dx[t * H + h] - want) < 1e-6, "t %d", t);
        }
}

/* ---- InfoNCE ---- */

Test(cpu_ops, infonce_closed_forms) {
    /* anchors e1, e2 (scaled: cosine ignores length), candidates e1, e2: logits I / temp */
    const float temp = 0.05f;
    float a[6] = {3, 0, 0, 0, 3, 0}, c[12] = {0.5f, 0, 0, 0, 0.5f, 0, 0, 2, 0, 2, 0, 0};
    float da[6], dc[12], loss = -1;
    cpu()->infonce(cpu(), &loss, da, dc, a, c, 2, 2, 3, temp, 0.0f, 1.0f, 0, 0);
    double want = log(1.0 + exp(-1.0 / temp));
    cr_assert(fabs(loss - want) < 1e-6 * (1 + want), "in-batch: %g vs %g", loss, want);
    /* with hard negatives [e2, e1]: anchor 0 sees {1/t, 0, 0 + w, 1/t}; anchor 1 {0, 1/t, 1/t, 0 + w} */
    const float w = 0.8f;
    cpu()->infonce(cpu(), &loss, da, dc, a, c, 2, 4, 3, temp, w, 1.0f, 0, 1);
    want = log(2.0 * exp(1.0 / temp) + 1.0 + exp((double)w)) - 1.0 / temp;
    cr_assert(fabs(loss - want) < 1e-6 * (1 + want), "hard negatives: %g vs %g", loss, want);
    cpu()->infonce(cpu(), &loss, da, dc, a, c, 2, 4, 3, temp, 0.0f, 1.0f, 0, 1);
    double want0 = log(2.0 * exp(1.0 / temp) + 2.0) - 1.0 / temp;
    cr_assert(fabs(loss - want0) < 1e-6 * (1 + want0), "hn_weight 0: %g vs %g", loss, want0);
}

static double ref_infonce(const float *a, const float *c, int B, int C, int H, double temp, double hn) {
    double total = 0;
    for (int i = 0; i < B; i++) {
        double na = 0, lg[64], m = -INFINITY, z = 0;
        for (int h = 0; h < H; h++) na += (double)a[i * H + h] * a[i * H + h];
        for (int j = 0; j < C; j++) {
            double nc = 0, dt = 0;
            for (int h = 0; h < H; h++)
                nc += (double)c[j * H + h] * c[j * H + h], dt += (double)a[i * H + h] * c[j * H + h];
            lg[j] = dt / sqrt(na * nc) / temp + (C == 2 * B && j == B + i ? hn : 0.0);
            if (lg[j] > m) m = lg[j];
        }
        for (int j = 0; j < C; j++) z += exp(lg[j] - m);
        total += m + log(z) - lg[i];
    }
    return total / B;
}

Test(cpu_ops, infonce_matches_reference_and_scales_gradients) {
    const int B = 6, H = 10;
    for (int C = B; C <= 2 * B; C += B) {
        float *a = rnd(B * H, -1, 1, 201), *c = rnd(C * H, -1, 1, 202);
        float *da1 = rnd(B * H, 5, 6, 203), *dc1 = rnd(C * H, 5, 6, 204), *da2 = zeros(B * H), *dc2 = zeros(C * H);
        float l1, l2;
        cpu()->infonce(cpu(), &l1, da1, dc1, a, c, B, C, H, 0.07f, 0.4f, 1.0f, 0, C == 2 * B);
        cpu()->infonce(cpu(), &l2, da2, dc2, a, c, B, C, H, 0.07f, 0.4f, 0.25f, 0, C == 2 * B);
        double want = ref_infonce(a, c, B, C, H, 0.07f, C == 2 * B ? 0.4f : 0.0);
        cr_assert(fabs(l1 - want) < 1e-6 * (1 + want), "C=%d: %g vs %g", C, l1, want);
        cr_assert_eq(l1, l2, "grad_scale must not scale the loss");
        for (int i = 0; i < B * H; i++) cr_assert(fabs(da2[i] - 0.25f * da1[i]) <= 1e-6f * (1 + fabs(da1[i])));
        for (int i = 0; i < C * H; i++) cr_assert(fabs(dc2[i] - 0.25f * dc1[i]) <= 1e-6f * (1 + fabs(dc1[i])));
        /* the gradients of the anchors sum over candidates; each row is orthogonal to its own
         * anchor (cosine is scale invariant): a_i . d_a_i = 0 */
        for (int i = 0; i < B; i++) {
            double s = 0, n = 0;
            for (int h = 0; h < H; h++) s += (double)a[i * H + h] * da1[i * H + h], n += fabs(da1[i * H + h]);
            cr_assert(n > 1e-3 && fabs(s) < 1e-5 * n, "anchor %d: a.da = %g", i, s);
        }
        free(a), free(c), free(da1), free(dc1), free(da2), free(dc2);
    }
}

Test(cpu_ops, infonce_zero_vector_stays_finite) {
    const int B = 2, H = 3;
    float a[6] = {0, 0, 0, 1, 2, 3}, c[6] = {1, 0, 1, 0, 1, 1}, da[6], dc[6], loss;
    cpu()->infonce(cpu(), &loss, da, dc, a, c, B, B, H, 0.05f, 0.0f, 1.0f, 0, 0);
    cr_assert(isfinite(loss));
    for (int i = 0; i < 6; i++) cr_assert(isfinite(da[i]) && isfinite(dc[i]));
}

/* ---- optimizer ---- */

Test(cpu_ops, sumsq_accumulates_in_double) {
    const size_t n = 1001;
    float *x = zeros(n);
    x[0] = 4096.0f; /* 2^24: a float accumulator would drop every 0.0625 that follows */
    for (size_t i = 1; i < n; i++) x[i] = (i & 1) ? 0.25f : -0.25f;
    double s = -1;
    cpu()->sumsq(cpu(), &s, x, n);
    cr_assert_eq(s, 16777216.0 + 1000 * 0.0625);
    free(x);
}

Test(cpu_ops, adamw_matches_hand_computed_steps) {
    enum { N = 6 };
    float p[N] = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f, -0.1f}, m[N] = {0}, v[N] = {0};
    double P[N], M[N] = {0}, V[N] = {0};
    const float lr = 0.05f, b1 = 0.9f, b2 = 0.99f, eps = 1e-3f, wd = 0.1f, gs = 0.5f;
    for (int i = 0; i < N; i++) P[i] = p[i];
    for (int step = 1; step <= 4; step++) {
        float g[N];
        fill_uniform(g, N, -2, 2, 300 + step);
        g[3] = 0.0f; /* a parameter without gradient still decays */
        cpu()->adamw(cpu(), p, g, m, v, N, lr, b1, b2, eps, wd, gs, step);
        for (int i = 0; i < N; i++) {
            double gi = (double)g[i] * gs;
            P[i] *= 1.0 - (double)lr * wd;
            M[i] = (double)b1 * M[i] + (1.0 - b1) * gi;
            V[i] = (double)b2 * V[i] + (1.0 - b2) * gi * gi;
            double mh = M[i] / (1.0 - pow(b1, step)), vh = V[i] / (1.0 - pow(b2, step));
            P[i] -= lr * mh / (sqrt(vh) + eps);
            cr_assert(fabs(p[i] - P[i]) < 2e-6 * (1 + fabs(P[i])), "step %d p[%d]: %.9g vs %.9g", step, i, p[i], P[i]);
            cr_assert(fabs(m[i] - M[i]) < 1e-6 * (1 + fabs(M[i])), "step %d m[%d]", step, i);
            cr_assert(fabs(v[i] - V[i]) < 1e-6 * (1 + fabs(V[i])), "step %d v[%d]", step, i);
        }
    }
    /* first step of a fresh state moves by about lr * sign(g) (plus decay) */
    float q = 1.0f, mq = 0, vq = 0, gq = 3.0f;
    cpu()->adamw(cpu(), &q, &gq, &mq, &vq, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 1);
    cr_assert(fabs(q - 0.99f) < 1e-6, "q = %.9g", q);
}

/* Masks follow the row identity, not the packed position: rows {7, 3} of a packed
 * matrix get exactly the masks rows 7 and 3 get in an identity-indexed one. */
Test(cpu_ops, dropout_and_attention_follow_row_ids) {
    simcse_backend *be = simcse_backend_cpu();
    const int rows = 8, cols = 40;
    float x[8 * 40], full[8 * 40], packed[2 * 40];
    for (int i = 0; i < rows * cols; i++) x[i] = 1.0f + (float)i;
    simcse_dropout d = {.seed = 3, .step = 2, .site = 5, .p = 0.3f};
    be->dropout(be, full, x, rows, cols, d);
    int32_t ids[2] = {7, 3};
    float xin[2 * 40];
    memcpy(xin, x + 7 * cols, sizeof(float) * cols);
    memcpy(xin + cols, x + 3 * cols, sizeof(float) * cols);
    d.row_ids = ids;
    be->dropout(be, packed, xin, 2, cols, d);
    int dropped = 0;
    for (int c = 0; c < cols; c++) {
        cr_assert_eq(packed[c], full[7 * cols + c]);
        cr_assert_eq(packed[cols + c], full[3 * cols + c]);
        dropped += packed[c] == 0.0f;
    }
    cr_assert(dropped > 0 && dropped < cols);

    /* attention: one sequence of 3 tokens, alone (rows 0..2) vs shifted to rows 10..12 */
    const int heads = 2, hd = 4, T = 3, H = heads * hd;
    float q[3 * 8], k[3 * 8], v[3 * 8], o1[3 * 8], o2[3 * 8], o3[3 * 8], lse[6];
    for (int i = 0; i < T * H; i++) q[i] = sinf((float)i), k[i] = cosf((float)i * 0.7f), v[i] = (float)i * 0.1f;
    int32_t offs[2] = {0, 3}, r0[3] = {0, 1, 2}, r10[3] = {10, 11, 12};
    simcse_dropout a = {.seed = 9, .step = 1, .site = 2, .p = 0.5f};
    be->attention_fwd(be, o1, lse, q, k, v, offs, 1, T, heads, hd, a);
    a.row_ids = r0;
    be->attention_fwd(be, o2, lse, q, k, v, offs, 1, T, heads, hd, a);
    cr_assert(memcmp(o1, o2, sizeof o1) == 0, "row_ids 0..2 equal the packed index");
    a.row_ids = r10;
    be->attention_fwd(be, o3, lse, q, k, v, offs, 1, T, heads, hd, a);
    cr_assert(memcmp(o1, o3, sizeof o1) != 0, "other rows draw other masks");
}

Test(cpu_ops, memory_statistics_follow_alloc_and_free) {
    simcse_backend *be = simcse_backend_cpu();
    size_t use0, peak0, use1, peak1, use2, peak2;
    be->memory(be, &use0, &peak0);
    void *a = be->alloc(be, 1000), *b = be->alloc(be, 1 << 20);
    cr_assert(a && b);
    cr_assert_eq(((uintptr_t)a | (uintptr_t)b) % 64, 0, "64-byte alignment");
    be->memory(be, &use1, &peak1);
    cr_assert_geq(use1 - use0, 1000 + (1 << 20));
    cr_assert_geq(peak1, use1);
    be->free(be, b);
    be->free(be, a);
    be->memory(be, &use2, &peak2);
    cr_assert_eq(use2, use0);
    cr_assert_eq(peak2, peak1);
}
