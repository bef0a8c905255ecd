/* Training datasets: a byte-offset index over a text or CSV file.
 *
 * Design (see include/simcse/data.h):
 * - Only the index stays in memory: off[i] is where example i starts and
 *   off[n] the end of the data; example i lies in [off[i], off[i+1]) (followed
 *   possibly by skipped blank or malformed lines, which a fetch stops before).
 *   Fetching reads the bytes back with pread in 64 KiB steps and, for CSV,
 *   re-parses the row with a fresh libcsv parser, exactly as the indexer did.
 * - gzip (magic 1f 8b) is decompressed once with zlib into an unlinked mkstemp
 *   file, so random access is plain pread and nothing is left behind.
 * - CSV indexing feeds libcsv one "segment" at a time: the bytes up to and
 *   including the next \r or \n. libcsv can only end a record at such a byte,
 *   so after each segment we know whether the record is complete, and the start
 *   offset of every record is exact even with quoted newlines. Line numbers
 *   count \n. Strict mode (CSV_STRICT | CSV_STRICT_FINI) turns stray and
 *   unterminated quotes into errors; the space function is disabled so spaces
 *   stay part of fields, as RFC 4180 says.
 * - Recovery after a malformed row (skip mode): a quoting error restarts the
 *   scan at the line after the row's first line (an unterminated quote
 *   otherwise swallows everything after it); a row with a wrong field count or
 *   an empty field is simply dropped. */
#include "simcse/data.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "simcse/common.h"

#define FETCH_STEP (64u << 10)
#define SCAN_BLOCK (1u << 20)

struct simcse_dataset {
    char *path;
    simcse_data_kind kind;
    int fd, gz;
    uint64_t size;
    int64_t n, cap;
    uint64_t *off; /* [n + 1] */
    int n_fields;
    int n_cols;                      /* CSV: columns in the header */
    int col[SIMCSE_DATA_MAX_FIELDS]; /* CSV: header column of sent0, sent1, hard_neg */
    int64_t n_empty, n_bad;
    /* options */
    int skip_bad, quiet, max_warnings, n_warned;
    /* fetch scratch */
    char *rbuf;
    size_t rcap;
    char *fbuf; /* parsed fields, NUL-separated */
    size_t flen, fcap;
    size_t *fstart; /* [n_cols] start of each field in fbuf */
    int fstart_cap;
};

static const char *const k_field_names[SIMCSE_DATA_MAX_FIELDS] = {"sent0", "sent1", "hard_neg"};

void simcse_data_options_default(simcse_data_options *o) {
    memset(o, 0, sizeof *o);
    o->max_warnings = 20;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n'; }

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_ws((unsigned char)s[i])) return 0;
    return 1;
}

static int push_offset(simcse_dataset *d, uint64_t off) {
    if (d->n + 1 >= d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4096;
        d->off = simcse_xrealloc(d->off, (size_t)d->cap * sizeof *d->off);
    }
    d->off[d->n++] = off;
    return 0;
}

/* A malformed row: fatal (error, -1) or a warning and a count (0). */
static int bad_row(simcse_dataset *d, int64_t line, const char *what) {
    if (!d->skip_bad) return simcse_error("%s:%lld: %s", d->path, (long long)line, what);
    d->n_bad++;
    if (!d->quiet) {
        if (d->n_warned < d->max_warnings)
            fprintf(stderr, "simcse: warning: %s:%lld: %s (row skipped)\n", d->path, (long long)line, what);
        else if (d->n_warned == d->max_warnings)
            fprintf(stderr, "simcse: warning: %s: further malformed-row warnings suppressed\n", d->path);
        d->n_warned++;
    }
    return 0;
}

static int read_at(simcse_dataset *d, void *buf, size_t len, uint64_t pos, size_t *got) {
    size_t total = 0;
    while (total < len) {
        ssize_t r = pread(d->fd, (char *)buf + total, len - total, (off_t)(pos + total));
        if (r < 0) {
            if (errno == EINTR) continue;
            return simcse_error("%s: read failed at byte %llu: %s", d->path, (unsigned long long)(pos + total),
                                strerror(errno));
        }
        if (r == 0) break;
        total += (size_t)r;
    }
    *got = total;
    return 0;
}

