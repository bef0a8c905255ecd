/* The harness's library_types.h: cudaDataType_t with the CUDA toolkit's own enumerator values.
 *
 * The cuBLAS, cuBLASLt and NCCL stand-ins (tests/emu/) need the data-type enum, and the real
 * header is plain C. This copy exists so the harness build needs no CUDA toolkit headers for
 * the libraries; it keeps the toolkit's include guard, so whichever of the two is included
 * first wins and the other is skipped. Only the enumerators kernels/cuda may use are listed;
 * the values are the toolkit's (CUDA 12/13 library_types.h). */
#if !defined(__LIBRARY_TYPES_H__)
#define __LIBRARY_TYPES_H__

typedef enum cudaDataType_t {
    CUDA_R_16F = 2,
    CUDA_C_16F = 6,
    CUDA_R_16BF = 14,
    CUDA_C_16BF = 15,
    CUDA_R_32F = 0,
    CUDA_C_32F = 4,
    CUDA_R_64F = 1,
    CUDA_C_64F = 5,
    CUDA_R_8I = 3,
    CUDA_C_8I = 7,
    CUDA_R_8U = 8,
    CUDA_C_8U = 9,
    CUDA_R_32I = 10,
    CUDA_C_32I = 11,
    CUDA_R_32U = 12,
    CUDA_C_32U = 13,
    CUDA_R_8F_E4M3 = 28,
    CUDA_R_8F_E5M2 = 29
} cudaDataType;
typedef enum cudaDataType_t cudaDataType_t;

typedef enum libraryPropertyType_t { MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL } libraryPropertyType;
typedef enum libraryPropertyType_t libraryPropertyType_t;

#endif
