/* Inputs that used to crash, run out of memory or give a wrong answer without a word
 * (issue 9): token ids past the embedding table, max_steps=0, bf16 on the CPU, absurd
 * numbers in trainer_state.json, NUL bytes and directories given to encode, NaN
 * weights in eval, the task named in the training summary, eval's error prefix.
 *
 * Each test builds what it needs in its own scratch directory: a tiny random BERT
 * (config.json + model.safetensors) with a hand-made WordPiece tokenizer.json (ids
 * 0..21) edited per case, and runs the library or the CLI (build/simcse) on it. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "simcse/checkpoint.h"
#include "simcse/common.h"
#include "simcse/encoder.h"
#include "simcse/host_memory.h"
#include "simcse/loss.h"
#include "simcse/memory_plan.h"
#include "simcse/model.h"
#include "simcse/npy.h"
#include "simcse/tokenizer.h"
#include "simcse/train_config.h"
#include "simcse/trainer.h"

#include "test_tmpdir.h"
#include "test_util.h"

/* ids 0..20 in the vocabulary, and the added token "Hello" as id 21 */
#define TOKENIZER_SEED "tests/fuzz/seeds/fuzz_tokenizer_json/wordpiece.json"
#define TOKENIZER_IDS 22

static cJSON *seed_tokenizer(void) {
    size_t n;
    char *text = simcse_read_file(TOKENIZER_SEED, &n);
    cr_assert_not_null(text, "%s", simcse_last_error());
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j);
    return j;
}

static void write_text(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    if (len) cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    write_text(path, s, strlen(s));
    free(s);
}

/* A tokenizer whose post-processor puts out [SEP] as `sep_id`. */
static cJSON *tokenizer_with_sep(int sep_id) {
    cJSON *j = seed_tokenizer();
    cJSON *sep =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "post_processor"), "special_tokens"), "[SEP]");
    cJSON_ReplaceItemInObject(sep, "ids", cJSON_Parse("[0]"));
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(sep, "ids"), 0, cJSON_CreateNumber(sep_id));
    return j;
}

static simcse_config tiny_config(int vocab_size) {
    simcse_config c = {.arch = SIMCSE_ARCH_BERT,
                       .vocab_size = vocab_size,
                       .hidden = 16,
                       .layers = 1,
                       .heads = 2,
                       .intermediate = 32,
                       .max_positions = 40,
                       .type_vocab_size = 2,
                       .pad_token_id = 0,
                       .layer_norm_eps = 1e-12f,
                       .hidden_dropout = 0.1f,
                       .attn_dropout = 0.1f};
    return c;
}

/* DIR/name: config.json + model.safetensors (random, or poisoned with NaN) + tokenizer.json. */
static char *make_model(const char *name, int vocab_size, const cJSON *tokenizer, int nan_weights) {
    char *dir = tmp_path(name);
    simcse_config c = tiny_config(vocab_size);
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), 0, "%s", simcse_last_error());
    simcse_model_init_random(&m, 7);
    if (nan_weights) m.w.emb_ln_g[3] = NAN; /* LayerNorm gamma: every token's embedding gets a NaN */
    cr_assert_eq(simcse_model_save_dir(&m, dir, 1), 0, "%s", simcse_last_error());
    simcse_model_free(&m);
    char *tp = simcse_path_join(dir, "tokenizer.json");
    write_json(tp, tokenizer);
    free(tp);
    return dir;
}

/* Runs a shell command; returns its exit status, with stdout + stderr in out. */
static int run(const char *cmd, char *out, size_t cap) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int count_of(const char *hay, const char *needle) {
    int k = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) k++;
    return k;
}

/* ---- token ids past the embedding table -------------------------------------------- */

static simcse_tokenizer *load_edited(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    simcse_tokenizer *t = simcse_tokenizer_load_json_mem(s, strlen(s), "edited/tokenizer.json");
    free(s);
    cJSON_Delete(j);
    cr_assert_not_null(t, "%s", simcse_last_error());
    return t;
}

