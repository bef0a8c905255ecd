/* Elementwise ops and embeddings: exact GELU, tanh, dropout, add, scale, the embedding sum
 * and its scatter-add backward.
 *
 * Design choices
 * - Grid-stride loops over size_t counts (no 2^31 limit), 256 threads, the grid capped so
 *   a launch stays cheap for huge tensors. In-place calls (y == x) are allowed everywhere:
 *   each element is read and written by the same thread, so no __restrict__ on aliasable
 *   pointers.
 * - Formulas are written exactly as the CPU oracle writes them (same association, float
 *   math, erff/expf/tanhf with IEEE division and square root: no --use_fast_math), so the
 *   results differ from the CPU only by the last-ulp differences of the math libraries.
 * - Dropout: one thread per 4 consecutive columns of a row, one curand_init + curand4 per
 *   thread (see rng.cuh for why this is bit-identical to the CPU's per-element values).
 *   Dropped elements are multiplied by 0.0f (not overwritten), as the CPU does, so signed
 *   zeros and NaN propagation agree too.
 * - Embedding backward is deterministic without atomics: the block of the FIRST token that
 *   carries an id sums the gradient rows of all tokens with that id in ascending token
 *   order, starting from the table's current value: exactly the CPU's sequence of float
 *   additions, so the result is bit-identical. Cost: O(T) id comparisons per token (the
 *   "is there an earlier token with my id" test), then per distinct id a block-wide scan of
 *   the later tokens, EMB_THREADS at a time, and the sequential walk over that id's rows
 *   (the type table: all T rows in one block). TODO (perf): for large T, sort tokens by id
 *   (CUB radix sort) and segment-reduce. */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/rng.cuh"

#define EW_THREADS 256

/* ---------------- embeddings ---------------- */

__global__ void k_embed_fwd(float *__restrict__ out, const int32_t *__restrict__ ids,
                            const int32_t *__restrict__ pos_ids, const int32_t *__restrict__ type_ids,
                            const float *__restrict__ word, const float *__restrict__ pos,
                            const float *__restrict__ type, int T, int H) {
    const size_t total = (size_t)T * H;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t t = i / (size_t)H, h = i % (size_t)H;
        const float w = word[(size_t)ids[t] * H + h];
        const float p = pos[(size_t)pos_ids[t] * H + h];
        const float ty = type[(size_t)(type_ids ? type_ids[t] : 0) * H + h];
        out[i] = (w + p) + ty;
    }
}

/* One block per token t; ids == NULL means every token has id 0. The block of the first
 * token with its id adds, in ascending token order, the dout rows of every token u >= t
 * with that id to the table row (EMB_COLS columns per thread held in registers, more
 * passes when H > EMB_THREADS * EMB_COLS). The tokens are found EMB_THREADS at a time: a
 * ballot per warp and the warp counts in shared memory compact the matches of a chunk in
 * token order, then every thread adds those rows to its columns. So the scan costs
 * (T - t) / EMB_THREADS steps per block instead of (T - t) * H / blockDim id reads per
 * thread, and the additions are still exactly the CPU's sequence. */
#define EMB_THREADS 256
#define EMB_COLS 4
__global__ void __launch_bounds__(EMB_THREADS)
    k_embed_bwd_table(float *__restrict__ table, const float *__restrict__ dout, const int32_t *__restrict__ ids, int T,
                      int H) {
    __shared__ int s_rows[EMB_THREADS];
    __shared__ int s_count[EMB_THREADS / 32];
    const int t = blockIdx.x;
    const int id = ids ? ids[t] : 0;
    int earlier = 0;
    if (ids) {
        for (int u = threadIdx.x; u < t; u += EMB_THREADS)
            if (ids[u] == id) earlier = 1;
    } else {
        earlier = t > 0;
    }
    if (__syncthreads_or(earlier)) return; /* an earlier token with this id does the sum */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float *dst = table + (size_t)id * H;
    for (int h0 = 0; h0 < H; h0 += EMB_THREADS * EMB_COLS) {
        float acc[EMB_COLS];
#pragma unroll
        for (int k = 0; k < EMB_COLS; k++) {
            const int h = h0 + k * EMB_THREADS + threadIdx.x;
            acc[k] = h < H ? dst[h] : 0.0f;
        }
        for (int u0 = t; u0 < T; u0 += EMB_THREADS) { /* uniform over the block */
            const int u = u0 + threadIdx.x;
            const int hit = u < T && (!ids || ids[u] == id);
            const unsigned bal = __ballot_sync(CU_FULL_MASK, hit);
            if (lane == 0) s_count[warp] = __popc(bal);
            __syncthreads();
            int before = 0, total = 0;
#pragma unroll
            for (int w = 0; w < EMB_THREADS / 32; w++) {
                before += w < warp ? s_count[w] : 0;
                total += s_count[w];
            }
            if (hit) s_rows[before + __popc(bal & ((1u << lane) - 1u))] = u;
            __syncthreads();
            for (int i = 0; i < total; i++) {
                const float *g = dout + (size_t)s_rows[i] * H;
#pragma unroll
                for (int k = 0; k < EMB_COLS; k++) {
                    const int h = h0 + k * EMB_THREADS + threadIdx.x;
                    if (h < H) acc[k] += g[h];
                }
            }
            __syncthreads(); /* s_rows and s_count are refilled by the next chunk */
        }
#pragma unroll
        for (int k = 0; k < EMB_COLS; k++) {
            const int h = h0 + k * EMB_THREADS + threadIdx.x;
            if (h < H) dst[h] = acc[k];
        }
    }
}

