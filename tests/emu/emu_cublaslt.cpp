// The cuBLASLt stand-in of the CPU harness (tests/emu/include/cublasLt.h).
//
// Descriptors are plain structs; an attribute set with a size other than the attribute's
// type is CUBLAS_STATUS_INVALID_VALUE, as in cuBLASLt. cublasLtMatmulAlgoGetHeuristic and
// cublasLtMatmul share one validation (shapes of op(A), op(B), C and D; leading dimensions;
// the in-place rule C == D only with equal layouts; the compute/scale/A/B/C/D type table;
// the epilogue's bias and auxiliary buffers and their types), so a problem the heuristic
// accepts runs and one it refuses fails the same way at matmul time.
//
// Alignment: cuBLASLt picks kernels that vectorise loads, and the heuristic only offers a
// kernel that the preference's minimum alignments (default 256 bytes) and the bias pointer in
// the descriptor allow. The stand-in's one "kernel" records what it may assume: for A, B, C
// and D the preference's alignment capped at 16 bytes, for the bias and auxiliary buffers
// the alignment of the pointers in the descriptor at heuristic time (a NULL pointer allows
// 16). cublasLtMatmul with a pointer less aligned than its algo assumes returns
// CUBLAS_STATUS_INVALID_VALUE (parameters in conflict with the algo), which kernels/cuda's
// plan cache must route to its fallback. The algo also records the problem's types, ops and
// epilogue; an algo from another problem, or not from the heuristic, is INVALID_VALUE.
//
// What cuBLASLt accepts but the stand-in does not compute (batches, ReLU bit-mask epilogues,
// device pointer modes, integer and fp8 types) stops the test with emu_fail, never a guess.
#include <cublasLt.h>
#include <emu/emu.h>

#include <mutex>
#include <set>

#include "emu_blas_core.h"

struct cublasLtContext {
    int device;
};

struct emu_lt_layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t order;
    int32_t batch;
    int64_t batch_stride;
};

struct emu_lt_matmul_desc {
    int32_t compute, scale, pointer_mode, transa, transb, transc, fill;
    uint32_t epilogue;
    const void *bias;
    int64_t bias_batch_stride;
    void *aux;
    int64_t aux_ld, aux_batch_stride;
    int32_t aux_type, bias_type; // -1: the default (D's type)
};

struct emu_lt_pref {
    uint32_t search_mode;
    uint64_t max_workspace;
    uint32_t reduction_mask;
    uint32_t align[4]; // A, B, C, D
};

namespace {

std::mutex g_lock;
std::set<cublasLtHandle_t> g_live;

const uint64_t ALGO_MAGIC = 0x656d754c74416c67ull; // "emuLtAlg"

cublasStatus_t check_handle(cublasLtHandle_t h, const char *call) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    std::lock_guard<std::mutex> g(g_lock);
    if (!g_live.count(h)) emu_fail(call, "handle %p was destroyed or never created by cublasLtCreate", (void *)h);
    return CUBLAS_STATUS_SUCCESS;
}

// Copies an attribute value of exactly sizeof(T) bytes.
template <class T> cublasStatus_t set_attr(T *dst, const void *buf, size_t size) {
    if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(dst, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}
template <class T> cublasStatus_t get_attr(const T *src, void *buf, size_t size, size_t *written) {
    if (size == 0 && written) { // size query
        *written = sizeof(T);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, src, sizeof(T));
    if (written) *written = sizeof(T);
    return CUBLAS_STATUS_SUCCESS;
}

unsigned ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && (a & (al - 1))) al >>= 1;
    return al;
}

bool is_aux_epilogue(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DGELU ||
           e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
}
bool uses_bias_pointer(uint32_t e) {
    return (e & CUBLASLT_EPILOGUE_BIAS) || e == CUBLASLT_EPILOGUE_DGELU_BGRAD || e == CUBLASLT_EPILOGUE_BGRADA ||
           e == CUBLASLT_EPILOGUE_BGRADB;
}

// What a validated problem looks like, and what the algo encodes.
struct Problem {
    emu_blas::Gemm g;
    int scale_bytes;
    uint64_t key; // types, ops, epilogue, orders
};

uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ull; }

