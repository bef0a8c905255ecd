/* Alignment and uniformity while training: every evaluation record of
 * metrics.jsonl carries them (STS-B dev), and they are what `simcse eval`
 * computes for the saved model: the best evaluation's values equal those of the
 * exported best model, through the library and through the command line. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/embedder.h"
#include "simcse/encoder.h"
#include "simcse/eval.h"
#include "simcse/model.h"
#include "simcse/plot.h"
#include "simcse/tokenizer.h"
#include "simcse/trainer.h"
#include "test_tmpdir.h"
#include "test_util.h"

TestSuite(train_metrics, .init = mk_tmpdir, .fini = rm_tmpdir);

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(train_metrics, every_evaluation_logs_the_alignment_and_uniformity_eval_reports, .timeout = 240) {
    char *model_json = tmp_path("model.json"), *train = tmp_path("train.txt"), *out = tmp_path("out");
    write_text(model_json, "{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 16, "
                           "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 32, "
                           "\"max_position_embeddings\": 32, \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, "
                           "\"hidden_act\": \"gelu\", \"pad_token_id\": 0}");
    FILE *f = fopen(train, "w");
    for (int i = 0; i < 48; i++)
        fprintf(f, "sentence %d tells of %s dogs and %d birds\n", i, i % 2 ? "brave" : "shy", i);
    fclose(f);
    simcse_train_config c;
    simcse_train_config_defaults(&c);
    strcpy(c.pooler, "avg"); /* a random tiny model's [CLS] vectors all but coincide */
    c.mlp_only_train = 0;
    snprintf(c.model_config, sizeof c.model_config, "%s", model_json);
    snprintf(c.tokenizer, sizeof c.tokenizer, "%s/tokenizers/bert-base-uncased", test_data_dir());
    snprintf(c.train_file, sizeof c.train_file, "%s", train);
    c.batch_size = 8;
    c.max_steps = 6;
    c.learning_rate = 3e-3;
    c.warmup_steps = 0;
    c.eval_steps = 3;
    c.max_seq_len = 16;
    c.eval_batch_size = 64;
    strcpy(c.eval_tasks, "stsb");
    strcpy(c.precision, "fp32");
    simcse_train_options o = {.output_dir = out, .device = "cpu", .quiet = 1};
    simcse_train_summary sum;
    cr_assert_eq(simcse_train(&c, &o, &sum), 0, "%s", simcse_last_error());

    char *metrics = simcse_path_join(out, "metrics.jsonl");
    simcse_metrics_log m;
    cr_assert_eq(simcse_metrics_log_read(metrics, &m), 0, "%s", simcse_last_error());
    cr_assert_eq(m.n_evals, 3, "evaluations at steps 0, 3, 6; got %d", m.n_evals);
    for (int e = 0; e < m.n_evals; e++) {
        cr_assert_eq(m.eval_step[e], 3 * e);
        cr_assert(isfinite(m.alignment[e]) && m.alignment[e] >= 0 && m.alignment[e] <= 4, "step %lld: alignment %g",
                  (long long)m.eval_step[e], m.alignment[e]);
        cr_assert(isfinite(m.uniformity[e]) && m.uniformity[e] <= 0 && m.uniformity[e] >= -4,
                  "step %lld: uniformity %g", (long long)m.eval_step[e], m.uniformity[e]);
    }
    int best = simcse_metrics_log_best(&m);
    cr_assert_eq(m.eval_step[best], sum.best_step);
    /* training moved the embeddings: the statistics are measured at each evaluation, not copied */
    cr_assert(fabs(m.uniformity[0] - m.uniformity[m.n_evals - 1]) > 1e-3, "uniformity %g -> %g", m.uniformity[0],
              m.uniformity[m.n_evals - 1]);

    /* the exported best model, evaluated as `simcse eval` does */
    simcse_model model;
    cr_assert_eq(simcse_model_load(&model, out), 0, "%s", simcse_last_error());
    simcse_tokenizer *tok = simcse_tokenizer_load(out);
    cr_assert_not_null(tok, "%s", simcse_last_error());
    simcse_backend *be = simcse_backend_select("cpu", "fp32", 0);
    cr_assert_not_null(be);
    simcse_encoder *enc = simcse_encoder_create(be, &model, 128, 128 * 32, 0);
    cr_assert_not_null(enc);
    simcse_embedder em;
    cr_assert_eq(simcse_embedder_init(&em, tok, enc, &model, SIMCSE_POOL_AVG, 0, 16, 128), 0);
    simcse_embedding_stats es;
    cr_assert_eq(simcse_eval_embedding_stats(test_data_dir(), SIMCSE_SPLIT_DEV, model.cfg.hidden, 128,
                                             simcse_embedder_embed, &em, &es),
                 0, "%s", simcse_last_error());
    /* metrics.jsonl prints 6 decimals */
    cr_assert(fabs(es.alignment - m.alignment[best]) <= 1e-6, "alignment: logged %.6f, eval %.6f", m.alignment[best],
              es.alignment);
    cr_assert(fabs(es.uniformity - m.uniformity[best]) <= 1e-6, "uniformity: logged %.6f, eval %.6f",
              m.uniformity[best], es.uniformity);
    simcse_embedder_free(&em);
    simcse_encoder_free(enc);
    simcse_tokenizer_free(tok);
    simcse_model_free(&model);

    /* and the command line's report (4 decimals) */
    char cmd[2048], *report = tmp_path("eval.txt");
    snprintf(cmd, sizeof cmd,
             "%s eval --model %s --pooler avg --tasks stsb --split dev --max-len 16 "
             "--device cpu > %s 2>/dev/null",
             test_bin(), out, report);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    size_t n;
    char *text = simcse_read_file(report, &n);
    cr_assert_not_null(text);
    const char *a = strstr(text, "alignment "), *u = strstr(text, "uniformity ");
    cr_assert(a && u, "%s", text);
    double ea = strtod(a + 10, NULL), eu = strtod(u + 11, NULL);
    cr_assert(fabs(ea - m.alignment[best]) <= 5.1e-5 && fabs(eu - m.uniformity[best]) <= 5.1e-5,
              "simcse eval: alignment %.4f uniformity %.4f; logged %.6f %.6f", ea, eu, m.alignment[best],
              m.uniformity[best]);
    free(text);
    free(report);
    simcse_metrics_log_free(&m);
    free(metrics);
    free(model_json);
    free(train);
    free(out);
}

