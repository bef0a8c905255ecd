/* simcse plot: the series handed to gnuplot (the datablocks of plot.gp) are
 * exactly those of metrics.jsonl, the PNG is a PNG of the asked size, files are
 * replaced only by a finished plot, and bad input or a missing gnuplot is a
 * one-line error. gnuplot itself is needed (gnuplot-nox, in the deps list). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "simcse/common.h"
#include "simcse/plot.h"
#include "test_tmpdir.h"
#include "test_util.h"

TestSuite(plot, .init = mk_tmpdir, .fini = rm_tmpdir);

static void write_text(const char *name, const char *text) {
    char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* The rows of datablock `name` in plot.gp: values[row * cols + col]; returns the row count. */
static int datablock(const char *script, const char *name, int cols, double *values, int max_rows) {
    char head[64];
    snprintf(head, sizeof head, "\n%s << EOD\n", name);
    const char *p = strstr(script, head);
    cr_assert_not_null(p, "plot.gp has no datablock %s", name);
    p += strlen(head);
    int rows = 0;
    while (strncmp(p, "EOD\n", 4) != 0) {
        const char *eol = strchr(p, '\n');
        cr_assert_not_null(eol);
        if (*p != '#') {
            cr_assert_lt(rows, max_rows, "%s has more rows than expected", name);
            char *q = (char *)p;
            for (int c = 0; c < cols; c++) {
                char *end;
                values[rows * cols + c] = strtod(q, &end);
                cr_assert(end != q, "%s row %d: column %d missing", name, rows, c);
                q = end;
            }
            while (*q == ' ') q++;
            cr_assert_eq(*q, '\n', "%s row %d: more than %d columns", name, rows, cols);
            rows++;
        }
        p = eol + 1;
    }
    return rows;
}

static void same(double a, double b, const char *what, int row) {
    if (isnan(a) && isnan(b)) return;
    cr_assert(a == b, "%s row %d: plotted %.17g, metrics.jsonl has %.17g", what, row, a, b);
}

static unsigned be32(const unsigned char *p) {
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static void check_png(const char *path, unsigned w, unsigned h) {
    size_t n;
    unsigned char *png = (unsigned char *)simcse_read_file(path, &n);
    cr_assert_not_null(png, "%s", simcse_last_error());
    cr_assert(n > 33 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
    cr_assert(be32(png + 8) == 13 && !memcmp(png + 12, "IHDR", 4), "%s: first chunk is not IHDR", path);
    cr_assert_eq(be32(png + 16), w, "%s: width %u, expected %u", path, be32(png + 16), w);
    cr_assert_eq(be32(png + 20), h, "%s: height %u, expected %u", path, be32(png + 20), h);
    cr_assert(!memcmp(png + n - 8, "IEND", 4), "%s is cut short", path);
    free(png);
}

/* A run's log as the trainer writes it, a resumed stretch included: steps 1..20,
 * then a resume from step 14 replays 15..30 with other values. */
static char *synthetic_log(double *loss, double *lr, double *ev, int *n_ev) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    /* evaluation rows: step avg stsb sickr alignment uniformity */
    static const double evals[5][6] = {{0, 40.125, 45.5, 34.75, 0.0423, -0.2780},
                                       {10, 60.5, 62.25, 58.75, 0.39, -2.48},
                                       {20, 61.0, 63.0, 59.0, 0.4045, -2.6967},
                                       {20, 61.5, 63.5, 59.5, 0.4050, -2.7001}, /* the resumed run's, replacing it */
                                       {30, 60.0, 62.0, 58.0, 0.4161, -2.7908}};
    fprintf(f,
            "{\"step\": 0, \"eval_dev_avg_spearman\": %.4f, \"eval_stsb_dev_spearman\": %.4f, "
            "\"eval_sickr_dev_spearman\": %.4f, \"eval_stsb_dev_alignment\": %.6f, "
            "\"eval_stsb_dev_uniformity\": %.6f, \"eval_seconds\": 1.5}\n",
            evals[0][1], evals[0][2], evals[0][3], evals[0][4], evals[0][5]);
    int e = 1;
    for (int run = 0; run < 2; run++) {
        int first = run ? 15 : 1, last = run ? 30 : 20;
        for (int s = first; s <= last; s++) {
            double l = 4.5 / (1 + 0.1 * s) + 0.001 * run + 1e-7 * s, r = 5e-4 * s / 30.0;
            loss[s] = l;
            lr[s] = r;
            fprintf(f,
                    "{\"step\": %d, \"epoch\": 0, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": 1.5, "
                    "\"batch\": 64, \"tokens\": 2000, \"elapsed_s\": 1.0}\n",
                    s, l, r);
            /* what the file holds, rounded as printed */
            char buf[64];
            snprintf(buf, sizeof buf, "%.6f", l);
            loss[s] = strtod(buf, NULL);
            snprintf(buf, sizeof buf, "%.6g", r);
            lr[s] = strtod(buf, NULL);
            if (s % 10 == 0) {
                const double *v = evals[e++];
                fprintf(f,
                        "{\"step\": %d, \"eval_dev_avg_spearman\": %.4f, \"eval_stsb_dev_spearman\": %.4f, "
                        "\"eval_sickr_dev_spearman\": %.4f, \"eval_stsb_dev_alignment\": %.6f, "
                        "\"eval_stsb_dev_uniformity\": %.6f}\n",
                        s, v[1], v[2], v[3], v[4], v[5]);
            }
        }
        if (!run) fputs("\n{\"event\": \"resumed\", \"from_step\": 14}\n", f); /* a record the plot does not know */
    }
    fclose(f);
    /* the evaluations that stand: 0, 10, the resumed 20, 30 */
    const int keep[4] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 6; c++) ev[i * 6 + c] = evals[keep[i]][c];
    *n_ev = 4;
    return text;
}

