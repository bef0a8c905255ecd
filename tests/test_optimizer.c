/* The optimizer as functions, each against numbers worked out by hand:
 * - the learning-rate schedule (transformers' get_linear_schedule_with_warmup and
 *   get_constant_schedule_with_warmup) at every step, and the rate each
 *   simcse_optimizer_step reports using;
 * - the weight-decay mask: which tensors decay (the Hugging Face Trainer's grouping:
 *   not biases, not LayerNorm weights), seen both in the tensor table and in a step;
 * - gradient-norm clipping (torch.nn.utils.clip_grad_norm_: coefficient
 *   max_norm / (norm + 1e-6), clamped to 1), seen in the first moment, which after
 *   one step is (1 - beta1) x the clipped gradient.
 * The model-parity suite checks three whole AdamW steps against PyTorch; these pin
 * the pieces one at a time, so a wrong piece cannot hide behind the others. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/model.h"
#include "simcse/ops.h"
#include "simcse/optimizer.h"

static void tiny_model(simcse_model *m) {
    simcse_config c = {.arch = SIMCSE_ARCH_BERT,
                       .vocab_size = 20,
                       .hidden = 8,
                       .layers = 2,
                       .heads = 2,
                       .intermediate = 16,
                       .max_positions = 10,
                       .type_vocab_size = 2,
                       .pad_token_id = 0,
                       .layer_norm_eps = 1e-12f};
    cr_assert_eq(simcse_model_init(m, &c), 0);
}

Test(optimizer, linear_schedule_with_warmup_by_hand) {
    simcse_adamw_config c = {.lr = 2.0, .warmup_steps = 3, .total_steps = 10, .linear_decay = 1};
    /* lambda(s) = s / 3 for s < 3, then (10 - s) / 7, floored at 0 */
    const double want[13] = {0, 2.0 / 3, 4.0 / 3, 2, 12.0 / 7, 10.0 / 7, 8.0 / 7, 6.0 / 7, 4.0 / 7, 2.0 / 7, 0, 0, 0};
    for (int s = 0; s < 13; s++)
        cr_assert(fabs(simcse_lr_at(&c, s) - want[s]) < 1e-12, "step %d: %.9g, want %.9g", s, simcse_lr_at(&c, s),
                  want[s]);
    /* no warmup: decays from the peak at step 0 to 0 at total_steps */
    simcse_adamw_config nw = {.lr = 1.0, .warmup_steps = 0, .total_steps = 4, .linear_decay = 1};
    const double want_nw[5] = {1, 0.75, 0.5, 0.25, 0};
    for (int s = 0; s < 5; s++) cr_assert(fabs(simcse_lr_at(&nw, s) - want_nw[s]) < 1e-12, "no warmup, step %d", s);
}

Test(optimizer, constant_schedule_with_warmup_by_hand) {
    simcse_adamw_config c = {.lr = 1.0, .warmup_steps = 4, .total_steps = 6, .linear_decay = 0};
    const double want[8] = {0, 0.25, 0.5, 0.75, 1, 1, 1, 1};
    for (int s = 0; s < 8; s++) cr_assert(fabs(simcse_lr_at(&c, s) - want[s]) < 1e-12, "step %d", s);
    simcse_adamw_config flat = {.lr = 0.5, .total_steps = 3};
    for (int s = 0; s < 5; s++) cr_assert_eq(simcse_lr_at(&flat, s), 0.5);
}

Test(optimizer, each_step_uses_the_schedule_at_its_own_index) {
    simcse_model m;
    tiny_model(&m);
    simcse_backend *be = simcse_backend_cpu();
    simcse_adamw_config c = {
        .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .warmup_steps = 2, .total_steps = 6, .linear_decay = 1};
    simcse_optimizer o;
    cr_assert_eq(simcse_optimizer_init(&o, be, &m, &c), 0);
    float *g = calloc(m.n_floats, sizeof(float));
    for (int s = 0; s < 6; s++) {
        double lr = -1;
        simcse_optimizer_step(&o, m.data, g, &lr);
        cr_assert_eq(lr, simcse_lr_at(&c, s), "optimizer step %d used lr %.9g, the schedule says %.9g", s, lr,
                     simcse_lr_at(&c, s));
        cr_assert_eq(o.step, s + 1);
    }
    cr_assert_eq(simcse_lr_at(&c, 0), 0.0);
    free(g);
    simcse_optimizer_free(&o);
    simcse_model_free(&m);
}

static int should_decay(const char *name) {
    size_t n = strlen(name);
    int bias = n > 5 && !strcmp(name + n - 5, ".bias");
    return !bias && !strstr(name, "LayerNorm");
}

