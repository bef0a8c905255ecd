/* The CUDA runtime API of the CPU harness: devices, memory, streams, events, graphs and the
 * counters.
 *
 * Why it is built like this
 * - Deferred streams. Work (kernels, copies, library calls) is queued per stream with its
 *   dependencies (the previous item of its stream, awaited events, the legacy default
 *   stream's implicit ordering with blocking streams) and runs only when the host waits for
 *   it (a synchronise call, a blocking copy, cudaFree) or when later waited-for work depends
 *   on it. So a host read of a pinned buffer before the stream is synchronised sees stale
 *   data, and work on two streams without an event between them runs in an order the GPU
 *   may also pick (cudaDeviceSynchronize drains the newest stream first), as on a GPU and
 *   unlike an eager emulation. Copies from pageable host memory are staged at the call, as
 *   the driver does, and copies into pageable memory return when done.
 * - Device memory is host memory (posix_memalign, exact size, so AddressSanitizer sees
 *   every overrun), filled with 0xff bytes at cudaMalloc: an uninitialised float reads as
 *   NaN. Copies and memsets must stay inside one device allocation. Capacity per device
 *   (EMU_DEVICE_MEMORY_MB, 16 GiB) makes absurd requests fail with
 *   cudaErrorMemoryAllocation as on a GPU. EMU_DEVICE_COUNT devices (4), each sm_90.
 * - Graph capture follows the driver: work on a capturing stream becomes graph nodes (kernel
 *   arguments copied then); streams join through events and must rejoin before
 *   cudaStreamEndCapture; synchronising a capturing stream, cudaDeviceSynchronize,
 *   cudaMalloc / cudaFree / synchronous copies while a global-mode capture runs (or a
 *   thread-local one in this thread), a copy to or from pageable memory, and the legacy
 *   stream during a capture fail with the driver's error and invalidate the capture.
 * - Counters (include/simcse/cuda_counters.h): launches as issued by the host (a kernel, a
 *   library call, a graph launch: one each; captured work counts when its graph is
 *   launched, as one), kernels and library calls as they run (graph replays included),
 *   host-blocking synchronisations (explicit and implicit), device allocations, bytes
 *   copied each way (counted when the copy runs, so graph replays count). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "emu_internal.h"

extern "C" {
#include "simcse/cuda_counters.h"
}

namespace emu {

/* ---------------- state ---------------- */

static std::mutex g_mu;
static std::condition_variable g_cv;
static thread_local cudaError_t t_last_error = cudaSuccess;
static thread_local int t_device = 0;

struct alloc_info {
    size_t size;
    int device;
};
static std::map<uintptr_t, alloc_info> g_allocs; /* device memory */
static std::map<uintptr_t, size_t> g_pinned;     /* page-locked host memory */
static std::map<const void *, int> g_func_smem;  /* cudaFuncAttributeMaxDynamicSharedMemorySize */
static size_t g_in_use[64];

static simcse_cuda_counters g_count;

static int device_count() {
    static int n = -1;
    if (n < 0) {
        const char *e = getenv("EMU_DEVICE_COUNT");
        n = e && *e ? atoi(e) : 4;
        if (n < 0) n = 0;
        if (n > 64) n = 64;
    }
    return n;
}
static size_t device_capacity() {
    static size_t c = 0;
    if (!c) {
        const char *e = getenv("EMU_DEVICE_MEMORY_MB");
        c = (size_t)(e && *e ? atol(e) : 16384) << 20;
    }
    return c;
}

struct work {
    std::function<void()> fn;
    const char *what;
    work_kind kind;
    std::vector<std::shared_ptr<work>> deps;
    int state = 0; /* 0 queued, 1 running, 2 done */
};
typedef std::shared_ptr<work> work_p;

struct gnode {
    std::function<void()> fn;
    const char *what;
    work_kind kind;
    std::vector<gnode *> deps;
};

struct capture;

} // namespace emu

struct CUstream_st {
    int device;
    unsigned flags;
    int legacy;
    emu::work_p last;
    emu::capture *cap;
    emu::gnode *cap_tail;
    std::vector<emu::gnode *> cap_waits; /* joins awaited by the next node */
    unsigned long long order;            /* creation order */
};

struct CUevent_st {
    unsigned flags;
    emu::work_p w;             /* the work the event completes with */
    std::shared_ptr<double> t; /* host time when it completed (seconds) */
    emu::capture *cap;         /* recorded in a capture */
    emu::gnode *cap_node;
    int recorded;
};

struct CUgraph_st {
    std::vector<std::unique_ptr<emu::gnode>> nodes;
};

struct CUgraphExec_st {
    std::shared_ptr<std::vector<emu::gnode>> nodes; /* shared with launches still queued */
};

namespace emu {

struct capture {
    CUgraph_st *graph;
    cudaStreamCaptureMode mode;
    CUstream_st *origin;
    std::thread::id thread;
    int invalid;
    char why[256];
    std::vector<CUstream_st *> streams;
};

static std::set<CUstream_st *> g_streams;
static std::set<CUevent_st *> g_events;
static std::vector<capture *> g_captures;
static CUstream_st *g_legacy[64];
static unsigned long long g_stream_order;

static double now_s() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------- errors ---------------- */

static cudaError_t vapi_error(cudaError_t e, const char *where, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "emu: %s: %s (%s)\n", where, msg, cudaGetErrorName(e));
    t_last_error = e;
    return e;
}

