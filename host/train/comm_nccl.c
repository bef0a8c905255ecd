/* NCCL communicator: one process per GPU, collectives on device buffers.
 *
 * The CUDA backend's kernels run on their own stream; rather than couple the two,
 * each collective waits for the device to be idle, runs on the communicator's
 * stream and waits for it (then checks the communicator's asynchronous error, where a peer's
 * abort shows). That is correct with any backend stream and costs a
 * synchronisation per collective. The gradient reduction is bucketed by layer
 * and started as each layer's backward ends (all_reduce_sum_start), so it runs on
 * the NCCL stream while the host queues the rest of the backward. */
#include "simcse/comm.h"
#include "simcse/common.h"

#ifdef SIMCSE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    double *dbuf;
    int dbuf_n;
    simcse_comm self;
} nccl_ctx;

#define NCCL_CHECK(call)                                                                                    \
    do {                                                                                                    \
        ncclResult_t r_ = (call);                                                                           \
        if (r_ != ncclSuccess)                                                                              \
            return simcse_error("%s:%d: %s failed: %s", __FILE__, __LINE__, #call, ncclGetErrorString(r_)); \
    } while (0)
#define CUDA_CHECK(call)                                                                                    \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess)                                                                              \
            return simcse_error("%s:%d: %s failed: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
    } while (0)

static nccl_ctx *X(simcse_comm *c) { return c->ctx; }

/* Waits for the communicator's stream, then asks NCCL whether the collective failed: a peer
 * that aborted or died shows only as the communicator's asynchronous error. */
static int nc_sync(nccl_ctx *x) {
    CUDA_CHECK(cudaStreamSynchronize(x->stream));
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(x->comm, &async));
    if (async != ncclSuccess)
        return simcse_error("NCCL: a collective failed: %s (%s)", ncclGetErrorString(async), ncclGetLastError(x->comm));
    return 0;
}

static int nc_all_reduce(simcse_comm *c, float *buf, size_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, X(c)->comm, X(c)->stream));
    return nc_sync(X(c));
}

/* Waits for the kernels that produced buf (the host stops until the device is idle,
 * then goes on queueing the backward while NCCL reduces on its own stream). */
static int nc_all_reduce_start(simcse_comm *c, float *buf, size_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, X(c)->comm, X(c)->stream));
    return 0;
}

static int nc_wait(simcse_comm *c) { return nc_sync(X(c)); }

static int nc_all_gather(simcse_comm *c, const float *send, float *recv, size_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    NCCL_CHECK(ncclAllGather(send, recv, n, ncclFloat, X(c)->comm, X(c)->stream));
    return nc_sync(X(c));
}

static int nc_reduce_scatter(simcse_comm *c, const float *send, float *recv, size_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    NCCL_CHECK(ncclReduceScatter(send, recv, n, ncclFloat, ncclSum, X(c)->comm, X(c)->stream));
    return nc_sync(X(c));
}

static int nc_all_reduce_host_f64(simcse_comm *c, double *v, int n) {
    nccl_ctx *x = X(c);
    if (n > x->dbuf_n) {
        if (x->dbuf) CUDA_CHECK(cudaFree(x->dbuf));
        x->dbuf = NULL;
        CUDA_CHECK(cudaMalloc((void **)&x->dbuf, (size_t)n * sizeof(double)));
        x->dbuf_n = n;
    }
    CUDA_CHECK(cudaMemcpy(x->dbuf, v, (size_t)n * sizeof(double), cudaMemcpyHostToDevice));
    NCCL_CHECK(ncclAllReduce(x->dbuf, x->dbuf, (size_t)n, ncclDouble, ncclSum, x->comm, x->stream));
    if (nc_sync(x) != 0) return -1;
    CUDA_CHECK(cudaMemcpy(v, x->dbuf, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost));
    return 0;
}

/* ncclCommAbort releases the NCCL communicator; the wrapper stays for destroy() (comm.h:
 * the creator frees it, aborted or not). Later collectives pass a NULL comm, which NCCL
 * refuses (ncclInvalidArgument): an error, not a use after free. */
static void nc_abort(simcse_comm *c) {
    nccl_ctx *x = X(c);
    if (!x->comm) return;
    ncclCommAbort(x->comm);
    x->comm = NULL;
}

static void nc_destroy(simcse_comm *c) {
    nccl_ctx *x = X(c);
    if (x->comm) ncclCommDestroy(x->comm);
    cudaStreamDestroy(x->stream);
    if (x->dbuf) cudaFree(x->dbuf);
    free(x);
}

int simcse_nccl_unique_id(unsigned char id[SIMCSE_NCCL_ID_BYTES]) {
    ncclUniqueId u;
    NCCL_CHECK(ncclGetUniqueId(&u));
    memcpy(id, u.internal, SIMCSE_NCCL_ID_BYTES);
    return 0;
}

static int init(nccl_ctx *x, int rank, int size, const unsigned char id[SIMCSE_NCCL_ID_BYTES]) {
    ncclUniqueId u;
    memcpy(u.internal, id, SIMCSE_NCCL_ID_BYTES);
    CUDA_CHECK(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking));
    NCCL_CHECK(ncclCommInitRank(&x->comm, size, u, rank));
    return 0;
}

simcse_comm *simcse_comm_nccl_create(int rank, int size, const unsigned char id[SIMCSE_NCCL_ID_BYTES], int device) {
    nccl_ctx *x = simcse_xcalloc(1, sizeof *x);
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        simcse_error("NCCL rank %d: cudaSetDevice(%d) failed: %s", rank, device, cudaGetErrorString(e));
        free(x);
        return NULL;
    }
    if (init(x, rank, size, id) != 0) {
        simcse_error_prefix("NCCL rank %d of %d", rank, size);
        if (x->comm) ncclCommAbort(x->comm); /* one left in an error state by a failed init */
        if (x->stream) cudaStreamDestroy(x->stream);
        free(x);
        return NULL;
    }
    simcse_comm *c = &x->self;
    c->rank = rank;
    c->size = size;
    c->name = "nccl";
    c->ctx = x;
    c->all_reduce_sum = nc_all_reduce;
    c->all_reduce_sum_start = nc_all_reduce_start;
    c->wait = nc_wait;
    c->all_gather = nc_all_gather;
    c->reduce_scatter_sum = nc_reduce_scatter;
    c->all_reduce_host_f64 = nc_all_reduce_host_f64;
    c->abort = nc_abort;
    c->destroy = nc_destroy;
    return c;
}

#else

int simcse_nccl_unique_id(unsigned char id[SIMCSE_NCCL_ID_BYTES]) {
    (void)id;
    return simcse_error("this simcse was built without NCCL");
}

simcse_comm *simcse_comm_nccl_create(int rank, int size, const unsigned char id[SIMCSE_NCCL_ID_BYTES], int device) {
    (void)device;
    (void)rank;
    (void)size;
    (void)id;
    simcse_error("this simcse was built without NCCL (several GPUs need the CUDA toolkit with NCCL)");
    return NULL;
}

#endif
