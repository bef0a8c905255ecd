/* Collective communication between ranks, behind one interface with two
 * implementations: NCCL (one process per GPU, device buffers) and an in-process
 * one where threads are ranks (host buffers), so the distributed math runs and is
 * tested on the CPU. All collectives are sums over float32 buffers in the
 * backend's memory, called by every rank in the same order. */
#ifndef SIMCSE_COMM_H
#define SIMCSE_COMM_H

#include <stddef.h>

typedef struct simcse_comm simcse_comm;
struct simcse_comm {
    int rank, size;
    const char *name;
    void *ctx;
    /* buf[0..n) = sum over ranks (in place) */
    int (*all_reduce_sum)(simcse_comm *c, float *buf, size_t n);
    /* Starts buf[0..n) = sum over ranks; the result is there after wait(). Lets the
     * gradient reduction of one layer run while the backward computes the next. */
    int (*all_reduce_sum_start)(simcse_comm *c, float *buf, size_t n);
    int (*wait)(simcse_comm *c);
    /* recv[q*n .. (q+1)*n) = rank q's send[0..n) */
    int (*all_gather)(simcse_comm *c, const float *send, float *recv, size_t n);
    /* recv[0..n) = sum over ranks q of q's send[rank*n .. (rank+1)*n) */
    int (*reduce_scatter_sum)(simcse_comm *c, const float *send, float *recv, size_t n);
    /* small host-side values (loss, counters): v[0..n) = sum over ranks, in place */
    int (*all_reduce_host_f64)(simcse_comm *c, double *v, int n);
    /* A rank that fails calls abort so the others get errors instead of waiting
     * for it forever (threads: every pending and later collective fails; NCCL:
     * ncclCommAbort). abort frees nothing of the communicator: its creator still
     * frees it after an abort exactly as without one (NCCL: destroy(), which then
     * skips the NCCL communicator that ncclCommAbort already released; threads:
     * simcse_comm_threads_destroy). Every later collective of an aborted
     * communicator fails; destroy() is the only call it still takes. */
    void (*abort)(simcse_comm *c);
    /* Frees a communicator of simcse_comm_nccl_create, aborted or not (NULL for the
     * threads communicator: the group is freed by simcse_comm_threads_destroy). */
    void (*destroy)(simcse_comm *c);
};

/* `size` communicators sharing one in-process group; give comms[r] to the thread
 * that plays rank r. Sums run in rank order, so results are deterministic. */
simcse_comm **simcse_comm_threads_create(int size);
/* Destroys the group (after every thread has finished with its communicator). */
void simcse_comm_threads_destroy(simcse_comm **comms);

/* NCCL (built with SIMCSE_NCCL): rank of size ranks on CUDA device `device`,
 * joined through the 128-byte unique id that rank 0 made with simcse_nccl_unique_id
 * and shared (a file, or MPI). NULL + error when NCCL is absent or fails. */
#define SIMCSE_NCCL_ID_BYTES 128
int simcse_nccl_unique_id(unsigned char id[SIMCSE_NCCL_ID_BYTES]);
simcse_comm *simcse_comm_nccl_create(int rank, int size, const unsigned char id[SIMCSE_NCCL_ID_BYTES], int device);

#endif
