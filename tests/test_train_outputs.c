/* What the trainer itself shows a user: the metrics.jsonl it logs and the directory
 * it exports. Each test holds one observable against a value the test derives on its
 * own (from the public APIs, never from the trainer's internals), so a trainer that
 * drops a setting is caught even when every kernel under it is right:
 * - the logged loss with a hard-negative weight (learning rate 0: same weights at
 *   every step, so only the weight can change the loss);
 * - the logged token counts of a shuffled epoch, against the seed's permutation;
 * - two steps with learning rate 0 and dropout on (the masks must change per step);
 * - the logged learning rates, against the schedule function;
 * - the exported directory read back as sentence-transformers reads it: modules.json,
 *   1_Pooling/config.json, 2_Dense/config.json and the Dense safetensors key names,
 *   and the embedding those files define against the pooler the run asked for;
 * - mlp_only_train at evaluation: the logged dev score equals the score of [CLS]
 *   without the MLP head.
 * Runs are tiny (1-layer, width-16 BERT with bert-base-uncased's vocabulary). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/checkpoint.h"
#include "simcse/common.h"
#include "simcse/data.h"
#include "simcse/embedder.h"
#include "simcse/encoder.h"
#include "simcse/eval.h"
#include "simcse/loss.h"
#include "simcse/model.h"
#include "simcse/optimizer.h"
#include "simcse/safetensors.h"
#include "simcse/tokenizer.h"
#include "simcse/train_config.h"
#include "simcse/trainer.h"
#include "test_tmpdir.h"
#include "test_util.h"

#define MAX_LOGGED 64

/* The per-step lines of a metrics.jsonl, and the last evaluation line. */
typedef struct {
    int n;
    double loss[MAX_LOGGED], lr[MAX_LOGGED];
    int tokens[MAX_LOGGED], batch[MAX_LOGGED];
    int n_eval;
    double last_eval_stsb;
} logged;

static void read_metrics(const char *out_dir, logged *lg) {
    memset(lg, 0, sizeof *lg);
    char *path = simcse_path_join(out_dir, "metrics.jsonl");
    size_t n;
    char *text = simcse_read_file(path, &n);
    cr_assert_not_null(text, "%s", simcse_last_error());
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cr_assert_not_null(j, "%s: not JSON: %s", path, line);
        cJSON *loss = cJSON_GetObjectItem(j, "loss"), *ev = cJSON_GetObjectItem(j, "eval_stsb_dev_spearman");
        if (loss) {
            cr_assert(lg->n < MAX_LOGGED);
            lg->loss[lg->n] = loss->valuedouble;
            lg->lr[lg->n] = cJSON_GetObjectItem(j, "lr")->valuedouble;
            lg->tokens[lg->n] = cJSON_GetObjectItem(j, "tokens")->valueint;
            lg->batch[lg->n] = cJSON_GetObjectItem(j, "batch")->valueint;
            cr_assert_eq(cJSON_GetObjectItem(j, "step")->valueint, lg->n + 1, "%s: steps out of order", path);
            lg->n++;
        }
        if (ev) {
            lg->last_eval_stsb = ev->valuedouble;
            lg->n_eval++;
        }
        cJSON_Delete(j);
    }
    free(text);
    free(path);
}

static void write_text(const char *name, const char *text) {
    char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static const char *bert_tokenizer_dir(void) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/tokenizers/bert-base-uncased", test_data_dir());
    return dir;
}

/* A tiny BERT config and a run of max_steps on train_name (in the scratch dir);
 * learning rate 0 unless the test says otherwise, no evaluation, every step logged. */
