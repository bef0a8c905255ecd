/* Private to the CPU backend: the functions that fill its vtable (kernels/cpu/backend.c)
 * and small helpers shared by its files. Signatures are those of include/simcse/ops.h. */
#ifndef SIMCSE_CPU_OPS_H
#define SIMCSE_CPU_OPS_H

#include "simcse/ops.h"

/* threads.c: the one thread pool. cpu_parallel runs fn(ctx, t) for t in [0, ntasks), each
 * once, on the pool and the caller (inline when the pool is busy); tasks must write
 * disjoint outputs. cpu_split: how many tasks to cut `items` units of `work` into (1 below
 * min_work; at most the thread count): a function of its arguments and the thread count
 * only, so a split, and therefore every result, is the same on every run. */
typedef void (*cpu_task_fn)(void *ctx, int task);
void cpu_parallel(int ntasks, cpu_task_fn fn, void *ctx);
int cpu_split(double work, double min_work, int items);
/* Row-major C[M,N] = alpha op(A) op(B) + beta C through cblas_sgemm, in blocks of rows (or
 * columns) on the pool; ta/tb: A / B transposed. bias (length N, may be NULL): each row of C
 * is set to it first and the product added (beta ignored). */
void cpu_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, const float *bias);

/* linear.c */
void cpu_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                    int O);
void cpu_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                    const float *W, int N, int I, int O);
/* the plain loops the BLAS path is tested against */
void cpu_ref_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                        int O);
void cpu_ref_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                        const float *W, int N, int I, int O);

/* elementwise.c: embeddings */
void cpu_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids,
                   const float *word, const float *pos, const float *type, int T, int H);
void cpu_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout, const int32_t *ids,
                   const int32_t *pos_ids, const int32_t *type_ids, int T, int H);

/* norm.c */
void cpu_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x, const float *residual,
                       const float *g, const float *b, int N, int H, float eps);
void cpu_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                       const float *residual, const float *mean, const float *rstd, const float *g, int N, int H);
void cpu_ref_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x,
                           const float *residual, const float *g, const float *b, int N, int H, float eps);
void cpu_ref_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                           const float *residual, const float *mean, const float *rstd, const float *g, int N, int H);

/* elementwise.c */
void cpu_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cpu_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n);
void cpu_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cpu_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n);
void cpu_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d);
void cpu_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n);
void cpu_scale(simcse_backend *be, float *y, float s, size_t n);

/* the one-thread loops the pooled versions above are tested against */
void cpu_ref_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids,
                       const int32_t *type_ids, const float *word, const float *pos, const float *type, int T, int H);
void cpu_ref_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout,
                       const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids, int T, int H);
void cpu_ref_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cpu_ref_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n);
void cpu_ref_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cpu_ref_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n);
void cpu_ref_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d);
void cpu_ref_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n);
void cpu_ref_scale(simcse_backend *be, float *y, float s, size_t n);

/* attention.c */
void cpu_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                       const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d);
void cpu_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets,
                       int B, int T, int heads, int hd, simcse_dropout d);
void cpu_ref_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                           const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d);
void cpu_ref_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets,
                           int B, int T, int heads, int hd, simcse_dropout d);

/* pool.c */
void cpu_pool_first_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
void cpu_pool_first_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);
void cpu_pool_mean_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
void cpu_pool_mean_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);

/* loss.c */
void cpu_infonce(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                 const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale, int target0,
                 int hard);
void cpu_ref_infonce(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                     const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale,
                     int target0, int hard);

/* optim.c */
void cpu_sumsq(simcse_backend *be, double *out, const float *x, size_t n);
void cpu_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
               float beta2, float eps, float wd, float grad_scale, int step);
void cpu_ref_sumsq(simcse_backend *be, double *out, const float *x, size_t n);
void cpu_ref_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                   float beta2, float eps, float wd, float grad_scale, int step);

/* Dropout as the whole project defines it (elementwise.c): the multiplier of elements
 * 0..n-1 of rng row `row`: 0 where dropped, 1/(1-p) (in float) where kept; all 0 when
 * p >= 1. scratch holds n values. Only for d.p > 0. */
void cpu_dropout_row_factor(simcse_dropout d, uint64_t row, float *factor, uint32_t *scratch, int n);

#endif
