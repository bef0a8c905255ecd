/* Self-tests of the CPU execution harness (suite emu_rules): each rule of issue 11 (1-6)
 * against a deliberately broken kernel the harness must reject, with an error naming the
 * kernel and what went wrong, and the correct kernel beside it that it must accept.
 *
 * A rejection aborts the process (or is an AddressSanitizer report), so each broken case runs
 * in a forked child whose stderr is captured and checked; errors the driver returns
 * (launch configuration, capture rules) are checked in-process. Built and run only by
 * make test-emu (it is CUDA source: tests/emu/rewrite.pl rewrites its launches). */
#include <criterion/criterion.h>
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "emu/emu.h"
extern "C" {
#include "simcse/cuda_counters.h"
}

/* Runs fn in a child; returns its stderr; *failed = it did not exit 0. */
static std::string in_child(void (*fn)(void), int *failed) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        fn();
        fflush(stderr);
        _exit(0);
    }
    close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, (size_t)n);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *failed = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return out;
}

static void expect_rejected(void (*fn)(void), const char *kernel, const char *problem) {
    int failed = 0;
    std::string err = in_child(fn, &failed);
    cr_assert(failed, "the harness accepted the broken kernel %s; its stderr:\n%s", kernel, err.c_str());
    cr_assert(err.find(kernel) != std::string::npos, "the error does not name %s:\n%s", kernel, err.c_str());
    cr_assert(err.find(problem) != std::string::npos, "the error does not say '%s':\n%s", problem, err.c_str());
}

static void expect_accepted(void (*fn)(void)) {
    int failed = 0;
    std::string err = in_child(fn, &failed);
    cr_assert(!failed, "the harness rejected a correct kernel:\n%s", err.c_str());
}

#define CK(call) cr_assert_eq((call), cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

/* ---------------- rule 1: barriers ---------------- */