static void base_config(simcse_train_config *c, const char *train_name, int max_steps) {
    write_text("model.json",
               "{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 16, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 2, \"intermediate_size\": 32, \"max_position_embeddings\": 32,"
               " \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\","
               " \"hidden_dropout_prob\": 0.1, \"attention_probs_dropout_prob\": 0.1, \"pad_token_id\": 0}");
    simcse_train_config_defaults(c);
    snprintf(c->model_config, sizeof c->model_config, "%s/model.json", g_dir);
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s", bert_tokenizer_dir());
    snprintf(c->train_file, sizeof c->train_file, "%s/%s", g_dir, train_name);
    c->batch_size = 8;
    c->max_steps = max_steps;
    c->learning_rate = 0;
    c->warmup_steps = 0;
    c->eval_tasks[0] = 0;
    c->logging_steps = 1;
    c->max_seq_len = 16;
    c->seed = 42;
    strcpy(c->precision, "fp32");
}

static void train_into(const simcse_train_config *c, const char *out_name, logged *lg) {
    char *out = tmp_path(out_name);
    simcse_train_options o = {.output_dir = out, .device = "cpu", .quiet = 1};
    cr_assert_eq(simcse_train(c, &o, NULL), 0, "%s", simcse_last_error());
    if (lg) read_metrics(out, lg);
    free(out);
}

/* 40 sentences of 1 to 12 words, so a batch's token count tells which sentences it holds. */
static void write_varied_sentences(const char *name) {
    char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    static const char *words[] = {"cats",  "sleep", "on",   "warm", "red", "mats",
                                  "while", "dogs",  "bark", "at",   "the", "moon"};
    for (int i = 0; i < 40; i++) {
        int n = (i * 7) % 12 + 1;
        for (int w = 0; w < n; w++) fprintf(f, "%s%s", w ? " " : "", words[(i + w) % 12]);
        fputc('\n', f);
    }
    fclose(f);
    free(p);
}

/* ---- the loss options reach the step ---- */

TestSuite(train_outputs, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120);

Test(train_outputs, hard_negative_weight_raises_the_logged_loss) {
    char *p = tmp_path("nli.csv");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("sent0,sent1,hard_neg\n", f);
    for (int i = 0; i < 16; i++)
        fprintf(f, "a man plays song %d,someone makes music %d,a woman sleeps in room %d\n", i, i, i * 3);
    fclose(f);
    free(p);
    simcse_train_config c;
    base_config(&c, "nli.csv", 4);
    c.hidden_dropout = c.attention_dropout = 0; /* the same batch gives the same loss */
    c.hard_negative_weight = 0;
    logged plain, weighted;
    train_into(&c, "plain", &plain);
    c.hard_negative_weight = 2.0;
    train_into(&c, "weighted", &weighted);
    cr_assert_eq(plain.n, 4);
    cr_assert_eq(weighted.n, 4);
    /* Adding w > 0 to each anchor's own hard-negative logit can only raise the
     * cross-entropy; with lr 0 every other input of the step is the same. */
    for (int s = 0; s < 4; s++)
        cr_assert(weighted.loss[s] > plain.loss[s] + 1e-3,
                  "step %d: loss %.6f with hard_negative_weight 2, %.6f "
                  "without",
                  s + 1, weighted.loss[s], plain.loss[s]);
}

/* ---- the logged loss is the loss of the batch the seed picks ---- */

