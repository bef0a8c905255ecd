/* The real curand_kernel.h (from the CUDA toolkit, through build-emu/cuda-include), used as
 * it is. Only the harness's built-in variables are hidden while it is read: on the host it
 * declares `extern const dim3 blockDim; extern const uint3 threadIdx;` for its MTGP32
 * generator (never used here), which the harness's threadIdx / blockDim macros would break. */
#ifndef EMU_CURAND_KERNEL_WRAPPER_H
#define EMU_CURAND_KERNEL_WRAPPER_H
#include <cuda_runtime.h>
#pragma push_macro("threadIdx")
#pragma push_macro("blockDim")
#undef threadIdx
#undef blockDim
#include_next <curand_kernel.h>
#pragma pop_macro("blockDim")
#pragma pop_macro("threadIdx")
#endif
