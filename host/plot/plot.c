/* `simcse plot`: a run's metrics.jsonl drawn by gnuplot (see include/simcse/plot.h).
 *
 * The script is generated whole, with the series inline as datablocks printed
 * with %.17g (so they are exactly the doubles read from metrics.jsonl), saved as
 * DIR/plot.gp, and written down a pipe to a gnuplot child whose working
 * directory is DIR. The child writes plot.png.tmp<pid> and plot.svg.tmp<pid>
 * (the temporary names a resumed run sweeps away after a kill); they are
 * renamed only when gnuplot exits cleanly, so a failed plot never replaces a
 * good one. gnuplot's messages go to a file, not a pipe: a child blocked on a
 * full stderr pipe while the parent writes the script would deadlock both.
 *
 * Panels with nothing to draw (no evaluation yet, a run from before alignment
 * and uniformity were logged) say so instead of failing: gnuplot refuses to
 * plot an empty datablock. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/plot.h"

#define DEFAULT_WIDTH 1800
#define DEFAULT_HEIGHT 600

/* A gnuplot single-quoted string: no escapes, a quote is doubled. */
static void put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s != '\n' && *s != '\r') fputc(*s, f);
    }
    fputc('\'', f);
}

static void put_number(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, " %.17g", v);
    else
        fputs(" NaN", f);
}

static int has_plane_point(const simcse_metrics_log *m, int e) {
    return isfinite(m->alignment[e]) && isfinite(m->uniformity[e]);
}

static void put_datablocks(FILE *f, const simcse_metrics_log *m, int best) {
    fputs("$steps << EOD\n# step loss lr\n", f);
    for (int i = 0; i < m->n_steps; i++) {
        fprintf(f, "%lld", (long long)m->step[i]);
        put_number(f, m->loss[i]);
        put_number(f, m->lr[i]);
        fputc('\n', f);
    }
    fputs("EOD\n$evals << EOD\n# step avg_spearman", f);
    for (int k = 0; k < m->n_tasks; k++) fprintf(f, " %s_spearman", m->task[k]);
    fputs(" alignment uniformity\n", f);
    for (int e = 0; e < m->n_evals; e++) {
        fprintf(f, "%lld", (long long)m->eval_step[e]);
        put_number(f, m->avg[e]);
        for (int k = 0; k < m->n_tasks; k++) put_number(f, m->score[(size_t)e * SIMCSE_PLOT_MAX_TASKS + k]);
        put_number(f, m->alignment[e]);
        put_number(f, m->uniformity[e]);
        fputc('\n', f);
    }
    /* the plane: an arrow from each evaluation to the next, in time order */
    fputs("EOD\n$plane_path << EOD\n# uniformity alignment d_uniformity d_alignment\n", f);
    int prev = -1, first = -1;
    for (int e = 0; e < m->n_evals; e++) {
        if (!has_plane_point(m, e)) continue;
        if (first < 0) first = e;
        if (prev >= 0) {
            fprintf(f, "%.17g %.17g %.17g %.17g\n", m->uniformity[prev], m->alignment[prev],
                    m->uniformity[e] - m->uniformity[prev], m->alignment[e] - m->alignment[prev]);
        }
        prev = e;
    }
    fputs("EOD\n$plane_start << EOD\n# uniformity alignment step\n", f);
    if (first >= 0)
        fprintf(f, "%.17g %.17g %lld\n", m->uniformity[first], m->alignment[first], (long long)m->eval_step[first]);
    fputs("EOD\n$best << EOD\n# step avg_spearman (the best checkpoint)\n", f);
    if (best >= 0) {
        fprintf(f, "%lld", (long long)m->eval_step[best]);
        put_number(f, m->avg[best]);
        fputc('\n', f);
    }
    fputs("EOD\n$plane_best << EOD\n# uniformity alignment step\n", f);
    if (best >= 0 && has_plane_point(m, best))
        fprintf(f, "%.17g %.17g %lld\n", m->uniformity[best], m->alignment[best], (long long)m->eval_step[best]);
    fputs("EOD\n\n", f);
}

/* A panel with a message where there is nothing to plot. */
static void put_empty_panel(FILE *f, const char *title, const char *message) {
    fprintf(f,
            "  set title '%s'\n"
            "  unset xlabel; unset ylabel; unset y2label; unset key; unset tics; unset border; unset colorbox\n"
            "  set label 1 '%s' at graph 0.5, 0.5 center textcolor rgb '#666666'\n"
            "  plot [0:1] [0:1] 2 notitle\n"
            "  unset label 1; set border; set tics; set key\n",
            title, message);
}