Test(train_outputs, logged_loss_is_the_steps_loss_of_the_seeds_batch_with_its_masks) {
    /* lr 0: the exported model is the one every step saw. Each step's loss, recomputed
     * here from the public pieces (the seed's permutation, the tokenizer, packing,
     * dropout masks of (seed, step), the cls pooler + MLP at temperature 0.1), must be
     * the logged one. */
    write_varied_sentences("varied.txt");
    simcse_train_config c;
    base_config(&c, "varied.txt", 2);
    c.temperature = 0.1; /* not the default: the run must pass its own on */
    strcpy(c.pooler, "cls");
    logged lg;
    train_into(&c, "out", &lg);
    cr_assert_eq(lg.n, 2);
    char *out = tmp_path("out"), *path = tmp_path("varied.txt");
    simcse_model m;
    cr_assert_eq(simcse_model_load(&m, out), 0, "%s", simcse_last_error());
    simcse_tokenizer *tok = simcse_tokenizer_load(out);
    cr_assert_not_null(tok);
    simcse_dataset *d = simcse_dataset_open(path, SIMCSE_DATA_TEXT, NULL);
    cr_assert_not_null(d);
    int64_t perm[40];
    simcse_shuffle_permutation(42, 0, 40, perm);
    simcse_encoder *e = simcse_encoder_create(simcse_backend_cpu(), &m, 16, 16 * 16, 1);
    cr_assert_not_null(e);
    simcse_loss_config lc = {.pooler = SIMCSE_POOL_CLS, .apply_mlp = 1, .temperature = 0.1f};
    simcse_text_batch text = {0};
    simcse_token_batch tb;
    cr_assert_eq(simcse_token_batch_init(&tb, 16, 16), 0);
    for (int s = 0; s < 2; s++) {
        cr_assert_eq(simcse_dataset_get_batch(d, perm + 8 * s, 8, &text), 0);
        cr_assert_eq(simcse_pack_batch(tok, &text, 0, &tb), 0);
        simcse_packed p = {.n_seq = tb.n_seq,
                           .T = tb.T,
                           .ids = tb.ids,
                           .pos_ids = tb.pos_ids,
                           .offsets = tb.offsets,
                           .row_ids = tb.row_ids};
        simcse_encoder_zero_grads(e);
        simcse_encoder_set_dropout(e, 1, 42, (uint32_t)s);
        float loss;
        cr_assert_eq(test_step_once(e, &p, 8, 2, &lc, &loss), 0, "%s", simcse_last_error());
        cr_assert(fabs(lg.loss[s] - loss) <= 2e-6 * (1 + fabs(loss)), "step %d: logged loss %.6f, the batch's %.6f",
                  s + 1, lg.loss[s], loss);
        cr_assert_eq(lg.tokens[s], tb.T);
    }
    simcse_token_batch_free(&tb);
    simcse_text_batch_free(&text);
    simcse_encoder_free(e);
    simcse_dataset_close(d);
    simcse_tokenizer_free(tok);
    simcse_model_free(&m);
    free(out);
    free(path);
}

/* ---- resume past an epoch boundary ---- */

Test(train_outputs, resume_in_the_second_epoch_logs_the_uninterrupted_losses) {
    write_varied_sentences("varied.txt");
    simcse_train_config c;
    base_config(&c, "varied.txt", 9); /* 5 batches an epoch: stop in epoch 1 at index 8 */
    c.learning_rate = 1e-3;
    c.warmup_steps = 2;
    logged whole, resumed;
    train_into(&c, "whole", &whole);
    char *out = tmp_path("parts");
    simcse_train_options o = {.output_dir = out, .device = "cpu", .quiet = 1, .stop_after = 6};
    cr_assert_eq(simcse_train(&c, &o, NULL), 0, "%s", simcse_last_error());
    simcse_train_config saved;
    simcse_train_state st;
    cr_assert_eq(simcse_checkpoint_load_config(out, &saved, &st), 0, "%s", simcse_last_error());
    cr_assert(st.step == 6 && st.pos.epoch == 1 && st.pos.index == 8, "checkpoint at step %lld, epoch %llu, index %lld",
              (long long)st.step, (unsigned long long)st.pos.epoch, (long long)st.pos.index);
    o.stop_after = 0;
    o.resume = 1;
    cr_assert_eq(simcse_train(&saved, &o, NULL), 0, "%s", simcse_last_error());
    read_metrics(out, &resumed);
    cr_assert_eq(resumed.n, 9);
    for (int s = 0; s < 9; s++) {
        cr_assert_eq(resumed.tokens[s], whole.tokens[s], "step %d: %d tokens after resume, %d uninterrupted", s + 1,
                     resumed.tokens[s], whole.tokens[s]);
        cr_assert_eq(resumed.loss[s], whole.loss[s], "step %d: loss %.6f after resume, %.6f uninterrupted", s + 1,
                     resumed.loss[s], whole.loss[s]);
        cr_assert_eq(resumed.lr[s], whole.lr[s]);
    }
    free(out);
}

/* ---- the data order follows the seed ---- */

