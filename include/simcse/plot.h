/* The picture of a training run: `simcse plot --run DIR` reads DIR/metrics.jsonl
 * and draws three panels into DIR/plot.png and DIR/plot.svg: loss and learning
 * rate per step; the dev score of each evaluation task over the steps; and the
 * alignment-uniformity plane (Figure 2 of the SimCSE paper, lower is better on
 * both axes), one point per evaluation joined in time order, start and best
 * checkpoint marked.
 *
 * gnuplot draws it, driven through a pipe: a real plotting program, packaged by
 * Debian (gnuplot-nox), with PNG (cairo) and SVG output from one script and no
 * library to link. The script, with the plotted series inline as datablocks, is
 * kept as DIR/plot.gp: what was plotted can be read there, and
 * `cd DIR && gnuplot plot.gp` draws it again. */
#ifndef SIMCSE_PLOT_H
#define SIMCSE_PLOT_H

#include <stdint.h>

#define SIMCSE_PLOT_MAX_TASKS 16

/* The series of a metrics.jsonl (host/plot/metrics_log.c). Step records carry
 * "loss"; evaluation records "eval_dev_avg_spearman", "eval_<task>_dev_spearman"
 * and "eval_stsb_dev_alignment" / "_uniformity"; other records are ignored.
 * A resumed run appends to the file, so a record whose step is not after the
 * previous one of its kind replaces the records it overlaps (what the resumed
 * run did is what stands). Missing and null values are NaN. */
typedef struct {
    int n_steps;
    int64_t *step;     /* [n_steps] */
    double *loss, *lr; /* [n_steps] */
    int n_evals;
    int64_t *eval_step; /* [n_evals] */
    double *avg;        /* [n_evals] eval_dev_avg_spearman */
    int n_tasks;        /* tasks in order of first appearance */
    char task[SIMCSE_PLOT_MAX_TASKS][32];
    double *score;                  /* [n_evals * SIMCSE_PLOT_MAX_TASKS]: row e, column = task */
    double *alignment, *uniformity; /* [n_evals] */
} simcse_metrics_log;

/* 0, or -1 + "PATH:LINE: problem" for a line that is not a JSON object or has a
 * step that is not an integer. */
int simcse_metrics_log_read(const char *path, simcse_metrics_log *out);
void simcse_metrics_log_free(simcse_metrics_log *m);
/* The evaluation the trainer exported as the best: the first maximum of the
 * average dev score after step 0 (the evaluation before training is not a
 * checkpoint); -1 when there is none. */
int simcse_metrics_log_best(const simcse_metrics_log *m);

typedef struct {
    int width, height;   /* pixels of the PNG (the SVG has the same size); 0: 1800 x 600 */
    const char *gnuplot; /* the program; NULL: $SIMCSE_GNUPLOT, else "gnuplot" on PATH */
} simcse_plot_options;

/* Reads run_dir/metrics.jsonl and writes run_dir/plot.gp, plot.png and plot.svg,
 * each to a temporary name and renamed. 0, or -1 + a one-line error (a missing
 * gnuplot names the package; a gnuplot failure quotes its first error line). */
int simcse_plot_run(const char *run_dir, const simcse_plot_options *opt);
/* The gnuplot script for m (the datablocks and the panels); caller frees. It
 * writes to the gnuplot variables png_file and svg_file, plot.png and plot.svg
 * unless set before it (simcse_plot_run sets temporary names). */
char *simcse_plot_script(const simcse_metrics_log *m, const char *title, int width, int height);

#endif
