/* bench_kernels: per-op microbenchmarks through the backend interface (ops.h), at
 * the shapes a SimCSE step runs, each set against ceilings measured in the same run.
 *
 * Design choices
 * - Everything goes through simcse_backend (simcse_backend_select), so the same
 *   program measures the CPU reference and the CUDA backend; no kernel is called
 *   directly.
 * - Ceilings first: a large square GEMM through linear_fwd (the "measured GEMM
 *   rate") and a device-to-device be->copy (bandwidth counted as bytes read +
 *   written). Each op then reports its roofline fraction: the time the ceilings
 *   allow, max(FLOPs / GEMM rate, bytes / copy bandwidth), over the measured time,
 *   and which side binds. FLOPs are model FLOPs (attention backward: 4 products, no
 *   recomputation); bytes are the least traffic of the op in fp32 elements (inputs
 *   read once, outputs written once, accumulated gradients read and written), so
 *   a bf16 backend that stores activations in 2 bytes can exceed 100% on the
 *   memory side.
 * - Timing: one warm call, one call to size the repetitions, then 5 batches of
 *   back-to-back calls with be->sync after each batch; the median batch gives the
 *   time per call (launch overhead included, as in a step).
 * - Buffers are filled from a seeded host generator and uploaded once; each group
 *   of ops allocates its own and frees them, so peak memory stays that of the
 *   largest group. Accumulating outputs (dW, dg) are left to grow: values stay
 *   finite for the repetition counts used.
 * - --small shrinks every size so the CPU reference finishes in well under a minute. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_common.h"
#include "simcse/cli.h"
#include "simcse/embedder.h"
#include "simcse/model.h"
#include "simcse/optimizer.h"

typedef struct {
    const char *model, *device, *precision, *json;
    int batch, seq, infonce_n, gemm_n, copy_mib, small;
    double min_time;
} options;

typedef struct {
    simcse_backend *be;
    const options *o;
    const char *precision;
    double gemm_flops, copy_bps; /* the ceilings, per second */
    uint64_t rng;
} bench;

typedef void (*op_fn)(void *arg);

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: bench_kernels [options]\n"
        "  --model M        base or large (or tiny / PATH/config.json): hidden, intermediate and heads (default base)\n"
        "  --batch B        examples; the ops see T = 2 * B * L tokens and 2B sequences (default 64)\n"
        "  --seq L          tokens per sequence (default 32)\n"
        "  --infonce-n N    anchors = candidates for InfoNCE (default 4096)\n"
        "  --gemm N         square GEMM for the compute ceiling (default 8192)\n"
        "  --copy-mib M     buffer for the copy-bandwidth ceiling (default 1024)\n"
        "  --min-time S     seconds of timed calls per op (default 0.5)\n"
        "  --small          CPU-sized: tiny model, B=4, N=256, GEMM 512, 32 MiB, 0.05 s\n"
        "  --device D       cpu, cuda or auto (default auto)\n"
        "  --precision P    fp32 or bf16 (default fp32; the CPU always runs fp32)\n"
        "  --json FILE      also append one JSON line per op to FILE\n");
}

static void parse(int argc, char **argv, options *o) {
    *o = (options){.model = NULL,
                   .device = "auto",
                   .precision = "fp32",
                   .batch = 0,
                   .seq = 32,
                   .infonce_n = 0,
                   .gemm_n = 0,
                   .copy_mib = 0,
                   .min_time = 0};
    const char *min_time = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(argv[i], "--small")) {
            o->small = 1;
            continue;
        }
        const char *a = argv[i];
        if ((r = simcse_arg_str(argc, argv, &i, "--model", &o->model)) ||
            (r = simcse_arg_str(argc, argv, &i, "--device", &o->device)) ||
            (r = simcse_arg_str(argc, argv, &i, "--precision", &o->precision)) ||
            (r = simcse_arg_str(argc, argv, &i, "--json", &o->json)) ||
            (r = simcse_arg_str(argc, argv, &i, "--min-time", &min_time)) ||
            (r = simcse_arg_int(argc, argv, &i, "--batch", 1, 1 << 20, &o->batch)) ||
            (r = simcse_arg_int(argc, argv, &i, "--seq", 1, 1 << 16, &o->seq)) ||
            (r = simcse_arg_int(argc, argv, &i, "--infonce-n", 2, 1 << 20, &o->infonce_n)) ||
            (r = simcse_arg_int(argc, argv, &i, "--gemm", 16, 1 << 16, &o->gemm_n)) ||
            (r = simcse_arg_int(argc, argv, &i, "--copy-mib", 1, 1 << 20, &o->copy_mib))) {
            if (r < 0) bench_die("%s", simcse_last_error());
            continue;
        }
        fprintf(stderr, "bench_kernels: unknown option '%s'\n", a);
        usage(stderr);
        exit(1);
    }
    if (min_time) {
        char *end;
        o->min_time = strtod(min_time, &end);
        if (end == min_time || *end || !(o->min_time > 0 && o->min_time < 3600))
            bench_die("--min-time: expected seconds in (0, 3600), got '%s'", min_time);
    }
    /* explicit options win over --small's sizes */
    if (!o->model) o->model = o->small ? "tiny" : "base";
    if (!o->batch) o->batch = o->small ? 4 : 64;
    if (!o->infonce_n) o->infonce_n = o->small ? 256 : 4096;
    if (!o->gemm_n) o->gemm_n = o->small ? 512 : 8192;
    if (!o->copy_mib) o->copy_mib = o->small ? 32 : 1024;
    if (!o->min_time) o->min_time = o->small ? 0.05 : 0.5;
}

