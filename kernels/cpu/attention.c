/* Multi-head self-attention over packed sequences, the textbook way.
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
 * Rows of scratch (scores, factors) are as long as the longest sequence. */
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

void cpu_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k,
                       const float *v, const int32_t *offsets, int B, int T, int heads, int hd,
                       simcse_dropout d) {
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

void cpu_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout,
                       const float *q, const float *k, const float *v, const float *out,
                       const float *lse, const int32_t *offsets, int B, int T, int heads, int hd,
                       simcse_dropout d) {
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