/* Token counts the shuffled stream must log: 2 views x the batch's encoded lengths. */
static void expected_tokens(uint64_t seed, int steps, int *want) {
    char *path = tmp_path("varied.txt");
    simcse_dataset *d = simcse_dataset_open(path, SIMCSE_DATA_TEXT, NULL);
    cr_assert_not_null(d, "%s", simcse_last_error());
    simcse_tokenizer *tok = simcse_tokenizer_load(bert_tokenizer_dir());
    cr_assert_not_null(tok, "%s", simcse_last_error());
    const int64_t n = simcse_dataset_size(d);
    cr_assert_eq(n, 40);
    int64_t perm[40];
    int32_t ids[16];
    for (int s = 0; s < steps; s++) {
        int per_epoch = 40 / 8;
        simcse_shuffle_permutation(seed, (uint64_t)(s / per_epoch), n, perm);
        want[s] = 0;
        for (int b = 0; b < 8; b++) {
            simcse_example ex;
            cr_assert_eq(simcse_dataset_get(d, perm[(s % per_epoch) * 8 + b], &ex), 0);
            want[s] += 2 * simcse_tokenizer_encode(tok, ex.text[0], ex.len[0], 16, ids);
        }
    }
    simcse_tokenizer_free(tok);
    simcse_dataset_close(d);
    free(path);
}

Test(train_outputs, shuffled_epochs_log_the_token_counts_of_the_seeds_permutation) {
    write_varied_sentences("varied.txt");
    simcse_train_config c;
    base_config(&c, "varied.txt", 10); /* two epochs of 5 batches */
    int want42[10], want7[10];
    expected_tokens(42, 10, want42);
    expected_tokens(7, 10, want7);
    cr_assert(memcmp(want42, want7, sizeof want42) != 0, "the two seeds must give different orders");
    logged a, b;
    train_into(&c, "seed42", &a);
    c.seed = 7;
    train_into(&c, "seed7", &b);
    cr_assert_eq(a.n, 10);
    cr_assert_eq(b.n, 10);
    for (int s = 0; s < 10; s++) {
        cr_assert_eq(a.batch[s], 8);
        cr_assert_eq(a.tokens[s], want42[s], "seed 42 step %d: %d tokens logged, its permutation has %d", s + 1,
                     a.tokens[s], want42[s]);
        cr_assert_eq(b.tokens[s], want7[s], "seed 7 step %d: %d tokens logged, its permutation has %d", s + 1,
                     b.tokens[s], want7[s]);
    }
}

/* ---- dropout masks change with the step ---- */

Test(train_outputs, two_steps_at_lr_0_with_dropout_log_different_losses) {
    /* Eight copies of one sentence: every permutation is the same batch, and lr 0
     * keeps the weights, so only the dropout masks can change the loss. */
    char text[8 * 64] = "";
    for (int i = 0; i < 8; i++) strcat(text, "the same sentence comes back every time\n");
    write_text("same.txt", text);
    simcse_train_config c;
    base_config(&c, "same.txt", 3);
    logged off, on;
    c.hidden_dropout = c.attention_dropout = 0;
    train_into(&c, "off", &off);
    cr_assert_eq(off.n, 3);
    cr_assert_eq(off.loss[0], off.loss[1], "without dropout the steps must agree (lr 0): %.6f vs %.6f", off.loss[0],
                 off.loss[1]);
    cr_assert_eq(off.loss[1], off.loss[2]);
    c.hidden_dropout = c.attention_dropout = 0.1;
    train_into(&c, "on", &on);
    cr_assert_eq(on.n, 3);
    cr_assert(on.loss[0] != on.loss[1] && on.loss[1] != on.loss[2] && on.loss[0] != on.loss[2],
              "dropout masks repeat across steps: losses %.6f %.6f %.6f", on.loss[0], on.loss[1], on.loss[2]);
}

/* ---- the logged learning rate is the schedule's ---- */

