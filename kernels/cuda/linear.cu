/* Linear layers on cuBLAS / cuBLASLt: y = x W^T + b with W in PyTorch's [out, in] layout.
 *
 * Design choices
 * - Row-major tensors are handed to column-major cuBLAS as their transposes:
 *   C[M,N] = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major, so no copy
 *   or transpose kernel is ever needed (cu_gemm_rm below does the bookkeeping once).
 * - The forward is one cuBLASLt matmul with the bias fused in its epilogue
 *   (CUBLASLT_EPILOGUE_BIAS). Plans (descriptors, layouts and the heuristic's algorithm) are
 *   cached per device, shape, precision and operand alignment, so the heuristic runs once per
 *   shape (the cache is process-wide and not thread-safe, like the rest of the backend).
 *   Where cuBLASLt offers no algorithm (or refuses the call) the forward falls back to
 *   cublasGemmEx with the bias pre-broadcast into the output (beta = 1).
 * - fp32 mode: fp32 operands, CUBLAS_COMPUTE_32F, the handle in CUBLAS_PEDANTIC_MATH: no TF32
 *   and no reduced-precision shortcut, so results match the CPU oracle to fp32 rounding
 *   (summation order differs: about 1e-6 relative for K ~ 1000).
 * - bf16 mode: the interface is fp32, so each GEMM converts its two operands into bf16
 *   copies in the scratch arena (round to nearest even), multiplies them on the tensor cores
 *   with fp32 accumulation and writes fp32 (C/D in fp32, bias in fp32). The conversion costs
 *   one extra read of the weights per GEMM; TODO (perf): keep persistent bf16 copies of the
 *   weights, refreshed by the AdamW kernel, and bf16 activations between layers.
 * - The bias gradient db += column sums of dout is a deterministic two-stage reduction
 *   (cu_colsum_rows), not atomics, so repeated runs give identical gradients. */
#include <string.h>

#include "kernels/cuda/cuda_common.cuh"

/* ---------------- small kernels ---------------- */

__global__ void k_f32_to_bf16(__nv_bfloat16 *__restrict__ y, const float *__restrict__ x, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}

/* out[n, o] = b[o] for every row (the fallback's bias, then GEMM with beta = 1). */
__global__ void k_broadcast_rows(float *__restrict__ out, const float *__restrict__ b, int N, int O) {
    size_t total = (size_t)N * O;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        out[i] = b[i % O];
}

/* Stage 1 of the column sum: block (bx, by) sums columns bx*32 .. +31 over the rows of
 * chunk by; threadIdx.y strides the rows, then the 8 partial sums are added in order.
 * With one chunk the result goes straight into out (+=), else into partial[by][c]. */
#define COLSUM_TY 8
__global__ void k_colsum_stage1(float *__restrict__ out, float *__restrict__ partial, const float *__restrict__ x,
                                int N, int C, int rows_per_chunk, int direct) {
    __shared__ float sm[COLSUM_TY][33];
    const int c = blockIdx.x * 32 + threadIdx.x;
    const int r0 = blockIdx.y * rows_per_chunk;
    int r1 = r0 + rows_per_chunk;
    if (r1 > N) r1 = N;
    float s = 0.0f;
    if (c < C)
        for (int r = r0 + threadIdx.y; r < r1; r += COLSUM_TY) s += x[(size_t)r * C + c];
    sm[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t = sm[0][threadIdx.x];
        for (int i = 1; i < COLSUM_TY; i++) t += sm[i][threadIdx.x];
        if (direct)
            out[c] += t;
        else
            partial[(size_t)blockIdx.y * C + c] = t;
    }
}

/* Stage 2: out[c] += sum over chunks (ascending) of partial[chunk][c]. */
__global__ void k_colsum_stage2(float *__restrict__ out, const float *__restrict__ partial, int chunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float t = 0.0f;
    for (int i = 0; i < chunks; i++) t += partial[(size_t)i * C + c];
    out[c] += t;
}

void cu_colsum_rows(simcse_backend *be, float *out, const float *x, int N, int C) {
    if (N <= 0 || C <= 0) return;
    /* The chunking depends on N only, so the summation order (and the result) is fixed. */
    int chunks = (N + 63) / 64;
    if (chunks > 128) chunks = 128;
    int rows_per_chunk = (N + chunks - 1) / chunks;
    chunks = (N + rows_per_chunk - 1) / rows_per_chunk;
    float *partial = NULL;
    if (chunks > 1) partial = (float *)cu_scratch(be, (size_t)chunks * C * sizeof(float));
    dim3 grid((C + 31) / 32, chunks), block(32, COLSUM_TY);
    k_colsum_stage1<<<grid, block, 0, cu_stream(be)>>>(out, partial, x, N, C, rows_per_chunk, chunks == 1);
    CU_LAUNCH_CHECK("k_colsum_stage1");
    if (chunks > 1) {
        k_colsum_stage2<<<(C + 255) / 256, 256, 0, cu_stream(be)>>>(out, partial, chunks, C);
        CU_LAUNCH_CHECK("k_colsum_stage2");
    }
}

