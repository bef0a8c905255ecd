/* Data order and token-packed batches.
 *
 * - Shuffling: Fisher-Yates from the top (i = n-1 .. 1, j uniform in [0, i]),
 *   the uniform draws taken from consecutive Philox offsets of subsequence
 *   simcse_rng_subsequence(epoch, SIMCSE_RNG_SITE_SHUFFLE, 0) under key = seed,
 *   reduced to [0, i] without bias (Lemire's multiply-shift with rejection;
 *   two words per draw when i + 1 > 2^32). The permutation is a pure function
 *   of (seed, epoch, n), so a resumed run sees the very same order.
 * - The sampler keeps (epoch, index) only; the permutation is a cache that is
 *   rebuilt when the epoch changes.
 * - Packing encodes each sentence once (the unsupervised second view copies
 *   the first view's ids) straight into the output arrays, which are sized
 *   once for max_seq * max_len ids and reused. */
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/data.h"
#include "simcse/rng.h"

typedef struct {
    uint64_t seed, subseq, offset;
} draw_stream;

static uint32_t next_u32(draw_stream *s) { return simcse_rng_u32(s->seed, s->subseq, s->offset++); }

/* Uniform in [0, bound), bound >= 1. */
static uint64_t uniform_below(draw_stream *s, uint64_t bound) {
    if (bound <= UINT32_MAX) {
        uint32_t b = (uint32_t)bound;
        uint64_t m = (uint64_t)next_u32(s) * b;
        uint32_t low = (uint32_t)m;
        if (low < b) {
            uint32_t t = (uint32_t)(-b) % b;
            while (low < t) {
                m = (uint64_t)next_u32(s) * b;
                low = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound; /* accept r < limit */
    for (;;) {
        uint64_t hi = next_u32(s), lo = next_u32(s);
        uint64_t r = hi << 32 | lo;
        if (r < limit) return r % bound;
    }
}

void simcse_shuffle_permutation(uint64_t seed, uint64_t epoch, int64_t n, int64_t *perm) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    draw_stream s = {seed, simcse_rng_subsequence((uint32_t)epoch, SIMCSE_RNG_SITE_SHUFFLE, 0), 0};
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)uniform_below(&s, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int simcse_sampler_init(simcse_sampler *s, int64_t n, uint64_t seed, int shuffle, int drop_last) {
    memset(s, 0, sizeof *s);
    if (n < 1) return simcse_error("sampler: the dataset has no examples");
    s->n = n;
    s->seed = seed;
    s->shuffle = shuffle;
    s->drop_last = drop_last;
    return 0;
}

void simcse_sampler_free(simcse_sampler *s) {
    if (!s) return;
    free(s->perm);
    s->perm = NULL;
}

int64_t simcse_sampler_batches_per_epoch(const simcse_sampler *s, int b) {
    if (b < 1) return 0;
    return s->drop_last ? s->n / b : (s->n + b - 1) / b;
}

int simcse_sampler_set_pos(simcse_sampler *s, simcse_data_pos pos) {
    if (pos.index < 0 || pos.index > s->n)
        return simcse_error("data position: index %lld outside 0..%lld (was the dataset changed?)",
                            (long long)pos.index, (long long)s->n);
    if (pos.epoch > UINT32_MAX)
        return simcse_error("data position: epoch %llu too large", (unsigned long long)pos.epoch);
    s->pos = pos;
    return 0;
}

int simcse_sampler_next(simcse_sampler *s, int max_b, int64_t *idx) {
    if (max_b < 1) return simcse_error("sampler: batch size %d must be positive", max_b);
    if (s->drop_last && s->n < max_b)
        return simcse_error("sampler: %lld examples do not fill one batch of %d (drop_last)", (long long)s->n, max_b);
    int64_t left = s->n - s->pos.index;
    if (left <= 0 || (s->drop_last && left < max_b)) {
        if (s->pos.epoch >= UINT32_MAX) return simcse_error("sampler: epoch counter overflow");
        s->pos.epoch++;
        s->pos.index = 0;
        left = s->n;
    }
    if (s->shuffle && (!s->perm || s->perm_epoch != s->pos.epoch)) {
        if (!s->perm) s->perm = simcse_xmalloc((size_t)s->n * sizeof *s->perm);
        simcse_shuffle_permutation(s->seed, s->pos.epoch, s->n, s->perm);
        s->perm_epoch = s->pos.epoch;
    }
    int m = left < max_b ? (int)left : max_b;
    for (int k = 0; k < m; k++) {
        int64_t i = s->pos.index + k;
        idx[k] = s->shuffle ? s->perm[i] : i;
    }
    s->pos.index += m;
    return m;
}

/* ---- packing ---- */

int simcse_token_batch_init(simcse_token_batch *b, int max_seq, int max_len) {
    memset(b, 0, sizeof *b);
    if (max_len <= 0) max_len = 32;
    if (max_seq < 1) return simcse_error("token batch: max_seq %d must be positive", max_seq);
    if (max_len < 2) return simcse_error("token batch: max_len %d leaves no room for the special tokens", max_len);
    if ((int64_t)max_seq * max_len > INT32_MAX)
        return simcse_error("token batch: %d x %d ids is too many", max_seq, max_len);
    size_t cap = (size_t)max_seq * (size_t)max_len;
    b->max_seq = max_seq;
    b->max_len = max_len;
    b->ids = simcse_xmalloc(cap * sizeof *b->ids);
    b->pos_ids = simcse_xmalloc(cap * sizeof *b->pos_ids);
    b->type_ids = simcse_xcalloc(cap, sizeof *b->type_ids);
    b->offsets = simcse_xcalloc((size_t)max_seq + 1, sizeof *b->offsets);
    b->lens = simcse_xcalloc((size_t)max_seq, sizeof *b->lens);
    b->row_ids = simcse_xmalloc(cap * sizeof *b->row_ids);
    return 0;
}

void simcse_token_batch_free(simcse_token_batch *b) {
    if (!b) return;
    free(b->ids);
    free(b->pos_ids);
    free(b->type_ids);
    free(b->offsets);
    free(b->lens);
    free(b->row_ids);
    memset(b, 0, sizeof *b);
}

static void begin(simcse_token_batch *out, int B, int n_views) {
    out->B = B;
    out->n_views = n_views;
    out->n_seq = 0;
    out->T = 0;
    out->n_at_max_len = 0;
    out->offsets[0] = 0;
}

static void close_seq(simcse_token_batch *out, int len, int pos_offset) {
    int32_t t0 = out->T;
    int64_t gB = out->global_B > 0 ? out->global_B : out->B;
    int64_t seq = (int64_t)(out->n_seq / out->B) * gB + out->example_base + out->n_seq % out->B;
    for (int t = 0; t < len; t++) {
        out->pos_ids[t0 + t] = pos_offset + t;
        out->type_ids[t0 + t] = 0;
        out->row_ids[t0 + t] = (int32_t)(seq * out->max_len + t);
    }
    out->lens[out->n_seq] = len;
    if (len == out->max_len) out->n_at_max_len++;
    out->T += len;
    out->offsets[++out->n_seq] = out->T;
}

static int encode_seq(const simcse_tokenizer *tok, const char *text, size_t len, int pos_offset,
                      simcse_token_batch *out) {
    int r = simcse_tokenizer_encode(tok, text, len, out->max_len, out->ids + out->T);
    if (r < 0) return -1;
    if (r > out->max_len) return simcse_error("tokenizer returned %d ids for max_len %d", r, out->max_len);
    close_seq(out, r, pos_offset);
    return 0;
}

int simcse_pack_batch(const simcse_tokenizer *tok, const simcse_text_batch *tb, int pos_offset,
                      simcse_token_batch *out) {
    int B = tb->n, F = tb->n_fields;
    if (F < 1 || F > SIMCSE_DATA_MAX_FIELDS) return simcse_error("pack: %d fields per example (expected 1..3)", F);
    if (pos_offset < 0) return simcse_error("pack: negative position offset %d", pos_offset);
    int views = F == 1 ? 2 : F;
    if ((int64_t)B * views > out->max_seq)
        return simcse_error("pack: %d examples x %d views exceed the batch capacity of %d sequences", B, views,
                            out->max_seq);
    begin(out, B, views);
    for (int f = 0; f < F; f++) {
        for (int b = 0; b < B; b++) {
            if (encode_seq(tok, tb->text[f * B + b], tb->len[f * B + b], pos_offset, out) != 0)
                return simcse_error_prefix("pack: example %d of the batch, field %d", b, f);
        }
    }
    if (F == 1) { /* second view: the same ids; the rows differ by their dropout masks */
        int32_t T1 = out->T;
        memcpy(out->ids + T1, out->ids, (size_t)T1 * sizeof *out->ids);
        for (int b = 0; b < B; b++) {
            out->T = T1 + out->offsets[b];
            close_seq(out, out->lens[b], pos_offset);
        }
    }
    return 0;
}

int simcse_pack_ids(const int32_t *const *ids, const int *lens, int B, int n_views, int pos_offset,
                    simcse_token_batch *out) {
    if (B < 1 || n_views < 1 || (int64_t)B * n_views > out->max_seq)
        return simcse_error("pack: %d examples x %d views do not fit the batch capacity of %d sequences", B, n_views,
                            out->max_seq);
    if (pos_offset < 0) return simcse_error("pack: negative position offset %d", pos_offset);
    begin(out, B, n_views);
    for (int k = 0; k < B * n_views; k++) {
        if (lens[k] < 0 || lens[k] > out->max_len)
            return simcse_error("pack: sequence %d has %d ids (max_len %d)", k, lens[k], out->max_len);
        memcpy(out->ids + out->T, ids[k], (size_t)lens[k] * sizeof *out->ids);
        close_seq(out, lens[k], pos_offset);
    }
    return 0;
}

int simcse_pack_sentences(const simcse_tokenizer *tok, const char *const *sents, const size_t *lens, int n,
                          int pos_offset, simcse_token_batch *out) {
    if (pos_offset < 0) return simcse_error("pack: negative position offset %d", pos_offset);
    if (n > out->max_seq)
        return simcse_error("pack: %d sentences exceed the batch capacity of %d sequences", n, out->max_seq);
    begin(out, n, 1);
    for (int b = 0; b < n; b++)
        if (encode_seq(tok, sents[b], lens ? lens[b] : strlen(sents[b]), pos_offset, out) != 0)
            return simcse_error_prefix("pack: sentence %d", b);
    return 0;
}
