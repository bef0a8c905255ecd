/* Which backend a --device / --precision pair means. It lives with the backends
 * (not with a caller) because the CLI, the trainer and the benchmarks all pick a
 * backend the same way, and only this layer knows which backends were built. */
#include <stdatomic.h>
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
    /* once per process: ranks run as threads and each selects its backend */
    static atomic_flag noted = ATOMIC_FLAG_INIT;
    if (bf16 && !atomic_flag_test_and_set(&noted))
        fprintf(stderr, "simcse: note: precision bf16 is for the GPU; the CPU backend computes in fp32\n");
    return simcse_backend_cpu();
}
