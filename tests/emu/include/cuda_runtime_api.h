/* The harness's runtime API lives in cuda_runtime.h (one header for C and C++). */
#include <cuda_runtime.h>
