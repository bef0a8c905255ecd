/* Counter-based randomness: Philox4x32-10, bit-identical to cuRAND's device API.
 *
 * A dropout decision is a pure function of (seed, step, site, row, element):
 * nothing is stored between the forward and the backward pass, masks replay
 * exactly on resume and under gradient caching, and the CPU and GPU agree bit
 * for bit. The mapping onto cuRAND is
 *     curand_init(seed, subsequence = simcse_dropout_subsequence(step, site),
 *                 offset = simcse_dropout_offset(row, element), &state_philox4_32_10)
 * followed by curand() -> the 32-bit value for that element. The row is a
 * global identity of the token (see simcse_dropout.row_ids in ops.h), so the
 * same sentence gets the same masks whether it is processed alone, in a chunk
 * (gradient caching) or on another rank. */
#ifndef SIMCSE_RNG_H
#define SIMCSE_RNG_H

#include <stdint.h>

/* One Philox4x32-10 block: counter ctr[4], key key[2] -> out[4]. */
void simcse_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* step < 2^32, site < 2^12, row < 2^20. */
static inline uint64_t simcse_rng_subsequence(uint32_t step, uint32_t site, uint32_t row) {
    return ((uint64_t)step << 32) | ((uint64_t)(site & 0xfffu) << 20) | (uint64_t)(row & 0xfffffu);
}

/* Dropout draws: subsequence = step << 32 | site (site < 2^20, so never equal to the
 * data order's or initialisation's subsequences, whose site field is 0xfff << 20);
 * offset = row << 16 | element (element < 2^16, row < 2^48). */
static inline uint64_t simcse_dropout_subsequence(uint32_t step, uint32_t site) {
    return ((uint64_t)step << 32) | (uint64_t)(site & 0xfffffu);
}
static inline uint64_t simcse_dropout_offset(uint64_t row, uint32_t element) {
    return (row << 16) | (uint64_t)(element & 0xffffu);
}

/* The 32-bit value cuRAND returns for (seed, subsequence, offset) after
 * curand_init(seed, subsequence, offset, &s); curand(&s). That is
 *   Philox4x32-10(ctr = {lo32(offset/4), hi32(offset/4), lo32(subsequence), hi32(subsequence)},
 *                 key = {lo32(seed), hi32(seed)})[offset % 4]. */
uint32_t simcse_rng_u32(uint64_t seed, uint64_t subsequence, uint64_t offset);

/* Fills out[0..n) with the values for offsets 0..n-1 of one subsequence
 * (what a thread that calls curand() n times after curand_init(seed, subseq, 0) sees). */
void simcse_rng_fill_u32(uint64_t seed, uint64_t subsequence, uint32_t *out, int n);
/* Same from offset0: out[i] = simcse_rng_u32(seed, subsequence, offset0 + i). */
void simcse_rng_fill_u32_at(uint64_t seed, uint64_t subsequence, uint64_t offset0, uint32_t *out, int n);

/* Drop when u < threshold: threshold = (uint32_t)(p * 2^32), saturating. */
uint32_t simcse_dropout_threshold(float p);

/* Uniform float in [0,1) and a standard normal (Box-Muller) for initialisation, reading
 * the values at s->offset onwards and advancing it (uniform: 1 value, normal: 2):
 *   uniform = (u >> 8) * 2^-24
 *   normal  = sqrt(-2 ln u1) cos(2 pi u2), u1 = ((a >> 8) + 1) * 2^-24, u2 = (b >> 8) * 2^-24,
 *             evaluated in double and rounded to float. */
typedef struct {
    uint64_t seed, subsequence, offset;
} simcse_rng_stream;
float simcse_rng_uniform(simcse_rng_stream *s);
float simcse_rng_normal(simcse_rng_stream *s);

#endif
