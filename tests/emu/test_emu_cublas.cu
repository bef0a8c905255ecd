// The cuBLAS and cuBLASLt stand-ins against a naive GEMM, and what they must reject (rule 7).
//
// The inputs are small multiples of 1/8, so every product and every partial sum is exact in
// fp32 and in bf16 inputs: the stand-ins must equal the naive double-precision GEMM exactly,
// and any wrong index (an op flag, a leading dimension, a row/column swap) shows. The naive
// GEMM is written from the definitions here, independently of tests/emu/emu_blas_core.h.
// The padding beyond each matrix's rows (inside its leading dimension) and C when beta == 0
// hold NaN, so a stand-in that reads what cuBLAS does not read fails too.
// Cases: every op-flag pair, padded and tight leading dimensions, alpha/beta, fp32 and bf16
// operands, the exact call sequences of kernels/cuda/linear.cu (gemm_rm and the cuBLASLt plan
// with the bias epilogue), the other epilogues, and the documented rejections.
#include <criterion/criterion.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// deterministic values k/8 with |k| <= 12
float val(uint32_t seed, int64_t i) {
    uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u + 12345u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return (float)((int)(x % 25u) - 12) / 8.0f;
}

uint16_t bf16_bits(float f) { // f is exactly representable in bf16 (k/8, |k| <= 12)
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

// A device buffer (the harness's cudaMalloc) of n elements of `bytes`, filled with NaN.
struct DevBuf {
    void *p = nullptr;
    size_t n = 0, bytes = 4;
    DevBuf(size_t n_, size_t bytes_) : n(n_), bytes(bytes_) {
        cr_assert_eq(cudaMalloc(&p, n * bytes + 1), cudaSuccess);
        if (bytes == 4)
            for (size_t i = 0; i < n; i++) ((float *)p)[i] = NAN;
        else
            for (size_t i = 0; i < n; i++) ((uint16_t *)p)[i] = 0x7fc0; // bf16 NaN
    }
    ~DevBuf() { cudaFree(p); }
    float *f() { return (float *)p; }
    uint16_t *h() { return (uint16_t *)p; }
};

// Stored column-major matrix rows x cols with leading dimension ld: fills the rows x cols
// part with val(), leaves the padding NaN; returns the values as double [rows*cols] (col-major).
std::vector<double> fill(DevBuf &b, uint32_t seed, int rows, int cols, int ld) {
    std::vector<double> v((size_t)rows * cols);
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) {
            float x = val(seed, r + c * rows);
            v[(size_t)(r + c * rows)] = x;
            if (b.bytes == 4)
                b.f()[r + (size_t)c * ld] = x;
            else
                b.h()[r + (size_t)c * ld] = bf16_bits(x);
        }
    return v;
}

// naive column-major C = alpha op(A) op(B) + beta C0, with A stored ar x ac (col-major, dense)
std::vector<double> naive(bool ta, bool tb, int m, int n, int k, double alpha, const std::vector<double> &A, int ar,
                          const std::vector<double> &B, int br, double beta, const std::vector<double> &C0) {
    std::vector<double> C((size_t)m * n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++) {
                double a = ta ? A[(size_t)(l + i * ar)] : A[(size_t)(i + l * ar)];
                double b = tb ? B[(size_t)(j + l * br)] : B[(size_t)(l + j * br)];
                s += a * b;
            }
            C[(size_t)(i + j * m)] = alpha * s + (beta != 0 ? beta * C0[(size_t)(i + j * m)] : 0.0);
        }
    return C;
}

