/* The tensor-core fragment layouts of the PTX ISA, as plain functions (C and C++).
 *
 * One definition serves two users: the harness's emulation of mma.sync and ldmatrix
 * (tests/emu/include/emu/mma.h, behind kernels/cuda/mma.cuh) and the GPU-only test that pins
 * this emulation to the hardware (tests/test_cuda_mma.c with tests/gpu/mma_probe.cu), which
 * computes on the host what each lane must hold and compares it with what the GPU's lanes do
 * hold. If the two ever disagree, the emulation is wrong, not the kernels.
 *
 * Source: PTX ISA (parallel-thread-execution), section "Matrix Fragments for mma.m16n8k16
 * with floating point type" (Figures "MMA .m16n8k16 fragment layout for matrix A / matrix B /
 * accumulator matrix C/D" for .f16/.bf16 and .f32), and section "Warp-level matrix load
 * instruction: ldmatrix" (fragment layout of .m8n8 .b16 matrices, with and without .trans).
 *   groupID = laneid >> 2, threadID_in_group = laneid % 4
 *   A (16x16, row): 4 .b32 registers a0..a7, two elements per register, the lower-indexed
 *     element in the low 16 bits;
 *     row = groupID for ai with 0 <= i < 2 or 4 <= i < 6, groupID + 8 otherwise;
 *     col = threadID_in_group * 2 + (i & 1), plus 8 for i >= 4.
 *   B (16x8, col): 2 .b32 registers b0..b3;
 *     row = threadID_in_group * 2 + (i & 1), plus 8 for i >= 2; col = groupID.
 *   C/D (16x8, f32): 4 registers c0..c3;
 *     row = groupID for i < 2, groupID + 8 otherwise; col = threadID_in_group * 2 + (i & 1).
 *   ldmatrix .m8n8 .x1/.x2/.x4 .b16: threads 8m .. 8m+7 give the addresses of rows 0..7 of
 *     matrix m (16 bytes each, 16-byte aligned, shared memory); lane l receives in register m
 *     the elements (row groupID, cols 2*threadID_in_group and +1) of matrix m, or with .trans
 *     the elements (rows 2*threadID_in_group and +1, col groupID). */
#ifndef EMU_MMA_LAYOUT_H
#define EMU_MMA_LAYOUT_H

#include <stdint.h>

/* element i (0..7) of lane's A fragment: register i / 2, half i % 2 (0 = low 16 bits) */
static inline void emu_mma_a_coord(int lane, int i, int *row, int *col) {
    const int g = lane >> 2, t = lane & 3;
    *row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
    *col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
}
/* element i (0..3) of lane's B fragment: register i / 2, half i % 2 */
static inline void emu_mma_b_coord(int lane, int i, int *row, int *col) {
    const int g = lane >> 2, t = lane & 3;
    *row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
    *col = g;
}
/* element i (0..3) of lane's C/D fragment: register i */
static inline void emu_mma_c_coord(int lane, int i, int *row, int *col) {
    const int g = lane >> 2, t = lane & 3;
    *row = i < 2 ? g : g + 8;
    *col = t * 2 + (i & 1);
}
/* half h (0 low, 1 high) of lane's ldmatrix register for one 8x8 matrix: (row, col) in it */
static inline void emu_ldmatrix_coord(int lane, int h, int trans, int *row, int *col) {
    const int g = lane >> 2, t = lane & 3;
    if (trans) {
        *row = t * 2 + h;
        *col = g;
    } else {
        *row = g;
        *col = t * 2 + h;
    }
}

static inline float emu_bf16_bits_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* D = A B + C for one warp from the 32 lanes' registers: a[32][4], b[32][2], c[32][4] -> d[32][4].
 * The bf16 products are exact in fp32; they are summed with C in double and rounded once to
 * fp32 (the hardware's internal order and precision are not specified; tests allow for it). */
static inline void emu_mma_m16n8k16_bf16_f32(const uint32_t a[32][4], const uint32_t b[32][2], const float c[32][4],
                                             float d[32][4]) {
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; l++) {
        for (int i = 0; i < 8; i++) {
            int r, k;
            emu_mma_a_coord(l, i, &r, &k);
            A[r][k] = emu_bf16_bits_to_f32((uint16_t)(a[l][i / 2] >> (16 * (i % 2))));
        }
        for (int i = 0; i < 4; i++) {
            int k, n;
            emu_mma_b_coord(l, i, &k, &n);
            B[k][n] = emu_bf16_bits_to_f32((uint16_t)(b[l][i / 2] >> (16 * (i % 2))));
        }
        for (int i = 0; i < 4; i++) {
            int r, n;
            emu_mma_c_coord(l, i, &r, &n);
            C[r][n] = c[l][i];
        }
    }
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++) {
            int r, n;
            emu_mma_c_coord(l, i, &r, &n);
            double s = C[r][n];
            for (int k = 0; k < 16; k++) s += (double)A[r][k] * (double)B[k][n];
            d[l][i] = (float)s;
        }
}

/* ldmatrix: rows[m][r] is the 8 b16 elements of row r of matrix m (from the address lane
 * 8m + r gave); regs[l][m] is what lane l receives for matrix m. */
static inline void emu_ldmatrix_b16(int num, int trans, const uint16_t rows[4][8][8], uint32_t regs[32][4]) {
    for (int l = 0; l < 32; l++)
        for (int m = 0; m < num; m++) {
            uint32_t v = 0;
            for (int h = 0; h < 2; h++) {
                int r, c;
                emu_ldmatrix_coord(l, h, trans, &r, &c);
                v |= (uint32_t)rows[m][r][c] << (16 * h);
            }
            regs[l][m] = v;
        }
}

#endif
