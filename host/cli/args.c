/* Small helpers shared by the subcommands: option values and input lines. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/cli.h"
#include "simcse/common.h"
#include "simcse/ops.h"

int simcse_arg_str(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) return simcse_error("option %s needs a value", name);
    *val = argv[++*i];
    return 1;
}

int simcse_arg_int(int argc, char **argv, int *i, const char *name, int lo, int hi, int *val) {
    const char *s;
    int r = simcse_arg_str(argc, argv, i, name, &s);
    if (r <= 0) return r;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return simcse_error("option %s: expected an integer in [%d, %d], got '%s'", name, lo, hi, s);
    *val = (int)v;
    return 1;
}

int simcse_arg_threads(int argc, char **argv, int *i) {
    int n;
    int r = simcse_arg_int(argc, argv, i, "--threads", 1, 1024, &n);
    if (r <= 0) return r;
    return simcse_cpu_set_threads(n) < 0 ? -1 : 1;
}

char **simcse_read_lines(const char *path, int *n) {
    FILE *f = stdin;
    if (path && strcmp(path, "-") != 0) {
        f = fopen(path, "rb");
        if (!f) {
            simcse_error("%s: cannot open: %s", path, strerror(errno));
            return NULL;
        }
    }
    char **lines = NULL;
    int count = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (count == INT_MAX - 1) break;
        if (count == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = simcse_xrealloc(lines, (size_t)cap * sizeof *lines);
        }
        lines[count++] = simcse_xstrdup(line);
    }
    free(line);
    if (f != stdin) fclose(f);
    *n = count;
    if (!lines) lines = simcse_xmalloc(sizeof *lines);
    return lines;
}

void simcse_free_lines(char **lines, int n) {
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}
