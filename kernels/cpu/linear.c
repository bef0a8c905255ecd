/* Linear layers: y = x W^T + b and its backward, the bulk of the CPU training time.
 *
 * Every product is written as a row update y[n, :] += a * w[:] ("axpy"): the inner loop
 * runs over contiguous memory with independent elements, so gcc -O2 vectorises it without
 * reassociating a reduction. The forward therefore reads W^T, transposed once per call into
 * a scratch buffer (I*O floats, small next to the N*I*O work). Loops are tiled so the tile of
 * weights in use (TILE_I x TILE_O floats, 256 KiB) stays in L2 while all rows stream past it.
 *
 * Each output element is accumulated in one fixed order (ascending i for the forward,
 * ascending o for din, ascending n for dW and db) whatever the tiling or threading, so the
 * results are deterministic and independent of the thread split. Large problems are split
 * in two halves on two pthreads (rows of out/din, rows of dW); small ones run inline. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "simcse/common.h"

#define TILE_I 256
#define TILE_O 256
#define TILE_DW 16               /* rows of dW updated together */
#define PARALLEL_MACS (1 << 21)  /* below this, a thread costs more than it saves */

typedef struct {
    float *out, *din, *dW;
    const float *in, *W, *Wt, *b, *dout;
    int N, I, O;
    int n0, n1;  /* rows of out / din */
    int o0, o1;  /* rows of dW */
} linear_job;

/* y[0..n) += a * x[0..n), in blocks of 8 that gcc -O2 vectorises (its default cost model
 * leaves plain loops of unknown length scalar). Each element is updated exactly as the
 * one-line loop would. */
static inline void axpy(float *restrict y, float a, const float *restrict x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) y[i + k] += a * x[i + k];
    for (; i < n; i++) y[i] += a * x[i];
}

/* Runs fn(a) on a second thread and fn(b) here; both inline when not worth a thread. */
static void run2(void *(*fn)(void *), void *a, void *b, int parallel) {
    pthread_t th;
    if (parallel && pthread_create(&th, NULL, fn, a) == 0) {
        fn(b);
        pthread_join(th, NULL);
    } else {
        fn(a);
        fn(b);
    }
}

static void *fwd_job(void *arg) {
    const linear_job *j = arg;
    const int I = j->I, O = j->O;
    for (int n = j->n0; n < j->n1; n++) {
        float *y = j->out + (size_t)n * O;
        if (j->b)
            memcpy(y, j->b, (size_t)O * sizeof(float));
        else
            memset(y, 0, (size_t)O * sizeof(float));
    }
    for (int i0 = 0; i0 < I; i0 += TILE_I) {
        int i1 = i0 + TILE_I < I ? i0 + TILE_I : I;
        for (int o0 = 0; o0 < O; o0 += TILE_O) {
            int ow = o0 + TILE_O < O ? TILE_O : O - o0;
            for (int n = j->n0; n < j->n1; n++) {
                float *y = j->out + (size_t)n * O + o0;
                const float *x = j->in + (size_t)n * I;
                for (int i = i0; i < i1; i++) axpy(y, x[i], j->Wt + (size_t)i * O + o0, ow);
            }
        }
    }
    return NULL;
}

void cpu_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b,
                    int N, int I, int O) {
    (void)be;
    if (N <= 0 || O <= 0) return;
    float *Wt = simcse_xmalloc((size_t)I * O * sizeof(float) + 1);
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) Wt[(size_t)i * O + o] = W[(size_t)o * I + i];
    linear_job a = {.out = out, .in = in, .Wt = Wt, .b = b, .N = N, .I = I, .O = O, .n0 = 0, .n1 = N / 2};
    linear_job c = a;
    c.n0 = N / 2;
    c.n1 = N;
    run2(fwd_job, &a, &c, (double)N * I * O >= PARALLEL_MACS && N >= 2);
    free(Wt);
}

static void *bwd_job(void *arg) {
    const linear_job *j = arg;
    const int N = j->N, I = j->I, O = j->O;
    /* din[n, :] = sum_o dout[n, o] W[o, :] */
    if (j->din) {
        for (int n = j->n0; n < j->n1; n++) memset(j->din + (size_t)n * I, 0, (size_t)I * sizeof(float));
        for (int o0 = 0; o0 < O; o0 += TILE_O) {
            int o1 = o0 + TILE_O < O ? o0 + TILE_O : O;
            for (int i0 = 0; i0 < I; i0 += TILE_I) {
                int iw = i0 + TILE_I < I ? TILE_I : I - i0;
                for (int n = j->n0; n < j->n1; n++) {
                    float *dx = j->din + (size_t)n * I + i0;
                    const float *g = j->dout + (size_t)n * O;
                    for (int o = o0; o < o1; o++) axpy(dx, g[o], j->W + (size_t)o * I + i0, iw);
                }
            }
        }
    }
    /* dW[o, :] += sum_n dout[n, o] in[n, :] */
    if (j->dW) {
        for (int o0 = j->o0; o0 < j->o1; o0 += TILE_DW) {
            int o1 = o0 + TILE_DW < j->o1 ? o0 + TILE_DW : j->o1;
            for (int i0 = 0; i0 < I; i0 += TILE_I) {
                int iw = i0 + TILE_I < I ? TILE_I : I - i0;
                for (int n = 0; n < N; n++) {
                    const float *x = j->in + (size_t)n * I + i0;
                    const float *g = j->dout + (size_t)n * O;
                    for (int o = o0; o < o1; o++) axpy(j->dW + (size_t)o * I + i0, g[o], x, iw);
                }
            }
        }
    }
    return NULL;
}

void cpu_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout,
                    const float *in, const float *W, int N, int I, int O) {
    (void)be;
    if (N <= 0) return;
    linear_job a = {.din = din, .dW = dW, .in = in, .W = W, .dout = dout, .N = N, .I = I, .O = O,
                    .n0 = 0, .n1 = N / 2, .o0 = 0, .o1 = O / 2};
    linear_job c = a;
    c.n0 = N / 2;
    c.n1 = N;
    c.o0 = O / 2;
    c.o1 = O;
    run2(bwd_job, &a, &c, (double)N * I * O >= PARALLEL_MACS);
    if (db)
        for (int n = 0; n < N; n++) {
            const float *restrict g = dout + (size_t)n * O;
            for (int o = 0; o < O; o++) db[o] += g[o];
        }
}
