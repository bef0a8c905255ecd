/* Threads as ranks: every collective posts each rank's buffer, meets at a
 * barrier, lets each rank reduce its own slice (so the work is shared and the
 * summation order, rank 0 first, does not depend on timing), meets again, and
 * copies the result out. A last barrier keeps the next collective from
 * overwriting buffers that a slower rank is still reading.
 *
 * The barrier is a mutex and a condition variable rather than a pthread barrier
 * so that a rank that fails can abort the group: every rank waiting in (or later
 * entering) a collective then gets an error instead of waiting forever. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/comm.h"
#include "simcse/common.h"

typedef struct {
    int size;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int arrived, aborted;
    unsigned long generation;
    const float **slot;
    double *slot_f64[64];
    float *scratch;
    size_t scratch_n;
    simcse_comm *comms;
    simcse_comm **list;
} group;

static group *G(simcse_comm *c) { return c->ctx; }
/* 0 when every rank arrived; -1 when the group was aborted. */
static int sync_all(group *g) {
    pthread_mutex_lock(&g->lock);
    if (g->aborted) {
        pthread_mutex_unlock(&g->lock);
        return -1;
    }
    unsigned long gen = g->generation;
    if (++g->arrived == g->size) {
        g->arrived = 0;
        g->generation++;
        pthread_cond_broadcast(&g->cond);
    } else {
        while (gen == g->generation && !g->aborted) pthread_cond_wait(&g->cond, &g->lock);
    }
    int rc = g->aborted ? -1 : 0;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

#define SYNC(g)                                                                         \
    do {                                                                                \
        if (sync_all(g) != 0) return simcse_error("communicator: another rank failed"); \
    } while (0)

/* Frees nothing (comm.h): the group stays until simcse_comm_threads_destroy, after every rank's
 * thread has returned, aborted or not. */
static void th_abort(simcse_comm *c) {
    group *g = c->ctx;
    pthread_mutex_lock(&g->lock);
    g->aborted = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void slice(size_t n, int size, int r, size_t *lo, size_t *hi) {
    *lo = n * (size_t)r / (size_t)size;
    *hi = n * (size_t)(r + 1) / (size_t)size;
}

static int th_all_reduce(simcse_comm *c, float *buf, size_t n) {
    group *g = G(c);
    g->slot[c->rank] = buf;
    if (c->rank == 0 && g->scratch_n < n) {
        free(g->scratch);
        g->scratch = simcse_xmalloc(n * sizeof(float));
        g->scratch_n = n;
    }
    SYNC(g);
    size_t lo, hi;
    slice(n, g->size, c->rank, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        float s = 0.0f;
        for (int q = 0; q < g->size; q++) s += g->slot[q][i];
        g->scratch[i] = s;
    }
    SYNC(g);
    memcpy(buf, g->scratch, n * sizeof(float));
    SYNC(g);
    return 0;
}

/* Threads meet at every collective anyway: the reduction is done when it starts. */
static int th_all_reduce_start(simcse_comm *c, float *buf, size_t n) { return th_all_reduce(c, buf, n); }
static int th_wait(simcse_comm *c) {
    (void)c;
    return 0;
}

static int th_all_gather(simcse_comm *c, const float *send, float *recv, size_t n) {
    group *g = G(c);
    g->slot[c->rank] = send;
    SYNC(g);
    for (int q = 0; q < g->size; q++) memcpy(recv + (size_t)q * n, g->slot[q], n * sizeof(float));
    SYNC(g);
    return 0;
}

static int th_reduce_scatter(simcse_comm *c, const float *send, float *recv, size_t n) {
    group *g = G(c);
    g->slot[c->rank] = send;
    SYNC(g);
    const size_t base = (size_t)c->rank * n;
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int q = 0; q < g->size; q++) s += g->slot[q][base + i];
        recv[i] = s;
    }
    SYNC(g);
    return 0;
}

static int th_all_reduce_host_f64(simcse_comm *c, double *v, int n) {
    group *g = G(c);
    g->slot_f64[c->rank] = v;
    SYNC(g);
    double *sum = simcse_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) {
        sum[i] = 0.0;
        for (int q = 0; q < g->size; q++) sum[i] += g->slot_f64[q][i];
    }
    if (sync_all(g) != 0) {
        free(sum);
        return simcse_error("communicator: another rank failed");
    }
    memcpy(v, sum, (size_t)n * sizeof(double));
    free(sum);
    return 0;
}

simcse_comm **simcse_comm_threads_create(int size) {
    if (size < 1 || size > 64) {
        simcse_error("threads communicator: %d ranks (1..64)", size);
        return NULL;
    }
    group *g = simcse_xcalloc(1, sizeof *g);
    g->size = size;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->slot = simcse_xcalloc((size_t)size, sizeof *g->slot);
    g->comms = simcse_xcalloc((size_t)size, sizeof *g->comms);
    g->list = simcse_xcalloc((size_t)size + 1, sizeof *g->list);
    for (int r = 0; r < size; r++) {
        simcse_comm *c = &g->comms[r];
        c->rank = r;
        c->size = size;
        c->name = "threads";
        c->ctx = g;
        c->all_reduce_sum = th_all_reduce;
        c->all_reduce_sum_start = th_all_reduce_start;
        c->wait = th_wait;
        c->all_gather = th_all_gather;
        c->reduce_scatter_sum = th_reduce_scatter;
        c->all_reduce_host_f64 = th_all_reduce_host_f64;
        c->destroy = NULL;
        c->abort = th_abort;
        g->list[r] = c;
    }
    return g->list;
}

void simcse_comm_threads_destroy(simcse_comm **comms) {
    if (!comms || !comms[0]) return;
    group *g = comms[0]->ctx;
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g->slot);
    free(g->scratch);
    free(g->comms);
    free(g->list);
    free(g);
}
