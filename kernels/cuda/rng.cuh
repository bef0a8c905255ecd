/* Dropout decisions on the GPU with cuRAND's device API, bit-identical to the CPU
 * (include/simcse/rng.h, host/base/rng.c, kernels/cpu/elementwise.c).
 *
 * A decision is a pure function of (seed, step, site, row, element):
 *     curand_init(seed, subsequence = simcse_dropout_subsequence(step, site),
 *                 offset = simcse_dropout_offset(row, element), &philox);
 *     u = curand(&philox);   drop when u < simcse_dropout_threshold(p),
 * with row the token's global row identity (simcse_dropout.row_ids[r], or r when NULL;
 * attention: row * heads + head) and offset = row << 16 | element. curand_init for
 * Philox4_32_10 costs no skip-ahead loop: it sets the counter to { offset/4 (64-bit),
 * subsequence (64-bit) } and the key to the seed, and computes one Philox block, whose
 * four words are the values of offsets 4*(offset/4) .. +3.
 *
 * Four elements per call. A thread that handles elements e, e+1, e+2, e+3 of one row
 * inits once at offset(row, e) and calls curand4(): curand4 returns the values of offsets
 * o, o+1, o+2, o+3 in .x, .y, .z, .w whatever o % 4 is (it splices the current and the
 * next block when o is not a multiple of 4). So element e+i always gets the value the CPU
 * computes for offset(row, e) + i, which is all bit-identity needs; the kernels keep e a
 * multiple of 4, so the one block curand_init computes is all that is used (the compiler
 * drops the look-ahead block curand4 computes, since the state dies). Elements past the
 * end of a row are drawn and ignored. Like the CPU (simcse_rng_fill_u32_at from
 * offset(row, 0)), the element is added to row << 16 without masking; rows are shorter
 * than 2^16 elements in practice, where the two readings agree.
 *
 * The keep multiplier is 1.0f / (1.0f - p) computed in float on the host (as the CPU
 * does), and p >= 1 zeroes everything (the threshold saturates at 2^32 - 1, which alone
 * would keep u == 2^32 - 1). */
#ifndef SIMCSE_CUDA_RNG_CUH
#define SIMCSE_CUDA_RNG_CUH

#include <curand_kernel.h>
#include <stdint.h>

#include "simcse/ops.h"

/* The packing of simcse_dropout_subsequence() / simcse_dropout_offset() in
 * include/simcse/rng.h (kept in sync; tests/test_cuda_ops.c compares masks bit for bit). */
static inline unsigned long long cu_dropout_subsequence(uint32_t step, uint32_t site) {
    return ((unsigned long long)step << 32) | (unsigned long long)(site & 0xfffffu);
}

/* simcse_dropout_threshold(): (uint32_t)(p * 2^32) truncated, saturating; 0 for p <= 0 or NaN. */
static inline uint32_t cu_dropout_threshold(float p) {
    if (!(p > 0.0f)) return 0;
    double t = (double)p * 4294967296.0;
    if (t >= 4294967295.0) return 0xffffffffu;
    return (uint32_t)t;
}

/* What a kernel needs to make dropout decisions. active == 0: keep everything, scale 1. */
typedef struct {
    unsigned long long seed;
    unsigned long long subseq; /* cu_dropout_subsequence(step, site) */
    const int32_t *row_ids;    /* device memory [T], or NULL: the row is the packed index */
    uint32_t threshold;
    float keep_scale; /* 1 / (1 - p), or 0 when p >= 1 (everything dropped) */
    int active;
} cu_drop;

static inline cu_drop cu_drop_make(simcse_dropout d) {
    cu_drop r;
    r.seed = d.seed;
    r.subseq = cu_dropout_subsequence(d.step, d.site);
    r.row_ids = d.row_ids;
    r.active = d.p > 0.0f;
    r.threshold = cu_dropout_threshold(d.p);
    r.keep_scale = d.p >= 1.0f ? 0.0f : (r.active ? 1.0f / (1.0f - d.p) : 1.0f);
    return r;
}

/* The global row identity of packed row r (a token index). */
__device__ __forceinline__ unsigned long long cu_drop_row(const cu_drop &d, int r) {
    /* as the CPU's (uint64_t) conversions of int32 / int */
    return d.row_ids ? (unsigned long long)(long long)d.row_ids[r] : (unsigned long long)(long long)r;
}

/* The cuRAND values of elements e..e+3 of rng row `row`. */
__device__ __forceinline__ uint4 cu_rng4(const cu_drop &d, unsigned long long row, unsigned e) {
    curandStatePhilox4_32_10_t s;
    curand_init(d.seed, d.subseq, (row << 16) + e, &s);
    return curand4(&s);
}

/* Bit i of the result (i < 4) is 1 when element e+i of `row` is KEPT. */
__device__ __forceinline__ uint32_t cu_keep4(const cu_drop &d, unsigned long long row, unsigned e) {
    uint4 u = cu_rng4(d, row, e);
    return (uint32_t)(u.x >= d.threshold) | ((uint32_t)(u.y >= d.threshold) << 1) |
           ((uint32_t)(u.z >= d.threshold) << 2) | ((uint32_t)(u.w >= d.threshold) << 3);
}

#endif
