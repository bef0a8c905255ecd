/* Fused self-attention over token-packed variable-length sequences (BERT: no causal mask).
 *
 * Design choices
 * - One thread block per (sequence, head), 8 warps. Sequence bounds come from offsets on
 *   the device, so the host never needs the lengths; any length works (tiles loop), the
 *   layout is tuned for SimCSE's L <= 64 where one query tile and one key tile cover the
 *   whole sequence, and it stays correct up to L = 512 and beyond. Head dims up to 128
 *   (32, 64, 80, 128 in practice): each lane owns dims lane, lane+32, lane+64, lane+96.
 * - Tiles of 32 queries x 32 keys in shared memory (Q, K, V; K padded to hd+1 floats per row
 *   so that lane j reading row j column d hits bank (j*(hd+1)+d) % 32: conflict-free for
 *   every even hd). Each warp owns 4 query rows, so one K load feeds 4 FMAs.
 * - Forward: flash-style online softmax in fp32 (running max, running sum, rescaled
 *   accumulator), lse = max + log(sum) saved per (token, head) row; out = acc / sum.
 * - Dropout on the probabilities: P_drop = P * keep / (1 - p), rng row = (row identity of the
 *   query token) * heads + head, element = key position j within the sequence (see rng.cuh). Decisions are regenerated in
 *   the backward, never stored. In the query-row-per-warp kernels, lane l computes the mask
 *   of (row l/8, keys 4*(l%8) .. +3) with one curand_init + curand4, and four warp ballots
 *   hand every lane the bits it needs: one Philox block per 4 decisions, as on the CPU.
 * - Backward recomputes P from the saved lse (no L x L matrix stored), with
 *   D_i = dO_i . O_i (= sum_j P_ij dP_ij, dropout included), dS = P (dP - D). Two kernels,
 *   both deterministic (no atomics): dK/dV with each warp owning 4 keys and the lanes
 *   walking the queries, then dQ with each warp owning 4 queries and the lanes walking the
 *   keys. P is recomputed twice; at L = 32 that is cheaper than any atomic scheme.
 * - No tensor cores: the four products (Q K^T, P V in the forward; dO V^T, dS K, dS^T Q,
 *   P^T dO in the backward) are fp32 loops on the CUDA cores over 32 x 32 x hd tiles in
 *   shared memory, in fp32 and bf16 mode alike (bf16 mode changes the linear layers, not
 *   this file). The loops marked "MMA" below are the places where mma.sync fragments with
 *   fp32 accumulators would go; the softmax and mask logic would not change. */
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/rng.cuh"

#define ATT_WARPS 8
#define ATT_THREADS (ATT_WARPS * 32)
#define ATT_RPW 4                      /* rows (queries or keys) per warp */
#define ATT_TILE (ATT_WARPS * ATT_RPW) /* 32 */
#define ATT_MAXD 4                     /* dims per lane: hd <= 128 */
#define ATT_MAX_HD (32 * ATT_MAXD)

static size_t fwd_smem(int hd) { return (size_t)(2 * ATT_TILE * (hd + 1) + ATT_TILE * hd) * sizeof(float); }
static size_t dkdv_smem(int hd) { return (size_t)(2 * ATT_TILE * (hd + 1) + 2 * ATT_TILE * hd) * sizeof(float); }
static size_t dq_smem(int hd) { return (size_t)(4 * ATT_TILE * (hd + 1)) * sizeof(float); }

/* Loads rows r0 .. r0+31 of one head (zeros past L) into a [32][ld] tile, cooperatively. */
__device__ __forceinline__ void load_tile(float *tile, int ld, const float *__restrict__ src, int t0, int r0, int L,
                                          int row_stride, int col0, int hd) {
    for (int idx = threadIdx.x; idx < ATT_TILE * hd; idx += blockDim.x) {
        const int r = idx / hd, c = idx - r * hd;
        const int i = r0 + r;
        tile[r * ld + c] = i < L ? src[(size_t)(t0 + i) * row_stride + col0 + c] : 0.0f;
    }
}

