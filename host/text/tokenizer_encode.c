/* Encoding: the stages in HF `tokenizers` order (see tokenizer_internal.h),
 * added-token splitting, template + truncation, batches.
 *
 * Design choices:
 * - Added tokens ("[MASK]", "<s>", ...) are cut out of the raw text first;
 *   the pieces between them are normalized and tokenized separately, which is
 *   what makes "a<mask>b" come out as HF has it.
 * - Truncation keeps the first max_len - (number of template ids) content ids,
 *   which is HF "longest_first" on a single sequence. Because a word's ids never
 *   depend on later words, encoding stops as soon as enough ids exist: long
 *   documents cost no more than their first max_len tokens.
 * - encode() is const and keeps no cache, so one tokenizer can serve threads. */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* ---- added tokens -------------------------------------------------------- */

/* regex_syntax's \w, which HF uses for single_word boundaries. */
static int is_word_char(const char *s, size_t n) {
    int k;
    int32_t cp = tok_utf8_next(s, n, &k);
    if (cp == '_' || cp == 0x200C || cp == 0x200D) return 1;
    return tok_is_word_category(cp);
}

static size_t prev_char_start(const char *s, size_t i) {
    do i--;
    while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80);
    return i;
}

/* Next added-token match in s[from..n) among tokens with the given `normalized`
 * flag: HF's leftmost-longest search, then its single_word / lstrip / rstrip
 * rules. `floor` is where the previous match ended (lstrip never crosses it). */
static int find_added(const simcse_tokenizer *t, const char *s, size_t n, size_t from, size_t floor, int normalized,
                      size_t *ms, size_t *me, int32_t *id) {
    size_t i = from;
    while (i < n) {
        if (!t->added_first[(uint8_t)s[i]]) {
            i++;
            continue;
        }
        const tok_added *best = NULL;
        for (int k = 0; k < t->n_added; k++) {
            const tok_added *a = &t->added[k];
            /* len 0: a token that normalizes to nothing never matches (it would match everywhere) */
            if (!a->len || a->normalized != normalized || a->len > n - i || (best && a->len <= best->len)) continue;
            if (!memcmp(s + i, a->content, a->len)) best = a;
        }
        if (!best) {
            i++;
            continue;
        }
        size_t start = i, stop = i + best->len;
        if (best->single_word) {
            int left_ok = start == 0 || !is_word_char(s + prev_char_start(s, start), n - prev_char_start(s, start));
            int right_ok = stop == n || !is_word_char(s + stop, n - stop);
            if (!left_ok || !right_ok) {
                i = stop; /* the matcher resumes after a discarded match */
                continue;
            }
        }
        if (best->lstrip) {
            size_t j = start;
            while (j > 0) {
                size_t p = prev_char_start(s, j);
                int k;
                if (!tok_is_whitespace(tok_utf8_next(s + p, n - p, &k))) break;
                j = p;
            }
            start = j > floor ? j : floor;
        }
        if (best->rstrip) {
            while (stop < n) {
                int k;
                if (!tok_is_whitespace(tok_utf8_next(s + stop, n - stop, &k))) break;
                stop += (size_t)k;
            }
        }
        *ms = start;
        *me = stop;
        *id = best->id;
        return 1;
    }
    return 0;
}

typedef int (*piece_fn)(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit);

/* Splits s on added tokens (those matched after normalization, or before it),
 * emitting their ids and encoding the pieces between them with `piece`. */
static int split_on_added(const simcse_tokenizer *t, const char *s, size_t n, int normalized, piece_fn piece,
                          tok_ids *out, long limit) {
    size_t pos = 0, ms, me;
    int32_t id;
    while (find_added(t, s, n, pos, pos, normalized, &ms, &me, &id)) {
        if (ms > pos && piece(t, s + pos, ms - pos, out, limit) < 0) return -1;
        tok_ids_push(out, id);
        pos = me;
        if (limit >= 0 && (long)out->n >= limit) return 0;
    }
    return pos < n ? piece(t, s + pos, n - pos, out, limit) : 0;
}

/* Text between raw-matched added tokens: normalized, split on the normalized
 * added tokens, then pre-tokenizer + model. */
static int encode_raw_piece(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit) {
    if (!t->has_bert_normalizer) return split_on_added(t, s, n, 1, tok_pre_tokenize_and_model, out, limit);
    tok_str norm = {0};
    tok_bert_normalize(t, s, n, &norm);
    int rc = split_on_added(t, norm.s, norm.n, 1, tok_pre_tokenize_and_model, out, limit);
    free(norm.s);
    return rc;
}

