/* A memo in front of an embedding callback (see include/simcse/eval.h).
 *
 * An evaluation embeds the same sentences more than once: the STS-B scores
 * and then alignment / uniformity over the same split, each distinct sentence
 * again. Keyed by the sentence text, each is embedded once per evaluation and
 * both measures see the same vectors. Open addressing with FNV-1a and linear
 * probing, the table kept at most half full; the rows live in one array that
 * grows by doubling. Misses of a call are embedded together in one call of the
 * wrapped function (the callers already batch), so batching is kept. */
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/eval.h"

struct simcse_embed_cache {
    simcse_embed_fn embed;
    void *ctx;
    int dim;
    size_t n, cap_rows, slots; /* sentences held, rows allocated, table size (a power of 2) */
    char **key;                /* [slots], NULL = empty */
    size_t *row;               /* [slots] */
    float *rows;               /* [cap_rows * dim] */
    /* scratch of one call: the misses */
    const char **miss;
    size_t *miss_at;
    float *miss_out;
    int miss_cap;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of s: where it is, or the empty slot where it would go. */
static size_t find_slot(const simcse_embed_cache *c, const char *s) {
    size_t i = (size_t)fnv1a(s) & (c->slots - 1);
    while (c->key[i] && strcmp(c->key[i], s) != 0) i = (i + 1) & (c->slots - 1);
    return i;
}

static void grow_table(simcse_embed_cache *c) {
    size_t old_slots = c->slots;
    char **old_key = c->key;
    size_t *old_row = c->row;
    c->slots = old_slots ? old_slots * 2 : 1024;
    c->key = simcse_xcalloc(c->slots, sizeof *c->key);
    c->row = simcse_xcalloc(c->slots, sizeof *c->row);
    for (size_t i = 0; i < old_slots; i++) {
        if (!old_key[i]) continue;
        size_t j = find_slot(c, old_key[i]);
        c->key[j] = old_key[i];
        c->row[j] = old_row[i];
    }
    free(old_key);
    free(old_row);
}

simcse_embed_cache *simcse_embed_cache_create(simcse_embed_fn embed, void *ctx, int dim) {
    if (!embed || dim < 1) {
        simcse_error("embedding cache: bad arguments (dim %d)", dim);
        return NULL;
    }
    simcse_embed_cache *c = simcse_xcalloc(1, sizeof *c);
    c->embed = embed;
    c->ctx = ctx;
    c->dim = dim;
    grow_table(c);
    return c;
}

int simcse_embed_cache_embed(void *cache, const char *const *sents, int n, float *out) {
    simcse_embed_cache *c = cache;
    const size_t dim = (size_t)c->dim;
    if (n > c->miss_cap) {
        c->miss_cap = n;
        c->miss = simcse_xrealloc(c->miss, (size_t)n * sizeof *c->miss);
        c->miss_at = simcse_xrealloc(c->miss_at, (size_t)n * sizeof *c->miss_at);
        c->miss_out = simcse_xrealloc(c->miss_out, (size_t)n * dim * sizeof *c->miss_out);
    }
    int misses = 0;
    for (int i = 0; i < n; i++) {
        size_t s = find_slot(c, sents[i]);
        if (c->key[s]) {
            memcpy(out + (size_t)i * dim, c->rows + c->row[s] * dim, dim * sizeof *out);
        } else {
            c->miss[misses] = sents[i];
            c->miss_at[misses++] = (size_t)i;
        }
    }
    if (misses == 0) return 0;
    if (c->embed(c->ctx, c->miss, misses, c->miss_out) != 0) return -1;
    for (int k = 0; k < misses; k++) {
        float *v = c->miss_out + (size_t)k * dim;
        memcpy(out + c->miss_at[k] * dim, v, dim * sizeof *out);
        size_t s = find_slot(c, c->miss[k]);
        if (c->key[s]) continue; /* the same sentence twice in this call */
        if (2 * (c->n + 1) > c->slots) {
            grow_table(c);
            s = find_slot(c, c->miss[k]);
        }
        if (c->n == c->cap_rows) {
            c->cap_rows = c->cap_rows ? 2 * c->cap_rows : 1024;
            c->rows = simcse_xrealloc(c->rows, c->cap_rows * dim * sizeof *c->rows);
        }
        memcpy(c->rows + c->n * dim, v, dim * sizeof *v);
        c->key[s] = simcse_xstrdup(c->miss[k]);
        c->row[s] = c->n++;
    }
    return 0;
}

size_t simcse_embed_cache_size(const simcse_embed_cache *c) { return c->n; }

void simcse_embed_cache_free(simcse_embed_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->slots; i++) free(c->key[i]);
    free(c->key);
    free(c->row);
    free(c->rows);
    free(c->miss);
    free(c->miss_at);
    free(c->miss_out);
    free(c);
}