/* ---- buffers ---- */

static float *dev_rand(bench *b, size_t n, float scale) {
    float *h = simcse_xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = scale * bench_rand_f(&b->rng);
    float *d = bench_alloc(b->be, n * sizeof *d, "a random input");
    b->be->to_device(b->be, d, h, n * sizeof *d);
    free(h);
    return d;
}
static float *dev_const(bench *b, size_t n, float v) {
    float *h = simcse_xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = v;
    float *d = bench_alloc(b->be, n * sizeof *d, "a constant input");
    b->be->to_device(b->be, d, h, n * sizeof *d);
    free(h);
    return d;
}
static float *dev_zero(bench *b, size_t n) {
    float *d = bench_alloc(b->be, n * sizeof *d, "an output");
    b->be->zero(b->be, d, n * sizeof *d);
    return d;
}
/* offsets of S sequences of L tokens and the global dropout rows (s * L + j) */
static int32_t *dev_offsets(bench *b, int S, int L) {
    int32_t *h = simcse_xmalloc(((size_t)S + 1) * sizeof *h);
    for (int s = 0; s <= S; s++) h[s] = s * L;
    int32_t *d = bench_alloc(b->be, ((size_t)S + 1) * sizeof *d, "offsets");
    b->be->to_device(b->be, d, h, ((size_t)S + 1) * sizeof *d);
    free(h);
    return d;
}
static int32_t *dev_rows(bench *b, int T) {
    int32_t *h = simcse_xmalloc((size_t)T * sizeof *h);
    for (int t = 0; t < T; t++) h[t] = t;
    int32_t *d = bench_alloc(b->be, (size_t)T * sizeof *d, "row ids");
    b->be->to_device(b->be, d, h, (size_t)T * sizeof *d);
    free(h);
    return d;
}
static void dev_free(bench *b, void *p) { b->be->free(b->be, p); }

/* ---- timing and reporting ---- */

static double time_op(bench *b, op_fn fn, void *arg) {
    simcse_backend *be = b->be;
    fn(arg); /* warm: lazy initialisation, caches */
    be->sync(be);
    double t0 = simcse_now_seconds();
    fn(arg);
    be->sync(be);
    double est = simcse_now_seconds() - t0;
    const int batches = 5;
    double per = b->o->min_time / batches;
    long reps = est > 0 ? (long)(per / est) : 100000;
    if (reps < 1) reps = 1;
    if (reps > 100000) reps = 100000;
    double s[5];
    for (int k = 0; k < batches; k++) {
        t0 = simcse_now_seconds();
        for (long r = 0; r < reps; r++) fn(arg);
        be->sync(be);
        s[k] = (simcse_now_seconds() - t0) / (double)reps;
    }
    return bench_median(s, batches);
}