Test(plot, plotted_series_are_exactly_those_of_metrics_jsonl, .timeout = 60) {
    double loss[31], lr[31], ev[4 * 6];
    int n_ev;
    char *log = synthetic_log(loss, lr, ev, &n_ev);
    write_text("metrics.jsonl", log);
    free(log);
    simcse_plot_options opt = {.width = 960, .height = 320};
    cr_assert_eq(simcse_plot_run(g_dir, &opt), 0, "%s", simcse_last_error());

    char *gp = tmp_path("plot.gp");
    size_t n;
    char *script = simcse_read_file(gp, &n);
    cr_assert_not_null(script);
    double rows[64 * 3];
    int k = datablock(script, "$steps", 3, rows, 64);
    cr_assert_eq(k, 30, "%d step rows, metrics.jsonl has 30 steps after the resume", k);
    for (int i = 0; i < k; i++) {
        cr_assert_eq(rows[i * 3], i + 1);
        same(rows[i * 3 + 1], loss[i + 1], "loss", i);
        same(rows[i * 3 + 2], lr[i + 1], "lr", i);
    }
    cr_assert(strstr(script, "# step avg_spearman stsb_spearman sickr_spearman alignment uniformity\n"));
    double erows[8 * 6];
    k = datablock(script, "$evals", 6, erows, 8);
    cr_assert_eq(k, n_ev);
    for (int i = 0; i < k; i++)
        for (int c = 0; c < 6; c++) same(erows[i * 6 + c], ev[i * 6 + c], "evals", i);
    /* the best checkpoint: the first maximum of the average after step 0 (the resumed step 20) */
    double b[3];
    cr_assert_eq(datablock(script, "$best", 2, b, 1), 1);
    cr_assert(b[0] == 20 && b[1] == 61.5);
    cr_assert_eq(datablock(script, "$plane_best", 3, b, 1), 1);
    cr_assert(b[0] == -2.7001 && b[1] == 0.4050 && b[2] == 20);
    cr_assert_eq(datablock(script, "$plane_start", 3, b, 1), 1);
    cr_assert(b[0] == -0.2780 && b[1] == 0.0423 && b[2] == 0);
    double path[8 * 4];
    cr_assert_eq(datablock(script, "$plane_path", 4, path, 8), n_ev - 1);
    for (int i = 0; i + 1 < n_ev; i++) { /* from each evaluation to the next, in time order */
        cr_assert(path[i * 4] == ev[i * 6 + 5] && path[i * 4 + 1] == ev[i * 6 + 4]);
        cr_assert(path[i * 4 + 2] == ev[(i + 1) * 6 + 5] - ev[i * 6 + 5]);
        cr_assert(path[i * 4 + 3] == ev[(i + 1) * 6 + 4] - ev[i * 6 + 4]);
    }
    free(script);
    free(gp);

    char *png = tmp_path("plot.png"), *svg = tmp_path("plot.svg");
    check_png(png, 960, 320);
    char *s = simcse_read_file(svg, &n);
    cr_assert_not_null(s);
    cr_assert(strstr(s, "<svg") && strstr(s, "width=\"960\" height=\"320\"") && strstr(s, "</svg>"));
    free(s);
    /* no temporary and no log left behind: the directory holds exactly these */
    DIR *d = opendir(g_dir);
    cr_assert_not_null(d);
    for (struct dirent *ent; (ent = readdir(d));) {
        const char *name = ent->d_name;
        cr_assert(!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "metrics.jsonl") ||
                      !strcmp(name, "plot.gp") || !strcmp(name, "plot.png") || !strcmp(name, "plot.svg"),
                  "%s left behind", name);
    }
    closedir(d);
    free(png);
    free(svg);
}