double get(DevBuf &b, size_t i) {
    if (b.bytes == 4) return b.f()[i];
    uint32_t u = (uint32_t)b.h()[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

cublasHandle_t make_handle(cublasMath_t math) {
    cublasHandle_t h;
    cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasSetMathMode(h, math), CUBLAS_STATUS_SUCCESS);
    return h;
}

void run_gemmex_case(cublasHandle_t h, bool ta, bool tb, int m, int n, int k, int pad, float alpha, float beta,
                     bool bf16, uint32_t seed) {
    const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    const int lda = ar + pad, ldb = br + pad, ldc = m + pad;
    const size_t eb = bf16 ? 2 : 4;
    DevBuf A((size_t)lda * ac, eb), B((size_t)ldb * bc, eb), C((size_t)ldc * n, 4);
    auto a = fill(A, seed, ar, ac, lda), b = fill(B, seed + 1, br, bc, ldb);
    std::vector<double> c0((size_t)m * n, 0.0);
    if (beta != 0) c0 = fill(C, seed + 2, m, n, ldc); // else C stays NaN: must not be read
    cudaDataType t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cr_assert_eq(cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, A.p,
                              t, lda, B.p, t, ldb, &beta, C.p, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    auto want = naive(ta, tb, m, n, k, alpha, a, ar, b, br, beta, c0);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
            cr_assert_eq(get(C, (size_t)(i + j * ldc)), want[(size_t)(i + j * m)],
                         "op(A)=%c op(B)=%c m=%d n=%d k=%d pad=%d alpha=%g beta=%g %s: C[%d,%d] = %g, want %g",
                         ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, pad, alpha, beta, bf16 ? "bf16" : "fp32", i, j,
                         get(C, (size_t)(i + j * ldc)), want[(size_t)(i + j * m)]);
    // the padding of C is never written
    for (int j = 0; j < n; j++)
        for (int i = m; i < ldc; i++) cr_assert(isnan(get(C, (size_t)(i + j * ldc))), "C padding written");
}

} // namespace

Test(emu_cublas, gemmex_equals_naive_for_every_op_flag_ld_and_type) {
    cublasHandle_t h = make_handle(CUBLAS_PEDANTIC_MATH);
    uint32_t seed = 1;
    for (int bf16 = 0; bf16 <= 1; bf16++)
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++)
                for (int pad : {0, 3})
                    for (float beta : {0.0f, 1.0f, -2.0f}) {
                        run_gemmex_case(h, ta, tb, 5, 7, 9, pad, 1.0f, beta, bf16, seed++);
                        run_gemmex_case(h, ta, tb, 1, 4, 33, pad, 0.5f, beta, bf16, seed++);
                    }
    cublasDestroy(h);
}

// kernels/cuda/linear.cu gemm_rm: row-major C[M,N] = alpha op(A) op(B) + beta C as the
// column-major C^T = op(B)^T op(A)^T, with the leading dimensions it passes.
Test(emu_cublas, linear_cu_row_major_calls_equal_naive) {
    cublasHandle_t h = make_handle(CUBLAS_PEDANTIC_MATH);
    const int M = 6, N = 5, K = 7;
    for (int a_trans = 0; a_trans <= 1; a_trans++)
        for (int b_trans = 0; b_trans <= 1; b_trans++)
            for (float beta : {0.0f, 1.0f}) {
                DevBuf A((size_t)M * K, 4), B((size_t)K * N, 4), C((size_t)M * N, 4);
                for (int i = 0; i < M * K; i++) A.f()[i] = val(7, i);
                for (int i = 0; i < K * N; i++) B.f()[i] = val(8, i);
                std::vector<float> c0(M * N);
                if (beta != 0)
                    for (int i = 0; i < M * N; i++) C.f()[i] = c0[i] = val(9, i);
                const float alpha = 1.0f;
                const int ldb = b_trans ? K : N, lda = a_trans ? M : K;
                cr_assert_eq(cublasGemmEx(h, b_trans ? CUBLAS_OP_T : CUBLAS_OP_N, a_trans ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          N, M, K, &alpha, B.p, CUDA_R_32F, ldb, A.p, CUDA_R_32F, lda, &beta, C.p,
                                          CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                             CUBLAS_STATUS_SUCCESS);
                cudaDeviceSynchronize();
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = beta * (double)c0[i * N + j];
                        for (int l = 0; l < K; l++)
                            s += (double)A.f()[a_trans ? l * M + i : i * K + l] *
                                 (double)B.f()[b_trans ? j * K + l : l * N + j];
                        cr_assert_eq(C.f()[i * N + j], s, "a_trans %d b_trans %d beta %g: C[%d][%d] %g vs %g", a_trans,
                                     b_trans, beta, i, j, C.f()[i * N + j], s);
                    }
            }
    cublasDestroy(h);
}

