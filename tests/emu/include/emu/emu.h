/* The CPU execution harness's C++ interface for the library stand-ins (cuBLAS, cuBLASLt,
 * NCCL, the tensor-core wrappers) and the harness self-tests.
 *
 * Why it is built like this: the stand-ins must follow the same stream, capture and
 * counting rules as kernels and copies, so they hand their work to the runtime
 * (emu_stream_submit) instead of running it at once; warp-level instructions that are not
 * plain shuffles (mma.sync, ldmatrix) need the same lockstep and mask checks as
 * __shfl_sync, so they are all built on one primitive (emu_warp_collective). */
#ifndef EMU_EMU_H
#define EMU_EMU_H

#include <cuda_runtime.h>
#include <stddef.h>

#include <functional>

/* Run `work` in stream order: queued on `s` (executed when the host synchronises with the
 * stream, or when later work that depends on it runs), or recorded as a graph node when `s`
 * is capturing. `what` names it in errors and counters (it counts as one launch). Returns
 * the error the driver would (cudaErrorStreamCaptureImplicit, cudaErrorInvalidResourceHandle),
 * cudaSuccess otherwise. */
cudaError_t emu_stream_submit(cudaStream_t s, const char *what, std::function<void()> work);

/* An error from inside the harness: prints "emu: <where>: <message>" (and, inside a kernel,
 * the block and thread) and aborts. */
[[noreturn]] void emu_fail(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lockstep warp collective: every lane of `mask` that arrives deposits in_bytes; when all of
 * the mask's lanes have arrived (a lane of the mask that never arrives, or an arriving lane
 * not in the mask, is an error naming the kernel and `what`), combine(ins[32][in_bytes],
 * outs[32][out_bytes], mask, ctx) runs once and each lane gets its out_bytes. Lanes of one
 * collective must pass the same mask and the same `what` (compared by content). in_bytes
 * and out_bytes are at most EMU_COLLECTIVE_MAX_BYTES. Must be called from kernel code. */
#define EMU_COLLECTIVE_MAX_BYTES 512
void emu_warp_collective(unsigned mask, const void *in, size_t in_bytes, void *out, size_t out_bytes,
                         void (*combine)(const void *ins, void *outs, unsigned mask, void *ctx), void *ctx,
                         const char *what);

int emu_lane_id(void);             /* lane of the running fiber thread (0..31) */
int emu_in_kernel(void);           /* 1 inside kernel code */
const char *emu_kernel_name(void); /* the running kernel, or NULL */

/* The device of a device pointer (-1: not device memory) and the current device. */
int emu_device_of(const void *p);
int emu_current_device(void);
/* 1 when [p, p + bytes) lies inside one device allocation (of any device). */
int emu_is_device_range(const void *p, size_t bytes);

/* Thread orders per launch (1: lane order only; n > 1: also n - 1 seeded random orders, each
 * result compared bit for bit with the first) and the base seed; EMU_ORDERS / EMU_SEED set
 * them from the environment. */
void emu_set_orders(int orders, unsigned long long seed);

#endif
