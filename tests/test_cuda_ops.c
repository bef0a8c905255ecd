/* The CUDA backend against the CPU oracle (suite cuda_ops).
 *
 * Every op runs on fresh random inputs (a new seed per run, printed in every failure
 * message; SIMCSE_TEST_SEED=<n> replays one) on simcse_backend_cpu() and on
 * simcse_backend_cuda(0, ...), with identical inputs. Outputs that an op overwrites are
 * poisoned with NaN on both backends first, so an element the kernel forgets to write
 * fails; outputs it accumulates into start from the same random values on both, so the
 * "+=" semantics are checked too.
 *
 * Comparison: element i passes when |gpu - cpu| <= tol * (|cpu| + rms(cpu)) — relative,
 * with a floor at the tensor's RMS so that elements that cancel to ~0 are judged on the
 * tensor's scale rather than their own. Bounds:
 *   1e-5   fp32 elementwise ops, LayerNorm, pooling, embeddings, GEMMs (cuBLAS sums in another
 *          order than the CPU: ~1e-6 relative for K <= 1024), sumsq (1e-10: both sum in double, in different orders), AdamW (1e-6);
 *   2e-5   attention forward: expf of the GPU (<= 2 ulp) vs glibc, online vs two-pass softmax;
 *   1e-4   attention backward (dS = P (dP - D) cancels, D = dO.O on the GPU vs sum P dP in
 *          double on the CPU) and InfoNCE gradients (cosines carry fp32 GEMM rounding and the
 *          logits multiply it by 1/temp = 20);
 *   bf16 mode: the norm-wise relative error ||gpu - cpu|| / ||cpu|| <= 1e-2 (bf16 operands
 *          carry 8-bit mantissas: ~0.2% of the RMS per element is expected), and elementwise
 *          3e-2 with the RMS floor (the largest of ~10^5 such errors reaches ~1% of the RMS,
 *          too close to 1e-2 for an elementwise bound that must never flake).
 * The fp32 GEMM bound is 2e-5 for K = 3072 (the CPU's sequential sum alone is off by up to
 * ~4e-6 of the RMS there).
 * Dropout masks must be bit-identical: the mask of the dropout op and of the attention
 * probabilities is read off outputs that are nonzero exactly where an element is kept.
 *
 * Without a GPU (or in a build without CUDA) every test skips. SIMCSE_TEST_SMALL=1 shrinks
 * the shapes (for compute-sanitizer runs, see tests/gpu/run_gpu_checks.sh). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/ops.h"
#include "simcse/rng.h"

#ifdef SIMCSE_CUDA
#define REQUIRE_GPU()                                                                        \
    do {                                                                                     \
        if (!simcse_cuda_available()) cr_skip_test("no CUDA GPU (%s)", simcse_last_error()); \
    } while (0)
#else
#define REQUIRE_GPU() cr_skip_test("built without CUDA (make CUDA=0 or no nvcc)")
#endif

/* ---------------- helpers ---------------- */

static uint64_t g_seed;
static uint64_t g_state;

static uint64_t splitmix(void) {
    uint64_t z = (g_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fresh seed per test (or SIMCSE_TEST_SEED). */
static void seed_init(void) {
    const char *e = getenv("SIMCSE_TEST_SEED");
    if (e && *e)
        g_seed = strtoull(e, NULL, 0);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g_seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    g_state = g_seed;
}

static int small(void) {
    const char *e = getenv("SIMCSE_TEST_SMALL");
    return e && *e == '1';
}

static float urand(float lo, float hi) { return lo + (hi - lo) * (float)((splitmix() >> 40) * 0x1p-24); }
static int irand(int n) { return (int)(splitmix() % (uint64_t)n); }

static float *hrand(size_t n, float lo, float hi) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = urand(lo, hi);
    return x;
}

static simcse_backend *cpu(void) { return simcse_backend_cpu(); }
static simcse_backend *gpu(void) {
    simcse_backend *be = simcse_backend_cuda(0, 0);
    cr_assert_not_null(be, "simcse_backend_cuda(0, 0): %s", simcse_last_error());
    return be;
}
static simcse_backend *gpu_bf16(void) {
    simcse_backend *be = simcse_backend_cuda(0, 1);
    cr_assert_not_null(be, "simcse_backend_cuda(0, 1): %s", simcse_last_error());
    return be;
}

/* A tensor on both backends. */
typedef struct {
    size_t n;
    float *c, *g; /* cpu, gpu */
} dual;

static void *be_upload(simcse_backend *be, const void *h, size_t bytes) {
    void *d = be->alloc(be, bytes ? bytes : 4);
    cr_assert_not_null(d, "%s alloc(%zu): %s", be->name, bytes, simcse_last_error());
    if (bytes) be->to_device(be, d, h, bytes);
    return d;
}

/* Same values on both. */
static dual dual_from(const float *h, size_t n) {
    dual t = {n, be_upload(cpu(), h, n * sizeof(float)), NULL};
    t.g = be_upload(gpu(), h, n * sizeof(float));
    return t;
}
static dual dual_on(simcse_backend *g, const float *h, size_t n) {
    dual t = {n, be_upload(cpu(), h, n * sizeof(float)), be_upload(g, h, n * sizeof(float))};
    return t;
}
static dual dual_rand(size_t n, float lo, float hi) {
    float *h = hrand(n, lo, hi);
    dual t = dual_from(h, n);
    free(h);
    return t;
}
/* Poisoned: NaN on both. */
static dual dual_nan_on(simcse_backend *g, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    dual t = dual_on(g, h, n);
    free(h);
    return t;
}
static dual dual_nan(size_t n) { return dual_nan_on(gpu(), n); }
static void dual_free_on(simcse_backend *g, dual *t) {
    cpu()->free(cpu(), t->c);
    g->free(g, t->g);
    t->c = t->g = NULL;
}
static void dual_free(dual *t) { dual_free_on(gpu(), t); }

static int32_t *ints_on(simcse_backend *be, const int32_t *h, size_t n) {
    return be_upload(be, h, n * sizeof(int32_t));
}

static float *fetch(simcse_backend *be, const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (n) be->to_host(be, h, d, n * sizeof(float));
    return h;
}

/* |gpu - cpu| <= tol * (|cpu| + rms(cpu)) everywhere; NaN anywhere fails. */
static void check_arrays(const char *what, const float *got, const float *want, size_t n, double tol) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(want[i]), "%s: CPU oracle gave %g at %zu (seed %llu)", what, want[i], i,
                  (unsigned long long)g_seed);
        ss += (double)want[i] * want[i];
    }
    const double rms = n ? sqrt(ss / n) : 0.0;
    double worst = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - want[i]);
        const double bound = tol * (fabs(want[i]) + rms) + 1e-30;
        const double r = err / bound;
        if (!(r <= worst)) worst = r, wi = i; /* NaN sticks */
        if (isnan(r)) break;
    }
    cr_assert(worst <= 1.0,
              "%s: element %zu of %zu: gpu %.9g cpu %.9g (|err| %.3g, %.2fx the bound; tol %g, rms %.3g, seed %llu)",
              what, wi, n, got[wi], want[wi], fabs((double)got[wi] - want[wi]), worst, tol, rms,
              (unsigned long long)g_seed);
}

