/* The CPU backend: the vtable and host memory.
 *
 * Everything lives in ordinary host memory, so to_device/to_host/copy are memmove and sync
 * does nothing. Allocations are 64-byte aligned (cache lines, and room for the compiler
 * to use aligned vector loads) and zeroed, so an uninitialised buffer reads as zeros on
 * every run rather than as whatever the heap held. A request larger than the machine's
 * physical memory is refused up front (with overcommit it would "succeed" and fail later,
 * page by page). The backend has no state beyond its thread pool (kernels/cpu/threads.c):
 * one static vtable serves every caller.
 *
 * A second vtable, simcse_backend_cpu_reference, shares the memory functions and holds the
 * plain single-threaded loops each fast op keeps beside it (cpu_ref_*): the oracle of
 * tests/test_cpu_fast.c, so that every op, and a whole model step, is still checked against
 * plain code. Pooling has one implementation and appears in both. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"
#include "simcse/host_memory.h"

/* Each block carries its size in a 64-byte header (keeping the 64-byte alignment)
 * so that free can keep the memory statistics. */
#define HEADER 64
static size_t g_in_use, g_peak;
static pthread_mutex_t g_mem_lock = PTHREAD_MUTEX_INITIALIZER;

static void *cpu_alloc(simcse_backend *be, size_t bytes) {
    (void)be;
    size_t rounded = (bytes + 63) / 64 * 64 + HEADER;
    if (rounded < bytes) {
        simcse_error("cpu backend: cannot allocate %zu bytes (size overflows)", bytes);
        return NULL;
    }
    if (rounded == HEADER) rounded += 64;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0 && (double)rounded > (double)pages * (double)page) {
        simcse_error("cpu backend: cannot allocate %zu bytes (more than the %.1f GiB of host memory)", bytes,
                     (double)pages * (double)page / 1073741824.0);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        simcse_error("cpu backend: out of host memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    *(size_t *)p = rounded;
    pthread_mutex_lock(&g_mem_lock);
    g_in_use += rounded;
    if (g_in_use > g_peak) g_peak = g_in_use;
    pthread_mutex_unlock(&g_mem_lock);
    return (char *)p + HEADER;
}

static void cpu_free(simcse_backend *be, void *p) {
    (void)be;
    if (!p) return;
    char *block = (char *)p - HEADER;
    pthread_mutex_lock(&g_mem_lock);
    g_in_use -= *(size_t *)block;
    pthread_mutex_unlock(&g_mem_lock);
    free(block);
}

static void cpu_memory(simcse_backend *be, size_t *in_use, size_t *peak) {
    (void)be;
    pthread_mutex_lock(&g_mem_lock);
    *in_use = g_in_use;
    *peak = g_peak;
    pthread_mutex_unlock(&g_mem_lock);
}

static size_t cpu_available(simcse_backend *be, const char **source, int *host) {
    (void)be;
    *host = 1;
    return simcse_host_memory_available(source);
}

static void cpu_copy(simcse_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}

static void cpu_zero(simcse_backend *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) memset(p, 0, bytes);
}

static void cpu_sync(simcse_backend *be) { (void)be; }

static simcse_backend cpu_backend = {
    .name = "cpu",
    .ctx = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .memory = cpu_memory,
    .available = cpu_available,
    .embed_fwd = cpu_embed_fwd,
    .embed_bwd = cpu_embed_bwd,
    .linear_fwd = cpu_linear_fwd,
    .linear_bwd = cpu_linear_bwd,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .gelu_fwd = cpu_gelu_fwd,
    .gelu_bwd = cpu_gelu_bwd,
    .tanh_fwd = cpu_tanh_fwd,
    .tanh_bwd = cpu_tanh_bwd,
    .dropout = cpu_dropout,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .pool_first_fwd = cpu_pool_first_fwd,
    .pool_first_bwd = cpu_pool_first_bwd,
    .pool_mean_fwd = cpu_pool_mean_fwd,
    .pool_mean_bwd = cpu_pool_mean_bwd,
    .add = cpu_add,
    .scale = cpu_scale,
    .infonce = cpu_infonce,
    .sumsq = cpu_sumsq,
    .adamw = cpu_adamw,
};

static simcse_backend cpu_reference_backend = {
    .name = "cpu-reference",
    .ctx = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .memory = cpu_memory,
    .embed_fwd = cpu_ref_embed_fwd,
    .embed_bwd = cpu_ref_embed_bwd,
    .linear_fwd = cpu_ref_linear_fwd,
    .linear_bwd = cpu_ref_linear_bwd,
    .layernorm_fwd = cpu_ref_layernorm_fwd,
    .layernorm_bwd = cpu_ref_layernorm_bwd,
    .gelu_fwd = cpu_ref_gelu_fwd,
    .gelu_bwd = cpu_ref_gelu_bwd,
    .tanh_fwd = cpu_ref_tanh_fwd,
    .tanh_bwd = cpu_ref_tanh_bwd,
    .dropout = cpu_ref_dropout,
    .attention_fwd = cpu_ref_attention_fwd,
    .attention_bwd = cpu_ref_attention_bwd,
    .pool_first_fwd = cpu_pool_first_fwd,
    .pool_first_bwd = cpu_pool_first_bwd,
    .pool_mean_fwd = cpu_pool_mean_fwd,
    .pool_mean_bwd = cpu_pool_mean_bwd,
    .add = cpu_ref_add,
    .scale = cpu_ref_scale,
    .infonce = cpu_ref_infonce,
    .sumsq = cpu_ref_sumsq,
    .adamw = cpu_ref_adamw,
};

simcse_backend *simcse_backend_cpu(void) { return &cpu_backend; }
simcse_backend *simcse_backend_cpu_reference(void) { return &cpu_reference_backend; }