__global__ void k_divergent_barrier(float *out) {
    if (threadIdx.x < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}
__global__ void k_uniform_barrier(float *out) {
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}
/* lane 0 waits at the barrier while its warp waits for it in a shuffle: a GPU hangs */
__global__ void k_barrier_vs_shuffle(float *out) {
    float v = threadIdx.x;
    if (threadIdx.x == 0)
        __syncthreads();
    else
        v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

/* Warp 0 waits at the barrier; warp 1 never gets there as a whole: its lane 5 is at the barrier
 * while lanes 0-4 and 6-31 wait in a shuffle for it (a GPU hangs). The harness must say which
 * lane of warp 1 is missing (lane 5, not a lane of warp 0, which is at the barrier). */
__global__ void k_warp1_never_reaches(float *out) {
    float v = threadIdx.x;
    if (threadIdx.x == 37)
        __syncthreads();
    else if (threadIdx.x >= 32)
        v = __shfl_xor_sync(0xffffffffu, v, 1);
    else
        __syncthreads();
    out[threadIdx.x] = v;
}

static float *dev_floats(size_t n) {
    float *p = NULL;
    if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) abort();
    return p;
}

static void run_divergent(void) {
    float *o = dev_floats(64);
    k_divergent_barrier<<<1, 64>>>(o);
    cudaDeviceSynchronize();
}
static void run_uniform(void) {
    float *o = dev_floats(64);
    k_uniform_barrier<<<1, 64>>>(o);
    if (cudaDeviceSynchronize() != cudaSuccess) abort();
}
static void run_barrier_vs_shuffle(void) {
    float *o = dev_floats(32);
    k_barrier_vs_shuffle<<<1, 32>>>(o);
    cudaDeviceSynchronize();
}

static void run_warp1_never_reaches(void) {
    float *o = dev_floats(64);
    k_warp1_never_reaches<<<1, 64>>>(o);
    cudaDeviceSynchronize();
}

Test(emu_rules, divergent_barrier_is_an_error) {
    expect_rejected(run_divergent, "k_divergent_barrier", "divergent barrier");
    expect_accepted(run_uniform);
}
Test(emu_rules, barrier_a_warp_never_reaches_is_an_error_not_a_hang) {
    expect_rejected(run_barrier_vs_shuffle, "k_barrier_vs_shuffle",
                    "__shfl_xor_sync: lane 0 of the mask 0xffffffff never arrives: it waits at ");
    expect_rejected(run_warp1_never_reaches, "k_warp1_never_reaches",
                    "__shfl_xor_sync: lane 5 of the mask 0xffffffff never arrives: it waits at ");
    expect_rejected(run_warp1_never_reaches, "k_warp1_never_reaches", "__syncthreads [kernel k_warp1_never_reaches");
}

/* __syncthreads_count / _and / _or */
__global__ void k_bar_reduce(int *out) {
    const int p = threadIdx.x % 3 == 0;
    const int c = __syncthreads_count(p), a = __syncthreads_and(p), o = __syncthreads_or(p);
    if (threadIdx.x == 0) out[0] = c, out[1] = a, out[2] = o;
}
/* threads that exited do not hold a barrier up: the last live thread to arrive releases it,
 * also when it arrives before the others exit */
__global__ void k_bar_after_exits(int *out) {
    if (threadIdx.x >= 40) return;
    const int c = __syncthreads_count(1);
    out[threadIdx.x] = c;
}
__global__ void k_bar_exits_after(int *out) {
    if (threadIdx.x < 40) {
        out[threadIdx.x] = __syncthreads_count(1);
        return;
    }
    out[threadIdx.x] = -1; /* threads 40-63 exit after 0-39 wait */
}
Test(emu_rules, barrier_reductions) {
    int *d, h[64];
    CK(cudaMalloc(&d, sizeof h));
    k_bar_reduce<<<1, 96>>>(d);
    CK(cudaMemcpy(h, d, 3 * sizeof(int), cudaMemcpyDeviceToHost));
    cr_assert(h[0] == 32 && h[1] == 0 && h[2] == 1, "count %d and %d or %d", h[0], h[1], h[2]);
    k_bar_after_exits<<<1, 64>>>(d);
    CK(cudaMemcpy(h, d, 40 * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < 40; i++) cr_assert_eq(h[i], 40, "thread %d counted %d at the barrier", i, h[i]);
    k_bar_exits_after<<<1, 64>>>(d);
    CK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 40; i++) cr_assert_eq(h[i], 40, "thread %d counted %d at the barrier", i, h[i]);
    CK(cudaFree(d));
}

/* ---------------- rule 2: warp collectives ---------------- */

__global__ void k_mask_excludes_caller(float *out) {
    out[threadIdx.x] = __shfl_sync(0x0000ffffu, (float)threadIdx.x, 0);
}
__global__ void k_ballot_missing_lane(unsigned *out) {
    if (threadIdx.x != 5) out[threadIdx.x] = __ballot_sync(0xffffffffu, 1);
}
__global__ void k_shuffles(float *out) {
    const float v = (float)threadIdx.x;
    const int l = threadIdx.x;
    out[l] = __shfl_sync(0xffffffffu, v, 31 - l);
    out[32 + l] = __shfl_xor_sync(0xffffffffu, v, 3);
    out[64 + l] = __shfl_down_sync(0xffffffffu, v, 4, 16);
    out[96 + l] = __shfl_up_sync(0xffffffffu, v, 1);
    out[128 + l] = (float)__popc(__ballot_sync(0xffffffffu, l & 1));
    if (l < 16)
        out[160 + l] = __shfl_sync(0x0000ffffu, v, 15); /* half a warp, its own mask */
    else
        out[160 + l] = __shfl_sync(0xffff0000u, v, 16);
    /* past the end of its 16-lane segment: its own value; an earlier segment may be read (CUDA
     * guide: "able to access elements from earlier groups", PTX: j <= maxLane) */
    out[192 + l] = __shfl_xor_sync(0xffffffffu, v, 16, 16);
    out[224 + l] = __shfl_xor_sync(0xffffffffu, v, 5, 8); /* inside its 8-lane segment */
}
/* lanes 0-15 shuffle down among themselves, but lane 15 reads lane 16, which is not in the mask */
__global__ void k_shfl_reads_outside_mask(float *out) {
    if (threadIdx.x < 16) out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, (float)threadIdx.x, 1);
}
static void run_mask_excludes(void) {
    float *o = dev_floats(32);
    k_mask_excludes_caller<<<1, 32>>>(o);
    cudaDeviceSynchronize();
}
static void run_shfl_outside(void) {
    float *o = dev_floats(32);
    k_shfl_reads_outside_mask<<<1, 32>>>(o);
    cudaDeviceSynchronize();
}
static void run_ballot_missing(void) {
    unsigned *o;
    cudaMalloc(&o, 32 * sizeof(unsigned));
    k_ballot_missing_lane<<<1, 32>>>(o);
    cudaDeviceSynchronize();
}
Test(emu_rules, warp_mask_must_match_the_lanes_that_arrive) {
    expect_rejected(run_mask_excludes, "k_mask_excludes_caller", "does not include itself");
    expect_rejected(run_ballot_missing, "k_ballot_missing_lane", "lane 5 of the mask 0xffffffff never arrives");
    expect_rejected(run_shfl_outside, "k_shfl_reads_outside_mask",
                    "lane 15 reads lane 16, which is not in the mask 0x0000ffff");
}
Test(emu_rules, shuffles_follow_the_ptx_semantics) {
    float *d = dev_floats(256), h[256];
    k_shuffles<<<1, 32>>>(d);
    CK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    for (int l = 0; l < 32; l++) {
        cr_assert_eq(h[l], (float)(31 - l));
        cr_assert_eq(h[32 + l], (float)(l ^ 3));
        cr_assert_eq(h[64 + l], (float)((l % 16) + 4 < 16 ? l + 4 : l), "down lane %d", l);
        cr_assert_eq(h[96 + l], (float)(l >= 1 ? l - 1 : l));
        cr_assert_eq(h[128 + l], 16.0f);
        cr_assert_eq(h[160 + l], l < 16 ? 15.0f : 16.0f);
        cr_assert_eq(h[192 + l], (float)(l < 16 ? l : l - 16), "xor 16 width 16, lane %d", l);
        cr_assert_eq(h[224 + l], (float)(l ^ 5), "xor 5 width 8, lane %d", l);
    }
    CK(cudaFree(d));
}