/* bf16 mode: norm-wise relative error <= 1e-2, elementwise 3e-2 (see the top of the file). */
static void check_arrays_bf16(const char *what, const float *got, const float *want, size_t n) {
    double se = 0.0, sr = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)got[i] - want[i];
        se += e * e;
        sr += (double)want[i] * want[i];
    }
    const double rel = sr > 0 ? sqrt(se / sr) : sqrt(se);
    cr_assert(rel <= 1e-2, "%s: norm-wise relative error %.3g > 1e-2 (seed %llu)", what, rel,
              (unsigned long long)g_seed);
    check_arrays(what, got, want, n, 3e-2);
}

#define TOL_BF16 (-1.0) /* pass as tol: use check_arrays_bf16 */

static void check_dual_on(simcse_backend *g, const char *what, const dual *t, double tol) {
    float *a = fetch(g, t->g, t->n), *b = fetch(cpu(), t->c, t->n);
    if (tol == TOL_BF16)
        check_arrays_bf16(what, a, b, t->n);
    else
        check_arrays(what, a, b, t->n, tol);
    free(a);
    free(b);
}
static void check_dual(const char *what, const dual *t, double tol) { check_dual_on(gpu(), what, t, tol); }

/* Bitwise equality of the zero pattern (the dropout mask). */
static void check_same_zeros(const char *what, const dual *t) {
    float *a = fetch(gpu(), t->g, t->n), *b = fetch(cpu(), t->c, t->n);
    size_t zeros = 0;
    for (size_t i = 0; i < t->n; i++) {
        cr_assert_eq(a[i] == 0.0f, b[i] == 0.0f, "%s: mask differs at %zu: gpu %g cpu %g (seed %llu)", what, i, a[i],
                     b[i], (unsigned long long)g_seed);
        zeros += b[i] == 0.0f;
    }
    cr_assert(zeros > 0 && zeros < t->n, "%s: degenerate mask (%zu of %zu dropped)", what, zeros, t->n);
    free(a);
    free(b);
}

#define F sizeof(float)

/* ---------------- backend and memory ---------------- */

Test(cuda_ops, vtable_complete_and_memory_roundtrip) {
    REQUIRE_GPU();
    seed_init();
    simcse_backend *be = gpu();
    cr_assert_eq(be, simcse_backend_cuda(0, 0), "the backend is created once per device and mode");
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

    const size_t n = 1001;
    float *h = hrand(n, -5, 5), *back = malloc(n * F);
    float *d = be->alloc(be, n * F), *d2 = be->alloc(be, n * F);
    cr_assert_not_null(d);
    be->to_device(be, d, h, n * F);
    be->copy(be, d2, d, n * F);
    be->zero(be, d2 + 100, 50 * F);
    be->sync(be);
    be->to_host(be, back, d2, n * F);
    for (size_t i = 0; i < n; i++) cr_assert_eq(back[i], i >= 100 && i < 150 ? 0.0f : h[i], "element %zu", i);
    be->free(be, d);
    be->free(be, d2);
    void *z = be->alloc(be, 0);
    cr_assert_not_null(z, "alloc(0) must return a pointer");
    be->free(be, z);
    free(h);
    free(back);
}

Test(cuda_ops, alloc_too_large_returns_null_with_sizes) {
    REQUIRE_GPU();
    simcse_backend *be = gpu();
    simcse_clear_error();
    const size_t huge = (size_t)1 << 50; /* 1 PiB */
    cr_assert_null(be->alloc(be, huge));
    const char *msg = simcse_last_error();
    cr_assert(strstr(msg, "1125899906842624") != NULL, "message lacks the size: %s", msg);
    cr_assert(strstr(msg, "free") != NULL, "message lacks the free memory: %s", msg);
    /* the failure is not sticky: the backend still works */
    float *d = be->alloc(be, 64);
    cr_assert_not_null(d, "%s", simcse_last_error());
    be->zero(be, d, 64);
    be->sync(be);
    be->free(be, d);
}

