/* Never stuck, never lost: the states a kill -9 can leave in a run directory
 * (leftovers of any name in the checkpoint swap, a swap cut between its renames,
 * links, half-written temporaries, metrics logged past the checkpoint), each
 * built by hand and resumed; the output-directory rules (a used directory needs
 * --overwrite, the model's and tokenizer's directories are never written); and
 * resume refusing a changed setting. Each resumed run is compared, record by
 * record, with one uninterrupted run. tests/kill_resume.sh makes the same states
 * with real signals. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simcse/checkpoint.h"
#include "simcse/common.h"
#include "simcse/run_dir.h"
#include "simcse/train_config.h"
#include "simcse/trainer.h"
#include "test_tmpdir.h"
#include "test_util.h"

#define STEPS 8

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Runs a shell command, '@' standing for the scratch directory and '#' for the data directory. */
static void sh(const char *tmpl) {
    char cmd[4096];
    size_t k = 0;
    for (const char *p = tmpl; *p && k < sizeof cmd - 600; p++) {
        const char *sub = *p == '@' ? g_dir : *p == '#' ? test_data_dir() : NULL;
        if (sub)
            k += (size_t)snprintf(cmd + k, sizeof cmd - k, "%s", sub);
        else
            cmd[k++] = *p;
    }
    cmd[k] = 0;
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

static int exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static char *in(const char *dir, const char *name) { return simcse_path_join(dir, name); }

/* model.json, train.txt and config.json (extra: more JSON keys) in the scratch dir */
static char *make_run(const char *extra) {
    char *p = tmp_path("model.json");
    write_text(p, "{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 16, \"num_hidden_layers\": 1,"
                  " \"num_attention_heads\": 2, \"intermediate_size\": 32, \"max_position_embeddings\": 32,"
                  " \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\", \"pad_token_id\": 0}");
    free(p);
    p = tmp_path("train.txt");
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "sentence number %d says %s things about %d cats\n", i, i % 3 ? "nice" : "odd", i * 7);
    fclose(f);
    free(p);
    char text[4096];
    snprintf(text, sizeof text,
             "{\"model_config\": \"%s/model.json\", \"tokenizer\": \"%s/tokenizers/bert-base-uncased\","
             " \"train_file\": \"%s/train.txt\", \"data_dir\": \"%s\", \"batch_size\": 8, \"max_steps\": %d,"
             " \"learning_rate\": 1e-3, \"warmup_steps\": 2, \"logging_steps\": 1, \"save_steps\": 1,"
             " \"max_seq_len\": 16, \"precision\": \"fp32\", \"pooler\": \"avg\", \"mlp_only_train\": false%s}",
             g_dir, test_data_dir(), g_dir, test_data_dir(), STEPS, extra);
    char *cfg = tmp_path("config.json");
    write_text(cfg, text);
    return cfg;
}

