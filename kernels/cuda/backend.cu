/* The CUDA backend: the vtable, device memory, the stream, the cuBLAS / cuBLASLt handles.
 *
 * Design choices
 * - One backend per (device, precision) per process, created on first use and kept for the
 *   life of the process (ops.h has no destroy call; handles and the stream are reused by
 *   every caller that asks for the same device and mode).
 * - One stream per backend (an ordinary blocking stream, so work that other code puts on
 *   the legacy default stream still orders against it): every op is enqueued on it in
 *   issue order, so ops never need their own synchronisation; to_host, sync, free and the
 *   host-returning ops (infonce's loss, sumsq) wait for it. Nothing else synchronises, so
 *   the ops between those can be captured in a CUDA graph once a warm-up step has sized the
 *   scratch arena and the cuBLASLt plans (cuBLAS gets a fixed workspace for the same reason);
 *   the two host-returning ops end a capture (TODO: device-side results for them).
 * - alloc is plain cudaMalloc (no managed memory); out of memory is reported, not fatal:
 *   NULL + "... allocating N bytes (F MiB free of T MiB)". Every other failing CUDA call is
 *   fatal with the call, file and line (see cuda_common.cuh).
 * - to_device from pageable host memory returns once the source has been staged, so the
 *   caller may reuse it at once (a page-locked source would be read later: sync first);
 *   to_host waits for the copy (and so for all prior work).
 * - Counters (include/simcse/cuda_counters.h): the counting interposers of cuda_common.cuh
 *   and cu_launch_check feed the counts kept here, so the nvcc build reports the same figures
 *   as the harness's runtime (a harness test compares the two). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <mutex>

#include "kernels/cuda/cuda_common.cuh"
extern "C" {
#include "simcse/cuda_counters.h"
}

/* ---- counters (include/simcse/cuda_counters.h), fed by the interposers of cuda_common.cuh ----
 * One mutex for all of it: launches come from every rank's thread. Work issued while this
 * thread captures a stream goes into the capture's tally; the tally follows the graph to its
 * executable graph, and each cudaGraphLaunch adds it to the executed counts. */
namespace {
struct cu_tally {
    unsigned long long kernels, library, h2d, d2h;
};
std::mutex g_count_mu;
simcse_cuda_counters g_count;
thread_local cu_tally *t_capture; /* this thread's capture in progress, or NULL */
std::map<cudaGraph_t, cu_tally> g_graph_tally;
std::map<cudaGraphExec_t, cu_tally> g_exec_tally;
std::map<uintptr_t, size_t> g_pinned; /* cudaMallocHost blocks: copies into them do not block */
} // namespace

void cu_count_launch(int library) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    if (t_capture) {
        (library ? t_capture->library : t_capture->kernels)++;
        return;
    }
    g_count.launches++;
    if (library)
        g_count.library_calls++, g_count.library_executed++;
    else
        g_count.kernel_launches++, g_count.kernels_executed++;
}
void cu_count_sync(void) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    g_count.host_syncs++;
}
void cu_count_alloc(void *pinned, size_t bytes) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    g_count.allocations++;
    if (pinned) g_pinned[(uintptr_t)pinned] = bytes;
}
void cu_count_free_host(void *p) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    g_count.host_syncs++;
    g_pinned.erase((uintptr_t)p);
}
static int cu_is_pinned_locked(const void *p, size_t n) {
    auto it = g_pinned.upper_bound((uintptr_t)p);
    if (it == g_pinned.begin()) return 0;
    --it;
    return (uintptr_t)p + n <= it->first + it->second;
}
void cu_count_copy(const void *dst, size_t bytes, cudaMemcpyKind kind, int blocking) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    const int h2d = kind == cudaMemcpyHostToDevice, d2h = kind == cudaMemcpyDeviceToHost;
    /* a copy into pageable host memory returns when it is done (never legal in a capture) */
    if (blocking || ((d2h || kind == cudaMemcpyHostToHost) && !t_capture && !cu_is_pinned_locked(dst, bytes)))
        g_count.host_syncs++;
    cu_tally *t = t_capture;
    if (h2d) (t ? t->h2d : g_count.h2d_bytes) += bytes;
    if (d2h) (t ? t->d2h : g_count.d2h_bytes) += bytes;
}
void cu_count_capture_begin(void) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    delete t_capture;
    t_capture = new cu_tally();
}
void cu_count_capture_end(cudaGraph_t g) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    if (t_capture && g) g_graph_tally[g] = *t_capture;
    delete t_capture;
    t_capture = NULL;
}
void cu_count_instantiate(cudaGraphExec_t x, cudaGraph_t g) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    auto it = g_graph_tally.find(g);
    if (it != g_graph_tally.end()) g_exec_tally[x] = it->second;
}
void cu_count_graph_launch(cudaGraphExec_t x) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    g_count.launches++;
    g_count.graph_launches++;
    auto it = g_exec_tally.find(x);
    if (it == g_exec_tally.end()) return; /* made outside kernels/cuda: its content is unknown */
    g_count.kernels_executed += it->second.kernels;
    g_count.library_executed += it->second.library;
    g_count.h2d_bytes += it->second.h2d;
    g_count.d2h_bytes += it->second.d2h;
}
void cu_count_exec_destroy(cudaGraphExec_t x) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    g_exec_tally.erase(x);
}