/* Prints and records one op: seconds per call, model FLOPs and least bytes per call. */
static void report(bench *b, const char *op, const char *shape, double sec, double flops, double bytes) {
    double tf = flops > 0 ? flops / sec / 1e12 : NAN, gbs = bytes > 0 ? bytes / sec / 1e9 : NAN;
    double t_compute = b->gemm_flops > 0 ? flops / b->gemm_flops : 0, t_mem = b->copy_bps > 0 ? bytes / b->copy_bps : 0;
    const char *bound = t_compute >= t_mem ? "compute" : "memory";
    double frac = (t_compute > t_mem ? t_compute : t_mem) / sec;
    char tfs[16] = "-", gbss[16] = "-", fracs[16] = "-";
    if (flops > 0) snprintf(tfs, sizeof tfs, "%.3f", tf);
    if (bytes > 0) snprintf(gbss, sizeof gbss, "%.1f", gbs);
    if (b->gemm_flops > 0 && b->copy_bps > 0) snprintf(fracs, sizeof fracs, "%.1f%%", 100 * frac);
    printf("%-28s %-30s %10.4f %9s %9s %-8s %8s\n", op, shape, sec * 1e3, tfs, gbss, bound, fracs);
    fflush(stdout);
    if (!b->o->json) return;
    bench_json j = {.n = 0};
    bench_json_common(&j, "kernel", b->be, b->precision);
    bench_json_str(&j, "op", op);
    bench_json_str(&j, "shape", shape);
    bench_json_str(&j, "model", b->o->model);
    bench_json_num(&j, "ms", sec * 1e3);
    bench_json_num(&j, "flops", flops);
    bench_json_num(&j, "bytes", bytes);
    bench_json_num(&j, "tflops", tf);
    bench_json_num(&j, "gb_per_s", gbs);
    bench_json_str(&j, "bound", bound);
    bench_json_num(&j, "roofline_fraction", b->gemm_flops > 0 && b->copy_bps > 0 ? frac : NAN);
    bench_json_num(&j, "ceiling_gemm_tflops", b->gemm_flops / 1e12);
    bench_json_num(&j, "ceiling_copy_gb_per_s", b->copy_bps / 1e9);
    bench_json_emit(&j, b->o->json, 0); /* stdout already has the table row */
}

/* ---- ops ---- */

typedef struct {
    simcse_backend *be;
    float *out, *in, *W, *bias, *din, *dW, *db, *dout;
    int N, I, O;
} lin_args;
static void lin_fwd(void *p) {
    lin_args *a = p;
    a->be->linear_fwd(a->be, a->out, a->in, a->W, a->bias, a->N, a->I, a->O);
}
static void lin_bwd(void *p) {
    lin_args *a = p;
    a->be->linear_bwd(a->be, a->din, a->dW, a->db, a->dout, a->in, a->W, a->N, a->I, a->O);
}

typedef struct {
    simcse_backend *be;
    void *dst, *src;
    size_t bytes;
} copy_args;
static void copy_op(void *p) {
    copy_args *a = p;
    a->be->copy(a->be, a->dst, a->src, a->bytes);
}

static void ceilings(bench *b) {
    const int n = b->o->gemm_n;
    lin_args g = {.be = b->be, .N = n, .I = n, .O = n};
    g.in = dev_rand(b, (size_t)n * n, 1.0f);
    g.W = dev_rand(b, (size_t)n * n, 0.02f);
    g.out = dev_zero(b, (size_t)n * n);
    const double gsec = time_op(b, lin_fwd, &g), gf = 2.0 * n * n * (double)n;
    dev_free(b, g.in);
    dev_free(b, g.W);
    dev_free(b, g.out);

    copy_args c = {.be = b->be, .bytes = (size_t)b->o->copy_mib << 20};
    c.src = dev_rand(b, c.bytes / sizeof(float), 1.0f);
    c.dst = dev_zero(b, c.bytes / sizeof(float));
    const double csec = time_op(b, copy_op, &c);
    dev_free(b, c.src);
    dev_free(b, c.dst);

    b->gemm_flops = gf / gsec;
    b->copy_bps = 2.0 * (double)c.bytes / csec;
    char shape[64];
    snprintf(shape, sizeof shape, "%d x %d x %d", n, n, n);
    report(b, "gemm (ceiling, linear_fwd)", shape, gsec, gf, 0);
    snprintf(shape, sizeof shape, "%d MiB", b->o->copy_mib);
    report(b, "copy (ceiling, be->copy)", shape, csec, 0, 2.0 * (double)c.bytes);
}