Test(train_outputs, logged_learning_rates_follow_warmup_then_linear_decay) {
    write_varied_sentences("varied.txt");
    simcse_train_config c;
    base_config(&c, "varied.txt", 8);
    c.learning_rate = 1e-3;
    c.warmup_steps = 2;
    logged lg;
    train_into(&c, "out", &lg);
    cr_assert_eq(lg.n, 8);
    /* transformers' get_linear_schedule_with_warmup(warmup 2, total 8) at steps 0..7 */
    const double want[8] = {0, 0.5, 1, 5.0 / 6, 4.0 / 6, 3.0 / 6, 2.0 / 6, 1.0 / 6};
    for (int s = 0; s < 8; s++)
        cr_assert(fabs(lg.lr[s] - 1e-3 * want[s]) <= 1e-5 * 1e-3, "step %d: lr %.6g logged, schedule %.6g", s + 1,
                  lg.lr[s], 1e-3 * want[s]);
}

/* ---- the export, read back as sentence-transformers reads it ---- */

typedef struct {
    int n_modules, max_seq_length;
    char type[3][64], path[3][32];
    int pool_cls, pool_mean; /* 1_Pooling/config.json */
    int has_dense;
    float *dense_w, *dense_b; /* 2_Dense/model.safetensors: linear.weight [H, H], linear.bias [H] */
} st_model;

static cJSON *read_json(const char *dir, const char *name) {
    char *p = simcse_path_join(dir, name);
    size_t n;
    char *text = simcse_read_file(p, &n);
    cr_assert_not_null(text, "%s", simcse_last_error());
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "%s: not JSON", p);
    free(text);
    free(p);
    return j;
}

static int json_true(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsBool(v), "1_Pooling/config.json: %s is not a boolean", key);
    return cJSON_IsTrue(v);
}

/* sentence_transformers.SentenceTransformer(dir): modules.json names the modules in
 * order, each loads from its path; Pooling reads its modes from config.json, Dense its
 * shape and activation from config.json and its weights as the state dict of
 * self.linear (keys linear.weight, linear.bias). */
static void st_read(const char *dir, int H, st_model *st) {
    memset(st, 0, sizeof *st);
    cJSON *mods = read_json(dir, "modules.json");
    cr_assert(cJSON_IsArray(mods));
    st->n_modules = cJSON_GetArraySize(mods);
    cr_assert(st->n_modules >= 2 && st->n_modules <= 3, "modules.json: %d modules", st->n_modules);
    for (int i = 0; i < st->n_modules; i++) {
        cJSON *m = cJSON_GetArrayItem(mods, i);
        cr_assert_eq(cJSON_GetObjectItem(m, "idx")->valueint, i);
        snprintf(st->type[i], sizeof st->type[i], "%s", cJSON_GetObjectItem(m, "type")->valuestring);
        snprintf(st->path[i], sizeof st->path[i], "%s", cJSON_GetObjectItem(m, "path")->valuestring);
    }
    cJSON_Delete(mods);
    cr_assert_str_eq(st->type[0], "sentence_transformers.models.Transformer");
    cJSON *sb = read_json(dir, "sentence_bert_config.json");
    st->max_seq_length = cJSON_GetObjectItem(sb, "max_seq_length")->valueint;
    cJSON_Delete(sb);
    cr_assert_str_eq(st->path[0], "");
    cr_assert_str_eq(st->type[1], "sentence_transformers.models.Pooling");
    char *pdir = simcse_path_join(dir, st->path[1]);
    cJSON *pool = read_json(pdir, "config.json");
    free(pdir);
    cr_assert_eq(cJSON_GetObjectItem(pool, "word_embedding_dimension")->valueint, H);
    st->pool_cls = json_true(pool, "pooling_mode_cls_token");
    st->pool_mean = json_true(pool, "pooling_mode_mean_tokens");
    cr_assert(!json_true(pool, "pooling_mode_max_tokens") && !json_true(pool, "pooling_mode_mean_sqrt_len_tokens"));
    cr_assert_eq(st->pool_cls + st->pool_mean, 1, "exactly one pooling mode must be on");
    cJSON_Delete(pool);
    if (st->n_modules < 3) return;
    st->has_dense = 1;
    cr_assert_str_eq(st->type[2], "sentence_transformers.models.Dense");
    char *ddir = simcse_path_join(dir, st->path[2]);
    cJSON *d = read_json(ddir, "config.json");
    cr_assert_eq(cJSON_GetObjectItem(d, "in_features")->valueint, H);
    cr_assert_eq(cJSON_GetObjectItem(d, "out_features")->valueint, H);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "bias")));
    cr_assert_str_eq(cJSON_GetObjectItem(d, "activation_function")->valuestring, "torch.nn.modules.activation.Tanh");
    cJSON_Delete(d);
    char *wpath = simcse_path_join(ddir, "model.safetensors");
    simcse_st_file *sf;
    cr_assert_eq(simcse_st_open(wpath, &sf), 0, "%s", simcse_last_error());
    cr_assert_eq(sf->n_tensors, 2, "2_Dense/model.safetensors: only linear.weight and linear.bias");
    const simcse_st_tensor *w = simcse_st_find(sf, "linear.weight"), *b = simcse_st_find(sf, "linear.bias");
    cr_assert(w && b, "2_Dense/model.safetensors lacks linear.weight / linear.bias (nn.Linear's state dict)");
    cr_assert(w->ndim == 2 && w->shape[0] == H && w->shape[1] == H && b->ndim == 1 && b->shape[0] == H);
    st->dense_w = malloc((size_t)H * H * sizeof(float));
    st->dense_b = malloc((size_t)H * sizeof(float));
    cr_assert_eq(simcse_st_read_f32(w, st->dense_w, (size_t)H * H), 0);
    cr_assert_eq(simcse_st_read_f32(b, st->dense_b, (size_t)H), 0);
    simcse_st_close(sf);
    free(wpath);
    free(ddir);
}