Test(cuda_ops, memory_statistics_follow_alloc_free_and_scratch) {
    REQUIRE_GPU();
    seed_init();
    simcse_backend *be = gpu();
    cr_assert_not_null((void *)be->memory);
    size_t u0, p0, u, p;
    be->memory(be, &u0, &p0);
    cr_assert_geq(p0, u0);
    const size_t n = (size_t)3 << 20;
    void *a = be->alloc(be, n);
    cr_assert_not_null(a, "%s", simcse_last_error());
    be->memory(be, &u, &p);
    cr_assert(u >= u0 + n && u <= u0 + n + 4096, "in use %zu after allocating %zu over %zu", u, n, u0);
    cr_assert_geq(p, u);
    be->free(be, a);
    be->memory(be, &u, &p);
    cr_assert_eq(u, u0, "in use %zu after free, %zu before", u, u0);
    cr_assert_geq(p, u0 + n);
    /* the op scratch grows three times; only the last arena may stay counted */
    const int B = 64, Hs[3] = {2048, 8192, 16384};
    size_t need = 0;
    for (int i = 0; i < 3; i++) {
        const int H = Hs[i];
        dual x = dual_rand((size_t)2 * B * H, -1, 1), dx = dual_nan((size_t)2 * B * H);
        float loss;
        be->infonce(be, &loss, dx.g, dx.g + (size_t)B * H, x.g, x.g + (size_t)B * H, B, B, H, 0.05f, 0.0f, 1.0f, 0, 0);
        dual_free(&x);
        dual_free(&dx);
        need = ((size_t)2 * B * H + (size_t)B * B) * sizeof(float);
    }
    be->memory(be, &u, &p);
    cr_assert(u >= u0 + need && u <= u0 + need + need / 4 + ((size_t)2 << 20),
              "in use %zu over %zu after the scratch grew to hold %zu bytes (a freed arena still counted?)", u, u0,
              need);
}

/* ---------------- embeddings ---------------- */

static void embed_case(int T, int H, int with_types) {
    const int V = 50, P = 40, NT = 2;
    int32_t *ids = malloc(T * sizeof(int32_t)), *pos = malloc(T * sizeof(int32_t)), *typ = malloc(T * sizeof(int32_t));
    for (int t = 0; t < T; t++) {
        ids[t] = t % 9 == 0 ? 3 : irand(V); /* a frequent id, as [CLS] */
        pos[t] = t % P;
        typ[t] = irand(NT);
    }
    dual word = dual_rand((size_t)V * H, -1, 1), pe = dual_rand((size_t)P * H, -1, 1),
         te = dual_rand((size_t)NT * H, -1, 1);
    dual out = dual_nan((size_t)T * H), dout = dual_rand((size_t)T * H, -1, 1);
    dual dw = dual_rand((size_t)V * H, -1, 1), dp = dual_rand((size_t)P * H, -1, 1),
         dt = dual_rand((size_t)NT * H, -1, 1);
    int32_t *ci = ints_on(cpu(), ids, T), *cp = ints_on(cpu(), pos, T), *ct = ints_on(cpu(), typ, T);
    int32_t *gi = ints_on(gpu(), ids, T), *gp = ints_on(gpu(), pos, T), *gt = ints_on(gpu(), typ, T);
    cpu()->embed_fwd(cpu(), out.c, ci, cp, with_types ? ct : NULL, word.c, pe.c, te.c, T, H);
    gpu()->embed_fwd(gpu(), out.g, gi, gp, with_types ? gt : NULL, word.g, pe.g, te.g, T, H);
    check_dual("embed_fwd out", &out, 1e-6);
    cpu()->embed_bwd(cpu(), dw.c, dp.c, dt.c, dout.c, ci, cp, with_types ? ct : NULL, T, H);
    gpu()->embed_bwd(gpu(), dw.g, dp.g, dt.g, dout.g, gi, gp, with_types ? gt : NULL, T, H);
    /* bit-identical: each table row gets the CPU's additions in the CPU's (token) order */
    check_dual("embed_bwd dword", &dw, 0.0);
    check_dual("embed_bwd dpos", &dp, 0.0);
    check_dual("embed_bwd dtype", &dt, 0.0);
    /* NULL tables are skipped */
    gpu()->embed_bwd(gpu(), NULL, NULL, dt.g, dout.g, gi, gp, with_types ? gt : NULL, T, H);
    cpu()->embed_bwd(cpu(), NULL, NULL, dt.c, dout.c, ci, cp, with_types ? ct : NULL, T, H);
    check_dual("embed_bwd dtype (alone)", &dt, 0.0);
    dual *all[] = {&word, &pe, &te, &out, &dout, &dw, &dp, &dt};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    cpu()->free(cpu(), ci), cpu()->free(cpu(), cp), cpu()->free(cpu(), ct);
    gpu()->free(gpu(), gi), gpu()->free(gpu(), gp), gpu()->free(gpu(), gt);
    free(ids), free(pos), free(typ);
}

Test(cuda_ops, embed_fwd_bwd) {
    REQUIRE_GPU();
    seed_init();
    embed_case(77, 96, 1);
    embed_case(small() ? 40 : 300, small() ? 64 : 768, 0);
    embed_case(600, 40, 1);  /* the later tokens of an id span several 256-token chunks */
    embed_case(45, 1100, 1); /* more columns than one pass of the block covers */
}

/* ---------------- linear ---------------- */

