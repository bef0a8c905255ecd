/* The CPU backend's one thread pool, and the GEMMs that run on it.
 *
 * One pool serves every op: cpu_parallel(n, fn, ctx) runs fn(ctx, 0..n-1), each task once,
 * on the pool's threads and the caller. Tasks own disjoint outputs and every reduction is
 * done inside one task in a fixed order, so which thread runs which task never changes a
 * bit: results depend on the task split only, and callers derive the split from the shapes
 * and the thread count (never from timing). A pool that is busy (another rank thread of
 * `--ranks`, or a task that itself calls cpu_parallel) runs the tasks inline, in order:
 * same split, same bits.
 *
 * OpenBLAS is told to use one thread (openblas_set_num_threads(1)) and our pool splits
 * each GEMM into row (or column) blocks, one cblas_sgemm per block. Letting OpenBLAS run its
 * own threads instead would put two pools on the same cores: its workers spin for a while
 * after every GEMM (THREAD_TIMEOUT) while ours start the next op. OpenBLAS's single-threaded
 * path runs in the calling thread and is safe to call from several threads at once.
 *
 * Idle workers sleep on a condition variable (no spinning: the machines we run on are often
 * shared). The thread count is `--threads N` (simcse_cpu_set_threads), else OMP_NUM_THREADS
 * (its first entry, as OpenMP reads it), else the processors in this process's affinity mask
 * (sched_getaffinity), so a job limited by taskset, cgroups or Slurm uses what it was given. */
#define _GNU_SOURCE
#include "kernels/cpu/blas.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"

#define MAX_THREADS 1024

static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER; /* held by the caller running a job */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;   /* guards everything below */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER, g_done = PTHREAD_COND_INITIALIZER;
static int g_threads; /* 0: not resolved yet */
static int g_workers; /* started worker threads (g_threads - 1 once started) */
static pthread_t g_tid[MAX_THREADS];
static unsigned long g_generation;
static int g_quit, g_running;
static cpu_task_fn g_fn;
static void *g_ctx;
static int g_ntasks;
static atomic_int g_next;

/* OMP_NUM_THREADS as OpenMP reads it: a list "4,2" means 4 at the outer level. 0 when
 * unset or empty; -1 + error when it is not a positive integer. */
static int env_threads(void) {
    const char *s = getenv("OMP_NUM_THREADS");
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ') end++;
    if (end == s || errno || v < 1 || v > MAX_THREADS || (*end && *end != ','))
        return simcse_error("OMP_NUM_THREADS: expected a thread count in [1, %d], got '%s'", MAX_THREADS, s);
    return (int)v;
}

static int affinity_threads(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set) < MAX_THREADS ? CPU_COUNT(&set) : MAX_THREADS;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (n < MAX_THREADS ? (int)n : MAX_THREADS) : 1;
}

/* arg: the generation at its creation; the job it was started for is the next one */
static void *worker(void *arg) {
    unsigned long seen = (unsigned long)(uintptr_t)arg;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (g_generation == seen && !g_quit) pthread_cond_wait(&g_wake, &g_mu);
        if (g_quit) break;
        seen = g_generation;
        cpu_task_fn fn = g_fn;
        void *ctx = g_ctx;
        const int n = g_ntasks;
        pthread_mutex_unlock(&g_mu);
        for (int t; (t = atomic_fetch_add(&g_next, 1)) < n;) fn(ctx, t);
        pthread_mutex_lock(&g_mu);
        if (--g_running == 0) pthread_cond_signal(&g_done);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* Under g_busy: ends the workers (a new count starts new ones on the next job). */
static void stop_workers(void) {
    pthread_mutex_lock(&g_mu);
    g_quit = 1;
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < g_workers; i++) pthread_join(g_tid[i], NULL);
    g_workers = 0;
    g_quit = 0;
}

