/* Helpers shared by the CPU backend suites (tests/test_cpu_ops*.c): random data and a
 * central-difference gradient check.
 *
 * The gradient check perturbs one float at a time by +-h, re-runs a forward that returns
 * the scalar objective J = sum(out * w) in double, and compares (J+ - J-) / (x+ - x-)
 * (the perturbation actually stored in float) with the analytic gradient. An element
 * passes when |analytic - numeric| <= rtol |numeric| + atol * max_k |numeric_k|; the
 * check also demands that the gradient is not identically (near) zero, so a backward
 * that writes nothing cannot pass. */
#ifndef SIMCSE_TEST_CPU_OPS_H
#define SIMCSE_TEST_CPU_OPS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/ops.h"
#include "simcse/rng.h"

static inline simcse_backend *cpu(void) { return simcse_backend_cpu(); }

/* Uniform in [lo, hi) from a fixed stream, so every run sees the same data. */
static inline void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed) {
    simcse_rng_stream s = {.seed = seed, .subsequence = 0xC0FFEE, .offset = 0};
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * simcse_rng_uniform(&s);
}

static inline float *rnd(size_t n, float lo, float hi, uint64_t seed) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(x, n, lo, hi, seed);
    return x;
}

static inline float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static inline float *copyf(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static inline double dot_w(const float *out, const float *w, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * w[i];
    return s;
}

static inline double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

typedef double (*objective_fn)(void *ctx);

/* Checks analytic[0..n) against central differences of f with respect to x[0..n). */
static inline void check_grad(const char *what, float *x, size_t n, const float *analytic, objective_fn f, void *ctx,
                              float h, double rtol, double atol) {
    double *num = malloc((n ? n : 1) * sizeof(double));
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float x0 = x[i];
        const float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double fp = f(ctx);
        x[i] = xm;
        double fm = f(ctx);
        x[i] = x0;
        num[i] = (fp - fm) / ((double)xp - (double)xm);
        if (fabs(num[i]) > scale) scale = fabs(num[i]);
    }
    cr_assert(scale > 1e-6, "%s: numeric gradient is ~0 (scale %g): the check would be vacuous", what, scale);
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs(analytic[i] - num[i]) / (rtol * fabs(num[i]) + atol * scale);
        if (!(err <= worst)) worst = err, worst_i = i;
    }
    cr_assert(worst <= 1.0, "%s: element %zu analytic %.7g numeric %.7g (scale %.3g, %.2fx tolerance)", what, worst_i,
              analytic[worst_i], num[worst_i], scale, worst);
    free(num);
}

#endif
