/* The error channel of the whole library: one thread-local message per thread.
 *
 * Library code records what went wrong here and returns -1/NULL; only the CLI
 * (simcse_fatal) prints and exits. A thread-local buffer lets the training
 * ranks, which are threads, fail independently. See include/simcse/common.h. */
#include "simcse/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_err[1024];

int simcse_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return -1;
}

int simcse_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_err, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof g_err - 3) k = sizeof g_err - 3;
    memcpy(g_err, prefix, k);
    g_err[k] = ':';
    g_err[k + 1] = ' ';
    size_t rest = sizeof g_err - k - 3, m = strlen(old);
    if (m > rest) m = rest;
    memcpy(g_err + k + 2, old, m);
    g_err[k + 2 + m] = 0;
    return -1;
}

const char *simcse_last_error(void) { return g_err[0] ? g_err : "unknown error"; }
void simcse_clear_error(void) { g_err[0] = 0; }

void simcse_fatal(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("simcse: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