Test(emu_cublas, gemmex_rejects_what_cublas_rejects) {
    cublasHandle_t h = make_handle(CUBLAS_DEFAULT_MATH);
    DevBuf A(256, 4), B(256, 4), C(256, 4);
    const float one = 1.0f, zero = 0.0f;
    auto gemm = [&](cublasHandle_t hh, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda,
                    int ldb, int ldc, cudaDataType at, cudaDataType bt, cudaDataType ct, cublasComputeType_t cp,
                    const void *alpha) {
        return cublasGemmEx(hh, ta, tb, m, n, k, alpha, A.p, at, lda, B.p, bt, ldb, &zero, C.p, ct, ldc, cp,
                            CUBLAS_GEMM_DEFAULT);
    };
    const cublasOperation_t N_ = CUBLAS_OP_N, T_ = CUBLAS_OP_T;
    const cudaDataType F = CUDA_R_32F, BF = CUDA_R_16BF;
    const cublasComputeType_t C32 = CUBLAS_COMPUTE_32F;
    // a valid call for reference
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 4, F, F, F, C32, &one), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(gemm(h, T_, T_, 4, 3, 5, 5, 3, 4, F, F, F, C32, &one), CUBLAS_STATUS_SUCCESS);
    // null handle
    cr_assert_eq(gemm(nullptr, N_, N_, 4, 3, 5, 4, 5, 4, F, F, F, C32, &one), CUBLAS_STATUS_NOT_INITIALIZED);
    // lda below the rows of the stored A: m for op N, k for op T
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 3, 5, 4, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(gemm(h, T_, N_, 4, 3, 5, 4, 5, 4, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    // ldb: k for op N, n for op T; ldc: m
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 4, 4, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(gemm(h, N_, T_, 4, 3, 5, 4, 2, 4, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 3, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    // lda >= 1 even for an empty A
    cr_assert_eq(gemm(h, N_, N_, 0, 3, 5, 0, 5, 1, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    // negative sizes, bad op flags, null alpha
    cr_assert_eq(gemm(h, N_, N_, -1, 3, 5, 4, 5, 4, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(gemm(h, (cublasOperation_t)7, N_, 4, 3, 5, 4, 5, 4, F, F, F, C32, &one), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 4, F, F, F, C32, nullptr), CUBLAS_STATUS_INVALID_VALUE);
    // type combinations outside cublasGemmEx's table
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 4, BF, F, F, C32, &one), CUBLAS_STATUS_NOT_SUPPORTED);
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 4, F, F, BF, C32, &one), CUBLAS_STATUS_NOT_SUPPORTED);
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 4, BF, BF, F, CUBLAS_COMPUTE_64F, &one), CUBLAS_STATUS_NOT_SUPPORTED);
    cr_assert_eq(gemm(h, N_, N_, 4, 3, 5, 4, 5, 4, BF, BF, F, CUBLAS_COMPUTE_32F_FAST_TF32, &one),
                 CUBLAS_STATUS_NOT_SUPPORTED);
    // workspace alignment (256 bytes) and math modes
    cr_assert_eq(cublasSetWorkspace(h, (char *)A.p + 4, 64), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(cublasSetMathMode(h, (cublasMath_t)9), CUBLAS_STATUS_INVALID_VALUE);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    cublasDestroy(h);
}

// A destroyed handle is undefined behaviour on a GPU: here an emu error naming the call, not a
// silent success (in a child: the error aborts the process).
Test(emu_cublas, destroyed_handle_is_an_error) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        cublasHandle_t h = make_handle(CUBLAS_DEFAULT_MATH);
        cublasDestroy(h);
        cublasSetStream(h, nullptr);
        fflush(stderr);
        _exit(0);
    }
    close(p[1]);
    std::string err;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)n);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "cublasSetStream accepted a destroyed handle:\n%s",
              err.c_str());
    cr_assert(err.find("cublasSetStream: handle ") != std::string::npos &&
                  err.find("was destroyed or never created by cublasCreate") != std::string::npos,
              "the error does not name the call and the problem:\n%s", err.c_str());
}