// The checks cublasLtMatmulAlgoGetHeuristic and cublasLtMatmul share. Fills p.g's shapes,
// types and epilogue (not the data pointers).
cublasStatus_t validate(const char *call, const emu_lt_matmul_desc *d, const emu_lt_layout *A, const emu_lt_layout *B,
                        const emu_lt_layout *C, const emu_lt_layout *D, Problem &p) {
    using emu_blas::Acc;
    using emu_blas::Narrow;
    if (!d || !A || !B || !C || !D) return CUBLAS_STATUS_INVALID_VALUE;
    auto op_ok = [](int32_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; };
    if (!op_ok(d->transa) || !op_ok(d->transb)) return CUBLAS_STATUS_INVALID_VALUE;
    if (d->transc != CUBLAS_OP_N) return CUBLAS_STATUS_NOT_SUPPORTED; // "only CUBLAS_OP_N is supported"
    const emu_lt_layout *all[4] = {A, B, C, D};
    for (const emu_lt_layout *l : all) {
        if (l->order != CUBLASLT_ORDER_COL && l->order != CUBLASLT_ORDER_ROW)
            emu_fail(call, "matrix layout order %d is valid in cuBLASLt but not emulated", (int)l->order);
        if (l->batch != 1) emu_fail(call, "batched matmul (batch count %d) is not emulated", (int)l->batch);
        uint64_t need = l->order == CUBLASLT_ORDER_COL ? l->rows : l->cols;
        if (l->ld < 1 || (uint64_t)l->ld < need) return CUBLAS_STATUS_INVALID_VALUE;
    }
    const bool ta = d->transa != CUBLAS_OP_N, tb = d->transb != CUBLAS_OP_N;
    const uint64_t m = ta ? A->cols : A->rows, k = ta ? A->rows : A->cols;
    const uint64_t kb = tb ? B->cols : B->rows, n = tb ? B->rows : B->cols;
    if (kb != k || C->rows != m || C->cols != n || D->rows != m || D->cols != n) return CUBLAS_STATUS_INVALID_VALUE;
    if (C->type != D->type) return CUBLAS_STATUS_NOT_SUPPORTED;

    // the type table: compute type, scale type, A/B type, C/D type
    emu_blas::Gemm &g = p.g;
    g = emu_blas::Gemm();
    bool ok = false;
    const cudaDataType at = A->type, ct = C->type;
    const int32_t sc = d->scale;
    p.scale_bytes = 4;
    switch (d->compute) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        if (sc == CUDA_R_32F && A->type == B->type) {
            if (at == CUDA_R_16BF) ok = ct == CUDA_R_16BF || ct == CUDA_R_32F;
            if (at == CUDA_R_16F) ok = ct == CUDA_R_16F || ct == CUDA_R_32F;
            if (at == CUDA_R_32F) ok = ct == CUDA_R_32F;
            if ((at == CUDA_R_8I || at == CUDA_R_8F_E4M3 || at == CUDA_R_8F_E5M2) && ok == false)
                emu_fail(call, "A/B %s is valid in cuBLASLt but not emulated", emu_blas::type_name(at));
        }
        break;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
        ok = sc == CUDA_R_32F && at == CUDA_R_32F && B->type == CUDA_R_32F && ct == CUDA_R_32F;
        g.narrow = d->compute == CUBLAS_COMPUTE_32F_FAST_16F    ? Narrow::F16
                   : d->compute == CUBLAS_COMPUTE_32F_FAST_16BF ? Narrow::BF16
                                                                : Narrow::TF32;
        break;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
        ok = sc == CUDA_R_64F && at == CUDA_R_64F && B->type == CUDA_R_64F && ct == CUDA_R_64F;
        g.acc = Acc::F64;
        p.scale_bytes = 8;
        break;
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC:
        ok = (sc == CUDA_R_16F || sc == CUDA_R_32F) && at == CUDA_R_16F && B->type == CUDA_R_16F && ct == CUDA_R_16F;
        g.acc = Acc::F16;
        p.scale_bytes = sc == CUDA_R_16F ? 2 : 4;
        break;
    case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC: emu_fail(call, "integer matmul is valid in cuBLASLt but not emulated");
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!ok) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->pointer_mode != CUBLASLT_POINTER_MODE_HOST)
        emu_fail(call, "pointer mode %d is valid in cuBLASLt but not emulated (host scalars only)",
                 (int)d->pointer_mode);

    // the epilogue
    using namespace emu_blas;
    const uint32_t e = d->epilogue;
    unsigned epi = 0;
    switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT: break;
    case CUBLASLT_EPILOGUE_RELU: epi = EPI_RELU; break;
    case CUBLASLT_EPILOGUE_BIAS: epi = EPI_BIAS; break;
    case CUBLASLT_EPILOGUE_RELU_BIAS: epi = EPI_BIAS | EPI_RELU; break;
    case CUBLASLT_EPILOGUE_GELU: epi = EPI_GELU; break;
    case CUBLASLT_EPILOGUE_GELU_BIAS: epi = EPI_BIAS | EPI_GELU; break;
    case CUBLASLT_EPILOGUE_GELU_AUX: epi = EPI_AUX_OUT | EPI_GELU; break;
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: epi = EPI_BIAS | EPI_AUX_OUT | EPI_GELU; break;
    case CUBLASLT_EPILOGUE_DGELU: epi = EPI_DGELU; break;
    case CUBLASLT_EPILOGUE_DGELU_BGRAD: epi = EPI_DGELU | EPI_BGRAD_D; break;
    case CUBLASLT_EPILOGUE_BGRADA: epi = EPI_BGRAD_A; break;
    case CUBLASLT_EPILOGUE_BGRADB: epi = EPI_BGRAD_B; break;
    case CUBLASLT_EPILOGUE_RELU_AUX:
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_DRELU:
    case CUBLASLT_EPILOGUE_DRELU_BGRAD:
        emu_fail(call, "epilogue %u (ReLU bit-mask) is valid in cuBLASLt but not emulated", (unsigned)e);
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (epi && g.acc != Acc::F32) return CUBLAS_STATUS_NOT_SUPPORTED; // epilogues: fp32 compute only
    if (uses_bias_pointer(e)) {
        // the bias (or its gradient) has D's type by default; fp32 is allowed for 16-bit outputs
        cudaDataType bt = d->bias_type == -1 ? ct : (cudaDataType)d->bias_type;
        if (!(bt == ct || (bt == CUDA_R_32F && (ct == CUDA_R_16F || ct == CUDA_R_16BF))))
            return CUBLAS_STATUS_NOT_SUPPORTED;
        g.bias_t = bt;
    }
    if (is_aux_epilogue(e)) {
        cudaDataType xt = d->aux_type == -1 ? ct : (cudaDataType)d->aux_type;
        if (!(xt == ct || (xt == CUDA_R_32F && (ct == CUDA_R_16F || ct == CUDA_R_16BF))))
            return CUBLAS_STATUS_NOT_SUPPORTED;
        // "must be divisible by 8 and be no less than the number of rows in the output matrix"
        if (d->aux_ld < (int64_t)m || d->aux_ld % 8) return CUBLAS_STATUS_INVALID_VALUE;
        if (D->order != CUBLASLT_ORDER_COL) return CUBLAS_STATUS_NOT_SUPPORTED;
        g.aux_t = xt;
        g.aux_ld = d->aux_ld;
    }
    g.epi = epi;
    g.ta = ta, g.tb = tb;
    g.m = (int64_t)m, g.n = (int64_t)n, g.k = (int64_t)k;
    g.A = {nullptr, A->type, (int64_t)A->rows, (int64_t)A->cols, A->ld, A->order == CUBLASLT_ORDER_ROW};
    g.B = {nullptr, B->type, (int64_t)B->rows, (int64_t)B->cols, B->ld, B->order == CUBLASLT_ORDER_ROW};
    g.C = {nullptr, C->type, (int64_t)C->rows, (int64_t)C->cols, C->ld, C->order == CUBLASLT_ORDER_ROW};
    g.D = {nullptr, D->type, (int64_t)D->rows, (int64_t)D->cols, D->ld, D->order == CUBLASLT_ORDER_ROW};
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t v : {(int64_t)d->compute, (int64_t)d->scale, (int64_t)d->transa, (int64_t)d->transb, (int64_t)e,
                      (int64_t)A->type, (int64_t)B->type, (int64_t)C->type, (int64_t)A->order, (int64_t)B->order,
                      (int64_t)C->order, (int64_t)D->order, (int64_t)g.bias_t, (int64_t)g.aux_t})
        h = mix(h, (uint64_t)v);
    p.key = h;
    return CUBLAS_STATUS_SUCCESS;
}