/* Panel k of 3 at fixed screen margins (room for the learning-rate axis on the
 * right of the first and the colour box of the third): multiplot's automatic
 * layout lets a right-hand axis run into the next panel. */
static void put_margins(FILE *f, int k) {
    static const double left[3] = {0.045, 0.395, 0.71}, right[3] = {0.265, 0.625, 0.915};
    fprintf(f,
            "  set lmargin at screen %.3f; set rmargin at screen %.3f; set tmargin at screen 0.86; "
            "set bmargin at screen 0.22\n",
            left[k], right[k]);
}

/* Steps 0..last with a little air, so the first and last points clear the frame. */
static void put_step_range(FILE *f, int64_t last) {
    fprintf(f, "  set xrange [%.6g:%.6g]\n", -0.03 * (double)last, 1.03 * (double)last);
}

static void put_panels(FILE *f, const simcse_metrics_log *m, int best) {
    /* the two step axes agree, so a dev score lines up with the loss it follows */
    int64_t last = 1;
    if (m->n_steps && m->step[m->n_steps - 1] > last) last = m->step[m->n_steps - 1];
    if (m->n_evals && m->eval_step[m->n_evals - 1] > last) last = m->eval_step[m->n_evals - 1];
    /* 1: loss and learning rate per step */
    put_margins(f, 0);
    if (m->n_steps == 0) {
        put_empty_panel(f, "Loss and learning rate", "no training step logged yet");
    } else {
        fputs("  set title 'Loss and learning rate'\n"
              "  set xlabel 'step'; set ylabel 'contrastive loss'; set y2label 'learning rate'\n"
              "  set ytics nomirror; set y2tics; set format y2 '%.1e'; set autoscale\n"
              "  set yrange [0:*]; set y2range [0:*]\n",
              f);
        put_step_range(f, last);
        fputs("  plot $steps using 1:2 with lines lw 1.5 lc rgb '#1f77b4' title 'loss', \\\n"
              "       $steps using 1:3 axes x1y2 with lines lw 1.5 dt 2 lc rgb '#ff7f0e' title 'learning rate'\n"
              "  unset y2tics; unset y2label; set ytics mirror; set format y2\n",
              f);
    }
    /* 2: the dev score of each task over the steps */
    put_margins(f, 1);
    if (m->n_evals == 0 || m->n_tasks == 0) {
        put_empty_panel(f, "Dev score", "no evaluation in metrics.jsonl");
    } else {
        static const char *colours[] = {"#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
        fputs("  set title 'Dev score per evaluation'\n"
              "  set xlabel 'step'; set ylabel 'Spearman x 100'; set autoscale\n",
              f);
        put_step_range(f, last);
        fputs("  plot", f);
        for (int k = 0; k < m->n_tasks; k++)
            fprintf(f, "%s $evals using 1:%d with linespoints lw 1.5 pt 7 ps 0.8 lc rgb '%s' title '%s dev' noenhanced",
                    k ? ", \\\n      " : "", 3 + k, colours[k % 7], m->task[k]);
        if (m->n_tasks > 1)
            fputs(", \\\n       $evals using 1:2 with linespoints lw 2 pt 5 ps 0.8 lc rgb 'black' title 'average'", f);
        if (best >= 0) /* the trainer selects on the average */
            fputs(", \\\n       $best using 1:2 with points pt 3 ps 3 lw 2 lc rgb '#d62728' title 'best checkpoint'",
                  f);
        fputc('\n', f);
    }
    /* 3: the alignment-uniformity plane (Figure 2 of the paper) */
    put_margins(f, 2);
    int points = 0;
    for (int e = 0; e < m->n_evals; e++) points += has_plane_point(m, e);
    if (points == 0) {
        put_empty_panel(f, "Alignment and uniformity (STS-B dev)",
                        m->n_evals ? "no alignment / uniformity in metrics.jsonl" : "no evaluation in metrics.jsonl");
        return;
    }
    int col_align = 3 + m->n_tasks, col_unif = 4 + m->n_tasks;
    fprintf(f,
            "  set title 'Alignment and uniformity (STS-B dev)'\n"
            "  set xlabel 'uniformity  (lower is better)'; set ylabel 'alignment  (lower is better)'\n"
            "  set autoscale; set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08\n"
            "  set palette defined (0 '#c6dbef', 1 '#08306b'); set cblabel 'step'; set colorbox; set cbrange [0:%lld]\n"
            "  set label 3 '{/:Bold \\342\\206\\231 better}' at graph 0.03, graph 0.05 textcolor rgb '#444444'\n"
            "  plot $plane_path using 1:2:3:4 with vectors head filled size screen 0.009, 22 lw 1.2 lc rgb '#999999' "
            "notitle, \\\n"
            "       $evals using %d:%d:1 with points pt 7 ps 1.3 lc palette title 'evaluation', \\\n"
            "       $plane_start using 1:2 with points pt 6 ps 3 lw 2 lc rgb 'black' title 'start', \\\n"
            "       $plane_best using 1:2 with points pt 3 ps 3.5 lw 2 lc rgb '#d62728' title 'best checkpoint'\n"
            "  unset label 3; unset colorbox; unset cblabel; set offsets 0, 0, 0, 0\n",
            (long long)last, col_unif, col_align);
}

char *simcse_plot_script(const simcse_metrics_log *m, const char *title, int width, int height) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) simcse_fatal("plot: open_memstream failed");
    int best = simcse_metrics_log_best(m);
    fputs("# The picture of a simcse training run, written by `simcse plot` from metrics.jsonl.\n"
          "# The plotted series are the datablocks below; `gnuplot plot.gp` in the run directory\n"
          "# draws plot.png and plot.svg again.\n",
          f);
    fputs("if (!exists('png_file')) png_file = 'plot.png'\n"
          "if (!exists('svg_file')) svg_file = 'plot.svg'\n\n",
          f);
    put_datablocks(f, m, best);
    fputs("page_title = ", f);
    put_quoted(f, title);
    fputc('\n', f);
    fputs("do for [format in 'png svg'] {\n"
          "  if (format eq 'png') {\n",
          f);
    fprintf(f, "    set terminal pngcairo size %d, %d enhanced font 'DejaVu Sans,11' background rgb 'white'\n", width,
            height);
    fputs("    set output png_file\n"
          "  } else {\n",
          f);
    fprintf(f, "    set terminal svg size %d, %d enhanced font 'DejaVu Sans,11' background rgb 'white'\n", width,
            height);
    fputs("    set output svg_file\n"
          "  }\n"
          "  set grid lc rgb '#dddddd'; set border lc rgb '#444444'\n"
          "  set key below horizontal samplen 2.5 spacing 1.1 width 1\n"
          "  set multiplot title page_title noenhanced font 'DejaVu Sans,13'\n",
          f);
    put_panels(f, m, best);
    fputs("  unset multiplot\n"
          "  set output\n"
          "}\n",
          f);
    fclose(f);
    return text;
}