static void linears(bench *b, int T, int H, int I) {
    const struct {
        const char *name;
        int in, out;
    } shapes[] = {{"q/k/v/attn-out", H, H}, {"fc1 (H -> I)", H, I}, {"fc2 (I -> H)", I, H}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int N = T, In = shapes[k].in, O = shapes[k].out;
        lin_args a = {.be = b->be, .N = N, .I = In, .O = O};
        a.in = dev_rand(b, (size_t)N * In, 1.0f);
        a.W = dev_rand(b, (size_t)O * In, 0.02f);
        a.bias = dev_rand(b, (size_t)O, 0.02f);
        a.out = dev_zero(b, (size_t)N * O);
        a.dout = dev_rand(b, (size_t)N * O, 1e-3f);
        a.din = dev_zero(b, (size_t)N * In);
        a.dW = dev_zero(b, (size_t)O * In);
        a.db = dev_zero(b, (size_t)O);
        char name[64], shape[64];
        snprintf(shape, sizeof shape, "T=%d %dx%d", N, In, O);
        const double f = 2.0 * N * (double)In * O;
        snprintf(name, sizeof name, "linear fwd %s", shapes[k].name);
        report(b, name, shape, time_op(b, lin_fwd, &a), f, 4.0 * ((double)N * In + (double)O * In + O + (double)N * O));
        snprintf(name, sizeof name, "linear bwd %s", shapes[k].name);
        report(b, name, shape, time_op(b, lin_bwd, &a), 2 * f + (double)N * O,
               4.0 * ((double)N * O + 2.0 * N * In + 3.0 * O * In + 2.0 * O));
        float *bufs[] = {a.in, a.W, a.bias, a.out, a.dout, a.din, a.dW, a.db};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dev_free(b, bufs[i]);
    }
}

typedef struct {
    simcse_backend *be;
    float *y, *x, *res, *g, *beta, *mean, *rstd, *dx, *dg, *db, *dy;
    int N, H;
    size_t n;
    simcse_dropout d;
} elt_args;
static void ln_fwd(void *p) {
    elt_args *a = p;
    a->be->layernorm_fwd(a->be, a->y, a->mean, a->rstd, a->x, a->res, a->g, a->beta, a->N, a->H, 1e-12f);
}
static void ln_bwd(void *p) {
    elt_args *a = p;
    a->be->layernorm_bwd(a->be, a->dx, a->dg, a->db, a->dy, a->x, a->res, a->mean, a->rstd, a->g, a->N, a->H);
}
static void gelu_fwd(void *p) {
    elt_args *a = p;
    a->be->gelu_fwd(a->be, a->y, a->x, a->n);
}
static void gelu_bwd(void *p) {
    elt_args *a = p;
    a->be->gelu_bwd(a->be, a->dx, a->dy, a->x, a->n);
}
static void dropout_op(void *p) {
    elt_args *a = p;
    a->be->dropout(a->be, a->y, a->x, a->N, a->H, a->d);
}