/* Content ids (no template) of valid UTF-8 text. */
static int encode_content(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit) {
    return split_on_added(t, s, n, 0, encode_raw_piece, out, limit);
}

/* ---- encode -------------------------------------------------------------- */

int simcse_tokenizer_tokenize(const simcse_tokenizer *t, const char *text, size_t len, int32_t **ids) {
    tok_str clean = {0};
    tok_ids out = {0};
    *ids = NULL;
    tok_utf8_sanitize(text, len, &clean);
    int rc = encode_content(t, clean.s, clean.n, &out, -1);
    free(clean.s);
    if (rc < 0) {
        free(out.v);
        return -1;
    }
    *ids = out.v ? out.v : simcse_xmalloc(sizeof(int32_t));
    return (int)out.n;
}

int simcse_tokenizer_encode(const simcse_tokenizer *t, const char *text, size_t len, int max_len, int32_t *ids) {
    if (!t || !ids || (!text && len)) return simcse_error("tokenizer: encode: NULL argument");
    int special = t->n_pre + t->n_post;
    if (max_len < special || max_len < 1)
        return simcse_error("%s: max_len %d leaves no room for the %d special tokens", t->source, max_len, special);
    long limit = max_len - special;
    tok_str clean = {0};
    tok_ids out = {0};
    tok_utf8_sanitize(text ? text : "", len, &clean);
    int rc = encode_content(t, clean.s, clean.n, &out, limit);
    free(clean.s);
    if (rc < 0) {
        free(out.v);
        return -1;
    }
    size_t keep = out.n < (size_t)limit ? out.n : (size_t)limit;
    int k = 0;
    for (int i = 0; i < t->n_pre; i++) ids[k++] = t->tpl_pre[i];
    if (keep) memcpy(ids + k, out.v, keep * sizeof *ids);
    k += (int)keep;
    for (int i = 0; i < t->n_post; i++) ids[k++] = t->tpl_post[i];
    free(out.v);
    return k;
}

int simcse_tokenizer_encode_batch(const simcse_tokenizer *t, const char *const *texts, int n, int max_len,
                                  simcse_padded_batch *out) {
    memset(out, 0, sizeof *out);
    if (!t || n < 0 || (n && !texts)) return simcse_error("tokenizer: encode_batch: bad arguments");
    if (max_len < 1) return simcse_error("%s: max_len %d must be positive", t->source, max_len);
    /* Sentences go to one packed pool first: the width (longest) is known only
     * at the end, and n * max_len could be far more memory than the real ids. */
    int32_t *one = simcse_xmalloc((size_t)max_len * sizeof *one);
    tok_ids pool = {0};
    int *lens = simcse_xcalloc((size_t)(n ? n : 1), sizeof *lens);
    int width = 0;
    for (int i = 0; i < n; i++) {
        const char *s = texts[i] ? texts[i] : "";
        int k = simcse_tokenizer_encode(t, s, strlen(s), max_len, one);
        if (k < 0) {
            free(one);
            free(pool.v);
            free(lens);
            return simcse_error_prefix("sentence %d", i);
        }
        for (int j = 0; j < k; j++) tok_ids_push(&pool, one[j]);
        lens[i] = k;
        if (k > width) width = k;
    }
    free(one);
    size_t cells = (size_t)(n ? n : 1) * (size_t)(width ? width : 1);
    out->n = n;
    out->width = width;
    out->lens = lens;
    out->ids = simcse_xmalloc(cells * sizeof *out->ids);
    out->mask = simcse_xcalloc(cells, 1);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int32_t *row = out->ids + (size_t)i * (size_t)width;
        if (lens[i]) memcpy(row, pool.v + at, (size_t)lens[i] * sizeof *row);
        at += (size_t)lens[i];
        for (int j = lens[i]; j < width; j++) row[j] = t->pad_id;
        memset(out->mask + (size_t)i * (size_t)width, 1, (size_t)lens[i]);
    }
    free(pool.v);
    return 0;
}

void simcse_padded_batch_free(simcse_padded_batch *b) {
    if (!b) return;
    free(b->ids);
    free(b->mask);
    free(b->lens);
    memset(b, 0, sizeof *b);
}