unsigned cap16(unsigned a) { return a < 16 ? a : 16; }

} // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle) {
    if (!lightHandle) return CUBLAS_STATUS_INVALID_VALUE;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasLtHandle_t h = new cublasLtContext{dev};
    std::lock_guard<std::mutex> g(g_lock);
    g_live.insert(h);
    *lightHandle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
    cublasStatus_t st = check_handle(lightHandle, "cublasLtDestroy");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    std::lock_guard<std::mutex> g(g_lock);
    g_live.erase(lightHandle);
    delete lightHandle;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasLtGetStatusName(cublasStatus_t status) { return cublasGetStatusName(status); }
const char *cublasLtGetStatusString(cublasStatus_t status) { return cublasGetStatusString(status); }

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (!matLayout) return CUBLAS_STATUS_INVALID_VALUE;
    *matLayout = new emu_lt_layout{type, rows, cols, ld, CUBLASLT_ORDER_COL, 1, 0};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
    delete matLayout;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t size) {
    if (!l) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: {
        uint32_t t;
        cublasStatus_t st = set_attr(&t, buf, size);
        if (st == CUBLAS_STATUS_SUCCESS) l->type = (cudaDataType)t;
        return st;
    }
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return set_attr(&l->order, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return set_attr(&l->rows, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return set_attr(&l->cols, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_LD: return set_attr(&l->ld, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return set_attr(&l->batch, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return set_attr(&l->batch_stride, buf, size);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr,
                                                void *buf, size_t size, size_t *written) {
    if (!l) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: {
        uint32_t t = (uint32_t)l->type;
        return get_attr(&t, buf, size, written);
    }
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return get_attr(&l->order, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return get_attr(&l->rows, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return get_attr(&l->cols, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_LD: return get_attr(&l->ld, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return get_attr(&l->batch, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return get_attr(&l->batch_stride, buf, size, written);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType) {
    if (!matmulDesc) return CUBLAS_STATUS_INVALID_VALUE;
    emu_lt_matmul_desc *d = new emu_lt_matmul_desc();
    d->compute = computeType;
    d->scale = scaleType;
    d->pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d->transa = d->transb = d->transc = CUBLAS_OP_N;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d->aux_type = d->bias_type = -1;
    *matmulDesc = d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
    delete matmulDesc;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size) {
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set_attr(&d->compute, buf, size);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set_attr(&d->scale, buf, size);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return set_attr(&d->pointer_mode, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSA: return set_attr(&d->transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return set_attr(&d->transb, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSC: return set_attr(&d->transc, buf, size);
    case CUBLASLT_MATMUL_DESC_FILL_MODE: return set_attr(&d->fill, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_attr(&d->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_attr(&d->bias, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return set_attr(&d->bias_batch_stride, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return set_attr(&d->aux, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return set_attr(&d->aux_ld, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: return set_attr(&d->aux_batch_stride, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return set_attr(&d->aux_type, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return set_attr(&d->bias_type, buf, size);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, void *buf,
                                              size_t size, size_t *written) {
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return get_attr(&d->compute, buf, size, written);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return get_attr(&d->scale, buf, size, written);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return get_attr(&d->pointer_mode, buf, size, written);
    case CUBLASLT_MATMUL_DESC_TRANSA: return get_attr(&d->transa, buf, size, written);
    case CUBLASLT_MATMUL_DESC_TRANSB: return get_attr(&d->transb, buf, size, written);
    case CUBLASLT_MATMUL_DESC_TRANSC: return get_attr(&d->transc, buf, size, written);
    case CUBLASLT_MATMUL_DESC_FILL_MODE: return get_attr(&d->fill, buf, size, written);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return get_attr(&d->epilogue, buf, size, written);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return get_attr(&d->bias, buf, size, written);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return get_attr(&d->bias_batch_stride, buf, size, written);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return get_attr(&d->aux, buf, size, written);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return get_attr(&d->aux_ld, buf, size, written);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: return get_attr(&d->aux_batch_stride, buf, size, written);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return get_attr(&d->aux_type, buf, size, written);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return get_attr(&d->bias_type, buf, size, written);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
    *pref = new emu_lt_pref{0, 0, 0x7, {256, 256, 256, 256}};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t size) {
    if (!p) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: return set_attr(&p->search_mode, buf, size);
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return set_attr(&p->max_workspace, buf, size);
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: return set_attr(&p->reduction_mask, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return set_attr(&p->align[0], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return set_attr(&p->align[1], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return set_attr(&p->align[2], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return set_attr(&p->align[3], buf, size);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

// algo.data: [0] magic, [1] problem key, [2..7] alignments assumed for A, B, C, D, bias, aux.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int *returnAlgoCount) {
    const char *call = "cublasLtMatmulAlgoGetHeuristic";
    cublasStatus_t st = check_handle(lightHandle, call);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (requestedAlgoCount <= 0 || !heuristicResultsArray || !returnAlgoCount || !preference)
        return CUBLAS_STATUS_INVALID_VALUE;
    *returnAlgoCount = 0;
    Problem p;
    st = validate(call, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, p);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    // the kernel reads whole elements: a preference below the element size leaves no algorithm
    const cudaDataType types[4] = {Adesc->type, Bdesc->type, Cdesc->type, Ddesc->type};
    for (int i = 0; i < 4; i++)
        if (preference->align[i] < (uint32_t)emu_blas::type_bytes(types[i])) return CUBLAS_STATUS_NOT_SUPPORTED;
    cublasLtMatmulHeuristicResult_t &r = heuristicResultsArray[0];
    memset(&r, 0, sizeof r);
    r.algo.data[0] = ALGO_MAGIC;
    r.algo.data[1] = p.key;
    for (int i = 0; i < 4; i++) r.algo.data[2 + i] = cap16(preference->align[i]);
    r.algo.data[6] = operationDesc->bias ? cap16(ptr_align(operationDesc->bias)) : 16;
    r.algo.data[7] = operationDesc->aux ? cap16(ptr_align(operationDesc->aux)) : 16;
    r.workspaceSize = 0;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc,
                              const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *workspace,
                              size_t workspaceSizeInBytes, cudaStream_t stream) {
    const char *call = "cublasLtMatmul";
    cublasStatus_t st = check_handle(lightHandle, call);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    Problem p;
    st = validate(call, computeDesc, Adesc, Bdesc, Cdesc, Ddesc, p);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    emu_blas::Gemm &g = p.g;
    // in place (C == D) needs identical layouts
    if (C == D && (Cdesc->ld != Ddesc->ld || Cdesc->order != Ddesc->order || Cdesc->type != Ddesc->type))
        return CUBLAS_STATUS_INVALID_VALUE;
    const bool need_bias = uses_bias_pointer(computeDesc->epilogue), need_aux = is_aux_epilogue(computeDesc->epilogue);
    if ((need_bias && !computeDesc->bias) || (need_aux && !computeDesc->aux)) return CUBLAS_STATUS_INVALID_VALUE;
    if (algo) {
        if (algo->data[0] != ALGO_MAGIC || algo->data[1] != p.key) return CUBLAS_STATUS_INVALID_VALUE;
        const void *ptrs[6] = {
            A, B, C, D, need_bias ? computeDesc->bias : nullptr, need_aux ? computeDesc->aux : nullptr};
        for (int i = 0; i < 6; i++)
            if (ptrs[i] && ptr_align(ptrs[i]) < algo->data[2 + i]) return CUBLAS_STATUS_INVALID_VALUE;
    }
    (void)workspace;
    (void)workspaceSizeInBytes; // the stand-in's algorithms need no workspace
    int dev = -1;
    if (cudaGetDevice(&dev) != cudaSuccess || dev != lightHandle->device)
        emu_fail(call, "the handle belongs to device %d but device %d is current", lightHandle->device, dev);
    if (g.m == 0 || g.n == 0) return CUBLAS_STATUS_SUCCESS;
    auto scalar = [&](const void *v) -> double {
        if (p.scale_bytes == 2) return emu_blas::f16_to_f32(*(const uint16_t *)v);
        if (p.scale_bytes == 8) return *(const double *)v;
        return *(const float *)v;
    };
    g.alpha = scalar(alpha);
    g.beta = scalar(beta);
    if (!D || (g.beta != 0.0 && !C) || (g.k > 0 && (!A || !B)))
        emu_fail(call, "a NULL matrix pointer for a %lld x %lld x %lld product (A %p, B %p, C %p, D %p)",
                 (long long)g.m, (long long)g.n, (long long)g.k, A, B, C, D);
    g.A.p = A, g.B.p = B, g.C.p = C, g.D.p = D;
    g.bias = const_cast<void *>(computeDesc->bias);
    g.aux = computeDesc->aux;
    // a queueing error (e.g. the legacy stream during a capture) is a failed launch for cuBLASLt
    if (emu_stream_submit(stream, call, [g] { emu_blas::run(g); }) != cudaSuccess)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
