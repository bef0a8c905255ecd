/* The CUDA runtime API of the CPU execution harness (make test-emu): what kernels/cuda, the
 * host code and the real curand_kernel.h use, with the driver's documented semantics.
 *
 * Why it is built like this
 * - One header for C and C++: host/train/comm_nccl.c (C11) includes <cuda_runtime.h>, so the
 *   API part (types, enums, functions) is plain C; the device part (threadIdx, intrinsics,
 *   warp collectives, the launch template that tests/emu/rewrite.pl turns <<<...>>> into)
 *   is C++ only and lives in emu/device.h.
 * - Handles are opaque pointers as in the real runtime (struct CUstream_st * ...); stream 0
 *   is the current device's legacy default stream.
 * - The functions are implemented by tests/emu/emu_runtime.cpp; their behaviour (deferred
 *   stream execution, capture rules, poisoning, counters) is described there. */
#ifndef EMU_CUDA_RUNTIME_H
#define EMU_CUDA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#define CUDART_VERSION 12000
#define __CUDART_API_VERSION 12000

#ifdef __cplusplus
#define EMU_EXTERN_C extern "C"
#define EMU_DEFAULT(x) = x
#else
#define EMU_EXTERN_C
#define EMU_DEFAULT(x)
#endif

/* ---- qualifiers (device code is host code here) ---- */
#define __host__
#define __device__
#define __global__
#define __constant__
#define __NV_SILENCE_DEPRECATION_BEGIN
#define __NV_SILENCE_DEPRECATION_END
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __grid_constant__
#define CUDART_CB
/* tests/emu/rewrite.pl turns every __shared__ declaration of kernels/cuda into a per-block
 * allocation of exactly its size; this fallback serves headers used as they are
 * (curand_kernel.h declares __shared__ arrays in kernels we never run). */
#define __shared__ static __thread

/* ---- vector types ---- */
#define EMU_VEC3(T, N) \
    typedef struct {   \
        T x, y, z;     \
    } N;
#define EMU_VEC4(T, N, A)                        \
    typedef struct __attribute__((aligned(A))) { \
        T x, y, z, w;                            \
    } N;
typedef struct __attribute__((aligned(8))) {
    float x, y;
} float2;
typedef struct {
    float x, y, z;
} float3;
EMU_VEC4(float, float4, 16)
typedef struct __attribute__((aligned(16))) {
    double x, y;
} double2;
typedef struct __attribute__((aligned(16))) {
    double x, y, z, w;
} double4;
typedef struct __attribute__((aligned(8))) {
    int x, y;
} int2;
EMU_VEC3(int, int3)
EMU_VEC4(int, int4, 16)
typedef struct __attribute__((aligned(8))) {
    unsigned int x, y;
} uint2;
EMU_VEC3(unsigned int, uint3)
EMU_VEC4(unsigned int, uint4, 16)
typedef struct __attribute__((aligned(16))) {
    long long x, y;
} longlong2;
typedef struct __attribute__((aligned(16))) {
    unsigned long long x, y;
} ulonglong2;
typedef struct __attribute__((aligned(4))) {
    unsigned short x, y;
} ushort2;
typedef struct __attribute__((aligned(2))) {
    unsigned char x, y;
} uchar2;
typedef struct __attribute__((aligned(4))) {
    unsigned char x, y, z, w;
} uchar4;

#ifdef __cplusplus
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
#else
typedef struct {
    unsigned int x, y, z;
} dim3;
#endif
typedef dim3 emu_dim3;

static inline float2 make_float2(float x, float y) {
    float2 r = {x, y};
    return r;
}
static inline float4 make_float4(float x, float y, float z, float w) {
    float4 r = {x, y, z, w};
    return r;
}
static inline double2 make_double2(double x, double y) {
    double2 r = {x, y};
    return r;
}
static inline int2 make_int2(int x, int y) {
    int2 r = {x, y};
    return r;
}
static inline int4 make_int4(int x, int y, int z, int w) {
    int4 r = {x, y, z, w};
    return r;
}
static inline uint2 make_uint2(unsigned x, unsigned y) {
    uint2 r = {x, y};
    return r;
}
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) {
    uint3 r = {x, y, z};
    return r;
}
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
    uint4 r = {x, y, z, w};
    return r;
}

/* ---- errors ---- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidPitchValue = 12,
    cudaErrorInvalidSymbol = 13,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalState = 401,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureMerge = 902,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorStreamCaptureUnjoined = 904,
    cudaErrorStreamCaptureIsolation = 905,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorCapturedEvent = 907,
    cudaErrorStreamCaptureWrongThread = 908,
    cudaErrorGraphExecUpdateFailure = 910,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999
} cudaError_t;

/* ---- handles ---- */
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
typedef struct CUgraphNode_st *cudaGraphNode_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaEventInterprocess 0x04
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02
#define cudaHostAllocWriteCombined 0x04
#define cudaHostRegisterDefault 0x00

typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
} cudaMemcpyKind;

typedef enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
} cudaStreamCaptureMode;

typedef enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
} cudaStreamCaptureStatus;

