/* LayerNorm forward and backward with the residual add fused in: y = LN(x + residual).
 *
 * Design choices
 * - One warp per row (8 rows per 256-thread block): rows are H = 768..1024 floats, so a
 *   warp covers a row in 24..32 coalesced steps and reduces with shuffles, no shared memory
 *   and no block barrier. Each lane keeps its part of the row in registers (up to H = 1024,
 *   32 values per lane); longer rows re-read the rest from global memory (L1/L2 hits).
 * - fp32 statistics, two passes over the registers: mean, then the centred sum of squares
 *   (no E[x^2] - E[x]^2 cancellation); rstd = 1 / sqrtf(var + eps) with IEEE sqrt and
 *   division (not rsqrtf). The CPU oracle accumulates in double; the difference is fp32
 *   rounding of a 1024-term warp-tree sum, ~1e-7 relative.
 * - z = x + residual is formed in float exactly as the CPU forms it, and never stored: the
 *   backward recomputes it from x and residual with the saved mean and rstd.
 * - dgamma / dbeta: a deterministic two-stage column reduction (blocks of 32 columns x a
 *   fixed chunk of rows, then the chunk partials added in ascending order). No atomics, so
 *   gradients are bit-reproducible run to run. dx may alias dy (each element is read and
 *   written by the same lane, and every read of a row precedes its writes). */
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"

#define LN_WARPS 8
#define LN_CACHE 32 /* values per lane kept in registers: H <= 1024 fully cached */

__global__ void __launch_bounds__(LN_WARPS * 32)
    k_ln_fwd(float *y, float *__restrict__ mean, float *__restrict__ rstd, const float *x,
             const float *__restrict__ res, const float *__restrict__ g, const float *__restrict__ bta, int N, int H,
             float eps) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const float *xr = x + (size_t)n * H;
    const float *rr = res ? res + (size_t)n * H : NULL;
    float *yr = y + (size_t)n * H;
    float zc[LN_CACHE];
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < LN_CACHE; k++) {
        const int h = lane + 32 * k;
        zc[k] = h < H ? (rr ? xr[h] + rr[h] : xr[h]) : 0.0f;
        s += zc[k];
    }
    for (int h = lane + 32 * LN_CACHE; h < H; h += 32) s += rr ? xr[h] + rr[h] : xr[h];
    const float mu = cu_warp_sum(s) / (float)H;
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < LN_CACHE; k++) {
        const int h = lane + 32 * k;
        const float dz = zc[k] - mu;
        if (h < H) ss += dz * dz;
    }
    for (int h = lane + 32 * LN_CACHE; h < H; h += 32) {
        const float dz = (rr ? xr[h] + rr[h] : xr[h]) - mu;
        ss += dz * dz;
    }
    const float rs = 1.0f / sqrtf(cu_warp_sum(ss) / (float)H + eps);
#pragma unroll
    for (int k = 0; k < LN_CACHE; k++) {
        const int h = lane + 32 * k;
        if (h < H) yr[h] = (zc[k] - mu) * rs * g[h] + bta[h];
    }
    for (int h = lane + 32 * LN_CACHE; h < H; h += 32) {
        const float z = rr ? xr[h] + rr[h] : xr[h];
        yr[h] = (z - mu) * rs * g[h] + bta[h];
    }
    if (lane == 0) {
        mean[n] = mu;
        rstd[n] = rs;
    }
}

/* dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)), gx = dy * g. dx may alias dy. */
__global__ void __launch_bounds__(LN_WARPS * 32)
    k_ln_bwd_dx(float *dx, const float *dy, const float *__restrict__ x, const float *__restrict__ res,
                const float *__restrict__ mean, const float *__restrict__ rstd, const float *__restrict__ g, int N,
                int H) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const size_t off = (size_t)n * H;
    const float *xr = x + off;
    const float *rr = res ? res + off : NULL;
    const float *gy = dy + off;
    float *dxr = dx + off;
    const float mu = mean[n], rs = rstd[n];
    float xh[LN_CACHE], gx[LN_CACHE];
    float sg = 0.0f, sgx = 0.0f;
#pragma unroll
    for (int k = 0; k < LN_CACHE; k++) {
        const int h = lane + 32 * k;
        xh[k] = 0.0f;
        gx[k] = 0.0f;
        if (h < H) {
            xh[k] = ((rr ? xr[h] + rr[h] : xr[h]) - mu) * rs;
            gx[k] = gy[h] * g[h];
        }
        sg += gx[k];
        sgx += gx[k] * xh[k];
    }
    for (int h = lane + 32 * LN_CACHE; h < H; h += 32) {
        const float xhat = ((rr ? xr[h] + rr[h] : xr[h]) - mu) * rs;
        const float gv = gy[h] * g[h];
        sg += gv;
        sgx += gv * xhat;
    }
    sg = cu_warp_sum(sg) / (float)H;
    sgx = cu_warp_sum(sgx) / (float)H;
