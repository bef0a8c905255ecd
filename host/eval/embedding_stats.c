/* Alignment, uniformity (Wang & Isola 2020, as used in the SimCSE paper) and
 * anisotropy of sentence embeddings.
 *
 * - Every row is L2-normalised in double first (a zero row stays zero).
 * - alignment  = mean over positive pairs of ||x - y||^2.
 * - uniformity = log mean over the n(n-1)/2 distinct pairs of exp(-2 ||x - y||^2),
 *   with ||x - y||^2 = 2 - 2 x.y for unit rows (clamped at 0); O(n^2 dim),
 *   about a second for STS-B dev (~3k sentences) at dim 768.
 * - anisotropy = mean cosine of random pairs i != j drawn from Philox with a
 *   fixed seed (subsequence 0, consecutive offsets), so it is reproducible.
 * - The driver evaluates on STS-B of the chosen split: positive pairs are those
 *   with gold > 4.0; the sentence set is the split's distinct sentences
 *   (exact string duplicates would add zero distances to uniformity). Each
 *   distinct sentence is embedded once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/eval.h"
#include "simcse/rng.h"

static double *normalised_rows(const float *x, int n, int dim) {
    double *u = simcse_xmalloc((size_t)(n > 0 ? n : 1) * (size_t)dim * sizeof *u);
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * dim;
        double *o = u + (size_t)i * dim, s = 0;
        for (int k = 0; k < dim; k++) s += (double)r[k] * r[k];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        for (int k = 0; k < dim; k++) o[k] = r[k] * inv;
    }
    return u;
}

static double dot(const double *a, const double *b, int dim) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= dim; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < dim; k++) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

double simcse_alignment(const float *x, const float *y, int n, int dim) {
    if (n < 1 || dim < 1) return NAN;
    double *ux = normalised_rows(x, n, dim), *uy = normalised_rows(y, n, dim), sum = 0;
    for (int i = 0; i < n; i++) {
        const double *a = ux + (size_t)i * dim, *b = uy + (size_t)i * dim;
        double d2 = 0;
        for (int k = 0; k < dim; k++) d2 += (a[k] - b[k]) * (a[k] - b[k]);
        sum += d2;
    }
    free(ux);
    free(uy);
    return sum / n;
}

double simcse_uniformity(const float *x, int n, int dim) {
    if (n < 2 || dim < 1) return NAN;
    double *u = normalised_rows(x, n, dim), sum = 0;
    double *sq = simcse_xmalloc((size_t)n * sizeof *sq); /* |u_i|^2: 1, or 0 for a zero row */
    for (int i = 0; i < n; i++) sq[i] = dot(u + (size_t)i * dim, u + (size_t)i * dim, dim);
    for (int i = 0; i < n; i++) {
        const double *a = u + (size_t)i * dim;
        for (int j = i + 1; j < n; j++) {
            double d2 = sq[i] + sq[j] - 2.0 * dot(a, u + (size_t)j * dim, dim);
            if (d2 < 0) d2 = 0;
            sum += exp(-2.0 * d2);
        }
    }
    free(u);
    free(sq);
    return log(sum / (0.5 * (double)n * (double)(n - 1)));
}

double simcse_anisotropy(const float *x, int n, int dim, int n_pairs, uint64_t seed) {
    if (n < 2 || dim < 1 || n_pairs < 1) return NAN;
    uint64_t off = 0;
    double sum = 0;
    for (int p = 0; p < n_pairs; p++) {
        int i = (int)(((uint64_t)simcse_rng_u32(seed, 0, off++) * (uint64_t)n) >> 32);
        int j = (int)(((uint64_t)simcse_rng_u32(seed, 0, off++) * (uint64_t)(n - 1)) >> 32);
        if (j >= i) j++;
        sum += simcse_cosine(x + (size_t)i * dim, x + (size_t)j * dim, dim);
    }
    return sum / n_pairs;
}

static int cmp_sent(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int find_sent(char **uniq, int n, const char *s) {
    char **hit = bsearch(&s, uniq, (size_t)n, sizeof *uniq, cmp_sent);
    return hit ? (int)(hit - uniq) : -1;
}

int simcse_eval_embedding_stats(const char *data_dir, simcse_split split, int dim, int batch_size,
                                simcse_embed_fn embed, void *ctx, simcse_embedding_stats *out) {
    memset(out, 0, sizeof *out);
    if (dim < 1 || batch_size < 1 || !embed)
        return simcse_error("embedding stats: bad arguments (dim %d, batch size %d)", dim, batch_size);
    simcse_sts_data d;
    if (simcse_sts_load(data_dir, "stsb", split, &d) != 0) return -1;
    char **uniq = simcse_xmalloc((size_t)d.n * 2 * sizeof *uniq);
    for (int i = 0; i < d.n; i++) {
        uniq[2 * i] = d.s1[i];
        uniq[2 * i + 1] = d.s2[i];
    }
    qsort(uniq, (size_t)d.n * 2, sizeof *uniq, cmp_sent);
    int u = 0;
    for (int i = 0; i < 2 * d.n; i++)
        if (u == 0 || strcmp(uniq[u - 1], uniq[i]) != 0) uniq[u++] = uniq[i];
    float *E = simcse_xmalloc((size_t)u * (size_t)dim * sizeof *E);
    int rc = 0;
    for (int i = 0; i < u; i += batch_size) {
        int m = u - i < batch_size ? u - i : batch_size;
        if (embed(ctx, (const char *const *)uniq + i, m, E + (size_t)i * dim) != 0) {
            rc = simcse_error_prefix("embedding stats (stsb %s): sentences %d..%d", simcse_split_name(split), i,
                                     i + m - 1);
            break;
        }
    }
    if (rc == 0) {
        int npos = 0;
        for (int i = 0; i < d.n; i++) npos += d.gold[i] > 4.0;
        float *X = simcse_xmalloc((size_t)(npos ? npos : 1) * (size_t)dim * sizeof *X);
        float *Y = simcse_xmalloc((size_t)(npos ? npos : 1) * (size_t)dim * sizeof *Y);
        int k = 0;
        for (int i = 0; i < d.n; i++) {
            if (!(d.gold[i] > 4.0)) continue;
            int a = find_sent(uniq, u, d.s1[i]), b = find_sent(uniq, u, d.s2[i]);
            memcpy(X + (size_t)k * dim, E + (size_t)a * dim, (size_t)dim * sizeof *X);
            memcpy(Y + (size_t)k * dim, E + (size_t)b * dim, (size_t)dim * sizeof *Y);
            k++;
        }
        out->n_pos_pairs = npos;
        out->n_sentences = u;
        for (int i = 0; i < u; i++) {
            const float *r = E + (size_t)i * dim;
            int ok = 1;
            for (int c = 0; c < dim && ok; c++) ok = isfinite(r[c]);
            out->n_nonfinite += !ok;
        }
        if (out->n_nonfinite) {
            /* the cosine maps NaN to 0 (SentEval's rule for scores), which would make a
             * broken model look perfectly isotropic: a figure of NaN says what it is */
            out->alignment = out->uniformity = out->anisotropy = NAN;
        } else {
            out->alignment = simcse_alignment(X, Y, npos, dim);
            out->uniformity = simcse_uniformity(E, u, dim);
            out->anisotropy = simcse_anisotropy(E, u, dim, SIMCSE_ANISOTROPY_PAIRS, SIMCSE_ANISOTROPY_SEED);
        }
        free(X);
        free(Y);
    }
    free(E);
    free(uniq);
    simcse_sts_data_free(&d);
    return rc;
}
