/* Philox4x32-10 and the cuRAND mapping (host/base/rng.c).
 *
 * Known answers come from two independent places:
 *  - the Random123 distribution's kat_vectors file (philox4x32 10 lines: ctr[4] key[2] -> out[4]);
 *  - cuRAND itself: the values below were printed by this program, which compiles cuRAND's
 *    own curand_init / curand for curandStatePhilox4_32_10_t on the host
 *    (CUDA 13.0: `nvcc -o gen gen.cu && ./gen`):
 *
 *      #define QUALIFIERS static inline __host__ __device__
 *      #include <curand_kernel.h>
 *      #include <stdio.h>
 *      int main(void) {
 *          const unsigned long long c[][3] = { {seed, subsequence, offset}, ... as in CURAND_CASES };
 *          for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
 *              curandStatePhilox4_32_10_t s;
 *              curand_init(c[i][0], c[i][1], c[i][2], &s);
 *              printf("0x%08x\n", curand(&s));
 *          }
 *          curandStatePhilox4_32_10_t s;                     // CURAND_SEQ
 *          curand_init(1234, (5ULL << 32) | (2ULL << 20) | 77, 6, &s);
 *          for (int i = 0; i < 11; i++) printf("0x%08x\n", curand(&s));
 *      }
 */
#include <criterion/criterion.h>
#include <math.h>

#include "simcse/rng.h"

static const uint32_t KAT[3][10] = {
    /* ctr[4], key[2], out[4] */
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c,
     0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
     0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
     0x24126ea1},
};

Test(rng, philox_random123_known_answers) {
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        simcse_philox4x32_10(KAT[i], KAT[i] + 4, out);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(out[j], KAT[i][6 + j], "vector %d word %d: %08x != %08x", i, j, out[j], KAT[i][6 + j]);
    }
}

static const struct {
    uint64_t seed, subsequence, offset;
    uint32_t value;
} CURAND_CASES[] = {
    {0x0000000000000000ull, 0x0000000000000000ull, 0x0000000000000000ull, 0x6627e8d5u},
    {0x0000000000000000ull, 0x0000000000000000ull, 0x0000000000000001ull, 0xe169c58du},
    {0x0000000000000000ull, 0x0000000000000000ull, 0x0000000000000002ull, 0xbc57ac4cu},
    {0x0000000000000000ull, 0x0000000000000000ull, 0x0000000000000003ull, 0x9b00dbd8u},
    {0x0000000000000000ull, 0x0000000000000000ull, 0x0000000000000004ull, 0xf8e4cca4u},
    {0x000000000000002aull, 0x0000000000000000ull, 0x0000000000000005ull, 0x53ba6cfdu},
    {0x000000000000002aull, 0x0000000000000001ull, 0x0000000000000000ull, 0x02933769u},
    {0x000000000000002aull, 0x0000000000000001ull, 0x00000000000003ffull, 0xaa617c73u},
    {0x0123456789abcdefull, 0x0000000700303039ull, 0x0000000000000011ull, 0x7e868457u},
    {0x0123456789abcdefull, 0x0000000100000000ull, 0x00000003ffffffffull, 0x8b1ca98bu},
    {0x0123456789abcdefull, 0x0000000100000000ull, 0x0000000400000000ull, 0xc4c60041u},
    {0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull, 0x411fcefdu},
    {0x00000000deadbeefull, 0x00000000fffffffeull, 0x0000123456789abcull, 0x2f8d379fu},
    {0x00000000000004d2ull, 0x0000000000000063ull, 0x00000000000002feull, 0xd1a89102u},
};

static const uint32_t CURAND_SEQ[11] = {0xd20ab2f4u, 0xfbc0ab9cu, 0xd4ea0e83u, 0x4c2fe6f8u, 0x373b8659u, 0x7493b20eu,
                                        0xc0ecd7e7u, 0xdf72828eu, 0xe4f2f19du, 0xc0a0b85fu, 0xb9abea62u};