Test(plot, runs_without_evaluations_or_steps_still_get_a_picture, .timeout = 60) {
    write_text("metrics.jsonl",
               "{\"step\": 1, \"loss\": 4.5, \"lr\": 0}\n{\"step\": 2, \"loss\": 4.25, \"lr\": 1e-5}\n");
    simcse_plot_options opt = {.width = 600, .height = 240};
    cr_assert_eq(simcse_plot_run(g_dir, &opt), 0, "%s", simcse_last_error());
    char *png = tmp_path("plot.png");
    check_png(png, 600, 240);
    write_text("metrics.jsonl", ""); /* a run that has not logged anything yet */
    cr_assert_eq(simcse_plot_run(g_dir, &opt), 0, "%s", simcse_last_error());
    check_png(png, 600, 240);
    /* evaluations from before alignment and uniformity were logged */
    write_text("metrics.jsonl", "{\"step\": 0, \"eval_dev_avg_spearman\": 50, \"eval_stsb_dev_spearman\": 50}\n"
                                "{\"step\": 1, \"loss\": 4.5, \"lr\": 0}\n");
    cr_assert_eq(simcse_plot_run(g_dir, &opt), 0, "%s", simcse_last_error());
    check_png(png, 600, 240);
    free(png);
}

Test(plot, a_malformed_line_is_an_error_naming_file_and_line, .timeout = 60) {
    write_text("metrics.jsonl", "{\"step\": 1, \"loss\": 4.5, \"lr\": 0}\n");
    simcse_plot_options opt = {.width = 400, .height = 200};
    cr_assert_eq(simcse_plot_run(g_dir, &opt), 0, "%s", simcse_last_error());
    char *png = tmp_path("plot.png");
    size_t n0, n1;
    char *before = simcse_read_file(png, &n0);
    cr_assert_not_null(before);

    static const struct {
        const char *text, *expect;
    } bad[] = {
        {"{\"step\": 1, \"loss\": 4.5, \"lr\": 0}\n\n{\"step\": 2, \"loss\": 4.", "metrics.jsonl:3: malformed JSON"},
        {"{\"step\": 1, \"loss\": 4.5, \"lr\": 0}\n[1, 2]\n", "metrics.jsonl:2: not a JSON object"},
        {"{\"step\": 1.5, \"loss\": 4.5, \"lr\": 0}\n", "metrics.jsonl:1: \"step\""},
        {"{\"step\": 1, \"loss\": \"low\", \"lr\": 0}\n", "metrics.jsonl:1: \"loss\" is not a number"},
        {"{\"step\": 1, \"loss\": 4.5} trailing\n", "metrics.jsonl:1: malformed JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text("metrics.jsonl", bad[i].text);
        cr_assert_eq(simcse_plot_run(g_dir, &opt), -1, "case %zu accepted", i);
        const char *e = simcse_last_error();
        cr_assert(strstr(e, bad[i].expect) && strstr(e, g_dir), "case %zu: %s", i, e);
        cr_assert(!strchr(e, '\n'), "case %zu: not one line: %s", i, e);
    }
    char *after = simcse_read_file(png, &n1);
    cr_assert(n0 == n1 && !memcmp(before, after, n0), "a failed plot replaced plot.png");
    free(before);
    free(after);
    free(png);
}

Test(plot, a_missing_or_failing_gnuplot_is_a_one_line_error, .timeout = 60) {
    /* enough steps that the script overflows the pipe: a gnuplot that stops
     * reading must be an error, not a SIGPIPE */
    char *p = tmp_path("metrics.jsonl");
    FILE *f = fopen(p, "w");
    for (int s = 1; s <= 5000; s++) fprintf(f, "{\"step\": %d, \"loss\": %.6f, \"lr\": 1e-5}\n", s, 1.0 / s);
    fclose(f);
    free(p);
    simcse_plot_options opt = {.width = 400, .height = 200, .gnuplot = "/nonexistent/gnuplot"};
    cr_assert_eq(simcse_plot_run(g_dir, &opt), -1);
    cr_assert(strstr(simcse_last_error(), "/nonexistent/gnuplot: gnuplot not found") &&
                  strstr(simcse_last_error(), "gnuplot-nox"),
              "%s", simcse_last_error());
    /* nothing on PATH either */
    unsetenv("SIMCSE_GNUPLOT");
    setenv("PATH", g_dir, 1);
    opt.gnuplot = NULL;
    cr_assert_eq(simcse_plot_run(g_dir, &opt), -1);
    cr_assert(strstr(simcse_last_error(), "gnuplot not found"), "%s", simcse_last_error());
    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
    opt.gnuplot = "false"; /* exits 1 without reading */
    cr_assert_eq(simcse_plot_run(g_dir, &opt), -1);
    cr_assert(strstr(simcse_last_error(), "false failed (exit status 1)"), "%s", simcse_last_error());
    opt.gnuplot = "true"; /* exits 0 without drawing */
    cr_assert_eq(simcse_plot_run(g_dir, &opt), -1);
    cr_assert(strstr(simcse_last_error(), "wrote no plot.png"), "%s", simcse_last_error());
    char *png = tmp_path("plot.png");
    cr_assert(!simcse_file_exists(png));
    free(png);

    /* the command line: one line on stderr, exit status 1 */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "SIMCSE_GNUPLOT=/nonexistent/gnuplot %s plot --run %s 2>%s/err.txt", test_bin(), g_dir,
             g_dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    char *err = tmp_path("err.txt");
    size_t n;
    char *text = simcse_read_file(err, &n);
    cr_assert(text && strstr(text, "simcse: error: plot: /nonexistent/gnuplot: gnuplot not found"), "%s", text);
    cr_assert(strchr(text, '\n') == text + n - 1, "more than one line: %s", text);
    free(text);
    free(err);
}

Test(plot, best_is_the_first_maximum_after_step_0) {
    simcse_metrics_log m = {0};
    int64_t steps[4] = {0, 10, 20, 30};
    double avg[4] = {70, 60, 65, 65};
    m.n_evals = 4;
    m.eval_step = steps;
    m.avg = avg;
    cr_assert_eq(simcse_metrics_log_best(&m), 2);
    m.n_evals = 1;
    cr_assert_eq(simcse_metrics_log_best(&m), -1);
}