cudaError_t api_error(cudaError_t e, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vapi_error(e, where, fmt, ap);
    va_end(ap);
    return e;
}

static cudaError_t ok() { return cudaSuccess; }

int current_device() { return t_device; }

/* ---------------- memory tables ---------------- */

static int find_alloc_locked(const void *p, char **base, size_t *size, int *device) {
    const uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return 0;
    --it;
    if (a > it->first + it->second.size) return 0;
    if (base) *base = (char *)it->first;
    if (size) *size = it->second.size;
    if (device) *device = it->second.device;
    return 1;
}

int find_alloc(const void *p, char **base, size_t *size, int *device) {
    std::lock_guard<std::mutex> lk(g_mu);
    return find_alloc_locked(p, base, size, device);
}

static int is_pinned_locked(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = g_pinned.upper_bound(a);
    if (it == g_pinned.begin()) return 0;
    --it;
    return a + bytes <= it->first + it->second;
}

int is_pinned(const void *p, size_t bytes) {
    std::lock_guard<std::mutex> lk(g_mu);
    return is_pinned_locked(p, bytes);
}

size_t func_max_dynamic_smem(const void *kfn) {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_func_smem.find(kfn);
    return it == g_func_smem.end() ? SMEM_DEFAULT : (size_t)it->second;
}

/* [p, p + n) inside one device allocation: 1, with its device */
static int device_range(const void *p, size_t n, int *device) {
    char *base;
    size_t size;
    std::lock_guard<std::mutex> lk(g_mu);
    if (!find_alloc_locked(p, &base, &size, device)) return 0;
    return (const char *)p + n <= base + size;
}

void note_kernel_executed() {
    std::lock_guard<std::mutex> lk(g_mu);
    g_count.kernels_executed++;
}

/* ---------------- streams and work ---------------- */

static CUstream_st *legacy_stream(int dev) {
    if (!g_legacy[dev]) {
        g_legacy[dev] = new CUstream_st(); /* never freed: it lives as long as the process */
        g_legacy[dev]->device = dev;
        g_legacy[dev]->legacy = 1;
    }
    return g_legacy[dev];
}

/* The stream a handle names (0, cudaStreamLegacy, cudaStreamPerThread: the current
 * device's legacy stream), or NULL for an unknown handle. Under g_mu. */
static CUstream_st *resolve(cudaStream_t s) {
    if (!s || s == cudaStreamLegacy || s == cudaStreamPerThread) return legacy_stream(t_device);
    return g_streams.count(s) ? s : NULL;
}

/* Captures that forbid "unsafe" calls in this thread right now. */
static capture *prohibiting_capture() {
    for (capture *c : g_captures) {
        if (c->mode == cudaStreamCaptureModeGlobal) return c;
        if (c->mode == cudaStreamCaptureModeThreadLocal && c->thread == std::this_thread::get_id()) return c;
    }
    return NULL;
}

static void invalidate(capture *c, const char *why) {
    if (!c->invalid) {
        c->invalid = 1;
        snprintf(c->why, sizeof c->why, "%s", why);
    }
}

static cudaError_t capture_violation(cudaError_t e, capture *c, const char *where, const char *what) {
    char why[256];
    snprintf(why, sizeof why, "%s: %s", where, what);
    invalidate(c, why);
    return api_error(e, where, "%s while a stream capture is active (the capture is now invalidated)", what);
}

static void add_node(CUstream_st *s, const char *what, work_kind kind, std::function<void()> fn) {
    auto n = std::make_unique<gnode>();
    n->fn = std::move(fn);
    n->what = what;
    n->kind = kind;
    if (s->cap_tail) n->deps.push_back(s->cap_tail);
    for (gnode *d : s->cap_waits) n->deps.push_back(d);
    s->cap_waits.clear();
    s->cap_tail = n.get();
    s->cap->graph->nodes.push_back(std::move(n));
}

static void count_issue(work_kind kind) {
    if (kind == WORK_KERNEL) g_count.launches++, g_count.kernel_launches++;
    if (kind == WORK_LIBRARY) g_count.launches++, g_count.library_calls++;
}

