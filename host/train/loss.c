/* The whole SimCSE training step, simcse_step (see include/simcse/loss.h), not only
 * its loss: 1. every chunk through the encoder's forward; 2. the candidates gathered
 * over ranks, the InfoNCE loss and the embeddings' gradients (the backend's infonce
 * op), the candidates' gradients reduce-scattered back; 3. each chunk's backward from
 * its slice of those gradients (forward run again under gradient caching), the
 * parameter gradients all-reduced bucket by bucket while the last backward runs.
 * One file because the three parts share the buffers below and one order of
 * collectives that every rank must follow. Buffers, all on the backend:
 *   z   [V*B, H]   this rank's embeddings, view-major (chunks copied into place)
 *   dz  [V*B, H]   their gradients
 *   cand, dcand [(V-1)*G*B, H]  the gathered candidates and their gradients
 * Without a communicator the candidates are z's own views 1.. and no copy is made. */
#include "simcse/loss.h"

#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"

struct simcse_step {
    simcse_encoder *e;
    simcse_backend *be;
    simcse_loss_config lc;
    simcse_comm *comm;
    int max_B, V, H;
    float *z, *dz, *cand, *dcand, *dchunk;
    int reduce_failed;
};

static void reduce_bucket(void *ctx, float *grads, size_t n) {
    simcse_step *s = ctx;
    if (!s->reduce_failed && s->comm->all_reduce_sum_start(s->comm, grads, n) != 0) s->reduce_failed = 1;
}

double simcse_step_bytes(int hidden, int max_B, int views, int ranks, int with_comm) {
    const double zb = (double)views * max_B * hidden * sizeof(float);
    const double cb = (double)(views - 1) * ranks * max_B * hidden * sizeof(float);
    return 3 * zb + (with_comm ? 2 * cb : 0); /* z, dz, dchunk; cand, dcand */
}

simcse_step *simcse_step_create(simcse_encoder *e, const simcse_loss_config *lc, simcse_comm *comm, int max_B,
                                int views) {
    simcse_step *s = simcse_xcalloc(1, sizeof *s);
    s->e = e;
    s->be = simcse_encoder_backend(e);
    s->lc = *lc;
    s->comm = comm;
    s->max_B = max_B;
    s->V = views;
    s->H = simcse_encoder_hidden_size(e);
    const int G = comm ? comm->size : 1;
    const size_t zb = (size_t)views * max_B * s->H * sizeof(float);
    const size_t cb = (size_t)(views - 1) * G * max_B * s->H * sizeof(float);
    s->z = s->be->alloc(s->be, zb);
    s->dz = s->z ? s->be->alloc(s->be, zb) : NULL;
    s->dchunk = s->dz ? s->be->alloc(s->be, zb) : NULL;
    if (s->dchunk && comm) {
        s->cand = s->be->alloc(s->be, cb);
        s->dcand = s->cand ? s->be->alloc(s->be, cb) : NULL;
    }
    if (!s->dchunk || (comm && !s->dcand)) {
        simcse_error_prefix("allocating the contrastive step's embedding buffers (%d views x %d x %d ranks)", views,
                            max_B, G);
        simcse_step_free(s);
        return NULL;
    }
    return s;
}

void simcse_step_free(simcse_step *s) {
    if (!s) return;
    float *bufs[] = {s->z, s->dz, s->cand, s->dcand, s->dchunk};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) s->be->free(s->be, bufs[i]);
    free(s);
}

/* Copies a chunk's rows [V * n, H] to or from their places in a [V * B, H] buffer. */
static void chunk_rows(simcse_step *s, float *all, float *chunk, int B, int base, int n, int to_all) {
    const size_t row = (size_t)s->H * sizeof(float);
    for (int v = 0; v < s->V; v++) {
        float *a = all + ((size_t)v * B + base) * s->H, *c = chunk + (size_t)v * n * s->H;
        if (to_all)
            s->be->copy(s->be, a, c, (size_t)n * row);
        else
            s->be->copy(s->be, c, a, (size_t)n * row);
    }
}

int simcse_step_run(simcse_step *s, const simcse_packed *chunks, const int *counts, int n_chunks, float *loss) {
    simcse_backend *be = s->be;
    const int V = s->V, H = s->H, G = s->comm ? s->comm->size : 1, r = s->comm ? s->comm->rank : 0;
    int B = 0;
    for (int k = 0; k < n_chunks; k++) {
        if (chunks[k].n_seq != V * counts[k])
            return simcse_error("step: chunk %d has %d sequences for %d views x %d examples", k, chunks[k].n_seq, V,
                                counts[k]);
        B += counts[k];
    }
    if (B > s->max_B) return simcse_error("step: %d examples exceed the step's capacity of %d", B, s->max_B);
    if (B * G < 2) return simcse_error("step: a contrastive batch needs at least 2 examples");

    /* 1. embed every chunk */
    for (int k = 0, base = 0; k < n_chunks; base += counts[k], k++) {
        if (simcse_encoder_forward(s->e, &chunks[k], s->lc.pooler, s->lc.apply_mlp) != 0) return -1;
        chunk_rows(s, s->z, simcse_encoder_output(s->e), B, base, counts[k], 1);
    }

    /* 2. loss and the embeddings' gradients; 1/G so that the sum over ranks is the
     *    gradient of the global mean */
    const size_t blk = (size_t)B * H;
    const int C = (V - 1) * G * B;
    float *cand = s->z + blk, *dcand = s->dz + blk;
    /* with a communicator the collectives run even for one rank, so that path is
     * exercised (and timed) on a single GPU */
    if (s->comm) {
        for (int v = 1; v < V; v++)
            if (s->comm->all_gather(s->comm, s->z + v * blk, s->cand + (size_t)(v - 1) * G * blk, blk) != 0) return -1;
        cand = s->cand;
        dcand = s->dcand;
    }
    be->infonce(be, loss, s->dz, dcand, s->z, cand, B, C, H, s->lc.temperature, s->lc.hard_negative_weight,
                1.0f / (float)G, r * B, V == 3);
    if (s->comm) {
        for (int v = 1; v < V; v++)
            if (s->comm->reduce_scatter_sum(s->comm, s->dcand + (size_t)(v - 1) * G * blk, s->dz + v * blk, blk) != 0)
                return -1;
        double l = *loss;
        if (s->comm->all_reduce_host_f64(s->comm, &l, 1) != 0) return -1;
        *loss = (float)(l / G);
    }

    /* 3. backward: the last forward's activations serve when there is one chunk;
     *    with several, each chunk is run again with the same masks. During the last
     *    backward each layer's gradients start their reduction across ranks as soon
     *    as they are final. */
    s->reduce_failed = 0;
    for (int k = 0, base = 0; k < n_chunks; base += counts[k], k++) {
        const float *d = s->dz;
        if (n_chunks > 1) {
            if (simcse_encoder_forward(s->e, &chunks[k], s->lc.pooler, s->lc.apply_mlp) != 0) return -1;
            chunk_rows(s, s->dz, s->dchunk, B, base, counts[k], 0);
            d = s->dchunk;
        }
        if (s->comm && k == n_chunks - 1) simcse_encoder_set_grads_ready(s->e, reduce_bucket, s);
        simcse_encoder_backward(s->e, d);
        simcse_encoder_set_grads_ready(s->e, NULL, NULL);
    }
    if (s->comm && (s->reduce_failed || s->comm->wait(s->comm) != 0)) return -1;
    return 0;
}
