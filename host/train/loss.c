/* The SimCSE objective on top of the encoder. Field 0 holds the anchors;
 * fields 1..F-1 are the candidates, laid out contiguously after them, so the
 * pooled output [F*B, H] splits into anchors [B, H] and candidates [(F-1)B, H]
 * without copies, and so do their gradients. */
#include "simcse/loss.h"

#include "simcse/common.h"

int simcse_contrastive_step(simcse_encoder *e, const simcse_packed *batch, int B, int F,
                            const simcse_loss_config *lc, float grad_scale, float *loss) {
    if (F < 2 || F > 3 || batch->n_seq != F * B)
        return simcse_error("contrastive batch: %d sequences for %d fields x %d sentences", batch->n_seq, F, B);
    if (simcse_encoder_forward(e, batch, lc->pooler, lc->apply_mlp) != 0) return -1;
    simcse_backend *be = simcse_encoder_backend(e);
    const int H = simcse_encoder_hidden_size(e);
    const float *z = simcse_encoder_output(e);
    float *dz = simcse_encoder_scratch(e, (size_t)F * B * H);
    be->infonce(be, loss, dz, dz + (size_t)B * H, z, z + (size_t)B * H, B, (F - 1) * B, H, lc->temperature,
                lc->hard_negative_weight, grad_scale);
    simcse_encoder_backward(e, dz);
    return 0;
}