/* A run that fails after it logged is drawn as far as it got, and fails with its
 * own error: here a resume whose training data changed under it. */
Test(train_metrics, a_failing_run_is_drawn_and_reports_its_own_error, .timeout = 240) {
    char *model_json = tmp_path("model.json"), *train = tmp_path("train.txt"), *cfg = tmp_path("cfg.json");
    write_text(model_json, "{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 16, "
                           "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 32, "
                           "\"max_position_embeddings\": 32, \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, "
                           "\"hidden_act\": \"gelu\", \"pad_token_id\": 0}");
    FILE *f = fopen(train, "w");
    for (int i = 0; i < 32; i++) fprintf(f, "line %d about %d apples\n", i, 3 * i);
    fclose(f);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model_config\": \"%s\", \"tokenizer\": \"%s/tokenizers/bert-base-uncased\", \"train_file\": \"%s\","
             " \"batch_size\": 8, \"max_steps\": 4, \"max_seq_len\": 12, \"precision\": \"fp32\", \"eval_tasks\": \"\","
             " \"logging_steps\": 1}",
             model_json, test_data_dir(), train);
    write_text(cfg, text);
    char cmd[2048], *out = tmp_path("out"), *err = tmp_path("err.txt"), *png = tmp_path("out/plot.png");
    snprintf(cmd, sizeof cmd, "%s train --config %s --output %s --device cpu --quiet --stop-after 2 2>%s", test_bin(),
             cfg, out, err);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    cr_assert(simcse_file_exists(png), "a finished run leaves its plot");
    cr_assert_eq(unlink(png), 0);
    f = fopen(train, "a");
    fputs("one more line changes the data\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s train --resume %s --device cpu --quiet 2>%s", test_bin(), out, err);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    size_t n;
    char *log = simcse_read_file(err, &n);
    cr_assert_not_null(log);
    cr_assert(strstr(log, "simcse: plot of the run so far: "), "%s", log);
    const char *last = strstr(log, "simcse: error: ");
    cr_assert(last && strstr(last, "training examples") && strchr(last, '\n') == log + n - 1,
              "the run's own error must be the last line: %s", log);
    cr_assert(simcse_file_exists(png), "the failed run was not drawn");
    free(log);
    /* without gnuplot: no picture, and still the run's own error */
    snprintf(cmd, sizeof cmd, "SIMCSE_GNUPLOT=/nonexistent/gnuplot %s train --resume %s --device cpu --quiet 2>%s",
             test_bin(), out, err);
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    log = simcse_read_file(err, &n);
    cr_assert_not_null(log);
    last = strstr(log, "simcse: error: ");
    cr_assert(last && strstr(last, "training examples") && !strstr(log, "gnuplot"), "%s", log);
    free(log);
    free(png);
    free(err);
    free(out);
    free(cfg);
    free(train);
    free(model_json);
}