typedef enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9
} cudaFuncAttribute;

typedef enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxBlockDimX = 2,
    cudaDevAttrMaxBlockDimY = 3,
    cudaDevAttrMaxBlockDimZ = 4,
    cudaDevAttrMaxGridDimX = 5,
    cudaDevAttrMaxGridDimY = 6,
    cudaDevAttrMaxGridDimZ = 7,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
} cudaDeviceAttr;

typedef struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int clockRate;
    size_t totalConstMem;
    int major;
    int minor;
    int multiProcessorCount;
    size_t sharedMemPerBlockOptin;
    size_t sharedMemPerMultiprocessor;
    int maxThreadsPerMultiProcessor;
    int l2CacheSize;
    int memoryBusWidth;
    int memoryClockRate;
    int pciBusID;
    int pciDeviceID;
    int pciDomainID;
    int concurrentKernels;
    int asyncEngineCount;
    int unifiedAddressing;
    int managedMemory;
} cudaDeviceProp;

typedef void (*cudaHostFn_t)(void *userData);

/* ---- the API (tests/emu/emu_runtime.cpp) ---- */
EMU_EXTERN_C const char *cudaGetErrorString(cudaError_t e);
EMU_EXTERN_C const char *cudaGetErrorName(cudaError_t e);
EMU_EXTERN_C cudaError_t cudaGetLastError(void);
EMU_EXTERN_C cudaError_t cudaPeekAtLastError(void);

EMU_EXTERN_C cudaError_t cudaGetDeviceCount(int *count);
EMU_EXTERN_C cudaError_t cudaSetDevice(int device);
EMU_EXTERN_C cudaError_t cudaGetDevice(int *device);
EMU_EXTERN_C cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
EMU_EXTERN_C cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
EMU_EXTERN_C cudaError_t cudaDeviceSynchronize(void);
EMU_EXTERN_C cudaError_t cudaDeviceReset(void);
EMU_EXTERN_C cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
EMU_EXTERN_C cudaError_t cudaDriverGetVersion(int *v);
EMU_EXTERN_C cudaError_t cudaRuntimeGetVersion(int *v);

EMU_EXTERN_C cudaError_t cudaMalloc(void **p, size_t bytes);
EMU_EXTERN_C cudaError_t cudaFree(void *p);
EMU_EXTERN_C cudaError_t cudaMallocHost(void **p, size_t bytes);
EMU_EXTERN_C cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags);
EMU_EXTERN_C cudaError_t cudaFreeHost(void *p);
EMU_EXTERN_C cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned int flags);
EMU_EXTERN_C cudaError_t cudaHostUnregister(void *p);
EMU_EXTERN_C cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
EMU_EXTERN_C cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                                         cudaStream_t s EMU_DEFAULT(0));
EMU_EXTERN_C cudaError_t cudaMemset(void *p, int value, size_t bytes);
EMU_EXTERN_C cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s EMU_DEFAULT(0));

EMU_EXTERN_C cudaError_t cudaStreamCreate(cudaStream_t *s);
EMU_EXTERN_C cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags);
EMU_EXTERN_C cudaError_t cudaStreamDestroy(cudaStream_t s);
EMU_EXTERN_C cudaError_t cudaStreamSynchronize(cudaStream_t s);
EMU_EXTERN_C cudaError_t cudaStreamQuery(cudaStream_t s);
EMU_EXTERN_C cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags EMU_DEFAULT(0));
EMU_EXTERN_C cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void *user);
EMU_EXTERN_C cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
EMU_EXTERN_C cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
EMU_EXTERN_C cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);

EMU_EXTERN_C cudaError_t cudaEventCreate(cudaEvent_t *e);
EMU_EXTERN_C cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags);
EMU_EXTERN_C cudaError_t cudaEventDestroy(cudaEvent_t e);
EMU_EXTERN_C cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s EMU_DEFAULT(0));
EMU_EXTERN_C cudaError_t cudaEventSynchronize(cudaEvent_t e);
EMU_EXTERN_C cudaError_t cudaEventQuery(cudaEvent_t e);
EMU_EXTERN_C cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);

EMU_EXTERN_C cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                              unsigned long long flags EMU_DEFAULT(0));
EMU_EXTERN_C cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
EMU_EXTERN_C cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
EMU_EXTERN_C cudaError_t cudaGraphDestroy(cudaGraph_t graph);
EMU_EXTERN_C cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count);

/* Per kernel (the host function pointer): the C++ template below takes the kernel itself. */
EMU_EXTERN_C cudaError_t emu_func_set_attribute(const void *func, cudaFuncAttribute attr, int value);

#ifdef __cplusplus
template <class F> static inline cudaError_t cudaFuncSetAttribute(F *func, cudaFuncAttribute attr, int value) {
    return emu_func_set_attribute((const void *)func, attr, value);
}
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
template <class T> static inline cudaError_t cudaMallocHost(T **p, size_t bytes) {
    return cudaMallocHost((void **)p, bytes);
}
#include "emu/device.h"
#endif

#endif