/* Runs "simcse train ARGS"; returns the exit status, *err gets stderr (caller frees). */
static int train_cli(char **err, const char *fmt, ...) SIMCSE_PRINTF(2, 3);
static int train_cli(char **err, const char *fmt, ...) {
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *errp = tmp_path("stderr.txt");
    snprintf(cmd, sizeof cmd, "%s train %s >/dev/null 2>%s", test_bin(), args, errp);
    int st = system(cmd);
    char *text = simcse_read_file(errp, NULL);
    unlink(errp);
    free(errp);
    if (err)
        *err = text ? text : simcse_xstrdup("");
    else
        free(text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* metrics.jsonl without the timings, which differ from run to run */
static char *records_of(const char *out_dir) {
    char *p = in(out_dir, "metrics.jsonl");
    size_t n;
    char *text = simcse_read_file(p, &n);
    cr_assert_not_null(text, "%s", simcse_last_error());
    free(p);
    char *res = calloc(n + 1, 1);
    size_t k = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        for (size_t i = 0; i < len; i++) {
            if (!strncmp(line + i, ", \"elapsed_s\"", 13) || !strncmp(line + i, ", \"eval_seconds\"", 16)) {
                while (i < len && line[i] != '}') i++;
            }
            res[k++] = line[i];
        }
        res[k++] = '\n';
        line += len + (nl != NULL);
    }
    free(text);
    return res;
}

static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void same_files(const char *a, const char *b, const char *name) {
    char *pa = in(a, name), *pb = in(b, name);
    size_t na, nb;
    char *da = simcse_read_file(pa, &na), *db = simcse_read_file(pb, &nb);
    cr_assert(da && db, "%s", simcse_last_error());
    cr_assert(na == nb && memcmp(da, db, na) == 0, "%s differs from the uninterrupted run's", name);
    free(da);
    free(db);
    free(pa);
    free(pb);
}

/* The uninterrupted run "ref" and a run "run" stopped after step k (CLI, --stop-after). */
static void reference_and_stopped(const char *cfg, int k) {
    char *err;
    cr_assert_eq(train_cli(&err, "--config %s --output %s/ref --quiet", cfg, g_dir), 0, "%s", err);
    free(err);
    cr_assert_eq(train_cli(&err, "--config %s --output %s/run --quiet --stop-after %d", cfg, g_dir, k), 0, "%s", err);
    free(err);
}

/* The training records only (evaluations dropped) */
static void drop_evaluations(char *records) {
    char *w = records;
    for (char *line = records; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        char saved = line[len - 1];
        line[len - 1] = 0; /* look at this line only */
        int evaluation = strstr(line, "eval_dev_avg_spearman") != NULL;
        line[len - 1] = saved;
        if (!evaluation) {
            memmove(w, line, len);
            w += len;
        }
        line += len;
    }
    *w = 0;
}

/* The resumed run equals the uninterrupted one: records (evaluations too, unless their
 * interval was changed, which also changes which model is exported), weights, moments;
 * nothing of the swap left. */
static void matches_reference_as(int same_evaluations) {
    char *ref = tmp_path("ref"), *run = tmp_path("run");
    char *ra = records_of(ref), *rb = records_of(run);
    if (!same_evaluations) {
        drop_evaluations(ra);
        drop_evaluations(rb);
        cr_assert(strstr(ra, "\"loss\""));
    }
    cr_assert_str_eq(rb, ra);
    for (int s = 1; s <= STEPS; s++) {
        char needle[64];
        snprintf(needle, sizeof needle, "{\"step\": %d, \"epoch\"", s);
        cr_assert_eq(count_of(rb, needle), 1, "step %d logged %d times", s, count_of(rb, needle));
    }
    same_files(ref, run, "checkpoint/model.safetensors");
    same_files(ref, run, "checkpoint/optimizer.safetensors");
    if (same_evaluations) same_files(ref, run, "model.safetensors");
    char *t = in(run, "checkpoint.tmp"), *o = in(run, "checkpoint.old");
    cr_assert(!exists(t) && !exists(o), "the swap left checkpoint.tmp or checkpoint.old");
    free(t);
    free(o);
    free(ra);
    free(rb);
    free(ref);
    free(run);
}

static void matches_reference(void) { matches_reference_as(1); }

static void resume_ok(void) {
    char *err;
    cr_assert_eq(train_cli(&err, "--resume %s/run --quiet", g_dir), 0, "%s", err);
    free(err);
}

TestSuite(resume_after_kill, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120);

/* A killed save leaves e.g. optimizer.safetensors.tmp<pid> in checkpoint.tmp/; the
 * swap then carried it into checkpoint/ and checkpoint.old/, which could never be
 * removed again ("cannot rename to .../checkpoint.old: Directory not empty"). */
Test(resume_after_kill, leftovers_of_any_name_in_the_swap) {
    char *cfg = make_run("");
    reference_and_stopped(cfg, 3);
    sh("mkdir -p @/run/checkpoint.tmp/deeper/still && touch @/run/checkpoint.tmp/optimizer.safetensors.tmp4242");
    sh("touch @/run/checkpoint.tmp/deeper/still/model.safetensors.tmp7 @/run/checkpoint/stray.tmp99");
    resume_ok();
    matches_reference();
    free(cfg);
}

/* Killed between "checkpoint -> checkpoint.old" and "checkpoint.tmp -> checkpoint":
 * no checkpoint/, the latest complete one in checkpoint.old/, a finished or
 * unfinished checkpoint.tmp/. */
Test(resume_after_kill, between_the_swap_renames) {
    char *cfg = make_run("");
    reference_and_stopped(cfg, 3);
    sh("mv @/run/checkpoint @/run/checkpoint.old");
    sh("mkdir @/run/checkpoint.tmp && head -c 1000 @/run/checkpoint.old/model.safetensors > "
       "@/run/checkpoint.tmp/model.safetensors");
    resume_ok();
    matches_reference();
    free(cfg);
}

Test(resume_after_kill, unfinished_first_checkpoint_after_a_complete_one) {
    /* the state the library sees (no CLI in front): recovered there as well */
    char *cfg = make_run("");
    reference_and_stopped(cfg, 5);
    sh("mv @/run/checkpoint @/run/checkpoint.old");
    simcse_train_config c;
    simcse_train_state st;
    char *run = tmp_path("run");
    cr_assert_eq(simcse_checkpoint_recover(run), 0, "%s", simcse_last_error());
    cr_assert_eq(simcse_checkpoint_load_config(run, &c, &st), 0, "%s", simcse_last_error());
    cr_assert_eq(st.step, 5);
    simcse_train_options o = {.output_dir = run, .device = "cpu", .quiet = 1, .resume = 1};
    cr_assert_eq(simcse_train(&c, &o, NULL), 0, "%s", simcse_last_error());
    matches_reference();
    free(run);
    free(cfg);
}

/* Links are removed, never followed: a checkpoint/ that is a link to another disk,
 * and a checkpoint.tmp/ link to a directory of files, keep their targets' files. */
Test(resume_after_kill, links_are_removed_not_followed) {
    char *cfg = make_run("");
    reference_and_stopped(cfg, 3);
    sh("mkdir -p @/elsewhere/victim && mv @/run/checkpoint @/elsewhere/ckpt");
    sh("ln -s @/elsewhere/ckpt @/run/checkpoint");
    sh("cp @/elsewhere/ckpt/* @/elsewhere/victim/");
    sh("ln -s @/elsewhere/victim @/run/checkpoint.tmp");
    resume_ok();
    matches_reference();
    const char *files[] = {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json",
                           "train_config.json"};
    for (int d = 0; d < 2; d++) {
        char *dir = tmp_path(d ? "elsewhere/victim" : "elsewhere/ckpt");
        for (int i = 0; i < 5; i++) {
            char *p = in(dir, files[i]);
            cr_assert(simcse_file_exists(p), "%s was deleted through a link", p);
            free(p);
        }
        free(dir);
    }
    free(cfg);
}

/* NAME.tmp<pid> of a killed export or metrics write: gone once the run has resumed;
 * a user's file that only looks similar stays. */
Test(resume_after_kill, no_temporaries_left_in_the_export) {
    char *cfg = make_run("");
    reference_and_stopped(cfg, 3);
    sh("touch @/run/model.safetensors.tmp31337 @/run/config.json.tmp12");
    sh("mkdir -p @/run/1_Pooling && touch @/run/1_Pooling/config.json.tmp77");
    sh("touch @/run/notes.tmp @/run/x.tmp1a");
    resume_ok();
    matches_reference();
    const char *gone[] = {"run/model.safetensors.tmp31337", "run/config.json.tmp12", "run/1_Pooling/config.json.tmp77"};
    for (int i = 0; i < 3; i++) {
        char *p = tmp_path(gone[i]);
        cr_assert(!exists(p), "%s is still there", gone[i]);
        free(p);
    }
    char *keep = tmp_path("run/notes.tmp"), *keep2 = tmp_path("run/x.tmp1a");
    cr_assert(exists(keep) && exists(keep2), "a file that is not a temporary was removed");
    free(keep);
    free(keep2);
    free(cfg);
}

/* Killed after logging steps 5..7 (and the evaluation at 6) with the last
 * checkpoint at step 4, the last line cut short: every step and evaluation once. */
Test(resume_after_kill, metrics_cut_back_to_the_checkpoint) {
    char *cfg = make_run(", \"eval_tasks\": \"stsb\", \"eval_steps\": 3");
    reference_and_stopped(cfg, 4);
    sh("cp -r @/run/checkpoint @/ckpt4");
    char *err;
    cr_assert_eq(train_cli(&err, "--resume %s/run --quiet --stop-after 7", g_dir), 0, "%s", err);
    free(err);
    sh("rm -rf @/run/checkpoint && mv @/ckpt4 @/run/checkpoint");
    sh("printf '{\"step\": 8, \"epoch\": 0, \"lo' >> @/run/metrics.jsonl");
    char *run = tmp_path("run");
    char *before = records_of(run);
    cr_assert_eq(count_of(before, "{\"step\": 6, \"eval_dev"), 1, "the planted state lacks the step-6 evaluation");
    free(before);
    free(run);
    resume_ok();
    matches_reference();
    char *ref = tmp_path("ref");
    char *r = records_of(ref);
    cr_assert_eq(count_of(r, "eval_dev_avg_spearman"), 4, "evaluations at 0, 3, 6 and 8 expected");
    free(r);
    free(ref);
    free(cfg);
}

TestSuite(resume_config, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120);

/* --set of a key that enters a step, another rank count, another backend: refused,
 * every difference in one line; the intervals and --quiet may change. */
Test(resume_config, changes_to_the_math_are_refused_and_listed) {
    char *cfg = make_run("");
    reference_and_stopped(cfg, 3);
    char *err;
    int rc = train_cli(&err,
                       "--resume %s/run --set learning_rate=0.002 --set batch_size=4 --set seed=7 "
                       "--set grad_cache_chunk=2",
                       g_dir);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err, "learning_rate (checkpoint 0.001") && strstr(err, "batch_size (checkpoint 8, now 4)") &&
                  strstr(err, "seed (checkpoint 42, now 7)") && strstr(err, "grad_cache_chunk"),
              "%s", err);
    const char *line = strstr(err, "simcse: error: ");
    cr_assert(line && strchr(line, '\n') == line + strlen(line) - 1, "not one line: %s", err);
    free(err);
    rc = train_cli(&err, "--resume %s/run --ranks 2", g_dir);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err, "ranks (checkpoint 1, now 2)"), "%s", err);
    free(err);
    /* another backend, as a checkpoint written on a GPU says it */
    sh("cp -r @/run @/gpu");
    sh("sed -i 's/\"backend\":.*\"cpu\"/\"backend\": \"cuda\"/' @/gpu/checkpoint/trainer_state.json");
    rc = train_cli(&err, "--resume %s/gpu --device cpu", g_dir);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err, "backend (checkpoint cuda, now cpu)"), "%s", err);
    free(err);
    /* nothing was written by the refused runs: the run still resumes to the reference */
    cr_assert_eq(
        train_cli(&err, "--resume %s/run --quiet --set logging_steps=5 --set eval_steps=2 --set save_steps=3", g_dir),
        0, "%s", err);
    free(err);
    matches_reference_as(0);
    free(cfg);
}