static const char *const probe[4] = {"a cat sat on the mat", "dogs bark at night", "the weather is nice today",
                                     "one more sentence with several words in it"};

/* Embeddings of the probe sentences by the exported model with a given pooler. */
static float *embed_with(const char *dir, simcse_pooler pooler, int apply_mlp, int *H_out) {
    simcse_model m;
    cr_assert_eq(simcse_model_load(&m, dir), 0, "%s", simcse_last_error());
    simcse_tokenizer *tok = simcse_tokenizer_load(dir);
    cr_assert_not_null(tok, "%s", simcse_last_error());
    simcse_encoder *e = simcse_encoder_create(simcse_backend_cpu(), &m, 4, 4 * 16, 0);
    cr_assert_not_null(e);
    simcse_embedder em;
    cr_assert_eq(simcse_embedder_init(&em, tok, e, &m, pooler, apply_mlp, 16, 4), 0);
    const int H = m.cfg.hidden;
    float *out = malloc((size_t)4 * H * sizeof(float));
    cr_assert_eq(simcse_embedder_embed(&em, probe, 4, out), 0, "%s", simcse_last_error());
    simcse_embedder_free(&em);
    simcse_encoder_free(e);
    simcse_tokenizer_free(tok);
    simcse_model_free(&m);
    *H_out = H;
    return out;
}

/* The embedding sentence-transformers computes from the files: Transformer, Pooling
 * (CLS token or mean), then Dense (tanh(W x + b)) when modules.json lists it. */
static float *st_embed(const char *dir, st_model *st) {
    char *cfg = simcse_path_join(dir, "config.json");
    simcse_config mc;
    cr_assert_eq(simcse_config_load(cfg, &mc), 0, "%s", simcse_last_error());
    free(cfg);
    int H = mc.hidden;
    st_read(dir, H, st);
    float *x = embed_with(dir, st->pool_cls ? SIMCSE_POOL_CLS_BEFORE_POOLER : SIMCSE_POOL_AVG, 0, &H);
    if (!st->has_dense) return x;
    float *y = malloc((size_t)4 * H * sizeof(float));
    for (int s = 0; s < 4; s++)
        for (int o = 0; o < H; o++) {
            double a = st->dense_b[o];
            for (int i = 0; i < H; i++) a += (double)st->dense_w[o * H + i] * x[s * H + i];
            y[s * H + o] = (float)tanh(a);
        }
    free(x);
    return y;
}

