/* Sentence pooling over packed sequences: the first token, or the mean over the tokens.
 *
 * Design choices
 * - One block per sequence, threads over the hidden dimension (coalesced rows); the
 *   sequence bounds are read from offsets on the device.
 * - Semantics follow the CPU oracle exactly: an empty sequence pools to zeros and receives
 *   no gradient; the mean accumulates in double in ascending token order and divides in
 *   double, and the backward adds dout * (1.0f / len) in float, so both directions are
 *   bit-identical to the CPU.
 * - Backward passes accumulate (+=) into dx; different sequences own disjoint token rows, so
 *   no two threads touch the same element. */
#include "kernels/cuda/cuda_common.cuh"

__global__ void k_pool_first_fwd(float *__restrict__ out, const float *__restrict__ x,
                                 const int32_t *__restrict__ offsets, int H) {
    const int b = blockIdx.x;
    const int t0 = offsets[b], t1 = offsets[b + 1];
    for (int h = threadIdx.x; h < H; h += blockDim.x) out[(size_t)b * H + h] = t1 > t0 ? x[(size_t)t0 * H + h] : 0.0f;
}

__global__ void k_pool_first_bwd(float *__restrict__ dx, const float *__restrict__ dout,
                                 const int32_t *__restrict__ offsets, int H) {
    const int b = blockIdx.x;
    const int t0 = offsets[b], t1 = offsets[b + 1];
    if (t1 <= t0) return;
    for (int h = threadIdx.x; h < H; h += blockDim.x) dx[(size_t)t0 * H + h] += dout[(size_t)b * H + h];
}

__global__ void k_pool_mean_fwd(float *__restrict__ out, const float *__restrict__ x,
                                const int32_t *__restrict__ offsets, int H) {
    const int b = blockIdx.x;
    const int t0 = offsets[b], t1 = offsets[b + 1];
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        double s = 0.0;
        for (int t = t0; t < t1; t++) s += x[(size_t)t * H + h];
        out[(size_t)b * H + h] = t1 > t0 ? (float)(s / (t1 - t0)) : 0.0f;
    }
}

__global__ void k_pool_mean_bwd(float *__restrict__ dx, const float *__restrict__ dout,
                                const int32_t *__restrict__ offsets, int H) {
    const int b = blockIdx.x;
    const int t0 = offsets[b], t1 = offsets[b + 1];
    if (t1 <= t0) return;
    const float inv = 1.0f / (float)(t1 - t0);
    for (int t = t0; t < t1; t++)
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            float *d = dx + (size_t)t * H + h; /* _rn: no FMA contraction, as on the CPU */
            *d = __fadd_rn(*d, __fmul_rn(dout[(size_t)b * H + h], inv));
        }
}

static unsigned pool_threads(int H) { return H >= 256 ? 256u : 128u; }

void cu_pool_first_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H) {
    if (B <= 0 || H <= 0) return;
    cu_enter(be);
    k_pool_first_fwd<<<B, pool_threads(H), 0, cu_stream(be)>>>(out, x, offsets, H);
    CU_LAUNCH_CHECK("k_pool_first_fwd");
}

void cu_pool_first_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H) {
    if (B <= 0 || H <= 0) return;
    cu_enter(be);
    k_pool_first_bwd<<<B, pool_threads(H), 0, cu_stream(be)>>>(dx, dout, offsets, H);
    CU_LAUNCH_CHECK("k_pool_first_bwd");
}

void cu_pool_mean_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H) {
    if (B <= 0 || H <= 0) return;
    cu_enter(be);
    k_pool_mean_fwd<<<B, pool_threads(H), 0, cu_stream(be)>>>(out, x, offsets, H);
    CU_LAUNCH_CHECK("k_pool_mean_fwd");
}

void cu_pool_mean_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H) {
    if (B <= 0 || H <= 0) return;
    cu_enter(be);
    k_pool_mean_bwd<<<B, pool_threads(H), 0, cu_stream(be)>>>(dx, dout, offsets, H);
    CU_LAUNCH_CHECK("k_pool_mean_bwd");
}