TestSuite(output_dir, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120);

Test(output_dir, a_used_directory_needs_overwrite) {
    char *cfg = make_run("");
    char *err;
    cr_assert_eq(train_cli(&err, "--config %s --output %s/done --quiet --set max_steps=2", cfg, g_dir), 0, "%s", err);
    free(err);
    char *metrics = tmp_path("done/metrics.jsonl");
    char *before = simcse_read_file(metrics, NULL);
    cr_assert_not_null(before);
    /* a finished run, and a directory holding somebody's file */
    sh("mkdir -p @/mine && echo keep > @/mine/notes.txt");
    const char *dirs[2] = {"done", "mine"};
    for (int i = 0; i < 2; i++) {
        cr_assert_neq(train_cli(&err, "--config %s --output %s/%s --quiet --set max_steps=3", cfg, g_dir, dirs[i]), 0);
        cr_assert(strstr(err, "not empty") && strstr(err, "--overwrite") && strstr(err, "--resume"), "%s", err);
        free(err);
    }
    char *after = simcse_read_file(metrics, NULL);
    cr_assert_str_eq(after, before, "the refused run wrote into the finished one");
    free(after);
    /* an empty directory, and --overwrite */
    sh("mkdir -p @/empty");
    cr_assert_eq(train_cli(&err, "--config %s --output %s/empty --quiet --set max_steps=2", cfg, g_dir), 0, "%s", err);
    free(err);
    cr_assert_eq(train_cli(&err, "--config %s --output %s/done --quiet --set max_steps=3 --overwrite", cfg, g_dir), 0,
                 "%s", err);
    free(err);
    char *done = tmp_path("done");
    char *records = records_of(done);
    cr_assert_eq(count_of(records, "\"loss\""), 3);
    free(records);
    /* the overwritten run's checkpoint is the new run's */
    simcse_train_config c;
    simcse_train_state st;
    cr_assert_eq(simcse_checkpoint_load_config(done, &c, &st), 0, "%s", simcse_last_error());
    cr_assert_eq(st.step, 3);
    cr_assert_eq(c.max_steps, 3);
    cr_assert_neq(train_cli(&err, "--resume %s --overwrite", done), 0);
    free(err);
    free(done);
    free(before);
    free(metrics);
    free(cfg);
}