/* Trains 2 steps with pooler / mlp_only_train and checks the exported directory:
 * its sentence-transformers reading gives the embedding of (want_pooler, want_mlp). */
static void check_export(const char *pooler, int mlp_only_train, simcse_pooler want_pooler, int want_mlp,
                         int want_modules) {
    write_varied_sentences("varied.txt");
    simcse_train_config c;
    base_config(&c, "varied.txt", 2);
    c.learning_rate = 1e-3; /* the MLP head moves from its initialisation */
    snprintf(c.pooler, sizeof c.pooler, "%s", pooler);
    c.mlp_only_train = mlp_only_train;
    train_into(&c, "out", NULL);
    char *out = tmp_path("out");
    st_model st;
    float *got = st_embed(out, &st);
    cr_assert_eq(st.n_modules, want_modules, "pooler %s, mlp_only_train %d: modules.json lists %d modules, want %d",
                 pooler, mlp_only_train, st.n_modules, want_modules);
    cr_assert_eq(st.max_seq_length, c.max_seq_len, "sentence_bert_config.json: max_seq_length %d, trained with %d",
                 st.max_seq_length, c.max_seq_len);
    int H;
    float *want = embed_with(out, want_pooler, want_mlp, &H);
    for (int i = 0; i < 4 * H; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])),
                  "pooler %s: sentence-transformers' reading of the export gives %g at %d, the trained pooler %g",
                  pooler, got[i], i, want[i]);
    if (st.has_dense) {
        /* the Dense weights are the exported MLP head, pooler.dense */
        simcse_model m;
        cr_assert_eq(simcse_model_load(&m, out), 0, "%s", simcse_last_error());
        const simcse_param *w = simcse_model_find(&m, "pooler.dense.weight");
        cr_assert_eq(memcmp(st.dense_w, m.data + w->offset, (size_t)H * H * sizeof(float)), 0);
        simcse_model_free(&m);
    }
    free(st.dense_w);
    free(st.dense_b);
    free(got);
    free(want);
    free(out);
}

Test(train_outputs, export_cls_with_mlp_reads_back_as_pooling_plus_tanh_dense) {
    check_export("cls", 0, SIMCSE_POOL_CLS, 1, 3);
}
Test(train_outputs, export_cls_mlp_only_train_reads_back_without_dense) {
    check_export("cls", 1, SIMCSE_POOL_CLS_BEFORE_POOLER, 0, 2);
}
Test(train_outputs, export_cls_before_pooler_reads_back_as_cls_token_pooling) {
    check_export("cls_before_pooler", 0, SIMCSE_POOL_CLS_BEFORE_POOLER, 0, 2);
}
Test(train_outputs, export_avg_reads_back_as_mean_pooling) { check_export("avg", 0, SIMCSE_POOL_AVG, 0, 2); }

/* ---- mlp_only_train at evaluation ---- */