extern "C" int simcse_cuda_backend_counters_read(simcse_cuda_counters *out) {
    std::lock_guard<std::mutex> lk(g_count_mu);
    *out = g_count;
    return 1;
}
#ifndef SIMCSE_EMU
/* the nvcc build: the backend's count is the only one (the harness has its runtime's) */
extern "C" int simcse_cuda_counters_read(simcse_cuda_counters *out) { return simcse_cuda_backend_counters_read(out); }
#endif

void cu_fail(const char *file, int line, const char *what, const char *detail) {
    simcse_error("cuda backend: %s:%d: %s failed: %s", file, line, what, detail);
    simcse_fatal("%s", simcse_last_error());
}

/* SIMCSE_CUDA_SYNC=1: synchronise after every kernel launch, so that a fault inside a kernel
 * is reported at the launch that caused it (file, line, kernel) rather than at some later
 * call. For debugging (first runs on a new machine); off by default. */
static int g_sync_launches = -1;

void cu_launch_check(const char *file, int line, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) cu_count_launch(0);
    if (e == cudaSuccess) {
        if (g_sync_launches < 0) {
            const char *v = getenv("SIMCSE_CUDA_SYNC");
            g_sync_launches = v && *v && strcmp(v, "0") != 0;
        }
        if (g_sync_launches) e = cudaDeviceSynchronize();
    }
    if (e != cudaSuccess) cu_fail(file, line, what, cudaGetErrorString(e));
}

void cu_enter(simcse_backend *be) {
    int cur = -1;
    CU_CHECK(cudaGetDevice(&cur));
    if (cur != cu_ctx_of(be)->device) CU_CHECK(cudaSetDevice(cu_ctx_of(be)->device));
}

void *cu_alloc(simcse_backend *be, size_t bytes) {
    cu_enter(be);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
            (void)cudaGetLastError();
            free_b = total_b = 0;
        }
        simcse_error("cuda backend: out of device memory allocating %zu bytes on device %d (%.1f MiB free of %.1f MiB)",
                     bytes, cu_ctx_of(be)->device, free_b / 1048576.0, total_b / 1048576.0);
        return NULL;
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        simcse_error("cuda backend: %s:%d: cudaMalloc(%zu bytes) failed: %s", __FILE__, __LINE__, bytes,
                     cudaGetErrorString(e));
        return NULL;
    }
    cu_ctx *c = cu_ctx_of(be);
    if (c->n_blk == c->cap_blk) {
        c->cap_blk = c->cap_blk ? 2 * c->cap_blk : 256;
        c->blk_ptr = (void **)simcse_xrealloc(c->blk_ptr, (size_t)c->cap_blk * sizeof *c->blk_ptr);
        c->blk_size = (size_t *)simcse_xrealloc(c->blk_size, (size_t)c->cap_blk * sizeof *c->blk_size);
    }
    c->blk_ptr[c->n_blk] = p;
    c->blk_size[c->n_blk++] = bytes;
    c->in_use += bytes;
    if (c->in_use > c->peak) c->peak = c->in_use;
    return p;
}

static void cu_memory(simcse_backend *be, size_t *in_use, size_t *peak) {
    *in_use = cu_ctx_of(be)->in_use;
    *peak = cu_ctx_of(be)->peak;
}

