/* How much host memory this process can still use, for budgeting a run before it
 * allocates (include/simcse/memory_plan.h): the smaller of the kernel's MemAvailable
 * and what the process's memory cgroup still allows (cgroup v2 memory.max, v1
 * memory.limit_in_bytes, at every level up to the root, less the usage that cannot be
 * reclaimed). A container's limit is usually far below the machine's MemAvailable, and
 * exceeding it gets the process killed without a message. */
#ifndef SIMCSE_HOST_MEMORY_H
#define SIMCSE_HOST_MEMORY_H

#include <stddef.h>

/* Bytes available; *source (static string) names the figure that decided it:
 * "MemAvailable", "cgroup memory.max" or "cgroup memory.limit_in_bytes". 0 + source
 * "unknown" when neither can be read (then nothing can be checked). */
size_t simcse_host_memory_available(const char **source);

#endif