static void elementwise(bench *b, int T, int H, int I) {
    elt_args a = {.be = b->be, .N = T, .H = H};
    const size_t th = (size_t)T * H;
    a.x = dev_rand(b, th, 1.0f);
    a.res = dev_rand(b, th, 1.0f);
    a.g = dev_const(b, (size_t)H, 1.0f);
    a.beta = dev_zero(b, (size_t)H);
    a.y = dev_zero(b, th);
    a.mean = dev_zero(b, (size_t)T);
    a.rstd = dev_zero(b, (size_t)T);
    a.dy = dev_rand(b, th, 1e-3f);
    a.dx = dev_zero(b, th);
    a.dg = dev_zero(b, (size_t)H);
    a.db = dev_zero(b, (size_t)H);
    int32_t *rows = dev_rows(b, T);
    char shape[64];
    snprintf(shape, sizeof shape, "[%d, %d] + residual", T, H);
    report(b, "layernorm fwd", shape, time_op(b, ln_fwd, &a), 0, 4.0 * (3.0 * th + 2.0 * H + 2.0 * T));
    report(b, "layernorm bwd", shape, time_op(b, ln_bwd, &a), 0, 4.0 * (4.0 * th + 2.0 * T + 5.0 * H));
    a.d = (simcse_dropout){.seed = 1, .step = 0, .site = 1, .p = 0.1f, .row_ids = rows};
    snprintf(shape, sizeof shape, "[%d, %d] p=0.1", T, H);
    report(b, "dropout", shape, time_op(b, dropout_op, &a), 0, 4.0 * (2.0 * th + T));
    float *bufs[] = {a.x, a.res, a.g, a.beta, a.y, a.mean, a.rstd, a.dy, a.dx, a.dg, a.db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dev_free(b, bufs[i]);
    dev_free(b, rows);

    elt_args gl = {.be = b->be, .n = (size_t)T * I};
    gl.x = dev_rand(b, gl.n, 2.0f);
    gl.y = dev_zero(b, gl.n);
    gl.dy = dev_rand(b, gl.n, 1e-3f);
    gl.dx = dev_zero(b, gl.n);
    snprintf(shape, sizeof shape, "[%d, %d]", T, I);
    report(b, "gelu fwd", shape, time_op(b, gelu_fwd, &gl), 0, 4.0 * 2.0 * (double)gl.n);
    report(b, "gelu bwd", shape, time_op(b, gelu_bwd, &gl), 0, 4.0 * 3.0 * (double)gl.n);
    float *gb[] = {gl.x, gl.y, gl.dy, gl.dx};
    for (size_t i = 0; i < sizeof gb / sizeof gb[0]; i++) dev_free(b, gb[i]);
}

typedef struct {
    simcse_backend *be;
    float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv;
    int32_t *offsets;
    int S, T, heads, hd;
    simcse_dropout d;
} attn_args;
static void attn_fwd(void *p) {
    attn_args *a = p;
    a->be->attention_fwd(a->be, a->out, a->lse, a->q, a->k, a->v, a->offsets, a->S, a->T, a->heads, a->hd, a->d);
}
static void attn_bwd(void *p) {
    attn_args *a = p;
    a->be->attention_bwd(a->be, a->dq, a->dk, a->dv, a->dout, a->q, a->k, a->v, a->out, a->lse, a->offsets, a->S, a->T,
                         a->heads, a->hd, a->d);
}
static void attn_fwd_bwd(void *p) {
    attn_fwd(p);
    attn_bwd(p);
}

static void attention(bench *b, int S, int L, int heads, int hd) {
    const int T = S * L, H = heads * hd;
    const size_t th = (size_t)T * H;
    attn_args a = {.be = b->be, .S = S, .T = T, .heads = heads, .hd = hd};
    a.q = dev_rand(b, th, 1.0f);
    a.k = dev_rand(b, th, 1.0f);
    a.v = dev_rand(b, th, 1.0f);
    a.out = dev_zero(b, th);
    a.lse = dev_zero(b, (size_t)T * heads);
    a.dout = dev_rand(b, th, 1e-3f);
    a.dq = dev_zero(b, th);
    a.dk = dev_zero(b, th);
    a.dv = dev_zero(b, th);
    a.offsets = dev_offsets(b, S, L);
    int32_t *rows = dev_rows(b, T);
    a.d = (simcse_dropout){.seed = 1, .step = 0, .site = 2, .p = 0.1f, .row_ids = rows};
    char shape[64];
    snprintf(shape, sizeof shape, "%d seqs x %d, %d x %d, p=0.1", S, L, heads, hd);
    const double f1 = 4.0 * S * (double)L * L * H; /* QK^T and PV */
    const double bf = 4.0 * (4.0 * th + (double)T * heads + T), bb = 4.0 * (8.0 * th + (double)T * heads + T);
    report(b, "attention fwd", shape, time_op(b, attn_fwd, &a), f1, bf);
    report(b, "attention bwd", shape, time_op(b, attn_bwd, &a), 2 * f1, bb);
    report(b, "attention fwd+bwd", shape, time_op(b, attn_fwd_bwd, &a), 3 * f1, bf + bb);
    float *bufs[] = {a.q, a.k, a.v, a.out, a.lse, a.dout, a.dq, a.dk, a.dv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dev_free(b, bufs[i]);
    dev_free(b, a.offsets);
    dev_free(b, rows);
}

typedef struct {
    simcse_backend *be;
    float *a, *c, *da, *dc;
    int N, H;
    float loss;
} nce_args;
static void nce_op(void *p) {
    nce_args *a = p;
    a->be->infonce(a->be, &a->loss, a->da, a->dc, a->a, a->c, a->N, a->N, a->H, 0.05f, 0.0f, 1.0f, 0, 0);
}

static void infonce(bench *b, int N, int H) {
    nce_args a = {.be = b->be, .N = N, .H = H};
    const size_t nh = (size_t)N * H;
    a.a = dev_rand(b, nh, 1.0f);
    a.c = dev_rand(b, nh, 1.0f);
    a.da = dev_zero(b, nh);
    a.dc = dev_zero(b, nh);
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d d=%d temp=0.05", N, H);
    report(b, "infonce fwd+bwd", shape, time_op(b, nce_op, &a), 6.0 * N * (double)N * H, 4.0 * 4.0 * (double)nh);
    if (!isfinite(a.loss)) bench_die("infonce: loss %g", a.loss);
    float *bufs[] = {a.a, a.c, a.da, a.dc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dev_free(b, bufs[i]);
}

typedef struct {
    simcse_backend *be;
    simcse_optimizer *opt;
    float *p, *g;
    size_t n;
} opt_args;
static void optim_step(void *p) {
    opt_args *a = p;
    simcse_optimizer_step(a->opt, a->p, a->g, NULL);
}
static void adamw_op(void *p) {
    opt_args *a = p;
    a->be->adamw(a->be, a->p, a->g, a->opt->m, a->opt->v, a->n, 3e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, 1);
}

static void optimizer(bench *b, const simcse_config *cfg) {
    simcse_model m;
    bench_check(simcse_model_init(&m, cfg), "optimizer layout");
    const simcse_adamw_config ac = {.lr = 3e-5,
                                    .beta1 = 0.9,
                                    .beta2 = 0.999,
                                    .eps = 1e-8,
                                    .weight_decay = 0.01,
                                    .max_grad_norm = 1.0,
                                    .warmup_steps = 0,
                                    .total_steps = 1 << 30,
                                    .linear_decay = 0};
    simcse_optimizer opt;
    bench_check(simcse_optimizer_init(&opt, b->be, &m, &ac), "optimizer");
    opt_args a = {.be = b->be, .opt = &opt, .n = m.n_floats};
    a.p = dev_rand(b, m.n_floats, 0.02f);
    a.g = dev_rand(b, m.n_floats, 1e-3f);
    char shape[64];
    snprintf(shape, sizeof shape, "%.1fM params, %d tensors", m.n_floats / 1e6, m.n_tensors);
    const double n = (double)m.n_floats;
    report(b, "optimizer step (norm+adamw)", shape, time_op(b, optim_step, &a), 0, 4.0 * 8.0 * n);
    snprintf(shape, sizeof shape, "%.1fM params, one call", m.n_floats / 1e6);
    report(b, "adamw (one buffer)", shape, time_op(b, adamw_op, &a), 0, 4.0 * 7.0 * n);
    dev_free(b, a.p);
    dev_free(b, a.g);
    simcse_optimizer_free(&opt);
    simcse_model_free(&m);
}

int main(int argc, char **argv) {
    bench_prog = "bench_kernels";
    options o;
    parse(argc, argv, &o);
    simcse_config cfg;
    bench_model_config(o.model, &cfg);
    if (cfg.hidden % cfg.heads)
        bench_die("--model %s: hidden %d is not a multiple of %d heads", o.model, cfg.hidden, cfg.heads);
    simcse_backend *be = simcse_backend_select(o.device, o.precision, 0);
    if (!be) bench_die("%s", simcse_last_error());
    bench b = {.be = be, .o = &o, .precision = bench_is_cpu(be) ? "fp32" : o.precision, .rng = 12345};
    const int S = 2 * o.batch, T = S * o.seq;
    if ((int64_t)S * o.seq > (1 << 30)) bench_die("--batch %d x --seq %d: too many tokens", o.batch, o.seq);
    printf("bench_kernels: %s %s | model %s (H %d, I %d, %d heads of %d) | B=%d L=%d: %d sequences, T=%d tokens | "
           "%.2f s per op\n",
           be->name, b.precision, o.model, cfg.hidden, cfg.intermediate, cfg.heads, cfg.hidden / cfg.heads, o.batch,
           o.seq, S, T, o.min_time);
    printf("%-28s %-30s %10s %9s %9s %-8s %8s\n", "op", "shape", "ms", "TFLOP/s", "GB/s", "bound", "roofline");
    ceilings(&b);
    linears(&b, T, cfg.hidden, cfg.intermediate);
    elementwise(&b, T, cfg.hidden, cfg.intermediate);
    attention(&b, S, o.seq, cfg.heads, cfg.hidden / cfg.heads);
    infonce(&b, o.infonce_n, cfg.hidden);
    optimizer(&b, &cfg);
    printf("bench_kernels: ceilings measured in this run: GEMM %.3f TFLOP/s (%s linear_fwd, %d^3), copy %.1f GB/s "
           "(read + write, %d MiB); peak host RSS %.0f MiB\n",
           b.gemm_flops / 1e12, b.precision, o.gemm_n, b.copy_bps / 1e9, o.copy_mib, bench_peak_rss_mib());
    return 0;
}