/* ---------------- rule 3: shared memory and launch limits ---------------- */

__global__ void k_smem_overrun(float *out) {
    __shared__ float tile[32];
    float *t = tile;       /* through a pointer: past UBSan's bounds check, to ASan */
    t[threadIdx.x] = 1.0f; /* launched with 33 threads */
    __syncthreads();
    out[threadIdx.x] = tile[threadIdx.x];
}
__global__ void k_dyn_smem_overrun(float *out, int n) {
    extern __shared__ float dyn[];
    dyn[threadIdx.x] = 2.0f; /* n floats were launched */
    __syncthreads();
    out[threadIdx.x] = dyn[threadIdx.x % n];
}
__global__ void k_big_static_smem(float *out) {
    __shared__ float big[12289]; /* 49156 bytes: over 48 KiB */
    big[threadIdx.x] = 1.0f;
    out[0] = big[0];
}
__global__ void k_dyn_smem(float *out) {
    extern __shared__ float dyn[];
    dyn[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = dyn[31 - threadIdx.x];
}
static void run_smem_overrun(void) {
    float *o = dev_floats(64);
    k_smem_overrun<<<1, 33>>>(o);
    cudaDeviceSynchronize();
}
static void run_dyn_overrun(void) {
    float *o = dev_floats(64);
    k_dyn_smem_overrun<<<1, 32, 31 * sizeof(float)>>>(o, 31);
    cudaDeviceSynchronize();
}
static void run_big_static(void) {
    float *o = dev_floats(64);
    k_big_static_smem<<<1, 32>>>(o);
    cudaDeviceSynchronize();
}
Test(emu_rules, shared_memory_overrun_is_an_asan_error) {
    expect_rejected(run_smem_overrun, "k_smem_overrun", "AddressSanitizer");
    expect_rejected(run_dyn_overrun, "k_dyn_smem_overrun", "AddressSanitizer");
    expect_rejected(run_big_static, "k_big_static_smem", "48 KiB");
}
Test(emu_rules, dynamic_smem_above_48k_needs_the_attribute_and_sm90_limits_hold) {
    float *d = dev_floats(1024);
    (void)cudaGetLastError();
    k_dyn_smem<<<1, 32, 49152 + 4>>>(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidValue, "49156 bytes without cudaFuncSetAttribute must fail");
    CK(cudaFuncSetAttribute(k_dyn_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 100000));
    k_dyn_smem<<<1, 32, 49152 + 4>>>(d);
    CK(cudaGetLastError());
    k_dyn_smem<<<1, 32, 100004>>>(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidValue, "above the attribute must fail");
    cr_assert_eq(cudaFuncSetAttribute(k_dyn_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 232448 + 1),
                 cudaErrorInvalidValue, "sm_90 allows 227 KiB");
    (void)cudaGetLastError();
    k_dyn_smem<<<1, 1025, 128>>>(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "1025 threads per block");
    k_dyn_smem<<<1, dim3(1, 1, 65), 128>>>(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "block z 65");
    k_dyn_smem<<<dim3(1, 65536), 32, 128>>>(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "grid y 65536");
    k_dyn_smem<<<0, 32, 128>>>(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "empty grid");
    float h[32];
    k_dyn_smem<<<1, 32, 128>>>(d);
    CK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 32; i++) cr_assert_eq(h[i], (float)(31 - i));
    CK(cudaFree(d));
}

