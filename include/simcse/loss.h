/* The SimCSE objective on top of the encoder, on one rank or many, with or
 * without gradient caching.
 *
 * A step sees this rank's B examples of F fields as V = max(2, F) views
 * (unsupervised: the same sentence twice; pairs; triplets with hard negatives),
 * packed view-major: [view 0: B sequences, view 1: B sequences, ...]. View 0
 * holds the anchors, the other views the candidates. With G ranks, the
 * candidates of all ranks are all-gathered, each rank scores its own anchors
 * against all G x B candidates (or 2 G x B with hard negatives), and the
 * candidates' gradients are reduce-scattered back to their owners, so G ranks of
 * B compute exactly the loss and gradient of one rank with G x B. With gradient
 * caching the examples come in chunks: every chunk is embedded, the loss and the
 * embeddings' gradients are computed for the whole batch, and each chunk is run
 * again (the same dropout masks: rows are global) and back-propagated from its
 * cached gradient; memory is bounded by the chunk. */
#ifndef SIMCSE_LOSS_H
#define SIMCSE_LOSS_H

#include "simcse/comm.h"
#include "simcse/encoder.h"

typedef struct {
    simcse_pooler pooler;
    int apply_mlp; /* SimCSE: the cls pooler trains through the MLP head */
    float temperature;
    float hard_negative_weight;
} simcse_loss_config;

typedef struct simcse_step simcse_step;

/* The backend bytes simcse_step_create allocates (with_comm: a communicator of `ranks`). */
double simcse_step_bytes(int hidden, int max_B, int views, int ranks, int with_comm);
/* comm may be NULL (one rank). max_B: the most examples per rank and step. */
simcse_step *simcse_step_create(simcse_encoder *e, const simcse_loss_config *lc, simcse_comm *comm, int max_B,
                                int views);
void simcse_step_free(simcse_step *s);

/* Forward, loss, backward over n_chunks packed chunks (chunk k: V views x counts[k]
 * examples, view-major; the counts sum to B, equal on every rank). Parameter
 * gradients ACCUMULATE in the encoder and are summed over ranks; *loss is the global
 * mean loss. One chunk = no gradient caching. */
int simcse_step_run(simcse_step *s, const simcse_packed *chunks, const int *counts, int n_chunks, float *loss);

#endif
