/* Private to the CPU backend: the functions that fill its vtable (kernels/cpu/backend.c)
 * and small helpers shared by its files. Signatures are those of include/simcse/ops.h. */
#ifndef SIMCSE_CPU_OPS_H
#define SIMCSE_CPU_OPS_H

#include "simcse/ops.h"

/* linear.c */
void cpu_linear_fwd(simcse_backend *be, float *out, const float *in, const float *W, const float *b,
                    int N, int I, int O);
void cpu_linear_bwd(simcse_backend *be, float *din, float *dW, float *db, const float *dout,
                    const float *in, const float *W, int N, int I, int O);

/* elementwise.c: embeddings */
void cpu_embed_fwd(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids,
                   const int32_t *type_ids, const float *word, const float *pos, const float *type,
                   int T, int H);
void cpu_embed_bwd(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout,
                   const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids, int T, int H);

/* norm.c */
void cpu_layernorm_fwd(simcse_backend *be, float *y, float *mean, float *rstd, const float *x,
                       const float *residual, const float *g, const float *b, int N, int H, float eps);
void cpu_layernorm_bwd(simcse_backend *be, float *dx, float *dg, float *db, const float *dy,
                       const float *x, const float *residual, const float *mean, const float *rstd,
                       const float *g, int N, int H);

/* elementwise.c */
void cpu_gelu_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cpu_gelu_bwd(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n);
void cpu_tanh_fwd(simcse_backend *be, float *y, const float *x, size_t n);
void cpu_tanh_bwd(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n);
void cpu_dropout(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d);
void cpu_add(simcse_backend *be, float *y, const float *a, const float *b, size_t n);
void cpu_scale(simcse_backend *be, float *y, float s, size_t n);

/* attention.c */
void cpu_attention_fwd(simcse_backend *be, float *out, float *lse, const float *q, const float *k,
                       const float *v, const int32_t *offsets, int B, int T, int heads, int hd,
                       simcse_dropout d);
void cpu_attention_bwd(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout,
                       const float *q, const float *k, const float *v, const float *out,
                       const float *lse, const int32_t *offsets, int B, int T, int heads, int hd,
                       simcse_dropout d);

/* pool.c */
void cpu_pool_first_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
void cpu_pool_first_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);
void cpu_pool_mean_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
void cpu_pool_mean_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);

/* loss.c */
void cpu_infonce(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                 const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale, int target0,
                 int hard);

/* optim.c */
void cpu_sumsq(simcse_backend *be, double *out, const float *x, size_t n);
void cpu_adamw(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr,
               float beta1, float beta2, float eps, float wd, float grad_scale, int step);

/* Dropout as the whole project defines it (elementwise.c): the multiplier of elements
 * 0..n-1 of rng row `row`: 0 where dropped, 1/(1-p) (in float) where kept; all 0 when
 * p >= 1. scratch holds n values. Only for d.p > 0. */
void cpu_dropout_row_factor(simcse_dropout d, uint64_t row, float *factor, uint32_t *scratch, int n);

#endif