/* ---- gzip ---- */

static int gunzip_to_temp(simcse_dataset *d, const char *tmp_dir) {
    if (!tmp_dir || !*tmp_dir) tmp_dir = getenv("TMPDIR");
    if (!tmp_dir || !*tmp_dir) tmp_dir = "/tmp";
    char *tmpl = simcse_path_join(tmp_dir, "simcse-gunzip-XXXXXX");
    int out = mkstemp(tmpl);
    if (out < 0) {
        simcse_error("%s: cannot create a temporary file in %s to decompress into: %s", d->path, tmp_dir,
                     strerror(errno));
        free(tmpl);
        return -1;
    }
    unlink(tmpl); /* the space is freed when the descriptor closes */
    free(tmpl);
    int in = dup(d->fd);
    gzFile g = in >= 0 ? gzdopen(in, "rb") : NULL;
    if (!g) {
        if (in >= 0) close(in);
        close(out);
        return simcse_error("%s: cannot open as gzip", d->path);
    }
    gzbuffer(g, 1u << 17);
    char *buf = simcse_xmalloc(SCAN_BLOCK);
    int rc = 0;
    for (;;) {
        int r = gzread(g, buf, SCAN_BLOCK);
        if (r < 0) {
            int zerr = 0;
            const char *m = gzerror(g, &zerr);
            rc = simcse_error("%s: gzip decompression failed: %s", d->path, m ? m : "unknown error");
            break;
        }
        if (r == 0) {
            int zerr = 0;
            const char *m = gzerror(g, &zerr);
            if (zerr != Z_OK) rc = simcse_error("%s: gzip decompression failed: %s", d->path, m ? m : "unknown error");
            break;
        }
        size_t done = 0;
        while (done < (size_t)r) {
            ssize_t w = write(out, buf + done, (size_t)r - done);
            if (w < 0) {
                if (errno == EINTR) continue;
                rc = simcse_error("%s: writing the decompressed copy to %s failed: %s", d->path, tmp_dir,
                                  strerror(errno));
                break;
            }
            done += (size_t)w;
        }
        if (rc) break;
    }
    free(buf);
    int cr = gzclose_r(g);
    if (!rc && cr != Z_OK) rc = simcse_error("%s: gzip stream is truncated or corrupt", d->path);
    if (rc) {
        close(out);
        return -1;
    }
    close(d->fd);
    d->fd = out;
    d->gz = 1;
    struct stat st;
    if (fstat(out, &st) != 0) return simcse_error("%s: fstat of the decompressed copy failed", d->path);
    d->size = (uint64_t)st.st_size;
    return 0;
}

/* ---- text ---- */

static int index_text(simcse_dataset *d) {
    char *buf = simcse_xmalloc(SCAN_BLOCK);
    uint64_t pos = 0, line_start = 0;
    int64_t line_no = 1;
    int nonblank = 0;
    int rc = 0;
    while (pos < d->size && !rc) {
        size_t got = 0;
        size_t want = d->size - pos < SCAN_BLOCK ? (size_t)(d->size - pos) : SCAN_BLOCK;
        if (read_at(d, buf, want, pos, &got) != 0) {
            rc = -1;
            break;
        }
        if (got == 0) {
            rc = simcse_error("%s: file shrank while reading", d->path);
            break;
        }
        size_t i = 0;
        while (i < got) {
            if (!nonblank) {
                while (i < got && buf[i] != '\n' && is_ws((unsigned char)buf[i])) i++;
                if (i < got && buf[i] != '\n') nonblank = 1;
            }
            if (i >= got) break;
            char *nl = memchr(buf + i, '\n', got - i);
            if (!nl) {
                i = got;
                break;
            }
            uint64_t end = pos + (uint64_t)(nl - buf);
            if (!nonblank)
                d->n_empty++;
            else if (end - line_start > SIMCSE_DATA_MAX_RECORD_BYTES) {
                if (bad_row(d, line_no, "line longer than the limit of 16 MiB") != 0) rc = -1;
            } else
                push_offset(d, line_start);
            line_start = end + 1;
            nonblank = 0;
            line_no++;
            i = (size_t)(nl - buf) + 1;
            if (rc) break;
        }
        pos += got;
    }
    free(buf);
    if (rc) return -1;
    if (line_start < d->size) { /* last line without a newline */
        if (!nonblank)
            d->n_empty++;
        else if (d->size - line_start > SIMCSE_DATA_MAX_RECORD_BYTES) {
            if (bad_row(d, line_no, "line longer than the limit of 16 MiB") != 0) return -1;
        } else
            push_offset(d, line_start);
    }
    d->n_fields = 1;
    return 0;
}

