/* Resumable training state: OUT/checkpoint/ holds the current weights
 * (model.safetensors), the AdamW moments (optimizer.safetensors),
 * trainer_state.json (step, data position, best evaluation, ranks, backend) and
 * train_config.json (the full training config). The directory is written as
 * checkpoint.tmp/ and swapped in with two renames (the previous one passing
 * through checkpoint.old/), so a kill at any moment leaves one complete
 * checkpoint, which simcse_checkpoint_recover() puts back in place. */
#ifndef SIMCSE_CHECKPOINT_H
#define SIMCSE_CHECKPOINT_H

#include <stdint.h>

#include "simcse/data.h"
#include "simcse/model.h"
#include "simcse/train_config.h"

typedef struct {
    int64_t step;        /* optimizer steps done */
    simcse_data_pos pos; /* where the next batch starts */
    double best_metric;  /* best evaluation so far (-inf: none) */
    int64_t best_step;
    int64_t n_examples; /* dataset size, checked on resume */
    int world_size;     /* ranks that wrote it (0: not recorded), checked on resume */
    char backend[32];   /* "cpu", "cuda", "cuda-bf16" ("": not recorded), checked on resume */
} simcse_train_state;

/* weights: host copy of the current parameters (model layout); m, v: AdamW moments (host). */
int simcse_checkpoint_save(const char *out_dir, const simcse_model *weights, const float *m, const float *v,
                           const simcse_train_state *st, const simcse_train_config *cfg);
/* After a kill: drops an unfinished checkpoint.tmp/ and a stale checkpoint.old/
 * (any names inside), or moves checkpoint.old/ back when the kill fell between
 * the swap's renames. Links are removed, never followed. Idempotent, and safe to
 * run from several ranks at once. */
int simcse_checkpoint_recover(const char *out_dir);
/* Removes checkpoint/, checkpoint.tmp/ and checkpoint.old/ (a fresh run in a used directory). */
int simcse_checkpoint_remove(const char *out_dir);
/* Reads OUT/checkpoint: config into cfg, state into st. */
int simcse_checkpoint_load_config(const char *out_dir, simcse_train_config *cfg, simcse_train_state *st);
/* Loads weights (into an initialised model of the right shape) and moments (n_floats each). */
int simcse_checkpoint_load_tensors(const char *out_dir, simcse_model *weights, float *m, float *v);

#endif