static size_t cu_available(simcse_backend *be, const char **source, int *host) {
    cu_enter(be);
    size_t free_b = 0, total_b = 0;
    CU_CHECK(cudaMemGetInfo(&free_b, &total_b));
    *source = "cudaMemGetInfo";
    *host = 0;
    return free_b;
}

void cu_free(simcse_backend *be, void *p) {
    if (!p) return;
    cu_enter(be);
    /* cudaFree waits for the device; the stream's pending work that uses p is done first. */
    CU_CHECK(cudaStreamSynchronize(cu_stream(be)));
    CU_CHECK(cudaFree(p));
    cu_ctx *c = cu_ctx_of(be);
    for (int i = c->n_blk - 1; i >= 0; i--)
        if (c->blk_ptr[i] == p) {
            c->in_use -= c->blk_size[i];
            c->blk_ptr[i] = c->blk_ptr[--c->n_blk];
            c->blk_size[i] = c->blk_size[c->n_blk];
            break;
        }
}

static void cu_to_device(simcse_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cu_enter(be);
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream(be)));
}

static void cu_to_host(simcse_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cu_enter(be);
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream(be)));
    CU_CHECK(cudaStreamSynchronize(cu_stream(be)));
}

/* Device-to-device copy (the regions must not overlap; dst == src is a no-op). */
void cu_copy(simcse_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    cu_enter(be);
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_stream(be)));
}

static void cu_zero(simcse_backend *be, void *p, size_t bytes) {
    if (!bytes) return;
    cu_enter(be);
    CU_CHECK(cudaMemsetAsync(p, 0, bytes, cu_stream(be)));
}

static void cu_sync(simcse_backend *be) {
    cu_enter(be);
    CU_CHECK(cudaStreamSynchronize(cu_stream(be)));
}