Test(rng, u32_matches_curand_init_then_curand) {
    for (size_t i = 0; i < sizeof CURAND_CASES / sizeof CURAND_CASES[0]; i++) {
        uint32_t got = simcse_rng_u32(CURAND_CASES[i].seed, CURAND_CASES[i].subsequence, CURAND_CASES[i].offset);
        cr_assert_eq(got, CURAND_CASES[i].value, "case %zu: %08x != %08x", i, got, CURAND_CASES[i].value);
    }
}

Test(rng, successive_curand_calls_walk_the_offset) {
    /* curand_init(1234, subseq, 6) then 11 curand() calls: offsets 6..16, crossing blocks */
    const uint64_t sub = simcse_rng_subsequence(5, 2, 77);
    cr_assert_eq(sub, (5ull << 32) | (2ull << 20) | 77ull);
    for (int i = 0; i < 11; i++) cr_assert_eq(simcse_rng_u32(1234, sub, 6 + (uint64_t)i), CURAND_SEQ[i], "call %d", i);
    uint32_t fill[17];
    simcse_rng_fill_u32(1234, sub, fill, 17);
    for (int i = 0; i < 11; i++) cr_assert_eq(fill[6 + i], CURAND_SEQ[i], "fill %d", 6 + i);
}

Test(rng, fill_equals_single_values_for_every_length) {
    uint32_t buf[23];
    for (int n = 0; n <= 22; n++) {
        buf[n] = 0xa5a5a5a5u; /* guard: fill must not write past n */
        simcse_rng_fill_u32(99, 12345, buf, n);
        for (int i = 0; i < n; i++) cr_assert_eq(buf[i], simcse_rng_u32(99, 12345, (uint64_t)i));
        cr_assert_eq(buf[n], 0xa5a5a5a5u, "fill(%d) wrote past the end", n);
    }
}

Test(rng, block_layout_is_offset_then_subsequence_then_seed_key) {
    /* the mapping written out: ctr = {lo(off/4), hi(off/4), lo(sub), hi(sub)}, key = seed */
    const uint64_t seed = 0x1122334455667788ull, sub = 0x99aabbccddeeff00ull, off = 0x0000000512345679ull;
    const uint32_t ctr[4] = {(uint32_t)(off >> 2), (uint32_t)(off >> 34), (uint32_t)sub, (uint32_t)(sub >> 32)};
    const uint32_t key[2] = {0x55667788u, 0x11223344u};
    uint32_t out[4];
    simcse_philox4x32_10(ctr, key, out);
    cr_assert_eq(simcse_rng_u32(seed, sub, off), out[off & 3]);
}

Test(rng, subsequence_packs_step_site_row) {
    cr_assert_eq(simcse_rng_subsequence(0, 0, 0), 0u);
    cr_assert_eq(simcse_rng_subsequence(0xffffffffu, 0xfffu, 0xfffffu), 0xffffffffffffffffull);
    cr_assert_eq(simcse_rng_subsequence(1, 0, 0), 1ull << 32);
    cr_assert_eq(simcse_rng_subsequence(0, 1, 0), 1ull << 20);
    cr_assert_eq(simcse_rng_subsequence(0, 0, 1), 1ull);
    /* neighbouring (step, site, row) never share a stream */
    cr_assert_neq(simcse_rng_u32(7, simcse_rng_subsequence(1, 2, 3), 0),
                  simcse_rng_u32(7, simcse_rng_subsequence(1, 2, 4), 0));
    cr_assert_neq(simcse_rng_u32(7, simcse_rng_subsequence(1, 2, 3), 0),
                  simcse_rng_u32(7, simcse_rng_subsequence(1, 3, 3), 0));
    cr_assert_neq(simcse_rng_u32(7, simcse_rng_subsequence(1, 2, 3), 0),
                  simcse_rng_u32(7, simcse_rng_subsequence(2, 2, 3), 0));
}

