/* Which backend a --device / --precision pair means. It lives with the backends
 * (not with a caller) because the CLI, the trainer and the benchmarks all pick a
 * backend the same way, and only this layer knows which backends were built. */
#include <stdio.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/ops.h"

simcse_backend *simcse_backend_select(const char *device, const char *precision, int gpu) {
    int bf16 = precision && !strcmp(precision, "bf16");
    if (precision && !bf16 && strcmp(precision, "fp32")) {
        simcse_error("--precision: expected fp32 or bf16, got '%s'", precision);
        return NULL;
    }
    if (!strcmp(device, "cuda")) return simcse_backend_cuda(gpu, bf16);
    if (!strcmp(device, "auto")) {
        if (simcse_cuda_available()) return simcse_backend_cuda(gpu, bf16);
    } else if (strcmp(device, "cpu")) {
        simcse_error("--device: expected cpu, cuda or auto, got '%s'", device);
        return NULL;
    }
    if (bf16) fprintf(stderr, "simcse: note: bf16 runs on the GPU only; the CPU backend computes in fp32\n");
    return simcse_backend_cpu();
}
