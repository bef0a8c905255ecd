/* Resumable training state: OUT/checkpoint/ holds the current weights
 * (model.safetensors), the AdamW moments (optimizer.safetensors), and
 * trainer_state.json (step, data position, best evaluation, the full training
 * config). The directory is written beside the old one and swapped in with
 * renames, so a crash at any moment leaves one complete checkpoint. */
#ifndef SIMCSE_CHECKPOINT_H
#define SIMCSE_CHECKPOINT_H

#include <stdint.h>

#include "simcse/data.h"
#include "simcse/model.h"
#include "simcse/train_config.h"

typedef struct {
    int64_t step;            /* optimizer steps done */
    simcse_data_pos pos;     /* where the next batch starts */
    double best_metric;      /* best evaluation so far (-inf: none) */
    int64_t best_step;
    int64_t n_examples;      /* dataset size, checked on resume */
} simcse_train_state;

/* weights: host copy of the current parameters (model layout); m, v: AdamW moments (host). */
int simcse_checkpoint_save(const char *out_dir, const simcse_model *weights, const float *m, const float *v,
                           const simcse_train_state *st, const simcse_train_config *cfg);
/* Reads OUT/checkpoint: config into cfg, state into st. */
int simcse_checkpoint_load_config(const char *out_dir, simcse_train_config *cfg, simcse_train_state *st);
/* Loads weights (into an initialised model of the right shape) and moments (n_floats each). */
int simcse_checkpoint_load_tensors(const char *out_dir, simcse_model *weights, float *m, float *v);

#endif
