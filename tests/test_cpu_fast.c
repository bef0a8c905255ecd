/* The CPU backend's fast path (OpenBLAS GEMMs, the thread pool) against the plain loops it
 * keeps beside it (simcse_backend_cpu_reference), op by op on fresh random inputs, at
 * several thread counts; the pool itself; and the thread-count rules.
 *
 * What each op owes: GEMM-based ops (linear, InfoNCE, attention) agree with the reference
 * to float rounding of a sum of K products; ops that only split rows or columns over threads
 * (LayerNorm, AdamW) give the reference's bits exactly. Every op gives the same bits when
 * called again at the same thread count, and our own ops (not OpenBLAS's kernel choice)
 * the same bits at every thread count. Odd sizes (not multiples of the 16-row GEMM blocks)
 * and more tasks than threads are the point of the shapes chosen. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"
#include "tests/test_cpu_ops.h"

static simcse_backend *ref(void) { return simcse_backend_cpu_reference(); }

static const int thread_counts[] = {1, 2, 3, 5};
#define N_COUNTS (int)(sizeof thread_counts / sizeof thread_counts[0])

static void restore_threads(void) { simcse_cpu_set_threads(0); }

/* |got - want| <= tol * (1 + |want|) elementwise */
static void close_f(const char *what, const float *got, const float *want, size_t n, double tol) {
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i])), "%s[%zu]: %.8g vs reference %.8g",
                  what, i, got[i], want[i]);
}

static void same_bits(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        cr_assert(memcmp(&a[i], &b[i], sizeof(float)) == 0, "%s[%zu]: %.9g vs %.9g (bits differ)", what, i, a[i], b[i]);
}

/* ---- linear ---- */

static void linear_case(int N, int I, int O) {
    float *in = rnd((size_t)N * I, -1, 1, 201), *W = rnd((size_t)O * I, -1, 1, 202), *b = rnd((size_t)O, -1, 1, 203);
    float *g = rnd((size_t)N * O, -1, 1, 204), *dW0 = rnd((size_t)O * I, -1, 1, 205), *db0 = rnd((size_t)O, -1, 1, 206);
    const size_t nout = (size_t)N * O, nin = (size_t)N * I, nw = (size_t)O * I;
    float *ro = zeros(nout), *rdin = zeros(nin), *rdW = copyf(dW0, nw), *rdb = copyf(db0, (size_t)O);
    ref()->linear_fwd(ref(), ro, in, W, b, N, I, O);
    ref()->linear_bwd(ref(), rdin, rdW, rdb, g, in, W, N, I, O);
    for (int c = 0; c < N_COUNTS; c++) {
        simcse_cpu_set_threads(thread_counts[c]);
        float *o = rnd(nout, 7, 8, 207), *din = rnd(nin, 7, 8, 208), *dW = copyf(dW0, nw), *db = copyf(db0, (size_t)O);
        cpu()->linear_fwd(cpu(), o, in, W, b, N, I, O);
        cpu()->linear_bwd(cpu(), din, dW, db, g, in, W, N, I, O);
        close_f("linear out", o, ro, nout, 1e-6 * sqrt((double)I));
        close_f("linear din", din, rdin, nin, 1e-6 * sqrt((double)O));
        close_f("linear dW", dW, rdW, nw, 1e-6 * sqrt((double)N));
        close_f("linear db", db, rdb, (size_t)O, 1e-6 * sqrt((double)N));
        /* again: the same bits */
        float *o2 = zeros(nout), *din2 = zeros(nin), *dW2 = copyf(dW0, nw), *db2 = copyf(db0, (size_t)O);
        cpu()->linear_fwd(cpu(), o2, in, W, b, N, I, O);
        cpu()->linear_bwd(cpu(), din2, dW2, db2, g, in, W, N, I, O);
        same_bits("linear out again", o2, o, nout);
        same_bits("linear din again", din2, din, nin);
        same_bits("linear dW again", dW2, dW, nw);
        same_bits("linear db again", db2, db, (size_t)O);
        /* no bias, no din: out is the bare product, dW still accumulates */
        cpu()->linear_fwd(cpu(), o2, in, W, NULL, N, I, O);
        ref()->linear_fwd(ref(), ro, in, W, NULL, N, I, O);
        close_f("linear out (no bias)", o2, ro, nout, 1e-6 * sqrt((double)I));
        ref()->linear_fwd(ref(), ro, in, W, b, N, I, O);
        free(o), free(din), free(dW), free(db), free(o2), free(din2), free(dW2), free(db2);
    }
    restore_threads();
    free(in), free(W), free(b), free(g), free(dW0), free(db0), free(ro), free(rdin), free(rdW), free(rdb);
}

