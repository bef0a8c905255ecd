/* STS task loaders (SentEval's preprocessed files) and the STS evaluation.
 *
 * - Files are small (< 1 MB), so each is read whole and split into lines on
 *   \n (a trailing \r is dropped; a final newline does not make an extra line,
 *   like Python's splitlines). Fields are split on TAB only: the STS files hold
 *   bare '"' characters and must never be CSV-quote-parsed.
 * - Sentences are normalised like SentEval (s.split() then ' '.join): ASCII
 *   whitespace runs -> one space, trimmed.
 * - STS12-16: the sets of a year are the STS.input.*.txt files of its
 *   directory, sorted by name; input line k pairs with gs line k, the two files
 *   must have the same number of lines, an empty gs line marks an unscored pair
 *   (skipped). The pooled pairs give one Spearman ("all").
 * - Evaluation embeds the pairs' first and second sentences in chunks of
 *   batch_size and keeps only the cosine per pair, so memory is O(batch). */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "simcse/common.h"
#include "simcse/eval.h"

int simcse_split_parse(const char *s, simcse_split *out) {
    if (s && (strcasecmp(s, "dev") == 0 || strcasecmp(s, "validation") == 0)) {
        *out = SIMCSE_SPLIT_DEV;
        return 0;
    }
    if (s && strcasecmp(s, "test") == 0) {
        *out = SIMCSE_SPLIT_TEST;
        return 0;
    }
    return simcse_error("unknown split '%s' (expected dev or test)", s ? s : "(null)");
}

const char *simcse_split_name(simcse_split s) { return s == SIMCSE_SPLIT_DEV ? "dev" : "test"; }

/* ---- lines and fields ---- */

typedef struct {
    char *text;  /* the whole file, modified in place */
    char **line; /* NUL-terminated lines without \n / trailing \r */
    int n;
} lines;

