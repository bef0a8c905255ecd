/* The run directory (see include/simcse/run_dir.h). Paths are compared after
 * realpath(), so a link or a "../x" spelling of the model directory is caught
 * too. Only names this program writes are ever removed (NAME.tmp<digits>, the
 * tail of metrics.jsonl): the directory may hold a user's other files. */
#include "simcse/run_dir.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simcse/common.h"

/* 1 if dir is inside (or is) top: both resolved paths. */
static int within(const char *dir, const char *top) {
    size_t n = strlen(top);
    if (strncmp(dir, top, n) != 0) return 0;
    return dir[n] == 0 || dir[n] == '/' || (n == 1 && top[0] == '/');
}

static int is_empty_dir(const char *dir, int *empty) {
    DIR *d = opendir(dir);
    if (!d) return simcse_error("%s: cannot read the output directory: %s", dir, strerror(errno));
    struct dirent *e;
    *empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            *empty = 0;
            break;
        }
    closedir(d);
    return 0;
}

int simcse_run_dir_check(const char *out_dir, const simcse_train_config *cfg, int overwrite, int resume) {
    struct stat sb;
    if (stat(out_dir, &sb) != 0) {
        if (errno == ENOENT) return 0; /* a new directory holds nothing and contains nothing */
        return simcse_error("%s: cannot use as the output directory: %s", out_dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) return simcse_error("%s: the output directory exists and is not a directory", out_dir);
    char *out = realpath(out_dir, NULL);
    if (!out) return simcse_error("%s: cannot resolve the output directory: %s", out_dir, strerror(errno));
    /* what the run reads and must not write over */
    char model_config_dir[sizeof cfg->model_config];
    snprintf(model_config_dir, sizeof model_config_dir, "%s", cfg->model_config);
    char *slash = strrchr(model_config_dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(model_config_dir, sizeof model_config_dir, ".");
    const char *what[3] = {"model", "tokenizer", "model"}, *key[3] = {"model", "tokenizer", "model_config"};
    const char *paths[3] = {cfg->model, cfg->tokenizer[0] ? cfg->tokenizer : cfg->model,
                            cfg->model_config[0] ? model_config_dir : ""};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (!paths[i][0]) continue;
        char *p = realpath(paths[i], NULL);
        if (!p) continue; /* missing: loading it reports that */
        if (!strcmp(p, out))
            rc = simcse_error("%s: is the %s directory (%s '%s'); the run would overwrite its files: choose another "
                              "--output (--overwrite does not apply)",
                              out_dir, what[i], key[i], paths[i]);
        else if (within(p, out))
            rc = simcse_error("%s: contains the %s directory (%s '%s'); the run would overwrite its files: choose "
                              "another --output (--overwrite does not apply)",
                              out_dir, what[i], key[i], paths[i]);
        free(p);
    }
    free(out);
    if (rc != 0 || resume || overwrite) return rc;
    int empty = 0;
    if (is_empty_dir(out_dir, &empty) != 0) return -1;
    if (!empty)
        return simcse_error("%s: the output directory is not empty (a previous run?); pass --overwrite to write over "
                            "it, or --resume %s to continue that run",
                            out_dir, out_dir);
    return 0;
}

/* NAME.tmp<digits>: what simcse_write_file_atomic / simcse_atomic_open leave when killed */
static int is_temporary(const char *name) {
    const char *t = NULL;
    for (const char *p = strstr(name, ".tmp"); p; p = strstr(p + 1, ".tmp")) t = p;
    if (!t || t == name || !t[4]) return 0;
    for (const char *p = t + 4; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

static int clean_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? 0 : simcse_error("%s: cannot read: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_temporary(e->d_name)) continue;
        char *p = simcse_path_join(dir, e->d_name);
        struct stat sb;
        /* a file or a link (removed, not followed); a directory of that name is not ours */
        if (lstat(p, &sb) == 0 && !S_ISDIR(sb.st_mode) && unlink(p) != 0 && errno != ENOENT)
            rc = simcse_error("%s: cannot remove a stale temporary: %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
    return rc;
}

int simcse_run_dir_clean_temporaries(const char *out_dir) {
    static const char *subdirs[] = {"", "1_Pooling", "2_Dense"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        char *d = simcse_path_join(out_dir, subdirs[i]);
        int rc = clean_dir(d);
        free(d);
        if (rc) return -1;
    }
    return 0;
}

int simcse_run_dir_cut_metrics(const char *metrics_path, int64_t last_step) {
    struct stat sb;
    if (lstat(metrics_path, &sb) != 0 && errno == ENOENT) return 0;
    size_t n;
    char *text = simcse_read_file(metrics_path, &n);
    if (!text) return -1;
    /* the kept prefix: whole lines, each a record of a step <= last_step; the first
     * line that is cut short, unreadable or later ends it (steps only grow) */
    size_t keep = 0;
    while (last_step >= 0 && keep < n) {
        char *nl = memchr(text + keep, '\n', n - keep);
        if (!nl) break;
        cJSON *j = cJSON_ParseWithLength(text + keep, (size_t)(nl - (text + keep)));
        cJSON *s = j ? cJSON_GetObjectItem(j, "step") : NULL;
        int ok = cJSON_IsNumber(s) && s->valuedouble <= (double)last_step;
        cJSON_Delete(j);
        if (!ok) break;
        keep = (size_t)(nl - text) + 1;
    }
    free(text);
    if (keep == n) return 0;
    if (truncate(metrics_path, (off_t)keep) != 0)
        return simcse_error("%s: cannot cut back to the checkpoint: %s", metrics_path, strerror(errno));
    return 0;
}
