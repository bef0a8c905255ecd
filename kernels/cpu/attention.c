/* Multi-head self-attention over packed sequences.
 *
 * For sequence s (tokens [o_s, o_{s+1}), L of them), head h and query token t:
 *     S_j = (q_t . k_j) * scale,  scale = 1.0f / sqrtf(hd)      (float dot products)
 *     lse = m + log(sum_j exp(S_j - m)),  m = max_j S_j         (the sum in double)
 *     P_j = exp(S_j - lse)                                      (softmax, recomputable from lse)
 *     out_t = sum_j P_j * f_j * v_j
 * with f_j the dropout factor of rng row row_ids[t]*heads + h (t the packed token), element j
 * (the key position within its sequence): 0 if dropped, 1/(1-p) if kept; f = 1 when p == 0.
 * This is PyTorch's dropout(softmax(scores)) @ v. lse is saved at lse[t*heads + h].
 *
 * The backward recomputes P from lse and regenerates the same mask; with g = dout_t:
 *     dv_j += P_j f_j g,   dP_j = f_j (g . v_j),   D = sum_j P_j dP_j   (double),
 *     dS_j = P_j (dP_j - D),   dq_t = scale sum_j dS_j k_j,   dk_j += scale dS_j q_t.
 * D is computed from P directly, not from rowsum(dout * out) as a fused kernel would, so
 * `out` is unused here and the oracle does not depend on the forward it is checking.
 *
 * cpu_ref_attention_fwd / _bwd compute exactly that, query by query, in plain loops: the
 * oracle. cpu_attention_fwd / _bwd are the same mathematics as matrix products, one task
 * per (sequence, head) on the thread pool: S = scale Q K^T, P' = (P * f), out = P' V; and
 * back dV = P'^T dO, dP = f * (dO V^T), dS = P (dP - D) scale, dQ = dS K, dK = dS^T Q, each
 * product one small cblas_sgemm on the task's rows (leading dimension heads*hd). A task
 * writes only its own sequence's rows of its head's columns, so the split does not change
 * any result. Scratch rows are as long as the sequence. */
#include "kernels/cpu/blas.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"

typedef struct {
    float *s, *p, *f, *dp;
    uint32_t *u;
} scratch;

static int max_len(const int32_t *offsets, int B) {
    int m = 1;
    for (int b = 0; b < B; b++)
        if (offsets[b + 1] - offsets[b] > m) m = offsets[b + 1] - offsets[b];
    return m;
}

static scratch scratch_new(int L) {
    scratch w;
    w.s = simcse_xmalloc((size_t)L * sizeof(float));
    w.p = simcse_xmalloc((size_t)L * sizeof(float));
    w.f = simcse_xmalloc((size_t)L * sizeof(float));
    w.dp = simcse_xmalloc((size_t)L * sizeof(float));
    w.u = simcse_xmalloc((size_t)L * sizeof(uint32_t));
    return w;
}

static void scratch_free(scratch *w) {
    free(w->s);
    free(w->p);
    free(w->f);
    free(w->dp);
    free(w->u);
}

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Scores of query t against keys [t0, t0+L) of head h into w->s; returns their max. */
static float scores(float *s, const float *qt, const float *k, int t0, int L, int H, int hoff, int hd, float scale) {
    float m = -INFINITY;
    for (int j = 0; j < L; j++) {
        s[j] = dot(qt, k + (size_t)(t0 + j) * H + hoff, hd) * scale;
        if (s[j] > m) m = s[j];
    }
    return m;
}

static void factors(float *f, uint32_t *u, simcse_dropout d, int t, int heads, int h, int L) {
    if (d.p > 0.0f)
        cpu_dropout_row_factor(d, (d.row_ids ? (uint64_t)d.row_ids[t] : (uint64_t)t) * (uint64_t)heads + (uint64_t)h, f,
                               u, L);
    else
        for (int j = 0; j < L; j++) f[j] = 1.0f;
}

void cpu_ref_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                           const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d) {
    (void)be;
    (void)T;
    const int H = heads * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    scratch w = scratch_new(max_len(offsets, B));
    for (int b = 0; b < B; b++) {
        const int t0 = offsets[b], L = offsets[b + 1] - offsets[b];
        for (int h = 0; h < heads; h++) {
            const int hoff = h * hd;
            for (int t = t0; t < t0 + L; t++) {
                const float m = scores(w.s, q + (size_t)t * H + hoff, k, t0, L, H, hoff, hd, scale);
                double sum = 0.0;
                for (int j = 0; j < L; j++) sum += expf(w.s[j] - m);
                const float l = m + (float)log(sum);
                lse[(size_t)t * heads + h] = l;
                factors(w.f, w.u, d, t, heads, h, L);
                float *o = out + (size_t)t * H + hoff;
                memset(o, 0, (size_t)hd * sizeof(float));
                for (int j = 0; j < L; j++) {
                    const float pj = expf(w.s[j] - l) * w.f[j];
                    const float *vj = v + (size_t)(t0 + j) * H + hoff;
                    for (int e = 0; e < hd; e++) o[e] += pj * vj[e];
                }
            }
        }
    }
    scratch_free(&w);
}