static int read_lines(const char *path, lines *out) {
    memset(out, 0, sizeof *out);
    size_t len = 0;
    out->text = simcse_read_file(path, &len);
    if (!out->text) return -1;
    int cap = 1024;
    out->line = simcse_xmalloc((size_t)cap * sizeof *out->line);
    char *p = out->text, *end = out->text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        if (memchr(p, 0, (size_t)(e - p))) {
            int line_no = out->n + 1;
            free(out->text);
            free(out->line);
            memset(out, 0, sizeof *out);
            return simcse_error("%s:%d: NUL byte in a text line", path, line_no);
        }
        while (e > p && e[-1] == '\r') e--;
        *e = 0;
        if (out->n == cap) {
            cap *= 2;
            out->line = simcse_xrealloc(out->line, (size_t)cap * sizeof *out->line);
        }
        out->line[out->n++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}

static void free_lines(lines *l) {
    free(l->text);
    free(l->line);
    memset(l, 0, sizeof *l);
}

/* Splits s on TAB in place; returns the field count (at most max fields kept). */
static int split_tabs(char *s, char **f, int max) {
    int n = 0;
    for (;;) {
        char *t = strchr(s, '\t');
        if (n < max) f[n] = s;
        n++;
        if (!t) break;
        *t = 0;
        s = t + 1;
    }
    return n;
}

static int is_space_c(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

static int blank(const char *s) {
    for (; *s; s++)
        if (!is_space_c((unsigned char)*s)) return 0;
    return 1;
}

/* ' '.join(s.split()) for ASCII whitespace. */
static char *normalise(const char *s) {
    size_t n = strlen(s);
    char *o = simcse_xmalloc(n + 1);
    size_t k = 0;
    int pending = 0;
    for (; *s; s++) {
        if (is_space_c((unsigned char)*s)) {
            pending = k > 0;
            continue;
        }
        if (pending) o[k++] = ' ';
        pending = 0;
        o[k++] = *s;
    }
    o[k] = 0;
    return o;
}

static int parse_score(const char *s, double *v) {
    while (is_space_c((unsigned char)*s)) s++;
    if (!*s) return -1;
    char *e = NULL;
    double x = strtod(s, &e);
    if (e == s) return -1;
    while (is_space_c((unsigned char)*e)) e++;
    if (*e || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* ---- building a task ---- */

typedef struct {
    simcse_sts_data *d;
    int cap;
} builder;

static void add_pair(builder *b, const char *s1, const char *s2, double score) {
    simcse_sts_data *d = b->d;
    if (d->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        d->s1 = simcse_xrealloc(d->s1, (size_t)b->cap * sizeof *d->s1);
        d->s2 = simcse_xrealloc(d->s2, (size_t)b->cap * sizeof *d->s2);
        d->gold = simcse_xrealloc(d->gold, (size_t)b->cap * sizeof *d->gold);
    }
    d->s1[d->n] = normalise(s1);
    d->s2[d->n] = normalise(s2);
    d->gold[d->n] = score;
    d->n++;
}

static void begin_set(simcse_sts_data *d, const char *name) {
    snprintf(d->set_name[d->n_sets], sizeof d->set_name[0], "%s", name);
    d->set_begin[d->n_sets] = d->n;
    d->n_sets++;
    d->set_begin[d->n_sets] = d->n;
}

static void end_set(simcse_sts_data *d) { d->set_begin[d->n_sets] = d->n; }

static int load_stsb(const char *data_dir, simcse_split split, builder *b) {
    char rel[96];
    snprintf(rel, sizeof rel, "stsbenchmark/senteval_tok/sts-%s.csv", split == SIMCSE_SPLIT_DEV ? "dev" : "test");
    char *path = simcse_path_join(data_dir, rel);
    lines L;
    int rc = read_lines(path, &L);
    begin_set(b->d, "stsb");
    for (int i = 0; rc == 0 && i < L.n; i++) {
        if (blank(L.line[i])) continue;
        char *f[7];
        int nf = split_tabs(L.line[i], f, 7);
        double score;
        if (nf < 7)
            rc = simcse_error("%s:%d: expected 7 TAB-separated fields, found %d", path, i + 1, nf);
        else if (parse_score(f[4], &score) != 0)
            rc = simcse_error("%s:%d: field 5 '%.40s' is not a score", path, i + 1, f[4]);
        else
            add_pair(b, f[5], f[6], score);
    }
    end_set(b->d);
    if (rc == 0 && b->d->n == 0) rc = simcse_error("%s: no pairs", path);
    free_lines(&L);
    free(path);
    return rc;
}

static int load_sickr(const char *data_dir, simcse_split split, builder *b) {
    char *path =
        simcse_path_join(data_dir, split == SIMCSE_SPLIT_DEV ? "sick/SICK_trial.txt" : "sick/SICK_test_annotated.txt");
    lines L;
    int rc = read_lines(path, &L);
    int ca = -1, cb = -1, cs = -1, need = 0, header = 1;
    begin_set(b->d, "sickr");
    for (int i = 0; rc == 0 && i < L.n; i++) {
        if (blank(L.line[i])) continue;
        char *f[64];
        int nf = split_tabs(L.line[i], f, 64);
        if (header) {
            for (int k = 0; k < nf && k < 64; k++) {
                if (strcmp(f[k], "sentence_A") == 0) ca = k;
                if (strcmp(f[k], "sentence_B") == 0) cb = k;
                if (strcmp(f[k], "relatedness_score") == 0) cs = k;
            }
            if (ca < 0 || cb < 0 || cs < 0) {
                rc = simcse_error("%s:%d: header lacks sentence_A, sentence_B or relatedness_score", path, i + 1);
                break;
            }
            need = (ca > cb ? ca : cb);
            need = (need > cs ? need : cs) + 1;
            header = 0;
            continue;
        }
        double score;
        if (nf < need)
            rc = simcse_error("%s:%d: expected %d TAB-separated fields, found %d", path, i + 1, need, nf);
        else if (parse_score(f[cs], &score) != 0)
            rc = simcse_error("%s:%d: relatedness_score '%.40s' is not a number", path, i + 1, f[cs]);
        else
            add_pair(b, f[ca], f[cb], score);
    }
    end_set(b->d);
    if (rc == 0 && b->d->n == 0) rc = simcse_error("%s: no pairs", path);
    free_lines(&L);
    free(path);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int load_sts_year(const char *data_dir, int year, builder *b) {
    char rel[64];
    snprintf(rel, sizeof rel, "senteval_sts/STS%d-en-test", year);
    char *dir = simcse_path_join(data_dir, rel);
    DIR *dp = opendir(dir);
    if (!dp) {
        simcse_error("%s: cannot list the directory", dir);
        free(dir);
        return -1;
    }
    char *sets[64];
    int n_sets = 0, rc = 0;
    const char *pre = "STS.input.", *suf = ".txt";
    size_t lp = strlen(pre), ls = strlen(suf);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= lp + ls || strncmp(e->d_name, pre, lp) != 0 || strcmp(e->d_name + l - ls, suf) != 0) continue;
        if (n_sets == 64 || n_sets == SIMCSE_STS_MAX_SETS) {
            rc = simcse_error("%s: more than %d STS.input.*.txt files", dir, SIMCSE_STS_MAX_SETS);
            break;
        }
        size_t k = l - lp - ls;
        sets[n_sets] = simcse_xmalloc(k + 1);
        memcpy(sets[n_sets], e->d_name + lp, k);
        sets[n_sets][k] = 0;
        n_sets++;
    }
    closedir(dp);
    if (rc == 0 && n_sets == 0) rc = simcse_error("%s: no STS.input.*.txt files", dir);
    if (rc == 0) qsort(sets, (size_t)n_sets, sizeof *sets, cmp_str);
    for (int s = 0; rc == 0 && s < n_sets; s++) {
        char name[256];
        snprintf(name, sizeof name, "STS.input.%s.txt", sets[s]);
        char *ip = simcse_path_join(dir, name);
        snprintf(name, sizeof name, "STS.gs.%s.txt", sets[s]);
        char *gp = simcse_path_join(dir, name);
        lines in, gs;
        memset(&gs, 0, sizeof gs);
        rc = read_lines(ip, &in);
        if (rc == 0) rc = read_lines(gp, &gs);
        if (rc == 0 && in.n != gs.n)
            rc = simcse_error("%s has %d lines but %s has %d: the pairs and scores do not line up", ip, in.n, gp, gs.n);
        begin_set(b->d, sets[s]);
        for (int i = 0; rc == 0 && i < in.n; i++) {
            if (blank(gs.line[i])) continue; /* unscored pair */
            double score;
            if (parse_score(gs.line[i], &score) != 0) {
                rc = simcse_error("%s:%d: '%.40s' is not a score", gp, i + 1, gs.line[i]);
                break;
            }
            char *f[2];
            int nf = split_tabs(in.line[i], f, 2);
            if (nf < 2)
                rc = simcse_error("%s:%d: expected 2 TAB-separated sentences, found %d field(s)", ip, i + 1, nf);
            else
                add_pair(b, f[0], f[1], score);
        }
        end_set(b->d);
        free_lines(&in);
        free_lines(&gs);
        free(ip);
        free(gp);
    }
    for (int s = 0; s < n_sets; s++) free(sets[s]);
    if (rc == 0 && b->d->n == 0) rc = simcse_error("%s: no scored pairs", dir);
    free(dir);
    return rc;
}

/* Canonical task name, or NULL. */
static const char *canonical_task(const char *t) {
    static const struct {
        const char *alias, *name;
    } map[] = {{"stsb", "stsb"},    {"sts-b", "stsb"},  {"stsbenchmark", "stsb"},     {"sickr", "sickr"},
               {"sick-r", "sickr"}, {"sick", "sickr"},  {"sickrelatedness", "sickr"}, {"sts12", "sts12"},
               {"sts13", "sts13"},  {"sts14", "sts14"}, {"sts15", "sts15"},           {"sts16", "sts16"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(t, map[i].alias) == 0) return map[i].name;
    return NULL;
}

int simcse_sts_load(const char *data_dir, const char *task, simcse_split split, simcse_sts_data *out) {
    memset(out, 0, sizeof *out);
    const char *name = task ? canonical_task(task) : NULL;
    if (!name)
        return simcse_error("unknown STS task '%s' (expected stsb, sickr, sts12, sts13, sts14, sts15, sts16)",
                            task ? task : "(null)");
    if (!data_dir) return simcse_error("%s: no data directory given", name);
    snprintf(out->task, sizeof out->task, "%s", name);
    out->split = split;
    builder b = {out, 0};
    int rc;
    if (strcmp(name, "stsb") == 0)
        rc = load_stsb(data_dir, split, &b);
    else if (strcmp(name, "sickr") == 0)
        rc = load_sickr(data_dir, split, &b);
    else if (split != SIMCSE_SPLIT_TEST)
        rc = simcse_error("%s has no dev split (STS12-16 are test-only; use stsb or sickr for dev)", name);
    else
        rc = load_sts_year(data_dir, atoi(name + 3), &b);
    if (rc != 0) {
        simcse_sts_data_free(out);
        return -1;
    }
    return 0;
}

void simcse_sts_data_free(simcse_sts_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        free(d->s1[i]);
        free(d->s2[i]);
    }
    free(d->s1);
    free(d->s2);
    free(d->gold);
    memset(d, 0, sizeof *d);
}

/* ---- evaluation ---- */

/* 1 when every value of rows [n, dim] is finite. */
static int rows_finite(const float *x, int n, int dim) {
    for (size_t i = 0; i < (size_t)n * (size_t)dim; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int simcse_eval_sts_data(const simcse_sts_data *d, int dim, int batch_size, simcse_embed_fn embed, void *ctx,
                         simcse_task_score *out) {
    if (dim < 1 || batch_size < 1 || !embed)
        return simcse_error("%s: bad evaluation arguments (dim %d, batch size %d)", d->task, dim, batch_size);
    memset(out, 0, sizeof *out);
    snprintf(out->task, sizeof out->task, "%s", d->task);
    out->n_pairs = d->n;
    int bs = batch_size < d->n ? batch_size : d->n;
    if (bs < 1) bs = 1;
    float *e1 = simcse_xmalloc((size_t)bs * (size_t)dim * sizeof *e1);
    float *e2 = simcse_xmalloc((size_t)bs * (size_t)dim * sizeof *e2);
    double *sys = simcse_xmalloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *sys);
    int rc = 0;
    for (int i = 0; i < d->n && rc == 0; i += bs) {
        int m = d->n - i < bs ? d->n - i : bs;
        if (embed(ctx, (const char *const *)d->s1 + i, m, e1) != 0 ||
            embed(ctx, (const char *const *)d->s2 + i, m, e2) != 0) {
            rc = simcse_error_prefix("%s (%s): embedding pairs %d..%d", d->task, simcse_split_name(d->split), i,
                                     i + m - 1);
            break;
        }
        for (int k = 0; k < m; k++) {
            sys[i + k] = simcse_cosine(e1 + (size_t)k * dim, e2 + (size_t)k * dim, dim);
            out->n_nonfinite += !rows_finite(e1 + (size_t)k * dim, 1, dim) + !rows_finite(e2 + (size_t)k * dim, 1, dim);
        }
    }
    if (rc == 0) {
        out->spearman = 100.0 * simcse_spearman(sys, d->gold, d->n);
        out->pearson = 100.0 * simcse_pearson(sys, d->gold, d->n);
    }
    free(e1);
    free(e2);
    free(sys);
    return rc;
}

int simcse_eval_sts(const char *data_dir, const char *tasks, simcse_split split, int dim, int batch_size,
                    simcse_embed_fn embed, void *ctx, simcse_eval_result *out) {
    memset(out, 0, sizeof *out);
    out->split = split;
    if (!tasks) return simcse_error("task list: none given");
    const char *names[SIMCSE_EVAL_MAX_TASKS];
    int n = 0;
    char *copy = simcse_xstrdup(tasks), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*tok) continue;
        if (strcasecmp(tok, "all") == 0) {
            static const char *const test_all[] = {"sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"};
            static const char *const dev_all[] = {"stsb", "sickr"};
            const char *const *list = split == SIMCSE_SPLIT_TEST ? test_all : dev_all;
            int m = split == SIMCSE_SPLIT_TEST ? 7 : 2;
            for (int k = 0; k < m && rc == 0; k++) {
                if (n == SIMCSE_EVAL_MAX_TASKS)
                    rc = simcse_error("task list: more than %d tasks", SIMCSE_EVAL_MAX_TASKS);
                else
                    names[n++] = list[k];
            }
            continue;
        }
        const char *c = canonical_task(tok);
        if (!c)
            rc = simcse_error("task list: unknown task '%s' (expected stsb, sickr, sts12..sts16 or all)", tok);
        else if (n == SIMCSE_EVAL_MAX_TASKS)
            rc = simcse_error("task list: more than %d tasks", SIMCSE_EVAL_MAX_TASKS);
        else
            names[n++] = c;
    }
    free(copy);
    if (rc) return -1;
    if (n == 0) return simcse_error("task list: '%s' names no task", tasks);
    double sum = 0;
    for (int t = 0; t < n; t++) {
        simcse_sts_data d;
        if (simcse_sts_load(data_dir, names[t], split, &d) != 0) return -1;
        rc = simcse_eval_sts_data(&d, dim, batch_size, embed, ctx, &out->task[t]);
        simcse_sts_data_free(&d);
        if (rc) return -1;
        out->n_tasks = t + 1;
        sum += out->task[t].spearman;
    }
    out->avg_spearman = sum / n;
    return 0;
}