Test(rng, dropout_threshold) {
    cr_assert_eq(simcse_dropout_threshold(0.0f), 0u);
    cr_assert_eq(simcse_dropout_threshold(-0.5f), 0u);
    cr_assert_eq(simcse_dropout_threshold(0.5f), 0x80000000u);
    cr_assert_eq(simcse_dropout_threshold(0.25f), 0x40000000u);
    cr_assert_eq(simcse_dropout_threshold(0.1f), 429496736u); /* 0.1f = 13421773 * 2^-27 */
    cr_assert_eq(simcse_dropout_threshold(1.0f), 0xffffffffu);
    cr_assert_eq(simcse_dropout_threshold(2.0f), 0xffffffffu);
    cr_assert_eq(simcse_dropout_threshold(nextafterf(1.0f, 0.0f)), 0xffffff00u);
}

Test(rng, u32_bits_are_balanced) {
    /* 2^16 values of one stream: each bit set about half the time, and the top byte
     * spread over its 256 values (a chi-square far below what a broken generator gives) */
    enum { N = 1 << 16 };
    static uint32_t v[N];
    simcse_rng_fill_u32(2024, simcse_rng_subsequence(3, 1, 9), v, N);
    for (int b = 0; b < 32; b++) {
        int ones = 0;
        for (int i = 0; i < N; i++) ones += (v[i] >> b) & 1;
        cr_assert(fabs(ones - N / 2.0) < 6 * sqrt(N / 4.0), "bit %d set %d times", b, ones);
    }
    int hist[256] = {0};
    for (int i = 0; i < N; i++) hist[v[i] >> 24]++;
    double chi = 0.0, e = N / 256.0;
    for (int i = 0; i < 256; i++) chi += (hist[i] - e) * (hist[i] - e) / e;
    cr_assert(chi < 400.0, "chi2 = %f over 255 dof", chi); /* mean 255, sd ~22.6 */
}

Test(rng, uniform_formula_and_range) {
    simcse_rng_stream s = {.seed = 5, .subsequence = 77, .offset = 3};
    for (int i = 0; i < 100; i++) {
        uint32_t u = simcse_rng_u32(5, 77, 3 + (uint64_t)i);
        float f = simcse_rng_uniform(&s);
        cr_assert_eq(f, (float)(u >> 8) / 16777216.0f);
        cr_assert(f >= 0.0f && f < 1.0f);
    }
    cr_assert_eq(s.offset, 103u);
    double sum = 0.0;
    simcse_rng_stream t = {.seed = 1, .subsequence = 0, .offset = 0};
    for (int i = 0; i < 100000; i++) sum += simcse_rng_uniform(&t);
    cr_assert(fabs(sum / 100000 - 0.5) < 0.005, "mean %f", sum / 100000);
}

Test(rng, normal_formula_and_moments) {
    /* Box-Muller from two consecutive values, as documented in rng.c */
    for (uint64_t off = 0; off < 12; off++) { /* covers pairs inside a block and across blocks */
        simcse_rng_stream s = {.seed = 8, .subsequence = 4, .offset = off};
        uint32_t a = simcse_rng_u32(8, 4, off), b = simcse_rng_u32(8, 4, off + 1);
        double u1 = ((a >> 8) + 1) / 16777216.0, u2 = (b >> 8) / 16777216.0;
        float want = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
        cr_assert_eq(simcse_rng_normal(&s), want, "offset %d", (int)off);
        cr_assert_eq(s.offset, off + 2);
    }
    simcse_rng_stream s = {.seed = 11, .subsequence = 0, .offset = 0};
    double m1 = 0, m2 = 0, m4 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = simcse_rng_normal(&s);
        cr_assert(isfinite(z));
        m1 += z, m2 += z * z, m4 += z * z * z * z;
    }
    m1 /= n, m2 /= n, m4 /= n;
    cr_assert(fabs(m1) < 0.01, "mean %f", m1);
    cr_assert(fabs(m2 - 1.0) < 0.015, "variance %f", m2);
    cr_assert(fabs(m4 - 3.0) < 0.1, "fourth moment %f", m4);
}
