/* Private to the CUDA backend: its context, the error-checking macros, the scratch
 * arena and the functions each file of kernels/cuda contributes to the vtable.
 *
 * Error policy. The op signatures return void, so a failing CUDA / cuBLAS call inside an
 * op is unrecoverable: CU_CHECK / CUBLAS_CHECK record "file:line: call: reason" with
 * simcse_error() and exit through simcse_fatal(); CU_LAUNCH_CHECK does the same after
 * every kernel launch (a bad launch configuration is a bug, not a condition to handle).
 * Only the constructor (simcse_backend_cuda) and alloc report failure to the caller
 * (NULL + simcse_error), as ops.h documents.
 *
 * Every launch is guarded against empty problems (a grid of 0 blocks is a launch error),
 * and all work goes onto the backend's one stream, so ops are ordered exactly as issued and
 * the scratch arena can be reused by each op in turn. */
#ifndef SIMCSE_CUDA_COMMON_CUH
#define SIMCSE_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* common.h uses C11's <stdnoreturn.h> `noreturn`, which C++ spells [[noreturn]]. */
#define noreturn [[noreturn]]
extern "C" {
#include "simcse/common.h"
#include "simcse/ops.h"
}
#undef noreturn

typedef struct {
    int device;
    int bf16; /* 1: GEMM operands in bf16 (fp32 accumulate), see linear.cu */
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *lt_ws; /* cuBLASLt workspace */
    size_t lt_ws_bytes;
    void *blas_ws; /* cuBLAS workspace */
    size_t blas_ws_bytes;
    void *scratch; /* grown on demand by cu_scratch() */
    size_t scratch_bytes;
    int sm_count;
    size_t smem_optin; /* max dynamic shared memory per block (opt-in) */
    /* allocations made through alloc, for the memory statistics */
    void **blk_ptr;
    size_t *blk_size;
    int n_blk, cap_blk;
    size_t in_use, peak;
} cu_ctx;

static inline cu_ctx *cu_ctx_of(simcse_backend *be) { return (cu_ctx *)be->ctx; }
static inline cudaStream_t cu_stream(simcse_backend *be) { return cu_ctx_of(be)->stream; }

/* Records "file:line: what: detail" and exits (ops cannot return an error). */
[[noreturn]] void cu_fail(const char *file, int line, const char *what, const char *detail);

#define CU_CHECK(call)                                                                           \
    do {                                                                                         \
        cudaError_t cu_e_ = (call);                                                              \
        if (cu_e_ != cudaSuccess) cu_fail(__FILE__, __LINE__, #call, cudaGetErrorString(cu_e_)); \
    } while (0)

#define CUBLAS_CHECK(call)                                                                                    \
    do {                                                                                                      \
        cublasStatus_t cu_s_ = (call);                                                                        \
        if (cu_s_ != CUBLAS_STATUS_SUCCESS) cu_fail(__FILE__, __LINE__, #call, cublasGetStatusString(cu_s_)); \
    } while (0)

/* After a <<<>>> launch: configuration errors show up in cudaGetLastError(). With
 * SIMCSE_CUDA_SYNC=1 in the environment it also synchronises, so that a fault inside the
 * kernel is reported here (see backend.cu). */
void cu_launch_check(const char *file, int line, const char *what);
#define CU_LAUNCH_CHECK(kernel_name) cu_launch_check(__FILE__, __LINE__, "launch of " kernel_name)

/* Makes the backend's device current for this thread (cheap when it already is). */
void cu_enter(simcse_backend *be);

/* A device buffer of at least `bytes`, valid until the next cu_scratch() call. Ops carve
 * their temporaries out of one call. Growing synchronises the stream and reallocates, so
 * a CUDA graph should be captured only after a warm-up step has sized the arena. */
void *cu_scratch(simcse_backend *be, size_t bytes);

/* Rounds up to a multiple of 256 bytes (to carve aligned sub-buffers from the scratch). */
static inline size_t cu_align256(size_t b) { return (b + 255) & ~(size_t)255; }

/* Blocks for a grid-stride loop over n items. */
static inline unsigned cu_grid(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return (unsigned)(b ? b : 1);
}

#define CU_WARP 32
#define CU_FULL_MASK 0xffffffffu

__device__ __forceinline__ float cu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(CU_FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ float cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(CU_FULL_MASK, v, o));
    return v;
}

/* out[c] += sum_n x[n, c] for x [N, C]: a deterministic two-stage reduction (fixed row
 * chunks, partial sums added in ascending order), for bias gradients. Uses the scratch. */
void cu_colsum_rows(simcse_backend *be, float *out, const float *x, int N, int C);

/* ---- the vtable entries, one group per file ---- */

/* backend.cu: memory */
void *cu_alloc(simcse_backend *be, size_t bytes);
void cu_copy(simcse_backend *be, void *dst, const void *src, size_t bytes);
void cu_free(simcse_backend *be, void *p);

/* elementwise.cu */
void cu_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids,
                  const float *word, const float *pos, const float *type, int T, int H);
