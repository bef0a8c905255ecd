/* Training: the full model + loss against finite differences (dropout on, so the
 * regenerated masks are checked too), config parsing and its errors, and resume:
 * a run stopped after step k and resumed gives bit-identical losses and weights. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simcse/checkpoint.h"
#include "simcse/common.h"
#include "simcse/encoder.h"
#include "simcse/loss.h"
#include "simcse/model.h"
#include "simcse/rng.h"
#include "simcse/safetensors.h"
#include "simcse/train_config.h"
#include "simcse/trainer.h"
#include "test_util.h"

static simcse_config tiny_config(void) {
    simcse_config c = {.arch = SIMCSE_ARCH_BERT,
                       .vocab_size = 64,
                       .hidden = 16,
                       .layers = 2,
                       .heads = 2,
                       .intermediate = 32,
                       .max_positions = 32,
                       .type_vocab_size = 2,
                       .pad_token_id = 0,
                       .layer_norm_eps = 1e-12f,
                       .hidden_dropout = 0.1f,
                       .attn_dropout = 0.1f};
    return c;
}

/* Loss of the packed batch at the model's current weights (dropout fixed by seed/step). */
static double loss_at(simcse_encoder *e, const simcse_packed *p, int B, int F, const simcse_loss_config *lc) {
    float loss;
    simcse_encoder_zero_grads(e);
    cr_assert_eq(test_step_once(e, p, B, F, lc, &loss), 0, "%s", simcse_last_error());
    return loss;
}

static void fd_check(simcse_pooler pooler, int F, float hn_weight) {
    simcse_config c = tiny_config();
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), 0);
    simcse_model_init_random(&m, 7);
    /* non-trivial LayerNorm and biases, larger weights so gradients are not tiny */
    simcse_rng_stream rs = {99, 1, 0};
    for (size_t i = 0; i < m.n_floats; i++) m.data[i] += 0.05f * simcse_rng_normal(&rs);
    const int B = 3, S = B * F;
    const int lens[9] = {4, 6, 3, 5, 7, 4, 3, 6, 5};
    int32_t ids[64], pos[64], offs[10];
    int T = 0;
    for (int s = 0; s < S; s++) {
        offs[s] = T;
        for (int j = 0; j < lens[s]; j++, T++) {
            ids[T] = j == 0 ? 2 : (int32_t)((s * 7 + j * 13) % 60 + 4);
            pos[T] = j;
        }
    }
    offs[S] = T;
    simcse_packed p = {.n_seq = S, .T = T, .ids = ids, .pos_ids = pos, .offsets = offs};
    simcse_backend *be = simcse_backend_cpu();
    simcse_encoder *e = simcse_encoder_create(be, &m, S, T, 1);
    cr_assert_not_null(e);
    simcse_encoder_set_dropout(e, 1, 1234, 5);
    simcse_loss_config lc = {.pooler = pooler,
                             .apply_mlp = pooler == SIMCSE_POOL_CLS,
                             .temperature = 0.5f,
                             .hard_negative_weight = hn_weight};
    loss_at(e, &p, B, F, &lc);
    float *grad = malloc(m.n_floats * sizeof(float));
    memcpy(grad, simcse_encoder_grads(e), m.n_floats * sizeof(float));
    float *w = simcse_encoder_params(e);
    /* a few elements of every tensor (the word embedding: rows that occur) */
    int checked = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const simcse_param *t = &m.tensors[i];
        if (!lc.apply_mlp && strstr(t->name, "pooler")) continue;
        for (int r = 0; r < 3; r++) {
            size_t k = t->offset + (size_t)((r * 7919 + i * 31) % (int)t->numel);
            if (!strcmp(t->name, "embeddings.word_embeddings.weight"))
                k = t->offset + (size_t)ids[r * 5] * c.hidden + (size_t)r;
            float saved = w[k];
            const float h = 1e-2f;
            w[k] = saved + h;
            double lp = loss_at(e, &p, B, F, &lc);
            w[k] = saved - h;
            double lm = loss_at(e, &p, B, F, &lc);
            w[k] = saved;
            double num = (lp - lm) / (2.0 * h), ana = grad[k];
            cr_assert(fabs(num - ana) <= 2e-2 * fabs(num) + 2e-3, "%s[%zu]: analytic %.6g vs numeric %.6g", t->name,
                      k - t->offset, ana, num);
            checked++;
        }
    }
    cr_assert(checked > 50);
    free(grad);
    simcse_encoder_free(e);
    simcse_model_free(&m);
}