Test(cpu_fast, linear_matches_reference_at_every_thread_count) {
    linear_case(1, 7, 5);
    linear_case(37, 19, 53);    /* below the threading threshold */
    linear_case(130, 96, 200);  /* split by rows, ragged last block */
    linear_case(20, 64, 900);   /* split by columns */
    linear_case(301, 128, 384); /* several blocks per thread count */
}

Test(cpu_fast, linear_empty_shapes) {
    float in[6] = {1, 2, 3, 4, 5, 6}, W[1] = {0}, b[3] = {1, 2, 3}, out[6], din[6], dW[1] = {0};
    for (int i = 0; i < 6; i++) out[i] = din[i] = 9;
    cpu()->linear_fwd(cpu(), out, in, W, b, 2, 0, 3); /* I = 0: out = bias */
    for (int i = 0; i < 6; i++) cr_assert_eq(out[i], b[i % 3]);
    cpu()->linear_bwd(cpu(), din, dW, NULL, out, in, W, 2, 3, 0); /* O = 0: din = 0 */
    for (int i = 0; i < 6; i++) cr_assert_eq(din[i], 0.0f);
}

/* ---- InfoNCE ---- */

static void infonce_case(int B, int C, int H, int hard, int t0) {
    float *a = rnd((size_t)B * H, -1, 1, 211), *c = rnd((size_t)C * H, -1, 1, 212);
    if (B > 1) memset(a + H, 0, (size_t)H * sizeof(float)); /* a zero vector: the clamped branch */
    float rl, *rda = zeros((size_t)B * H), *rdc = zeros((size_t)C * H);
    ref()->infonce(ref(), &rl, rda, rdc, a, c, B, C, H, 0.05f, 0.3f, 0.5f, t0, hard);
    for (int k = 0; k < N_COUNTS; k++) {
        simcse_cpu_set_threads(thread_counts[k]);
        float l, *da = rnd((size_t)B * H, 7, 8, 213), *dc = rnd((size_t)C * H, 7, 8, 214);
        cpu()->infonce(cpu(), &l, da, dc, a, c, B, C, H, 0.05f, 0.3f, 0.5f, t0, hard);
        cr_assert(fabsf(l - rl) <= 1e-5f * fmaxf(1, fabsf(rl)), "loss %.8g vs reference %.8g", l, rl);
        /* per row, relative to the row's largest element (the zero anchor's row is 1e8 larger) */
        for (int pass = 0; pass < 2; pass++) {
            const int rows = pass ? C : B;
            const float *got = pass ? dc : da, *want = pass ? rdc : rda;
            for (int i = 0; i < rows; i++) {
                double scale = 0;
                for (int h = 0; h < H; h++) scale = fmax(scale, fabs(want[(size_t)i * H + h]));
                for (int h = 0; h < H; h++) {
                    const size_t x = (size_t)i * H + h;
                    cr_assert(fabs(got[x] - want[x]) <= 1e-5 * scale, "%s[%d][%d] %.8g vs reference %.8g",
                              pass ? "d_cands" : "d_anchors", i, h, got[x], want[x]);
                }
            }
        }
        free(da), free(dc);
    }
    restore_threads();
    free(a), free(c), free(rda), free(rdc);
}

