/* What one warp's lanes hold after the tensor-core wrappers of kernels/cuda/mma.cuh run on
 * the GPU (tests/gpu/mma_probe.cu), for tests/test_cuda_mma.c to compare with the PTX ISA
 * layouts the harness emulates (tests/emu/include/emu/mma_layout.h). */
#ifndef SIMCSE_MMA_PROBE_H
#define SIMCSE_MMA_PROBE_H

#include <stdint.h>

/* The 32 x 8 x 8 b16 values the ldmatrix probe puts in shared memory, and the row each lane
 * gives the address of (a permutation, so the test sees that addresses, not lane numbers,
 * pick the rows). */
#define MMA_PROBE_ROWS 32
#ifdef __CUDACC__
#define MMA_PROBE_HD __host__ __device__
#else
#define MMA_PROBE_HD
#endif
MMA_PROBE_HD static inline uint16_t mma_probe_smem_value(int row, int col) { return (uint16_t)(0x3c00 + row * 8 + col); }
MMA_PROBE_HD static inline int mma_probe_lane_row(int lane) { return (lane * 5 + 3) % MMA_PROBE_ROWS; }

/* d[32][4] = the mma of the lanes' a[32][4], b[32][2], c[32][4]; ld[6][32][4] = the registers
 * of ldmatrix x1, x2, x4, x1.trans, x2.trans, x4.trans (unused registers 0). Returns 0, or -1
 * with a message in err. */
#ifdef __cplusplus
extern "C"
#endif
int simcse_mma_probe(const uint32_t a[32][4], const uint32_t b[32][2], const float c[32][4], float d[32][4],
                     uint32_t ld[6][32][4], char *err, int err_len);

#endif