/* ---------------- rule 4: uninitialised memory ---------------- */

__global__ void k_copy(float *y, const float *x, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}
__global__ void k_reads_unwritten_smem(float *out) {
    __shared__ float s[64];
    if (threadIdx.x < 32) s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x]; /* 32..63 never written */
}
Test(emu_rules, uninitialised_device_and_shared_memory_read_as_nan) {
    float *x = dev_floats(100), *y = dev_floats(100), h[100];
    k_copy<<<1, 128>>>(y, x, 100); /* x was never written */
    CK(cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 100; i++) cr_assert(isnan(h[i]), "element %d of unwritten device memory reads %g", i, h[i]);
    k_reads_unwritten_smem<<<1, 64>>>(y);
    CK(cudaMemcpy(h, y, 64 * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < 64; i++) cr_assert(i < 32 ? h[i] == 1.0f : (bool)isnan(h[i]), "shared element %d: %g", i, h[i]);
    CK(cudaFree(x));
    CK(cudaFree(y));
}

/* ---------------- rule 5: races under randomised thread orders ---------------- */

__global__ void k_missing_barrier(float *out) {
    __shared__ float s[256];
    s[threadIdx.x] = (float)threadIdx.x;
    /* missing __syncthreads(): thread i reads what thread i+1 may not have written yet */
    out[threadIdx.x] = s[(threadIdx.x + 1) % 256];
}
__global__ void k_with_barrier(float *out) {
    __shared__ float s[256];
    s[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % 256];
}
static void race_with(void (*launch)(float *)) {
    float *o = dev_floats(256);
    launch(o);
    if (cudaDeviceSynchronize() != cudaSuccess) abort();
}
/* read-modify-write of its own element: order-independent, so every order must agree (the
 * harness restores what the kernel can write before each further order) */
__global__ void k_accumulate(float *out) { out[threadIdx.x] += 1.0f; }
static void launch_missing(float *o) { k_missing_barrier<<<2, 256>>>(o); }
static void launch_with(float *o) {
    k_with_barrier<<<2, 256>>>(o);
    k_accumulate<<<1, 256>>>(o);
}
static unsigned long long g_race_seed;
static void run_missing_barrier(void) {
    emu_set_orders(2, g_race_seed);
    race_with(launch_missing);
}
static void run_with_barrier(void) {
    emu_set_orders(4, g_race_seed);
    race_with(launch_with);
}
Test(emu_rules, a_missing_barrier_is_caught_by_random_orders_with_several_seeds) {
    const unsigned long long seeds[] = {1, 2, 3, 0xdeadbeef, 42};
    for (unsigned long long s : seeds) {
        g_race_seed = s;
        expect_rejected(run_missing_barrier, "k_missing_barrier", "depends on the thread order");
        expect_accepted(run_with_barrier);
    }
}

/* ---------------- rule 6: streams, events, graphs ---------------- */

__global__ void k_axpb(float *y, const float *x, float a, float b, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b;
}

Test(emu_rules, illegal_calls_during_capture_fail_as_on_a_gpu) {
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *d = dev_floats(64), *pinned;
    CK(cudaMallocHost(&pinned, 64 * sizeof(float)));
    float pageable[64] = {0};
    cudaGraph_t g;
    /* synchronising the capturing stream */
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    k_axpb<<<1, 64, 0, s>>>(d, d, 1.0f, 1.0f, 64);
    cr_assert_eq(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    cr_assert_null(g);
    /* cudaMalloc */
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    float *extra = NULL;
    cr_assert_eq(cudaMalloc(&extra, 256), cudaErrorStreamCaptureUnsupported);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    /* a copy from pageable memory */
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cr_assert_eq(cudaMemcpyAsync(d, pageable, sizeof pageable, cudaMemcpyHostToDevice, s),
                 cudaErrorStreamCaptureUnsupported);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    /* cudaDeviceSynchronize and the legacy stream */
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cr_assert_eq(cudaDeviceSynchronize(), cudaErrorStreamCaptureUnsupported);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    k_axpb<<<1, 64>>>(d, d, 1.0f, 1.0f, 64); /* stream 0 */
    cr_assert_eq(cudaGetLastError(), cudaErrorStreamCaptureImplicit);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    /* a forked stream that is not joined back */
    cudaStream_t s2;
    cudaEvent_t e;
    CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    CK(cudaEventCreate(&e));
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CK(cudaEventRecord(e, s));
    CK(cudaStreamWaitEvent(s2, e, 0));
    k_axpb<<<1, 64, 0, s2>>>(d, d, 1.0f, 1.0f, 64);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureUnjoined);
    /* the same with the join is a graph */
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CK(cudaEventRecord(e, s));
    CK(cudaStreamWaitEvent(s2, e, 0));
    k_axpb<<<1, 64, 0, s2>>>(d, d, 1.0f, 1.0f, 64);
    CK(cudaEventRecord(e, s2));
    CK(cudaStreamWaitEvent(s, e, 0));
    CK(cudaStreamEndCapture(s, &g));
    cr_assert_not_null(g);
    CK(cudaGraphDestroy(g));
    CK(cudaFreeHost(pinned));
    CK(cudaFree(d));
}

Test(emu_rules, graph_replay_reads_pinned_inputs_at_replay_and_counts_one_launch) {
    const int n = 300;
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    float *hin, *hout, *dx = dev_floats(n), *dy = dev_floats(n);
    CK(cudaMallocHost(&hin, n * sizeof(float)));
    CK(cudaMallocHost(&hout, n * sizeof(float)));
    cudaGraph_t g;
    cudaGraphExec_t x;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CK(cudaMemcpyAsync(dx, hin, n * sizeof(float), cudaMemcpyHostToDevice, s));
    k_axpb<<<(n + 127) / 128, 128, 0, s>>>(dy, dx, 2.0f, 1.0f, n);
    CK(cudaMemcpyAsync(hout, dy, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamEndCapture(s, &g));
    size_t nodes = 0;
    CK(cudaGraphGetNodes(g, NULL, &nodes));
    cr_assert_eq(nodes, 3u);
    CK(cudaGraphInstantiate(&x, g, 0));
    simcse_cuda_counters c0, c1;
    cr_assert(simcse_cuda_counters_read(&c0));
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < n; i++) hin[i] = (float)(i + 1000 * rep);
        CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        for (int i = 0; i < n; i++)
            cr_assert_eq(hout[i], 2.0f * (float)(i + 1000 * rep) + 1.0f, "replay %d element %d", rep, i);
    }
    cr_assert(simcse_cuda_counters_read(&c1));
    cr_assert_eq(c1.launches - c0.launches, 3u, "a graph launch is one launch");
    cr_assert_eq(c1.kernels_executed - c0.kernels_executed, 3u);
    cr_assert_eq(c1.h2d_bytes - c0.h2d_bytes, 3u * n * sizeof(float));
    cr_assert_eq(c1.host_syncs - c0.host_syncs, 3u);
    /* streams are deferred: a pinned result is only there after the host waits */
    for (int i = 0; i < n; i++) hout[i] = -1.0f;
    CK(cudaGraphLaunch(x, s));
    cr_assert_eq(hout[0], -1.0f, "work ran before the host synchronised");
    CK(cudaStreamSynchronize(s));
    cr_assert_eq(hout[0], 2.0f * 2000.0f + 1.0f);
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));
    CK(cudaStreamDestroy(s));
}

/* Two streams without an event between them: the harness may run them in either order. */
Test(emu_rules, events_order_work_across_streams) {
    const int n = 64;
    cudaStream_t a, b;
    cudaEvent_t e;
    CK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
    CK(cudaEventCreate(&e));
    float *x = dev_floats(n), *y = dev_floats(n), h[64];
    CK(cudaMemsetAsync(x, 0, n * sizeof(float), a));
    k_axpb<<<1, n, 0, a>>>(x, x, 1.0f, 5.0f, n);
    CK(cudaEventRecord(e, a));
    CK(cudaStreamWaitEvent(b, e, 0));
    k_axpb<<<1, n, 0, b>>>(y, x, 1.0f, 1.0f, n);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) cr_assert_eq(h[i], 6.0f);
    /* without the wait, the newest stream runs first at cudaDeviceSynchronize */
    k_axpb<<<1, n, 0, a>>>(x, x, 1.0f, 5.0f, n);
    k_axpb<<<1, n, 0, b>>>(y, x, 1.0f, 1.0f, n);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost));
    cr_assert_eq(h[0], 6.0f, "stream b read x before stream a's update: an unordered pair shows");
}