/* Under g_mu. */
static cudaError_t submit_locked(CUstream_st *s, const char *what, work_kind kind, std::function<void()> fn,
                                 work_p extra_dep = work_p()) {
    if (kind == WORK_LIBRARY) /* counted when it runs, so a graph replay counts its library calls */
        fn = [inner = std::move(fn)] {
            {
                std::lock_guard<std::mutex> l(g_mu);
                g_count.library_executed++;
            }
            inner();
        };
    if (s->cap) {
        add_node(s, what, kind, std::move(fn));
        return cudaSuccess;
    }
    if (s->legacy)
        if (capture *c = prohibiting_capture())
            return capture_violation(cudaErrorStreamCaptureImplicit, c, what,
                                     "work on the legacy default stream (stream 0), which synchronises with the "
                                     "capturing stream");
    auto w = std::make_shared<work>();
    w->fn = std::move(fn);
    w->what = what;
    w->kind = kind;
    if (s->last && s->last->state != 2) w->deps.push_back(s->last);
    if (extra_dep && extra_dep->state != 2) w->deps.push_back(extra_dep);
    if (s->legacy) {
        for (CUstream_st *o : g_streams)
            if (o->device == s->device && !(o->flags & cudaStreamNonBlocking) && o->last && o->last->state != 2)
                w->deps.push_back(o->last);
    } else if (!(s->flags & cudaStreamNonBlocking)) {
        CUstream_st *l = legacy_stream(s->device);
        if (l->last && l->last->state != 2) w->deps.push_back(l->last);
    }
    s->last = w;
    count_issue(kind);
    return cudaSuccess;
}

cudaError_t submit(cudaStream_t hs, const char *what, work_kind kind, std::function<void()> fn) {
    std::lock_guard<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s) return api_error(cudaErrorInvalidResourceHandle, what, "stream %p does not exist", (void *)hs);
    return submit_locked(s, what, kind, std::move(fn));
}

/* Runs `target` and everything it depends on, dependencies first. */
static void complete(std::unique_lock<std::mutex> &lk, work_p target) {
    std::vector<work *> stack;
    if (!target) return;
    stack.push_back(target.get());
    while (!stack.empty()) {
        work *top = stack.back();
        if (top->state == 2) {
            stack.pop_back();
            continue;
        }
        work *next = NULL;
        for (auto &d : top->deps)
            if (d->state != 2) {
                next = d.get();
                break;
            }
        if (next) {
            if (next->state == 1)
                g_cv.wait(lk); /* another host thread runs it */
            else
                stack.push_back(next);
            continue;
        }
        if (top->state == 1) {
            g_cv.wait(lk);
            continue;
        }
        top->state = 1;
        std::function<void()> fn = std::move(top->fn);
        lk.unlock();
        fn();
        lk.lock();
        top->state = 2;
        top->deps.clear();
        g_cv.notify_all();
        stack.pop_back();
    }
}

static void drain_device(std::unique_lock<std::mutex> &lk, int dev) {
    /* newest stream first: work on two streams without an event between them may run in
     * either order on a GPU, and this order is the one an eager emulation never shows */
    std::vector<CUstream_st *> v;
    for (CUstream_st *s : g_streams)
        if (s->device == dev) v.push_back(s);
    std::sort(v.begin(), v.end(), [](CUstream_st *a, CUstream_st *b) { return a->order > b->order; });
    for (CUstream_st *s : v) complete(lk, s->last);
    complete(lk, legacy_stream(dev)->last);
}

} // namespace emu

using namespace emu;

cudaError_t emu_stream_submit(cudaStream_t s, const char *what, std::function<void()> work) {
    return emu::submit(s, what, WORK_LIBRARY, std::move(work));
}

int emu_device_of(const void *p) {
    int d;
    return emu::find_alloc(p, NULL, NULL, &d) ? d : -1;
}
int emu_current_device(void) { return t_device; }
int emu_is_device_range(const void *p, size_t bytes) {
    int d;
    return device_range(p, bytes, &d);
}

extern "C" int simcse_cuda_counters_read(simcse_cuda_counters *out) {
    std::lock_guard<std::mutex> lk(g_mu);
    *out = g_count;
    return 1;
}

/* ---------------- errors ---------------- */

extern "C" const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define E(x) \
    case x: return #x;
        E(cudaSuccess)
        E(cudaErrorInvalidValue) E(cudaErrorMemoryAllocation) E(cudaErrorInitializationError)
            E(cudaErrorInvalidConfiguration) E(cudaErrorInvalidPitchValue) E(cudaErrorInvalidSymbol)
                E(cudaErrorInvalidDevicePointer) E(cudaErrorInvalidMemcpyDirection) E(cudaErrorInvalidResourceHandle)
                    E(cudaErrorIllegalState) E(cudaErrorNotReady) E(cudaErrorIllegalAddress)
                        E(cudaErrorLaunchOutOfResources) E(cudaErrorNoDevice) E(cudaErrorInvalidDevice)
                            E(cudaErrorStreamCaptureUnsupported) E(cudaErrorStreamCaptureInvalidated)
                                E(cudaErrorStreamCaptureMerge) E(cudaErrorStreamCaptureUnmatched)
                                    E(cudaErrorStreamCaptureUnjoined) E(cudaErrorStreamCaptureIsolation)
                                        E(cudaErrorStreamCaptureImplicit) E(cudaErrorCapturedEvent)
                                            E(cudaErrorStreamCaptureWrongThread) E(cudaErrorGraphExecUpdateFailure)
                                                E(cudaErrorInvalidDeviceFunction) E(cudaErrorNotSupported)
                                                    E(cudaErrorUnknown)
#undef E
    }
    return "cudaErrorUnknown";
}

extern "C" const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "operation not permitted in current state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureUnjoined: return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    default: return cudaGetErrorName(e);
    }
}