static int fetch_text(simcse_dataset *d, int64_t i, simcse_example *ex) {
    uint64_t start = d->off[i], end = d->off[i + 1];
    size_t len = 0;
    for (;;) {
        uint64_t left = end - (start + len);
        if (left == 0) break;
        size_t want = left < FETCH_STEP ? (size_t)left : FETCH_STEP;
        if (len + want + 1 > d->rcap) {
            d->rcap = (len + want + 1) * 2;
            d->rbuf = simcse_xrealloc(d->rbuf, d->rcap);
        }
        size_t got = 0;
        if (read_at(d, d->rbuf + len, want, start + len, &got) != 0) return -1;
        if (got == 0) return simcse_error("%s: file shrank after indexing", d->path);
        char *nl = memchr(d->rbuf + len, '\n', got);
        if (nl) {
            len = (size_t)(nl - d->rbuf);
            break;
        }
        len += got;
    }
    while (len > 0 && d->rbuf[len - 1] == '\r') len--;
    if (!d->rbuf) d->rbuf = simcse_xmalloc(d->rcap = 64);
    d->rbuf[len] = 0;
    ex->n_fields = 1;
    ex->text[0] = d->rbuf;
    ex->len[0] = len;
    for (int f = 1; f < SIMCSE_DATA_MAX_FIELDS; f++) ex->text[f] = NULL, ex->len[f] = 0;
    return 0;
}

/* ---- CSV ---- */

static int no_space(unsigned char c) {
    (void)c;
    return 0;
}

static void csv_open_parser(struct csv_parser *p) {
    csv_init(p, CSV_STRICT | CSV_STRICT_FINI);
    csv_set_space_func(p, no_space);
}

/* Indexing state shared with the libcsv callbacks. */
typedef struct {
    simcse_dataset *d;
    int header; /* collecting the header */
    char **hdr; /* header fields */
    int n_hdr, cap_hdr;
    int nf;          /* fields of the current record */
    int empty_field; /* first required field found empty, -1 if none */
    int ended;       /* the record is complete */
} scan_ctx;

static void scan_field(void *s, size_t len, void *data) {
    scan_ctx *c = data;
    if (c->header) {
        if (c->n_hdr == c->cap_hdr) {
            c->cap_hdr = c->cap_hdr ? c->cap_hdr * 2 : 8;
            c->hdr = simcse_xrealloc(c->hdr, (size_t)c->cap_hdr * sizeof *c->hdr);
        }
        char *f = simcse_xmalloc(len + 1);
        if (len) memcpy(f, s, len);
        f[len] = 0;
        c->hdr[c->n_hdr++] = f;
    } else if (c->empty_field < 0) {
        for (int k = 0; k < c->d->n_fields; k++)
            if (c->d->col[k] == c->nf && is_blank(s ? (const char *)s : "", s ? len : 0)) c->empty_field = k;
    }
    c->nf++;
}

static void scan_record(int term, void *data) {
    (void)term;
    ((scan_ctx *)data)->ended = 1;
}

/* Reads segments: the bytes up to and including the next \r or \n (or to EOF). */
typedef struct {
    simcse_dataset *d;
    char *buf;
    size_t cap, len, cur; /* buf[cur..len) unread */
    uint64_t base;        /* file offset of buf[0] */
} seg_reader;

static void seg_seek(seg_reader *r, uint64_t pos) {
    r->base = pos;
    r->len = r->cur = 0;
}