void *cu_scratch(simcse_backend *be, size_t bytes) {
    cu_ctx *c = cu_ctx_of(be);
    if (bytes <= c->scratch_bytes) return c->scratch;
    size_t want = bytes + bytes / 4; /* some headroom against repeated growth */
    want = (want + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (c->scratch) {
        /* through cu_free (which waits for the stream: earlier ops may still read it), so
         * the memory statistics drop the old arena; a bare cudaFree left its size counted
         * in in_use forever and a stale entry in the block table */
        cu_free(be, c->scratch);
        c->scratch = NULL;
        c->scratch_bytes = 0;
    }
    void *p = cu_alloc(be, want);
    if (!p) simcse_fatal("%s (scratch space for a CUDA op)", simcse_last_error());
    c->scratch = p;
    c->scratch_bytes = want;
    return p;
}

extern "C" int simcse_cuda_available(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device: not an error to report ... */
        /* ... but say why, for whoever asks (a driver older than the CUDA runtime reads
         * "CUDA driver version is insufficient", not "no device") */
        simcse_error("cuda backend: no usable CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n <= 0) simcse_error("cuda backend: no usable CUDA device: cudaGetDeviceCount found none");
    return n > 0;
}

#define MAX_DEVICES 64
static simcse_backend *g_backends[MAX_DEVICES][2];

/* Constructor failures return NULL + simcse_error(); the partial context is released. */
#define CU_TRY(call)                                                                                                  \
    do {                                                                                                              \
        cudaError_t cu_e_ = (call);                                                                                   \
        if (cu_e_ != cudaSuccess) {                                                                                   \
            (void)cudaGetLastError();                                                                                 \
            simcse_error("cuda backend: %s:%d: %s failed: %s", __FILE__, __LINE__, #call, cudaGetErrorString(cu_e_)); \
            goto fail;                                                                                                \
        }                                                                                                             \
    } while (0)
#define CUBLAS_TRY(call)                                                                  \
    do {                                                                                  \
        cublasStatus_t cu_s_ = (call);                                                    \
        if (cu_s_ != CUBLAS_STATUS_SUCCESS) {                                             \
            simcse_error("cuda backend: %s:%d: %s failed: %s", __FILE__, __LINE__, #call, \
                         cublasGetStatusString(cu_s_));                                   \
            goto fail;                                                                    \
        }                                                                                 \
    } while (0)

extern "C" simcse_backend *simcse_backend_cuda(int device, int bf16) {
    bf16 = bf16 ? 1 : 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        simcse_error("cuda backend: no usable CUDA device (%s)",
                     e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
        return NULL;
    }
    if (device < 0 || device >= n || device >= MAX_DEVICES) {
        simcse_error("cuda backend: device %d does not exist (%d device%s found)", device, n, n == 1 ? "" : "s");
        return NULL;
    }
    if (g_backends[device][bf16]) return g_backends[device][bf16];

    simcse_backend *be = (simcse_backend *)calloc(1, sizeof *be);
    cu_ctx *c = (cu_ctx *)calloc(1, sizeof *c);
    if (!be || !c) simcse_fatal("out of host memory creating the CUDA backend");
    c->device = device;
    c->bf16 = bf16;
    be->ctx = c;
    be->name = bf16 ? "cuda-bf16" : "cuda";
    {
        cudaDeviceProp prop;
        int optin = 0;
        CU_TRY(cudaSetDevice(device));
        CU_TRY(cudaGetDeviceProperties(&prop, device));
        if (prop.major < 8) {
            simcse_error("cuda backend: device %d (%s) has compute capability %d.%d; simcse needs 8.0 or newer", device,
                         prop.name, prop.major, prop.minor);
            goto fail;
        }
        c->sm_count = prop.multiProcessorCount;
        CU_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
        c->smem_optin = (size_t)optin;
        CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamDefault));
        CUBLAS_TRY(cublasCreate(&c->blas));
        CUBLAS_TRY(cublasSetStream(c->blas, c->stream));
        /* fp32 mode: pedantic math (no TF32, no reduced-precision shortcut) for parity with
         * the CPU. bf16 mode: default math, so bf16 x bf16 -> fp32 GEMMs use the tensor
         * cores; its fp32 GEMMs (the loss) still get no TF32, which default math never uses
         * for CUBLAS_COMPUTE_32F. */
        CUBLAS_TRY(cublasSetMathMode(c->blas, bf16 ? CUBLAS_DEFAULT_MATH : CUBLAS_PEDANTIC_MATH));
        CUBLAS_TRY(cublasLtCreate(&c->lt));
        c->lt_ws_bytes = (size_t)32 << 20;
        CU_TRY(cudaMalloc(&c->lt_ws, c->lt_ws_bytes));
        /* the classic API gets its own fixed workspace (graph capture must not allocate) */
        c->blas_ws_bytes = (size_t)32 << 20;
        CU_TRY(cudaMalloc(&c->blas_ws, c->blas_ws_bytes));
        CUBLAS_TRY(cublasSetWorkspace(c->blas, c->blas_ws, c->blas_ws_bytes));
    }

    be->alloc = cu_alloc;
    be->free = cu_free;
    be->to_device = cu_to_device;
    be->to_host = cu_to_host;
    be->zero = cu_zero;
    be->copy = cu_copy;
    be->sync = cu_sync;
    be->memory = cu_memory;
    be->available = cu_available;
    be->embed_fwd = cu_embed_fwd;
    be->embed_bwd = cu_embed_bwd;
    be->linear_fwd = cu_linear_fwd;
    be->linear_bwd = cu_linear_bwd;
    be->layernorm_fwd = cu_layernorm_fwd;
    be->layernorm_bwd = cu_layernorm_bwd;
    be->gelu_fwd = cu_gelu_fwd;
    be->gelu_bwd = cu_gelu_bwd;
    be->tanh_fwd = cu_tanh_fwd;
    be->tanh_bwd = cu_tanh_bwd;
    be->dropout = cu_dropout;
    be->attention_fwd = cu_attention_fwd;
    be->attention_bwd = cu_attention_bwd;
    be->pool_first_fwd = cu_pool_first_fwd;
    be->pool_first_bwd = cu_pool_first_bwd;
    be->pool_mean_fwd = cu_pool_mean_fwd;
    be->pool_mean_bwd = cu_pool_mean_bwd;
    be->add = cu_add;
    be->scale = cu_scale;
    be->infonce = cu_infonce;
    be->sumsq = cu_sumsq;
    be->adamw = cu_adamw;

    cu_attention_init(be);
    g_backends[device][bf16] = be;
    return be;

fail:
    if (c->lt_ws) (void)cudaFree(c->lt_ws);
    if (c->blas_ws) (void)cudaFree(c->blas_ws);
    if (c->lt) (void)cublasLtDestroy(c->lt);
    if (c->blas) (void)cublasDestroy(c->blas);
    if (c->stream) (void)cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    free(c);
    free(be);
    return NULL;
}
