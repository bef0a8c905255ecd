/* The embedding memo: the vectors are those of the wrapped callback, every
 * distinct sentence reaches it once (across calls and within one), the table
 * grows past its first size, and the callback's error comes through. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/eval.h"

#define DIM 5

typedef struct {
    long calls, sentences;
    int fail;
} counter;

/* A vector that depends on the text only. */
static void vector_of(const char *s, float *v) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    for (int k = 0; k < DIM; k++) v[k] = (float)((h >> (3 * k)) & 1023) - 512.0f;
}

static int fake_embed(void *ctx, const char *const *sents, int n, float *out) {
    counter *c = ctx;
    if (c->fail) return simcse_error("fake encoder: out of memory");
    c->calls++;
    c->sentences += n;
    for (int i = 0; i < n; i++) vector_of(sents[i], out + (size_t)i * DIM);
    return 0;
}

Test(embed_cache, each_distinct_sentence_is_embedded_once_with_its_own_vector, .timeout = 30) {
    counter cnt = {0};
    simcse_embed_cache *c = simcse_embed_cache_create(fake_embed, &cnt, DIM);
    cr_assert_not_null(c);
    enum { N = 5000, B = 64 };
    char **text = malloc(N * sizeof *text);
    for (int i = 0; i < N; i++) {
        text[i] = malloc(32);
        snprintf(text[i], 32, "sentence %d", i % 3000); /* 3000 distinct, each batch has repeats of earlier ones */
    }
    float out[B * DIM], want[DIM];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i += B) {
            int n = N - i < B ? N - i : B;
            cr_assert_eq(simcse_embed_cache_embed(c, (const char *const *)text + i, n, out), 0);
            for (int j = 0; j < n; j++) {
                vector_of(text[i + j], want);
                cr_assert(!memcmp(out + (size_t)j * DIM, want, sizeof want), "pass %d sentence %d", pass, i + j);
            }
        }
    cr_assert_eq(cnt.sentences, 3000, "%ld sentences embedded for 3000 distinct", cnt.sentences);
    cr_assert_eq(simcse_embed_cache_size(c), 3000);
    /* the same sentence twice in one call: the wrapped callback may see it twice, the cache keeps one */
    const char *twice[3] = {"new one", "new one", "sentence 7"};
    cr_assert_eq(simcse_embed_cache_embed(c, twice, 3, out), 0);
    vector_of("new one", want);
    cr_assert(!memcmp(out, want, sizeof want) && !memcmp(out + DIM, want, sizeof want));
    cr_assert_eq(simcse_embed_cache_size(c), 3001);
    cnt.fail = 1;
    const char *fresh[1] = {"never seen"};
    cr_assert_eq(simcse_embed_cache_embed(c, fresh, 1, out), -1);
    cr_assert(strstr(simcse_last_error(), "out of memory"));
    cr_assert_eq(simcse_embed_cache_embed(c, twice + 2, 1, out), 0, "a cached sentence needs no callback");
    for (int i = 0; i < N; i++) free(text[i]);
    free(text);
    simcse_embed_cache_free(c);
    cr_assert_null(simcse_embed_cache_create(fake_embed, &cnt, 0));
}