/* Dropout keep bits for this warp's 4 query rows x the 32 keys k0 .. k0+31: returns, for
 * this lane (key k0 + lane), bit r set when (row r, key) is kept. rows[] are the rng rows. */
__device__ __forceinline__ uint32_t warp_keep_rows(const cu_drop &d, const unsigned long long rows[ATT_RPW], int k0,
                                                   int lane) {
    /* lane l: row l/8, keys k0 + 4*(l%8) .. +3 */
    const int r_mine = lane >> 3;
    unsigned long long row = rows[0];
#pragma unroll
    for (int r = 1; r < ATT_RPW; r++)
        if (r_mine == r) row = rows[r];
    const uint32_t k4 = cu_keep4(d, row, (unsigned)(k0 + 4 * (lane & 7)));
    const uint32_t b0 = __ballot_sync(CU_FULL_MASK, k4 & 1u);
    const uint32_t b1 = __ballot_sync(CU_FULL_MASK, (k4 >> 1) & 1u);
    const uint32_t b2 = __ballot_sync(CU_FULL_MASK, (k4 >> 2) & 1u);
    const uint32_t b3 = __ballot_sync(CU_FULL_MASK, (k4 >> 3) & 1u);
    /* key k0 + lane: quad lane/4, component lane%4; row r's bit sits in lane 8r + lane/4 */
    const int c = lane & 3;
    const uint32_t bc = c == 0 ? b0 : c == 1 ? b1 : c == 2 ? b2 : b3;
    uint32_t out = 0;
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) out |= ((bc >> (8 * r + (lane >> 2))) & 1u) << r;
    return out;
}

/* ---------------- forward ---------------- */

__global__ void __launch_bounds__(ATT_THREADS)
    k_attn_fwd(float *__restrict__ out, float *__restrict__ lse, const float *__restrict__ q,
               const float *__restrict__ k, const float *__restrict__ v, const int32_t *__restrict__ offsets, int heads,
               int hd, float scale, cu_drop d) {
    extern __shared__ float smem[];
    const int b = blockIdx.x, h = blockIdx.y;
    const int t0 = offsets[b], L = offsets[b + 1] - t0;
    if (L <= 0) return;
    const int ld = hd + 1, HS = heads * hd, col0 = h * hd;
    float *Qs = smem;               /* [32][hd+1] */
    float *Ks = Qs + ATT_TILE * ld; /* [32][hd+1] */
    float *Vs = Ks + ATT_TILE * ld; /* [32][hd]   */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    for (int qs = 0; qs < L; qs += ATT_TILE) {
        load_tile(Qs, ld, q, t0, qs, L, HS, col0, hd);
        float m[ATT_RPW], l[ATT_RPW], acc[ATT_RPW][ATT_MAXD];
        unsigned long long rows[ATT_RPW]; /* rng rows: row identity of the token * heads + head */
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++) {
            const int i = qs + warp * ATT_RPW + r;
            m[r] = -INFINITY;
            l[r] = 0.0f;
            rows[r] = d.active && i < L ? cu_drop_row(d, t0 + i) * (unsigned long long)heads + (unsigned)h : 0ull;
#pragma unroll
            for (int t = 0; t < ATT_MAXD; t++) acc[r][t] = 0.0f;
        }
        for (int ks = 0; ks < L; ks += ATT_TILE) {
            __syncthreads(); /* previous tiles consumed (and Qs written) */
            load_tile(Ks, ld, k, t0, ks, L, HS, col0, hd);
            load_tile(Vs, hd, v, t0, ks, L, HS, col0, hd);
            __syncthreads();
            const int kvalid = ks + lane < L;
            /* MMA: S = Q K^T for this warp's 4 rows x 32 keys */
            float s[ATT_RPW] = {0.0f, 0.0f, 0.0f, 0.0f};
            const float *kr = Ks + lane * ld;
            const float *qr = Qs + (warp * ATT_RPW) * ld;
            for (int c = 0; c < hd; c++) {
                const float kv = kr[c];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) s[r] += qr[r * ld + c] * kv;
            }
            const uint32_t keep = d.active ? warp_keep_rows(d, rows, ks, lane) : 0xfu;
            float pd[ATT_RPW], corr[ATT_RPW];
#pragma unroll
            for (int r = 0; r < ATT_RPW; r++) {
                const float sc = kvalid ? s[r] * scale : -INFINITY;
                const float mx = cu_warp_max(sc); /* finite: key ks is always valid */
                const float mn = fmaxf(m[r], mx);
                const float p = kvalid ? expf(sc - mn) : 0.0f;
                corr[r] = expf(m[r] - mn); /* 0 on the first tile */
                l[r] = l[r] * corr[r] + cu_warp_sum(p);
                m[r] = mn;
                pd[r] = d.active ? ((keep >> r) & 1u ? p * d.keep_scale : 0.0f) : p;
            }
#pragma unroll
            for (int r = 0; r < ATT_RPW; r++)
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) acc[r][t] *= corr[r];
            /* MMA: O += P V */
            const int kn = min(ATT_TILE, L - ks);
            for (int j = 0; j < kn; j++) {
                float pj[ATT_RPW];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) pj[r] = __shfl_sync(CU_FULL_MASK, pd[r], j);
                const float *vr = Vs + j * hd;
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) {
                    const int c = lane + 32 * t;
                    if (c < hd) {
                        const float vv = vr[c];
#pragma unroll
                        for (int r = 0; r < ATT_RPW; r++) acc[r][t] += pj[r] * vv;
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++) {
            const int i = qs + warp * ATT_RPW + r;
            if (i < L) {
                const size_t row = (size_t)(t0 + i);
                const float inv = 1.0f / l[r];
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) {
                    const int c = lane + 32 * t;
                    if (c < hd) out[row * HS + col0 + c] = acc[r][t] * inv;
                }
                if (lane == 0) lse[row * heads + h] = m[r] + logf(l[r]);
            }
        }
        __syncthreads(); /* Qs is reloaded by the next query tile */
    }
}