extern "C" cudaError_t cudaGetLastError(void) {
    cudaError_t e = t_last_error;
    t_last_error = cudaSuccess;
    return e;
}
extern "C" cudaError_t cudaPeekAtLastError(void) { return t_last_error; }

/* ---------------- devices ---------------- */

extern "C" cudaError_t cudaGetDeviceCount(int *count) {
    *count = device_count();
    if (!*count) return api_error(cudaErrorNoDevice, "cudaGetDeviceCount", "EMU_DEVICE_COUNT is 0");
    return ok();
}
extern "C" cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= device_count())
        return api_error(cudaErrorInvalidDevice, "cudaSetDevice", "device %d does not exist (%d devices)", d,
                         device_count());
    t_device = d;
    return ok();
}
extern "C" cudaError_t cudaGetDevice(int *d) {
    *d = t_device;
    return ok();
}
extern "C" cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d < 0 || d >= device_count())
        return api_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties", "device %d does not exist", d);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "simcse CPU execution harness (sm_90 limits)");
    p->totalGlobalMem = device_capacity();
    p->sharedMemPerBlock = SMEM_DEFAULT;
    p->sharedMemPerBlockOptin = SMEM_OPTIN_MAX;
    p->sharedMemPerMultiprocessor = 233472;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = SM_COUNT;
    p->maxThreadsPerMultiProcessor = 2048;
    p->totalConstMem = 65536;
    p->l2CacheSize = 50 << 20;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 2;
    p->unifiedAddressing = 1;
    p->pciBusID = d;
    return ok();
}
extern "C" cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, d);
    if (e) return e;
    switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *v = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *v = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *v = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *v = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *v = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *v = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *v = (int)p.sharedMemPerMultiprocessor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)p.sharedMemPerBlockOptin; break;
    default: return api_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute", "attribute %d is not modelled", (int)a);
    }
    return ok();
}
extern "C" cudaError_t cudaDriverGetVersion(int *v) {
    *v = CUDART_VERSION;
    return ok();
}
extern "C" cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = CUDART_VERSION;
    return ok();
}

extern "C" cudaError_t cudaDeviceSynchronize(void) {
    std::unique_lock<std::mutex> lk(g_mu);
    for (capture *c : g_captures)
        if (c->origin->device == t_device || c->mode == cudaStreamCaptureModeGlobal)
            return capture_violation(cudaErrorStreamCaptureUnsupported, c, "cudaDeviceSynchronize",
                                     "synchronising the device");
    g_count.host_syncs++;
    drain_device(lk, t_device);
    return ok();
}
extern "C" cudaError_t cudaDeviceReset(void) { return cudaDeviceSynchronize(); }

extern "C" cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    std::lock_guard<std::mutex> lk(g_mu);
    *total_b = device_capacity();
    *free_b = device_capacity() - g_in_use[t_device];
    return ok();
}

extern "C" cudaError_t emu_func_set_attribute(const void *func, cudaFuncAttribute attr, int value) {
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > SMEM_OPTIN_MAX)
            return api_error(cudaErrorInvalidValue, "cudaFuncSetAttribute",
                             "%d bytes of dynamic shared memory exceed sm_90's %zu (sharedMemPerBlockOptin)", value,
                             SMEM_OPTIN_MAX);
        std::lock_guard<std::mutex> lk(g_mu);
        g_func_smem[func] = value;
        return ok();
    }
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return ok();
    return api_error(cudaErrorInvalidValue, "cudaFuncSetAttribute", "attribute %d is not modelled", (int)attr);
}

/* ---------------- memory ---------------- */

extern "C" cudaError_t cudaMalloc(void **p, size_t bytes) {
    std::lock_guard<std::mutex> lk(g_mu);
    *p = NULL;
    if (capture *c = prohibiting_capture())
        return capture_violation(cudaErrorStreamCaptureUnsupported, c, "cudaMalloc", "allocating device memory");
    g_count.allocations++;
    const int dev = t_device;
    if (bytes > device_capacity() - g_in_use[dev])
        return api_error(cudaErrorMemoryAllocation, "cudaMalloc",
                         "%zu bytes requested on device %d, %zu of %zu bytes free", bytes, dev,
                         device_capacity() - g_in_use[dev], device_capacity());
    void *m = NULL;
    if (posix_memalign(&m, 256, bytes ? bytes : 1) != 0)
        return api_error(cudaErrorMemoryAllocation, "cudaMalloc", "host memory for %zu bytes is exhausted", bytes);
    memset(m, 0xff, bytes); /* the NaN pattern: uninitialised reads show */
    g_allocs[(uintptr_t)m] = alloc_info{bytes, dev};
    g_in_use[dev] += bytes;
    *p = m;
    return ok();
}

