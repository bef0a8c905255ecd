/* Training configuration: every hyperparameter of SimCSE's training script has
 * a key. Read from a JSON file in configs/, overridden with --set key=value,
 * validated with range checks, and saved beside each checkpoint. */
#ifndef SIMCSE_TRAIN_CONFIG_H
#define SIMCSE_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char model[512];        /* HF model directory to fine-tune, or "" with model_config for random init */
    char model_config[512]; /* config.json for a randomly initialised model */
    char tokenizer[512];    /* tokenizer directory (default: model) */
    char train_file[512];   /* text (unsupervised) or CSV sent0,sent1[,hard_neg] */
    char eval_tasks[128];   /* evaluation during training, e.g. "stsb" (dev split) */
    char pooler[32];        /* cls, cls_before_pooler, avg, avg_first_last, avg_top2 */
    char precision[8];      /* fp32 or bf16 (GPU) */
    char lr_scheduler[16];  /* linear or constant */
    char data_dir[512];     /* shared data directory ("" = $SIMCSE_DATA_DIR or ../shared/data) */
    int max_seq_len;
    int batch_size;
    double learning_rate;
    int num_epochs;
    int64_t max_steps; /* > 0 stops there (overrides epochs) */
    double temperature;
    int mlp_only_train;
    double hard_negative_weight;
    int64_t seed;
    int64_t eval_steps; /* 0 = only at the end */
    int64_t logging_steps;
    int64_t save_steps; /* training-state checkpoints for --resume; 0 = only at the end */
    int64_t warmup_steps;
    double weight_decay;
    double max_grad_norm; /* 0 disables clipping */
    double adam_beta1, adam_beta2, adam_epsilon;
    double hidden_dropout;    /* < 0: from config.json */
    double attention_dropout; /* < 0: from config.json */
    int skip_malformed;       /* malformed CSV rows: 1 skip (counted), 0 fatal */
    int eval_batch_size;
    int grad_cache_chunk; /* > 0: gradient caching with chunks of this many examples */
} simcse_train_config;

void simcse_train_config_defaults(simcse_train_config *c);
/* Loads a JSON object of keys; unknown keys and bad values are errors naming the file and key. */
int simcse_train_config_load(simcse_train_config *c, const char *path);
/* "key=value" from the command line. */
int simcse_train_config_set(simcse_train_config *c, const char *assignment);
int simcse_train_config_validate(const simcse_train_config *c);
/* Replaces a leading "$DATA/" in the path keys by the data directory (data_dir,
 * else $SIMCSE_DATA_DIR, else ../shared/data), so configs need no absolute paths. */
int simcse_train_config_expand_data(simcse_train_config *c);
/* The keys whose change alters what a training step computes: all but
 * simcse_train_config_resume_free ("logging_steps, eval_steps, save_steps").
 * Returns how many of them differ between saved and now, and lists each as
 * "key (checkpoint X, now Y)" in out (cut at cap). */
int simcse_train_config_diff(const simcse_train_config *saved, const simcse_train_config *now, char *out, size_t cap);
extern const char *const simcse_train_config_resume_free;
/* JSON text of every key (caller frees). */
char *simcse_train_config_to_json(const simcse_train_config *c);
/* Lists the keys with their defaults and meaning (for --help). */
void simcse_train_config_print_keys(void *file);

#endif