Test(cpu_fast, infonce_matches_reference) {
    infonce_case(8, 8, 33, 0, 0);
    infonce_case(64, 128, 384, 1, 0);
    infonce_case(16, 96, 64, 1, 16); /* gathered candidates of three ranks */
}

/* ---- attention ---- */

static void attention_case(float p, int heads, int hd) {
    const int B = 6;
    int32_t off[7] = {0, 5, 5, 38, 39, 71, 100}; /* an empty sequence, one of one token, 33 > a GEMM block */
    const int T = off[B], H = heads * hd;
    int32_t *rows = malloc((size_t)T * sizeof *rows);
    for (int t = 0; t < T; t++) rows[t] = 3 * t + 1; /* global rows, not the packed index */
    simcse_dropout d = {.seed = 77, .step = 3, .site = 4, .p = p, .row_ids = rows};
    const size_t n = (size_t)T * H;
    float *q = rnd(n, -1, 1, 221), *k = rnd(n, -1, 1, 222), *v = rnd(n, -1, 1, 223), *g = rnd(n, -1, 1, 224);
    float *ro = zeros(n), *rl = zeros((size_t)T * heads), *rdq = zeros(n), *rdk = zeros(n), *rdv = zeros(n);
    ref()->attention_fwd(ref(), ro, rl, q, k, v, off, B, T, heads, hd, d);
    ref()->attention_bwd(ref(), rdq, rdk, rdv, g, q, k, v, ro, rl, off, B, T, heads, hd, d);
    float *first[5] = {0};
    for (int c = 0; c < N_COUNTS; c++) {
        simcse_cpu_set_threads(thread_counts[c]);
        float *o = rnd(n, 7, 8, 225), *l = rnd((size_t)T * heads, 7, 8, 226);
        float *dq = rnd(n, 7, 8, 227), *dk = rnd(n, 7, 8, 228), *dv = rnd(n, 7, 8, 229);
        cpu()->attention_fwd(cpu(), o, l, q, k, v, off, B, T, heads, hd, d);
        cpu()->attention_bwd(cpu(), dq, dk, dv, g, q, k, v, o, l, off, B, T, heads, hd, d);
        close_f("attention out", o, ro, n, 2e-6);
        close_f("attention lse", l, rl, (size_t)T * heads, 2e-6);
        close_f("attention dq", dq, rdq, n, 1e-5);
        close_f("attention dk", dk, rdk, n, 1e-5);
        close_f("attention dv", dv, rdv, n, 1e-5);
        float *got[5] = {o, l, dq, dk, dv};
        size_t len[5] = {n, (size_t)T * heads, n, n, n};
        for (int i = 0; i < 5; i++) {
            if (c == 0)
                first[i] = got[i];
            else {
                same_bits("attention vs one thread", got[i], first[i], len[i]);
                free(got[i]);
            }
        }
    }
    restore_threads();
    for (int i = 0; i < 5; i++) free(first[i]);
    free(rows), free(q), free(k), free(v), free(g), free(ro), free(rl), free(rdq), free(rdk), free(rdv);
}

Test(cpu_fast, attention_matches_reference_same_bits_at_every_thread_count) {
    attention_case(0.0f, 3, 8);
    attention_case(0.2f, 3, 8);
    attention_case(0.1f, 2, 64);
}

/* ---- LayerNorm, AdamW, sumsq: the reference's bits ---- */

