/* The SimCSE training loop: data -> packed batch -> contrastive step -> AdamW,
 * with logging, evaluation on the dev split (best model kept, as SimCSE selects
 * on STS-B dev), resumable checkpoints and the final export. */
#ifndef SIMCSE_TRAINER_H
#define SIMCSE_TRAINER_H

#include <stdint.h>

#include "simcse/comm.h"
#include "simcse/train_config.h"

typedef struct {
    const char *output_dir;
    const char *device; /* cpu, cuda or auto */
    int gpu;            /* CUDA device number (the local rank) */
    int resume;         /* continue from output_dir/checkpoint */
    int64_t stop_after; /* > 0: stop (as if killed) after this step's checkpoint; for tests */
    int quiet;          /* no progress line */
    simcse_comm *comm;  /* several ranks (NULL: one); rank 0 alone logs, evaluates and writes */
} simcse_train_options;

typedef struct {
    int64_t steps;
    double final_loss;
    double eval_before, eval_best; /* average dev Spearman x100 (NaN: not evaluated) */
    int64_t best_step;
} simcse_train_summary;

int simcse_train(const simcse_train_config *cfg, const simcse_train_options *opt, simcse_train_summary *out);

#endif