// ---------------- cuBLASLt ----------------

namespace {

struct Lt {
    cublasLtHandle_t h = nullptr;
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    Lt() { cr_assert_eq(cublasLtCreate(&h), CUBLAS_STATUS_SUCCESS); }
    ~Lt() {
        if (op) cublasLtMatmulDescDestroy(op);
        if (la) cublasLtMatrixLayoutDestroy(la);
        if (lb) cublasLtMatrixLayoutDestroy(lb);
        if (lc) cublasLtMatrixLayoutDestroy(lc);
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        cublasLtDestroy(h);
    }
    template <class T> void attr(cublasLtMatmulDescAttributes_t a, T v) {
        cr_assert_eq(cublasLtMatmulDescSetAttribute(op, a, &v, sizeof v), CUBLAS_STATUS_SUCCESS, "attribute %d", a);
    }
    // kernels/cuda/linear.cu's plan: D (O x N, ld O) = W^T-view (A = W as I x O, op T) * x (I x N)
    void linear_plan(int N, int I, int O, cudaDataType ab, uint32_t epilogue) {
        cr_assert_eq(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
        attr<cublasOperation_t>(CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
        attr<cublasOperation_t>(CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
        attr<uint32_t>(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
        if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) attr<int32_t>(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&la, ab, I, O, I), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lb, ab, I, N, I), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, O, N, O), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
    }
    cublasStatus_t heuristic(cublasLtMatmulAlgo_t *algo) {
        cublasLtMatmulHeuristicResult_t r;
        int found = 0;
        cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, lc, lc, pref, 1, &r, &found);
        if (st == CUBLAS_STATUS_SUCCESS) {
            cr_assert_eq(found, 1);
            *algo = r.algo;
        }
        return st;
    }
};

double gelu_ref(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
double gelu_grad_ref(double x) {
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}

} // namespace

// linear.cu's forward: y[N,O] = x[N,I] W[O,I]^T + b, in fp32 and with bf16 operands.
Test(emu_cublaslt, linear_cu_bias_plan_equals_naive) {
    const int N = 7, I = 12, O = 5;
    for (int bf16 = 0; bf16 <= 1; bf16++)
        for (int bias = 0; bias <= 1; bias++) {
            Lt lt;
            cudaDataType ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
            lt.linear_plan(N, I, O, ab, bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
            DevBuf W((size_t)O * I, bf16 ? 2 : 4), X((size_t)N * I, bf16 ? 2 : 4), Y((size_t)N * O, 4), b(O, 4);
            auto w = fill(W, 3, I, O, I), x = fill(X, 4, I, N, I); // W row-major [O][I] == col-major I x O
            for (int o = 0; o < O; o++) b.f()[o] = val(5, o);
            cublasLtMatmulAlgo_t algo;
            cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_SUCCESS);
            if (bias) lt.attr<const void *>(CUBLASLT_MATMUL_DESC_BIAS_POINTER, b.p);
            const float alpha = 1, beta = 0;
            cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc,
                                        &algo, nullptr, 0, nullptr),
                         CUBLAS_STATUS_SUCCESS);
            cudaDeviceSynchronize();
            for (int nn = 0; nn < N; nn++)
                for (int o = 0; o < O; o++) {
                    double s = bias ? b.f()[o] : 0.0;
                    for (int i = 0; i < I; i++) s += w[(size_t)(i + o * I)] * x[(size_t)(i + nn * I)];
                    cr_assert_eq(Y.f()[nn * O + o], s, "%s bias %d: y[%d][%d] = %g, want %g", bf16 ? "bf16" : "fp32",
                                 bias, nn, o, Y.f()[nn * O + o], s);
                }
        }
}

