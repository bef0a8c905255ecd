/* Private to the harness runtime (the .cpp files of tests/emu): what the execution engine
 * (emu_exec.cpp: fibers, blocks, barriers, collectives, launches) and the API side
 * (emu_runtime.cpp: devices, memory, streams, events, graphs, counters) need from each other. */
#ifndef EMU_INTERNAL_H
#define EMU_INTERNAL_H

#include <cuda_runtime.h>

#include <functional>

#include "emu/emu.h"

namespace emu {

enum work_kind { WORK_KERNEL, WORK_LIBRARY, WORK_COPY, WORK_OTHER };

/* Queue `fn` on stream s (or record it when s is capturing); sets and returns the error. */
cudaError_t submit(cudaStream_t s, const char *what, work_kind kind, std::function<void()> fn);

/* Records e as the calling thread's last error, prints "emu: <where>: <message>" and returns e. */
cudaError_t api_error(cudaError_t e, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The device allocation holding p (p may equal the end of it): 1 and its base, size and
 * device, else 0. */
int find_alloc(const void *p, char **base, size_t *size, int *device);
int is_pinned(const void *p, size_t bytes);

int current_device();
/* cudaFuncSetAttribute(MaxDynamicSharedMemorySize) of a kernel, or 48 KiB. */
size_t func_max_dynamic_smem(const void *kfn);

/* sm_90 limits */
constexpr size_t SMEM_DEFAULT = 48 * 1024;
constexpr size_t SMEM_OPTIN_MAX = 232448; /* 227 KiB: sharedMemPerBlockOptin of an H100 */
constexpr int SM_COUNT = 132;

void note_kernel_executed();

} // namespace emu

#endif
