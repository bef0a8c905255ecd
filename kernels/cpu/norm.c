/* LayerNorm over the last dimension (PyTorch semantics: biased variance, eps inside the
 * square root), optionally of x + residual (BERT's "add & norm").
 *
 * The statistics are accumulated in double (two passes: mean, then the centred sum of
 * squares) so the oracle's error comes from fp32 storage only; mean and rstd are saved in
 * float for the backward. The backward is the standard closed form
 *     xhat = (z - mean) * rstd,  gx = dy * g,
 *     dz   = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)),
 *     dg  += dy * xhat,  db += dy,
 * with the two row means again in double. dz is the gradient of both x and residual. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x,
                       const float *residual, const float *g, const float *b, int N, int H, float eps) {
    (void)be;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * H;
        const float *rr = residual ? residual + (size_t)n * H : NULL;
        float *yr = y + (size_t)n * H;
        /* z = x + residual in float, as a separate add would store it */
        double s = 0.0;
        for (int h = 0; h < H; h++) s += (double)(rr ? xr[h] + rr[h] : xr[h]);
        double mu = s / H;
        double ss = 0.0;
        for (int h = 0; h < H; h++) {
            double dz = (double)(rr ? xr[h] + rr[h] : xr[h]) - mu;
            ss += dz * dz;
        }
        double rs = 1.0 / sqrt(ss / H + (double)eps);
        for (int h = 0; h < H; h++) {
            double z = (double)(rr ? xr[h] + rr[h] : xr[h]);
            yr[h] = (float)((z - mu) * rs * g[h] + b[h]);
        }
        mean[n] = (float)mu;
        rstd[n] = (float)rs;
    }
}

void cpu_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy,
                       const float *x, const float *residual, const float *mean, const float *rstd,
                       const float *g, int N, int H) {
    (void)be;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * H;
        const float *rr = residual ? residual + (size_t)n * H : NULL;
        const float *gy = dy + (size_t)n * H;
        float *dxr = dx + (size_t)n * H;
        const double mu = mean[n], rs = rstd[n];
        double sg = 0.0, sgx = 0.0;
        for (int h = 0; h < H; h++) {
            double xhat = ((double)(rr ? xr[h] + rr[h] : xr[h]) - mu) * rs;
            double gx = (double)gy[h] * g[h];
            sg += gx;
            sgx += gx * xhat;
            if (dg) dg[h] += (float)(gy[h] * xhat);
            if (db) db[h] += gy[h];
        }
        sg /= H;
        sgx /= H;
        for (int h = 0; h < H; h++) {
            double xhat = ((double)(rr ? xr[h] + rr[h] : xr[h]) - mu) * rs;
            double gx = (double)gy[h] * g[h];
            dxr[h] = (float)(rs * (gx - sg - xhat * sgx));
        }
    }
}
