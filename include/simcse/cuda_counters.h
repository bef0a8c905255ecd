/* Counts of what the host asks of the CUDA runtime, for the step benchmark's counters line
 * (bench/bench_step --counters) and the speed work's targets (issue 12): launches, host-blocking
 * synchronisations, device allocations, bytes copied each way.
 *
 * Two independent counters, so each checks the other:
 * - simcse_cuda_counters_read: the runtime's view. Under the CPU execution harness
 *   (make test-emu / bench-emu) tests/emu/emu_runtime.cpp counts inside its runtime; in the
 *   nvcc build it is the backend's count below (no CUDA-runtime hook exists for it there).
 * - simcse_cuda_backend_counters_read: the CUDA backend's own count (kernels/cuda/backend.cu),
 *   taken where kernels/cuda calls the runtime and the libraries: after every kernel launch
 *   (cu_launch_check), around the cuBLAS / cuBLASLt calls that run work, cudaMalloc /
 *   cudaMallocHost, the synchronising calls, the copies, and the graph calls (counting
 *   interposers in kernels/cuda/cuda_common.cuh). A launch made while this thread captures a
 *   stream is recorded against the capture, and every cudaGraphLaunch of the graph made from
 *   it adds those launches (and copied bytes) to the executed counts: a replayed step reports
 *   its real launches. A test under the harness (tests/emu/test_emu_counters.c) checks that
 *   the two agree over training steps, which is what makes the GPU figures trustworthy.
 *   Not seen by it: CUDA calls made outside kernels/cuda (NCCL's collectives and the
 *   synchronisations in host/train/comm_nccl.c), which the harness does count.
 * Builds without CUDA return 0 from both (the figures are unavailable, not zero). Counts are
 * process-wide and only grow: take differences around what you measure.
 *
 * Definitions (both counters):
 * - a launch is a kernel grid or a cuBLAS / cuBLASLt / NCCL call that runs work; *_executed
 *   count them when they run, graph replays included (the harness: when the work runs; the
 *   backend: at issue, or per replay for captured work); launches, kernel_launches and
 *   library_calls count what the host issues outside a capture (a graph launch is one launch);
 * - host_syncs: calls that block the host on the device: cudaDeviceSynchronize,
 *   cudaStreamSynchronize, cudaEventSynchronize, cudaFree, cudaFreeHost, cudaMemcpy,
 *   cudaMemset, and a cudaMemcpyAsync into pageable host memory;
 * - allocations: cudaMalloc and cudaMallocHost / cudaHostAlloc calls;
 * - h2d_bytes / d2h_bytes: bytes copied host to device / device to host (replays included). */
#ifndef SIMCSE_CUDA_COUNTERS_H
#define SIMCSE_CUDA_COUNTERS_H

typedef struct {
    unsigned long long launches;         /* host launch calls: kernels + library calls + graph launches */
    unsigned long long kernel_launches;  /* <<<>>> launches issued outside a capture */
    unsigned long long library_calls;    /* cuBLAS / cuBLASLt / NCCL calls issued outside a capture */
    unsigned long long graph_launches;   /* cudaGraphLaunch */
    unsigned long long kernels_executed; /* grids run, graph replays included */
    unsigned long long library_executed; /* cuBLAS / cuBLASLt / NCCL calls run, graph replays included */
    unsigned long long host_syncs;       /* host-blocking waits: synchronise calls, blocking copies, cudaFree */
    unsigned long long allocations;      /* cudaMalloc / cudaMallocHost calls */
    unsigned long long h2d_bytes, d2h_bytes;
} simcse_cuda_counters;

/* 1 and the counts so far where this build counts, else 0. */
int simcse_cuda_counters_read(simcse_cuda_counters *out);
/* The CUDA backend's own count (see above): 1 where the build has the CUDA backend, else 0. */
int simcse_cuda_backend_counters_read(simcse_cuda_counters *out);

#endif