static void to_bf16(simcse_backend *be, __nv_bfloat16 *y, const float *x, size_t n) {
    if (!n) return;
    k_f32_to_bf16<<<cu_grid(n, 256), 256, 0, cu_stream(be)>>>(y, x, n);
    CU_LAUNCH_CHECK("k_f32_to_bf16");
}

/* ---------------- classic cuBLAS GEMM in row-major terms ---------------- */

/* Row-major C[M,N] = alpha * op(A) op(B) + beta * C, C fp32.
 * A is stored [M,K] (a_trans = 0) or [K,M] (a_trans = 1); B is [K,N] (b_trans = 0) or [N,K].
 * ab_type: CUDA_R_32F or CUDA_R_16BF for both A and B. */
static void gemm_rm(simcse_backend *be, float *C, const void *A, int a_trans, const void *B, int b_trans, int M, int N,
                    int K, float alpha, float beta, cudaDataType_t ab_type) {
    cu_ctx *c = cu_ctx_of(be);
    const cublasOperation_t opB = b_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opA = a_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldb = b_trans ? K : N, lda = a_trans ? M : K;
    /* column-major: C^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M) */
    CUBLAS_CHECK(cublasGemmEx(c->blas, opB, opA, N, M, K, &alpha, B, ab_type, ldb, A, ab_type, lda, &beta, C,
                              CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void cu_gemm_rm_f32(simcse_backend *be, float *C, const float *A, int a_trans, const float *B, int b_trans, int M,
                    int N, int K, float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty sum: C = beta * C */
        if (beta == 0.0f)
            CU_CHECK(cudaMemsetAsync(C, 0, (size_t)M * N * sizeof(float), cu_stream(be)));
        else if (beta != 1.0f)
            cu_scale(be, C, beta, (size_t)M * N);
        return;
    }
    gemm_rm(be, C, A, a_trans, B, b_trans, M, N, K, alpha, beta, CUDA_R_32F);
}

/* ---------------- cuBLASLt forward with the bias epilogue ---------------- */

typedef struct {
    int used, dev, N, I, O, bf16, has_bias;
    int al_w, al_x, al_y; /* pointer alignments (bytes, power of two, <= 256) the plan allows */
    int ok;               /* 0: no Lt algorithm, use the fallback */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    size_t ws;
} lt_plan;

#define LT_PLANS 128
static lt_plan g_plans[LT_PLANS];
static int g_plans_next;

static int ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 1 && (a & (uintptr_t)(al - 1))) al >>= 1;
    return al;
}

static void plan_release(lt_plan *p) {
    if (!p->used) return;
    if (p->op) CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->op));
    if (p->la) CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->la));
    if (p->lb) CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lb));
    if (p->lc) CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lc));
    memset(p, 0, sizeof *p);
}

static lt_plan *plan_get(simcse_backend *be, int N, int I, int O, int bf16, int has_bias, int al_w, int al_x,
                         int al_y) {
    cu_ctx *c = cu_ctx_of(be);
    for (int i = 0; i < LT_PLANS; i++) {
        lt_plan *p = &g_plans[i];
        if (p->used && p->dev == c->device && p->N == N && p->I == I && p->O == O && p->bf16 == bf16 &&
            p->has_bias == has_bias && p->al_w == al_w && p->al_x == al_x && p->al_y == al_y)
            return p;
    }
    lt_plan *p = &g_plans[g_plans_next];
    g_plans_next = (g_plans_next + 1) % LT_PLANS;
    plan_release(p);
    p->used = 1;
    p->dev = c->device;
    p->N = N, p->I = I, p->O = O, p->bf16 = bf16, p->has_bias = has_bias;
    p->al_w = al_w, p->al_x = al_x, p->al_y = al_y;
    const cudaDataType_t ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
    /* column-major D (O x N, ld O) = W^T-view: A = W stored col-major I x O (ld I), op T;
     * B = x stored col-major I x N (ld I), op N; bias has O entries (one per row of D). */
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB));
    if (has_bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bt = CUDA_R_32F;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, ab, I, O, I));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, ab, I, N, I));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, O, N, O));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = c->lt_ws_bytes;
    uint32_t a_w = (uint32_t)al_w, a_x = (uint32_t)al_x, a_y = (uint32_t)al_y;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a_w, sizeof a_w));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a_x, sizeof a_x));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a_y, sizeof a_y));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a_y, sizeof a_y));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found);
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    p->ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (p->ok) {
        p->algo = res.algo;
        p->ws = res.workspaceSize;
    }
    return p;
}

