/* The tensor-core instructions kernels/cuda may use, each behind one wrapper function:
 *   cu_mma_m16n8k16_bf16   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
 *   cu_ldmatrix_x{1,2,4}   ldmatrix.sync.aligned.m8n8.x{1,2,4}.shared.b16
 *   cu_ldmatrix_x{1,2,4}_trans   the same with .trans
 *
 * Why wrappers: on the GPU each is one inline-PTX instruction (sm_80 and newer), and in the
 * CPU harness (make test-emu, SIMCSE_EMU) the same call runs the PTX ISA's documented fragment
 * layouts (tests/emu/include/emu/mma_layout.h: "Matrix Fragments for mma.m16n8k16 with
 * floating point type" and "Warp-level matrix load instruction: ldmatrix"), as a warp
 * collective that all 32 lanes must reach. A kernel that gets a layout wrong therefore gets
 * the same wrong product in the harness as on the GPU, and tests/test_cuda_mma.c pins the
 * emulated layouts to the hardware's where a GPU is lent.
 *
 * Fragments (groupID g = lane >> 2, t = lane % 4; two bf16 per .b32, the lower index in the
 * low half): a[0..3] hold A (16x16, row-major) rows g / g+8 / g / g+8, cols 2t,2t+1 (+8 for
 * a[2], a[3]); b[0..1] hold B (16x8, "col": k-major per column) rows 2t,2t+1 (+8 for b[1]) of
 * col g; c/d[0..3] hold rows g, g, g+8, g+8, cols 2t, 2t+1. ldmatrix: lanes 8m..8m+7 give
 * the 16-byte aligned shared-memory addresses of rows 0..7 of matrix m; register m of lane l
 * gets row g, cols 2t, 2t+1 of matrix m (.trans: rows 2t, 2t+1 of col g). */
#ifndef SIMCSE_CUDA_MMA_CUH
#define SIMCSE_CUDA_MMA_CUH

#include <stdint.h>

#if defined(SIMCSE_EMU)
#include <emu/mma.h>
#endif

__device__ __forceinline__ void cu_mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                     const float c[4]) {
#if defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%10, %11, %12, %13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
                   "f"(c[3]));
#elif defined(SIMCSE_EMU)
    emu_mma::mma_m16n8k16_bf16(d, a, b, c);
#endif
}

__device__ __forceinline__ void cu_ldmatrix_x1(uint32_t r[1], const void *p) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
#elif defined(SIMCSE_EMU)
    emu_mma::ldmatrix<1, 0>(r, p);
#endif
}
__device__ __forceinline__ void cu_ldmatrix_x2(uint32_t r[2], const void *p) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
#elif defined(SIMCSE_EMU)
    emu_mma::ldmatrix<2, 0>(r, p);
#endif
}
__device__ __forceinline__ void cu_ldmatrix_x4(uint32_t r[4], const void *p) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
#elif defined(SIMCSE_EMU)
    emu_mma::ldmatrix<4, 0>(r, p);
#endif
}
__device__ __forceinline__ void cu_ldmatrix_x1_trans(uint32_t r[1], const void *p) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
#elif defined(SIMCSE_EMU)
    emu_mma::ldmatrix<1, 1>(r, p);
#endif
}
__device__ __forceinline__ void cu_ldmatrix_x2_trans(uint32_t r[2], const void *p) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
#elif defined(SIMCSE_EMU)
    emu_mma::ldmatrix<2, 1>(r, p);
#endif
}
__device__ __forceinline__ void cu_ldmatrix_x4_trans(uint32_t r[4], const void *p) {
#if defined(__CUDA_ARCH__)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
#elif defined(SIMCSE_EMU)
    emu_mma::ldmatrix<4, 1>(r, p);
#endif
}

#endif
