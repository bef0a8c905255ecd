/* Optimizer kernels: the global sum of squares (gradient-norm clipping) and fused AdamW.
 *
 * Design choices
 * - sumsq is a deterministic two-stage reduction in double: a fixed grid (its size depends
 *   only on n) of grid-stride threads accumulating x*x in double, a fixed-shape
 *   shuffle + shared-memory tree per block, then one block adding the block partials in a
 *   fixed tree. Same input, same bits, every run; ~1e-16 relative to the CPU's serial sum.
 *   The result is copied to the host (a stream synchronisation, which the clipping
 *   decision needs anyway).
 * - AdamW is one pass over the fp32 parameters, gradients and moments (16 bytes read, 12
 *   written per element), following the CPU oracle (torch.optim.AdamW) operation for
 *   operation: the scalars (bias corrections, step size, decay) are computed on the host in
 *   double exactly as the CPU does, and the per-element float operations use the _rn
 *   intrinsics so nvcc cannot contract them into FMAs: the update is bit-identical to the
 *   CPU's (IEEE division and square root, no fast math). */
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"

#define SQ_THREADS 256
#define SQ_MAX_BLOCKS 1024

__device__ double block_sum_double(double v, double *sm) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(CU_FULL_MASK, v, o);
    if (lane == 0) sm[w] = v;
    __syncthreads();
    double r = 0.0;
    if (threadIdx.x == 0)
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) r += sm[i];
    return r; /* valid in thread 0 */
}

__global__ void __launch_bounds__(SQ_THREADS)
    k_sumsq_stage1(double *__restrict__ partial, const float *__restrict__ x, size_t n) {
    __shared__ double sm[32];
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const double v = x[i];
        s += v * v;
    }
    s = block_sum_double(s, sm);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(SQ_THREADS)
    k_sumsq_stage2(double *__restrict__ out, const double *__restrict__ partial, int nparts) {
    __shared__ double sm[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += partial[i];
    s = block_sum_double(s, sm);
    if (threadIdx.x == 0) *out = s;
}

void cu_sumsq(simcse_backend *be, double *out, const float *x, size_t n) {
    if (!n) {
        *out = 0.0;
        return;
    }
    cu_enter(be);
    size_t blocks = (n + SQ_THREADS * 8 - 1) / (SQ_THREADS * 8); /* ~8 elements per thread at least */
    if (blocks > SQ_MAX_BLOCKS) blocks = SQ_MAX_BLOCKS;
    double *d = (double *)cu_scratch(be, (blocks + 1) * sizeof(double));
    k_sumsq_stage1<<<(unsigned)blocks, SQ_THREADS, 0, cu_stream(be)>>>(d + 1, x, n);
    CU_LAUNCH_CHECK("k_sumsq_stage1");
    k_sumsq_stage2<<<1, SQ_THREADS, 0, cu_stream(be)>>>(d, d + 1, (int)blocks);
    CU_LAUNCH_CHECK("k_sumsq_stage2");
    CU_CHECK(cudaMemcpyAsync(out, d, sizeof(double), cudaMemcpyDeviceToHost, cu_stream(be)));
    CU_CHECK(cudaStreamSynchronize(cu_stream(be)));
}

__global__ void k_adamw(float *__restrict__ p, const float *__restrict__ g, float *__restrict__ m,
                        float *__restrict__ v, size_t n, float b1, float b2, float eps, float grad_scale, float decay,
                        float step_size, float bc2_sqrt) {
    const float omb1 = __fsub_rn(1.0f, b1), omb2 = __fsub_rn(1.0f, b2);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float gi = __fmul_rn(g[i], grad_scale);
        const float pi = __fmul_rn(p[i], decay);
        const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(omb1, gi));
        const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(omb2, gi), gi));
        const float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fsub_rn(pi, __fdiv_rn(__fmul_rn(step_size, mi), den));
        m[i] = mi;
        v[i] = vi;
    }
}

void cu_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
              float beta2, float eps, float wd, float grad_scale, int step) {
    if (!n) return;
    cu_enter(be);
    /* the CPU oracle's scalars, computed the same way */
    const double bc1 = 1.0 - pow((double)beta1, step);
    const double bc2 = 1.0 - pow((double)beta2, step);
    const float decay = (float)(1.0 - (double)lr * wd);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    k_adamw<<<cu_grid(n, 256), 256, 0, cu_stream(be)>>>(p, g, m, v, n, beta1, beta2, eps, grad_scale, decay, step_size,
                                                        bc2_sqrt);
    CU_LAUNCH_CHECK("k_adamw");
}