/* ---------------- backward ---------------- */

/* D[t*heads + h] = dout[t, head h] . out[t, head h]; one warp per (token, head). */
__global__ void k_attn_bwd_prep(float *__restrict__ D, const float *__restrict__ dout, const float *__restrict__ o,
                                int T, int heads, int hd) {
    const int lane = threadIdx.x & 31;
    const size_t nrows = (size_t)T * heads;
    for (size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; w < nrows;
         w += ((size_t)gridDim.x * blockDim.x) >> 5) {
        const size_t base = w * (size_t)hd; /* row (t, h) starts at t*heads*hd + h*hd = w*hd */
        float s = 0.0f;
        for (int c = lane; c < hd; c += 32) s += dout[base + c] * o[base + c];
        s = cu_warp_sum(s);
        if (lane == 0) D[w] = s;
    }
}

/* dK, dV: warp w owns keys ks + 4w .. +3; lane i walks queries qs + i. */
__global__ void __launch_bounds__(ATT_THREADS)
    k_attn_bwd_dkdv(float *__restrict__ dk, float *__restrict__ dv, const float *__restrict__ dout,
                    const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                    const float *__restrict__ lse, const float *__restrict__ D, const int32_t *__restrict__ offsets,
                    int heads, int hd, float scale, cu_drop d) {
    extern __shared__ float smem[];
    const int b = blockIdx.x, h = blockIdx.y;
    const int t0 = offsets[b], L = offsets[b + 1] - t0;
    if (L <= 0) return;
    const int ld = hd + 1, HS = heads * hd, col0 = h * hd;
    float *Qs = smem;                /* [32][hd+1] */
    float *dOs = Qs + ATT_TILE * ld; /* [32][hd+1] */
    float *Kw = dOs + ATT_TILE * ld; /* [32][hd] : this block's 32 keys, 4 per warp */
    float *Vw = Kw + ATT_TILE * hd;  /* [32][hd] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    for (int ks = 0; ks < L; ks += ATT_TILE) {
        const int kw0 = ks + warp * ATT_RPW; /* this warp's first key (a multiple of 4) */
        /* each warp loads its own 4 key rows: only it reads them */
        for (int idx = lane; idx < ATT_RPW * hd; idx += 32) {
            const int r = idx / hd, c = idx - r * hd;
            const int j = kw0 + r;
            const size_t src = (size_t)(t0 + j) * HS + col0 + c;
            Kw[(warp * ATT_RPW + r) * hd + c] = j < L ? k[src] : 0.0f;
            Vw[(warp * ATT_RPW + r) * hd + c] = j < L ? v[src] : 0.0f;
        }
        __syncwarp();
        float dK[ATT_RPW][ATT_MAXD], dV[ATT_RPW][ATT_MAXD];
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++)
#pragma unroll
            for (int t = 0; t < ATT_MAXD; t++) dK[r][t] = dV[r][t] = 0.0f;

        for (int qs = 0; qs < L; qs += ATT_TILE) {
            __syncthreads(); /* previous Q / dO tiles consumed */
            load_tile(Qs, ld, q, t0, qs, L, HS, col0, hd);
            load_tile(dOs, ld, dout, t0, qs, L, HS, col0, hd);
            __syncthreads();
            const int i = qs + lane;
            const int qvalid = i < L;
            float lse_i = 0.0f, D_i = 0.0f;
            if (qvalid) {
                lse_i = lse[(size_t)(t0 + i) * heads + h];
                D_i = D[(size_t)(t0 + i) * heads + h];
            }
            /* MMA: S^T and dP^T for 4 keys x 32 queries */
            float s[ATT_RPW] = {0.0f, 0.0f, 0.0f, 0.0f}, dp[ATT_RPW] = {0.0f, 0.0f, 0.0f, 0.0f};
            const float *qr = Qs + lane * ld, *gr = dOs + lane * ld;
            const float *kr = Kw + (warp * ATT_RPW) * hd, *vr = Vw + (warp * ATT_RPW) * hd;
            for (int c = 0; c < hd; c++) {
                const float qv = qr[c], gv = gr[c];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) {
                    s[r] += qv * kr[r * hd + c];
                    dp[r] += gv * vr[r * hd + c];
                }
            }
            uint32_t keep = 0xfu;
            if (d.active && qvalid)
                keep = cu_keep4(d, cu_drop_row(d, t0 + i) * (unsigned long long)heads + (unsigned)h, (unsigned)kw0);
            float pd[ATT_RPW], ds[ATT_RPW];