static void linear_fwd_fallback(simcse_backend *be, float *out, const void *in, const void *W, const float *b, int N,
                                int I, int O, cudaDataType_t ab) {
    float beta = 0.0f;
    if (b) {
        size_t total = (size_t)N * O;
        k_broadcast_rows<<<cu_grid(total, 256), 256, 0, cu_stream(be)>>>(out, b, N, O);
        CU_LAUNCH_CHECK("k_broadcast_rows");
        beta = 1.0f;
    }
    gemm_rm(be, out, in, 0, W, 1, N, O, I, 1.0f, beta, ab);
}

void cu_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                   int O) {
    if (N <= 0 || O <= 0) return;
    cu_enter(be);
    cu_ctx *c = cu_ctx_of(be);
    if (I <= 0) { /* y = b */
        if (b) {
            k_broadcast_rows<<<cu_grid((size_t)N * O, 256), 256, 0, cu_stream(be)>>>(out, b, N, O);
            CU_LAUNCH_CHECK("k_broadcast_rows");
        } else {
            CU_CHECK(cudaMemsetAsync(out, 0, (size_t)N * O * sizeof(float), cu_stream(be)));
        }
        return;
    }
    const void *A = W, *X = in;
    cudaDataType_t ab = CUDA_R_32F;
    if (c->bf16) {
        size_t nw = (size_t)O * I, nx = (size_t)N * I;
        char *s = (char *)cu_scratch(be, cu_align256(nw * 2) + cu_align256(nx * 2));
        __nv_bfloat16 *wb = (__nv_bfloat16 *)s, *xb = (__nv_bfloat16 *)(s + cu_align256(nw * 2));
        to_bf16(be, wb, W, nw);
        to_bf16(be, xb, in, nx);
        A = wb, X = xb, ab = CUDA_R_16BF;
    }
    /* the bias epilogue reads b with vector loads: require 16-byte alignment, else fall back */
    const int bias_ok = !b || ((uintptr_t)b & 15) == 0;
    lt_plan *p = NULL;
    if (bias_ok) p = plan_get(be, N, I, O, c->bf16, b != NULL, ptr_align(A), ptr_align(X), ptr_align(out));
    if (p && p->ok) {
        if (b) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof b));
        const float alpha = 1.0f, beta = 0.0f;
        cublasStatus_t st = cublasLtMatmul(c->lt, p->op, &alpha, A, p->la, X, p->lb, &beta, out, p->lc, out, p->lc,
                                           &p->algo, c->lt_ws, p->ws, cu_stream(be));
        if (st == CUBLAS_STATUS_SUCCESS) return;
        if (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_INVALID_VALUE) CUBLAS_CHECK(st);
        p->ok = 0; /* remember: this shape goes through the fallback from now on */
    }
    linear_fwd_fallback(be, out, X, A, b, N, I, O, ab);
}

void cu_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                   const float *W, int N, int I, int O) {
    if (N <= 0) return;
    cu_enter(be);
    cu_ctx *c = cu_ctx_of(be);
    if (I <= 0 || O <= 0) {
        /* an empty sum: din = 0 (it is overwritten, as on the CPU), nothing to add to dW */
        if (din && I > 0) CU_CHECK(cudaMemsetAsync(din, 0, (size_t)N * I * sizeof(float), cu_stream(be)));
        if (db && O > 0) cu_colsum_rows(be, db, dout, N, O);
        return;
    }
    const void *G = dout, *X = in, *Wp = W;
    cudaDataType_t ab = CUDA_R_32F;
    if (c->bf16 && (din || dW)) {
        size_t ng = (size_t)N * O, nx = dW ? (size_t)N * I : 0, nw = din ? (size_t)O * I : 0;
        char *s = (char *)cu_scratch(be, cu_align256(ng * 2) + cu_align256(nx * 2) + cu_align256(nw * 2));
        __nv_bfloat16 *gb = (__nv_bfloat16 *)s;
        __nv_bfloat16 *xb = (__nv_bfloat16 *)(s + cu_align256(ng * 2));
        __nv_bfloat16 *wb = (__nv_bfloat16 *)(s + cu_align256(ng * 2) + cu_align256(nx * 2));
        to_bf16(be, gb, dout, ng);
        if (dW) to_bf16(be, xb, in, nx);
        if (din) to_bf16(be, wb, W, nw);
        G = gb, X = xb, Wp = wb, ab = CUDA_R_16BF;
    }
    /* din[N,I] = dout[N,O] W[O,I] (overwrite) */
    if (din) gemm_rm(be, din, G, 0, Wp, 0, N, I, O, 1.0f, 0.0f, ab);
    /* dW[O,I] += dout^T[O,N] in[N,I] */
    if (dW) gemm_rm(be, dW, G, 1, X, 0, O, I, N, 1.0f, 1.0f, ab);
    /* db[O] += sum_n dout[n,:], deterministic; it reads fp32 dout, not the bf16 copy, and does
     * not touch the scratch until the GEMMs above have been issued (stream order keeps the
     * bf16 copies alive until they ran: the arena only grows after a stream sync). */
    if (db) cu_colsum_rows(be, db, dout, N, O);
}