Test(optimizer, decay_mask_spares_biases_and_layernorm) {
    simcse_model m;
    tiny_model(&m);
    int decayed = 0, spared = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const simcse_param *t = &m.tensors[i];
        cr_assert_eq(!t->no_decay, should_decay(t->name), "%s: no_decay = %d", t->name, t->no_decay);
        decayed += !t->no_decay;
        spared += t->no_decay;
    }
    /* 3 embeddings + 6 matrices a layer + the MLP head; 2 LayerNorm + 6 biases + 4 LN a layer + MLP bias */
    cr_assert_eq(decayed, 3 + 6 * 2 + 1);
    cr_assert_eq(spared, 2 + 10 * 2 + 1);

    /* One step with zero gradients: AdamW's update is 0, so only the decay moves weights. */
    for (size_t i = 0; i < m.n_floats; i++) m.data[i] = 1.0f;
    simcse_adamw_config c = {
        .lr = 0.5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .total_steps = 10};
    simcse_optimizer o;
    cr_assert_eq(simcse_optimizer_init(&o, simcse_backend_cpu(), &m, &c), 0);
    float *g = calloc(m.n_floats, sizeof(float));
    simcse_optimizer_step(&o, m.data, g, NULL);
    for (int i = 0; i < m.n_tensors; i++) {
        const simcse_param *t = &m.tensors[i];
        float want = should_decay(t->name) ? 1.0f - 0.5f * 0.1f : 1.0f;
        for (size_t k = 0; k < t->numel; k++)
            cr_assert_eq(m.data[t->offset + k], want, "%s[%zu]: %.8g after one decay step, want %.8g", t->name, k,
                         m.data[t->offset + k], want);
    }
    free(g);
    simcse_optimizer_free(&o);
    simcse_model_free(&m);
}

/* One step from zero moments with every gradient element = gval; returns the norm. */
static double first_moment_after_one_step(double max_norm, float gval, double *m0, size_t *n_out) {
    simcse_model m;
    tiny_model(&m);
    simcse_adamw_config c = {
        .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = max_norm, .total_steps = 10};
    simcse_optimizer o;
    cr_assert_eq(simcse_optimizer_init(&o, simcse_backend_cpu(), &m, &c), 0);
    float *g = malloc(m.n_floats * sizeof(float));
    for (size_t i = 0; i < m.n_floats; i++) g[i] = gval;
    double norm = simcse_optimizer_step(&o, m.data, g, NULL);
    *m0 = o.m[0]; /* CPU backend: the moments are host memory */
    for (size_t i = 1; i < m.n_floats; i++) cr_assert_eq(o.m[i], o.m[0]);
    *n_out = m.n_floats;
    free(g);
    simcse_optimizer_free(&o);
    simcse_model_free(&m);
    return norm;
}

Test(optimizer, clipping_scales_by_max_norm_over_the_norm) {
    size_t n;
    double m0;
    /* norm = 0.5 sqrt(n) > 1: the gradient is scaled by 1 / (norm + 1e-6) */
    double norm = first_moment_after_one_step(1.0, 0.5f, &m0, &n);
    double want_norm = 0.5 * sqrt((double)n);
    cr_assert(want_norm > 2, "the test needs a norm well above max_grad_norm");
    cr_assert(fabs(norm - want_norm) < 1e-9 * want_norm, "norm %.9g reported, want %.9g (before clipping)", norm,
              want_norm);
    double want_m = 0.1 * 0.5 * (1.0 / (want_norm + 1e-6));
    cr_assert(fabs(m0 - want_m) < 1e-6 * want_m, "first moment %.9g, want (1 - beta1) x clipped grad = %.9g", m0,
              want_m);
    /* a norm just under max_grad_norm is left alone */
    first_moment_after_one_step(1.25 * want_norm, 0.5f, &m0, &n);
    cr_assert(fabs(m0 - 0.05) < 1e-6 * 0.05, "norm at 0.8 x max_grad_norm: first moment %.9g, want 0.05", m0);
    norm = first_moment_after_one_step(1e6, 0.5f, &m0, &n);
    cr_assert(fabs(m0 - 0.05) < 1e-6 * 0.05, "unclipped first moment %.9g, want 0.05", m0);
    /* max_grad_norm 0 turns clipping off */
    norm = first_moment_after_one_step(0, 3.0f, &m0, &n);
    cr_assert(fabs(m0 - 0.3) < 1e-6 * 0.3, "clipping off: first moment %.9g, want 0.3", m0);
    cr_assert(fabs(norm - 3.0 * sqrt((double)n)) < 1e-9 * norm);
}
