/* threadIdx, blockIdx, blockDim, gridDim and warpSize come with cuda_runtime.h (emu/device.h). */
#include <cuda_runtime.h>