void cu_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids,
                  const float *word, const float *pos, const float *type, int T, int H) {
    if (T <= 0 || H <= 0) return;
    cu_enter(be);
    size_t n = (size_t)T * H;
    k_embed_fwd<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(out, ids, pos_ids, type_ids, word, pos, type,
                                                                          T, H);
    CU_LAUNCH_CHECK("k_embed_fwd");
}

void cu_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout, const int32_t *ids,
                  const int32_t *pos_ids, const int32_t *type_ids, int T, int H) {
    if (T <= 0 || H <= 0) return;
    cu_enter(be);
    if (dword) {
        k_embed_bwd_table<<<T, EMB_THREADS, 0, cu_stream(be)>>>(dword, dout, ids, T, H);
        CU_LAUNCH_CHECK("k_embed_bwd_table(word)");
    }
    if (dpos) {
        k_embed_bwd_table<<<T, EMB_THREADS, 0, cu_stream(be)>>>(dpos, dout, pos_ids, T, H);
        CU_LAUNCH_CHECK("k_embed_bwd_table(pos)");
    }
    if (dtype) {
        k_embed_bwd_table<<<T, EMB_THREADS, 0, cu_stream(be)>>>(dtype, dout, type_ids, T, H);
        CU_LAUNCH_CHECK("k_embed_bwd_table(type)");
    }
}

/* ---------------- activations ---------------- */

__global__ void k_gelu_fwd(float *y, const float *x, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    }
}

__global__ void k_gelu_bwd(float *dx, const float *dy, const float *x, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

__global__ void k_tanh_fwd(float *y, const float *x, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = tanhf(x[i]);
}

__global__ void k_tanh_bwd(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float t = y[i];
        dx[i] = __fmul_rn(dy[i], __fsub_rn(1.0f, __fmul_rn(t, t))); /* no FMA: as the CPU */
    }
}

__global__ void k_add(float *y, const float *a, const float *b, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}

__global__ void k_scale(float *y, float s, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] *= s;
}

void cu_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    if (!n) return;
    cu_enter(be);
    k_gelu_fwd<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(y, x, n);
    CU_LAUNCH_CHECK("k_gelu_fwd");
}

void cu_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n) {
    if (!n) return;
    cu_enter(be);
    k_gelu_bwd<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(dx, dy, x, n);
    CU_LAUNCH_CHECK("k_gelu_bwd");
}

void cu_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n) {
    if (!n) return;
    cu_enter(be);
    k_tanh_fwd<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(y, x, n);
    CU_LAUNCH_CHECK("k_tanh_fwd");
}

void cu_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n) {
    if (!n) return;
    cu_enter(be);
    k_tanh_bwd<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(dx, dy, y, n);
    CU_LAUNCH_CHECK("k_tanh_bwd");
}

void cu_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n) {
    if (!n) return;
    cu_enter(be);
    k_add<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(y, a, b, n);
    CU_LAUNCH_CHECK("k_add");
}

void cu_scale(simcse_backend *be, float *y, float s, size_t n) {
    if (!n) return;
    cu_enter(be);
    k_scale<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(y, s, n);
    CU_LAUNCH_CHECK("k_scale");
}

/* ---------------- dropout ---------------- */

/* Thread q of row r handles columns 4q .. 4q+3 (those < cols). */
__global__ void k_dropout(float *y, const float *x, int rows, int cols, cu_drop d) {
    const int quads = (cols + 3) / 4;
    const size_t total = (size_t)rows * quads;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int r = (int)(i / quads);
        const int c0 = (int)(i % quads) * 4;
        const uint4 u = cu_rng4(d, cu_drop_row(d, r), (unsigned)c0);
        const uint32_t uu[4] = {u.x, u.y, u.z, u.w};
        const size_t base = (size_t)r * cols + c0;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (c0 + k < cols) y[base + k] = x[base + k] * (uu[k] < d.threshold ? 0.0f : d.keep_scale);
    }
}

void cu_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d) {
    if (rows <= 0 || cols <= 0) return;
    cu_enter(be);
    const size_t n = (size_t)rows * cols;
    if (!(d.p > 0.0f)) { /* off: a copy (nothing when in place) */
        if (y != x) CU_CHECK(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, cu_stream(be)));
        return;
    }
    const cu_drop dd = cu_drop_make(d);
    const size_t quads = (size_t)rows * ((cols + 3) / 4);
    k_dropout<<<cu_grid(quads, EW_THREADS), EW_THREADS, 0, cu_stream(be)>>>(y, x, rows, cols, dd);
    CU_LAUNCH_CHECK("k_dropout");
}