#pragma unroll
            for (int r = 0; r < ATT_RPW; r++) {
                const int valid = qvalid && kw0 + r < L;
                const float p = valid ? expf(s[r] * scale - lse_i) : 0.0f;
                const int kept = (keep >> r) & 1u;
                const float f = d.active ? (kept ? d.keep_scale : 0.0f) : 1.0f;
                pd[r] = p * f;
                ds[r] = p * (dp[r] * f - D_i);
            }
            /* MMA: dV += P_drop^T dO, dK += dS^T Q */
            const int qn = min(ATT_TILE, L - qs);
            for (int ii = 0; ii < qn; ii++) {
                float a[ATT_RPW], g[ATT_RPW];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) {
                    a[r] = __shfl_sync(CU_FULL_MASK, pd[r], ii);
                    g[r] = __shfl_sync(CU_FULL_MASK, ds[r], ii);
                }
                const float *qrow = Qs + ii * ld, *grow = dOs + ii * ld;
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) {
                    const int c = lane + 32 * t;
                    if (c < hd) {
                        const float qv = qrow[c], gv = grow[c];
#pragma unroll
                        for (int r = 0; r < ATT_RPW; r++) {
                            dV[r][t] += a[r] * gv;
                            dK[r][t] += g[r] * qv;
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++) {
            const int j = kw0 + r;
            if (j < L) {
                const size_t row = (size_t)(t0 + j) * HS + col0;
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) {
                    const int c = lane + 32 * t;
                    if (c < hd) {
                        dk[row + c] = dK[r][t] * scale;
                        dv[row + c] = dV[r][t];
                    }
                }
            }
        }
        __syncwarp(); /* Kw / Vw rows are reloaded by this warp next */
    }
}