static char *snapshot(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && find . -type f | sort | xargs md5sum", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *buf = calloc(1 << 16, 1);
    size_t n = fread(buf, 1, (1 << 16) - 1, p);
    buf[n] = 0;
    pclose(p);
    return buf;
}

/* The model directory, the tokenizer directory and any directory holding either:
 * refused even with --overwrite, however the path is spelled. (All of it in the
 * scratch directory: the shared data is never an --output here, even planted.) */
Test(output_dir, model_and_tokenizer_directories_are_never_written) {
    char *cfg = make_run("");
    char *err;
    /* a Hugging Face model directory to fine-tune (with its tokenizer files): a tiny run's export */
    cr_assert_eq(train_cli(&err, "--config %s --output %s/models/base --quiet --set max_steps=1", cfg, g_dir), 0, "%s",
                 err);
    free(err);
    sh("rm -rf @/models/base/checkpoint @/models/base/metrics.jsonl && ln -s @/models/base @/link-to-model");
    sh("mkdir -p @/data/tokenizers/bert && cp #/tokenizers/bert-base-uncased/* @/data/tokenizers/bert/");
    char ft[4096];
    snprintf(ft, sizeof ft,
             "{\"model\": \"%s/models/base\", \"train_file\": \"%s/train.txt\", \"batch_size\": 8, \"max_steps\": 2,"
             " \"eval_tasks\": \"\", \"precision\": \"fp32\", \"pooler\": \"avg\", \"max_seq_len\": 16}",
             g_dir, g_dir);
    char *ftc = tmp_path("finetune.json");
    write_text(ftc, ft);
    char *model = tmp_path("models/base"), *tok = tmp_path("data/tokenizers/bert");
    char *model_before = snapshot(model), *tok_before = snapshot(tok);
    sh("mkdir -p @/random-init && cp @/model.json @/random-init/");
    char *mc = tmp_path("random-init/model.json"), *mc_before = simcse_read_file(mc, NULL);
    cr_assert_not_null(mc_before);
    char tokset[1024], mcset[1024];
    snprintf(tokset, sizeof tokset, "--set tokenizer=%s/data/tokenizers/bert", g_dir);
    snprintf(mcset, sizeof mcset, "--set model_config=%s", mc);
    struct {
        const char *config, *output, *set, *want;
    } cases[] = {
        {ftc, "models/base", "", "is the model directory"},
        {ftc, "models", "", "contains the model directory"},
        {ftc, "link-to-model", "", "is the model directory"},
        {ftc, "models/../models/base/", "", "is the model directory"},
        {cfg, "data/tokenizers/bert", tokset, "is the tokenizer directory"},
        {cfg, "data", tokset, "contains the tokenizer directory"},
        {cfg, "random-init", mcset, "is the model directory (model_config"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = train_cli(&err, "--config %s --output %s/%s --overwrite --quiet %s", cases[i].config, g_dir,
                           cases[i].output, cases[i].set);
        cr_assert_neq(rc, 0, "--output %s was accepted", cases[i].output);
        cr_assert(strstr(err, cases[i].want) && strstr(err, "--overwrite does not apply"), "%s: %s", cases[i].output,
                  err);
        free(err);
    }
    char *model_after = snapshot(model), *tok_after = snapshot(tok);
    cr_assert_str_eq(model_after, model_before, "the model directory changed");
    cr_assert_str_eq(tok_after, tok_before, "the tokenizer directory changed");
    char *mc_after = simcse_read_file(mc, NULL);
    cr_assert(mc_after && !strcmp(mc_after, mc_before), "the model_config file changed");
    char *mc_dir = tmp_path("random-init"), *mc_files = snapshot(mc_dir);
    cr_assert_eq(count_of(mc_files, "\n"), 1, "files were written beside model_config: %s", mc_files);
    free(mc_files);
    free(mc_dir);
    free(mc_after);
    free(mc_before);
    free(mc);
    /* fine-tuning into a directory of its own works, and so does a directory inside the model's */
    cr_assert_eq(train_cli(&err, "--config %s --output %s/models/tuned --quiet", ftc, g_dir), 0, "%s", err);
    free(err);
    cr_assert_eq(train_cli(&err, "--config %s --output %s/models/base/runs/1 --quiet", ftc, g_dir), 0, "%s", err);
    free(err);
    free(model_after);
    free(tok_after);
    free(model_before);
    free(tok_before);
    free(model);
    free(tok);
    free(ftc);
    free(cfg);
}
