/* Evaluation: the STS loaders on every shared file, correlations against
 * hand-computed and scipy values, alignment/uniformity/anisotropy on tiny sets,
 * and whole evaluations with a bag-of-characters embedding whose expected
 * scores were computed independently with numpy/scipy (the recipe is given
 * above boc_embed below). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/eval.h"
#include "test_util.h"

#define NEAR(a, b, tol) cr_assert(fabs((a) - (b)) <= (tol), "%s = %.12f, expected %.12f", #a, (double)(a), (double)(b))

/* ---- loaders ---- */

static void load_ok(const char *task, simcse_split split, simcse_sts_data *d) {
    cr_assert_eq(simcse_sts_load(test_data_dir(), task, split, d), 0, "%s: %s", task, simcse_last_error());
}

Test(eval_load, stsb_dev_test) {
    simcse_sts_data d;
    load_ok("stsb", SIMCSE_SPLIT_DEV, &d);
    cr_assert_eq(d.n, 1500);
    cr_assert_str_eq(d.s1[0], "a man with a hard hat is dancing .");
    cr_assert_str_eq(d.s2[0], "a man wearing a hard hat is dancing .");
    NEAR(d.gold[0], 5.0, 0);
    NEAR(d.gold[1], 4.75, 0);
    simcse_sts_data_free(&d);
    load_ok("STSBenchmark", SIMCSE_SPLIT_TEST, &d);
    cr_assert_str_eq(d.task, "stsb");
    cr_assert_eq(d.n, 1379);
    cr_assert_str_eq(d.s1[0], "a girl is styling her hair .");
    NEAR(d.gold[0], 2.5, 0);
    cr_assert_str_eq(d.s2[1378], "north korea delegation meets with south korean officials");
    NEAR(d.gold[1378], 0.0, 0);
    simcse_sts_data_free(&d);
}

Test(eval_load, sickr_dev_test) {
    simcse_sts_data d;
    load_ok("sickr", SIMCSE_SPLIT_TEST, &d); /* CRLF file with a header */
    cr_assert_eq(d.n, 4927);
    cr_assert_str_eq(d.s1[0], "There is no boy playing outdoors and there is no man smiling");
    cr_assert_str_eq(d.s2[0], "A group of kids is playing in a yard and an old man is standing in the background");
    NEAR(d.gold[0], 3.3, 1e-12);
    cr_assert_str_eq(d.s2[4926], "The snowboarder is leaping fearlessly over white snow");
    NEAR(d.gold[4926], 1.0, 0);
    simcse_sts_data_free(&d);
    load_ok("SICKRelatedness", SIMCSE_SPLIT_DEV, &d);
    cr_assert_eq(d.n, 500);
    NEAR(d.gold[0], 3.6, 1e-12);
    simcse_sts_data_free(&d);
}

Test(eval_load, sts12_to_16_scored_pairs) {
    static const struct {
        const char *task;
        int n, n_sets;
        const char *first_s1;
        double first_gold;
        const char *last_s2;
        double last_gold;
    } want[] = {
        {"sts12", 3108, 5,
         "the problem likely will mean corrective changes before the shuttle fleet starts flying again .", 4.4,
         "what it did without the initiative not going very far .", 3.5},
        {"sts13", 1500, 3, NULL, 0.6, "obama aide holds talks in china after syria veto", 1.2},
        {"sts14", 3750, 6, "the activity of learning or being trained", 4.0, "? selected letters of william styron ?",
         4.0},
        {"sts15", 3000, 5, NULL, 3.0, "a man wearing a white suit holding a newspaper walking through the streets .",
         1.0},
        {"sts16", 1186, 5,
         "i remained under the banyan tree , exhausted by my daily ritual of dragooning the men every two hours .", 3.0,
         "what is wrong with my gas furnace ?", 4.0},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        simcse_sts_data d;
        load_ok(want[k].task, SIMCSE_SPLIT_TEST, &d);
        cr_assert_eq(d.n, want[k].n, "%s: %d pairs", want[k].task, d.n);
        cr_assert_eq(d.n_sets, want[k].n_sets, "%s", want[k].task);
        cr_assert_eq(d.set_begin[0], 0);
        cr_assert_eq(d.set_begin[d.n_sets], d.n);
        if (want[k].first_s1) cr_assert_str_eq(d.s1[0], want[k].first_s1, "%s", want[k].task);
        NEAR(d.gold[0], want[k].first_gold, 1e-12);
        cr_assert_str_eq(d.s2[d.n - 1], want[k].last_s2, "%s", want[k].task);
        NEAR(d.gold[d.n - 1], want[k].last_gold, 1e-12);
        for (int i = 0; i < d.n; i++) { /* normalised: no double, leading or trailing spaces */
            cr_assert(!strstr(d.s1[i], "  ") && !strstr(d.s2[i], "  "));
            cr_assert(d.s1[i][0] != ' ' && d.s2[i][0] != ' ');
        }
        simcse_sts_data_free(&d);
    }
    simcse_sts_data d;
    load_ok("sts16", SIMCSE_SPLIT_TEST, &d);
    cr_assert_str_eq(d.set_name[0], "answer-answer"); /* sorted set names */
    cr_assert_eq(d.set_begin[1], 254);                /* scored pairs of answer-answer */
    cr_assert_str_eq(d.set_name[4], "question-question");
    cr_assert_eq(d.set_begin[5] - d.set_begin[4], 209);
    simcse_sts_data_free(&d);
}

