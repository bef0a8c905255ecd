// Issue 11 rule 7, the cuRAND half: curand_kernel.h is the toolkit's own header compiled for the
// host (build-emu/cuda-include), and its Philox4x32-10 must stay bit-identical to ours
// (include/simcse/rng.h, host/base/rng.c) and to what the kernels draw (kernels/cuda/rng.cuh).
// Everything is drawn inside real kernel launches on the harness and compared on the host with
// simcse_rng_u32, the value the CPU backend uses.
//
// - curand_init(seed, subsequence, offset) then curand4 and then curand, for seeds with every
//   key word (0, 2^32-1, 2^32, 2^64-1 and random), subsequences with every counter word (the
//   packings of simcse_rng_subsequence and simcse_dropout_subsequence among them) and offsets
//   at and around the 2^32 boundaries of the block counter, not multiples of 4 included, so
//   the walk crosses blocks and the carry from ctr.x into ctr.y.
// - What the kernels call: cu_rng4 / cu_keep4 of rng.cuh with cu_drop_make of a simcse_dropout
//   (row from row_ids in device memory or the packed index, elements at any e % 4), against
//   simcse_rng_u32(seed, simcse_dropout_subsequence(step, site), simcse_dropout_offset(row, e))
//   and the decision u >= simcse_dropout_threshold(p); the threshold's boundary (u equal to it
//   is kept, u one below is dropped); the host-side packings of rng.cuh equal rng.h's.
// Built only by make test-emu (tests/emu/test_*.cu).
#include <criterion/criterion.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <vector>

extern "C" {
#include "simcse/ops.h"
#include "simcse/rng.h"
}
#include "kernels/cuda/cuda_common.cuh" /* first, as in the kernels: rng.cuh assumes it */
#include "kernels/cuda/rng.cuh"

