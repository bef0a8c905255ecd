/* Optimizer pieces: the global sum of squares (for gradient-norm clipping) and AdamW.
 *
 * sumsq accumulates in double. adamw follows torch.optim.AdamW (foreach=False,
 * amsgrad=False, maximize=False) step by step, in float per element:
 *     g  = grad * grad_scale
 *     p *= 1 - lr * wd                          (decoupled weight decay, first)
 *     m  = b1 m + (1 - b1) g
 *     v  = b2 v + (1 - b2) g^2
 *     p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc1 = 1 - b1^step, bc2 = 1 - b2^step
 * which is p -= lr * m_hat / (sqrt(v_hat) + eps) with eps outside the square root. The
 * scalars (bias corrections, step size) are computed in double as Python does, then used
 * as float. step counts from 1. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_sumsq(simcse_backend *be, double *out, const float *x, size_t n) {
    (void)be;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    *out = s;
}

void cpu_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr,
               float beta1, float beta2, float eps, float wd, float grad_scale, int step) {
    (void)be;
    const double bc1 = 1.0 - pow((double)beta1, step);
    const double bc2 = 1.0 - pow((double)beta2, step);
    const float decay = (float)(1.0 - (double)lr * wd);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = beta1, b2 = beta2;
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i] * grad_scale;
        p[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}
