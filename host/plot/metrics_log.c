/* Reading a run's metrics.jsonl into the series the plot draws.
 *
 * Each line is parsed whole with cJSON (the file is written by the trainer, but
 * a killed run can leave a torn last line, and a person can edit it): anything
 * that is not a JSON object is an error naming the file and the line, never a
 * silently shorter curve. Kinds of record are told apart by their keys, so
 * records this reader does not know (added by later versions) are skipped. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/plot.h"

/* Capacities of the step and evaluation arrays (the lengths are in the log). */
typedef struct {
    int steps, evals;
} capacity;

/* A number, or NaN for a missing key or null; -1 + error for another type. */
static int get_number(const cJSON *o, const char *key, double *v, const char *path, long line) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x || cJSON_IsNull(x)) {
        *v = NAN;
        return 0;
    }
    if (!cJSON_IsNumber(x)) return simcse_error("%s:%ld: \"%s\" is not a number", path, line, key);
    *v = x->valuedouble;
    return 0;
}

static int task_index(simcse_metrics_log *m, const char *name, size_t len, const char *path, long line) {
    for (int k = 0; k < m->n_tasks; k++)
        if (strlen(m->task[k]) == len && !strncmp(m->task[k], name, len)) return k;
    if (len >= sizeof m->task[0]) return simcse_error("%s:%ld: task name '%.*s' too long", path, line, (int)len, name);
    if (m->n_tasks == SIMCSE_PLOT_MAX_TASKS)
        return simcse_error("%s:%ld: more than %d evaluation tasks", path, line, SIMCSE_PLOT_MAX_TASKS);
    memcpy(m->task[m->n_tasks], name, len);
    m->task[m->n_tasks][len] = 0;
    return m->n_tasks++;
}

static int add_step(simcse_metrics_log *m, capacity *cap, int64_t step, const cJSON *o, const char *path, long line) {
    double loss, lr;
    if (get_number(o, "loss", &loss, path, line) || get_number(o, "lr", &lr, path, line)) return -1;
    while (m->n_steps > 0 && m->step[m->n_steps - 1] >= step) m->n_steps--; /* a resumed run's replay */
    if (m->n_steps == cap->steps) {
        cap->steps = cap->steps ? 2 * cap->steps : 1024;
        m->step = simcse_xrealloc(m->step, (size_t)cap->steps * sizeof *m->step);
        m->loss = simcse_xrealloc(m->loss, (size_t)cap->steps * sizeof *m->loss);
        m->lr = simcse_xrealloc(m->lr, (size_t)cap->steps * sizeof *m->lr);
    }
    m->step[m->n_steps] = step;
    m->loss[m->n_steps] = loss;
    m->lr[m->n_steps] = lr;
    m->n_steps++;
    return 0;
}

static int add_eval(simcse_metrics_log *m, capacity *cap, int64_t step, const cJSON *o, const char *path, long line) {
    while (m->n_evals > 0 && m->eval_step[m->n_evals - 1] >= step) m->n_evals--;
    if (m->n_evals == cap->evals) {
        cap->evals = cap->evals ? 2 * cap->evals : 64;
        m->eval_step = simcse_xrealloc(m->eval_step, (size_t)cap->evals * sizeof *m->eval_step);
        m->avg = simcse_xrealloc(m->avg, (size_t)cap->evals * sizeof *m->avg);
        m->alignment = simcse_xrealloc(m->alignment, (size_t)cap->evals * sizeof *m->alignment);
        m->uniformity = simcse_xrealloc(m->uniformity, (size_t)cap->evals * sizeof *m->uniformity);
        m->score = simcse_xrealloc(m->score, (size_t)cap->evals * SIMCSE_PLOT_MAX_TASKS * sizeof *m->score);
    }
    int e = m->n_evals;
    double *row = m->score + (size_t)e * SIMCSE_PLOT_MAX_TASKS;
    for (int t = 0; t < SIMCSE_PLOT_MAX_TASKS; t++) row[t] = NAN;
    m->eval_step[e] = step;
    if (get_number(o, "eval_dev_avg_spearman", &m->avg[e], path, line) ||
        get_number(o, "eval_stsb_dev_alignment", &m->alignment[e], path, line) ||
        get_number(o, "eval_stsb_dev_uniformity", &m->uniformity[e], path, line))
        return -1;
    static const char prefix[] = "eval_", suffix[] = "_dev_spearman";
    const size_t np = sizeof prefix - 1, ns = sizeof suffix - 1;
    for (const cJSON *x = o->child; x; x = x->next) {
        const char *k = x->string;
        size_t n = strlen(k);
        if (n <= np + ns || strncmp(k, prefix, np) || strcmp(k + n - ns, suffix) || !strcmp(k, "eval_dev_avg_spearman"))
            continue;
        int t = task_index(m, k + np, n - np - ns, path, line);
        if (t < 0 || get_number(o, k, &row[t], path, line) != 0) return -1;
    }
    m->n_evals++;
    return 0;
}

int simcse_metrics_log_read(const char *path, simcse_metrics_log *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return simcse_error("%s: cannot open: %s", path, strerror(errno));
    capacity cap = {0, 0};
    char *buf = NULL;
    size_t buf_cap = 0;
    ssize_t len;
    long line = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&buf, &buf_cap, f)) >= 0) {
        line++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) buf[--len] = 0;
        if (len == 0) continue;
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(buf, (size_t)len + 1, &end, 1); /* + the NUL it must end at */
        if (!o || !cJSON_IsObject(o)) {
            rc = simcse_error("%s:%ld: %s", path, line, o ? "not a JSON object" : "malformed JSON");
            cJSON_Delete(o);
            break;
        }
        int is_step = cJSON_HasObjectItem(o, "loss"), is_eval = cJSON_HasObjectItem(o, "eval_dev_avg_spearman");
        if (is_step || is_eval) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
            if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble != floor(s->valuedouble) ||
                s->valuedouble > 9e15)
                rc = simcse_error("%s:%ld: \"step\" is missing or not a non-negative integer", path, line);
            else if (is_step)
                rc = add_step(out, &cap, (int64_t)s->valuedouble, o, path, line);
            else
                rc = add_eval(out, &cap, (int64_t)s->valuedouble, o, path, line);
        }
        cJSON_Delete(o);
    }
    if (rc == 0 && ferror(f)) rc = simcse_error("%s: read error", path);
    free(buf);
    fclose(f);
    if (rc != 0) simcse_metrics_log_free(out);
    return rc;
}

void simcse_metrics_log_free(simcse_metrics_log *m) {
    free(m->step);
    free(m->loss);
    free(m->lr);
    free(m->eval_step);
    free(m->avg);
    free(m->score);
    free(m->alignment);
    free(m->uniformity);
    memset(m, 0, sizeof *m);
}

int simcse_metrics_log_best(const simcse_metrics_log *m) {
    int best = -1;
    for (int e = 0; e < m->n_evals; e++)
        if (m->eval_step[e] > 0 && isfinite(m->avg[e]) && (best < 0 || m->avg[e] > m->avg[best])) best = e;
    return best;
}
