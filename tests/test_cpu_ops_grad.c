/* Finite-difference checks of every CPU backward (suite cpu_ops).
 *
 * Each check runs the forward on a small random problem, takes J = sum(out * w) for a
 * fixed random w (the loss itself for InfoNCE), and compares the backward driven with
 * dout = w against central differences of J for every input and parameter element (see
 * tests/test_cpu_ops.h). The forward is fp32, so h = 1e-2 and a 0.2% relative tolerance
 * (plus 0.04% of the gradient's scale) leave room for rounding while still catching any
 * wrong term. Dropout masks are pure functions of their indices, so the checks also hold
 * with dropout on. */
#include "tests/test_cpu_ops.h"

#define H_STEP 1e-2f
#define RTOL 2e-3
#define ATOL 4e-4

/* ---- linear ---- */

typedef struct {
    int N, I, O;
    float *in, *W, *b, *out, *w;
} linear_ctx;

static double linear_obj(void *p) {
    linear_ctx *c = p;
    cpu()->linear_fwd(cpu(), c->out, c->in, c->W, c->b, c->N, c->I, c->O);
    return dot_w(c->out, c->w, (size_t)c->N * c->O);
}

static void linear_grad(int with_bias) {
    linear_ctx c = {.N = 5, .I = 7, .O = 6};
    c.in = rnd((size_t)c.N * c.I, -1, 1, 1);
    c.W = rnd((size_t)c.O * c.I, -1, 1, 2);
    c.b = with_bias ? rnd((size_t)c.O, -1, 1, 3) : NULL;
    c.out = zeros((size_t)c.N * c.O);
    c.w = rnd((size_t)c.N * c.O, -1, 1, 4);
    float *din = zeros((size_t)c.N * c.I), *dW = zeros((size_t)c.O * c.I), *db = zeros((size_t)c.O);
    cpu()->linear_bwd(cpu(), din, dW, with_bias ? db : NULL, c.w, c.in, c.W, c.N, c.I, c.O);
    check_grad("linear din", c.in, (size_t)c.N * c.I, din, linear_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("linear dW", c.W, (size_t)c.O * c.I, dW, linear_obj, &c, H_STEP, RTOL, ATOL);
    if (with_bias) check_grad("linear db", c.b, (size_t)c.O, db, linear_obj, &c, H_STEP, RTOL, ATOL);
    free(c.in), free(c.W), free(c.b), free(c.out), free(c.w), free(din), free(dW), free(db);
}

Test(cpu_ops, grad_linear_with_bias) { linear_grad(1); }
Test(cpu_ops, grad_linear_without_bias) { linear_grad(0); }

/* ---- embeddings ---- */

typedef struct {
    int T, H;
    int32_t *ids, *pos_ids, *type_ids;
    float *word, *pos, *type, *out, *w;
} embed_ctx;

static double embed_obj(void *p) {
    embed_ctx *c = p;
    cpu()->embed_fwd(cpu(), c->out, c->ids, c->pos_ids, c->type_ids, c->word, c->pos, c->type, c->T, c->H);
    return dot_w(c->out, c->w, (size_t)c->T * c->H);
}

static void embed_grad(int with_types) {
    int32_t ids[6] = {3, 1, 3, 0, 4, 3}, pos_ids[6] = {0, 1, 2, 0, 1, 2}, type_ids[6] = {0, 1, 1, 0, 0, 1};
    embed_ctx c = {.T = 6, .H = 5, .ids = ids, .pos_ids = pos_ids, .type_ids = with_types ? type_ids : NULL};
    const int V = 5, P = 4, TY = 2;
    c.word = rnd((size_t)V * c.H, -1, 1, 11);
    c.pos = rnd((size_t)P * c.H, -1, 1, 12);
    c.type = rnd((size_t)TY * c.H, -1, 1, 13);
    c.out = zeros((size_t)c.T * c.H);
    c.w = rnd((size_t)c.T * c.H, -1, 1, 14);
    float *dword = zeros((size_t)V * c.H), *dpos = zeros((size_t)P * c.H), *dtype = zeros((size_t)TY * c.H);
    cpu()->embed_bwd(cpu(), dword, dpos, dtype, c.w, c.ids, c.pos_ids, c.type_ids, c.T, c.H);
    /* word 2 and position 3 are never used: their gradient must stay exactly 0 (atol covers it) */
    check_grad("embed dword", c.word, (size_t)V * c.H, dword, embed_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("embed dpos", c.pos, (size_t)P * c.H, dpos, embed_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("embed dtype", c.type, (size_t)TY * c.H, dtype, embed_obj, &c, H_STEP, RTOL, ATOL);
    for (int h = 0; h < c.H; h++) {
        cr_assert_eq(dword[2 * c.H + h], 0.0f);
        cr_assert_eq(dpos[3 * c.H + h], 0.0f);
        if (!with_types) cr_assert_eq(dtype[c.H + h], 0.0f);
    }
    free(c.word), free(c.pos), free(c.type), free(c.out), free(c.w), free(dword), free(dpos), free(dtype);
}

Test(cpu_ops, grad_embed_with_type_ids) { embed_grad(1); }
Test(cpu_ops, grad_embed_without_type_ids) { embed_grad(0); }

/* ---- layernorm ---- */

typedef struct {
    int N, H;
    float *x, *res, *g, *b, *y, *mean, *rstd, *w;
} ln_ctx;

static double ln_obj(void *p) {
    ln_ctx *c = p;
    cpu()->layernorm_fwd(cpu(), c->y, c->mean, c->rstd, c->x, c->res, c->g, c->b, c->N, c->H, 1e-5f);
    return dot_w(c->y, c->w, (size_t)c->N * c->H);
}

static void layernorm_grad(int with_residual) {
    ln_ctx c = {.N = 4, .H = 9};
    const size_t n = (size_t)c.N * c.H;
    c.x = rnd(n, -2, 2, 21);
    c.res = with_residual ? rnd(n, -1, 1, 22) : NULL;
    c.g = rnd((size_t)c.H, 0.5f, 1.5f, 23);
    c.b = rnd((size_t)c.H, -0.5f, 0.5f, 24);
    c.y = zeros(n), c.mean = zeros((size_t)c.N), c.rstd = zeros((size_t)c.N);
    c.w = rnd(n, -1, 1, 25);
    ln_obj(&c);
    float *dx = zeros(n), *dg = zeros((size_t)c.H), *db = zeros((size_t)c.H);
    cpu()->layernorm_bwd(cpu(), dx, dg, db, c.w, c.x, c.res, c.mean, c.rstd, c.g, c.N, c.H);
    check_grad("layernorm dx", c.x, n, dx, ln_obj, &c, H_STEP, RTOL, ATOL);
    if (with_residual) check_grad("layernorm dresidual", c.res, n, dx, ln_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("layernorm dg", c.g, (size_t)c.H, dg, ln_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("layernorm db", c.b, (size_t)c.H, db, ln_obj, &c, H_STEP, RTOL, ATOL);
    free(c.x), free(c.res), free(c.g), free(c.b), free(c.y), free(c.mean), free(c.rstd), free(c.w);
    free(dx), free(dg), free(db);
}

Test(cpu_ops, grad_layernorm) { layernorm_grad(0); }
Test(cpu_ops, grad_layernorm_with_residual) { layernorm_grad(1); }

/* ---- elementwise: gelu, tanh, dropout ---- */

typedef struct {
    size_t n;
    int rows, cols;
    float *x, *y, *w;
    int which; /* 0 gelu, 1 tanh, 2 dropout */
    simcse_dropout d;
} ew_ctx;

static double ew_obj(void *p) {
    ew_ctx *c = p;
    if (c->which == 0) cpu()->gelu_fwd(cpu(), c->y, c->x, c->n);
    if (c->which == 1) cpu()->tanh_fwd(cpu(), c->y, c->x, c->n);
    if (c->which == 2) cpu()->dropout(cpu(), c->y, c->x, c->rows, c->cols, c->d);
    return dot_w(c->y, c->w, c->n);
}

static void elementwise_grad(int which) {
    ew_ctx c = {.rows = 6, .cols = 10, .which = which, .d = {.seed = 17, .step = 3, .site = 5, .p = 0.3f}};
    c.n = (size_t)c.rows * c.cols;
    c.x = rnd(c.n, -3, 3, 31);
    c.y = zeros(c.n);
    c.w = rnd(c.n, -1, 1, 32);
    float *dx = zeros(c.n);
    ew_obj(&c);
    if (which == 0) cpu()->gelu_bwd(cpu(), dx, c.w, c.x, c.n);
    if (which == 1) cpu()->tanh_bwd(cpu(), dx, c.w, c.y, c.n);
    if (which == 2) cpu()->dropout(cpu(), dx, c.w, c.rows, c.cols, c.d);
    const char *name[] = {"gelu", "tanh", "dropout"};
    check_grad(name[which], c.x, c.n, dx, ew_obj, &c, H_STEP, RTOL, ATOL);
    free(c.x), free(c.y), free(c.w), free(dx);
}

Test(cpu_ops, grad_gelu) { elementwise_grad(0); }
Test(cpu_ops, grad_tanh) { elementwise_grad(1); }
Test(cpu_ops, grad_dropout) { elementwise_grad(2); }

/* ---- attention ---- */

typedef struct {
    int B, T, heads, hd;
    const int32_t *offsets;
    float *q, *k, *v, *out, *lse, *w;
    simcse_dropout d;
} attn_ctx;

static double attn_obj(void *p) {
    attn_ctx *c = p;
    cpu()->attention_fwd(cpu(), c->out, c->lse, c->q, c->k, c->v, c->offsets, c->B, c->T, c->heads, c->hd, c->d);
    return dot_w(c->out, c->w, (size_t)c->T * c->heads * c->hd);
}

static void attention_grad(float p) {
    static const int32_t offsets[5] = {0, 3, 4, 9, 11}; /* lengths 3, 1, 5, 2 */
    attn_ctx c = {
        .B = 4, .T = 11, .heads = 2, .hd = 4, .offsets = offsets, .d = {.seed = 99, .step = 7, .site = 2, .p = p}};
    const size_t n = (size_t)c.T * c.heads * c.hd;
    c.q = rnd(n, -1.5f, 1.5f, 41), c.k = rnd(n, -1.5f, 1.5f, 42), c.v = rnd(n, -1, 1, 43);
    c.out = zeros(n), c.lse = zeros((size_t)c.T * c.heads), c.w = rnd(n, -1, 1, 44);
    attn_obj(&c);
    float *dq = rnd(n, 5, 6, 45), *dk = rnd(n, 5, 6, 46), *dv = rnd(n, 5, 6, 47); /* garbage: must be overwritten */
    cpu()->attention_bwd(cpu(), dq, dk, dv, c.w, c.q, c.k, c.v, c.out, c.lse, c.offsets, c.B, c.T, c.heads, c.hd, c.d);
    check_grad("attention dq", c.q, n, dq, attn_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("attention dk", c.k, n, dk, attn_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("attention dv", c.v, n, dv, attn_obj, &c, H_STEP, RTOL, ATOL);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.lse), free(c.w), free(dq), free(dk), free(dv);
}

Test(cpu_ops, grad_attention) { attention_grad(0.0f); }
Test(cpu_ops, grad_attention_with_dropout) { attention_grad(0.25f); }

/* ---- pooling ---- */

typedef struct {
    int B, H, mean;
    const int32_t *offsets;
    float *x, *out, *w;
} pool_ctx;

static double pool_obj(void *p) {
    pool_ctx *c = p;
    if (c->mean)
        cpu()->pool_mean_fwd(cpu(), c->out, c->x, c->offsets, c->B, c->H);
    else
        cpu()->pool_first_fwd(cpu(), c->out, c->x, c->offsets, c->B, c->H);
    return dot_w(c->out, c->w, (size_t)c->B * c->H);
}

static void pool_grad(int mean) {
    static const int32_t offsets[4] = {0, 4, 5, 8};
    pool_ctx c = {.B = 3, .H = 6, .mean = mean, .offsets = offsets};
    c.x = rnd((size_t)8 * c.H, -1, 1, 51), c.out = zeros((size_t)c.B * c.H), c.w = rnd((size_t)c.B * c.H, -1, 1, 52);
    float *dx = zeros((size_t)8 * c.H);
    if (mean)
        cpu()->pool_mean_bwd(cpu(), dx, c.w, c.offsets, c.B, c.H);
    else
        cpu()->pool_first_bwd(cpu(), dx, c.w, c.offsets, c.B, c.H);
    check_grad(mean ? "pool_mean" : "pool_first", c.x, (size_t)8 * c.H, dx, pool_obj, &c, H_STEP, RTOL, ATOL);
    free(c.x), free(c.out), free(c.w), free(dx);
}

Test(cpu_ops, grad_pool_first) { pool_grad(0); }
Test(cpu_ops, grad_pool_mean) { pool_grad(1); }

/* ---- InfoNCE ---- */

typedef struct {
    int B, C, H, t0, hard;
    float temp, hn, gs;
    float *a, *c, *da, *dc;
} nce_ctx;

static double nce_obj(void *p) {
    nce_ctx *c = p;
    float loss = 0.0f;
    cpu()->infonce(cpu(), &loss, c->da, c->dc, c->a, c->c, c->B, c->C, c->H, c->temp, c->hn, c->gs, c->t0, c->hard);
    return (double)loss * c->gs;
}

/* ranks > 1: the anchors are rows t0.. of candidate blocks gathered from `ranks` ranks */
static void infonce_grad(int hard, int ranks, int t0) {
    nce_ctx c = {.B = 4, .H = 6, .temp = 0.1f, .hn = hard ? 0.7f : 0.0f, .gs = 0.75f, .t0 = t0, .hard = hard};
    c.C = (hard ? 2 : 1) * c.B * ranks;
    c.a = rnd((size_t)c.B * c.H, -1, 1, 61), c.c = rnd((size_t)c.C * c.H, -1, 1, 62);
    c.da = zeros((size_t)c.B * c.H), c.dc = zeros((size_t)c.C * c.H);
    nce_obj(&c);
    float *da = copyf(c.da, (size_t)c.B * c.H), *dc = copyf(c.dc, (size_t)c.C * c.H);
    check_grad("infonce d_anchors", c.a, (size_t)c.B * c.H, da, nce_obj, &c, H_STEP, RTOL, ATOL);
    check_grad("infonce d_cands", c.c, (size_t)c.C * c.H, dc, nce_obj, &c, H_STEP, RTOL, ATOL);
    free(c.a), free(c.c), free(c.da), free(c.dc), free(da), free(dc);
}

Test(cpu_ops, grad_infonce_in_batch) { infonce_grad(0, 1, 0); }
Test(cpu_ops, grad_infonce_hard_negatives) { infonce_grad(1, 1, 0); }
Test(cpu_ops, grad_infonce_gathered_candidates) { infonce_grad(1, 3, 4); }