static void linear_case(simcse_backend *g, int N, int I, int O, int with_bias, double tol) {
    float *h_in = hrand((size_t)N * I, -1, 1), *h_w = hrand((size_t)O * I, -0.5f, 0.5f), *h_b = hrand(O, -1, 1);
    dual in = dual_on(g, h_in, (size_t)N * I);
    dual W = dual_on(g, h_w, (size_t)O * I), b = dual_on(g, h_b, O);
    dual out = dual_nan_on(g, (size_t)N * O);
    char what[96];
    cpu()->linear_fwd(cpu(), out.c, in.c, W.c, with_bias ? b.c : NULL, N, I, O);
    g->linear_fwd(g, out.g, in.g, W.g, with_bias ? b.g : NULL, N, I, O);
    snprintf(what, sizeof what, "%s linear_fwd %dx%d->%d%s", g->name, N, I, O, with_bias ? " +b" : "");
    check_dual_on(g, what, &out, tol);

    float *h_dout = hrand((size_t)N * O, -1, 1), *h_dw = hrand((size_t)O * I, -1, 1), *h_db = hrand(O, -1, 1);
    dual dout = dual_on(g, h_dout, (size_t)N * O), dW = dual_on(g, h_dw, (size_t)O * I), db = dual_on(g, h_db, O);
    dual din = dual_nan_on(g, (size_t)N * I);
    cpu()->linear_bwd(cpu(), din.c, dW.c, with_bias ? db.c : NULL, dout.c, in.c, W.c, N, I, O);
    g->linear_bwd(g, din.g, dW.g, with_bias ? db.g : NULL, dout.g, in.g, W.g, N, I, O);
    snprintf(what, sizeof what, "%s linear_bwd din %dx%d->%d", g->name, N, I, O);
    check_dual_on(g, what, &din, tol);
    snprintf(what, sizeof what, "%s linear_bwd dW %dx%d->%d", g->name, N, I, O);
    check_dual_on(g, what, &dW, tol);
    snprintf(what, sizeof what, "%s linear_bwd db %dx%d->%d", g->name, N, I, O);
    check_dual_on(g, what, &db, tol);
    /* din NULL: only the parameter gradients accumulate */
    cpu()->linear_bwd(cpu(), NULL, dW.c, db.c, dout.c, in.c, W.c, N, I, O);
    g->linear_bwd(g, NULL, dW.g, db.g, dout.g, in.g, W.g, N, I, O);
    snprintf(what, sizeof what, "%s linear_bwd (din NULL) dW", g->name);
    check_dual_on(g, what, &dW, tol);
    check_dual_on(g, "linear_bwd (din NULL) db", &db, tol);
    dual *all[] = {&in, &W, &b, &out, &dout, &dW, &db, &din};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free_on(g, all[i]);
    free(h_in), free(h_w), free(h_b), free(h_dout), free(h_dw), free(h_db);
}

Test(cuda_ops, linear_fwd_bwd) {
    REQUIRE_GPU();
    seed_init();
    linear_case(gpu(), 37, 45, 29, 1, 1e-5);
    linear_case(gpu(), 5, 17, 3, 0, 1e-5);
    linear_case(gpu(), 1, 8, 8, 1, 1e-5);
    if (small())
        linear_case(gpu(), 64, 128, 96, 1, 1e-5);
    else {
        linear_case(gpu(), 128, 768, 768, 1, 1e-5);
        linear_case(gpu(), 96, 768, 3072, 1, 2e-5); /* din sums over K = 3072 */
        linear_case(gpu(), 96, 3072, 768, 1, 2e-5);
    }
}

/* ---------------- LayerNorm ---------------- */