static void expect_ids_refused(simcse_tokenizer *t, int vocab_size, const char *what, const char *id) {
    cr_assert_eq(simcse_tokenizer_check_ids(t, vocab_size), -1, "%s past %d accepted", what, vocab_size);
    const char *e = simcse_last_error();
    cr_assert(strstr(e, "edited/tokenizer.json") && strstr(e, what) && strstr(e, id), "%s", e);
    simcse_tokenizer_free(t);
}

Test(run_guards, every_id_a_tokenizer_emits_is_checked) {
    simcse_tokenizer *t = load_edited(seed_tokenizer());
    cr_assert_eq(simcse_tokenizer_check_ids(t, TOKENIZER_IDS), 0, "%s", simcse_last_error());
    /* the vocabulary (the added "Hello" is id 21) */
    expect_ids_refused(t, TOKENIZER_IDS - 1, "vocabulary token 'Hello'", "id 21");

    /* an added token whose content is in the vocabulary keeps the vocabulary's id, but
     * matches put out the added token's own id */
    cJSON *j = seed_tokenizer();
    cJSON *added = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "added_tokens"), 5);
    cJSON_ReplaceItemInObject(added, "content", cJSON_CreateString("hello"));
    cJSON_ReplaceItemInObject(added, "id", cJSON_CreateNumber(30));
    expect_ids_refused(load_edited(j), TOKENIZER_IDS, "added token 'hello'", "id 30");

    /* the post-processor's [SEP], which need not be in the vocabulary at all */
    expect_ids_refused(load_edited(tokenizer_with_sep(TOKENIZER_IDS)), TOKENIZER_IDS, "post-processor special token",
                       "id 22");

    /* padding */
    j = seed_tokenizer();
    cJSON_ReplaceItemInObject(j, "padding", cJSON_Parse("{\"pad_id\": 23, \"pad_token\": \"[PAD]\"}"));
    expect_ids_refused(load_edited(j), TOKENIZER_IDS, "padding id", "id 23");
}

/* encode, eval and train refuse the model + tokenizer pair (before: SIGSEGV under ASan,
 * exit 0 with rows read from past the table otherwise) */
Test(run_guards, encode_eval_train_refuse_ids_past_the_table, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    cJSON *tok = tokenizer_with_sep(TOKENIZER_IDS);
    char *dir = make_model("m", TOKENIZER_IDS, tok, 0);
    cJSON_Delete(tok);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "printf 'hello world\\n' | %s encode --model %s --pooler avg --output %s/e.npy --device cpu", test_bin(),
             dir, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "tokenizer.json") && strstr(out, "special token id 22") && count_of(out, "\n") == 1, "%s",
              out);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --pooler avg --tasks stsb --split dev --device cpu", test_bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "tokenizer.json") && strstr(out, "special token id 22"), "%s", out);

    simcse_train_config c;
    simcse_train_config_defaults(&c);
    snprintf(c.model, sizeof c.model, "%s", dir);
    char *train = tmp_path("train.txt");
    static const char lines[] = "hello world\nend a\nhere i\n";
    write_text(train, lines, sizeof lines - 1);
    snprintf(c.train_file, sizeof c.train_file, "%s", train);
    c.eval_tasks[0] = 0;
    c.batch_size = 2;
    c.max_steps = 1;
    c.max_seq_len = 8;
    char *o = tmp_path("out");
    simcse_train_options opt = {.output_dir = o, .device = "cpu", .quiet = 1};
    cr_assert_eq(simcse_train(&c, &opt, NULL), -1);
    cr_assert(strstr(simcse_last_error(), "tokenizer.json") && strstr(simcse_last_error(), "special token id 22"), "%s",
              simcse_last_error());
    free(o);
    free(train);
    free(dir);
}

/* ---- max_steps = 0 ------------------------------------------------------------------ */

