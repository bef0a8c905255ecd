/* Linear layers: y = x W^T + b and its backward, the bulk of the CPU time.
 *
 * The products go through cblas_sgemm (OpenBLAS), split over the backend's thread pool by
 * cpu_sgemm (kernels/cpu/threads.c): the forward by rows of y, din by rows, dW by rows of W.
 * The bias is copied into y inside each block and the product accumulated onto it (beta 1),
 * so y is written once. db is a column sum, split by columns: each element is summed over
 * the rows in ascending order by one task, whatever the thread count.
 *
 * The plain loops that these replace stay here as cpu_ref_linear_fwd / _bwd: the oracle the
 * tests hold the BLAS path to (tests/test_cpu_fast.c). */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                    int O) {
    (void)be;
    if (N <= 0 || O <= 0) return;
    cpu_sgemm(0, 1, N, O, I, 1.0f, in, I > 0 ? I : 1, W, I > 0 ? I : 1, 0.0f, out, O, b);
}

typedef struct {
    float *db;
    const float *dout;
    int N, O, parts;
} colsum_job;

static void colsum_part(void *arg, int part) {
    const colsum_job *j = arg;
    const int o0 = (int)((long long)j->O * part / j->parts), o1 = (int)((long long)j->O * (part + 1) / j->parts);
    for (int n = 0; n < j->N; n++) {
        const float *restrict g = j->dout + (size_t)n * j->O;
        float *restrict d = j->db;
        for (int o = o0; o < o1; o++) d[o] += g[o];
    }
}

void cpu_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                    const float *W, int N, int I, int O) {
    (void)be;
    if (N <= 0) return;
    const int ldI = I > 0 ? I : 1, ldO = O > 0 ? O : 1;
    if (din) cpu_sgemm(0, 0, N, I, O, 1.0f, dout, ldO, W, ldI, 0.0f, din, ldI, NULL);
    if (dW) cpu_sgemm(1, 0, O, I, N, 1.0f, dout, ldO, in, ldI, 1.0f, dW, ldI, NULL);
    if (db && O > 0) {
        colsum_job j = {.db = db, .dout = dout, .N = N, .O = O};
        j.parts = cpu_split((double)N * O, 1 << 16, O / 16);
        cpu_parallel(j.parts, colsum_part, &j);
    }
}

/* ---- the oracle: plain loops, one thread ---- */

void cpu_ref_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                        int O) {
    (void)be;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            float s = b ? b[o] : 0.0f;
            for (int i = 0; i < I; i++) s += in[(size_t)n * I + i] * W[(size_t)o * I + i];
            out[(size_t)n * O + o] = s;
        }
}

void cpu_ref_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                        const float *W, int N, int I, int O) {
    (void)be;
    if (din)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < I; i++) {
                float s = 0.0f;
                for (int o = 0; o < O; o++) s += dout[(size_t)n * O + o] * W[(size_t)o * I + i];
                din[(size_t)n * I + i] = s;
            }
    if (dW)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++) {
                float s = dW[(size_t)o * I + i];
                for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o] * in[(size_t)n * I + i];
                dW[(size_t)o * I + i] = s;
            }
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) db[o] += dout[(size_t)n * O + o];
}
