// The cuBLAS stand-in of the CPU harness: handles and cublasGemmEx (tests/emu/include/cublas_v2.h).
//
// A handle remembers the device that was current when it was created (cuBLAS binds it to that
// device), its stream, math mode and workspace. cublasGemmEx checks its arguments in the order
// and with the statuses cuBLAS documents (NOT_INITIALIZED for a null handle, INVALID_VALUE for
// negative sizes, bad op flags, a leading dimension below the rows of the stored matrix or
// null scalars, NOT_SUPPORTED for a type combination outside cublasGemmEx's table), then
// queues the product on the handle's stream through emu_stream_submit, with alpha and beta
// read at call time (host pointer mode). What cuBLAS accepts but this stand-in does not compute
// (integer and complex types) stops the test with emu_fail instead of guessing.
// Misuse that is undefined behaviour on a GPU (a destroyed handle, a handle used on another
// device, null matrix pointers for a non-empty product) is an emu_fail naming the call.
#include <cublas_v2.h>
#include <emu/emu.h>

#include <mutex>
#include <set>

#include "emu_blas_core.h"

struct cublasContext {
    int device;
    cudaStream_t stream;
    cublasMath_t math;
    void *workspace;
    size_t workspace_bytes;
};

namespace {

std::mutex g_lock;
std::set<cublasHandle_t> g_live;

// Null: the status cuBLAS returns. Destroyed or foreign: undefined on a GPU, an error here.
cublasStatus_t check_handle(cublasHandle_t h, const char *call) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    std::lock_guard<std::mutex> g(g_lock);
    if (!g_live.count(h)) emu_fail(call, "handle %p was destroyed or never created by cublasCreate", (void *)h);
    return CUBLAS_STATUS_SUCCESS;
}

void check_device(cublasHandle_t h, const char *call) {
    int dev = -1;
    if (cudaGetDevice(&dev) != cudaSuccess || dev != h->device)
        emu_fail(call, "the handle belongs to device %d but device %d is current (cuBLAS handles are per device)",
                 h->device, dev);
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasHandle_t h = new cublasContext{dev, nullptr, CUBLAS_DEFAULT_MATH, nullptr, 0};
    std::lock_guard<std::mutex> g(g_lock);
    g_live.insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    cublasStatus_t st = check_handle(handle, "cublasDestroy");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    std::lock_guard<std::mutex> g(g_lock);
    g_live.erase(handle);
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

// cuBLAS documents that setting the stream resets the workspace to the default pool.
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    cublasStatus_t st = check_handle(handle, "cublasSetStream");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    handle->stream = stream;
    handle->workspace = nullptr;
    handle->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
    cublasStatus_t st = check_handle(handle, "cublasGetStream");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    cublasStatus_t st = check_handle(handle, "cublasSetMathMode");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    unsigned base = (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base > (unsigned)CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
    cublasStatus_t st = check_handle(handle, "cublasGetMathMode");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math;
    return CUBLAS_STATUS_SUCCESS;
}

// cuBLAS requires the user workspace to be aligned to 256 bytes.
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes) {
    cublasStatus_t st = check_handle(handle, "cublasSetWorkspace");
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (workspaceSizeInBytes && (!workspace || ((uintptr_t)workspace & 255u))) return CUBLAS_STATUS_INVALID_VALUE;
    handle->workspace = workspace;
    handle->workspace_bytes = workspaceSizeInBytes;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    }
    return "unknown error";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    const char *call = "cublasGemmEx";
    cublasStatus_t st = check_handle(handle, call);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    auto op_ok = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; };
    auto max1 = [](int v) { return v > 1 ? v : 1; };
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (!op_ok(transa) || !op_ok(transb)) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < max1(transa == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldb < max1(transb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldc < max1(m)) return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    const int a = (int)algo;
    if (!(a == -1 || (a >= 0 && a <= 23) || (a >= 99 && a <= 115))) return CUBLAS_STATUS_NOT_SUPPORTED;

    // cublasGemmEx's table of type combinations (real types; the scale type follows the compute type)
    using emu_blas::Acc;
    using emu_blas::Narrow;
    emu_blas::Gemm g;
    bool supported = false, emulated = true;
    int scale_bytes = 4;
    switch (computeType) {
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC:
        supported = Atype == CUDA_R_16F && Btype == CUDA_R_16F && Ctype == CUDA_R_16F;
        g.acc = Acc::F16;
        scale_bytes = 2;
        break;
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        if (Atype == Btype) {
            if (Atype == CUDA_R_16BF) supported = Ctype == CUDA_R_16BF || Ctype == CUDA_R_32F;
            if (Atype == CUDA_R_16F) supported = Ctype == CUDA_R_16F || Ctype == CUDA_R_32F;
            if (Atype == CUDA_R_32F) supported = Ctype == CUDA_R_32F;
            if (Atype == CUDA_R_8I) supported = Ctype == CUDA_R_32F, emulated = false;
            if (Atype == CUDA_C_32F) supported = Ctype == CUDA_C_32F, emulated = false;
        }
        // TF32 math mode lets cuBLAS run fp32 GEMMs on TF32 tensor cores (not in pedantic compute)
        if (Atype == CUDA_R_32F && computeType == CUBLAS_COMPUTE_32F &&
            ((unsigned)handle->math & 0xfu) == CUBLAS_TF32_TENSOR_OP_MATH)
            g.narrow = Narrow::TF32;
        break;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
        supported = Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F;
        g.narrow = computeType == CUBLAS_COMPUTE_32F_FAST_16F    ? Narrow::F16
                   : computeType == CUBLAS_COMPUTE_32F_FAST_16BF ? Narrow::BF16
                                                                 : Narrow::TF32;
        break;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
        supported = Atype == CUDA_R_64F && Btype == CUDA_R_64F && Ctype == CUDA_R_64F;
        g.acc = Acc::F64;
        scale_bytes = 8;
        break;
    case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC:
        supported = Atype == CUDA_R_8I && Btype == CUDA_R_8I && Ctype == CUDA_R_32I;
        emulated = false;
        break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!supported) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!emulated)
        emu_fail(call, "A/B %s, C %s is valid in cuBLAS but not emulated: add it to tests/emu/emu_blas_core.h",
                 emu_blas::type_name(Atype), emu_blas::type_name(Ctype));
    check_device(handle, call);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;

    auto scalar = [&](const void *p) -> double {
        if (scale_bytes == 2) return emu_blas::f16_to_f32(*(const uint16_t *)p);
        if (scale_bytes == 8) return *(const double *)p;
        return *(const float *)p;
    };
    g.alpha = scalar(alpha);
    g.beta = scalar(beta);
    if (!C || ((g.alpha != 0.0 && k > 0) && (!A || !B)))
        emu_fail(call, "a NULL matrix pointer for a %d x %d x %d product (A %p, B %p, C %p)", m, n, k, A, B, (void *)C);
    g.ta = transa != CUBLAS_OP_N;
    g.tb = transb != CUBLAS_OP_N;
    g.m = m, g.n = n, g.k = k;
    g.A = {A, Atype, g.ta ? k : m, g.ta ? m : k, lda, false};
    g.B = {B, Btype, g.tb ? n : k, g.tb ? k : n, ldb, false};
    g.C = {C, Ctype, m, n, ldc, false};
    g.D = g.C;
    // a queueing error (e.g. the legacy stream during a capture) is a failed launch for cuBLAS
    if (emu_stream_submit(handle->stream, call, [g] { emu_blas::run(g); }) != cudaSuccess)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