/* A forked child has none of the parent's threads: it starts its own when it needs them. */
static void after_fork_child(void) {
    pthread_mutex_init(&g_busy, NULL);
    pthread_mutex_init(&g_mu, NULL);
    pthread_cond_init(&g_wake, NULL);
    pthread_cond_init(&g_done, NULL);
    g_workers = 0;
    g_running = 0;
    g_quit = 0;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_once(void) {
    openblas_set_num_threads(1);
    pthread_atfork(NULL, NULL, after_fork_child);
}

int simcse_cpu_set_threads(int n) {
    pthread_once(&g_once, init_once);
    if (n < 0 || n > MAX_THREADS) return simcse_error("--threads: expected a count in [1, %d], got %d", MAX_THREADS, n);
    if (n == 0) {
        n = env_threads();
        if (n < 0) return -1;
        if (n == 0) n = affinity_threads();
    }
    pthread_mutex_lock(&g_busy);
    if (n != g_threads) {
        stop_workers();
        g_threads = n;
    }
    pthread_mutex_unlock(&g_busy);
    return n;
}

int simcse_cpu_threads(void) {
    pthread_mutex_lock(&g_mu);
    int n = g_threads;
    pthread_mutex_unlock(&g_mu);
    if (n == 0 && (n = simcse_cpu_set_threads(0)) < 0) simcse_fatal("%s", simcse_last_error());
    return n;
}

void cpu_parallel(int ntasks, cpu_task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    const int threads = simcse_cpu_threads();
    if (ntasks == 1 || threads == 1 || pthread_mutex_trylock(&g_busy) != 0) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    /* g_generation only changes under g_busy, which this thread holds */
    while (g_workers < threads - 1) {
        if (pthread_create(&g_tid[g_workers], NULL, worker, (void *)(uintptr_t)g_generation) != 0)
            break; /* fewer threads, same result */
        g_workers++;
    }
    pthread_mutex_lock(&g_mu);
    g_fn = fn;
    g_ctx = ctx;
    g_ntasks = ntasks;
    atomic_store(&g_next, 0);
    g_running = g_workers;
    g_generation++;
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_mu);
    for (int t; (t = atomic_fetch_add(&g_next, 1)) < ntasks;) fn(ctx, t);
    pthread_mutex_lock(&g_mu);
    while (g_running > 0) pthread_cond_wait(&g_done, &g_mu);
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_busy);
}

int cpu_split(double work, double min_work, int items) {
    const int threads = simcse_cpu_threads();
    if (items <= 1 || threads == 1 || work < min_work) return 1;
    double by_work = work / min_work;
    int n = by_work < threads ? (int)by_work : threads;
    if (n > items) n = items;
    return n < 1 ? 1 : n;
}

/* ---- GEMM on the pool ---- */

typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B, *bias;
    float *C;
    int lda, ldb, ldc;
    int by_rows, parts, align;
} gemm_job;

static void gemm_part(void *arg, int part) {
    const gemm_job *j = arg;
    const int len = j->by_rows ? j->M : j->N;
    /* block boundaries on multiples of `align` rows/columns, the kernels' unroll */
    const int units = (len + j->align - 1) / j->align;
    const int u0 = (int)((long long)units * part / j->parts), u1 = (int)((long long)units * (part + 1) / j->parts);
    const int s0 = u0 * j->align, s1 = u1 * j->align < len ? u1 * j->align : len;
    if (s1 <= s0) return;
    const int M = j->by_rows ? s1 - s0 : j->M, N = j->by_rows ? j->N : s1 - s0;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    if (j->by_rows) {
        A += j->ta ? (size_t)s0 : (size_t)s0 * j->lda;
        C += (size_t)s0 * j->ldc;
    } else {
        B += j->tb ? (size_t)s0 * j->ldb : (size_t)s0;
        C += s0;
    }
    float beta = j->beta;
    if (j->bias) {
        const float *b = j->by_rows ? j->bias : j->bias + s0;
        for (int m = 0; m < M; m++) memcpy(C + (size_t)m * j->ldc, b, (size_t)N * sizeof(float));
        beta = 1.0f;
    }
    if (j->K == 0) {
        if (beta != 1.0f)
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) C[(size_t)m * j->ldc + n] *= beta;
        return;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, M, N, j->K,
                j->alpha, A, j->lda, B, j->ldb, beta, C, j->ldc);
}

/* Below this many multiply-adds a GEMM block is not worth a thread's wake-up. */
#define GEMM_MIN_MACS (1 << 19)

void cpu_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, const float *bias) {
    if (M <= 0 || N <= 0) return;
    gemm_job j = {.ta = ta,
                  .tb = tb,
                  .M = M,
                  .N = N,
                  .K = K,
                  .alpha = alpha,
                  .beta = beta,
                  .A = A,
                  .B = B,
                  .bias = bias,
                  .C = C,
                  .lda = lda,
                  .ldb = ldb,
                  .ldc = ldc,
                  .align = 16};
    /* split the longer of the two output dimensions */
    j.by_rows = M >= N;
    const int len = j.by_rows ? M : N;
    j.parts = cpu_split((double)M * N * (K > 0 ? K : 1), GEMM_MIN_MACS, (len + j.align - 1) / j.align);
    cpu_parallel(j.parts, gemm_part, &j);
}