void cpu_ref_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets,
                           int B, int T, int heads, int hd, simcse_dropout d) {
    (void)be;
    (void)out;
    const int H = heads * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    memset(dq, 0, (size_t)T * H * sizeof(float));
    memset(dk, 0, (size_t)T * H * sizeof(float));
    memset(dv, 0, (size_t)T * H * sizeof(float));
    scratch w = scratch_new(max_len(offsets, B));
    for (int b = 0; b < B; b++) {
        const int t0 = offsets[b], L = offsets[b + 1] - offsets[b];
        for (int h = 0; h < heads; h++) {
            const int hoff = h * hd;
            for (int t = t0; t < t0 + L; t++) {
                const float *qt = q + (size_t)t * H + hoff;
                const float *g = dout + (size_t)t * H + hoff;
                const float l = lse[(size_t)t * heads + h];
                scores(w.s, qt, k, t0, L, H, hoff, hd, scale);
                factors(w.f, w.u, d, t, heads, h, L);
                double D = 0.0;
                for (int j = 0; j < L; j++) {
                    const size_t rj = (size_t)(t0 + j) * H + hoff;
                    w.p[j] = expf(w.s[j] - l);
                    const float pd = w.p[j] * w.f[j];
                    float *dvj = dv + rj;
                    for (int e = 0; e < hd; e++) dvj[e] += pd * g[e];
                    w.dp[j] = w.f[j] * dot(g, v + rj, hd);
                    D += (double)w.p[j] * w.dp[j];
                }
                float *dqt = dq + (size_t)t * H + hoff;
                for (int j = 0; j < L; j++) {
                    const size_t rj = (size_t)(t0 + j) * H + hoff;
                    const float ds = w.p[j] * (float)(w.dp[j] - D) * scale;
                    const float *kj = k + rj;
                    float *dkj = dk + rj;
                    for (int e = 0; e < hd; e++) {
                        dqt[e] += ds * kj[e];
                        dkj[e] += ds * qt[e];
                    }
                }
            }
        }
    }
    scratch_free(&w);
}

/* ---- the fast path: one (sequence, head) per task, products through BLAS ---- */

typedef struct {
    float *out, *lse, *dq, *dk, *dv;
    const float *q, *k, *v, *dout, *lse_in;
    const int32_t *offsets;
    int heads, hd;
    simcse_dropout d;
} attn_job;

/* S[L,L] = scale * Q K^T for sequence b, head h */
static void attn_scores(const attn_job *j, float *S, int t0, int L, int hoff) {
    const int H = j->heads * j->hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, j->hd, 1.0f / sqrtf((float)j->hd),
                j->q + (size_t)t0 * H + hoff, H, j->k + (size_t)t0 * H + hoff, H, 0.0f, S, L);
}

static void attn_fwd_task(void *arg, int task) {
    const attn_job *j = arg;
    const int b = task / j->heads, h = task % j->heads, hoff = h * j->hd, H = j->heads * j->hd;
    const int t0 = j->offsets[b], L = j->offsets[b + 1] - t0;
    if (L <= 0) return;
    float *S = simcse_xmalloc((size_t)L * L * sizeof(float));
    float *f = simcse_xmalloc((size_t)L * sizeof(float));
    uint32_t *u = simcse_xmalloc((size_t)L * sizeof(uint32_t));
    attn_scores(j, S, t0, L, hoff);
    for (int r = 0; r < L; r++) {
        float *s = S + (size_t)r * L;
        float m = -INFINITY;
        for (int c = 0; c < L; c++)
            if (s[c] > m) m = s[c];
        double sum = 0.0;
        for (int c = 0; c < L; c++) sum += expf(s[c] - m);
        const float l = m + (float)log(sum);
        j->lse[(size_t)(t0 + r) * j->heads + h] = l;
        factors(f, u, j->d, t0 + r, j->heads, h, L);
        for (int c = 0; c < L; c++) s[c] = expf(s[c] - l) * f[c];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, j->hd, L, 1.0f, S, L, j->v + (size_t)t0 * H + hoff, H,
                0.0f, j->out + (size_t)t0 * H + hoff, H);
    free(S);
    free(f);
    free(u);
}

