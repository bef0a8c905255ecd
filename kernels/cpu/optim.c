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
 * as float. step counts from 1.
 *
 * Threads: AdamW is elementwise, split in contiguous ranges (the bits of the one-thread loop,
 * cpu_ref_adamw). sumsq adds fixed blocks of SUMSQ_BLOCK elements, each on one task, then the
 * block sums in order: the same value for every thread count (and within rounding of the
 * plain loop, cpu_ref_sumsq). */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"

#define SUMSQ_BLOCK (1 << 16)

typedef struct {
    float *p, *m, *v;
    const float *g, *x;
    double *partial;
    size_t n;
    int parts, step;
    float lr, beta1, beta2, eps, wd, grad_scale;
} optim_job;

static void sumsq_part(void *arg, int block) {
    const optim_job *j = arg;
    const size_t i0 = (size_t)block * SUMSQ_BLOCK, i1 = i0 + SUMSQ_BLOCK < j->n ? i0 + SUMSQ_BLOCK : j->n;
    double s = 0.0;
    for (size_t i = i0; i < i1; i++) s += (double)j->x[i] * j->x[i];
    j->partial[block] = s;
}

void cpu_sumsq(simcse_backend *be, double *out, const float *x, size_t n) {
    (void)be;
    const size_t blocks = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
    if (blocks > (size_t)1 << 30) simcse_fatal("sumsq: %zu elements are too many", n);
    optim_job j = {.x = x, .n = n, .partial = simcse_xmalloc((blocks + 1) * sizeof(double))};
    cpu_parallel((int)blocks, sumsq_part, &j);
    double s = 0.0;
    for (size_t b = 0; b < blocks; b++) s += j.partial[b];
    free(j.partial);
    *out = s;
}

void cpu_ref_sumsq(simcse_backend *be, double *out, const float *x, size_t n) {
    (void)be;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    *out = s;
}

static void adamw_range(const optim_job *j, size_t i0, size_t i1) {
    float *p = j->p, *m = j->m, *v = j->v;
    const float *g = j->g;
    const float lr = j->lr, beta1 = j->beta1, beta2 = j->beta2, eps = j->eps, wd = j->wd, grad_scale = j->grad_scale;
    const int step = j->step;
    const double bc1 = 1.0 - pow((double)beta1, step);
    const double bc2 = 1.0 - pow((double)beta2, step);
    const float decay = (float)(1.0 - (double)lr * wd);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = beta1, b2 = beta2;
    for (size_t i = i0; i < i1; i++) {
        const float gi = g[i] * grad_scale;
        p[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

static void adamw_part(void *arg, int part) {
    const optim_job *j = arg;
    adamw_range(j, (size_t)((double)j->n * part / j->parts), (size_t)((double)j->n * (part + 1) / j->parts));
}

void cpu_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
               float beta2, float eps, float wd, float grad_scale, int step) {
    (void)be;
    optim_job j = {.p = p,
                   .g = g,
                   .m = m,
                   .v = v,
                   .n = n,
                   .lr = lr,
                   .beta1 = beta1,
                   .beta2 = beta2,
                   .eps = eps,
                   .wd = wd,
                   .grad_scale = grad_scale,
                   .step = step};
    j.parts = cpu_split((double)n, 1 << 15, (int)(n / 1024 < (1 << 20) ? n / 1024 : (1 << 20)));
    cpu_parallel(j.parts, adamw_part, &j);
}

void cpu_ref_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                   float beta2, float eps, float wd, float grad_scale, int step) {
    (void)be;
    optim_job j = {.p = p,
                   .g = g,
                   .m = m,
                   .v = v,
                   .n = n,
                   .lr = lr,
                   .beta1 = beta1,
                   .beta2 = beta2,
                   .eps = eps,
                   .wd = wd,
                   .grad_scale = grad_scale,
                   .step = step};
    adamw_range(&j, 0, n);
}