Test(train_fd, full_model_unsup_cls_mlp_dropout) { fd_check(SIMCSE_POOL_CLS, 2, 0); }
Test(train_fd, full_model_hardneg_avg_first_last) { fd_check(SIMCSE_POOL_AVG_FIRST_LAST, 3, 0.7f); }
Test(train_fd, full_model_pairs_avg_top2) { fd_check(SIMCSE_POOL_AVG_TOP2, 2, 0); }

Test(train_config, load_set_validate_and_errors) {
    simcse_train_config c;
    simcse_train_config_defaults(&c);
    cr_assert_eq(c.batch_size, 64);
    cr_assert_float_eq(c.temperature, 0.05, 1e-12);
    cr_assert_eq(simcse_train_config_load(&c, "configs/unsup-bert-base.json"), 0, "%s", simcse_last_error());
    cr_assert_float_eq(c.learning_rate, 3e-5, 1e-15);
    cr_assert_eq(simcse_train_config_load(&c, "configs/sup-bert-base.json"), 0);
    cr_assert_eq(c.batch_size, 512);
    cr_assert_eq(c.num_epochs, 3);
    cr_assert_eq(simcse_train_config_set(&c, "batch_size=128"), 0);
    cr_assert_eq(c.batch_size, 128);
    cr_assert_eq(simcse_train_config_set(&c, "mlp_only_train=true"), 0);
    cr_assert_eq(c.mlp_only_train, 1);
    cr_assert_eq(simcse_train_config_set(&c, "batch_size=0"), -1);
    cr_assert(strstr(simcse_last_error(), "batch_size") && strstr(simcse_last_error(), "range"));
    cr_assert_eq(simcse_train_config_set(&c, "learning_rate=abc"), -1);
    cr_assert_eq(simcse_train_config_set(&c, "no_such_key=1"), -1);
    cr_assert(strstr(simcse_last_error(), "no_such_key"));
    cr_assert_eq(simcse_train_config_set(&c, "pooler=max"), 0);
    cr_assert_eq(simcse_train_config_validate(&c), -1);
    cr_assert(strstr(simcse_last_error(), "pooler"));

    char path[] = "/tmp/simcse_test_bad_config_XXXXXX"; /* unique: suites may run at once */
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    FILE *f = fopen(path, "w");
    fputs("{\"batch_size\": \"many\"}", f);
    fclose(f);
    cr_assert_eq(simcse_train_config_load(&c, path), -1);
    cr_assert(strstr(simcse_last_error(), path) && strstr(simcse_last_error(), "batch_size"));
    f = fopen(path, "w");
    fputs("{\"batch_size\": 8,", f);
    fclose(f);
    cr_assert_eq(simcse_train_config_load(&c, path), -1);
    cr_assert(strstr(simcse_last_error(), "malformed JSON"));
    unlink(path);
}

