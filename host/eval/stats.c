/* Correlations and cosine similarity.
 *
 * Ranks follow scipy.stats.rankdata(method="average"): 1-based, ties share the
 * mean of the ranks they span; Spearman is then Pearson's r of the ranks (what
 * scipy.stats.spearmanr computes). Everything is double precision, with the
 * two-pass (centred) formula for Pearson. NaN inputs sort after every number,
 * so ranking is total and deterministic. */
#include <math.h>
#include <stdlib.h>

#include "simcse/common.h"
#include "simcse/eval.h"

typedef struct {
    double v;
    int i;
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    int na = isnan(a->v), nb = isnan(b->v);
    if (na || nb) {
        if (na != nb) return na ? 1 : -1;
    } else if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

void simcse_rank_average(const double *x, int n, double *rank) {
    if (n <= 0) return;
    keyed *k = simcse_xmalloc((size_t)n * sizeof *k);
    for (int i = 0; i < n; i++) k[i] = (keyed){x[i], i};
    qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    for (int a = 0; a < n;) {
        int b = a + 1;
        while (b < n && same(k[b].v, k[a].v)) b++;
        double r = 0.5 * ((double)(a + 1) + (double)b); /* mean of ranks a+1 .. b */
        for (int j = a; j < b; j++) rank[k[j].i] = r;
        a = b;
    }
    free(k);
}

double simcse_pearson(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx <= 0 || syy <= 0) return NAN;
    double r = sxy / (sqrt(sxx) * sqrt(syy));
    if (r > 1) r = 1;
    if (r < -1) r = -1;
    return r;
}

double simcse_spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double *rx = simcse_xmalloc((size_t)n * sizeof *rx), *ry = simcse_xmalloc((size_t)n * sizeof *ry);
    simcse_rank_average(x, n, rx);
    simcse_rank_average(y, n, ry);
    double r = simcse_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

double simcse_cosine(const float *a, const float *b, int dim) {
    double dot = 0, na = 0, nb = 0;
    for (int k = 0; k < dim; k++) {
        double x = isnan(a[k]) ? 0.0 : (double)a[k], y = isnan(b[k]) ? 0.0 : (double)b[k];
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if (na <= 0 || nb <= 0) return 0.0;
    double c = dot / (sqrt(na) * sqrt(nb));
    return isfinite(c) ? c : 0.0;
}
