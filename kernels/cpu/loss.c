/* SimCSE's InfoNCE loss with cosine similarity, all in double.
 *
 *   cos_ij  = a_i . c_j / max(|a_i| |c_j|, 1e-8)   (nn.CosineSimilarity(dim=-1), eps 1e-8 on
 *             the product of the norms as its documentation states; recent
 *             F.cosine_similarity clamps each norm separately, which differs only for
 *             vectors of norm below 1e-8)
 *   logit_ij = cos_ij / temp + (hard && j == C/2 + t0 + i ? hn_weight : 0)
 *             (SimCSE adds the hard-negative weight after dividing by the temperature)
 *   loss     = mean_i [ logsumexp_j logit_ij - logit_i,t0+i ]
 * t0 = target0: the anchors are rows t0.. of the (possibly gathered, several-rank)
 * candidate blocks, so anchor i's positive is candidate t0 + i.
 * Gradients: dlogit_ij = (softmax_ij - [j == t0 + i]) * grad_scale / B, dcos = dlogit / temp, and
 * through the cosine (unclamped case, n_a = |a_i|, n_c = |c_j|):
 *   dcos/da_i = c_j / (n_a n_c) - cos_ij a_i / n_a^2,  dcos/dc_j = a_i / (n_a n_c) - cos_ij c_j / n_c^2;
 * where the clamp is active the denominator is the constant 1e-8: dcos/da_i = c_j / 1e-8.
 * The loss returned is the plain mean (grad_scale scales only the gradients).
 *
 * cpu_infonce forms the B x C dot products with one cblas_sgemm (float products summed by
 * OpenBLAS), the norms, logits, softmax and dL/dcos in double, and both gradients with one
 * more GEMM each, written as
 *   d_anchors = W C - diag(r) A,   d_cands = W^T A - diag(s) C,
 *   W_ij = g_ij / den_ij,  r_i = sum_j g_ij cos_ij / n_a^2,  s_j = sum_i g_ij cos_ij / n_c^2
 * (g = dL/dcos; a clamped pair contributes g / 1e-8 to W and nothing to r, s).
 * cpu_ref_infonce is the same mathematics in double loops, pair by pair: the oracle. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"

#define COS_EPS 1e-8

void cpu_ref_infonce(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                     const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale,
                     int target0, int hard) {
    (void)be;
    double *na = simcse_xmalloc(((size_t)B + 1) * sizeof(double));
    double *nc = simcse_xmalloc(((size_t)C + 1) * sizeof(double));
    double *cs = simcse_xmalloc(((size_t)B * C + 1) * sizeof(double)); /* cos, then dcos */
    double *da = simcse_xcalloc((size_t)B * H + 1, sizeof(double));
    double *dc = simcse_xcalloc((size_t)C * H + 1, sizeof(double));
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int h = 0; h < H; h++) s += (double)anchors[(size_t)i * H + h] * anchors[(size_t)i * H + h];
        na[i] = sqrt(s);
    }
    for (int j = 0; j < C; j++) {
        double s = 0.0;
        for (int h = 0; h < H; h++) s += (double)cands[(size_t)j * H + h] * cands[(size_t)j * H + h];
        nc[j] = sqrt(s);
    }
    const int hn_col = hard ? C / 2 + target0 : -1; /* + i */
    double total = 0.0;
    double *logit = simcse_xmalloc(((size_t)C + 1) * sizeof(double));
    for (int i = 0; i < B; i++) {
        const float *a = anchors + (size_t)i * H;
        double m = -INFINITY;
        for (int j = 0; j < C; j++) {
            const float *c = cands + (size_t)j * H;
            double dotp = 0.0;
            for (int h = 0; h < H; h++) dotp += (double)a[h] * c[h];
            double den = na[i] * nc[j];
            cs[(size_t)i * C + j] = dotp / (den > COS_EPS ? den : COS_EPS);
            logit[j] = cs[(size_t)i * C + j] / temp + (hard && j == hn_col + i ? hn_weight : 0.0);
            if (logit[j] > m) m = logit[j];
        }
        double sum = 0.0;
        for (int j = 0; j < C; j++) sum += exp(logit[j] - m);
        const double lse = m + log(sum);
        total += lse - logit[target0 + i];
        /* cs row becomes dL/dcos */
        for (int j = 0; j < C; j++) {
            double dl = (exp(logit[j] - lse) - (j == target0 + i ? 1.0 : 0.0)) * grad_scale / B;
            cs[(size_t)i * C + j] = dl / temp;
        }
    }
    free(logit);
    *loss = (float)(total / B);

    for (int i = 0; i < B; i++) {
        const float *a = anchors + (size_t)i * H;
        for (int j = 0; j < C; j++) {
            const float *c = cands + (size_t)j * H;
            const double g = cs[(size_t)i * C + j];
            const double den = na[i] * nc[j];
            double *dai = da + (size_t)i * H, *dcj = dc + (size_t)j * H;
            if (den > COS_EPS) {
                double dotp = 0.0;
                for (int h = 0; h < H; h++) dotp += (double)a[h] * c[h];
                const double cosv = dotp / den;
                const double ka = cosv / (na[i] * na[i]), kc = cosv / (nc[j] * nc[j]);
                for (int h = 0; h < H; h++) {
                    dai[h] += g * (c[h] / den - ka * a[h]);
                    dcj[h] += g * (a[h] / den - kc * c[h]);
                }
            } else {
                for (int h = 0; h < H; h++) {
                    dai[h] += g * c[h] / COS_EPS;
                    dcj[h] += g * a[h] / COS_EPS;
                }
            }
        }
    }
    for (size_t x = 0; x < (size_t)B * H; x++) d_anchors[x] = (float)da[x];
    for (size_t x = 0; x < (size_t)C * H; x++) d_cands[x] = (float)dc[x];
    free(na);
    free(nc);
    free(cs);
    free(da);
    free(dc);
}