extern "C" cudaError_t cudaFree(void *p) {
    std::unique_lock<std::mutex> lk(g_mu);
    if (!p) return ok();
    if (capture *c = prohibiting_capture())
        return capture_violation(cudaErrorStreamCaptureUnsupported, c, "cudaFree", "freeing device memory");
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end())
        return api_error(cudaErrorInvalidValue, "cudaFree", "%p is not the start of a device allocation", p);
    const int dev = it->second.device;
    /* cudaFree waits for the device: pending work may still use the memory */
    g_count.host_syncs++;
    drain_device(lk, dev);
    it = g_allocs.find((uintptr_t)p);
    g_in_use[dev] -= it->second.size;
    g_allocs.erase(it);
    free(p);
    return ok();
}

extern "C" cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
    std::lock_guard<std::mutex> lk(g_mu);
    (void)flags;
    *p = NULL;
    if (capture *c = prohibiting_capture())
        return capture_violation(cudaErrorStreamCaptureUnsupported, c, "cudaHostAlloc", "allocating pinned memory");
    g_count.allocations++;
    void *m = NULL;
    if (posix_memalign(&m, 4096, bytes ? bytes : 1) != 0)
        return api_error(cudaErrorMemoryAllocation, "cudaHostAlloc", "%zu bytes", bytes);
    memset(m, 0xff, bytes);
    g_pinned[(uintptr_t)m] = bytes;
    *p = m;
    return ok();
}
extern "C" cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
extern "C" cudaError_t cudaFreeHost(void *p) {
    std::unique_lock<std::mutex> lk(g_mu);
    if (!p) return ok();
    auto it = g_pinned.find((uintptr_t)p);
    if (it == g_pinned.end())
        return api_error(cudaErrorInvalidValue, "cudaFreeHost", "%p was not allocated by cudaMallocHost", p);
    g_count.host_syncs++;
    for (int d = 0; d < device_count(); d++) drain_device(lk, d);
    g_pinned.erase(it);
    free(p);
    return ok();
}
extern "C" cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned int flags) {
    std::lock_guard<std::mutex> lk(g_mu);
    (void)flags;
    if (is_pinned_locked(p, 1)) return api_error(cudaErrorInvalidValue, "cudaHostRegister", "%p is already pinned", p);
    g_pinned[(uintptr_t)p] = bytes;
    return ok();
}
extern "C" cudaError_t cudaHostUnregister(void *p) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!g_pinned.erase((uintptr_t)p))
        return api_error(cudaErrorInvalidValue, "cudaHostUnregister", "%p is not registered", p);
    return ok();
}

/* Checks a copy's ranges and resolves cudaMemcpyDefault. */
static cudaError_t check_copy(const char *where, void *dst, const void *src, size_t n, cudaMemcpyKind *kind) {
    int dd = -1, sd = -1;
    const int dst_dev = device_range(dst, n, &dd), src_dev = device_range(src, n, &sd);
    if (*kind == cudaMemcpyDefault)
        *kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                        : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    const int want_dst = *kind == cudaMemcpyHostToDevice || *kind == cudaMemcpyDeviceToDevice;
    const int want_src = *kind == cudaMemcpyDeviceToHost || *kind == cudaMemcpyDeviceToDevice;
    if (want_dst && !dst_dev)
        return api_error(cudaErrorInvalidValue, where, "destination [%p, +%zu) is not inside one device allocation",
                         dst, n);
    if (want_src && !src_dev)
        return api_error(cudaErrorInvalidValue, where, "source [%p, +%zu) is not inside one device allocation", src, n);
    if (!want_dst && dst_dev)
        return api_error(cudaErrorInvalidValue, where, "destination %p is device memory, but the copy kind says host",
                         dst);
    if (!want_src && src_dev)
        return api_error(cudaErrorInvalidValue, where, "source %p is device memory, but the copy kind says host", src);
    return cudaSuccess;
}

static cudaError_t memcpy_async(const char *where, void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                                cudaStream_t hs, int blocking) {
    if (!n) return ok();
    cudaError_t e = check_copy(where, dst, src, n, &kind);
    if (e) return e;
    std::unique_lock<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s) return api_error(cudaErrorInvalidResourceHandle, where, "stream %p does not exist", (void *)hs);
    const int host_src = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyHostToHost;
    const int host_dst = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost;
    const int pageable_src = host_src && !is_pinned_locked(src, n),
              pageable_dst = host_dst && !is_pinned_locked(dst, n);
    if (blocking)
        if (capture *c = prohibiting_capture())
            return capture_violation(cudaErrorStreamCaptureUnsupported, c, where, "a synchronous copy");
    if (s->cap && (pageable_src || pageable_dst)) {
        invalidate(s->cap, "a copy to or from pageable host memory");
        return api_error(cudaErrorStreamCaptureUnsupported, where,
                         "a copy %s pageable host memory cannot be captured (use pinned memory); the capture is now "
                         "invalidated",
                         pageable_src ? "from" : "to");
    }
    std::function<void()> fn;
    const int h2d = kind == cudaMemcpyHostToDevice, d2h = kind == cudaMemcpyDeviceToHost;
    if (pageable_src && !blocking) {
        /* the driver stages a pageable source before the call returns */
        auto staged = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + n);
        fn = [dst, staged, n, h2d] {
            memcpy(dst, staged->data(), n);
            if (h2d) {
                std::lock_guard<std::mutex> l(g_mu);
                g_count.h2d_bytes += n;
            }
        };
    } else {
        fn = [dst, src, n, h2d, d2h] {
            memcpy(dst, src, n);
            std::lock_guard<std::mutex> l(g_mu);
            if (h2d) g_count.h2d_bytes += n;
            if (d2h) g_count.d2h_bytes += n;
        };
    }
    e = submit_locked(s, where, WORK_COPY, std::move(fn));
    if (e) return e;
    if (blocking || (pageable_dst && !s->cap)) { /* into pageable memory: returns when done */
        g_count.host_syncs++;
        complete(lk, s->last);
    }
    return ok();
}

extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    return memcpy_async("cudaMemcpyAsync", dst, src, n, kind, s, 0);
}
extern "C" cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    return memcpy_async("cudaMemcpy", dst, src, n, kind, 0, 1);
}

static cudaError_t memset_async(const char *where, void *p, int v, size_t n, cudaStream_t hs, int blocking) {
    if (!n) return ok();
    int d;
    if (!device_range(p, n, &d))
        return api_error(cudaErrorInvalidValue, where, "[%p, +%zu) is not inside one device allocation", p, n);
    std::unique_lock<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s) return api_error(cudaErrorInvalidResourceHandle, where, "stream %p does not exist", (void *)hs);
    if (blocking)
        if (capture *c = prohibiting_capture())
            return capture_violation(cudaErrorStreamCaptureUnsupported, c, where, "a synchronous memset");
    cudaError_t e = submit_locked(s, where, WORK_COPY, [p, v, n] { memset(p, v, n); });
    if (e) return e;
    if (blocking) {
        g_count.host_syncs++;
        complete(lk, s->last);
    }
    return ok();
}
extern "C" cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    return memset_async("cudaMemsetAsync", p, v, n, s, 0);
}
extern "C" cudaError_t cudaMemset(void *p, int v, size_t n) { return memset_async("cudaMemset", p, v, n, 0, 1); }

/* ---------------- streams ---------------- */

extern "C" cudaError_t cudaStreamCreateWithFlags(cudaStream_t *ps, unsigned int flags) {
    std::lock_guard<std::mutex> lk(g_mu);
    CUstream_st *s = new CUstream_st();
    s->device = t_device;
    s->flags = flags;
    s->order = ++g_stream_order;
    g_streams.insert(s);
    *ps = s;
    return ok();
}
extern "C" cudaError_t cudaStreamCreate(cudaStream_t *ps) { return cudaStreamCreateWithFlags(ps, 0); }

extern "C" cudaError_t cudaStreamDestroy(cudaStream_t hs) {
    std::unique_lock<std::mutex> lk(g_mu);
    if (!g_streams.count(hs))
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy", "stream %p does not exist", (void *)hs);
    if (hs->cap)
        return capture_violation(cudaErrorStreamCaptureUnsupported, hs->cap, "cudaStreamDestroy",
                                 "destroying a capturing stream");
    /* work already queued still runs (the driver finishes it); the handle goes now */
    complete(lk, hs->last);
    g_streams.erase(hs);
    delete hs;
    return ok();
}

extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t hs) {
    std::unique_lock<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s)
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize", "stream %p does not exist",
                         (void *)hs);
    if (s->cap)
        return capture_violation(cudaErrorStreamCaptureUnsupported, s->cap, "cudaStreamSynchronize",
                                 "synchronising a capturing stream");
    if (s->legacy)
        if (capture *c = prohibiting_capture())
            return capture_violation(cudaErrorStreamCaptureImplicit, c, "cudaStreamSynchronize",
                                     "synchronising the legacy default stream");
    g_count.host_syncs++;
    if (s->legacy)
        drain_device(lk, s->device); /* the legacy stream waits for every blocking stream */
    else
        complete(lk, s->last);
    return ok();
}

extern "C" cudaError_t cudaStreamQuery(cudaStream_t hs) {
    std::unique_lock<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s) return api_error(cudaErrorInvalidResourceHandle, "cudaStreamQuery", "stream %p does not exist", (void *)hs);
    if (s->cap)
        return capture_violation(cudaErrorStreamCaptureUnsupported, s->cap, "cudaStreamQuery",
                                 "querying a capturing stream");
    /* deferred work only runs when waited for: a query that polls must see it finish */
    complete(lk, s->last);
    return ok();
}

extern "C" cudaError_t cudaLaunchHostFunc(cudaStream_t hs, cudaHostFn_t fn, void *user) {
    std::lock_guard<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s)
        return api_error(cudaErrorInvalidResourceHandle, "cudaLaunchHostFunc", "stream %p does not exist", (void *)hs);
    return submit_locked(s, "cudaLaunchHostFunc", WORK_OTHER, [fn, user] { fn(user); });
}

/* ---------------- events ---------------- */

extern "C" cudaError_t cudaEventCreateWithFlags(cudaEvent_t *pe, unsigned int flags) {
    std::lock_guard<std::mutex> lk(g_mu);
    CUevent_st *e = new CUevent_st();
    e->flags = flags;
    e->t = std::make_shared<double>(0.0);
    g_events.insert(e);
    *pe = e;
    return ok();
}
extern "C" cudaError_t cudaEventCreate(cudaEvent_t *pe) { return cudaEventCreateWithFlags(pe, 0); }
extern "C" cudaError_t cudaEventDestroy(cudaEvent_t e) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!g_events.erase(e))
        return api_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy", "event %p does not exist", (void *)e);
    delete e;
    return ok();
}