Test(cpu_fast, layernorm_gives_the_reference_bits) {
    const int N = 701, H = 200; /* 140,200 elements: four row / column blocks */
    const size_t n = (size_t)N * H;
    float *x = rnd(n, -3, 5, 231), *r = rnd(n, -1, 1, 232), *g = rnd(H, 0.5f, 1.5f, 233), *b = rnd(H, -1, 1, 234);
    float *dy = rnd(n, -1, 1, 235), *dg0 = rnd(H, -1, 1, 236), *db0 = rnd(H, -1, 1, 237);
    float *ry = zeros(n), *rm = zeros(N), *rs = zeros(N), *rdx = zeros(n), *rdg = copyf(dg0, H), *rdb = copyf(db0, H);
    ref()->layernorm_fwd(ref(), ry, rm, rs, x, r, g, b, N, H, 1e-12f);
    ref()->layernorm_bwd(ref(), rdx, rdg, rdb, dy, x, r, rm, rs, g, N, H);
    for (int c = 0; c < N_COUNTS; c++) {
        simcse_cpu_set_threads(thread_counts[c]);
        float *y = zeros(n), *m = zeros(N), *s = zeros(N), *dx = rnd(n, 7, 8, 238), *dg = copyf(dg0, H),
              *db = copyf(db0, H);
        cpu()->layernorm_fwd(cpu(), y, m, s, x, r, g, b, N, H, 1e-12f);
        cpu()->layernorm_bwd(cpu(), dx, dg, db, dy, x, r, m, s, g, N, H);
        same_bits("layernorm y", y, ry, n);
        same_bits("layernorm mean", m, rm, N);
        same_bits("layernorm rstd", s, rs, N);
        same_bits("layernorm dx", dx, rdx, n);
        same_bits("layernorm dg", dg, rdg, H);
        same_bits("layernorm db", db, rdb, H);
        /* dx in place over dy (the backward may overwrite its input gradient) */
        float *dyc = copyf(dy, n), *dg2 = copyf(dg0, H), *db2 = copyf(db0, H);
        cpu()->layernorm_bwd(cpu(), dyc, dg2, db2, dyc, x, r, m, s, g, N, H);
        same_bits("layernorm dx in place", dyc, rdx, n);
        same_bits("layernorm dg (dx in place)", dg2, rdg, H);
        free(y), free(m), free(s), free(dx), free(dg), free(db), free(dyc), free(dg2), free(db2);
    }
    restore_threads();
    free(x), free(r), free(g), free(b), free(dy), free(dg0), free(db0), free(ry), free(rm), free(rs), free(rdx),
        free(rdg), free(rdb);
}

Test(cpu_fast, adamw_gives_the_reference_bits_and_sumsq_one_value) {
    const size_t n = 300007; /* several AdamW ranges and sumsq blocks, a ragged end */
    float *p0 = rnd(n, -1, 1, 241), *g = rnd(n, -1, 1, 242), *m0 = rnd(n, -0.1f, 0.1f, 243),
          *v0 = rnd(n, 0, 0.01f, 244);
    float *rp = copyf(p0, n), *rm = copyf(m0, n), *rv = copyf(v0, n);
    ref()->adamw(ref(), rp, g, rm, rv, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.7f, 5);
    /* sumsq input: blocks of very different magnitudes, so the order of adding them shows */
    float *sq = copyf(g, n);
    for (size_t i = 0; i < n; i++) sq[i] *= powf(10.0f, (float)((i >> 16) % 5) - 2.0f) * (1.0f + (float)(i % 3));
    double rss, first = 0;
    ref()->sumsq(ref(), &rss, sq, n);
    for (int c = 0; c < N_COUNTS; c++) {
        simcse_cpu_set_threads(thread_counts[c]);
        float *p = copyf(p0, n), *m = copyf(m0, n), *v = copyf(v0, n);
        cpu()->adamw(cpu(), p, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.7f, 5);
        same_bits("adamw p", p, rp, n);
        same_bits("adamw m", m, rm, n);
        same_bits("adamw v", v, rv, n);
        double ss;
        cpu()->sumsq(cpu(), &ss, sq, n);
        cr_assert(fabs(ss - rss) <= 1e-12 * rss, "sumsq %.17g vs reference %.17g", ss, rss);
        if (c == 0) first = ss;
        cr_assert(memcmp(&ss, &first, sizeof ss) == 0, "sumsq at %d threads %.17g vs %.17g at one", thread_counts[c],
                  ss, first);
        free(p), free(m), free(v);
    }
    restore_threads();
    free(p0), free(g), free(m0), free(v0), free(rp), free(rm), free(rv), free(sq);
}