void cpu_infonce(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                 const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale, int target0,
                 int hard) {
    (void)be;
    const int ldH = H > 0 ? H : 1;
    double *na = simcse_xmalloc(((size_t)B + 1) * sizeof(double));
    double *nc = simcse_xmalloc(((size_t)C + 1) * sizeof(double));
    double *r = simcse_xcalloc((size_t)B + 1, sizeof(double));
    double *sc = simcse_xcalloc((size_t)C + 1, sizeof(double));
    float *G = simcse_xmalloc(((size_t)B * C + 1) * sizeof(float)); /* dot products, then W */
    double *logit = simcse_xmalloc(((size_t)C + 1) * sizeof(double));
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int h = 0; h < H; h++) s += (double)anchors[(size_t)i * H + h] * anchors[(size_t)i * H + h];
        na[i] = sqrt(s);
    }
    for (int j = 0; j < C; j++) {
        double s = 0.0;
        for (int h = 0; h < H; h++) s += (double)cands[(size_t)j * H + h] * cands[(size_t)j * H + h];
        nc[j] = sqrt(s);
    }
    cpu_sgemm(0, 1, B, C, H, 1.0f, anchors, ldH, cands, ldH, 0.0f, G, C > 0 ? C : 1, NULL);
    const int hn_col = hard ? C / 2 + target0 : -1; /* + i */
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        float *Gi = G + (size_t)i * C;
        double m = -INFINITY;
        for (int j = 0; j < C; j++) {
            const double den = na[i] * nc[j];
            logit[j] =
                (double)Gi[j] / (den > COS_EPS ? den : COS_EPS) / temp + (hard && j == hn_col + i ? hn_weight : 0.0);
            if (logit[j] > m) m = logit[j];
        }
        double sum = 0.0;
        for (int j = 0; j < C; j++) sum += exp(logit[j] - m);
        const double lse = m + log(sum);
        total += lse - logit[target0 + i];
        for (int j = 0; j < C; j++) {
            const double den = na[i] * nc[j];
            const double g = (exp(logit[j] - lse) - (j == target0 + i ? 1.0 : 0.0)) * grad_scale / B / temp;
            if (den > COS_EPS) {
                const double cosv = (double)Gi[j] / den;
                r[i] += g * cosv / (na[i] * na[i]);
                sc[j] += g * cosv / (nc[j] * nc[j]);
                Gi[j] = (float)(g / den);
            } else {
                Gi[j] = (float)(g / COS_EPS);
            }
        }
    }
    *loss = (float)(total / B);
    cpu_sgemm(0, 0, B, H, C, 1.0f, G, C > 0 ? C : 1, cands, ldH, 0.0f, d_anchors, ldH, NULL);
    cpu_sgemm(1, 0, C, H, B, 1.0f, G, C > 0 ? C : 1, anchors, ldH, 0.0f, d_cands, ldH, NULL);
    for (int i = 0; i < B; i++)
        for (int h = 0; h < H; h++)
            d_anchors[(size_t)i * H + h] = (float)(d_anchors[(size_t)i * H + h] - r[i] * anchors[(size_t)i * H + h]);
    for (int j = 0; j < C; j++)
        for (int h = 0; h < H; h++)
            d_cands[(size_t)j * H + h] = (float)(d_cands[(size_t)j * H + h] - sc[j] * cands[(size_t)j * H + h]);
    free(na);
    free(nc);
    free(r);
    free(sc);
    free(G);
    free(logit);
}