extern "C" cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t hs) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!g_events.count(e))
        return api_error(cudaErrorInvalidResourceHandle, "cudaEventRecord", "event %p does not exist", (void *)e);
    CUstream_st *s = resolve(hs);
    if (!s) return api_error(cudaErrorInvalidResourceHandle, "cudaEventRecord", "stream %p does not exist", (void *)hs);
    e->recorded = 1;
    if (s->cap) {
        e->cap = s->cap;
        e->cap_node = s->cap_tail;
        e->w.reset();
        /* a wait recorded before the event is part of what the event covers */
        if (!s->cap_waits.empty()) {
            add_node(s, "cudaEventRecord", WORK_OTHER, [] {});
            e->cap_node = s->cap_tail;
        }
        return ok();
    }
    e->cap = NULL;
    e->cap_node = NULL;
    std::shared_ptr<double> t = e->t;
    cudaError_t r = submit_locked(s, "cudaEventRecord", WORK_OTHER, [t] { *t = now_s(); });
    if (r) return r;
    e->w = s->last;
    return ok();
}

extern "C" cudaError_t cudaStreamWaitEvent(cudaStream_t hs, cudaEvent_t e, unsigned int flags) {
    std::lock_guard<std::mutex> lk(g_mu);
    (void)flags;
    if (!g_events.count(e))
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent", "event %p does not exist", (void *)e);
    CUstream_st *s = resolve(hs);
    if (!s)
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent", "stream %p does not exist", (void *)hs);
    if (e->cap) {
        if (s->cap && s->cap != e->cap)
            return api_error(cudaErrorStreamCaptureIsolation, "cudaStreamWaitEvent",
                             "the stream belongs to another capture than the event");
        if (!s->cap) { /* fork: s joins the capture */
            if (s->legacy)
                return capture_violation(cudaErrorStreamCaptureImplicit, e->cap, "cudaStreamWaitEvent",
                                         "the legacy stream waiting on a captured event");
            s->cap = e->cap;
            s->cap_tail = NULL;
            s->cap_waits.clear();
            e->cap->streams.push_back(s);
        }
        if (e->cap_node) s->cap_waits.push_back(e->cap_node);
        return ok();
    }
    if (s->cap) {
        invalidate(s->cap, "a wait on an event recorded outside the capture");
        return api_error(cudaErrorStreamCaptureIsolation, "cudaStreamWaitEvent",
                         "a capturing stream cannot wait on an event recorded outside the capture");
    }
    return submit_locked(
        s, "cudaStreamWaitEvent", WORK_OTHER, [] {}, e->w);
}

extern "C" cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    std::unique_lock<std::mutex> lk(g_mu);
    if (!g_events.count(e))
        return api_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize", "event %p does not exist", (void *)e);
    if (e->cap)
        return capture_violation(cudaErrorStreamCaptureUnsupported, e->cap, "cudaEventSynchronize",
                                 "waiting on an event recorded in a capture");
    g_count.host_syncs++;
    complete(lk, e->w);
    return ok();
}

extern "C" cudaError_t cudaEventQuery(cudaEvent_t e) {
    std::unique_lock<std::mutex> lk(g_mu);
    if (!g_events.count(e))
        return api_error(cudaErrorInvalidResourceHandle, "cudaEventQuery", "event %p does not exist", (void *)e);
    if (e->cap)
        return capture_violation(cudaErrorStreamCaptureUnsupported, e->cap, "cudaEventQuery",
                                 "querying an event recorded in a capture");
    complete(lk, e->w);
    return ok();
}

extern "C" cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    std::unique_lock<std::mutex> lk(g_mu);
    if (!g_events.count(a) || !g_events.count(b))
        return api_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime", "unknown event");
    if ((a->flags | b->flags) & cudaEventDisableTiming)
        return api_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime", "an event was created without timing");
    if (!a->recorded || !b->recorded || (a->w && a->w->state != 2) || (b->w && b->w->state != 2))
        return api_error(cudaErrorNotReady, "cudaEventElapsedTime", "an event has not completed");
    *ms = (float)((*b->t - *a->t) * 1e3);
    return ok();
}

/* ---------------- graphs ---------------- */

extern "C" cudaError_t cudaStreamBeginCapture(cudaStream_t hs, cudaStreamCaptureMode mode) {
    std::lock_guard<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s)
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamBeginCapture", "stream %p does not exist",
                         (void *)hs);
    if (s->legacy)
        return api_error(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture",
                         "the legacy default stream cannot be captured");
    if (s->cap) return api_error(cudaErrorIllegalState, "cudaStreamBeginCapture", "the stream is already capturing");
    capture *c = new capture();
    c->graph = new CUgraph_st();
    c->mode = mode;
    c->origin = s;
    c->thread = std::this_thread::get_id();
    c->streams.push_back(s);
    s->cap = c;
    s->cap_tail = NULL;
    s->cap_waits.clear();
    g_captures.push_back(c);
    return ok();
}

