/* GPU side of tests/test_cuda_mma.c: one warp runs each wrapper of kernels/cuda/mma.cuh on
 * given registers / shared memory and writes back what every lane holds, so the host can
 * compare the hardware's fragment layouts with the ones the harness emulates. Built into the
 * test binary only (Makefile, CUDA=1). */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/mma.cuh"
#include "tests/gpu/mma_probe.h"

__global__ void k_probe_mma(const uint32_t *a, const uint32_t *b, const float *c, float *d) {
    const int l = threadIdx.x;
    uint32_t ra[4], rb[2];
    float rc[4], rd[4];
    for (int i = 0; i < 4; i++) ra[i] = a[l * 4 + i], rc[i] = c[l * 4 + i];
    for (int i = 0; i < 2; i++) rb[i] = b[l * 2 + i];
    cu_mma_m16n8k16_bf16(rd, ra, rb, rc);
    for (int i = 0; i < 4; i++) d[l * 4 + i] = rd[i];
}

__global__ void k_probe_ldmatrix(uint32_t *out) {
    __shared__ __align__(16) uint16_t tile[MMA_PROBE_ROWS][8];
    const int l = threadIdx.x;
    for (int c = 0; c < 8; c++) tile[l][c] = mma_probe_smem_value(l, c);
    __syncwarp();
    const void *p = tile[mma_probe_lane_row(l)];
    uint32_t r[6][4] = {{0}};
    cu_ldmatrix_x1(r[0], p);
    cu_ldmatrix_x2(r[1], p);
    cu_ldmatrix_x4(r[2], p);
    cu_ldmatrix_x1_trans(r[3], p);
    cu_ldmatrix_x2_trans(r[4], p);
    cu_ldmatrix_x4_trans(r[5], p);
    for (int v = 0; v < 6; v++)
        for (int i = 0; i < 4; i++) out[(v * 32 + l) * 4 + i] = r[v][i];
}

#define PROBE_CHECK(call)                                                                             \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess) {                                                                      \
            snprintf(err, (size_t)err_len, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            return -1;                                                                                \
        }                                                                                             \
    } while (0)

extern "C" int simcse_mma_probe(const uint32_t a[32][4], const uint32_t b[32][2], const float c[32][4],
                                float d[32][4], uint32_t ld[6][32][4], char *err, int err_len) {
    uint32_t *da, *db, *dl;
    float *dc, *dd;
    PROBE_CHECK(cudaMalloc(&da, 32 * 4 * 4));
    PROBE_CHECK(cudaMalloc(&db, 32 * 2 * 4));
    PROBE_CHECK(cudaMalloc(&dc, 32 * 4 * 4));
    PROBE_CHECK(cudaMalloc(&dd, 32 * 4 * 4));
    PROBE_CHECK(cudaMalloc(&dl, 6 * 32 * 4 * 4));
    PROBE_CHECK(cudaMemcpy(da, a, 32 * 4 * 4, cudaMemcpyHostToDevice));
    PROBE_CHECK(cudaMemcpy(db, b, 32 * 2 * 4, cudaMemcpyHostToDevice));
    PROBE_CHECK(cudaMemcpy(dc, c, 32 * 4 * 4, cudaMemcpyHostToDevice));
    k_probe_mma<<<1, 32>>>(da, db, dc, dd);
    PROBE_CHECK(cudaGetLastError());
    k_probe_ldmatrix<<<1, 32>>>(dl);
    PROBE_CHECK(cudaGetLastError());
    PROBE_CHECK(cudaDeviceSynchronize());
    PROBE_CHECK(cudaMemcpy(d, dd, 32 * 4 * 4, cudaMemcpyDeviceToHost));
    PROBE_CHECK(cudaMemcpy(ld, dl, 6 * 32 * 4 * 4, cudaMemcpyDeviceToHost));
    PROBE_CHECK(cudaFree(da));
    PROBE_CHECK(cudaFree(db));
    PROBE_CHECK(cudaFree(dc));
    PROBE_CHECK(cudaFree(dd));
    PROBE_CHECK(cudaFree(dl));
    return 0;
}
