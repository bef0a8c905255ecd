/* .npy writer and reader. See include/simcse/npy.h.
 *
 * Design: the header is formatted exactly as numpy's own
 * _write_array_header does ("{'descr': '<f4', 'fortran_order': False,
 * 'shape': (R, C), }" + spaces + '\n', total a multiple of 64), so files are
 * byte-identical to np.save output. The reader is a small strict parser of
 * that dict (any key order, Python literal spacing), not a general Python
 * literal parser: .npy files we read come from numpy or from us. */
#include "simcse/npy.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

/* numpy's header for a C-order float32 [rows, cols]: its length does not depend on rows
 * (numpy leaves 21 - digits spare spaces), so a streamed file is patched in place. */
static size_t format_header(char *hdr, int64_t rows, int64_t cols) {
    /* numpy adds 21 - len(repr(rows)) spare spaces (room to grow axis 0 in
     * place) and then always at least one pad space (a full 64 when aligned). */
    char dict[192];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64 "), }", rows, cols);
    char rdigits[32];
    int spare = 21 - snprintf(rdigits, sizeof rdigits, "%" PRId64, rows);
    if (spare > 0) {
        memset(dict + n, ' ', (size_t)spare);
        n += spare;
    }
    size_t total = 10 + (size_t)n + 1; /* magic+version+len, dict, newline */
    size_t padded = total + (64 - total % 64);
    size_t hlen = padded - 10;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)(hlen >> 8);
    memcpy(hdr + 10, dict, (size_t)n);
    memset(hdr + 10 + n, ' ', padded - total);
    hdr[padded - 1] = '\n';
    return padded;
}

int simcse_npy_writer_open(simcse_npy_writer *w, const char *path, int64_t cols) {
    memset(w, 0, sizeof *w);
    if (cols < 0) return simcse_error("%s: invalid number of columns %lld", path, (long long)cols);
    w->cols = cols;
    char hdr[320];
    w->header_len = format_header(hdr, 0, cols); /* rows patched in at close */
    if (simcse_atomic_open(&w->af, path) != 0) return -1;
    return simcse_atomic_write(&w->af, hdr, w->header_len);
}

int simcse_npy_writer_append(simcse_npy_writer *w, const float *data, int64_t rows) {
    size_t bytes;
    if (rows < 0 || __builtin_mul_overflow((size_t)rows, (size_t)w->cols * sizeof(float), &bytes))
        return simcse_error("%s: cannot append %lld rows", w->af.path, (long long)rows);
    if (bytes && simcse_atomic_write(&w->af, data, bytes) != 0) return -1;
    w->rows += rows;
    return 0;
}

int simcse_npy_writer_close(simcse_npy_writer *w) {
    char hdr[320];
    if (!w->af.failed) {
        if (format_header(hdr, w->rows, w->cols) != w->header_len) {
            simcse_error("%s: %lld rows do not fit the header", w->af.path, (long long)w->rows);
            w->af.failed = 1;
        } else if (fflush(w->af.f) != 0 || fseek(w->af.f, 0, SEEK_SET) != 0) {
            simcse_error("%s: cannot rewrite the header: %s", w->af.tmp, strerror(errno));
            w->af.failed = 1;
        } else if (simcse_atomic_write(&w->af, hdr, w->header_len) != 0) {
            w->af.failed = 1;
        }
    }
    return simcse_atomic_commit(&w->af);
}

void simcse_npy_writer_abort(simcse_npy_writer *w) { simcse_atomic_abort(&w->af); }

int simcse_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols) {
    if (rows < 0 || cols < 0)
        return simcse_error("%s: invalid shape (%lld, %lld)", path, (long long)rows, (long long)cols);
    size_t bytes;
    if (__builtin_mul_overflow((size_t)rows, (size_t)cols * sizeof(float), &bytes))
        return simcse_error("%s: shape (%lld, %lld) is too large", path, (long long)rows, (long long)cols);
    simcse_npy_writer w;
    if (simcse_npy_writer_open(&w, path, cols) != 0) {
        if (w.af.f) simcse_npy_writer_abort(&w);
        return -1;
    }
    if (simcse_npy_writer_append(&w, data, rows) != 0) w.af.failed = 1;
    return simcse_npy_writer_close(&w);
}

