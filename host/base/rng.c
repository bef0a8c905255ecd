/* Philox4x32-10, bit-identical to cuRAND's device API (curandStatePhilox4_32_10_t).
 *
 * Read from cuda/include/curand_philox4x32_x.h and curand_kernel.h (CUDA 13.0):
 *   round:  lo0,hi0 = M0 * c.x (M0 = 0xD2511F53), lo1,hi1 = M1 * c.z (M1 = 0xCD9E8D57)
 *           c' = { hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0 }
 *           ten rounds, the key bumped by (0x9E3779B9, 0xBB67AE85) between rounds.
 *   curand_init(seed, subsequence, offset, &s):
 *           key = { lo32(seed), hi32(seed) }, ctr = 0, STATE = 0;
 *           skipahead_sequence(subsequence): ctr.z += lo32(subsequence), ctr.w += hi32(..) (+carry)
 *           skipahead(offset): STATE = offset & 3, ctr.{x,y} += offset / 4 (128-bit add),
 *           output = Philox(ctr, key).
 *   curand(&s): returns output[STATE] (x, y, z, w for STATE 0..3), STATE++; after w the
 *           counter is incremented (ctr.x first, carrying into y, z, w) and a new block made.
 * Starting from a zero counter no carry can cross the words, so the value that curand()
 * returns right after curand_init(seed, subsequence, offset) is
 *     Philox4x32-10( ctr = { lo32(offset/4), hi32(offset/4), lo32(subsequence), hi32(subsequence) },
 *                    key = { lo32(seed), hi32(seed) } )[offset % 4]
 * and successive curand() calls walk offset, offset+1, ... . tests/test_rng.c checks this
 * against values printed by cuRAND's own header code compiled for the host (the program is
 * in that file), and the block function against the Random123 known-answer vectors.
 *
 * Initialisation helpers (host only; no cuRAND counterpart is needed):
 *   uniform: u = value at s->offset;  (u >> 8) * 2^-24, in [0, 1); offset += 1.
 *   normal:  a, b = values at s->offset, s->offset + 1; offset += 2;
 *            u1 = ((a >> 8) + 1) * 2^-24 in (0, 1], u2 = (b >> 8) * 2^-24,
 *            z = sqrt(-2 ln u1) * cos(2 pi u2) evaluated in double, rounded to float. */
#include <math.h>

#include "simcse/rng.h"

#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u

void simcse_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block(uint64_t seed, uint64_t subsequence, uint64_t blk, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)subsequence,
                             (uint32_t)(subsequence >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    simcse_philox4x32_10(ctr, key, out);
}

uint32_t simcse_rng_u32(uint64_t seed, uint64_t subsequence, uint64_t offset) {
    uint32_t o[4];
    block(seed, subsequence, offset >> 2, o);
    return o[offset & 3];
}

void simcse_rng_fill_u32_at(uint64_t seed, uint64_t subsequence, uint64_t offset0, uint32_t *out, int n) {
    uint32_t o[4];
    int i = 0;
    while (i < n) {
        uint64_t off = offset0 + (uint64_t)i;
        block(seed, subsequence, off >> 2, o);
        for (unsigned j = (unsigned)(off & 3); j < 4 && i < n; j++) out[i++] = o[j];
    }
}

void simcse_rng_fill_u32(uint64_t seed, uint64_t subsequence, uint32_t *out, int n) {
    simcse_rng_fill_u32_at(seed, subsequence, 0, out, n);
}

uint32_t simcse_dropout_threshold(float p) {
    if (!(p > 0.0f)) return 0; /* also NaN */
    double t = (double)p * 4294967296.0;
    if (t >= 4294967295.0) return 0xffffffffu;
    return (uint32_t)t;
}

float simcse_rng_uniform(simcse_rng_stream *s) {
    uint32_t u = simcse_rng_u32(s->seed, s->subsequence, s->offset);
    s->offset += 1;
    return (float)(u >> 8) * 0x1p-24f;
}

float simcse_rng_normal(simcse_rng_stream *s) {
    uint32_t a, b;
    if ((s->offset & 3) != 3) { /* both values in one block */
        uint32_t o[4];
        block(s->seed, s->subsequence, s->offset >> 2, o);
        a = o[s->offset & 3];
        b = o[(s->offset & 3) + 1];
    } else {
        a = simcse_rng_u32(s->seed, s->subsequence, s->offset);
        b = simcse_rng_u32(s->seed, s->subsequence, s->offset + 1);
    }
    s->offset += 2;
    double u1 = (double)((a >> 8) + 1) * 0x1p-24;
    double u2 = (double)(b >> 8) * 0x1p-24;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