/* 1 with a segment, 0 at EOF, -1 on error. *overlong: the segment was cut at the buffer limit. */
static int seg_next(seg_reader *r, const char **s, size_t *n, uint64_t *off, int *overlong) {
    *overlong = 0;
    size_t scan = r->cur;
    for (;;) {
        for (size_t i = scan; i < r->len; i++) {
            char c = r->buf[i];
            if (c == '\n' || c == '\r') {
                *s = r->buf + r->cur;
                *n = i + 1 - r->cur;
                *off = r->base + r->cur;
                r->cur = i + 1;
                return 1;
            }
        }
        uint64_t end = r->base + r->len;
        if (end >= r->d->size) {
            if (r->cur == r->len) return 0;
            *s = r->buf + r->cur;
            *n = r->len - r->cur;
            *off = r->base + r->cur;
            r->cur = r->len;
            return 1;
        }
        /* need more bytes: compact, grow if needed, read */
        if (r->cur > 0) {
            memmove(r->buf, r->buf + r->cur, r->len - r->cur);
            r->base += r->cur;
            r->len -= r->cur;
            r->cur = 0;
        }
        scan = r->len;
        if (r->len == r->cap) {
            if (r->cap >= SIMCSE_DATA_MAX_RECORD_BYTES + SCAN_BLOCK) {
                *s = r->buf;
                *n = r->len;
                *off = r->base;
                r->cur = r->len;
                *overlong = 1;
                return 1;
            }
            r->cap *= 2;
            r->buf = simcse_xrealloc(r->buf, r->cap);
        }
        size_t want = r->cap - r->len;
        if ((uint64_t)want > r->d->size - end) want = (size_t)(r->d->size - end);
        size_t got = 0;
        if (read_at(r->d, r->buf + r->len, want, end, &got) != 0) return -1;
        if (got == 0) return simcse_error("%s: file shrank while reading", r->d->path);
        r->len += got;
    }
}

static void free_header(scan_ctx *c) {
    for (int i = 0; i < c->n_hdr; i++) free(c->hdr[i]);
    free(c->hdr);
    c->hdr = NULL;
    c->n_hdr = c->cap_hdr = 0;
}

static int take_header(simcse_dataset *d, scan_ctx *c, int64_t line) {
    if (c->n_hdr > 0) { /* UTF-8 byte order mark */
        char *f0 = c->hdr[0];
        if ((unsigned char)f0[0] == 0xEF && (unsigned char)f0[1] == 0xBB && (unsigned char)f0[2] == 0xBF)
            memmove(f0, f0 + 3, strlen(f0 + 3) + 1);
    }
    for (int k = 0; k < SIMCSE_DATA_MAX_FIELDS; k++) d->col[k] = -1;
    for (int i = 0; i < c->n_hdr; i++) {
        for (int k = 0; k < SIMCSE_DATA_MAX_FIELDS; k++) {
            if (strcmp(c->hdr[i], k_field_names[k]) != 0) continue;
            if (d->col[k] >= 0)
                return simcse_error("%s:%lld: CSV header names column '%s' twice", d->path, (long long)line,
                                    k_field_names[k]);
            d->col[k] = i;
        }
    }
    for (int k = 0; k < 2; k++) {
        if (d->col[k] >= 0) continue;
        char found[256] = "";
        size_t used = 0;
        for (int i = 0; i < c->n_hdr && used + 8 < sizeof found; i++)
            used += (size_t)snprintf(found + used, sizeof found - used, "%s'%.60s'", i ? ", " : "", c->hdr[i]);
        return simcse_error("%s:%lld: CSV header lacks the column '%s' (needs sent0,sent1[,hard_neg]; found %s)",
                            d->path, (long long)line, k_field_names[k], found);
    }
    d->n_cols = c->n_hdr;
    d->n_fields = d->col[2] >= 0 ? 3 : 2;
    return 0;
}

/* Resets the parser after a quoting error and decides where scanning resumes. */
typedef struct {
    struct csv_parser p;
    seg_reader r;
    int64_t line_no, rec_line;
    uint64_t rec_start, rec_end;
    uint64_t rec_next_line; /* offset after the record's first \n; 0: not seen yet */
    int in_record, skip_line, line_has_data;
} csv_scan;