/* dQ: warp w owns queries qs + 4w .. +3; lane j walks keys ks + j. */
__global__ void __launch_bounds__(ATT_THREADS)
    k_attn_bwd_dq(float *__restrict__ dq, const float *__restrict__ dout, const float *__restrict__ q,
                  const float *__restrict__ k, const float *__restrict__ v, const float *__restrict__ lse,
                  const float *__restrict__ D, const int32_t *__restrict__ offsets, int heads, int hd, float scale,
                  cu_drop d) {
    extern __shared__ float smem[];
    const int b = blockIdx.x, h = blockIdx.y;
    const int t0 = offsets[b], L = offsets[b + 1] - t0;
    if (L <= 0) return;
    const int ld = hd + 1, HS = heads * hd, col0 = h * hd;
    float *Qs = smem;                /* [32][hd+1] */
    float *dOs = Qs + ATT_TILE * ld; /* [32][hd+1] */
    float *Ks = dOs + ATT_TILE * ld; /* [32][hd+1] */
    float *Vs = Ks + ATT_TILE * ld;  /* [32][hd+1] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    for (int qs = 0; qs < L; qs += ATT_TILE) {
        load_tile(Qs, ld, q, t0, qs, L, HS, col0, hd);
        load_tile(dOs, ld, dout, t0, qs, L, HS, col0, hd);
        float lse_r[ATT_RPW], D_r[ATT_RPW], dQ[ATT_RPW][ATT_MAXD];
        unsigned long long rows[ATT_RPW];
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++) {
            const int i = qs + warp * ATT_RPW + r;
            rows[r] = d.active && i < L ? cu_drop_row(d, t0 + i) * (unsigned long long)heads + (unsigned)h : 0ull;
            lse_r[r] = i < L ? lse[(size_t)(t0 + i) * heads + h] : 0.0f;
            D_r[r] = i < L ? D[(size_t)(t0 + i) * heads + h] : 0.0f;
#pragma unroll
            for (int t = 0; t < ATT_MAXD; t++) dQ[r][t] = 0.0f;
        }
        for (int ks = 0; ks < L; ks += ATT_TILE) {
            __syncthreads();
            load_tile(Ks, ld, k, t0, ks, L, HS, col0, hd);
            load_tile(Vs, ld, v, t0, ks, L, HS, col0, hd);
            __syncthreads();
            const int kvalid = ks + lane < L;
            /* MMA: S and dP for 4 queries x 32 keys */
            float s[ATT_RPW] = {0.0f, 0.0f, 0.0f, 0.0f}, dp[ATT_RPW] = {0.0f, 0.0f, 0.0f, 0.0f};
            const float *kr = Ks + lane * ld, *vr = Vs + lane * ld;
            const float *qr = Qs + (warp * ATT_RPW) * ld, *gr = dOs + (warp * ATT_RPW) * ld;
            for (int c = 0; c < hd; c++) {
                const float kv = kr[c], vv = vr[c];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) {
                    s[r] += qr[r * ld + c] * kv;
                    dp[r] += gr[r * ld + c] * vv;
                }
            }
            const uint32_t keep = d.active ? warp_keep_rows(d, rows, ks, lane) : 0xfu;
            float ds[ATT_RPW];