// Every other epilogue the stand-in implements, against its definition.
Test(emu_cublaslt, epilogues_equal_their_definitions) {
    const int N = 4, I = 9, O = 6;
    const uint32_t epis[] = {CUBLASLT_EPILOGUE_RELU_BIAS,     CUBLASLT_EPILOGUE_GELU_BIAS,
                             CUBLASLT_EPILOGUE_GELU_AUX_BIAS, CUBLASLT_EPILOGUE_DGELU,
                             CUBLASLT_EPILOGUE_DGELU_BGRAD,   CUBLASLT_EPILOGUE_BGRADB};
    for (uint32_t e : epis) {
        Lt lt;
        lt.linear_plan(N, I, O, CUDA_R_32F, e);
        DevBuf W((size_t)O * I, 4), X((size_t)N * I, 4), Y((size_t)N * O, 4), b(N > O ? N : O, 4), aux(8 * N, 4);
        auto w = fill(W, 11, I, O, I), x = fill(X, 12, I, N, I);
        const bool bias_in = e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_GELU_BIAS ||
                             e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
        const bool aux_used =
            e != CUBLASLT_EPILOGUE_RELU_BIAS && e != CUBLASLT_EPILOGUE_GELU_BIAS && e != CUBLASLT_EPILOGUE_BGRADB;
        if (bias_in)
            for (int o = 0; o < O; o++) b.f()[o] = val(13, o);
        if (e == CUBLASLT_EPILOGUE_DGELU || e == CUBLASLT_EPILOGUE_DGELU_BGRAD)
            for (int j = 0; j < N; j++)
                for (int o = 0; o < O; o++) aux.f()[o + j * 8] = val(14, o + j * O);
        lt.attr<const void *>(CUBLASLT_MATMUL_DESC_BIAS_POINTER, b.p);
        if (aux_used) {
            lt.attr<void *>(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux.p);
            lt.attr<int64_t>(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, 8);
        }
        cublasLtMatmulAlgo_t algo;
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_SUCCESS, "epilogue %u", e);
        const float alpha = 1, beta = 0;
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc, &algo,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_SUCCESS, "epilogue %u", e);
        cudaDeviceSynchronize();
        std::vector<double> bgrad(O, 0.0);
        for (int j = 0; j < N; j++)
            for (int o = 0; o < O; o++) {
                double s = 0;
                for (int i = 0; i < I; i++) s += w[(size_t)(i + o * I)] * x[(size_t)(i + j * I)];
                double pre = s + (bias_in ? b.f()[o] : 0.0), want = pre;
                if (e == CUBLASLT_EPILOGUE_RELU_BIAS) want = pre > 0 ? pre : 0;
                if (e == CUBLASLT_EPILOGUE_GELU_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) want = gelu_ref(pre);
                if (e == CUBLASLT_EPILOGUE_DGELU || e == CUBLASLT_EPILOGUE_DGELU_BGRAD)
                    want = s * gelu_grad_ref(val(14, o + j * O));
                bgrad[o] += want;
                double got = Y.f()[j * O + o];
                cr_assert(fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)), "epilogue %u: D[%d][%d] = %.9g, want %.9g",
                          e, o, j, got, want);
                if (e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS)
                    cr_assert_eq(aux.f()[o + j * 8], pre, "GELU_AUX_BIAS: aux[%d][%d] = %g, want the GELU input %g", o,
                                 j, aux.f()[o + j * 8], pre);
            }
        if (e == CUBLASLT_EPILOGUE_DGELU_BGRAD)
            for (int o = 0; o < O; o++)
                cr_assert(fabs(b.f()[o] - bgrad[o]) <= 1e-5 * fmax(1.0, fabs(bgrad[o])), "DGELU_BGRAD: db[%d] %g vs %g",
                          o, b.f()[o], bgrad[o]);
        if (e == CUBLASLT_EPILOGUE_BGRADB) // sum over k of op(B) = x: one value per column of D
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int i = 0; i < I; i++) s += x[(size_t)(i + j * I)];
                cr_assert_eq(b.f()[j], s, "BGRADB: bias[%d] %g vs %g", j, b.f()[j], s);
            }
    }
}