static void csv_recover(csv_scan *s, int ends_line) {
    csv_free(&s->p);
    csv_open_parser(&s->p);
    s->in_record = 0;
    if (s->rec_next_line) { /* resume at the line after the bad row's first line */
        seg_seek(&s->r, s->rec_next_line);
        s->line_no = s->rec_line + 1;
        s->line_has_data = 0;
    } else if (ends_line) {
        s->line_no++;
        s->line_has_data = 0;
    } else
        s->skip_line = 1; /* drop the rest of this line */
}

/* What one step of the CSV scan leaves: read the next segment, a record is complete,
 * the scan is over, or an error (recorded). */
enum { CSV_NEXT, CSV_RECORD, CSV_DONE, CSV_ERROR };

/* End of file: finishes a record still open, or reports why it cannot be finished. */
static int csv_at_eof(simcse_dataset *d, csv_scan *S, scan_ctx *c) {
    if (!S->in_record) return CSV_DONE;
    if (csv_fini(&S->p, scan_field, scan_record, c) != 0) {
        if (c->header) {
            simcse_error("%s:%lld: unterminated quoted field in the CSV header", d->path, (long long)S->rec_line);
            return CSV_ERROR;
        }
        if (bad_row(d, S->rec_line, "unterminated quoted field") != 0) return CSV_ERROR;
        if (!S->rec_next_line) return CSV_DONE;
        csv_recover(S, 0);
        return CSV_NEXT;
    }
    S->rec_end = d->size;
    return CSV_RECORD;
}

/* Outside a record: the rest of a line being skipped after a quoting error, and blank
 * lines, are consumed here (1); anything else belongs to a record (0). */
static int csv_between_records(simcse_dataset *d, csv_scan *S, const char *s, size_t n, int overlong) {
    int ends_line = s[n - 1] == '\n';
    if (S->skip_line) {
        if (ends_line) {
            S->skip_line = 0;
            S->line_no++;
            S->line_has_data = 0;
        }
        return 1;
    }
    if (!S->in_record && !overlong && is_blank(s, n)) {
        if (ends_line) {
            if (!S->line_has_data) d->n_empty++;
            S->line_no++;
            S->line_has_data = 0;
        }
        return 1;
    }
    return 0;
}

static void csv_begin_record(csv_scan *S, scan_ctx *c, uint64_t off) {
    S->in_record = 1;
    S->rec_start = off;
    S->rec_line = S->line_no;
    S->rec_next_line = 0;
    c->nf = 0;
    c->empty_field = -1;
    c->ended = 0;
}

/* A segment cut at the buffer limit: the record is too long to keep. */
static int csv_overlong_record(simcse_dataset *d, csv_scan *S, scan_ctx *c) {
    if (c->header) {
        simcse_error("%s:%lld: CSV header line longer than 16 MiB", d->path, (long long)S->rec_line);
        return CSV_ERROR;
    }
    if (bad_row(d, S->rec_line, "row longer than the limit of 16 MiB") != 0) return CSV_ERROR;
    S->rec_next_line = 0;
    csv_recover(S, 0);
    return CSV_NEXT;
}

/* Feeds one segment of the open record to libcsv and counts its lines. */
static int csv_feed(simcse_dataset *d, csv_scan *S, scan_ctx *c, const char *s, size_t n, uint64_t off) {
    int ends_line = s[n - 1] == '\n';
    size_t used = csv_parse(&S->p, s, n, scan_field, scan_record, c);
    if (used < n) { /* strict-mode quoting error */
        if (c->header) {
            simcse_error("%s:%lld: malformed quoting in the CSV header", d->path, (long long)S->line_no);
            return CSV_ERROR;
        }
        char msg[160];
        if (S->line_no == S->rec_line)
            snprintf(msg, sizeof msg, "malformed quoting (a stray or unescaped '\"')");
        else
            snprintf(msg, sizeof msg, "unterminated or malformed quoted field (the parse failed at line %lld)",
                     (long long)S->line_no);
        if (bad_row(d, S->rec_line, msg) != 0) return CSV_ERROR;
        csv_recover(S, ends_line);
        return CSV_NEXT;
    }
    if (ends_line) {
        S->line_no++;
        S->line_has_data = 0;
        if (!S->rec_next_line) S->rec_next_line = off + n;
    }
    if (!c->ended) return CSV_NEXT;
    S->rec_end = off + n;
    return CSV_RECORD;
}