#pragma unroll
            for (int r = 0; r < ATT_RPW; r++) {
                const int valid = kvalid && qs + warp * ATT_RPW + r < L;
                const float p = valid ? expf(s[r] * scale - lse_r[r]) : 0.0f;
                const float f = d.active ? ((keep >> r) & 1u ? d.keep_scale : 0.0f) : 1.0f;
                ds[r] = p * (dp[r] * f - D_r[r]);
            }
            /* MMA: dQ += dS K */
            const int kn = min(ATT_TILE, L - ks);
            for (int j = 0; j < kn; j++) {
                float g[ATT_RPW];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) g[r] = __shfl_sync(CU_FULL_MASK, ds[r], j);
                const float *krow = Ks + j * ld;
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) {
                    const int c = lane + 32 * t;
                    if (c < hd) {
                        const float kv = krow[c];
#pragma unroll
                        for (int r = 0; r < ATT_RPW; r++) dQ[r][t] += g[r] * kv;
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++) {
            const int i = qs + warp * ATT_RPW + r;
            if (i < L) {
                const size_t row = (size_t)(t0 + i) * HS + col0;
#pragma unroll
                for (int t = 0; t < ATT_MAXD; t++) {
                    const int c = lane + 32 * t;
                    if (c < hd) dq[row + c] = dQ[r][t] * scale;
                }
            }
        }
        __syncthreads(); /* Qs / dOs are reloaded by the next query tile */
    }
}

/* ---------------- host side ---------------- */

void cu_attention_init(simcse_backend *be) {
    /* Opt in to the shared memory the largest head dim needs (above the 48 KiB default). */
    const size_t need_fwd = fwd_smem(ATT_MAX_HD), need_dkdv = dkdv_smem(ATT_MAX_HD), need_dq = dq_smem(ATT_MAX_HD);
    CU_CHECK(cudaFuncSetAttribute(k_attn_fwd, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)need_fwd));
    CU_CHECK(cudaFuncSetAttribute(k_attn_bwd_dkdv, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)need_dkdv));
    CU_CHECK(cudaFuncSetAttribute(k_attn_bwd_dq, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)need_dq));
    (void)be;
}

static void check_shape(const char *op, int B, int heads, int hd) {
    if (hd <= 0 || hd > ATT_MAX_HD || heads <= 0 || heads > 65535 || B < 0)
        simcse_fatal("cuda backend: %s: unsupported shape (B %d, heads %d, head dim %d; head dim must be 1..%d)", op, B,
                     heads, hd, ATT_MAX_HD);
}

void cu_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                      const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d) {
    if (B <= 0 || T <= 0) return;
    check_shape("attention_fwd", B, heads, hd);
    cu_enter(be);
    const float scale = 1.0f / sqrtf((float)hd);
    dim3 grid(B, heads);
    k_attn_fwd<<<grid, ATT_THREADS, fwd_smem(hd), cu_stream(be)>>>(out, lse, q, k, v, offsets, heads, hd, scale,
                                                                   cu_drop_make(d));
    CU_LAUNCH_CHECK("k_attn_fwd");
}

void cu_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                      const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets, int B,
                      int T, int heads, int hd, simcse_dropout d) {
    if (B <= 0 || T <= 0) return;
    check_shape("attention_bwd", B, heads, hd);
    cu_enter(be);
    const float scale = 1.0f / sqrtf((float)hd);
    const cu_drop dd = cu_drop_make(d);
    float *D = (float *)cu_scratch(be, (size_t)T * heads * sizeof(float));
    const size_t rows = (size_t)T * heads;
    k_attn_bwd_prep<<<cu_grid(rows * 32, 256), 256, 0, cu_stream(be)>>>(D, dout, out, T, heads, hd);
    CU_LAUNCH_CHECK("k_attn_bwd_prep");
    dim3 grid(B, heads);
    k_attn_bwd_dkdv<<<grid, ATT_THREADS, dkdv_smem(hd), cu_stream(be)>>>(dk, dv, dout, q, k, v, lse, D, offsets, heads,
                                                                         hd, scale, dd);
    CU_LAUNCH_CHECK("k_attn_bwd_dkdv");
    k_attn_bwd_dq<<<grid, ATT_THREADS, dq_smem(hd), cu_stream(be)>>>(dq, dout, q, k, v, lse, D, offsets, heads, hd,
                                                                     scale, dd);
    CU_LAUNCH_CHECK("k_attn_bwd_dq");
}