static void layernorm_case(int N, int H, int with_res) {
    const float eps = 1e-12f;
    dual x = dual_rand((size_t)N * H, -2, 3), res = dual_rand((size_t)N * H, -1, 1);
    dual g = dual_rand(H, 0.5f, 1.5f), b = dual_rand(H, -0.5f, 0.5f);
    dual y = dual_nan((size_t)N * H), mean = dual_nan(N), rstd = dual_nan(N);
    cpu()->layernorm_fwd(cpu(), y.c, mean.c, rstd.c, x.c, with_res ? res.c : NULL, g.c, b.c, N, H, eps);
    gpu()->layernorm_fwd(gpu(), y.g, mean.g, rstd.g, x.g, with_res ? res.g : NULL, g.g, b.g, N, H, eps);
    check_dual("layernorm_fwd y", &y, 1e-5);
    check_dual("layernorm_fwd mean", &mean, 1e-5);
    check_dual("layernorm_fwd rstd", &rstd, 1e-5);
    /* the backward runs from the CPU's saved statistics on both sides */
    float *hm = fetch(cpu(), mean.c, N), *hr = fetch(cpu(), rstd.c, N);
    dual m2 = dual_from(hm, N), r2 = dual_from(hr, N);
    dual dy = dual_rand((size_t)N * H, -1, 1), dg = dual_rand(H, -1, 1), db = dual_rand(H, -1, 1);
    dual dx = dual_nan((size_t)N * H);
    cpu()->layernorm_bwd(cpu(), dx.c, dg.c, db.c, dy.c, x.c, with_res ? res.c : NULL, m2.c, r2.c, g.c, N, H);
    gpu()->layernorm_bwd(gpu(), dx.g, dg.g, db.g, dy.g, x.g, with_res ? res.g : NULL, m2.g, r2.g, g.g, N, H);
    check_dual("layernorm_bwd dx", &dx, 1e-5);
    check_dual("layernorm_bwd dg", &dg, 1e-5);
    check_dual("layernorm_bwd db", &db, 1e-5);
    /* dg, db NULL */
    cpu()->layernorm_bwd(cpu(), dx.c, NULL, NULL, dy.c, x.c, with_res ? res.c : NULL, m2.c, r2.c, g.c, N, H);
    gpu()->layernorm_bwd(gpu(), dx.g, NULL, NULL, dy.g, x.g, with_res ? res.g : NULL, m2.g, r2.g, g.g, N, H);
    check_dual("layernorm_bwd dx (no param grads)", &dx, 1e-5);
    dual *all[] = {&x, &res, &g, &b, &y, &mean, &rstd, &m2, &r2, &dy, &dg, &db, &dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    free(hm), free(hr);
}

Test(cuda_ops, layernorm_fwd_bwd) {
    REQUIRE_GPU();
    seed_init();
    layernorm_case(13, 37, 0);
    layernorm_case(small() ? 20 : 150, 768, 1);
    layernorm_case(9, 1100, 1); /* beyond the 1024 values a warp keeps in registers */
    if (!small()) layernorm_case(70, 1024, 0);
}

/* ---------------- elementwise ---------------- */

Test(cuda_ops, gelu_tanh_add_scale) {
    REQUIRE_GPU();
    seed_init();
    const size_t n = small() ? 5000 : 300007;
    dual x = dual_rand(n, -6, 6), dy = dual_rand(n, -1, 1), y = dual_nan(n), dx = dual_nan(n);
    cpu()->gelu_fwd(cpu(), y.c, x.c, n);
    gpu()->gelu_fwd(gpu(), y.g, x.g, n);
    check_dual("gelu_fwd", &y, 1e-5);
    cpu()->gelu_bwd(cpu(), dx.c, dy.c, x.c, n);
    gpu()->gelu_bwd(gpu(), dx.g, dy.g, x.g, n);
    check_dual("gelu_bwd", &dx, 1e-5);
    cpu()->tanh_fwd(cpu(), y.c, x.c, n);
    gpu()->tanh_fwd(gpu(), y.g, x.g, n);
    check_dual("tanh_fwd", &y, 1e-5);
    /* tanh_bwd from the same y on both sides */
    float *hy = fetch(cpu(), y.c, n);
    dual y2 = dual_from(hy, n);
    cpu()->tanh_bwd(cpu(), dx.c, dy.c, y2.c, n);
    gpu()->tanh_bwd(gpu(), dx.g, dy.g, y2.g, n);
    check_dual("tanh_bwd", &dx, 1e-6);
    /* in place */
    cpu()->gelu_fwd(cpu(), y2.c, y2.c, n);
    gpu()->gelu_fwd(gpu(), y2.g, y2.g, n);
    check_dual("gelu_fwd in place", &y2, 1e-5);
    dual s = dual_nan(n);
    cpu()->add(cpu(), s.c, x.c, dy.c, n);
    gpu()->add(gpu(), s.g, x.g, dy.g, n);
    check_dual("add", &s, 1e-7);
    cpu()->add(cpu(), s.c, s.c, x.c, n); /* accumulate */
    gpu()->add(gpu(), s.g, s.g, x.g, n);
    check_dual("add (accumulate)", &s, 1e-7);
    cpu()->scale(cpu(), s.c, -0.37f, n);
    gpu()->scale(gpu(), s.g, -0.37f, n);
    check_dual("scale", &s, 1e-7);
    dual *all[] = {&x, &dy, &y, &dx, &y2, &s};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    free(hy);
}

/* ---------------- dropout ---------------- */

Test(cuda_ops, dropout_masks_bit_identical) {
    REQUIRE_GPU();
    seed_init();
    const int rows = small() ? 19 : 267, cols = small() ? 771 : 3075; /* cols % 4 != 0 */
    const size_t n = (size_t)rows * cols;
    simcse_dropout d = {.seed = splitmix(), .step = (uint32_t)splitmix(), .site = (uint32_t)irand(1 << 20), .p = 0.1f};
    float *ones = malloc(n * F);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    dual one = dual_from(ones, n), y = dual_nan(n);
    cpu()->dropout(cpu(), y.c, one.c, rows, cols, d);
    gpu()->dropout(gpu(), y.g, one.g, rows, cols, d);
    check_same_zeros("dropout mask", &y);
    check_dual("dropout values", &y, 0.0);
    /* global row identities (as the packer makes them: sequence * max_len + position) */
    int32_t *rid = malloc(rows * sizeof(int32_t));
    for (int r = 0; r < rows; r++) rid[r] = irand(1 << 20) * 512 + irand(512);
    int32_t *rc = ints_on(cpu(), rid, rows), *rg = ints_on(gpu(), rid, rows);
    simcse_dropout dc = d, dg = d;
    dc.row_ids = rc, dg.row_ids = rg;
    cpu()->dropout(cpu(), y.c, one.c, rows, cols, dc);
    gpu()->dropout(gpu(), y.g, one.g, rows, cols, dg);
    check_same_zeros("dropout mask (row_ids)", &y);
    check_dual("dropout values (row_ids)", &y, 0.0);
    /* backward = same call on a gradient; in place */
    dual g = dual_rand(n, -1, 1);
    cpu()->dropout(cpu(), g.c, g.c, rows, cols, dc);
    gpu()->dropout(gpu(), g.g, g.g, rows, cols, dg);
    check_dual("dropout in place", &g, 0.0);
    /* another p, an odd shape */
    d.p = 0.37f;
    dual y3 = dual_nan(7 * 5);
    cpu()->dropout(cpu(), y3.c, one.c, 7, 5, d);
    gpu()->dropout(gpu(), y3.g, one.g, 7, 5, d);
    check_dual("dropout 7x5 p=0.37", &y3, 0.0);
    /* p = 0 copies, p = 1 zeroes */
    d.p = 0.0f;
    cpu()->dropout(cpu(), y.c, g.c, rows, cols, d);
    gpu()->dropout(gpu(), y.g, g.g, rows, cols, d);
    check_dual("dropout p=0", &y, 0.0);
    d.p = 1.0f;
    cpu()->dropout(cpu(), y.c, g.c, rows, cols, d);
    gpu()->dropout(gpu(), y.g, g.g, rows, cols, d);
    float *hy = fetch(gpu(), y.g, n);
    for (size_t i = 0; i < n; i++) cr_assert_eq(hy[i], 0.0f, "p=1 left %g at %zu", hy[i], i);
    dual *all[] = {&one, &y, &g, &y3};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    cpu()->free(cpu(), rc), gpu()->free(gpu(), rg);
    free(ones), free(hy), free(rid);
}

/* ---------------- attention ---------------- */

typedef struct {
    int B, T, heads, hd;
    int32_t *off;     /* host */
    int32_t *oc, *og; /* offsets on the backends */
    int32_t *rc, *rg; /* global row identities of the tokens (sequence * 512 + position) */
} seqs;

static seqs make_seqs(const int *lens, int B, int heads, int hd) {
    seqs s = {B, 0, heads, hd, malloc((B + 1) * sizeof(int32_t)), NULL, NULL, NULL, NULL};
    s.off[0] = 0;
    for (int b = 0; b < B; b++) s.off[b + 1] = s.off[b] + lens[b];
    s.T = s.off[B];
    s.oc = ints_on(cpu(), s.off, B + 1);
    s.og = ints_on(gpu(), s.off, B + 1);
    int32_t *rid = malloc((s.T + 1) * sizeof(int32_t));
    const int base = irand(1 << 12);
    for (int b = 0; b < B; b++)
        for (int t = s.off[b]; t < s.off[b + 1]; t++) rid[t] = (base + 3 * b) * 512 + (t - s.off[b]);
    s.rc = ints_on(cpu(), rid, s.T);
    s.rg = ints_on(gpu(), rid, s.T);
    free(rid);
    return s;
}
static void free_seqs(seqs *s) {
    cpu()->free(cpu(), s->oc);
    gpu()->free(gpu(), s->og);
    cpu()->free(cpu(), s->rc);
    gpu()->free(gpu(), s->rg);
    free(s->off);
}

static void attention_case(const int *lens, int B, int heads, int hd, float p, int with_rows) {
    seqs s = make_seqs(lens, B, heads, hd);
    const size_t TH = (size_t)s.T * heads * hd;
    simcse_dropout dc = {.seed = splitmix(), .step = (uint32_t)irand(1000), .site = (uint32_t)irand(64), .p = p};
    simcse_dropout dg = dc;
    if (with_rows) dc.row_ids = s.rc, dg.row_ids = s.rg;
    dual q = dual_rand(TH, -1, 1), k = dual_rand(TH, -1, 1), v = dual_rand(TH, -1, 1);
    dual out = dual_nan(TH), lse = dual_nan((size_t)s.T * heads);
    char what[128];
    cpu()->attention_fwd(cpu(), out.c, lse.c, q.c, k.c, v.c, s.oc, B, s.T, heads, hd, dc);
    gpu()->attention_fwd(gpu(), out.g, lse.g, q.g, k.g, v.g, s.og, B, s.T, heads, hd, dg);
    snprintf(what, sizeof what, "attention_fwd out (hd %d, heads %d, p %g)", hd, heads, p);
    check_dual(what, &out, 2e-5);
    snprintf(what, sizeof what, "attention_fwd lse (hd %d, heads %d, p %g)", hd, heads, p);
    check_dual(what, &lse, 2e-5);
    /* the backward from the CPU's forward results on both sides */
    float *ho = fetch(cpu(), out.c, TH), *hl = fetch(cpu(), lse.c, (size_t)s.T * heads);
    dual o2 = dual_from(ho, TH), l2 = dual_from(hl, (size_t)s.T * heads);
    dual dout = dual_rand(TH, -1, 1), dq = dual_nan(TH), dk = dual_nan(TH), dv = dual_nan(TH);
    cpu()->attention_bwd(cpu(), dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, o2.c, l2.c, s.oc, B, s.T, heads, hd, dc);
    gpu()->attention_bwd(gpu(), dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, o2.g, l2.g, s.og, B, s.T, heads, hd, dg);
    snprintf(what, sizeof what, "attention_bwd dq (hd %d, heads %d, p %g)", hd, heads, p);
    check_dual(what, &dq, 1e-4);
    snprintf(what, sizeof what, "attention_bwd dk (hd %d, heads %d, p %g)", hd, heads, p);
    check_dual(what, &dk, 1e-4);
    snprintf(what, sizeof what, "attention_bwd dv (hd %d, heads %d, p %g)", hd, heads, p);
    check_dual(what, &dv, 1e-4);
    dual *all[] = {&q, &k, &v, &out, &lse, &o2, &l2, &dout, &dq, &dk, &dv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    free(ho), free(hl);
    free_seqs(&s);
}

Test(cuda_ops, attention_fwd_bwd_head_dims) {
    REQUIRE_GPU();
    seed_init();
    static const int lens[] = {1, 7, 32, 33, 64, 45};
    static const int hds[] = {32, 64, 80, 128};
    for (int i = 0; i < 4; i++) {
        attention_case(lens, small() ? 4 : 6, 2, hds[i], 0.0f, 0);
        attention_case(lens, small() ? 4 : 6, 3, hds[i], 0.1f, i & 1);
    }
}

Test(cuda_ops, attention_long_sequences) {
    REQUIRE_GPU();
    seed_init();
    static const int lens[] = {300, 65, 512, 2};
    attention_case(lens, small() ? 2 : 4, 2, 64, 0.1f, 1);
    if (!small()) attention_case(lens, 3, 1, 128, 0.0f, 0);
}

Test(cuda_ops, attention_dropout_mask_bit_identical) {
    REQUIRE_GPU();
    seed_init();
    /* q = k = 0: every probability is 1/L; v = one-hot rows e_j, so out[t, h, j] = f_j / L is
     * nonzero exactly where (row t*heads + h, key j) is kept. */
    static const int lens[] = {5, 40, 128, 77};
    const int B = 4, heads = 3, hd = 128;
    seqs s = make_seqs(lens, B, heads, hd);
    const size_t TH = (size_t)s.T * heads * hd;
    float *hz = calloc(TH, F), *hv = calloc(TH, F);
    for (int b = 0; b < B; b++)
        for (int t = s.off[b]; t < s.off[b + 1]; t++)
            for (int h = 0; h < heads; h++) hv[(size_t)t * heads * hd + (size_t)h * hd + (t - s.off[b])] = 1.0f;
    simcse_dropout d = {.seed = splitmix(), .step = (uint32_t)splitmix(), .site = (uint32_t)irand(1 << 20), .p = 0.3f};
    dual q = dual_from(hz, TH), k = dual_from(hz, TH), v = dual_from(hv, TH);
    dual out = dual_nan(TH), lse = dual_nan((size_t)s.T * heads);
    cpu()->attention_fwd(cpu(), out.c, lse.c, q.c, k.c, v.c, s.oc, B, s.T, heads, hd, d);
    gpu()->attention_fwd(gpu(), out.g, lse.g, q.g, k.g, v.g, s.og, B, s.T, heads, hd, d);
    check_same_zeros("attention probability mask", &out);
    check_dual("attention one-hot out", &out, 1e-6);
    /* with global row identities */
    simcse_dropout dc = d, dg = d;
    dc.row_ids = s.rc, dg.row_ids = s.rg;
    cpu()->attention_fwd(cpu(), out.c, lse.c, q.c, k.c, v.c, s.oc, B, s.T, heads, hd, dc);
    gpu()->attention_fwd(gpu(), out.g, lse.g, q.g, k.g, v.g, s.og, B, s.T, heads, hd, dg);
    check_same_zeros("attention probability mask (row_ids)", &out);
    check_dual("attention one-hot out (row_ids)", &out, 1e-6);
    dual *all[] = {&q, &k, &v, &out, &lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    free(hz), free(hv);
    free_seqs(&s);
}

/* ---------------- pooling ---------------- */

Test(cuda_ops, pooling_fwd_bwd) {
    REQUIRE_GPU();
    seed_init();
    static const int lens[] = {3, 1, 0, 17, 32, 5};
    const int B = 6, H = small() ? 40 : 768;
    seqs s = make_seqs(lens, B, 1, 1);
    dual x = dual_rand((size_t)s.T * H, -2, 2), out = dual_nan((size_t)B * H), dout = dual_rand((size_t)B * H, -1, 1);
    dual dx = dual_rand((size_t)s.T * H, -1, 1);
    cpu()->pool_first_fwd(cpu(), out.c, x.c, s.oc, B, H);
    gpu()->pool_first_fwd(gpu(), out.g, x.g, s.og, B, H);
    check_dual("pool_first_fwd", &out, 0.0);
    cpu()->pool_first_bwd(cpu(), dx.c, dout.c, s.oc, B, H);
    gpu()->pool_first_bwd(gpu(), dx.g, dout.g, s.og, B, H);
    check_dual("pool_first_bwd", &dx, 0.0);
    cpu()->pool_mean_fwd(cpu(), out.c, x.c, s.oc, B, H);
    gpu()->pool_mean_fwd(gpu(), out.g, x.g, s.og, B, H);
    check_dual("pool_mean_fwd", &out, 1e-6);
    cpu()->pool_mean_bwd(cpu(), dx.c, dout.c, s.oc, B, H);
    gpu()->pool_mean_bwd(gpu(), dx.g, dout.g, s.og, B, H);
    check_dual("pool_mean_bwd", &dx, 1e-6);
    dual *all[] = {&x, &out, &dout, &dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    free_seqs(&s);
}

/* ---------------- InfoNCE ---------------- */

/* C candidates: positives of the B anchors at target0.., and when hard a second half of hard
 * negatives (as several ranks' gathered candidates give target0 = rank * B). */
static void infonce_case(int B, int C, int H, float temp, float hn, float gs, int target0, int hard) {
    dual a = dual_rand((size_t)B * H, -1, 1), c = dual_rand((size_t)C * H, -1, 1);
    dual da = dual_nan((size_t)B * H), dc = dual_nan((size_t)C * H);
    float lc = NAN, lg = NAN;
    cpu()->infonce(cpu(), &lc, da.c, dc.c, a.c, c.c, B, C, H, temp, hn, gs, target0, hard);
    gpu()->infonce(gpu(), &lg, da.g, dc.g, a.g, c.g, B, C, H, temp, hn, gs, target0, hard);
    cr_assert(isfinite(lg) && fabs(lg - lc) <= 1e-5 * (fabs(lc) + 1e-3), "infonce loss gpu %.9g cpu %.9g (seed %llu)",
              lg, lc, (unsigned long long)g_seed);
    char what[96];
    snprintf(what, sizeof what, "infonce d_anchors (B %d C %d H %d hn %g t0 %d)", B, C, H, hn, target0);
    check_dual(what, &da, 1e-4);
    snprintf(what, sizeof what, "infonce d_cands (B %d C %d H %d hn %g t0 %d)", B, C, H, hn, target0);
    check_dual(what, &dc, 1e-4);
    dual *all[] = {&a, &c, &da, &dc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
}

Test(cuda_ops, infonce_unsup_and_hard_negatives) {
    REQUIRE_GPU();
    seed_init();
    infonce_case(16, 16, 96, 0.05f, 0.0f, 1.0f, 0, 0);
    infonce_case(16, 32, 96, 0.05f, 1.5f, 0.7f, 0, 1);
    infonce_case(3, 6, 5, 0.1f, 0.0f, 2.0f, 0, 0);
    infonce_case(8, 32, 64, 0.05f, 0.0f, 1.0f, 16, 0); /* rank 2 of 4, unsupervised */
    infonce_case(8, 64, 64, 0.05f, 1.0f, 1.0f, 8, 1);  /* rank 1 of 4, hard negatives */
    if (!small()) {
        infonce_case(64, 64, 768, 0.05f, 0.0f, 1.0f, 0, 0);
        infonce_case(64, 128, 768, 0.05f, 1.0f, 0.25f, 0, 1);
    }
}

/* ---------------- optimizer ---------------- */

Test(cuda_ops, sumsq_deterministic_double) {
    REQUIRE_GPU();
    seed_init();
    const size_t sizes[] = {1, 1000, small() ? 100003 : 3000017};
    for (int i = 0; i < 3; i++) {
        dual x = dual_rand(sizes[i], -3, 3);
        double c = 0, g1 = 0, g2 = 0;
        cpu()->sumsq(cpu(), &c, x.c, sizes[i]);
        gpu()->sumsq(gpu(), &g1, x.g, sizes[i]);
        gpu()->sumsq(gpu(), &g2, x.g, sizes[i]);
        cr_assert(fabs(g1 - c) <= 1e-10 * c, "sumsq n %zu: gpu %.17g cpu %.17g (seed %llu)", sizes[i], g1, c,
                  (unsigned long long)g_seed);
        cr_assert(memcmp(&g1, &g2, sizeof g1) == 0, "sumsq not deterministic: %.17g vs %.17g", g1, g2);
        dual_free(&x);
    }
}

Test(cuda_ops, adamw_steps) {
    REQUIRE_GPU();
    seed_init();
    const size_t n = small() ? 10007 : 1000003;
    dual p = dual_rand(n, -1, 1), g = dual_rand(n, -0.1f, 0.1f), m = dual_rand(n, -0.01f, 0.01f);
    dual v = dual_rand(n, 0, 1e-4f);
    for (int step = 1; step <= 3; step++) {
        cpu()->adamw(cpu(), p.c, g.c, m.c, v.c, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.8f, step);
        gpu()->adamw(gpu(), p.g, g.g, m.g, v.g, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.8f, step);
    }
    check_dual("adamw p", &p, 1e-6);
    check_dual("adamw m", &m, 1e-6);
    check_dual("adamw v", &v, 1e-6);
    dual *all[] = {&p, &g, &m, &v};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
}

/* ---------------- determinism ---------------- */

Test(cuda_ops, backward_passes_are_deterministic) {
    REQUIRE_GPU();
    seed_init();
    simcse_backend *g = gpu();
    static const int lens[] = {32, 17, 40};
    seqs s = make_seqs(lens, 3, 4, 64);
    const int H = 256;
    const size_t TH = (size_t)s.T * H;
    dual q = dual_rand(TH, -1, 1), k = dual_rand(TH, -1, 1), v = dual_rand(TH, -1, 1), dout = dual_rand(TH, -1, 1);
    dual o = dual_nan(TH), lse = dual_nan((size_t)s.T * 4), dq = dual_nan(TH), dk = dual_nan(TH), dv = dual_nan(TH);
    dual W = dual_rand((size_t)H * H, -1, 1), dW = dual_rand((size_t)H * H, -1, 1), db = dual_rand(H, -1, 1);
    simcse_dropout d = {.seed = 7, .step = 3, .site = 1, .p = 0.1f, .row_ids = s.rg};
    float *first[5] = {0};
    for (int rep = 0; rep < 2; rep++) {
        g->zero(g, dW.g, (size_t)H * H * F);
        g->zero(g, db.g, (size_t)H * F);
        g->attention_fwd(g, o.g, lse.g, q.g, k.g, v.g, s.og, 3, s.T, 4, 64, d);
        g->attention_bwd(g, dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, o.g, lse.g, s.og, 3, s.T, 4, 64, d);
        g->linear_bwd(g, NULL, dW.g, db.g, dout.g, q.g, W.g, s.T, H, H);
        float *now[5] = {fetch(g, dq.g, TH), fetch(g, dk.g, TH), fetch(g, dv.g, TH), fetch(g, dW.g, (size_t)H * H),
                         fetch(g, db.g, H)};
        const size_t sz[5] = {TH, TH, TH, (size_t)H * H, H};
        for (int i = 0; i < 5; i++) {
            if (rep == 0)
                first[i] = now[i];
            else {
                cr_assert(memcmp(first[i], now[i], sz[i] * F) == 0, "output %d differs between two identical runs", i);
                free(now[i]);
            }
        }
    }
    for (int i = 0; i < 5; i++) free(first[i]);
    dual *all[] = {&q, &k, &v, &dout, &o, &lse, &dq, &dk, &dv, &W, &dW, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free(all[i]);
    free_seqs(&s);
}

/* ---------------- bf16 mode ---------------- */

Test(cuda_ops, bf16_mode_within_1e2) {
    REQUIRE_GPU();
    seed_init();
    simcse_backend *g = gpu_bf16();
    cr_assert_neq(g, gpu(), "bf16 mode is a separate backend");
    linear_case(g, 37, 45, 29, 1, TOL_BF16);
    if (small())
        linear_case(g, 64, 128, 96, 1, TOL_BF16);
    else {
        linear_case(g, 128, 768, 768, 1, TOL_BF16);
        linear_case(g, 96, 768, 3072, 0, TOL_BF16);
    }
    /* the other ops run in fp32 in bf16 mode too: spot-check LayerNorm and InfoNCE there */
    const int N = 33, H = 768;
    float *hx = hrand((size_t)N * H, -2, 2), *hg = hrand(H, 0.5f, 1.5f), *hb = hrand(H, -1, 1);
    dual x = dual_on(g, hx, (size_t)N * H);
    dual gg = dual_on(g, hg, H), bb = dual_on(g, hb, H), y = dual_nan_on(g, (size_t)N * H), mu = dual_nan_on(g, N),
         rs = dual_nan_on(g, N);
    cpu()->layernorm_fwd(cpu(), y.c, mu.c, rs.c, x.c, NULL, gg.c, bb.c, N, H, 1e-12f);
    g->layernorm_fwd(g, y.g, mu.g, rs.g, x.g, NULL, gg.g, bb.g, N, H, 1e-12f);
    check_dual_on(g, "bf16-mode layernorm_fwd (fp32 inside)", &y, 1e-5);
    dual *all[] = {&x, &gg, &bb, &y, &mu, &rs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dual_free_on(g, all[i]);
    free(hx), free(hg), free(hb);
}
