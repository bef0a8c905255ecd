/* Host allocation that cannot return NULL: running out of host memory is not
 * something a caller can repair, so these report the size that did not fit and
 * exit. A zero-byte request allocates one byte, so the result is always freeable
 * and distinct. See include/simcse/common.h. */
#include "simcse/common.h"

#include <stdlib.h>
#include <string.h>

void *simcse_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) simcse_fatal("out of host memory allocating %zu bytes", bytes);
    return p;
}

void *simcse_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) simcse_fatal("out of host memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *simcse_xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) simcse_fatal("out of host memory reallocating to %zu bytes", bytes);
    return q;
}

char *simcse_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = simcse_xmalloc(n);
    memcpy(d, s, n);
    return d;
}