#pragma unroll
    for (int k = 0; k < LN_CACHE; k++) {
        const int h = lane + 32 * k;
        if (h < H) dxr[h] = rs * (gx[k] - sg - xh[k] * sgx);
    }
    for (int h = lane + 32 * LN_CACHE; h < H; h += 32) {
        const float xhat = ((rr ? xr[h] + rr[h] : xr[h]) - mu) * rs;
        const float gv = gy[h] * g[h];
        dxr[h] = rs * (gv - sg - xhat * sgx);
    }
}

/* Stage 1 of dgamma / dbeta: block (bx, by) = columns bx*32.. x rows of chunk by. */
#define LN_TY 8
__global__ void k_ln_bwd_dgdb_stage1(float *__restrict__ pg, float *__restrict__ pb, const float *__restrict__ dy,
                                     const float *__restrict__ x, const float *__restrict__ res,
                                     const float *__restrict__ mean, const float *__restrict__ rstd, int N, int H,
                                     int rows_per_chunk) {
    __shared__ float sg[LN_TY][33], sb[LN_TY][33];
    const int c = blockIdx.x * 32 + threadIdx.x;
    const int r0 = blockIdx.y * rows_per_chunk;
    const int r1 = min(N, r0 + rows_per_chunk);
    float ag = 0.0f, ab = 0.0f;
    if (c < H)
        for (int r = r0 + threadIdx.y; r < r1; r += LN_TY) {
            const size_t i = (size_t)r * H + c;
            const float xhat = ((res ? x[i] + res[i] : x[i]) - mean[r]) * rstd[r];
            const float gy = dy[i];
            ag += gy * xhat;
            ab += gy;
        }
    sg[threadIdx.y][threadIdx.x] = ag;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < H) {
        float tg = sg[0][threadIdx.x], tb = sb[0][threadIdx.x];
        for (int i = 1; i < LN_TY; i++) {
            tg += sg[i][threadIdx.x];
            tb += sb[i][threadIdx.x];
        }
        pg[(size_t)blockIdx.y * H + c] = tg;
        pb[(size_t)blockIdx.y * H + c] = tb;
    }
}

/* Stage 2: dg[c] += sum_chunks pg[chunk][c] (ascending), same for db. Either may be NULL. */
__global__ void k_ln_bwd_dgdb_stage2(float *dg, float *db, const float *__restrict__ pg, const float *__restrict__ pb,
                                     int chunks, int H) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= H) return;
    float tg = 0.0f, tb = 0.0f;
    for (int i = 0; i < chunks; i++) {
        tg += pg[(size_t)i * H + c];
        tb += pb[(size_t)i * H + c];
    }
    if (dg) dg[c] += tg;
    if (db) db[c] += tb;
}

void cu_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x, const float *residual,
                      const float *g, const float *b, int N, int H, float eps) {
    if (N <= 0 || H <= 0) return;
    cu_enter(be);
    const unsigned blocks = (unsigned)((N + LN_WARPS - 1) / LN_WARPS);
    k_ln_fwd<<<blocks, LN_WARPS * 32, 0, cu_stream(be)>>>(y, mean, rstd, x, residual, g, b, N, H, eps);
    CU_LAUNCH_CHECK("k_ln_fwd");
}

void cu_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                      const float *residual, const float *mean, const float *rstd, const float *g, int N, int H) {
    if (N <= 0 || H <= 0) return;
    cu_enter(be);
    /* parameter gradients first: they read dy, which dx may overwrite */
    if (dg || db) {
        int chunks = (N + 63) / 64;
        if (chunks > 128) chunks = 128;
        const int rows_per_chunk = (N + chunks - 1) / chunks;
        chunks = (N + rows_per_chunk - 1) / rows_per_chunk;
        float *pg = (float *)cu_scratch(be, 2 * (size_t)chunks * H * sizeof(float));
        float *pb = pg + (size_t)chunks * H;
        dim3 grid((H + 31) / 32, chunks), block(32, LN_TY);
        k_ln_bwd_dgdb_stage1<<<grid, block, 0, cu_stream(be)>>>(pg, pb, dy, x, residual, mean, rstd, N, H,
                                                                rows_per_chunk);
        CU_LAUNCH_CHECK("k_ln_bwd_dgdb_stage1");
        k_ln_bwd_dgdb_stage2<<<(H + 255) / 256, 256, 0, cu_stream(be)>>>(dg, db, pg, pb, chunks, H);
        CU_LAUNCH_CHECK("k_ln_bwd_dgdb_stage2");
    }
    if (dx) {
        const unsigned blocks = (unsigned)((N + LN_WARPS - 1) / LN_WARPS);
        k_ln_bwd_dx<<<blocks, LN_WARPS * 32, 0, cu_stream(be)>>>(dx, dy, x, residual, mean, rstd, g, N, H);
        CU_LAUNCH_CHECK("k_ln_bwd_dx");
    }
}