/* The run's title: its directory, its last step, and the best evaluation. */
static void make_title(const char *run_dir, const simcse_metrics_log *m, char *out, size_t cap) {
    size_t used = 0;
    snprintf(out, cap, "%s: %lld steps", run_dir, m->n_steps ? (long long)m->step[m->n_steps - 1] : 0LL);
    int best = simcse_metrics_log_best(m);
    if (best < 0) return;
    used = strlen(out);
    snprintf(out + used, cap - used, ", best dev score %.2f at step %lld", m->avg[best], (long long)m->eval_step[best]);
    if (m->eval_step[0] == 0 && isfinite(m->avg[0])) {
        used = strlen(out);
        snprintf(out + used, cap - used, " (%.2f before training)", m->avg[0]);
    }
}

static int program_on_path(const char *prog) {
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char full[4096];
        if (n > 0 && n + strlen(prog) + 2 < sizeof full) {
            snprintf(full, sizeof full, "%.*s/%s", (int)n, p, prog);
            if (access(full, X_OK) == 0) return 1;
        }
        p += n;
        if (*p == ':') p++;
    }
    return 0;
}

/* The first line of gnuplot's messages that says what went wrong (or the first line). */
static void first_error_line(const char *log, char *out, size_t cap) {
    out[0] = 0;
    size_t n;
    char *text = simcse_read_file(log, &n);
    if (!text) return;
    const char *pick = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ') line++;
        if (!*line || *line == '^') continue;
        if (!pick) pick = line;
        if (strstr(line, "rror") || strstr(line, "invalid") || strstr(line, "unknown")) {
            pick = line;
            break;
        }
    }
    if (pick) snprintf(out, cap, "%s", pick);
    free(text);
    simcse_clear_error();
}

/* Runs prog with cwd = dir, writes script down its stdin; its stdout and stderr
 * go to log_name (in dir). Returns its exit status, or -1 + error. */