/* rows [first, T) belong to no sequence: zero them, as the oracle does */
static void zero_tail(float *x, const int32_t *offsets, int B, int T, int H) {
    if (offsets[B] < T) memset(x + (size_t)offsets[B] * H, 0, (size_t)(T - offsets[B]) * H * sizeof(float));
}

void cpu_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                       const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d) {
    (void)be;
    if (B <= 0 || heads <= 0 || hd <= 0) return;
    attn_job j = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .offsets = offsets, .heads = heads, .hd = hd, .d = d};
    cpu_parallel(B * heads, attn_fwd_task, &j);
    (void)T;
}

static void attn_bwd_task(void *arg, int task) {
    const attn_job *j = arg;
    const int b = task / j->heads, h = task % j->heads, hoff = h * j->hd, H = j->heads * j->hd;
    const int t0 = j->offsets[b], L = j->offsets[b + 1] - t0;
    if (L <= 0) return;
    const float scale = 1.0f / sqrtf((float)j->hd);
    float *P = simcse_xmalloc((size_t)L * L * sizeof(float));  /* P, then dS */
    float *Pd = simcse_xmalloc((size_t)L * L * sizeof(float)); /* P * f */
    float *dP = simcse_xmalloc((size_t)L * L * sizeof(float));
    float *F = simcse_xmalloc((size_t)L * L * sizeof(float));
    uint32_t *u = simcse_xmalloc((size_t)L * sizeof(uint32_t));
    const float *go = j->dout + (size_t)t0 * H + hoff, *vv = j->v + (size_t)t0 * H + hoff;
    attn_scores(j, P, t0, L, hoff);
    for (int r = 0; r < L; r++) {
        const float l = j->lse_in[(size_t)(t0 + r) * j->heads + h];
        float *p = P + (size_t)r * L, *fr = F + (size_t)r * L, *pd = Pd + (size_t)r * L;
        factors(fr, u, j->d, t0 + r, j->heads, h, L);
        for (int c = 0; c < L; c++) {
            p[c] = expf(p[c] - l);
            pd[c] = p[c] * fr[c];
        }
    }
    /* dV = P'^T dO;  dP = f * (dO V^T) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, j->hd, L, 1.0f, Pd, L, go, H, 0.0f,
                j->dv + (size_t)t0 * H + hoff, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, j->hd, 1.0f, go, H, vv, H, 0.0f, dP, L);
    for (int r = 0; r < L; r++) {
        float *p = P + (size_t)r * L, *dp = dP + (size_t)r * L;
        const float *fr = F + (size_t)r * L;
        double D = 0.0;
        for (int c = 0; c < L; c++) {
            dp[c] *= fr[c];
            D += (double)p[c] * dp[c];
        }
        for (int c = 0; c < L; c++) p[c] = p[c] * (float)(dp[c] - D) * scale; /* dS */
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, j->hd, L, 1.0f, P, L, j->k + (size_t)t0 * H + hoff, H,
                0.0f, j->dq + (size_t)t0 * H + hoff, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, j->hd, L, 1.0f, P, L, j->q + (size_t)t0 * H + hoff, H, 0.0f,
                j->dk + (size_t)t0 * H + hoff, H);
    free(P);
    free(Pd);
    free(dP);
    free(F);
    free(u);
}

void cpu_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets,
                       int B, int T, int heads, int hd, simcse_dropout d) {
    (void)be;
    (void)out;
    const int H = heads * hd;
    if (B <= 0 || heads <= 0 || hd <= 0) {
        if (T > 0 && H > 0) {
            memset(dq, 0, (size_t)T * H * sizeof(float));
            memset(dk, 0, (size_t)T * H * sizeof(float));
            memset(dv, 0, (size_t)T * H * sizeof(float));
        }
        return;
    }
    attn_job j = {.dq = dq,
                  .dk = dk,
                  .dv = dv,
                  .dout = dout,
                  .q = q,
                  .k = k,
                  .v = v,
                  .lse_in = lse,
                  .offsets = offsets,
                  .heads = heads,
                  .hd = hd,
                  .d = d};
    cpu_parallel(B * heads, attn_bwd_task, &j);
    zero_tail(dq, offsets, B, T, H);
    zero_tail(dk, offsets, B, T, H);
    zero_tail(dv, offsets, B, T, H);
}
