/* LayerNorm over the last dimension (PyTorch semantics: biased variance, eps inside the
 * square root), optionally of x + residual (BERT's "add & norm").
 *
 * The statistics are accumulated in double (two passes: mean, then the centred sum of
 * squares) so the oracle's error comes from fp32 storage only; mean and rstd are saved in
 * float for the backward. The backward is the standard closed form
 *     xhat = (z - mean) * rstd,  gx = dy * g,
 *     dz   = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)),
 *     dg  += dy * xhat,  db += dy,
 * with the two row means again in double. dz is the gradient of both x and residual.
 *
 * Threads: the forward and dx split by rows; dg and db by columns, each column summed over
 * the rows in ascending order as the single-threaded loop does, so every thread count gives
 * the bits of cpu_ref_layernorm_* (the same loops run on one thread: the oracle). */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

typedef struct {
    float *y, *mean, *rstd, *dx, *dg, *db;
    const float *x, *residual, *g, *b, *dy, *mean_in, *rstd_in;
    int N, H, parts;
    float eps;
} ln_job;

static void ln_fwd_rows(const ln_job *j, int n0, int n1) {
    const int H = j->H;
    const float *x = j->x, *residual = j->residual, *g = j->g, *b = j->b;
    const float eps = j->eps;
    for (int n = n0; n < n1; n++) {
        const float *xr = x + (size_t)n * H;
        const float *rr = residual ? residual + (size_t)n * H : NULL;
        float *yr = j->y + (size_t)n * H;
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
        j->mean[n] = (float)mu;
        j->rstd[n] = (float)rs;
    }
}

static void ln_fwd_part(void *arg, int part) {
    const ln_job *j = arg;
    ln_fwd_rows(j, (int)((long long)j->N * part / j->parts), (int)((long long)j->N * (part + 1) / j->parts));
}

void cpu_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x, const float *residual,
                       const float *g, const float *b, int N, int H, float eps) {
    (void)be;
    ln_job j = {
        .y = y, .mean = mean, .rstd = rstd, .x = x, .residual = residual, .g = g, .b = b, .N = N, .H = H, .eps = eps};
    j.parts = cpu_split((double)N * H, 1 << 15, N);
    cpu_parallel(j.parts, ln_fwd_part, &j);
}

void cpu_ref_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x,
                           const float *residual, const float *g, const float *b, int N, int H, float eps) {
    (void)be;
    ln_job j = {
        .y = y, .mean = mean, .rstd = rstd, .x = x, .residual = residual, .g = g, .b = b, .N = N, .H = H, .eps = eps};
    ln_fwd_rows(&j, 0, N);
}

/* dx for rows [n0, n1); with `params`, also dg and db for those rows (the oracle's order) */
static void ln_bwd_rows(const ln_job *j, int n0, int n1, int params) {
    const int H = j->H;
    const float *x = j->x, *residual = j->residual, *g = j->g;
    float *dg = params ? j->dg : NULL, *db = params ? j->db : NULL;
    for (int n = n0; n < n1; n++) {
        const float *xr = x + (size_t)n * H;
        const float *rr = residual ? residual + (size_t)n * H : NULL;
        const float *gy = j->dy + (size_t)n * H;
        float *dxr = j->dx + (size_t)n * H;
        const double mu = j->mean_in[n], rs = j->rstd_in[n];
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

static void ln_bwd_part(void *arg, int part) {
    const ln_job *j = arg;
    ln_bwd_rows(j, (int)((long long)j->N * part / j->parts), (int)((long long)j->N * (part + 1) / j->parts), 0);
}

/* dg, db for columns [h0, h1): every row in ascending order, as ln_bwd_rows over all rows */
static void ln_params_part(void *arg, int part) {
    const ln_job *j = arg;
    const int H = j->H, h0 = (int)((long long)H * part / j->parts), h1 = (int)((long long)H * (part + 1) / j->parts);
    for (int n = 0; n < j->N; n++) {
        const float *xr = j->x + (size_t)n * H;
        const float *rr = j->residual ? j->residual + (size_t)n * H : NULL;
        const float *gy = j->dy + (size_t)n * H;
        const double mu = j->mean_in[n], rs = j->rstd_in[n];
        for (int h = h0; h < h1; h++) {
            double xhat = ((double)(rr ? xr[h] + rr[h] : xr[h]) - mu) * rs;
            if (j->dg) j->dg[h] += (float)(gy[h] * xhat);
            if (j->db) j->db[h] += gy[h];
        }
    }
}

void cpu_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                       const float *residual, const float *mean, const float *rstd, const float *g, int N, int H) {
    (void)be;
    ln_job j = {.dx = dx,
                .dg = dg,
                .db = db,
                .dy = dy,
                .x = x,
                .residual = residual,
                .mean_in = mean,
                .rstd_in = rstd,
                .g = g,
                .N = N,
                .H = H};
    /* dg, db first: dx may overwrite dy (or x) */
    if (dg || db) {
        j.parts = cpu_split((double)N * H, 1 << 15, H / 16);
        cpu_parallel(j.parts, ln_params_part, &j);
    }
    j.parts = cpu_split((double)N * H, 1 << 15, N);
    cpu_parallel(j.parts, ln_bwd_part, &j);
}

void cpu_ref_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                           const float *residual, const float *mean, const float *rstd, const float *g, int N, int H) {
    (void)be;
    ln_job j = {.dx = dx,
                .dg = dg,
                .db = db,
                .dy = dy,
                .x = x,
                .residual = residual,
                .mean_in = mean,
                .rstd_in = rstd,
                .g = g,
                .N = N,
                .H = H};
    ln_bwd_rows(&j, 0, N, 1);
}
