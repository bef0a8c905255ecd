/* Backend entry points for a build without the CUDA toolkit (make CUDA=0 or no nvcc). */
#include "simcse/common.h"
#include "simcse/cuda_counters.h"
#include "simcse/ops.h"

simcse_backend *simcse_backend_cuda(int device, int bf16) {
    (void)device;
    (void)bf16;
    simcse_error("this simcse was built without CUDA (rebuild with nvcc on PATH)");
    return NULL;
}

int simcse_cuda_available(void) { return 0; }

int simcse_cuda_counters_read(simcse_cuda_counters *out) {
    (void)out;
    return 0;
}
int simcse_cuda_backend_counters_read(simcse_cuda_counters *out) {
    (void)out;
    return 0;
}