/* Finds 'key': in the dict and returns the position after the colon and spaces. */
static const char *dict_value(const char *d, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(d, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int parse_header(const char *path, const char *d, int *f8, int64_t *rows, int64_t *cols) {
    const char *v = dict_value(d, "descr");
    if (!v) return simcse_error("%s: header has no 'descr'", path);
    if (strncmp(v, "'<f4'", 5) == 0)
        *f8 = 0;
    else if (strncmp(v, "'<f8'", 5) == 0)
        *f8 = 1;
    else {
        char got[16] = {0};
        for (int i = 0; i < 15 && v[i] && v[i] != ','; i++) got[i] = v[i];
        return simcse_error("%s: dtype %s is not supported (only '<f4' or '<f8')", path, got);
    }
    v = dict_value(d, "fortran_order");
    if (!v) return simcse_error("%s: header has no 'fortran_order'", path);
    if (strncmp(v, "False", 5) != 0) return simcse_error("%s: fortran_order arrays are not supported", path);
    v = dict_value(d, "shape");
    if (!v || *v != '(') return simcse_error("%s: header has no 'shape' tuple", path);
    v++;
    int64_t dims[3];
    int nd = 0;
    for (;;) {
        while (*v == ' ') v++;
        if (*v == ')') break;
        if (!isdigit((unsigned char)*v) || nd == 3) return simcse_error("%s: bad or unsupported 'shape'", path);
        char *end;
        long long x = strtoll(v, &end, 10);
        if (x < 0 || x > (1LL << 40)) return simcse_error("%s: 'shape' dimension out of range", path);
        dims[nd++] = x;
        v = end;
        while (*v == ' ') v++;
        if (*v == ',')
            v++;
        else if (*v != ')')
            return simcse_error("%s: bad 'shape'", path);
    }
    if (nd == 1) {
        *rows = dims[0];
        *cols = 1;
    } else if (nd == 2) {
        *rows = dims[0];
        *cols = dims[1];
    } else {
        return simcse_error("%s: %d-D arrays are not supported (1-D or 2-D)", path, nd);
    }
    return 0;
}

int simcse_npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols) {
    *data = NULL;
    size_t len;
    char *buf = simcse_read_file(path, &len);
    if (!buf) return -1;
    const unsigned char *b = (const unsigned char *)buf;
    int rc = 0;
    size_t hstart = 0, hlen = 0;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        rc = simcse_error("%s: not a .npy file (bad magic)", path);
    } else if (b[6] == 1 && b[7] == 0) {
        hstart = 10;
        hlen = (size_t)b[8] | ((size_t)b[9] << 8);
    } else if ((b[6] == 2 || b[6] == 3) && b[7] == 0 && len >= 12) {
        hstart = 12;
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
    } else {
        rc = simcse_error("%s: unsupported .npy version %d.%d", path, b[6], b[7]);
    }
    if (rc == 0 && hlen > len - hstart) rc = simcse_error("%s: truncated file (header length %zu)", path, hlen);
    int f8 = 0;
    int64_t r = 0, c = 0;
    if (rc == 0) {
        char *d = simcse_xmalloc(hlen + 1);
        memcpy(d, b + hstart, hlen);
        d[hlen] = 0;
        if (strlen(d) != hlen || hlen == 0 || d[hlen - 1] != '\n' || d[0] != '{')
            rc = simcse_error("%s: malformed header", path);
        else
            rc = parse_header(path, d, &f8, &r, &c);
        free(d);
    }
    size_t esize = f8 ? 8 : 4;
    size_t count = 0, need = 0;
    if (rc == 0 &&
        (__builtin_mul_overflow((size_t)r, (size_t)c, &count) || __builtin_mul_overflow(count, esize, &need)))
        rc = simcse_error("%s: shape (%lld, %lld) is too large", path, (long long)r, (long long)c);
    if (rc == 0 && len - hstart - hlen != need)
        rc = simcse_error("%s: data is %zu bytes but shape (%lld, %lld) needs %zu", path, len - hstart - hlen,
                          (long long)r, (long long)c, need);
    if (rc == 0) {
        float *out = simcse_xmalloc(count * sizeof(float));
        const unsigned char *src = b + hstart + hlen;
        if (!f8) {
            memcpy(out, src, count * 4);
        } else {
            for (size_t i = 0; i < count; i++) {
                double x;
                memcpy(&x, src + 8 * i, 8);
                out[i] = (float)x;
            }
        }
        *data = out;
        *rows = r;
        *cols = c;
    }
    free(buf);
    return rc;
}