Test(run_guards, max_steps_zero_is_an_error) {
    simcse_train_config c;
    simcse_train_config_defaults(&c);
    strcpy(c.model, "m");
    strcpy(c.train_file, "t.txt");
    cr_assert_eq(simcse_train_config_validate(&c), 0, "%s", simcse_last_error());
    cr_assert_eq(simcse_train_config_set(&c, "max_steps=0"), 0);
    cr_assert_eq(simcse_train_config_validate(&c), -1);
    cr_assert(strstr(simcse_last_error(), "'max_steps'") && strstr(simcse_last_error(), "-1"), "%s",
              simcse_last_error());
}

/* ---- bf16 on the CPU ------------------------------------------------------------------ */

Test(run_guards, bf16_on_the_cpu_says_so, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    cJSON *tok = seed_tokenizer();
    char *dir = make_model("m", TOKENIZER_IDS, tok, 0);
    cJSON_Delete(tok);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "printf 'hello world\\n' | %s encode --model %s --pooler avg --output %s/e.npy --device cpu "
             "--precision bf16",
             test_bin(), dir, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_eq(count_of(out, "note: precision bf16 is for the GPU; the CPU backend computes in fp32"), 1, "%s", out);
    snprintf(cmd, sizeof cmd,
             "printf 'hello world\\n' | %s encode --model %s --pooler avg --output %s/e.npy --device cpu", test_bin(),
             dir, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_null(strstr(out, "note:"), "%s", out);
    free(dir);
}

/* ---- trainer_state.json with absurd numbers --------------------------------------------- */

static void tiny_run_config(simcse_train_config *c, const char *model_config, const char *train_file) {
    simcse_train_config_defaults(c);
    snprintf(c->model_config, sizeof c->model_config, "%s", model_config);
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s/tokenizers/bert-base-uncased", test_data_dir());
    snprintf(c->train_file, sizeof c->train_file, "%s", train_file);
    c->batch_size = 4;
    c->max_steps = 6;
    c->eval_tasks[0] = 0;
    c->max_seq_len = 12;
    strcpy(c->precision, "fp32");
}

static void write_tiny_run_files(char **model_config, char **train_file) {
    *model_config = tmp_path("model.json");
    simcse_config mc = tiny_config(30522);
    cr_assert_eq(simcse_config_save(*model_config, &mc), 0, "%s", simcse_last_error());
    *train_file = tmp_path("train.txt");
    FILE *f = fopen(*train_file, "w");
    for (int i = 0; i < 24; i++) fprintf(f, "sentence %d is about %s\n", i, i % 2 ? "cats" : "dogs");
    fclose(f);
}

/* Sets one key of OUT/checkpoint/trainer_state.json to the number given as text. */
static void set_state_key(const char *out, const char *key, const char *number) {
    char path[1024];
    snprintf(path, sizeof path, "%s/checkpoint/trainer_state.json", out);
    size_t n;
    char *text = simcse_read_file(path, &n);
    cr_assert_not_null(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(j, key);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    /* the number is spliced in as text: cJSON would print 1e300 as 1e+300 anyway, but
     * this keeps exactly what the probe wrote */
    char buf[4096];
    size_t k = strlen(s);
    snprintf(buf, sizeof buf, "%.*s,\"%s\":%s}", (int)(k - 1), s, key, number);
    free(s);
    write_text(path, buf, strlen(buf));
}

Test(run_guards, trainer_state_numbers_out_of_range_are_refused, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    char *mc, *train;
    write_tiny_run_files(&mc, &train);
    simcse_train_config c;
    tiny_run_config(&c, mc, train);
    char *out = tmp_path("run");
    simcse_train_options opt = {.output_dir = out, .device = "cpu", .quiet = 1, .stop_after = 2};
    cr_assert_eq(simcse_train(&c, &opt, NULL), 0, "%s", simcse_last_error());
    simcse_train_config saved;
    simcse_train_state st;
    simcse_train_options res = {.output_dir = out, .device = "cpu", .quiet = 1, .resume = 1};

    /* 1e300 in a float field: before, an undefined conversion (UBSan stops there), and
     * an error about a "negative step" that named no field */
    const char *fields[] = {"epoch", "index_in_epoch", "n_examples", "best_step"};
    for (int i = 0; i < 4; i++) {
        char key[64];
        snprintf(key, sizeof key, "'%s'", fields[i]);
        size_t n;
        char path[1024];
        snprintf(path, sizeof path, "%s/checkpoint/trainer_state.json", out);
        char *keep = simcse_read_file(path, &n);
        set_state_key(out, fields[i], "1e300");
        cr_assert_eq(simcse_checkpoint_load_config(out, &saved, &st), -1, "%s = 1e300 accepted", fields[i]);
        cr_assert(strstr(simcse_last_error(), key) && strstr(simcse_last_error(), "1e+300"), "%s", simcse_last_error());
        write_text(path, keep, n);
        free(keep);
    }
    /* step 1e18: fits an int64, but past any run: before, a resume did nothing and exited 0 */
    set_state_key(out, "step", "1e18");
    cr_assert_eq(simcse_checkpoint_load_config(out, &saved, &st), -1);
    cr_assert(strstr(simcse_last_error(), "trainer_state.json") && strstr(simcse_last_error(), "'step'"), "%s",
              simcse_last_error());
    /* a step within the key's range but past this run's 6 steps */
    set_state_key(out, "step", "50");
    cr_assert_eq(simcse_checkpoint_load_config(out, &saved, &st), 0, "%s", simcse_last_error());
    cr_assert_eq(simcse_train(&saved, &res, NULL), -1);
    cr_assert(strstr(simcse_last_error(), "'step'") && strstr(simcse_last_error(), "past the run's 6 steps"), "%s",
              simcse_last_error());
    set_state_key(out, "step", "2");

    set_state_key(out, "best_metric", "1e300");
    cr_assert_eq(simcse_checkpoint_load_config(out, &saved, &st), -1);
    cr_assert(strstr(simcse_last_error(), "'best_metric'"), "%s", simcse_last_error());
    free(out);
    free(mc);
    free(train);
}

/* ---- encode's input: NUL bytes, directories ------------------------------------------------ */

/* A NUL byte is part of the line for tokenize and encode alike (the BERT normaliser drops
 * it, so "hello\0world" is "helloworld"); before, encode cut the line at the NUL. */
Test(run_guards, encode_and_tokenize_read_nul_bytes_alike, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    cJSON *tok = seed_tokenizer();
    char *dir = make_model("m", TOKENIZER_IDS, tok, 0);
    cJSON_Delete(tok);
    char *in = tmp_path("in.txt");
    static const char lines[] = "hello\0world\r\nhelloworld\nhello\n";
    write_text(in, lines, sizeof lines - 1);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s tokenize --model %s < %s", test_bin(), dir, in);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    char *second = strchr(out, '\n') + 1, *third = strchr(second, '\n') + 1;
    cr_assert(strncmp(out, second, (size_t)(second - out)) == 0, "tokenize: %s", out);
    cr_assert(strncmp(out, third, (size_t)(second - out)) != 0, "tokenize: %s", out);

    snprintf(cmd, sizeof cmd, "%s encode --model %s --pooler avg --input %s --output %s/e.npy --device cpu", test_bin(),
             dir, in, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    char *npy = tmp_path("e.npy");
    float *e;
    int64_t rows, cols;
    cr_assert_eq(simcse_npy_read_f32(npy, &e, &rows, &cols), 0, "%s", simcse_last_error());
    cr_assert_eq(rows, 3);
    cr_assert(memcmp(e, e + cols, (size_t)cols * sizeof *e) == 0, "the NUL line differs from 'helloworld'");
    cr_assert(memcmp(e, e + 2 * cols, (size_t)cols * sizeof *e) != 0, "the NUL line was cut at the NUL");
    free(e);
    free(npy);
    free(in);
    free(dir);
}

Test(run_guards, encode_input_directory_is_an_error, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    cJSON *tok = seed_tokenizer();
    char *dir = make_model("m", TOKENIZER_IDS, tok, 0);
    cJSON_Delete(tok);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s encode --model %s --pooler avg --input %s --output %s/e.npy --device cpu", test_bin(),
             dir, g_dir, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, g_dir) && strstr(out, "is a directory") && count_of(out, "\n") == 1, "%s", out);
    free(dir);
}

/* ---- eval ------------------------------------------------------------------------------------ */

Test(run_guards, eval_of_nan_weights_says_nan, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120) {
    cJSON *tok = seed_tokenizer();
    char *dir = make_model("m", TOKENIZER_IDS, tok, 1);
    cJSON_Delete(tok);
    char cmd[2048], out[16384];
    snprintf(cmd, sizeof cmd, "%s eval --model %s --pooler avg --tasks stsb --split dev --device cpu", test_bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "anisotropy nan"), "%s", out);
    cr_assert(strstr(out, "uniformity nan") && strstr(out, "alignment nan"), "%s", out);
    cr_assert(strstr(out, "warning: ") && strstr(out, "embeddings are not finite"), "%s", out);
    free(dir);
}