static int run_gnuplot(const char *prog, const char *dir, const char *log_name, const char *script, size_t len) {
    int in[2];
    if (pipe(in) != 0) return simcse_error("plot: pipe failed: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        return simcse_error("plot: fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        close(in[1]);
        if (chdir(dir) != 0) _exit(126);
        int log = open(log_name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log < 0 || dup2(in[0], 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) _exit(126);
        execlp(prog, prog, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    /* A gnuplot that exits early must give an error here, not kill us with SIGPIPE. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old);
    const char *p = script;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(in[1], p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* EPIPE: gnuplot stopped reading; its status says why */
        p += w;
        left -= (size_t)w;
    }
    close(in[1]);
    sigaction(SIGPIPE, &old, NULL);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return simcse_error("plot: waitpid failed: %s", strerror(errno));
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

int simcse_plot_run(const char *run_dir, const simcse_plot_options *opt) {
    int width = opt && opt->width > 0 ? opt->width : DEFAULT_WIDTH;
    int height = opt && opt->height > 0 ? opt->height : DEFAULT_HEIGHT;
    const char *prog = opt && opt->gnuplot ? opt->gnuplot : getenv("SIMCSE_GNUPLOT");
    if (!prog || !*prog) prog = "gnuplot";
    if (width < 200 || height < 100 || width > 20000 || height > 20000)
        return simcse_error("plot: size %d x %d: expected 200..20000 x 100..20000 pixels", width, height);
    char *metrics = simcse_path_join(run_dir, "metrics.jsonl");
    simcse_metrics_log m;
    int rc = simcse_metrics_log_read(metrics, &m);
    free(metrics);
    if (rc != 0) return -1;
    char title[1024];
    make_title(run_dir, &m, title, sizeof title);
    char *script = simcse_plot_script(&m, title, width, height);
    simcse_metrics_log_free(&m);

    char *gp = simcse_path_join(run_dir, "plot.gp");
    rc = simcse_write_file_atomic(gp, script, strlen(script));
    free(gp);
    if (rc == 0 && !program_on_path(prog))
        rc = simcse_error("plot: %s: gnuplot not found (Debian: apt-get install gnuplot-nox; or set SIMCSE_GNUPLOT)",
                          prog);
    if (rc != 0) {
        free(script);
        return -1;
    }
    /* The child writes the temporary names; they are renamed when it succeeded. */
    char png_name[64], svg_name[64], log_name[64], pre[200];
    snprintf(png_name, sizeof png_name, "plot.png.tmp%ld", (long)getpid());
    snprintf(svg_name, sizeof svg_name, "plot.svg.tmp%ld", (long)getpid());
    snprintf(log_name, sizeof log_name, "plot.log.tmp%ld", (long)getpid());
    snprintf(pre, sizeof pre, "png_file = '%s'; svg_file = '%s'\n", png_name, svg_name);
    size_t pre_len = strlen(pre), body_len = strlen(script);
    char *piped = simcse_xmalloc(pre_len + body_len + 1);
    memcpy(piped, pre, pre_len);
    memcpy(piped + pre_len, script, body_len + 1);
    free(script);
    int status = run_gnuplot(prog, run_dir, log_name, piped, pre_len + body_len);
    free(piped);
    char *log = simcse_path_join(run_dir, log_name);
    char *png_tmp = simcse_path_join(run_dir, png_name), *svg_tmp = simcse_path_join(run_dir, svg_name);
    char *png = simcse_path_join(run_dir, "plot.png"), *svg = simcse_path_join(run_dir, "plot.svg");
    if (status < 0) {
        rc = -1;
    } else if (status != 0) {
        char why[512];
        first_error_line(log, why, sizeof why);
        char *kept = simcse_path_join(run_dir, "plot.log");
        rename(log, kept);
        rc = simcse_error("plot: %s failed (%s %d)%s%s; script %s/plot.gp, messages %s", prog,
                          status == 127 ? "could not run it, status" : "exit status", status, why[0] ? ": " : "", why,
                          run_dir, kept);
        free(kept);
    } else if (!simcse_file_exists(png_tmp) || !simcse_file_exists(svg_tmp)) {
        rc = simcse_error("plot: %s exited cleanly but wrote no plot.png / plot.svg in %s", prog, run_dir);
    } else if (rename(png_tmp, png) != 0 || rename(svg_tmp, svg) != 0) {
        rc = simcse_error("plot: cannot rename into %s: %s", png, strerror(errno));
    }
    unlink(png_tmp);
    unlink(svg_tmp);
    if (rc == 0) unlink(log);
    free(log);
    free(png_tmp);
    free(svg_tmp);
    free(png);
    free(svg);
    return rc;
}
