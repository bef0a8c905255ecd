/* AdamW with decoupled weight decay and bias correction (PyTorch semantics),
 * global gradient-norm clipping, and the learning-rate schedule (linear decay
 * after an optional linear warmup, as transformers' get_linear_schedule_with_warmup).
 * Moments live on the backend next to the weights, fp32. */
#ifndef SIMCSE_OPTIMIZER_H
#define SIMCSE_OPTIMIZER_H

#include <stdint.h>

#include "simcse/model.h"
#include "simcse/ops.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay, max_grad_norm;
    int64_t warmup_steps, total_steps;
    int linear_decay; /* 0: constant after warmup */
} simcse_adamw_config;

typedef struct {
    simcse_backend *be;
    const simcse_model *layout; /* tensor table: which tensors decay */
    simcse_adamw_config cfg;
    float *m, *v; /* backend buffers, n_floats each */
    int64_t step; /* optimizer steps taken */
} simcse_optimizer;

int simcse_optimizer_init(simcse_optimizer *o, simcse_backend *be, const simcse_model *layout,
                          const simcse_adamw_config *cfg);
void simcse_optimizer_free(simcse_optimizer *o);
/* Learning rate for optimizer step `step` (0-based), as transformers' LambdaLR. */
double simcse_lr_at(const simcse_adamw_config *cfg, int64_t step);
/* Clips and applies one step to params from grads (backend buffers). Returns the
 * global gradient norm before clipping; *lr_used gets the learning rate. */
double simcse_optimizer_step(simcse_optimizer *o, float *params, const float *grads, double *lr_used);

#endif