Test(run_guards, eval_errors_are_prefixed_once, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    cJSON *tok = seed_tokenizer();
    char *dir = make_model("m", TOKENIZER_IDS, tok, 0);
    cJSON_Delete(tok);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s eval --model %s --pooler avg --tasks nosuch --device cpu", test_bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "unknown task 'nosuch'") && count_of(out, "eval:") == 1, "%s", out);
    free(dir);
}

/* ---- the training summary names the task it evaluated ------------------------------------------ */

Test(run_guards, train_summary_names_the_eval_task, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120) {
    char *mc, *train;
    write_tiny_run_files(&mc, &train);
    char *cfg = tmp_path("cfg.json");
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model_config\": \"%s\", \"tokenizer\": \"%s/tokenizers/bert-base-uncased\", \"train_file\": \"%s\","
             " \"batch_size\": 4, \"max_steps\": 2, \"max_seq_len\": 12, \"precision\": \"fp32\","
             " \"eval_tasks\": \"sickr\", \"eval_batch_size\": 256}",
             mc, test_data_dir(), train);
    write_text(cfg, text, strlen(text));
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s train --config %s --output %s/out --device cpu --quiet", test_bin(), cfg, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "sickr dev Spearman x100: before "), "%s", out);
    cr_assert_null(strstr(out, "STS-B"), "%s", out);
    free(cfg);
    free(mc);
    free(train);
}