/* A complete record: the header, or an example to index or (skip mode) to drop. */
static int csv_take_record(simcse_dataset *d, csv_scan *S, scan_ctx *c) {
    S->in_record = 0;
    if (c->header) {
        if (take_header(d, c, S->rec_line) != 0) return -1;
        c->header = 0;
        free_header(c);
        return 0;
    }
    char msg[160];
    const char *problem = NULL;
    if (c->nf != d->n_cols) {
        snprintf(msg, sizeof msg, "expected %d fields (as in the header), found %d", d->n_cols, c->nf);
        problem = msg;
    } else if (c->empty_field >= 0) {
        snprintf(msg, sizeof msg, "empty field '%s'", k_field_names[c->empty_field]);
        problem = msg;
    } else if (S->rec_end - S->rec_start > SIMCSE_DATA_MAX_RECORD_BYTES) {
        problem = "row longer than the limit of 16 MiB";
    }
    if (!problem) {
        push_offset(d, S->rec_start);
        return 0;
    }
    return bad_row(d, S->rec_line, problem) != 0 ? -1 : 0;
}

/* The scan: one segment at a time (see the head comment), each handed to the step
 * that owns it. */
static int index_csv(simcse_dataset *d) {
    csv_scan S = {.line_no = 1};
    csv_open_parser(&S.p);
    scan_ctx c = {.d = d, .header = 1, .empty_field = -1};
    S.r = (seg_reader){.d = d, .cap = SCAN_BLOCK};
    S.r.buf = simcse_xmalloc(S.r.cap);
    int rc = 0;
    for (;;) {
        const char *s = NULL;
        size_t n = 0;
        uint64_t off = 0;
        int overlong = 0, step;
        int got = seg_next(&S.r, &s, &n, &off, &overlong);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 0) {
            step = csv_at_eof(d, &S, &c);
        } else {
            if (csv_between_records(d, &S, s, n, overlong)) continue;
            S.line_has_data = 1;
            if (!S.in_record) csv_begin_record(&S, &c, off);
            step = overlong ? csv_overlong_record(d, &S, &c) : csv_feed(d, &S, &c, s, n, off);
        }
        if (step == CSV_NEXT) continue;
        if (step == CSV_ERROR || (step == CSV_RECORD && csv_take_record(d, &S, &c) != 0)) {
            rc = -1;
            break;
        }
        if (step == CSV_DONE || got == 0) break;
    }
    csv_free(&S.p);
    free(S.r.buf);
    if (!rc && c.header)
        rc = simcse_error("%s: no CSV header (the file is empty); expected sent0,sent1[,hard_neg]", d->path);
    free_header(&c);
    return rc;
}

/* Fetch: collects every field of the first record. */
typedef struct {
    simcse_dataset *d;
    int nf, ended;
} fetch_ctx;

static void fetch_field(void *s, size_t len, void *data) {
    fetch_ctx *c = data;
    simcse_dataset *d = c->d;
    if (c->ended) return;
    if (c->nf >= d->fstart_cap) {
        d->fstart_cap = c->nf * 2 + 4;
        d->fstart = simcse_xrealloc(d->fstart, (size_t)d->fstart_cap * sizeof *d->fstart);
    }
    if (d->flen + len + 1 > d->fcap) {
        d->fcap = (d->flen + len + 1) * 2;
        d->fbuf = simcse_xrealloc(d->fbuf, d->fcap);
    }
    d->fstart[c->nf++] = d->flen;
    if (len) memcpy(d->fbuf + d->flen, s, len);
    d->flen += len;
    d->fbuf[d->flen++] = 0;
}

static void fetch_record(int term, void *data) {
    (void)term;
    ((fetch_ctx *)data)->ended = 1;
}