Test(emu_cublaslt, rejects_what_cublaslt_rejects) {
    const int N = 4, I = 8, O = 4;
    DevBuf W((size_t)O * I + 8, 4), X((size_t)N * I + 8, 4), Y((size_t)N * O + 8, 4), b(O + 8, 4);
    const float alpha = 1, beta = 0;
    cublasLtMatmulAlgo_t algo;
    { // null handle
        Lt lt;
        lt.linear_plan(N, I, O, CUDA_R_32F, CUBLASLT_EPILOGUE_BIAS);
        cublasLtMatmulHeuristicResult_t r;
        int found;
        cr_assert_eq(cublasLtMatmulAlgoGetHeuristic(nullptr, lt.op, lt.la, lt.lb, lt.lc, lt.lc, lt.pref, 1, &r, &found),
                     CUBLAS_STATUS_NOT_INITIALIZED);
        cr_assert_eq(cublasLtMatmul(nullptr, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc,
                                    nullptr, nullptr, 0, nullptr),
                     CUBLAS_STATUS_NOT_INITIALIZED);
        cr_assert_eq(cublasLtMatmulAlgoGetHeuristic(lt.h, lt.op, lt.la, lt.lb, lt.lc, lt.lc, lt.pref, 0, &r, &found),
                     CUBLAS_STATUS_INVALID_VALUE, "requestedAlgoCount 0");
        // an attribute of the wrong size
        int64_t wide = CUBLAS_OP_T;
        cr_assert_eq(cublasLtMatmulDescSetAttribute(lt.op, CUBLASLT_MATMUL_DESC_TRANSA, &wide, sizeof wide),
                     CUBLAS_STATUS_INVALID_VALUE);
        // the bias epilogue without a bias pointer
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc, &algo,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE, "BIAS epilogue with a NULL bias pointer");
        // a bias less aligned than the algo assumed (the heuristic saw no pointer: 16 bytes)
        lt.attr<const void *>(CUBLASLT_MATMUL_DESC_BIAS_POINTER, (const void *)(b.f() + 1));
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc, &algo,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE, "bias misaligned for the algo");
        lt.attr<const void *>(CUBLASLT_MATMUL_DESC_BIAS_POINTER, (const void *)b.f());
        // an A less aligned than the preference promised (default 256 -> algo assumes 16)
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.f() + 1, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc,
                                    &algo, nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE, "A misaligned for the algo");
        // with the alignment declared in the preference, the same pointer is fine
        uint32_t four = 4;
        cr_assert_eq(cublasLtMatmulPreferenceSetAttribute(lt.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &four,
                                                          sizeof four),
                     CUBLAS_STATUS_SUCCESS);
        cublasLtMatmulAlgo_t algo4;
        cr_assert_eq(lt.heuristic(&algo4), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.f() + 1, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc,
                                    &algo4, nullptr, 0, nullptr),
                     CUBLAS_STATUS_SUCCESS);
        // an algo that did not come from the heuristic
        cublasLtMatmulAlgo_t junk;
        memset(&junk, 0, sizeof junk);
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc, &junk,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE);
        // an algo of another problem (the epilogue changed since the heuristic)
        lt.attr<uint32_t>(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_GELU_BIAS);
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc, &algo,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE);
        // TRANSC other than N
        lt.attr<cublasOperation_t>(CUBLASLT_MATMUL_DESC_TRANSC, CUBLAS_OP_T);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_NOT_SUPPORTED);
        cudaDeviceSynchronize();
    }
    { // ld below the rows of a column-major layout
        Lt lt;
        lt.linear_plan(N, I, O, CUDA_R_32F, CUBLASLT_EPILOGUE_DEFAULT);
        cublasLtMatrixLayoutDestroy(lt.la);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lt.la, CUDA_R_32F, I, O, I - 1), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_INVALID_VALUE);
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y.p, lt.lc, Y.p, lt.lc, nullptr,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE);
    }
    { // shapes that do not chain: op(A) is O x I, B is (I+1) x N
        Lt lt;
        lt.linear_plan(N, I, O, CUDA_R_32F, CUBLASLT_EPILOGUE_DEFAULT);
        cublasLtMatrixLayoutDestroy(lt.lb);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lt.lb, CUDA_R_32F, I + 1, N, I + 1), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_INVALID_VALUE);
    }
    { // in place C == D with different leading dimensions
        Lt lt;
        lt.linear_plan(N, I, O, CUDA_R_32F, CUBLASLT_EPILOGUE_DEFAULT);
        cublasLtMatrixLayout_t ld2;
        cr_assert_eq(cublasLtMatrixLayoutCreate(&ld2, CUDA_R_32F, O, N, O + 1), CUBLAS_STATUS_SUCCESS);
        DevBuf Y2((size_t)(O + 1) * N, 4);
        cr_assert_eq(cublasLtMatmul(lt.h, lt.op, &alpha, W.p, lt.la, X.p, lt.lb, &beta, Y2.p, lt.lc, Y2.p, ld2, nullptr,
                                    nullptr, 0, nullptr),
                     CUBLAS_STATUS_INVALID_VALUE);
        cublasLtMatrixLayoutDestroy(ld2);
    }
    { // unsupported type combinations: bias of another type, bf16 A with fp32 B, GELU in fp64
        Lt lt;
        lt.linear_plan(N, I, O, CUDA_R_32F, CUBLASLT_EPILOGUE_BIAS);
        lt.attr<int32_t>(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_64F);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_NOT_SUPPORTED);
        lt.attr<int32_t>(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_16BF);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_NOT_SUPPORTED, "bf16 bias with an fp32 D");
        lt.attr<int32_t>(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_SUCCESS);
        cublasLtMatrixLayoutDestroy(lt.la);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lt.la, CUDA_R_16BF, I, O, I), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_NOT_SUPPORTED, "A bf16, B fp32");
    }
    {
        Lt lt;
        cr_assert_eq(cublasLtMatmulDescCreate(&lt.op, CUBLAS_COMPUTE_64F, CUDA_R_64F), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lt.la, CUDA_R_64F, 4, 4, 4), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lt.lb, CUDA_R_64F, 4, 4, 4), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatrixLayoutCreate(&lt.lc, CUDA_R_64F, 4, 4, 4), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(cublasLtMatmulPreferenceCreate(&lt.pref), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_SUCCESS);
        lt.attr<uint32_t>(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_GELU);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_NOT_SUPPORTED, "GELU epilogue with fp64 compute");
        // fp32 scale with fp64 compute
        cublasLtMatmulDescDestroy(lt.op);
        cr_assert_eq(cublasLtMatmulDescCreate(&lt.op, CUBLAS_COMPUTE_64F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
        cr_assert_eq(lt.heuristic(&algo), CUBLAS_STATUS_NOT_SUPPORTED);
    }
}