/* ---- the pool ---- */

typedef struct {
    int *hits;
    int nested;
} count_ctx;

static void count_task(void *arg, int t) {
    count_ctx *c = arg;
    __atomic_fetch_add(&c->hits[t], 1, __ATOMIC_RELAXED);
    if (c->nested) { /* a task that parallelises again runs inline, and completely */
        count_ctx inner = {.hits = c->hits + 1000 + 10 * t, .nested = 0};
        cpu_parallel(10, count_task, &inner);
    }
}

Test(cpu_fast, pool_runs_every_task_once, .timeout = 60) {
    int *hits = calloc(2000, sizeof *hits);
    for (int c = 0; c < N_COUNTS; c++) {
        simcse_cpu_set_threads(thread_counts[c]);
        for (int rep = 0; rep < 50; rep++) {
            memset(hits, 0, 2000 * sizeof *hits);
            count_ctx ctx = {.hits = hits, .nested = rep % 2};
            cpu_parallel(97, count_task, &ctx);
            for (int t = 0; t < 97; t++) cr_assert_eq(hits[t], 1, "task %d ran %d times", t, hits[t]);
            if (ctx.nested)
                for (int t = 0; t < 970; t++)
                    cr_assert_eq(hits[1000 + t], 1, "nested task %d ran %d times", t, hits[t]);
        }
    }
    restore_threads();
    free(hits);
}

/* Several caller threads at once (the ranks of --ranks): each gets its own complete,
 * correct result while the others hold the pool. */
typedef struct {
    float *out, *want, *in, *W;
    int N, I, O, ok;
} rank_job;

static void *rank_main(void *arg) {
    rank_job *j = arg;
    j->ok = 1;
    for (int rep = 0; rep < 20; rep++) {
        memset(j->out, 0, (size_t)j->N * j->O * sizeof(float));
        cpu()->linear_fwd(cpu(), j->out, j->in, j->W, NULL, j->N, j->I, j->O);
        if (memcmp(j->out, j->want, (size_t)j->N * j->O * sizeof(float)) != 0) j->ok = 0;
    }
    return NULL;
}

Test(cpu_fast, pool_shared_by_concurrent_callers, .timeout = 60) {
    simcse_cpu_set_threads(3);
    const int N = 200, I = 64, O = 96;
    rank_job jobs[4];
    pthread_t th[4];
    for (int r = 0; r < 4; r++) {
        jobs[r] = (rank_job){.in = rnd((size_t)N * I, -1, 1, 251 + r),
                             .W = rnd((size_t)O * I, -1, 1, 261 + r),
                             .out = zeros((size_t)N * O),
                             .want = zeros((size_t)N * O),
                             .N = N,
                             .I = I,
                             .O = O};
        cpu()->linear_fwd(cpu(), jobs[r].want, jobs[r].in, jobs[r].W, NULL, N, I, O);
    }
    for (int r = 0; r < 4; r++) cr_assert_eq(pthread_create(&th[r], NULL, rank_main, &jobs[r]), 0);
    for (int r = 0; r < 4; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < 4; r++) {
        cr_assert(jobs[r].ok, "caller %d got a result other than the pool's own", r);
        free(jobs[r].in), free(jobs[r].W), free(jobs[r].out), free(jobs[r].want);
    }
    restore_threads();
}

/* ---- the thread count ---- */