static int fetch_csv(simcse_dataset *d, int64_t i, simcse_example *ex) {
    uint64_t pos = d->off[i], end = d->off[i + 1];
    struct csv_parser p;
    csv_open_parser(&p);
    fetch_ctx c = {.d = d};
    d->flen = 0;
    if (d->rcap < FETCH_STEP) {
        d->rcap = FETCH_STEP;
        d->rbuf = simcse_xrealloc(d->rbuf, d->rcap);
    }
    int rc = 0;
    while (!c.ended && pos < end) {
        size_t want = end - pos < FETCH_STEP ? (size_t)(end - pos) : FETCH_STEP, got = 0;
        if (read_at(d, d->rbuf, want, pos, &got) != 0) {
            rc = -1;
            break;
        }
        if (got == 0) {
            rc = simcse_error("%s: file shrank after indexing", d->path);
            break;
        }
        if (csv_parse(&p, d->rbuf, got, fetch_field, fetch_record, &c) < got && !c.ended) {
            rc = simcse_error("%s: example %lld no longer parses (was the file changed?)", d->path, (long long)i);
            break;
        }
        pos += got;
    }
    if (!rc && !c.ended && csv_fini(&p, fetch_field, fetch_record, &c) != 0)
        rc = simcse_error("%s: example %lld no longer parses (was the file changed?)", d->path, (long long)i);
    csv_free(&p);
    if (rc) return -1;
    if (c.nf != d->n_cols)
        return simcse_error("%s: example %lld has %d fields, the index expected %d (was the file changed?)", d->path,
                            (long long)i, c.nf, d->n_cols);
    ex->n_fields = d->n_fields;
    for (int f = 0; f < SIMCSE_DATA_MAX_FIELDS; f++) {
        if (f < d->n_fields) {
            int k = d->col[f];
            size_t a = d->fstart[k];
            ex->text[f] = d->fbuf + a;
            ex->len[f] = (k + 1 < c.nf ? d->fstart[k + 1] : d->flen) - a - 1;
        } else {
            ex->text[f] = NULL;
            ex->len[f] = 0;
        }
    }
    return 0;
}

/* ---- public ---- */