static int reaches(const gnode *from, const gnode *target) {
    std::vector<const gnode *> st{from};
    std::set<const gnode *> seen;
    while (!st.empty()) {
        const gnode *n = st.back();
        st.pop_back();
        if (n == target) return 1;
        if (!n || !seen.insert(n).second) continue;
        for (const gnode *d : n->deps) st.push_back(d);
    }
    return 0;
}

extern "C" cudaError_t cudaStreamEndCapture(cudaStream_t hs, cudaGraph_t *graph) {
    std::lock_guard<std::mutex> lk(g_mu);
    *graph = NULL;
    CUstream_st *s = resolve(hs);
    if (!s)
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamEndCapture", "stream %p does not exist",
                         (void *)hs);
    capture *c = s->cap;
    if (!c) return api_error(cudaErrorIllegalState, "cudaStreamEndCapture", "the stream is not capturing");
    if (c->origin != s)
        return api_error(cudaErrorStreamCaptureUnmatched, "cudaStreamEndCapture",
                         "the capture must end in the stream it began in");
    if (!c->invalid) {
        for (CUstream_st *o : c->streams) {
            if (o == s || !o->cap_tail) continue;
            int joined = 0;
            for (gnode *w : s->cap_waits) joined |= reaches(w, o->cap_tail);
            joined |= reaches(s->cap_tail, o->cap_tail);
            if (!joined) {
                invalidate(c, "a forked stream was not joined back");
                api_error(cudaErrorStreamCaptureUnjoined, "cudaStreamEndCapture",
                          "stream %p forked into the capture and was not joined back into the origin stream (record "
                          "an event in it and wait for it in the origin stream)",
                          (void *)o);
            }
        }
    }
    for (CUstream_st *o : c->streams) {
        o->cap = NULL;
        o->cap_tail = NULL;
        o->cap_waits.clear();
    }
    g_captures.erase(std::find(g_captures.begin(), g_captures.end(), c));
    for (CUevent_st *e : g_events)
        if (e->cap == c) e->cap = NULL, e->cap_node = NULL, e->recorded = 0;
    cudaError_t r = cudaSuccess;
    if (c->invalid) {
        fprintf(stderr, "emu: cudaStreamEndCapture: the capture was invalidated by %s\n", c->why);
        delete c->graph;
        r = t_last_error =
            c->why[0] && strstr(c->why, "joined") ? cudaErrorStreamCaptureUnjoined : cudaErrorStreamCaptureInvalidated;
    } else {
        *graph = c->graph;
    }
    delete c;
    return r;
}

extern "C" cudaError_t cudaStreamIsCapturing(cudaStream_t hs, cudaStreamCaptureStatus *st) {
    std::lock_guard<std::mutex> lk(g_mu);
    CUstream_st *s = resolve(hs);
    if (!s)
        return api_error(cudaErrorInvalidResourceHandle, "cudaStreamIsCapturing", "stream %p does not exist",
                         (void *)hs);
    *st = !s->cap           ? cudaStreamCaptureStatusNone
          : s->cap->invalid ? cudaStreamCaptureStatusInvalidated
                            : cudaStreamCaptureStatusActive;
    return ok();
}

extern "C" cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *count) {
    if (!g) return api_error(cudaErrorInvalidValue, "cudaGraphGetNodes", "no graph");
    if (nodes)
        for (size_t i = 0; i < *count && i < g->nodes.size(); i++) nodes[i] = (cudaGraphNode_t)g->nodes[i].get();
    else
        *count = g->nodes.size();
    return ok();
}

extern "C" cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    if (!g) return api_error(cudaErrorInvalidValue, "cudaGraphInstantiate", "no graph");
    CUgraphExec_st *x = new CUgraphExec_st();
    x->nodes = std::make_shared<std::vector<gnode>>();
    /* capture order is a topological order of the dependencies */
    for (auto &n : g->nodes) x->nodes->push_back(gnode{n->fn, n->what, n->kind, {}});
    *exec = x;
    return ok();
}

extern "C" cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t hs) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!x) return api_error(cudaErrorInvalidValue, "cudaGraphLaunch", "no executable graph");
    CUstream_st *s = resolve(hs);
    if (!s) return api_error(cudaErrorInvalidResourceHandle, "cudaGraphLaunch", "stream %p does not exist", (void *)hs);
    if (s->cap)
        return api_error(cudaErrorStreamCaptureUnsupported, "cudaGraphLaunch",
                         "launching a graph into a capturing stream is not modelled");
    std::shared_ptr<std::vector<gnode>> nodes = x->nodes;
    cudaError_t e = submit_locked(s, "cudaGraphLaunch", WORK_OTHER, [nodes] {
        for (auto &n : *nodes) n.fn();
    });
    if (e) return e;
    g_count.launches++;
    g_count.graph_launches++;
    return ok();
}

extern "C" cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
    delete x;
    return ok();
}
extern "C" cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return ok();
}
