/* AdamW over the model's one parameter buffer. The tensor table says which
 * views get weight decay (not biases, not LayerNorm weights, as the Hugging
 * Face Trainer groups them), so the update is one backend call per tensor. */
#include "simcse/optimizer.h"

#include <math.h>
#include <string.h>

#include "simcse/common.h"

int simcse_optimizer_init(simcse_optimizer *o, simcse_backend *be, const simcse_model *layout,
                          const simcse_adamw_config *cfg) {
    memset(o, 0, sizeof *o);
    o->be = be;
    o->layout = layout;
    o->cfg = *cfg;
    size_t bytes = layout->n_floats * sizeof(float);
    o->m = be->alloc(be, bytes);
    o->v = o->m ? be->alloc(be, bytes) : NULL;
    if (!o->m || !o->v) {
        simcse_error_prefix("allocating AdamW moments (%zu bytes each)", bytes);
        simcse_optimizer_free(o);
        return -1;
    }
    be->zero(be, o->m, bytes);
    be->zero(be, o->v, bytes);
    return 0;
}

void simcse_optimizer_free(simcse_optimizer *o) {
    if (o->m) o->be->free(o->be, o->m);
    if (o->v) o->be->free(o->be, o->v);
    o->m = o->v = NULL;
}

double simcse_lr_at(const simcse_adamw_config *c, int64_t step) {
    if (c->warmup_steps > 0 && step < c->warmup_steps) return c->lr * (double)step / (double)c->warmup_steps;
    if (!c->linear_decay) return c->lr;
    int64_t span = c->total_steps - c->warmup_steps;
    if (span < 1) span = 1;
    double f = (double)(c->total_steps - step) / (double)span;
    return c->lr * (f > 0 ? f : 0);
}

double simcse_optimizer_step(simcse_optimizer *o, float *params, const float *grads, double *lr_used) {
    simcse_backend *be = o->be;
    double ss = 0;
    be->sumsq(be, &ss, grads, o->layout->n_floats);
    double norm = sqrt(ss);
    float scale = 1.0f;
    /* torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6), clamped to 1 */
    if (o->cfg.max_grad_norm > 0) {
        double coef = o->cfg.max_grad_norm / (norm + 1e-6);
        if (coef < 1.0) scale = (float)coef;
    }
    double lr = simcse_lr_at(&o->cfg, o->step);
    o->step++;
    for (int i = 0; i < o->layout->n_tensors; i++) {
        const simcse_param *t = &o->layout->tensors[i];
        be->adamw(be, params + t->offset, grads + t->offset, o->m + t->offset, o->v + t->offset, t->numel, (float)lr,
                  (float)o->cfg.beta1, (float)o->cfg.beta2, (float)o->cfg.eps,
                  t->no_decay ? 0.0f : (float)o->cfg.weight_decay, scale, (int)o->step);
    }
    if (lr_used) *lr_used = lr;
    return norm;
}
