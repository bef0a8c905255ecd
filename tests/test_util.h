/* Helpers shared by the Criterion suites. Tests run from the repository root. */
#ifndef SIMCSE_TEST_UTIL_H
#define SIMCSE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/data_dir.h"
#include "simcse/loss.h"

/* The shared data directory ($SIMCSE_DATA_DIR or ../shared/data). */
static inline const char *test_data_dir(void) { return simcse_data_dir(); }
/* The CLI binary under test ($SIMCSE_BIN or build/simcse). */
static inline const char *test_bin(void) {
    const char *b = getenv("SIMCSE_BIN");
    return b && *b ? b : "build/simcse";
}

/* Removes a test's scratch directory (made with mkdtemp) and all in it: a training
 * run leaves megabytes, and make mutate runs the suite many times over. */
static inline int test_rm_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* One whole-batch training step's forward, loss and backward on one rank
 * (views = fields: 2 or 3). */
static inline int test_step_once(simcse_encoder *e, const simcse_packed *p, int B, int V, const simcse_loss_config *lc,
                                 float *loss) {
    simcse_step *s = simcse_step_create(e, lc, NULL, B, V);
    if (!s) return -1;
    int counts[1] = {B};
    int rc = simcse_step_run(s, p, counts, 1, loss);
    simcse_step_free(s);
    return rc;
}

/* The "loss" fields of a metrics.jsonl, one "\"loss\": x" per line (caller frees); NULL if unreadable. */
static inline char *test_metric_losses(const char *metrics_path) {
    size_t n;
    char *text = simcse_read_file(metrics_path, &n);
    if (!text) return NULL;
    char *res = calloc(n + 1, 1);
    for (char *p = strstr(text, "\"loss\": "); p; p = strstr(p + 1, "\"loss\": ")) {
        char *end = strchr(p, ',');
        if (!end) break;
        strncat(res, p, (size_t)(end - p));
        strcat(res, "\n");
    }
    free(text);
    return res;
}

#endif
