// The one GEMM behind the cuBLAS and cuBLASLt stand-ins (emu_cublas.cpp, emu_cublaslt.cpp).
//
// Both libraries compute D = epilogue(alpha op(A) op(B) + beta C) on column-major (or, for
// cuBLASLt, row-major) matrices; only their argument checking differs. Keeping one routine
// means the naive-GEMM test (tests/emu/test_emu_cublas.cpp) covers both. The routine touches
// exactly the elements the library reads (op(A) is m x k, op(B) is k x n, with the given
// leading dimensions; C only when beta != 0, as cuBLAS documents), so an out-of-range leading
// dimension or a too-small buffer is an AddressSanitizer error, and NaN-poisoned memory that
// cuBLAS would not read does not leak into the result.
//
// Numerics: operands are widened exactly; the accumulator is the compute type's (fp32 for
// the 32F types, fp64 for 64F, fp16 for 16F with a rounding after every step) and sums the k
// products in order with fused multiply-adds; the FAST_* compute types (and the TF32 math
// mode) first round the fp32 inputs to the narrower type, as cuBLAS allows; the result is
// rounded once to the output type (round to nearest even).
#pragma once

#include <library_types.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <vector>

namespace emu_blas {

inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline uint16_t f32_to_bf16(float f) { // round to nearest even; NaN stays NaN
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
inline float f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f)
        u = s | 0x7f800000u | (m << 13);
    else if (e)
        u = s | ((e + 112) << 23) | (m << 13);
    else if (!m)
        u = s;
    else { // subnormal half: renormalise
        int sh = 0;
        while (!(m & 0x400)) m <<= 1, sh++;
        u = s | ((uint32_t)(113 - sh) << 23) | ((m & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline uint16_t f32_to_f16(float f) { // round to nearest even, overflow to infinity
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(s | 0x7e00);
    if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00); // rounds to >= 65520: infinity
    if (a < 0x38800000u) {                               // below the smallest normal half
        float t;
        memcpy(&t, &a, 4);
        // t * 2^24 in [0, 1024): the subnormal mantissa, rounded to nearest even by rintf
        return (uint16_t)(s | (uint16_t)rintf(t * 16777216.0f));
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(s | (uint16_t)((r - 0x38000000u) >> 13));
}
inline float round_tf32(float f) { // 10 mantissa bits, nearest even
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return f;
    u += 0xfffu + ((u >> 13) & 1u);
    u &= 0xffffe000u;
    memcpy(&f, &u, 4);
    return f;
}

inline int type_bytes(cudaDataType t) {
    switch (t) {
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    default: return 0;
    }
}
inline const char *type_name(cudaDataType t) {
    switch (t) {
    case CUDA_R_16F: return "CUDA_R_16F";
    case CUDA_R_16BF: return "CUDA_R_16BF";
    case CUDA_R_32F: return "CUDA_R_32F";
    case CUDA_R_64F: return "CUDA_R_64F";
    case CUDA_R_8I: return "CUDA_R_8I";
    case CUDA_R_32I: return "CUDA_R_32I";
    case CUDA_C_32F: return "CUDA_C_32F";
    case CUDA_C_64F: return "CUDA_C_64F";
    default: return "another cudaDataType";
    }
}

inline double load(cudaDataType t, const void *p, int64_t i) {
    switch (t) {
    case CUDA_R_16F: return f16_to_f32(((const uint16_t *)p)[i]);
    case CUDA_R_16BF: return bf16_to_f32(((const uint16_t *)p)[i]);
    case CUDA_R_32F: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
    }
}
inline void store(cudaDataType t, void *p, int64_t i, double v) {
    switch (t) {
    case CUDA_R_16F: ((uint16_t *)p)[i] = f32_to_f16((float)v); break;
    case CUDA_R_16BF: ((uint16_t *)p)[i] = f32_to_bf16((float)v); break;
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    default: ((double *)p)[i] = v; break;
    }
}

enum class Acc { F16, F32, F64 };            // the accumulator
enum class Narrow { None, TF32, BF16, F16 }; // down-conversion of fp32 inputs (FAST_* types)

// One stored matrix: rows x cols as stored (before op), leading dimension ld, column-major
// unless row_major.
struct Mat {
    const void *p;
    cudaDataType t;
    int64_t rows, cols, ld;
    bool row_major;
    int64_t at(int64_t r, int64_t c) const { return row_major ? r * ld + c : r + c * ld; }
};

enum Epi : unsigned {
    EPI_RELU = 1u << 0,
    EPI_GELU = 1u << 1,
    EPI_BIAS = 1u << 2,    // D[i][j] += bias[i] before the activation
    EPI_AUX_OUT = 1u << 3, // aux[i][j] = the activation's input
    EPI_DGELU = 1u << 4,   // D[i][j] *= gelu'(aux[i][j])
    EPI_BGRAD_D = 1u << 5, // bias[i] = sum_j D[i][j] (after DGELU)
    EPI_BGRAD_A = 1u << 6, // bias[i] = sum_l op(A)[i][l]
    EPI_BGRAD_B = 1u << 7, // bias[j] = sum_l op(B)[l][j]
};

struct Gemm {
    bool ta = false, tb = false; // op(A) = A^T, op(B) = B^T
    int64_t m = 0, n = 0, k = 0;
    Mat A{}, B{}, C{}, D{};
    double alpha = 1, beta = 0;
    Acc acc = Acc::F32;
    Narrow narrow = Narrow::None;
    unsigned epi = 0;
    void *bias = nullptr;
    cudaDataType bias_t = CUDA_R_32F;
    void *aux = nullptr;
    cudaDataType aux_t = CUDA_R_32F;
    int64_t aux_ld = 0; // column-major
};

// cuBLASLt's GELU is the tanh approximation.
inline float gelu_tanh(float x) {
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}
inline float gelu_tanh_grad(float x) {
    const float c = 0.7978845608028654f;
    float u = c * (x + 0.044715f * x * x * x), t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
}

inline double narrow_in(double v, Narrow nw) {
    switch (nw) {
    case Narrow::TF32: return round_tf32((float)v);
    case Narrow::BF16: return bf16_to_f32(f32_to_bf16((float)v));
    case Narrow::F16: return f16_to_f32(f32_to_f16((float)v));
    default: return v;
    }
}

// Runs the GEMM. The caller has validated the arguments.
inline void run(const Gemm &g) {
    const int64_t m = g.m, n = g.n, k = g.k;
    if (m == 0 || n == 0) return;
    // op(A) as m x k and op(B) as k x n, widened (only the referenced elements are read)
    std::vector<double> a, b;
    const bool use_ab = g.alpha != 0.0 && k > 0;
    if (use_ab || (g.epi & EPI_BGRAD_A)) {
        a.resize((size_t)(m * k));
        for (int64_t i = 0; i < m; i++)
            for (int64_t l = 0; l < k; l++)
                a[(size_t)(i * k + l)] = narrow_in(load(g.A.t, g.A.p, g.ta ? g.A.at(l, i) : g.A.at(i, l)), g.narrow);
    }
    if (use_ab || (g.epi & EPI_BGRAD_B)) {
        b.resize((size_t)(k * n));
        for (int64_t l = 0; l < k; l++)
            for (int64_t j = 0; j < n; j++)
                b[(size_t)(j * k + l)] = narrow_in(load(g.B.t, g.B.p, g.tb ? g.B.at(j, l) : g.B.at(l, j)), g.narrow);
    }
    std::vector<double> dsum(g.epi & EPI_BGRAD_D ? (size_t)m : 0, 0.0);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double v;
            if (g.acc == Acc::F64) {
                double s = 0;
                if (use_ab)
                    for (int64_t l = 0; l < k; l++) s = fma(a[(size_t)(i * k + l)], b[(size_t)(j * k + l)], s);
                v = g.alpha * s;
                if (g.beta != 0.0) v += g.beta * load(g.C.t, g.C.p, g.C.at(i, j));
            } else {
                float s = 0;
                if (use_ab)
                    for (int64_t l = 0; l < k; l++) {
                        s = fmaf((float)a[(size_t)(i * k + l)], (float)b[(size_t)(j * k + l)], s);
                        if (g.acc == Acc::F16) s = f16_to_f32(f32_to_f16(s));
                    }
                float fv = (float)g.alpha * s;
                if (g.beta != 0.0) fv = fmaf((float)g.beta, (float)load(g.C.t, g.C.p, g.C.at(i, j)), fv);
                if (g.epi & EPI_BIAS) fv += (float)load(g.bias_t, g.bias, i);
                if (g.epi & EPI_AUX_OUT) store(g.aux_t, g.aux, i + j * g.aux_ld, fv);
                if (g.epi & EPI_DGELU) fv *= gelu_tanh_grad((float)load(g.aux_t, g.aux, i + j * g.aux_ld));
                if (g.epi & EPI_RELU) fv = fv > 0.0f ? fv : 0.0f;
                if (g.epi & EPI_GELU) fv = gelu_tanh(fv);
                if (g.epi & EPI_BGRAD_D) dsum[(size_t)i] += fv;
                v = fv;
            }
            store(g.D.t, const_cast<void *>(g.D.p), g.D.at(i, j), v);
        }
    if (g.epi & EPI_BGRAD_D)
        for (int64_t i = 0; i < m; i++) store(g.bias_t, g.bias, i, dsum[(size_t)i]);
    if (g.epi & EPI_BGRAD_A)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) s += a[(size_t)(i * k + l)];
            store(g.bias_t, g.bias, i, s);
        }
    if (g.epi & EPI_BGRAD_B)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) s += b[(size_t)(j * k + l)];
            store(g.bias_t, g.bias, j, s);
        }
}

} // namespace emu_blas