Test(eval_load, errors_name_the_problem) {
    simcse_sts_data d;
    cr_assert_eq(simcse_sts_load(test_data_dir(), "sts12", SIMCSE_SPLIT_DEV, &d), -1);
    cr_assert(strstr(simcse_last_error(), "no dev split"), "%s", simcse_last_error());
    cr_assert_eq(simcse_sts_load(test_data_dir(), "mrpc", SIMCSE_SPLIT_TEST, &d), -1);
    cr_assert(strstr(simcse_last_error(), "unknown STS task 'mrpc'"), "%s", simcse_last_error());
    cr_assert_eq(simcse_sts_load("/nonexistent", "stsb", SIMCSE_SPLIT_DEV, &d), -1);
    cr_assert(strstr(simcse_last_error(), "/nonexistent/stsbenchmark/senteval_tok/sts-dev.csv"), "%s",
              simcse_last_error());
    simcse_split s;
    cr_assert_eq(simcse_split_parse("validation", &s), 0);
    cr_assert_eq(s, SIMCSE_SPLIT_DEV);
    cr_assert_eq(simcse_split_parse("train", &s), -1);
}

/* A malformed data directory written to /tmp: bad rows are reported with file:line. */
static char *make_dir(void) {
    char *dir = simcse_xstrdup("/tmp/simcse_eval_test_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void put(const char *dir, const char *rel, const char *content) {
    char cmd[512];
    char *path = simcse_path_join(dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(simcse_write_file_atomic(path, content, strlen(content)), 0);
    free(path);
}

static void rm_dir(char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(dir);
}

Test(eval_load, bad_rows_report_file_and_line) {
    char *dir = make_dir();
    simcse_sts_data d;
    put(dir, "stsbenchmark/senteval_tok/sts-dev.csv", "g\tf\ty\t0\t5.0\ta \"b\t c  d \r\ng\tf\ty\t1\t4.0\tx\n");
    cr_assert_eq(simcse_sts_load(dir, "stsb", SIMCSE_SPLIT_DEV, &d), -1);
    cr_assert(strstr(simcse_last_error(), "sts-dev.csv:2: expected 7 TAB-separated fields, found 6"), "%s",
              simcse_last_error());
    put(dir, "stsbenchmark/senteval_tok/sts-dev.csv", "g\tf\ty\t0\t5.0\ta \"b\t c  d \r\ng\tf\ty\t1\tfive\tx\ty\n");
    cr_assert_eq(simcse_sts_load(dir, "stsb", SIMCSE_SPLIT_DEV, &d), -1);
    cr_assert(strstr(simcse_last_error(), "sts-dev.csv:2: field 5 'five' is not a score"), "%s", simcse_last_error());
    /* bare quotes stay, TAB only, whitespace normalised */
    put(dir, "stsbenchmark/senteval_tok/sts-dev.csv", "g\tf\ty\t0\t5.0\ta \"b\t c  d \r\n");
    cr_assert_eq(simcse_sts_load(dir, "stsb", SIMCSE_SPLIT_DEV, &d), 0, "%s", simcse_last_error());
    cr_assert_eq(d.n, 1);
    cr_assert_str_eq(d.s1[0], "a \"b");
    cr_assert_str_eq(d.s2[0], "c d");
    simcse_sts_data_free(&d);
    /* STS year: empty gs line skipped; mismatched line counts; bad score */
    put(dir, "senteval_sts/STS12-en-test/STS.input.a.txt", "s1\ts2\nu1\tu2\nt1\tt2\n");
    put(dir, "senteval_sts/STS12-en-test/STS.gs.a.txt", "1.5\n\n2\n");
    cr_assert_eq(simcse_sts_load(dir, "sts12", SIMCSE_SPLIT_TEST, &d), 0, "%s", simcse_last_error());
    cr_assert_eq(d.n, 2);
    cr_assert_str_eq(d.s1[1], "t1");
    NEAR(d.gold[1], 2.0, 0);
    simcse_sts_data_free(&d);
    put(dir, "senteval_sts/STS12-en-test/STS.gs.a.txt", "1.5\n\n");
    cr_assert_eq(simcse_sts_load(dir, "sts12", SIMCSE_SPLIT_TEST, &d), -1);
    cr_assert(strstr(simcse_last_error(), "do not line up"), "%s", simcse_last_error());
    put(dir, "senteval_sts/STS12-en-test/STS.gs.a.txt", "1.5\n\nx\n");
    cr_assert_eq(simcse_sts_load(dir, "sts12", SIMCSE_SPLIT_TEST, &d), -1);
    cr_assert(strstr(simcse_last_error(), "STS.gs.a.txt:3: 'x' is not a score"), "%s", simcse_last_error());
    put(dir, "senteval_sts/STS12-en-test/STS.gs.a.txt", "1.5\n\n3\n");
    put(dir, "senteval_sts/STS12-en-test/STS.input.a.txt", "s1\ts2\nu1\tu2\nt1 t2\n");
    cr_assert_eq(simcse_sts_load(dir, "sts12", SIMCSE_SPLIT_TEST, &d), -1);
    cr_assert(strstr(simcse_last_error(), "STS.input.a.txt:3: expected 2 TAB-separated"), "%s", simcse_last_error());
    put(dir, "sick/SICK_trial.txt", "pair_ID\tsentence_A\tsentence_B\trelatedness_score\r\n1\ta\tb\r\n");
    cr_assert_eq(simcse_sts_load(dir, "sickr", SIMCSE_SPLIT_DEV, &d), -1);
    cr_assert(strstr(simcse_last_error(), "SICK_trial.txt:2: expected 4 TAB-separated fields, found 3"), "%s",
              simcse_last_error());
    rm_dir(dir);
}

/* ---- correlations ---- */

Test(eval_stats, ranks_average_ties) {
    const double x[10] = {1, 2, 2, 3, 3, 3, 4, 5, 5, 6};
    const double want[10] = {1, 2.5, 2.5, 5, 5, 5, 7, 8.5, 8.5, 10};
    double r[10];
    simcse_rank_average(x, 10, r);
    for (int i = 0; i < 10; i++) NEAR(r[i], want[i], 0);
    const double y[5] = {0.3, -1, 0.3, 0.3, 7};
    const double wy[5] = {3, 1, 3, 3, 5};
    simcse_rank_average(y, 5, r);
    for (int i = 0; i < 5; i++) NEAR(r[i], wy[i], 0);
}

Test(eval_stats, spearman_by_hand_and_scipy) {
    /* by hand: ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): r = 4.5 / sqrt(4.5 * 5) = sqrt(0.9) */
    const double a[4] = {1, 2, 2, 3}, b[4] = {1, 3, 2, 4};
    NEAR(simcse_spearman(a, b, 4), sqrt(0.9), 1e-15);
    /* scipy.stats.spearmanr / pearsonr */
    const double x[10] = {1, 2, 2, 3, 3, 3, 4, 5, 5, 6}, y[10] = {2, 1, 4, 3, 3, 5, 6, 6, 8, 7};
    NEAR(simcse_spearman(x, y, 10), 0.8789498077789584, 1e-14);
    NEAR(simcse_pearson(x, y, 10), 0.8675760324277124, 1e-14);
    const double c[7] = {0.5, 0.1, 0.5, 0.9, 0.1, 0.5, 0.3}, d[7] = {3, 1, 2, 5, 1, 4, 2};
    NEAR(simcse_spearman(c, d, 7), 0.9337145191092148, 1e-14);
    NEAR(simcse_pearson(c, d, 7), 0.924211375534118, 1e-14);
    /* monotone transform: spearman 1, reversed -1 */
    const double m[5] = {1, 2, 3, 4, 5}, e[5] = {1, 10, 100, 1000, 10000}, rev[5] = {5, 4, 3, 2, 1};
    NEAR(simcse_spearman(m, e, 5), 1.0, 1e-15);
    NEAR(simcse_spearman(m, rev, 5), -1.0, 1e-15);
    /* degenerate */
    const double k[3] = {2, 2, 2};
    cr_assert(isnan(simcse_spearman(m, k, 3)));
    cr_assert(isnan(simcse_pearson(m, m, 1)));
}

Test(eval_stats, cosine_handles_zero_and_nan) {
    const float a[3] = {1, 0, 0}, b[3] = {1, 1, 0}, z[3] = {0, 0, 0}, n[3] = {NAN, 1, 0};
    NEAR(simcse_cosine(a, b, 3), 1 / sqrt(2.0), 1e-15);
    NEAR(simcse_cosine(a, z, 3), 0, 0);
    NEAR(simcse_cosine(n, b, 3), 1 / sqrt(2.0), 1e-15); /* NaN element -> 0 */
}

/* ---- alignment, uniformity, anisotropy ---- */

Test(eval_stats, alignment_uniformity_by_hand) {
    /* rows are normalised first: (2,0) -> (1,0) */
    const float x[4] = {2, 0, 0, 1}, y[4] = {1, 0, 3, 0};
    /* pair 0: same direction -> 0; pair 1: (0,1) vs (1,0) -> 2; mean 1 */
    NEAR(simcse_alignment(x, y, 2, 2), 1.0, 1e-15);
    /* (1,0), (0,1), (-1,0): squared distances 2, 4, 2 */
    const float u[6] = {1, 0, 0, 5, -1, 0};
    NEAR(simcse_uniformity(u, 3, 2), log((exp(-4.0) + exp(-8.0) + exp(-4.0)) / 3.0), 1e-14);
    /* identical points: log(1) = 0 */
    const float same[6] = {1, 1, 2, 2, 3, 3};
    NEAR(simcse_uniformity(same, 3, 2), 0.0, 1e-14);
    cr_assert(isnan(simcse_uniformity(u, 1, 2)));
}

Test(eval_stats, anisotropy_fixed_seed) {
    const float same[8] = {1, 2, 2, 4, 3, 6, 0.5f, 1};
    NEAR(simcse_anisotropy(same, 4, 2, 1000, 1234), 1.0, 1e-12);
    const float orth[4] = {1, 0, 0, 1}; /* every i != j pair is orthogonal */
    NEAR(simcse_anisotropy(orth, 2, 2, 500, 1), 0.0, 0);
    /* 3 vectors: cosines 1 (0,1), 0 (0,2), 0 (1,2); the mean of random pairs is about 1/3 and deterministic */
    const float v[6] = {1, 0, 2, 0, 0, 1};
    double a1 = simcse_anisotropy(v, 3, 2, 10000, 99), a2 = simcse_anisotropy(v, 3, 2, 10000, 99);
    cr_assert_eq(a1, a2);
    cr_assert(fabs(a1 - 1.0 / 3.0) < 0.03, "%f", a1);
    cr_assert(simcse_anisotropy(v, 3, 2, 10000, 100) != a1);
}

/* ---- whole evaluations with a bag-of-characters embedding ----
 * Expected values: numpy/scipy over the same normalised sentences, v[c-32] =
 * count of byte c for 32 <= c < 127, cosine = dot / (|a| |b|), spearmanr x 100. */

#define BOC_DIM 96
typedef struct {
    int calls, sentences, fail_at;
} boc_ctx;

static int boc_embed(void *vctx, const char *const *sents, int n, float *out) {
    boc_ctx *c = vctx;
    if (c->fail_at && c->calls + 1 == c->fail_at) return simcse_error("fake encoder failed");
    c->calls++;
    c->sentences += n;
    memset(out, 0, (size_t)n * BOC_DIM * sizeof *out);
    for (int i = 0; i < n; i++)
        for (const unsigned char *p = (const unsigned char *)sents[i]; *p; p++)
            if (*p >= 32 && *p < 127) out[(size_t)i * BOC_DIM + (*p - 32)] += 1.0f;
    return 0;
}

Test(eval_run, bag_of_chars_dev) {
    boc_ctx c = {0};
    simcse_eval_result r;
    cr_assert_eq(simcse_eval_sts(test_data_dir(), "all", SIMCSE_SPLIT_DEV, BOC_DIM, 64, boc_embed, &c, &r), 0, "%s",
                 simcse_last_error());
    cr_assert_eq(r.n_tasks, 2);
    cr_assert_str_eq(r.task[0].task, "stsb");
    cr_assert_eq(r.task[0].n_pairs, 1500);
    NEAR(r.task[0].spearman, 54.586649058729, 1e-8);
    NEAR(r.task[0].pearson, 50.640768535670, 1e-8);
    cr_assert_str_eq(r.task[1].task, "sickr");
    NEAR(r.task[1].spearman, 51.039226929087, 1e-8);
    NEAR(r.avg_spearman, (54.586649058729 + 51.039226929087) / 2, 1e-8);
    cr_assert_eq(c.sentences, 2 * (1500 + 500));
    cr_assert_eq(c.calls, 2 * (24 + 8)); /* ceil(n / 64) chunks, two calls each */
    /* deterministic, and independent of the chunk size */
    simcse_eval_result r2;
    cr_assert_eq(simcse_eval_sts(test_data_dir(), " stsb , sickr ", SIMCSE_SPLIT_DEV, BOC_DIM, 7, boc_embed, &c, &r2),
                 0);
    cr_assert_eq(r2.task[0].spearman, r.task[0].spearman);
    cr_assert_eq(r2.task[1].spearman, r.task[1].spearman);
}

Test(eval_run, bag_of_chars_test_all_pooled) {
    static const struct {
        const char *task;
        int n;
        double spearman;
    } want[7] = {{"sts12", 3108, 46.088372516031}, {"sts13", 1500, 47.986370429354}, {"sts14", 3750, 46.003487812945},
                 {"sts15", 3000, 51.887302918733}, {"sts16", 1186, 45.588211055195}, {"stsb", 1379, 50.685249202011},
                 {"sickr", 4927, 47.127951488506}};
    boc_ctx c = {0};
    simcse_eval_result r;
    cr_assert_eq(simcse_eval_sts(test_data_dir(), "all", SIMCSE_SPLIT_TEST, BOC_DIM, 256, boc_embed, &c, &r), 0, "%s",
                 simcse_last_error());
    cr_assert_eq(r.n_tasks, 7);
    double sum = 0;
    for (int t = 0; t < 7; t++) {
        cr_assert_str_eq(r.task[t].task, want[t].task);
        cr_assert_eq(r.task[t].n_pairs, want[t].n);
        NEAR(r.task[t].spearman, want[t].spearman, 1e-8);
        sum += want[t].spearman;
    }
    NEAR(r.avg_spearman, sum / 7, 1e-8);
}

Test(eval_run, errors_propagate) {
    boc_ctx c = {.fail_at = 3};
    simcse_eval_result r;
    cr_assert_eq(simcse_eval_sts(test_data_dir(), "stsb", SIMCSE_SPLIT_DEV, BOC_DIM, 100, boc_embed, &c, &r), -1);
    cr_assert(strstr(simcse_last_error(), "stsb (dev): embedding pairs 100..199: fake encoder failed"), "%s",
              simcse_last_error());
    cr_assert_eq(simcse_eval_sts(test_data_dir(), "stsb,sts99", SIMCSE_SPLIT_DEV, BOC_DIM, 100, boc_embed, &c, &r), -1);
    cr_assert(strstr(simcse_last_error(), "unknown task 'sts99'"), "%s", simcse_last_error());
    cr_assert_eq(simcse_eval_sts(test_data_dir(), "sts13", SIMCSE_SPLIT_DEV, BOC_DIM, 100, boc_embed, &c, &r), -1);
    cr_assert(strstr(simcse_last_error(), "no dev split"), "%s", simcse_last_error());
}

Test(eval_run, embedding_stats_bag_of_chars) {
    boc_ctx c = {0};
    simcse_embedding_stats s;
    cr_assert_eq(simcse_eval_embedding_stats(test_data_dir(), SIMCSE_SPLIT_DEV, BOC_DIM, 128, boc_embed, &c, &s), 0,
                 "%s", simcse_last_error());
    cr_assert_eq(s.n_pos_pairs, 208);
    cr_assert_eq(s.n_sentences, 2909);
    cr_assert_eq(c.sentences, 2909); /* each distinct sentence embedded once */
    NEAR(s.alignment, 0.087072826637, 1e-9);
    NEAR(s.uniformity, -0.587137310147, 1e-9);
    cr_assert(isfinite(s.anisotropy) && s.anisotropy > 0 && s.anisotropy < 1, "%f", s.anisotropy);
    simcse_embedding_stats s2;
    cr_assert_eq(simcse_eval_embedding_stats(test_data_dir(), SIMCSE_SPLIT_DEV, BOC_DIM, 1000, boc_embed, &c, &s2), 0);
    cr_assert_eq(s2.anisotropy, s.anisotropy);
    cr_assert_eq(s2.uniformity, s.uniformity);
}
