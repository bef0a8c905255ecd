/* Training configuration: one table describes every key (type, place, range,
 * meaning), and loading, --set overrides, validation, saving and --help all
 * walk that table, so a new key is one line. */
#include "simcse/train_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/data_dir.h"

typedef enum { K_STR, K_INT, K_I64, K_F64, K_BOOL } key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t off, size;
    double lo, hi; /* inclusive range for numbers */
    const char *help;
} key_def;

#define S(f) K_STR, offsetof(simcse_train_config, f), sizeof(((simcse_train_config *)0)->f), 0, 0
#define I(f, lo, hi) K_INT, offsetof(simcse_train_config, f), sizeof(int), lo, hi
#define L(f, lo, hi) K_I64, offsetof(simcse_train_config, f), sizeof(int64_t), lo, hi
#define F(f, lo, hi) K_F64, offsetof(simcse_train_config, f), sizeof(double), lo, hi
#define B(f) K_BOOL, offsetof(simcse_train_config, f), sizeof(int), 0, 1

static const key_def keys[] = {
    {"model", S(model), "Hugging Face model directory to fine-tune"},
    {"model_config", S(model_config), "config.json of a model to initialise randomly (when model is empty)"},
    {"tokenizer", S(tokenizer), "tokenizer directory (default: model)"},
    {"train_file", S(train_file), "training data: text, one sentence per line (.gz ok), or CSV sent0,sent1[,hard_neg]"},
    {"eval_tasks", S(eval_tasks), "tasks evaluated during training on their dev split (stsb, sickr)"},
    {"pooler", S(pooler), "cls, cls_before_pooler, avg, avg_first_last, avg_top2"},
    {"precision", S(precision), "fp32 or bf16 (bf16 on the GPU only)"},
    {"lr_scheduler", S(lr_scheduler), "linear (decay to 0 after warmup) or constant"},
    {"data_dir", S(data_dir), "shared data directory for evaluation (default $SIMCSE_DATA_DIR or ../shared/data)"},
    {"max_seq_len", I(max_seq_len, 3, 4096), "tokens per sentence including special tokens"},
    {"batch_size", I(batch_size, 2, 1 << 20), "sentences (or pairs/triplets) per step"},
    {"learning_rate", F(learning_rate, 0, 1), "peak learning rate"},
    {"num_epochs", I(num_epochs, 1, 100000), "passes over the training data"},
    {"max_steps", L(max_steps, -1, 1e15), "stop after this many steps (-1: epochs decide; 0 is an error)"},
    {"temperature", F(temperature, 1e-4, 100), "softmax temperature of the contrastive loss"},
    {"mlp_only_train", B(mlp_only_train), "use the MLP head in training only (cls_before_pooler at evaluation)"},
    {"hard_negative_weight", F(hard_negative_weight, -100, 100), "added to each anchor's own hard-negative logit"},
    {"seed", L(seed, 0, 9.2e18), "seed of the initialisation, shuffling and dropout"},
    {"eval_steps", L(eval_steps, 0, 1e15), "evaluate every N steps (0: at the end only)"},
    {"logging_steps", L(logging_steps, 1, 1e15), "log every N steps"},
    {"save_steps", L(save_steps, 0, 1e15), "write a resumable training state every N steps (0: at the end)"},
    {"warmup_steps", L(warmup_steps, 0, 1e15), "linear warmup steps"},
    {"weight_decay", F(weight_decay, 0, 10), "decoupled weight decay (not on biases and LayerNorm)"},
    {"max_grad_norm", F(max_grad_norm, 0, 1e6), "gradient-norm clipping (0: off)"},
    {"adam_beta1", F(adam_beta1, 0, 0.999999), "AdamW beta1"},
    {"adam_beta2", F(adam_beta2, 0, 0.999999999), "AdamW beta2"},
    {"adam_epsilon", F(adam_epsilon, 0, 1), "AdamW epsilon"},
    {"hidden_dropout", F(hidden_dropout, -1, 0.99), "dropout on hidden states (-1: config.json's)"},
    {"attention_dropout", F(attention_dropout, -1, 0.99), "dropout on attention probabilities (-1: config.json's)"},
    {"skip_malformed", B(skip_malformed), "skip malformed CSV rows (counted) instead of stopping"},
    {"eval_batch_size", I(eval_batch_size, 1, 1 << 20), "sentences per evaluation batch"},
    {"grad_cache_chunk", I(grad_cache_chunk, 0, 1 << 20),
     "gradient caching: examples per chunk (0: off); memory is bounded by the chunk"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void simcse_train_config_defaults(simcse_train_config *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->pooler, "cls");
    strcpy(c->precision, "bf16");
    strcpy(c->lr_scheduler, "linear");
    strcpy(c->eval_tasks, "stsb");
    c->max_seq_len = 32;
    c->batch_size = 64;
    c->learning_rate = 3e-5;
    c->num_epochs = 1;
    c->max_steps = -1;
    c->temperature = 0.05;
    c->mlp_only_train = 1;
    c->seed = 42;
    c->eval_steps = 125;
    c->logging_steps = 10;
    c->save_steps = 0;
    c->max_grad_norm = 1.0;
    c->adam_beta1 = 0.9;
    c->adam_beta2 = 0.999;
    c->adam_epsilon = 1e-8;
    c->hidden_dropout = -1;
    c->attention_dropout = -1;
    c->skip_malformed = 1;
    c->eval_batch_size = 128;
}

static const key_def *find_key(const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

static int set_number(simcse_train_config *c, const key_def *k, double v, const char *where) {
    if (!isfinite(v) || v < k->lo || v > k->hi)
        return simcse_error("%s: key '%s': value %.10g out of range [%.10g, %.10g]", where, k->name, v, k->lo, k->hi);
    char *p = (char *)c + k->off;
    switch (k->type) {
    case K_INT:
    case K_BOOL:
        if (v != floor(v)) return simcse_error("%s: key '%s': expected an integer, got %g", where, k->name, v);
        *(int *)p = (int)v;
        break;
    case K_I64:
        if (v != floor(v)) return simcse_error("%s: key '%s': expected an integer, got %g", where, k->name, v);
        *(int64_t *)p = (int64_t)v;
        break;
    case K_F64: *(double *)p = v; break;
    default: break;
    }
    return 0;
}

static int set_string(simcse_train_config *c, const key_def *k, const char *s, const char *where) {
    if (strlen(s) >= k->size)
        return simcse_error("%s: key '%s': value longer than %zu characters", where, k->name, k->size - 1);
    strcpy((char *)c + k->off, s);
    return 0;
}

int simcse_train_config_load(simcse_train_config *c, const char *path) {
    size_t n;
    char *text = simcse_read_file(path, &n);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at ? (long)(at - text) : -1;
        free(text);
        return simcse_error("%s: malformed JSON near byte %ld", path, off);
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) rc = simcse_error("%s: expected a JSON object of training keys", path);
    for (cJSON *it = root->child; rc == 0 && it; it = it->next) {
        if (it->string && it->string[0] == '_') continue; /* "_comment" and similar */
        const key_def *k = find_key(it->string);
        if (!k) {
            rc = simcse_error("%s: unknown key '%s' (simcse train --help lists the keys)", path, it->string);
            break;
        }
        if (k->type == K_STR) {
            if (!cJSON_IsString(it))
                rc = simcse_error("%s: key '%s': expected a string", path, k->name);
            else
                rc = set_string(c, k, it->valuestring, path);
        } else if (k->type == K_BOOL && cJSON_IsBool(it)) {
            *(int *)((char *)c + k->off) = cJSON_IsTrue(it);
        } else if (cJSON_IsNumber(it)) {
            rc = set_number(c, k, it->valuedouble, path);
        } else {
            rc = simcse_error("%s: key '%s': expected a %s", path, k->name, k->type == K_BOOL ? "boolean" : "number");
        }
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

int simcse_train_config_set(simcse_train_config *c, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq) return simcse_error("--set %s: expected key=value", assignment);
    char name[64];
    size_t kl = (size_t)(eq - assignment);
    if (kl == 0 || kl >= sizeof name) return simcse_error("--set %s: bad key", assignment);
    memcpy(name, assignment, kl);
    name[kl] = 0;
    const char *val = eq + 1;
    const key_def *k = find_key(name);
    if (!k) return simcse_error("--set: unknown key '%s' (simcse train --help lists the keys)", name);
    if (k->type == K_STR) return set_string(c, k, val, "--set");
    if (k->type == K_BOOL) {
        if (!strcmp(val, "true"))
            val = "1";
        else if (!strcmp(val, "false"))
            val = "0";
    }
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (end == val || *end || errno) return simcse_error("--set: key '%s': '%s' is not a number", name, val);
    return set_number(c, k, v, "--set");
}

int simcse_train_config_validate(const simcse_train_config *c) {
    static const char *poolers[] = {"cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2"};
    int ok = 0;
    for (int i = 0; i < 5; i++) ok |= !strcmp(c->pooler, poolers[i]);
    if (!ok) return simcse_error("config: key 'pooler': unknown pooler '%s'", c->pooler);
    if (strcmp(c->precision, "fp32") && strcmp(c->precision, "bf16"))
        return simcse_error("config: key 'precision': expected fp32 or bf16, got '%s'", c->precision);
    if (strcmp(c->lr_scheduler, "linear") && strcmp(c->lr_scheduler, "constant"))
        return simcse_error("config: key 'lr_scheduler': expected linear or constant, got '%s'", c->lr_scheduler);
    if (!c->model[0] && !c->model_config[0])
        return simcse_error("config: set 'model' (a Hugging Face directory) or 'model_config' (random init)");
    if (!c->model[0] && !c->tokenizer[0])
        return simcse_error("config: key 'tokenizer': required when the model is randomly initialised");
    if (!c->train_file[0]) return simcse_error("config: key 'train_file' is required");
    /* 0 is refused rather than read as "no limit" (the Hugging Face Trainer's reading)
     * or as "no steps" (a run that exports an untrained model): -1 says "epochs decide" */
    if (c->max_steps == 0)
        return simcse_error("config: key 'max_steps': 0 would train nothing; give a positive number of steps, or -1 "
                            "to let num_epochs decide");
    return 0;
}

char *simcse_train_config_to_json(const simcse_train_config *c) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        const char *p = (const char *)c + k->off;
        switch (k->type) {
        case K_STR: cJSON_AddStringToObject(o, k->name, p); break;
        case K_INT: cJSON_AddNumberToObject(o, k->name, *(const int *)p); break;
        case K_I64: cJSON_AddNumberToObject(o, k->name, (double)*(const int64_t *)p); break;
        case K_F64: cJSON_AddNumberToObject(o, k->name, *(const double *)p); break;
        case K_BOOL: cJSON_AddBoolToObject(o, k->name, *(const int *)p); break;
        }
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* Keys that decide when things are logged, evaluated or saved, never what a
 * step computes: the only ones a resumed run may change. */
static const char *const run_only_keys[] = {"logging_steps", "eval_steps", "save_steps"};
const char *const simcse_train_config_resume_free = "logging_steps, eval_steps, save_steps";

static void format_value(const key_def *k, const simcse_train_config *c, char *buf, size_t cap) {
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case K_STR: snprintf(buf, cap, "\"%s\"", p); break;
    case K_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case K_I64: snprintf(buf, cap, "%lld", (long long)*(const int64_t *)p); break;
    case K_F64: snprintf(buf, cap, "%.17g", *(const double *)p); break;
    case K_BOOL: snprintf(buf, cap, "%s", *(const int *)p ? "true" : "false"); break;
    }
}

static int same_value(const key_def *k, const simcse_train_config *a, const simcse_train_config *b) {
    const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
    switch (k->type) {
    case K_STR: return strcmp(pa, pb) == 0;
    case K_INT:
    case K_BOOL: return *(const int *)pa == *(const int *)pb;
    case K_I64: return *(const int64_t *)pa == *(const int64_t *)pb;
    case K_F64: return *(const double *)pa == *(const double *)pb; /* saved with 17 digits: exact */
    }
    return 0;
}

int simcse_train_config_diff(const simcse_train_config *saved, const simcse_train_config *now, char *out, size_t cap) {
    int n = 0;
    size_t len = 0;
    if (cap) out[0] = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        int free_key = 0;
        for (size_t j = 0; j < sizeof run_only_keys / sizeof run_only_keys[0]; j++)
            free_key |= !strcmp(k->name, run_only_keys[j]);
        if (free_key || same_value(k, saved, now)) continue;
        char a[160], b[160];
        format_value(k, saved, a, sizeof a);
        format_value(k, now, b, sizeof b);
        if (len < cap) {
            int w = snprintf(out + len, cap - len, "%s%s (checkpoint %s, now %s)", n ? ", " : "", k->name, a, b);
            len = w < 0 ? cap : len + (size_t)w;
        }
        n++;
    }
    return n;
}