namespace {

#define CK(call) cr_assert_eq((call), cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

// Values each curand case draws: curand4 after curand_init, then WALK curand() calls on a fresh
// state from the same point (offsets o .. o+WALK-1, crossing into the next blocks).
const int WALK = 9, PER_CASE = 4 + WALK;

__global__ void k_curand(const unsigned long long *seed, const unsigned long long *subseq,
                         const unsigned long long *offset, uint32_t *out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    curandStatePhilox4_32_10_t s;
    curand_init(seed[i], subseq[i], offset[i], &s);
    const uint4 v = curand4(&s);
    uint32_t *o = out + (size_t)i * PER_CASE;
    o[0] = v.x, o[1] = v.y, o[2] = v.z, o[3] = v.w;
    curand_init(seed[i], subseq[i], offset[i], &s);
    for (int k = 0; k < WALK; k++) o[4 + k] = curand(&s);
}

unsigned long long splitmix(unsigned long long *s) {
    unsigned long long z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

template <class T> T *dev(const std::vector<T> &h) {
    T *d = nullptr;
    CK(cudaMalloc((void **)&d, h.size() * sizeof(T)));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

} // namespace

Test(emu_philox, curand_init_curand4_and_curand_equal_simcse_rng_u32) {
    unsigned long long rs = 20261202;
    std::vector<unsigned long long> seeds = {0, 1, 1234, 0xffffffffull, 0x100000000ull, 0xffffffffffffffffull};
    for (int i = 0; i < 10; i++) seeds.push_back(splitmix(&rs));
    std::vector<unsigned long long> subs = {0,
                                            1,
                                            0xffffffffull,
                                            0x100000000ull,
                                            0xffffffffffffffffull,
                                            simcse_rng_subsequence(0, 0, 1),
                                            simcse_rng_subsequence(5, 2, 77),
                                            simcse_rng_subsequence(1, 0xfff, 0),
                                            simcse_rng_subsequence(0xffffffffu, 0xfffu, 0xfffffu),
                                            simcse_rng_subsequence(123456, 0x800, 0x54321),
                                            simcse_dropout_subsequence(3, 0x12345),
                                            simcse_dropout_subsequence(0xfffffffeu, 0xfffffu),
                                            simcse_dropout_subsequence(0, 7)};
    for (int i = 0; i < 3; i++) subs.push_back(splitmix(&rs));
    // block counter (offset / 4) at and around 2^32: the walk carries from ctr.x into ctr.y
    const unsigned long long B32 = 4ull << 32;
    std::vector<unsigned long long> offs = {0,
                                            1,
                                            2,
                                            3,
                                            5,
                                            6,
                                            7,
                                            4095,
                                            0xffffffffull,
                                            0x100000000ull,
                                            0x100000001ull,
                                            B32 - 4,
                                            B32 - 3,
                                            B32 - 1,
                                            B32,
                                            B32 + 2,
                                            simcse_dropout_offset(0xfffff, 0xfffd),
                                            simcse_dropout_offset(12345, 17),
                                            (1ull << 62) + 3};
    for (int i = 0; i < 3; i++) offs.push_back(splitmix(&rs) >> 2); // the walk stays below 2^64
    std::vector<unsigned long long> hs, hq, ho;
    for (auto s : seeds)
        for (auto q : subs)
            for (auto o : offs) hs.push_back(s), hq.push_back(q), ho.push_back(o);
    const int n = (int)hs.size();
    unsigned long long *ds = dev(hs), *dq = dev(hq), *dof = dev(ho);
    uint32_t *dout = nullptr;
    CK(cudaMalloc((void **)&dout, (size_t)n * PER_CASE * sizeof(uint32_t)));
    k_curand<<<(n + 255) / 256, 256>>>(ds, dq, dof, dout, n);
    CK(cudaGetLastError());
    std::vector<uint32_t> got((size_t)n * PER_CASE);
    CK(cudaMemcpy(got.data(), dout, got.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        const uint32_t *g = &got[(size_t)i * PER_CASE];
        for (int k = 0; k < 4; k++) {
            const uint32_t want = simcse_rng_u32(hs[i], hq[i], ho[i] + (unsigned long long)k);
            cr_assert_eq(g[k], want,
                         "curand4 .%c after curand_init(seed 0x%llx, subsequence 0x%llx, offset 0x%llx) is 0x%08x; "
                         "simcse_rng_u32 at offset +%d is 0x%08x",
                         "xyzw"[k], hs[i], hq[i], ho[i], g[k], k, want);
        }
        for (int k = 0; k < WALK; k++) {
            const uint32_t want = simcse_rng_u32(hs[i], hq[i], ho[i] + (unsigned long long)k);
            cr_assert_eq(g[4 + k], want,
                         "curand() call %d after curand_init(seed 0x%llx, subsequence 0x%llx, offset 0x%llx) is "
                         "0x%08x; simcse_rng_u32 at offset +%d is 0x%08x",
                         k, hs[i], hq[i], ho[i], g[4 + k], k, want);
        }
    }
    // the fill helpers the CPU dropout uses walk the same values
    uint32_t fill[11];
    simcse_rng_fill_u32_at(hs[3], hq[3], B32 - 3, fill, 11);
    for (int k = 0; k < 11; k++) cr_assert_eq(fill[k], simcse_rng_u32(hs[3], hq[3], B32 - 3 + (unsigned)k));
    CK(cudaFree(ds));
    CK(cudaFree(dq));
    CK(cudaFree(dof));
    CK(cudaFree(dout));
}

namespace {

// Case c: rows[c] (rng row, or the packed index when row_ids is NULL), element es[c]; the draw
// through cu_rng4 and the keep bits through cu_keep4, as the dropout kernels call them.
__global__ void k_drop(cu_drop d, const int *packed, const unsigned *es, uint32_t *u, uint32_t *keep, int n) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n) return;
    const unsigned long long row = cu_drop_row(d, packed[c]);
    const uint4 v = cu_rng4(d, row, es[c]);
    u[4 * c] = v.x, u[4 * c + 1] = v.y, u[4 * c + 2] = v.z, u[4 * c + 3] = v.w;
    keep[c] = cu_keep4(d, row, es[c]);
}

struct drop_case_set {
    std::vector<int> packed;
    std::vector<unsigned> es;
};

// Runs k_drop for the dropout d (its row_ids, when not NULL, in device memory) and checks every
// value and decision against the CPU's mapping. Returns the number of dropped elements.
long check_drop(const simcse_dropout &sd, const std::vector<int32_t> &row_ids_host, const drop_case_set &cs,
                uint32_t threshold_override, int use_override) {
    cu_drop d = cu_drop_make(sd);
    if (use_override) d.threshold = threshold_override;
    const uint32_t thr = use_override ? threshold_override : simcse_dropout_threshold(sd.p);
    const int n = (int)cs.packed.size();
    int *dp = dev(cs.packed);
    unsigned *de = dev(cs.es);
    uint32_t *du = nullptr, *dk = nullptr;
    CK(cudaMalloc((void **)&du, (size_t)n * 4 * sizeof(uint32_t)));
    CK(cudaMalloc((void **)&dk, (size_t)n * sizeof(uint32_t)));
    k_drop<<<(n + 127) / 128, 128>>>(d, dp, de, du, dk, n);
    CK(cudaGetLastError());
    std::vector<uint32_t> u((size_t)n * 4), keep((size_t)n);
    CK(cudaMemcpy(u.data(), du, u.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(keep.data(), dk, keep.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
    const uint64_t sub = simcse_dropout_subsequence(sd.step, sd.site);
    long dropped = 0;
    for (int c = 0; c < n; c++) {
        const uint64_t row =
            row_ids_host.empty() ? (uint64_t)cs.packed[c] : (uint64_t)(int64_t)row_ids_host[cs.packed[c]];
        for (int k = 0; k < 4; k++) {
            const uint64_t off = simcse_dropout_offset(row, cs.es[c]) + (uint64_t)k;
            const uint32_t want = simcse_rng_u32(sd.seed, sub, off);
            cr_assert_eq(u[4 * c + k], want,
                         "cu_rng4 (seed %llu, step %u, site %u, row %llu, element %u + %d) is 0x%08x; the CPU "
                         "draws 0x%08x",
                         (unsigned long long)sd.seed, sd.step, sd.site, (unsigned long long)row, cs.es[c], k,
                         u[4 * c + k], want);
            const uint32_t kept = (keep[c] >> k) & 1u, want_kept = want >= thr;
            cr_assert_eq(kept, want_kept,
                         "cu_keep4 (p %g, threshold 0x%08x, row %llu, element %u + %d, u 0x%08x) %s; the CPU %s",
                         (double)sd.p, thr, (unsigned long long)row, cs.es[c], k, want, kept ? "keeps" : "drops",
                         want_kept ? "keeps" : "drops");
            dropped += !kept;
        }
    }
    CK(cudaFree(dp));
    CK(cudaFree(de));
    CK(cudaFree(du));
    CK(cudaFree(dk));
    return dropped;
}

} // namespace

Test(emu_philox, dropout_draws_and_decisions_of_rng_cuh_equal_the_cpu) {
    drop_case_set cs;
    const unsigned elems[] = {0, 1, 2, 3, 4, 5, 6, 7, 64, 127, 765, 4093, 65532, 65533};
    const int n_rows = 24;
    for (int r = 0; r < n_rows; r++)
        for (unsigned e : elems) cs.packed.push_back(r), cs.es.push_back(e);
    // global row identities as the packer makes them (sequence * max_len + position), 2^20 and past
    std::vector<int32_t> rows_h;
    for (int r = 0; r < n_rows; r++) rows_h.push_back((int32_t)((r * 7919 + 3) % 5000) * 128 + r % 5);
    rows_h[5] = 0xfffff;
    rows_h[6] = 0x100000;
    rows_h[7] = 0x7fffffff;
    int32_t *d_rows = nullptr;
    CK(cudaMalloc((void **)&d_rows, rows_h.size() * sizeof(int32_t)));
    CK(cudaMemcpy(d_rows, rows_h.data(), rows_h.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    const float ps[] = {0.1f, 0.5f, 0.9f, 1e-9f, 0.99999994f};
    const uint64_t seeds[] = {42, 0xfedcba9876543210ull};
    const uint32_t steps[] = {0, 1, 0xffffffffu};
    const uint32_t sites[] = {0, 3, 0x12345, 0xfffff};
    const long total = (long)cs.packed.size() * 4;
    for (uint64_t seed : seeds)
        for (uint32_t step : steps)
            for (uint32_t site : sites)
                for (float p : ps)
                    for (int with_rows = 0; with_rows < 2; with_rows++) {
                        simcse_dropout sd = {seed, step, site, p, with_rows ? d_rows : NULL};
                        const long dropped = check_drop(sd, with_rows ? rows_h : std::vector<int32_t>(), cs, 0, 0);
                        if (p == 0.5f) // a sanity bound on the draw (1344 draws: sigma 18)
                            cr_assert(dropped > total / 2 - 160 && dropped < total / 2 + 160,
                                      "p 0.5 dropped %ld of %ld", dropped, total);
                    }
    CK(cudaFree(d_rows));
}

Test(emu_philox, the_threshold_boundary_keeps_u_equal_to_it) {
    // u == threshold is kept, u == threshold - 1 dropped (drop when u < threshold, rng.h)
    drop_case_set cs;
    cs.packed = {9};
    cs.es = {2};
    simcse_dropout sd = {77, 4, 11, 0.3f, NULL};
    const uint32_t u0 = simcse_rng_u32(77, simcse_dropout_subsequence(4, 11), simcse_dropout_offset(9, 2));
    cr_assert(u0 > 0, "pick another case: the draw is 0");
    check_drop(sd, std::vector<int32_t>(), cs, u0, 1);
    check_drop(sd, std::vector<int32_t>(), cs, u0 + 1, 1);
    check_drop(sd, std::vector<int32_t>(), cs, u0 - 1, 1);
}

Test(emu_philox, rng_cuh_packs_as_rng_h) {
    unsigned long long rs = 7;
    for (int i = 0; i < 2000; i++) {
        const uint32_t step = (uint32_t)splitmix(&rs), site = (uint32_t)splitmix(&rs) & (i & 1 ? 0xfffffu : 0xffffffu);
        cr_assert_eq(cu_dropout_subsequence(step, site), simcse_dropout_subsequence(step, site),
                     "cu_dropout_subsequence(%u, 0x%x) differs from simcse_dropout_subsequence", step, site);
    }
    const float ps[] = {0.0f,
                        -0.5f,
                        1e-12f,
                        1e-9f,
                        0.1f,
                        0.25f,
                        0.5f,
                        0.75f,
                        0.9f,
                        0.99999994f,
                        1.0f,
                        2.0f,
                        __int_as_float(0x7fc00000)};
    for (float p : ps)
        cr_assert_eq(cu_dropout_threshold(p), simcse_dropout_threshold(p), "threshold of p %g: 0x%08x vs 0x%08x",
                     (double)p, cu_dropout_threshold(p), simcse_dropout_threshold(p));
    for (int i = 0; i < 20000; i++) {
        const float p = (float)(splitmix(&rs) >> 40) * 0x1p-24f;
        cr_assert_eq(cu_dropout_threshold(p), simcse_dropout_threshold(p), "threshold of p %.9g", (double)p);
    }
    // p >= 1 drops everything, u == 2^32 - 1 included: the keep scale is 0
    const simcse_dropout one = {1, 2, 3, 1.0f, NULL};
    const cu_drop d = cu_drop_make(one);
    cr_assert(d.active && d.threshold == 0xffffffffu && d.keep_scale == 0.0f);
}
