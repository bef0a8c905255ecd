/* Errors, allocation and small shared helpers: the header of the base layer
 * (host/base/error.c, alloc.c, file.c, clock.c), which everything may use and
 * which uses nothing above it.
 *
 * Library code never exits: a failing function records a one-line message with
 * simcse_error() (which returns -1) and returns -1 or NULL; the caller either
 * handles it or passes it up. The CLI prints simcse_last_error() and exits 1.
 * Messages name the file, the place and the problem, e.g.
 *   "model/config.json: key 'hidden_size': expected a positive integer". */
#ifndef SIMCSE_COMMON_H
#define SIMCSE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#if defined(__GNUC__)
#define SIMCSE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SIMCSE_PRINTF(a, b)
#endif

/* Records the message (thread-local) and returns -1. */
int simcse_error(const char *fmt, ...) SIMCSE_PRINTF(1, 2);
/* Prepends "prefix: " to the current message (adds context on the way up); returns -1. */
int simcse_error_prefix(const char *fmt, ...) SIMCSE_PRINTF(1, 2);
const char *simcse_last_error(void);
void simcse_clear_error(void);

/* Prints "simcse: error: <msg>" and exits 1. For the CLI and unrecoverable states only. */
noreturn void simcse_fatal(const char *fmt, ...) SIMCSE_PRINTF(1, 2);

/* Allocation that reports the size that did not fit and exits: running out of host
 * memory is not a condition any caller can repair. */
void *simcse_xmalloc(size_t bytes);
void *simcse_xcalloc(size_t n, size_t size);
void *simcse_xrealloc(void *p, size_t bytes);
char *simcse_xstrdup(const char *s);

/* Reads a whole file; NULL + error on failure. *len excludes the NUL that is appended. */
char *simcse_read_file(const char *path, size_t *len);
/* Joins a directory and a file name into a fresh string. */
char *simcse_path_join(const char *dir, const char *name);
int simcse_file_exists(const char *path);

/* Writes data to path atomically: path.tmp, fsync, rename. */
int simcse_write_file_atomic(const char *path, const void *data, size_t len);

/* Removes path and everything below it, whatever the names. A symbolic link is
 * removed itself, never followed (its target is left as it is); a path that does
 * not exist is not an error. */
int simcse_remove_tree(const char *path);

double simcse_now_seconds(void);

#endif
