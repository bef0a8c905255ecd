/* The encoder graph: BERT/RoBERTa forward and backward over token-packed
 * batches, the SimCSE poolers and MLP head, written once against the op
 * interface of include/simcse/ops.h (so it runs on the CPU and the GPU).
 *
 * All activations a backward pass needs are allocated once, for a capacity of
 * max_seqs sequences and max_tokens tokens, when the encoder is created. */
#ifndef SIMCSE_ENCODER_H
#define SIMCSE_ENCODER_H

#include <stdint.h>

#include "simcse/model.h"
#include "simcse/ops.h"

/* A token-packed batch in host memory: n_seq sequences, T tokens. */
typedef struct {
    int n_seq, T;
    const int32_t *ids, *pos_ids, *type_ids; /* [T]; type_ids may be NULL (all 0) */
    const int32_t *offsets;                  /* [n_seq + 1] */
    const int32_t *row_ids;                  /* [T] dropout rows (simcse_token_batch.row_ids); NULL: packed index */
} simcse_packed;

typedef struct simcse_encoder simcse_encoder;

/* Copies the model's weights to the backend. with_grads allocates gradient
 * buffers and the activations a backward pass needs. */
simcse_encoder *simcse_encoder_create(simcse_backend *be, const simcse_model *m, int max_seqs, int max_tokens,
                                      int with_grads);
void simcse_encoder_free(simcse_encoder *e);
/* The backend bytes simcse_encoder_create allocates for a model of n_params floats:
 * *weights (parameters, and gradients with with_grads) and *acts (activations and
 * backward scratch). In double, so that shapes past any machine do not overflow. */
void simcse_encoder_bytes(const simcse_config *c, size_t n_params, double max_seqs, double max_tokens, int with_grads,
                          double *weights, double *acts);

/* Dropout for the next forward: seed and step select the masks; p from config.json
 * (hidden and attention probabilities); train = 0 disables dropout. */
void simcse_encoder_set_dropout(simcse_encoder *e, int train, uint64_t seed, uint32_t step);

/* Forward pass and pooling. apply_mlp: pass the pooled vector through the MLP head
 * (SimCSE: always in training with the cls pooler; at evaluation unless mlp_only_train).
 * out: backend pointer to [n_seq, H] or NULL to keep it inside (simcse_encoder_output). */
int simcse_encoder_forward(simcse_encoder *e, const simcse_packed *batch, simcse_pooler pooler, int apply_mlp);
/* The pooled output of the last forward, a backend pointer [n_seq, H]. */
float *simcse_encoder_output(simcse_encoder *e);
/* Same, copied to host memory. */
void simcse_encoder_output_to_host(simcse_encoder *e, float *out);

/* Backward from d_out [n_seq, H] (backend pointer) to parameter gradients, which
 * ACCUMULATE into the gradient buffer (zero it with simcse_encoder_zero_grads). */
void simcse_encoder_backward(simcse_encoder *e, const float *d_out);
/* Called during the backward each time a group of parameter gradients is final
 * (the MLP head, then each layer from the last down, then the embeddings: together
 * every parameter once), with backend pointers into the gradient buffer, so a
 * caller can start reducing it across ranks while the backward goes on. NULL: none. */
typedef void (*simcse_grads_ready_fn)(void *ctx, float *grads, size_t n);
void simcse_encoder_set_grads_ready(simcse_encoder *e, simcse_grads_ready_fn fn, void *ctx);
void simcse_encoder_zero_grads(simcse_encoder *e);

/* Backend pointers to the parameters and gradients (model layout, n_floats each). */
float *simcse_encoder_params(simcse_encoder *e);
float *simcse_encoder_grads(simcse_encoder *e);
size_t simcse_encoder_n_params(const simcse_encoder *e);
/* Copies the backend's weights back into the model (for saving). */
void simcse_encoder_download(simcse_encoder *e, simcse_model *m);
simcse_backend *simcse_encoder_backend(simcse_encoder *e);
int simcse_encoder_hidden_size(const simcse_encoder *e);
/* the capacity it was created for */
int simcse_encoder_max_tokens(const simcse_encoder *e);
int simcse_encoder_max_seqs(const simcse_encoder *e);
/* Hidden state k of the last forward (0 = embeddings, l+1 = output of layer l),
 * [T, H] copied to host memory; for tests and debugging. */
void simcse_encoder_hidden_to_host(simcse_encoder *e, int k, float *out);

#endif
