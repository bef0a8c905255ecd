/* Small helpers shared by the subcommands: option values and input lines. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

long simcse_read_sentence(char **line, size_t *cap, void *file) {
    ssize_t n = getline(line, cap, file);
    if (n < 0) return -1;
    if (n > 0 && (*line)[n - 1] == '\n') n--;
    if (n > 0 && (*line)[n - 1] == '\r') n--;
    (*line)[n] = 0;
    return (long)n;
}

char **simcse_read_lines(const char *path, int *n, size_t **lens) {
    FILE *f = stdin;
    const char *name = "stdin";
    if (path && strcmp(path, "-") != 0) {
        name = path;
        f = fopen(path, "rb");
        if (!f) {
            simcse_error("%s: cannot open: %s", path, strerror(errno));
            return NULL;
        }
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        if (f != stdin) fclose(f);
        simcse_error("%s: is a directory, not a file of sentences", name);
        return NULL;
    }
    char **lines = NULL;
    size_t *len_of = NULL;
    int count = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long len;
    while ((len = simcse_read_sentence(&line, &lcap, f)) >= 0) {
        if (count == INT_MAX - 1) break;
        if (count == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = simcse_xrealloc(lines, (size_t)cap * sizeof *lines);
            len_of = simcse_xrealloc(len_of, (size_t)cap * sizeof *len_of);
        }
        lines[count] = simcse_xmalloc((size_t)len + 1);
        memcpy(lines[count], line, (size_t)len + 1);
        len_of[count++] = (size_t)len;
    }
    int bad = ferror(f);
    int err = errno;
    free(line);
    if (f != stdin) fclose(f);
    if (bad) {
        simcse_free_lines(lines, count);
        free(len_of);
        simcse_error("%s: read failed after %d lines: %s", name, count, strerror(err));
        return NULL;
    }
    *n = count;
    if (!lines) lines = simcse_xmalloc(sizeof *lines);
    if (!len_of) len_of = simcse_xmalloc(sizeof *len_of);
    *lens = len_of;
    return lines;
}

int simcse_lines_open(simcse_line_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->f = stdin;
    r->name = "stdin";
    if (path && strcmp(path, "-") != 0) {
        r->name = path;
        r->f = fopen(path, "rb");
        if (!r->f) return simcse_error("%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(r->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        simcse_lines_close(r);
        return simcse_error("%s: is a directory, not a file of sentences", path);
    }
    return 0;
}

int simcse_lines_next(simcse_line_reader *r, char **lines, size_t *lens, int max) {
    int count = 0;
    long len;
    while (count < max && (len = simcse_read_sentence(&r->line, &r->cap, r->f)) >= 0) {
        lines[count] = simcse_xmalloc((size_t)len + 1);
        memcpy(lines[count], r->line, (size_t)len + 1);
        lens[count++] = (size_t)len;
    }
    if (count < max && ferror(r->f)) {
        int err = errno;
        simcse_free_line_array(lines, count);
        return simcse_error("%s: read failed after %lld lines: %s", r->name, r->done + count, strerror(err));
    }
    r->done += count;
    return count;
}

void simcse_free_line_array(char **lines, int n) {
    for (int i = 0; i < n; i++) {
        free(lines[i]);
        lines[i] = NULL;
    }
}

void simcse_lines_close(simcse_line_reader *r) {
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->line);
    memset(r, 0, sizeof *r);
}

void simcse_free_lines(char **lines, int n) {
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}