void cu_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout, const int32_t *ids,
                  const int32_t *pos_ids, const int32_t *type_ids, int T, int H);
void cu_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cu_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n);
void cu_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cu_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n);
void cu_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d);
void cu_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n);
void cu_scale(simcse_backend *be, float *y, float s, size_t n);

/* linear.cu */
void cu_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                   int O);
void cu_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                   const float *W, int N, int I, int O);
/* Row-major C[M,N] = alpha * op(A) op(B) + beta * C in fp32 (no TF32). A is stored [M,K]
 * (a_trans = 0) or [K,M] (a_trans = 1); B is stored [K,N] (b_trans = 0) or [N,K] (b_trans = 1). */
void cu_gemm_rm_f32(simcse_backend *be, float *C, const float *A, int a_trans, const float *B, int b_trans, int M,
                    int N, int K, float alpha, float beta);

/* norm.cu */
void cu_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x, const float *residual,
                      const float *g, const float *b, int N, int H, float eps);
void cu_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                      const float *residual, const float *mean, const float *rstd, const float *g, int N, int H);

/* attention.cu */
void cu_attention_init(simcse_backend *be);
void cu_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                      const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d);
void cu_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                      const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets, int B,
                      int T, int heads, int hd, simcse_dropout d);

/* pool.cu */
void cu_pool_first_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
void cu_pool_first_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);
void cu_pool_mean_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
void cu_pool_mean_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);

/* loss.cu */
void cu_infonce(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale, int target0,
                int hard);

/* optim.cu */
void cu_sumsq(simcse_backend *be, double *out, const float *x, size_t n);
void cu_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
              float beta2, float eps, float wd, float grad_scale, int step);

/* ---- counters (include/simcse/cuda_counters.h; the counts live in backend.cu) ----
 * Counting interposers: every runtime or library call of kernels/cuda that launches work,
 * blocks the host, allocates, copies or drives a graph goes through cu_counted_* below, which
 * calls the real function (its name in parentheses, so the macro does not apply to it) and
 * counts what succeeded. CU_CHECK's messages keep the call's own text (# does not expand
 * macros). Kernel launches are counted by cu_launch_check. A new library call that runs work
 * (say cublasGemmStridedBatchedEx) needs a line here; the harness test that compares these
 * counts with the emulated runtime's (tests/emu/test_emu_counters.c) fails until it has one. */
void cu_count_launch(int library);
void cu_count_sync(void);
void cu_count_alloc(void *pinned, size_t bytes); /* pinned: the page-locked block, else NULL */
void cu_count_free_host(void *p);
void cu_count_copy(const void *dst, size_t bytes, cudaMemcpyKind kind, int blocking);
void cu_count_capture_begin(void);
void cu_count_capture_end(cudaGraph_t g);
void cu_count_instantiate(cudaGraphExec_t x, cudaGraph_t g);
void cu_count_graph_launch(cudaGraphExec_t x);
void cu_count_exec_destroy(cudaGraphExec_t x);

