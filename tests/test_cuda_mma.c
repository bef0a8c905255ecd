/* The harness's tensor-core layouts pinned to the hardware's (rule 8 of issue 11): on a GPU,
 * the registers every lane of a warp holds after kernels/cuda/mma.cuh's mma.sync and ldmatrix
 * wrappers (tests/gpu/mma_probe.cu) must equal what tests/emu/include/emu/mma_layout.h (the
 * layouts the CPU harness emulates) says they hold: ldmatrix bit for bit, the mma within
 * fp32 rounding of the sum (the hardware's accumulation order is not specified). The inputs
 * are distinct per element, so any permutation of rows, columns, lanes or halves shows.
 * Skipped without a GPU; tests/gpu/run_gpu_checks.sh runs it (stage 1). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/ops.h"
#include "tests/emu/include/emu/mma_layout.h"

#ifdef SIMCSE_CUDA
#include "tests/gpu/mma_probe.h"

static uint16_t bf16_of(float f) { /* f is a small multiple of 1/64: exact in bf16 */
    union {
        float f;
        uint32_t u;
    } v = {f};
    return (uint16_t)(v.u >> 16);
}

Test(cuda_mma, emulated_layouts_equal_the_hardware) {
    if (!simcse_cuda_available()) cr_skip_test("no CUDA GPU (%s)", simcse_last_error());
    uint32_t a[32][4], b[32][2], ld[6][32][4];
    float c[32][4], d[32][4], want[32][4];
    for (int l = 0; l < 32; l++) {
        for (int r = 0; r < 4; r++) {
            uint16_t lo = bf16_of((float)((l * 8 + 2 * r) % 29 - 14) / 8.0f);
            uint16_t hi = bf16_of((float)((l * 8 + 2 * r + 1) % 31 - 15) / 16.0f);
            a[l][r] = (uint32_t)lo | (uint32_t)hi << 16;
            c[l][r] = (float)(l * 4 + r) / 4.0f;
        }
        for (int r = 0; r < 2; r++) {
            uint16_t lo = bf16_of((float)((l * 4 + 2 * r) % 23 - 11) / 8.0f);
            uint16_t hi = bf16_of((float)((l * 4 + 2 * r + 1) % 19 - 9) / 4.0f);
            b[l][r] = (uint32_t)lo | (uint32_t)hi << 16;
        }
    }
    char err[256] = "";
    cr_assert_eq(simcse_mma_probe(a, b, c, d, ld, err, sizeof err), 0, "%s", err);
    emu_mma_m16n8k16_bf16_f32(a, b, c, want);
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++)
            cr_assert(fabsf(d[l][i] - want[l][i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[l][i])),
                      "mma: lane %d d[%d] = %g on the GPU, %g by the PTX ISA layout", l, i, d[l][i], want[l][i]);
    /* ldmatrix: lane 8m + r gave the address of shared row mma_probe_lane_row(8m + r) */
    uint16_t rows[4][8][8];
    for (int m = 0; m < 4; m++)
        for (int r = 0; r < 8; r++)
            for (int col = 0; col < 8; col++)
                rows[m][r][col] = mma_probe_smem_value(mma_probe_lane_row(8 * m + r), col);
    static const int nums[6] = {1, 2, 4, 1, 2, 4};
    for (int v = 0; v < 6; v++) {
        uint32_t regs[32][4];
        memset(regs, 0, sizeof regs);
        emu_ldmatrix_b16(nums[v], v >= 3, rows, regs);
        for (int l = 0; l < 32; l++)
            for (int m = 0; m < nums[v]; m++)
                cr_assert_eq(ld[v][l][m], regs[l][m],
                             "ldmatrix.x%d%s: lane %d register %d = %08x on the GPU, %08x by the "
                             "PTX ISA layout",
                             nums[v], v >= 3 ? ".trans" : "", l, m, ld[v][l][m], regs[l][m]);
    }
}
#else
Test(cuda_mma, emulated_layouts_equal_the_hardware) { cr_skip_test("built without CUDA (CUDA=0)"); }
#endif
