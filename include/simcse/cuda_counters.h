/* Counts of what the host asks of the CUDA runtime, for the step benchmark's counters line
 * (bench/bench_step --counters) and the speed work's targets: launches, host-blocking
 * synchronisations, device allocations, bytes copied each way.
 *
 * Why a separate, optional interface: only some builds can count. The CPU execution harness
 * (make test-emu / bench-emu: tests/emu/emu_runtime.cpp) counts inside its runtime; other
 * builds return 0 from simcse_cuda_counters_read (the figures are then unavailable, not
 * zero). Counts are process-wide and only grow: take differences around what you measure. */
#ifndef SIMCSE_CUDA_COUNTERS_H
#define SIMCSE_CUDA_COUNTERS_H

typedef struct {
    unsigned long long launches;         /* host launch calls: kernels + library calls + graph launches */
    unsigned long long kernel_launches;  /* <<<>>> launches issued outside a capture */
    unsigned long long library_calls;    /* cuBLAS / cuBLASLt / NCCL calls issued outside a capture */
    unsigned long long graph_launches;   /* cudaGraphLaunch */
    unsigned long long kernels_executed; /* grids run, graph replays included */
    unsigned long long host_syncs;       /* host-blocking waits: synchronise calls, blocking copies, cudaFree */
    unsigned long long allocations;      /* cudaMalloc / cudaMallocHost calls */
    unsigned long long h2d_bytes, d2h_bytes;
} simcse_cuda_counters;

/* 1 and the counts so far where this build counts, else 0. */
int simcse_cuda_counters_read(simcse_cuda_counters *out);

#endif