/* ---- memory budget ------------------------------------------------------------------------------ */

/* The estimate is what the code allocates: simcse_encoder_create and simcse_step_create
 * on the CPU backend (whose count includes at most 128 bytes of rounding and header per
 * block), simcse_model_init's parameter count. */
Test(memory_plan, estimates_match_what_is_allocated) {
    simcse_config c = tiny_config(100);
    c.layers = 3;
    c.hidden = 64;
    c.heads = 4;
    c.intermediate = 128;
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), 0);
    cr_assert_eq(simcse_param_count(&c), (double)m.n_floats);
    simcse_backend *be = simcse_backend_cpu();
    for (int grads = 0; grads < 2; grads++) {
        size_t before, after, peak;
        be->memory(be, &before, &peak);
        simcse_encoder *e = simcse_encoder_create(be, &m, 24, 24 * 20, grads);
        cr_assert_not_null(e, "%s", simcse_last_error());
        be->memory(be, &after, &peak);
        double w, a;
        simcse_encoder_bytes(&c, m.n_floats, 24, 24 * 20, grads, &w, &a);
        const double blocks = 24 + 15 * c.layers, got = (double)(after - before);
        cr_assert(got >= w + a && got <= w + a + 128 * blocks, "with_grads %d: allocated %.0f, estimated %.0f", grads,
                  got, w + a);
        if (grads) {
            simcse_loss_config lc = {.pooler = SIMCSE_POOL_CLS, .apply_mlp = 1, .temperature = 0.05f};
            be->memory(be, &before, &peak);
            simcse_step *s = simcse_step_create(e, &lc, NULL, 8, 3);
            cr_assert_not_null(s);
            be->memory(be, &after, &peak);
            double est = simcse_step_bytes(c.hidden, 8, 3, 1, 0);
            cr_assert((double)(after - before) >= est && (double)(after - before) <= est + 3 * 128, "step: %zu vs %.0f",
                      after - before, est);
            simcse_step_free(s);
        }
        simcse_encoder_free(e);
    }
    simcse_model_free(&m);
}