void simcse_train_config_print_keys(void *file) {
    FILE *f = file;
    simcse_train_config d;
    simcse_train_config_defaults(&d);
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        const char *p = (const char *)&d + k->off;
        char def[64];
        switch (k->type) {
        case K_STR: snprintf(def, sizeof def, "\"%s\"", p); break;
        case K_INT: snprintf(def, sizeof def, "%d", *(const int *)p); break;
        case K_I64: snprintf(def, sizeof def, "%lld", (long long)*(const int64_t *)p); break;
        case K_F64: snprintf(def, sizeof def, "%g", *(const double *)p); break;
        case K_BOOL: snprintf(def, sizeof def, "%s", *(const int *)p ? "true" : "false"); break;
        }
        fprintf(f, "  %-22s %-10s %s\n", k->name, def, k->help);
    }
}

int simcse_train_config_expand_data(simcse_train_config *c) {
    const char *dir = c->data_dir[0] ? c->data_dir : simcse_data_dir();
    char *fields[] = {c->model, c->model_config, c->tokenizer, c->train_file};
    const char *names[] = {"model", "model_config", "tokenizer", "train_file"};
    for (int i = 0; i < 4; i++) {
        if (strncmp(fields[i], "$DATA/", 6) != 0) continue;
        char buf[sizeof c->model];
        int n = snprintf(buf, sizeof buf, "%s/%s", dir, fields[i] + 6);
        if (n < 0 || (size_t)n >= sizeof buf) return simcse_error("config: key '%s': expanded path too long", names[i]);
        memcpy(fields[i], buf, (size_t)n + 1);
    }
    return 0;
}
