/* The run directory (train --output): what may be written where, and how a
 * resumed run finds it as the uninterrupted run would have left it.
 *
 * A run's directory holds the export, metrics.jsonl and checkpoint/. A fresh
 * run refuses a non-empty directory unless told to overwrite, and refuses, even
 * then, the model's or the tokenizer's own directory or any directory holding
 * one of them (it would replace their config.json and model.safetensors). On
 * resume, the files a kill left behind are dealt with: temporaries
 * (NAME.tmp<pid>) are removed, and metrics.jsonl is cut back to the
 * checkpoint's step, so that every step and evaluation appears once. */
#ifndef SIMCSE_RUN_DIR_H
#define SIMCSE_RUN_DIR_H

#include <stdint.h>

#include "simcse/train_config.h"

/* Refuses (one-line error, -1) an output directory that is, or contains, the
 * model directory (cfg->model, or the directory of cfg->model_config) or the
 * tokenizer directory, whatever overwrite says; and, when neither resume nor
 * overwrite is set, one that exists and is not empty. */
int simcse_run_dir_check(const char *out_dir, const simcse_train_config *cfg, int overwrite, int resume);

/* Removes the temporaries of interrupted atomic writes (NAME.tmp<digits>) from
 * the directories the export writes: out_dir, 1_Pooling/, 2_Dense/. */
int simcse_run_dir_clean_temporaries(const char *out_dir);

/* Keeps the records of metrics_path up to and including step last_step (all
 * records with "step" <= last_step; none when last_step < 0) and cuts the rest:
 * what a killed run logged after its checkpoint, which the resumed run logs
 * again. A missing file is not an error. */
int simcse_run_dir_cut_metrics(const char *metrics_path, int64_t last_step);

#endif