static int ends_with_ci(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* Auto: first non-blank line starting with "sent0," or "sent1," (after a BOM). */
static simcse_data_kind sniff_kind(simcse_dataset *d) {
    char buf[4096];
    size_t got = 0;
    if (read_at(d, buf, sizeof buf - 1, 0, &got) != 0) return SIMCSE_DATA_TEXT;
    buf[got] = 0;
    size_t i = 0;
    if (got >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        i = 3;
    while (i < got && is_ws((unsigned char)buf[i])) i++;
    if (strncmp(buf + i, "sent0,", 6) == 0 || strncmp(buf + i, "sent1,", 6) == 0) return SIMCSE_DATA_CSV;
    return SIMCSE_DATA_TEXT;
}

simcse_dataset *simcse_dataset_open(const char *path, simcse_data_kind kind, const simcse_data_options *opt) {
    simcse_data_options defaults;
    if (!opt) {
        simcse_data_options_default(&defaults);
        opt = &defaults;
    }
    if (!path) {
        simcse_error("dataset: no path given");
        return NULL;
    }
    simcse_dataset *d = simcse_xcalloc(1, sizeof *d);
    d->path = simcse_xstrdup(path);
    d->skip_bad = opt->skip_bad_rows;
    d->quiet = opt->quiet;
    d->max_warnings = opt->max_warnings > 0 ? opt->max_warnings : 20;
    d->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (d->fd < 0) {
        simcse_error("%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        simcse_error("%s: not a regular file", path);
        goto fail;
    }
    d->size = (uint64_t)st.st_size;
    unsigned char magic[2] = {0, 0};
    size_t got = 0;
    if (read_at(d, magic, 2, 0, &got) != 0) goto fail;
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b && gunzip_to_temp(d, opt->tmp_dir) != 0) goto fail;
    if (kind == SIMCSE_DATA_AUTO)
        kind = (ends_with_ci(path, ".csv") || ends_with_ci(path, ".csv.gz")) ? SIMCSE_DATA_CSV : sniff_kind(d);
    if (kind != SIMCSE_DATA_TEXT && kind != SIMCSE_DATA_CSV) {
        simcse_error("%s: unknown dataset kind %d", path, (int)kind);
        goto fail;
    }
    d->kind = kind;
    if ((kind == SIMCSE_DATA_TEXT ? index_text(d) : index_csv(d)) != 0) goto fail;
    if (d->n == 0) {
        simcse_error("%s: no examples (%lld empty lines, %lld malformed rows skipped)", path, (long long)d->n_empty,
                     (long long)d->n_bad);
        goto fail;
    }
    push_offset(d, d->size);
    d->n--; /* off[n] = end of data is not an example */
    if (d->n_bad > 0 && !d->quiet)
        fprintf(stderr, "simcse: warning: %s: skipped %lld malformed rows\n", path, (long long)d->n_bad);
    return d;
fail:
    simcse_dataset_close(d);
    return NULL;
}

void simcse_dataset_close(simcse_dataset *d) {
    if (!d) return;
    if (d->fd >= 0) close(d->fd);
    free(d->path);
    free(d->off);
    free(d->rbuf);
    free(d->fbuf);
    free(d->fstart);
    free(d);
}

int64_t simcse_dataset_size(const simcse_dataset *d) { return d->n; }
int simcse_dataset_n_fields(const simcse_dataset *d) { return d->n_fields; }
simcse_data_kind simcse_dataset_kind(const simcse_dataset *d) { return d->kind; }
const char *simcse_dataset_path(const simcse_dataset *d) { return d->path; }
int64_t simcse_dataset_n_empty_lines(const simcse_dataset *d) { return d->n_empty; }
int64_t simcse_dataset_n_bad_rows(const simcse_dataset *d) { return d->n_bad; }
int simcse_dataset_was_gzip(const simcse_dataset *d) { return d->gz; }

int simcse_dataset_get(simcse_dataset *d, int64_t i, simcse_example *ex) {
    if (i < 0 || i >= d->n)
        return simcse_error("%s: example %lld out of range (the dataset has %lld)", d->path, (long long)i,
                            (long long)d->n);
    return d->kind == SIMCSE_DATA_TEXT ? fetch_text(d, i, ex) : fetch_csv(d, i, ex);
}

static void text_batch_reserve(simcse_text_batch *b, int slots) {
    if (slots > b->cap) {
        b->cap = slots;
        b->text = simcse_xrealloc(b->text, (size_t)slots * sizeof *b->text);
        b->len = simcse_xrealloc(b->len, (size_t)slots * sizeof *b->len);
        b->off = simcse_xrealloc(b->off, (size_t)slots * sizeof *b->off);
    }
}

static void text_batch_append(simcse_text_batch *b, int slot, const char *s, size_t n) {
    if (b->buf_len + n + 1 > b->buf_cap) {
        b->buf_cap = (b->buf_len + n + 1) * 2;
        b->buf = simcse_xrealloc(b->buf, b->buf_cap);
    }
    b->off[slot] = b->buf_len;
    b->len[slot] = n;
    if (n) memcpy(b->buf + b->buf_len, s, n);
    b->buf_len += n;
    b->buf[b->buf_len++] = 0;
}

static void text_batch_finish(simcse_text_batch *b, int slots) {
    for (int k = 0; k < slots; k++) b->text[k] = b->buf + b->off[k];
}

int simcse_dataset_get_batch(simcse_dataset *d, const int64_t *idx, int n, simcse_text_batch *out) {
    if (n < 0) return simcse_error("%s: negative batch size %d", d->path, n);
    int F = d->n_fields;
    text_batch_reserve(out, F * n);
    out->buf_len = 0;
    out->n = n;
    out->n_fields = F;
    for (int b = 0; b < n; b++) {
        simcse_example ex;
        if (simcse_dataset_get(d, idx[b], &ex) != 0) return -1;
        for (int f = 0; f < F; f++) text_batch_append(out, f * n + b, ex.text[f], ex.len[f]);
    }
    text_batch_finish(out, F * n);
    return 0;
}

int simcse_text_batch_set(simcse_text_batch *out, const char *const *sents, int n) {
    if (n < 0) return simcse_error("text batch: negative size %d", n);
    text_batch_reserve(out, n);
    out->buf_len = 0;
    out->n = n;
    out->n_fields = 1;
    for (int b = 0; b < n; b++) text_batch_append(out, b, sents[b], strlen(sents[b]));
    text_batch_finish(out, n);
    return 0;
}

void simcse_text_batch_free(simcse_text_batch *b) {
    if (!b) return;
    free(b->text);
    free(b->len);
    free(b->off);
    free(b->buf);
    memset(b, 0, sizeof *b);
}
