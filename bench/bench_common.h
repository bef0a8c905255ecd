/* Helpers shared by bench_step and bench_kernels (header only, all static inline so
 * each program takes what it uses without unused-function warnings).
 *
 * - Errors: bench_die() prints "<program>: <message>" and exits 1; bench_check()
 *   does the same with simcse_last_error() when a library call failed.
 * - Clocks: wall time from simcse_now_seconds(); callers sync the backend first.
 * - Model presets: base / large / tiny by name, or a Hugging Face config.json path.
 * - Memory: peak host RSS from getrusage, and the backend allocator's high-water
 *   mark (bench_device_peak_bytes).
 * - JSON: flat one-line objects built with bench_json_*; a line is printed on
 *   stdout and, with --json FILE, appended to FILE, so run.sh can grep it. */
#ifndef SIMCSE_BENCH_COMMON_H
#define SIMCSE_BENCH_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/model.h"
#include "simcse/ops.h"

static const char *bench_prog = "bench";

static inline noreturn void bench_die(const char *fmt, ...) SIMCSE_PRINTF(1, 2);
static inline noreturn void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* rc != 0 from a library call: report its recorded error with some context. */
static inline void bench_check(int rc, const char *what) {
    if (rc != 0) bench_die("%s: %s", what, simcse_last_error());
}

static inline void *bench_alloc(simcse_backend *be, size_t bytes, const char *what) {
    void *p = be->alloc(be, bytes);
    if (!p) bench_die("allocating %s (%zu bytes) on %s: %s", what, bytes, be->name, simcse_last_error());
    return p;
}

/* splitmix64: reproducible host-side random inputs */
static inline uint64_t bench_rand_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static inline float bench_rand_f(uint64_t *s) { return (float)((double)(bench_rand_u64(s) >> 11) * 0x1p-52 - 1.0); }

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* median of v[0..n) (sorts v) */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- models ---- */

static inline simcse_config bench_bert_config(int hidden, int layers, int heads, int inter) {
    return (simcse_config){.arch = SIMCSE_ARCH_BERT,
                           .vocab_size = 30522,
                           .hidden = hidden,
                           .layers = layers,
                           .heads = heads,
                           .intermediate = inter,
                           .max_positions = 512,
                           .type_vocab_size = 2,
                           .pad_token_id = 0,
                           .layer_norm_eps = 1e-12f,
                           .hidden_dropout = 0.1f,
                           .attn_dropout = 0.1f};
}

/* base, large (BERT, as ../shared/bench/torch_simcse.py), tiny (2 layers of width 128:
 * the demo's shape, for CPU smoke runs), or a config.json path. */
static inline void bench_model_config(const char *name, simcse_config *c) {
    if (!strcmp(name, "base"))
        *c = bench_bert_config(768, 12, 12, 3072);
    else if (!strcmp(name, "large"))
        *c = bench_bert_config(1024, 24, 16, 4096);
    else if (!strcmp(name, "tiny"))
        *c = bench_bert_config(128, 2, 4, 512);
    else if (simcse_config_load(name, c) != 0)
        bench_die("--model: %s", simcse_last_error());
}

/* ---- memory ---- */

static inline double bench_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* Peak bytes the backend allocated during the run (its allocator's high-water mark:
 * weights, moments, activations and scratch; comparable with PyTorch's
 * torch.cuda.max_memory_allocated). The CPU backend's figure is reported beside RSS. */
static inline long long bench_device_peak_bytes(simcse_backend *be) {
    size_t in_use = 0, peak = 0;
    if (!be->memory) return -1;
    be->memory(be, &in_use, &peak);
    return (long long)peak;
}

static inline int bench_is_cpu(const simcse_backend *be) { return !strcmp(be->name, "cpu"); }

/* ---- JSON lines ---- */

typedef struct {
    char buf[4096];
    size_t n;
} bench_json;

static inline void bench_json_raw(bench_json *j, const char *fmt, ...) SIMCSE_PRINTF(2, 3);
static inline void bench_json_raw(bench_json *j, const char *fmt, ...) {
    if (j->n >= sizeof j->buf) return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(j->buf + j->n, sizeof j->buf - j->n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= sizeof j->buf - j->n) bench_die("JSON line too long");
    j->n += (size_t)r;
}
static inline void bench_json_key(bench_json *j, const char *k) {
    bench_json_raw(j, "%s\"%s\": ", j->n ? ", " : "{", k);
}
/* strings here are our own names, paths and dates: escape quotes and backslashes only */
static inline void bench_json_str(bench_json *j, const char *k, const char *v) {
    bench_json_key(j, k);
    bench_json_raw(j, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            bench_json_raw(j, "\\%c", *p);
        else if ((unsigned char)*p >= 0x20)
            bench_json_raw(j, "%c", *p);
    }
    bench_json_raw(j, "\"");
}
static inline void bench_json_int(bench_json *j, const char *k, long long v) {
    bench_json_key(j, k);
    bench_json_raw(j, "%lld", v);
}
/* non-finite numbers (unknown, e.g. NAN) are written as null */
static inline void bench_json_num(bench_json *j, const char *k, double v) {
    bench_json_key(j, k);
    if (v != v || v > 1e300 || v < -1e300)
        bench_json_raw(j, "null");
    else
        bench_json_raw(j, "%.6g", v);
}
/* Ends the object; prints it on stdout (echo) and appends it to path (when not NULL). */
static inline void bench_json_emit(bench_json *j, const char *path, int echo) {
    bench_json_raw(j, "}");
    if (echo) {
        printf("%s\n", j->buf);
        fflush(stdout);
    }
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) bench_die("--json %s: cannot open for appending", path);
    int bad = fprintf(f, "%s\n", j->buf) < 0;
    bad |= fclose(f) != 0;
    if (bad) bench_die("--json %s: write failed", path);
}

/* UTC time and host name for the records */
static inline void bench_now_utc(char *out, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(out, n, "unknown");
}
static inline void bench_json_common(bench_json *j, const char *bench, simcse_backend *be, const char *precision) {
    char date[32], host[128];
    bench_now_utc(date, sizeof date);
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = 0;
    bench_json_str(j, "bench", bench);
    bench_json_str(j, "date", date);
    bench_json_str(j, "host", host);
    bench_json_str(j, "backend", be->name);
    bench_json_str(j, "precision", precision);
}

#endif