static inline cudaError_t cu_counted_sync_call(cudaError_t e) {
    if (e == cudaSuccess) cu_count_sync();
    return e;
}
template <typename T, typename... A> static inline cudaError_t cu_counted_malloc(T **p, A... a) {
    cudaError_t e = (cudaMalloc)(p, a...);
    if (e == cudaSuccess) cu_count_alloc(NULL, 0);
    return e;
}
template <typename T, typename... A> static inline cudaError_t cu_counted_malloc_host(T **p, size_t n, A... a) {
    cudaError_t e = (cudaMallocHost)(p, n, a...);
    if (e == cudaSuccess) cu_count_alloc((void *)*p, n);
    return e;
}
template <typename T, typename... A> static inline cudaError_t cu_counted_host_alloc(T **p, size_t n, A... a) {
    cudaError_t e = (cudaHostAlloc)(p, n, a...);
    if (e == cudaSuccess) cu_count_alloc((void *)*p, n);
    return e;
}
static inline cudaError_t cu_counted_free(void *p) {
    cudaError_t e = (cudaFree)(p);
    if (e == cudaSuccess && p) cu_count_sync();
    return e;
}
static inline cudaError_t cu_counted_free_host(void *p) {
    cudaError_t e = (cudaFreeHost)(p);
    if (e == cudaSuccess && p) cu_count_free_host(p);
    return e;
}
static inline cudaError_t cu_counted_memcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k) {
    cudaError_t e = (cudaMemcpy)(dst, src, n, k);
    if (e == cudaSuccess && n) cu_count_copy(dst, n, k, 1);
    return e;
}
template <typename... A>
static inline cudaError_t cu_counted_memcpy_async(void *dst, const void *src, size_t n, cudaMemcpyKind k, A... a) {
    cudaError_t e = (cudaMemcpyAsync)(dst, src, n, k, a...);
    if (e == cudaSuccess && n) cu_count_copy(dst, n, k, 0);
    return e;
}
static inline cudaError_t cu_counted_memset(void *p, int v, size_t n) {
    cudaError_t e = (cudaMemset)(p, v, n);
    if (e == cudaSuccess && n) cu_count_sync();
    return e;
}
template <typename... A> static inline cudaError_t cu_counted_begin_capture(A... a) {
    cudaError_t e = (cudaStreamBeginCapture)(a...);
    if (e == cudaSuccess) cu_count_capture_begin();
    return e;
}
static inline cudaError_t cu_counted_end_capture(cudaStream_t s, cudaGraph_t *g) {
    cudaError_t e = (cudaStreamEndCapture)(s, g);
    cu_count_capture_end(e == cudaSuccess ? *g : NULL); /* a failed capture ends too */
    return e;
}
template <typename... A> static inline cudaError_t cu_counted_instantiate(cudaGraphExec_t *x, cudaGraph_t g, A... a) {
    cudaError_t e = (cudaGraphInstantiate)(x, g, a...);
    if (e == cudaSuccess) cu_count_instantiate(*x, g);
    return e;
}
static inline cudaError_t cu_counted_graph_launch(cudaGraphExec_t x, cudaStream_t s) {
    cudaError_t e = (cudaGraphLaunch)(x, s);
    if (e == cudaSuccess) cu_count_graph_launch(x);
    return e;
}
static inline cudaError_t cu_counted_exec_destroy(cudaGraphExec_t x) {
    cu_count_exec_destroy(x);
    return (cudaGraphExecDestroy)(x);
}
template <typename... A> static inline cublasStatus_t cu_counted_gemm_ex(A... a) {
    cublasStatus_t s = (cublasGemmEx)(a...);
    if (s == CUBLAS_STATUS_SUCCESS) cu_count_launch(1);
    return s;
}
template <typename... A> static inline cublasStatus_t cu_counted_lt_matmul(A... a) {
    cublasStatus_t s = (cublasLtMatmul)(a...);
    if (s == CUBLAS_STATUS_SUCCESS) cu_count_launch(1);
    return s;
}

#define cudaDeviceSynchronize() cu_counted_sync_call((cudaDeviceSynchronize)())
#define cudaStreamSynchronize(s) cu_counted_sync_call((cudaStreamSynchronize)(s))
#define cudaEventSynchronize(ev) cu_counted_sync_call((cudaEventSynchronize)(ev))
#define cudaMalloc(...) cu_counted_malloc(__VA_ARGS__)
#define cudaMallocHost(...) cu_counted_malloc_host(__VA_ARGS__)
#define cudaHostAlloc(...) cu_counted_host_alloc(__VA_ARGS__)
#define cudaFree(p) cu_counted_free(p)
#define cudaFreeHost(p) cu_counted_free_host(p)
#define cudaMemcpy(...) cu_counted_memcpy(__VA_ARGS__)
#define cudaMemcpyAsync(...) cu_counted_memcpy_async(__VA_ARGS__)
#define cudaMemset(...) cu_counted_memset(__VA_ARGS__)
#define cudaStreamBeginCapture(...) cu_counted_begin_capture(__VA_ARGS__)
#define cudaStreamEndCapture(s, g) cu_counted_end_capture(s, g)
#define cudaGraphInstantiate(...) cu_counted_instantiate(__VA_ARGS__)
#define cudaGraphLaunch(x, s) cu_counted_graph_launch(x, s)
#define cudaGraphExecDestroy(x) cu_counted_exec_destroy(x)
#define cublasGemmEx(...) cu_counted_gemm_ex(__VA_ARGS__)
#define cublasLtMatmul(...) cu_counted_lt_matmul(__VA_ARGS__)

#endif
