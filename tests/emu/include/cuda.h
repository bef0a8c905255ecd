/* The harness models the runtime API only; code that includes <cuda.h> gets it. */
#include <cuda_runtime.h>
