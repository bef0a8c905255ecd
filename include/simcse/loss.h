/* One contrastive forward + backward over a packed batch of F fields x B sentences
 * (F = 2: views or pairs, F = 3: with hard negatives): pool, MLP head, InfoNCE
 * with the first field as anchors and the other fields as candidates. */
#ifndef SIMCSE_LOSS_H
#define SIMCSE_LOSS_H

#include "simcse/encoder.h"

typedef struct {
    simcse_pooler pooler;
    int apply_mlp;               /* SimCSE: the cls pooler trains through the MLP head */
    float temperature;
    float hard_negative_weight;
} simcse_loss_config;

/* Forward, loss and backward; gradients accumulate (scaled by grad_scale) into
 * the encoder's gradient buffer. Returns 0 and the mean loss in *loss. */
int simcse_contrastive_step(simcse_encoder *e, const simcse_packed *batch, int B, int F,
                            const simcse_loss_config *lc, float grad_scale, float *loss);

#endif