/* The demo and the smaller paper setups fit a 24 GiB machine, CPU or GPU, with the
 * configs as they are (the larger ones need grad_cache_chunk there: README). */
Test(memory_plan, demo_and_paper_base_setups_fit_24_gib) {
    simcse_config demo, base;
    cr_assert_eq(simcse_config_load("configs/demo-model.json", &demo), 0, "%s", simcse_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/bert-base-uncased/config.json", test_data_dir());
    cr_assert_eq(simcse_config_load(path, &base), 0, "%s", simcse_last_error());
    struct {
        const char *cfg;
        const simcse_config *model;
        int views;
    } runs[] = {{"configs/demo.json", &demo, 3},
                {"configs/unsup-bert-base.json", &base, 2},
                {"configs/unsup-bert-large.json", NULL, 2}};
    simcse_config large = base;
    large.hidden = 1024, large.layers = 24, large.heads = 16, large.intermediate = 4096;
    runs[2].model = &large;
    simcse_memory_avail a = {
        .device = 24.0 * (1 << 30), .host = 24.0 * (1 << 30), .device_source = "test", .host_source = "test"};
    for (int i = 0; i < 3; i++)
        for (int shared = 0; shared < 2; shared++) {
            simcse_train_config tc;
            simcse_train_config_defaults(&tc);
            cr_assert_eq(simcse_train_config_load(&tc, runs[i].cfg), 0, "%s", simcse_last_error());
            a.shared = shared;
            simcse_memory_need n =
                simcse_memory_for_training(runs[i].model, &tc, runs[i].views, tc.batch_size, 1, 1000000, 1, !shared);
            cr_assert(simcse_memory_fits(&n, 1, &a), "%s does not fit 24 GiB (%s)", runs[i].cfg,
                      shared ? "cpu" : "cuda");
        }
}

/* Refused exactly when the estimate exceeds the available figure (set for the test). */
Test(memory_plan, training_is_refused_exactly_past_the_budget, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    char *mc_path, *train;
    write_tiny_run_files(&mc_path, &train);
    simcse_train_config c;
    tiny_run_config(&c, mc_path, train);
    c.max_steps = 1;
    c.eval_batch_size = 2; /* so that the training batch decides the encoder's size */
    simcse_config mc;
    cr_assert_eq(simcse_config_load(mc_path, &mc), 0);
    simcse_memory_need n = simcse_memory_for_training(&mc, &c, 2, c.batch_size, 1, 24, 0, 0);
    double need = n.params + n.grads + n.moments + n.acts + n.host;
    char fig[64];
    snprintf(fig, sizeof fig, "%.0f", need - 1);
    setenv("SIMCSE_TEST_AVAILABLE_MEMORY", fig, 1);
    char *out = tmp_path("run");
    simcse_train_options opt = {.output_dir = out, .device = "cpu", .quiet = 1};
    cr_assert_eq(simcse_train(&c, &opt, NULL), -1, "a run 1 byte over the budget was started");
    const char *e = simcse_last_error();
    cr_assert(strstr(e, "not enough memory for training") && strstr(e, "SIMCSE_TEST_AVAILABLE_MEMORY") &&
                  strstr(e, "grad_cache_chunk=") && !strchr(e, '\n'),
              "%s", e);
    snprintf(fig, sizeof fig, "%.0f", need);
    setenv("SIMCSE_TEST_AVAILABLE_MEMORY", fig, 1);
    cr_assert_eq(simcse_train(&c, &opt, NULL), 0, "%s", simcse_last_error());
    unsetenv("SIMCSE_TEST_AVAILABLE_MEMORY");
    free(out);
    free(mc_path);
    free(train);
}

/* The issue's two reproducers: a 1,024-layer model, and encode --batch-size 1048576. Both
 * used to grow until the OOM killer ended them; now one line with both figures. The
 * available figure is pinned at 16 GiB so that the answer does not depend on the machine. */
Test(memory_plan, the_issue_reproducers_get_one_line, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    char *mc, *train;
    write_tiny_run_files(&mc, &train);
    simcse_config big = tiny_config(30522);
    big.hidden = 768, big.heads = 12, big.intermediate = 3072, big.layers = 1024, big.max_positions = 512;
    cr_assert_eq(simcse_config_save(mc, &big), 0);
    char *cfg = tmp_path("cfg.json");
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model_config\": \"%s\", \"tokenizer\": \"%s/tokenizers/bert-base-uncased\", \"train_file\": \"%s\","
             " \"eval_tasks\": \"\", \"precision\": \"fp32\"}",
             mc, test_data_dir(), train);
    write_text(cfg, text, strlen(text));
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "SIMCSE_TEST_AVAILABLE_MEMORY=17179869184 %s train --config %s --output %s/out --device cpu --quiet",
             test_bin(), cfg, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "simcse: error: not enough memory for training: it needs ") &&
                  strstr(out, "and 16.00 GiB are free (SIMCSE_TEST_AVAILABLE_MEMORY)") &&
                  strstr(out, "too large for this machine") && count_of(out, "\n") == 1,
              "%s", out);

    /* encode: a one-layer model of BERT-base width */
    cJSON *tok = seed_tokenizer();
    char *dir = tmp_path("wide");
    simcse_config wide = big;
    wide.layers = 1;
    wide.vocab_size = TOKENIZER_IDS;
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &wide), 0);
    simcse_model_init_random(&m, 3);
    cr_assert_eq(simcse_model_save_dir(&m, dir, 1), 0, "%s", simcse_last_error());
    simcse_model_free(&m);
    char *tp = simcse_path_join(dir, "tokenizer.json");
    write_json(tp, tok);
    cJSON_Delete(tok);
    snprintf(cmd, sizeof cmd,
             "printf 'hello world\\n' | SIMCSE_TEST_AVAILABLE_MEMORY=17179869184 %s encode --model %s --pooler avg "
             "--output %s/e.npy --device cpu --batch-size 1048576",
             test_bin(), dir, g_dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "simcse: error: encode: not enough memory for encode: it needs ") &&
                  strstr(out, "16.00 GiB are free") && strstr(out, "lower --batch-size (at most ") &&
                  count_of(out, "\n") == 1,
              "%s", out);
    free(tp);
    free(dir);
    free(cfg);
    free(mc);
    free(train);
}

/* The host figure is read (MemAvailable at least) and is never more than MemAvailable:
 * a cgroup can only lower it. */
static unsigned long long meminfo_available_kb(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    cr_assert_not_null(f);
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* MemAvailable moves while other processes run, so the figure is compared with the
 * larger of a reading before and one after, plus 64 MiB of slack. */
Test(memory_plan, host_figure_is_at_most_memavailable) {
    const char *source = NULL;
    unsigned long long before = meminfo_available_kb();
    size_t bytes = simcse_host_memory_available(&source);
    unsigned long long after = meminfo_available_kb(), kb = before > after ? before : after;
    cr_assert(kb > 0);
    cr_assert(bytes > 0 && (double)bytes <= (double)kb * 1024 + 64.0 * 1024 * 1024,
              "%zu bytes from %s, MemAvailable %llu kB", bytes, source, kb);
    cr_assert(!strcmp(source, "MemAvailable") || !strncmp(source, "cgroup ", 7), "%s", source);
}