Test(train_outputs, mlp_only_train_evaluates_cls_without_the_mlp, .timeout = 240) {
    write_varied_sentences("varied.txt");
    simcse_train_config c;
    base_config(&c, "varied.txt", 1);
    c.learning_rate = 1e-3;
    strcpy(c.pooler, "cls");
    c.mlp_only_train = 1;
    strcpy(c.eval_tasks, "stsb");
    c.eval_batch_size = 64;
    logged lg;
    train_into(&c, "out", &lg);
    cr_assert_eq(lg.n_eval, 2, "evaluations before and after the step");
    /* The exported model is the evaluated one (the only evaluation after a step). */
    char *out = tmp_path("out");
    double score[2];
    for (int with_mlp = 0; with_mlp < 2; with_mlp++) {
        simcse_model m;
        cr_assert_eq(simcse_model_load(&m, out), 0, "%s", simcse_last_error());
        simcse_tokenizer *tok = simcse_tokenizer_load(out);
        cr_assert_not_null(tok);
        simcse_encoder *e = simcse_encoder_create(simcse_backend_cpu(), &m, 64, 64 * 16, 0);
        simcse_embedder em;
        cr_assert_eq(simcse_embedder_init(&em, tok, e, &m, with_mlp ? SIMCSE_POOL_CLS : SIMCSE_POOL_CLS_BEFORE_POOLER,
                                          with_mlp, 16, 64),
                     0);
        simcse_eval_result res;
        cr_assert_eq(simcse_eval_sts(test_data_dir(), "stsb", SIMCSE_SPLIT_DEV, m.cfg.hidden, 64, simcse_embedder_embed,
                                     &em, &res),
                     0, "%s", simcse_last_error());
        score[with_mlp] = res.avg_spearman;
        simcse_embedder_free(&em);
        simcse_encoder_free(e);
        simcse_tokenizer_free(tok);
        simcse_model_free(&m);
    }
    free(out);
    cr_assert(fabs(score[0] - score[1]) > 1e-3, "the MLP head must change the score for this test to see it");
    cr_assert(fabs(lg.last_eval_stsb - score[0]) <= 1e-4,
              "logged dev Spearman %.4f; [CLS] without the MLP gives "
              "%.4f, with it %.4f",
              lg.last_eval_stsb, score[0], score[1]);
}

/* ---- encode/eval positions for RoBERTa ---- */

Test(train_outputs, embedder_gives_roberta_positions_from_padding_idx_plus_1) {
    /* RoBERTa's position ids start at padding_idx + 1 = 2 (create_position_ids_from_input_ids);
     * training packs them so, and the embedder (encode, eval) must too. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tokenizers/roberta-base", test_data_dir());
    simcse_tokenizer *tok = simcse_tokenizer_load(dir);
    cr_assert_not_null(tok, "%s", simcse_last_error());
    simcse_config mc = {.arch = SIMCSE_ARCH_ROBERTA,
                        .vocab_size = simcse_tokenizer_vocab_size(tok),
                        .hidden = 16,
                        .layers = 1,
                        .heads = 2,
                        .intermediate = 32,
                        .max_positions = 34,
                        .type_vocab_size = 1,
                        .pad_token_id = 1,
                        .layer_norm_eps = 1e-5f};
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &mc), 0, "%s", simcse_last_error());
    simcse_model_init_random(&m, 5);
    simcse_encoder *e = simcse_encoder_create(simcse_backend_cpu(), &m, 4, 4 * 16, 0);
    cr_assert_not_null(e);
    simcse_embedder em;
    cr_assert_eq(simcse_embedder_init(&em, tok, e, &m, SIMCSE_POOL_AVG, 0, 16, 4), 0);
    const int H = 16;
    float got[4 * 16], want[4 * 16];
    cr_assert_eq(simcse_embedder_embed(&em, probe, 4, got), 0, "%s", simcse_last_error());
    int32_t ids[64], pos[64], offs[5];
    int T = 0;
    for (int s = 0; s < 4; s++) {
        offs[s] = T;
        int n = simcse_tokenizer_encode(tok, probe[s], strlen(probe[s]), 16, ids + T);
        cr_assert(n > 2);
        for (int j = 0; j < n; j++) pos[T + j] = mc.pad_token_id + 1 + j;
        T += n;
    }
    offs[4] = T;
    simcse_packed p = {.n_seq = 4, .T = T, .ids = ids, .pos_ids = pos, .offsets = offs};
    cr_assert_eq(simcse_encoder_forward(e, &p, SIMCSE_POOL_AVG, 0), 0);
    simcse_encoder_output_to_host(e, want);
    for (int i = 0; i < 4 * H; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-6f * (1 + fabsf(want[i])), "embedding %d: %g, positions from 2: %g", i,
                  got[i], want[i]);
    simcse_embedder_free(&em);
    simcse_encoder_free(e);
    simcse_model_free(&m);
    simcse_tokenizer_free(tok);
}