/* ---- resume ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_run_files(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/model.json", dir);
    write_file(path, "{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 16, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 2, \"intermediate_size\": 32, \"max_position_embeddings\": 32,"
                     " \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\","
                     " \"pad_token_id\": 0}");
    snprintf(path, sizeof path, "%s/train.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "sentence number %d says %s things about %d cats\n", i, i % 3 ? "nice" : "odd", i * 7);
    fclose(f);
}

static void run_config(simcse_train_config *c, const char *dir) {
    simcse_train_config_defaults(c);
    snprintf(c->model_config, sizeof c->model_config, "%s/model.json", dir);
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s/tokenizers/bert-base-uncased", test_data_dir());
    snprintf(c->train_file, sizeof c->train_file, "%s/train.txt", dir);
    c->batch_size = 8;
    c->max_steps = 8;
    c->learning_rate = 1e-3;
    c->warmup_steps = 2;
    c->eval_tasks[0] = 0;
    c->logging_steps = 1;
    c->max_seq_len = 16;
    strcpy(c->precision, "fp32");
}

static char *losses_of(const char *out_dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    char *l = test_metric_losses(path);
    cr_assert_not_null(l, "%s", simcse_last_error());
    return l;
}

Test(train_resume, stopped_and_resumed_run_is_bit_identical, .timeout = 120) {
    char dir[] = "/tmp/simcse_test_resume_XXXXXX"; /* unique: other checkouts may run the suite at once */
    cr_assert_not_null(mkdtemp(dir));
    make_run_files(dir);
    simcse_train_config c;
    run_config(&c, dir);
    char out_a[256], out_b[256];
    snprintf(out_a, sizeof out_a, "%s/a", dir);
    snprintf(out_b, sizeof out_b, "%s/b", dir);
    simcse_train_options oa = {.output_dir = out_a, .device = "cpu", .quiet = 1};
    cr_assert_eq(simcse_train(&c, &oa, NULL), 0, "%s", simcse_last_error());

    simcse_train_options ob = {.output_dir = out_b, .device = "cpu", .quiet = 1, .stop_after = 3};
    cr_assert_eq(simcse_train(&c, &ob, NULL), 0, "%s", simcse_last_error());
    simcse_train_config saved;
    simcse_train_state st;
    cr_assert_eq(simcse_checkpoint_load_config(out_b, &saved, &st), 0, "%s", simcse_last_error());
    cr_assert_eq(st.step, 3);
    simcse_train_options orr = {.output_dir = out_b, .device = "cpu", .quiet = 1, .resume = 1};
    cr_assert_eq(simcse_train(&saved, &orr, NULL), 0, "%s", simcse_last_error());

    char *la = losses_of(out_a), *lb = losses_of(out_b);
    cr_assert_str_eq(la, lb);
    cr_assert(strlen(la) > 0);
    free(la);
    free(lb);
    /* final weights and moments bit-identical */
    const char *files[2] = {"model.safetensors", "optimizer.safetensors"};
    for (int i = 0; i < 2; i++) {
        char pa[512], pb[512];
        snprintf(pa, sizeof pa, "%s/checkpoint/%s", out_a, files[i]);
        snprintf(pb, sizeof pb, "%s/checkpoint/%s", out_b, files[i]);
        size_t na, nb;
        char *a = simcse_read_file(pa, &na), *b = simcse_read_file(pb, &nb);
        cr_assert(a && b);
        cr_assert_eq(na, nb);
        cr_assert(memcmp(a, b, na) == 0, "%s differs after resume", files[i]);
        free(a);
        free(b);
    }
    test_rm_dir(dir);
}

Test(train_resume, export_is_a_loadable_model_directory, .timeout = 120) {
    char dir[] = "/tmp/simcse_test_export_XXXXXX"; /* unique: other checkouts may run the suite at once */
    cr_assert_not_null(mkdtemp(dir));
    make_run_files(dir);
    simcse_train_config c;
    run_config(&c, dir);
    c.max_steps = 2;
    char out[256];
    snprintf(out, sizeof out, "%s/out", dir);
    simcse_train_options o = {.output_dir = out, .device = "cpu", .quiet = 1};
    cr_assert_eq(simcse_train(&c, &o, NULL), 0, "%s", simcse_last_error());
    simcse_model m;
    cr_assert_eq(simcse_model_load(&m, out), 0, "%s", simcse_last_error());
    cr_assert_eq(m.cfg.hidden, 16);
    cr_assert(m.has_mlp_weights);
    simcse_model_free(&m);
    const char *need[] = {"config.json",           "model.safetensors", "vocab.txt",
                          "tokenizer_config.json", "modules.json",      "sentence_bert_config.json",
                          "1_Pooling/config.json", "metrics.jsonl"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", out, need[i]);
        cr_assert(simcse_file_exists(p), "export lacks %s", need[i]);
    }
    test_rm_dir(dir);
}

Test(train_resume, one_example_is_an_error_not_a_hang, .timeout = 60) {
    char dir[] = "/tmp/simcse_test_one_XXXXXX"; /* unique: other checkouts may run the suite at once */
    cr_assert_not_null(mkdtemp(dir));
    make_run_files(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/train.txt", dir);
    write_file(path, "the only sentence\n\n  \n");
    simcse_train_config c;
    run_config(&c, dir);
    char out[256];
    snprintf(out, sizeof out, "%s/out", dir);
    simcse_train_options o = {.output_dir = out, .device = "cpu", .quiet = 1};
    cr_assert_eq(simcse_train(&c, &o, NULL), -1);
    cr_assert(strstr(simcse_last_error(), "train.txt") && strstr(simcse_last_error(), "at least 2"), "%s",
              simcse_last_error());
    test_rm_dir(dir);
}