Test(cpu_fast, thread_count_from_flag_env_then_affinity) {
    cr_assert_eq(simcse_cpu_set_threads(3), 3);
    cr_assert_eq(simcse_cpu_threads(), 3);
    setenv("OMP_NUM_THREADS", "4", 1);
    cr_assert_eq(simcse_cpu_set_threads(0), 4);
    setenv("OMP_NUM_THREADS", "2,1", 1); /* OpenMP's nested list: the outer level */
    cr_assert_eq(simcse_cpu_set_threads(0), 2);
    const char *bad[] = {"0", "-2", "abc", "3x", "99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("OMP_NUM_THREADS", bad[i], 1);
        simcse_clear_error();
        cr_assert_eq(simcse_cpu_set_threads(0), -1, "OMP_NUM_THREADS=%s accepted", bad[i]);
        cr_assert(strstr(simcse_last_error(), "OMP_NUM_THREADS") != NULL, "message: %s", simcse_last_error());
    }
    unsetenv("OMP_NUM_THREADS");
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    cr_assert_eq(simcse_cpu_set_threads(0), CPU_COUNT(&set));
    /* a narrower mask (taskset, cgroups, Slurm) narrows the default */
    if (CPU_COUNT(&set) > 1) {
        cpu_set_t one;
        CPU_ZERO(&one);
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) {
                CPU_SET(c, &one);
                break;
            }
        cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
        cr_assert_eq(simcse_cpu_set_threads(0), 1);
        sched_setaffinity(0, sizeof set, &set);
    }
    cr_assert_eq(simcse_cpu_set_threads(-1), -1);
    restore_threads();
}

/* ---- elementwise ops and embeddings: the reference's bits ---- */

Test(cpu_fast, elementwise_and_embeddings_give_the_reference_bits) {
    const int T = 613, H = 160, V = 50; /* 98,080 elements; ids repeat */
    const size_t n = (size_t)T * H;
    float *x = rnd(n, -4, 4, 271), *g = rnd(n, -1, 1, 272);
    float *word = rnd((size_t)V * H, -1, 1, 273), *pe = rnd(64 * (size_t)H, -1, 1, 274),
          *te = rnd(2 * (size_t)H, -1, 1, 275);
    int32_t *ids = malloc((size_t)T * 4), *pos = malloc((size_t)T * 4), *types = malloc((size_t)T * 4),
            *rows = malloc((size_t)T * 4);
    for (int t = 0; t < T; t++) ids[t] = (t * 7) % V, pos[t] = t % 64, types[t] = t % 3 == 0, rows[t] = 5 * t + 2;
    simcse_dropout d = {.seed = 9, .step = 2, .site = 5, .p = 0.1f, .row_ids = rows};
    float *want[9], *got[9];
    for (int pass = 0; pass <= N_COUNTS; pass++) { /* pass 0: the reference */
        simcse_backend *be = pass ? cpu() : ref();
        if (pass) simcse_cpu_set_threads(thread_counts[pass - 1]);
        float **o = pass ? got : want;
        for (int i = 0; i < 9; i++) o[i] = zeros(i < 7 ? n : (size_t)V * H);
        be->gelu_fwd(be, o[0], x, n);
        be->gelu_bwd(be, o[1], g, x, n);
        be->tanh_fwd(be, o[2], x, n);
        be->tanh_bwd(be, o[3], g, o[2], n);
        be->add(be, o[4], x, g, n);
        memcpy(o[5], x, n * sizeof(float));
        be->scale(be, o[5], -0.37f, n);
        be->dropout(be, o[6], x, T, H, d);
        be->embed_fwd(be, o[4], ids, pos, types, word, pe, te, T, H); /* overwrites add's output */
        float *dpos = zeros(64 * (size_t)H);
        be->embed_bwd(be, o[7], dpos, o[8], g, ids, pos, types, T, H); /* o[8]: the type table's gradient */
        free(dpos);
        if (pass) {
            const char *names[9] = {"gelu", "gelu'", "tanh", "tanh'", "embed", "scale", "dropout", "dword", "dtype"};
            for (int i = 0; i < 9; i++) {
                same_bits(names[i], got[i], want[i], i < 7 ? n : (i == 7 ? (size_t)V * H : 2 * (size_t)H));
                free(got[i]);
            }
        }
    }
    restore_threads();
    for (int i = 0; i < 9; i++) free(want[i]);
    free(x), free(g), free(word), free(pe), free(te), free(ids), free(pos), free(types), free(rows);
}
