/* Byte-level BPE (GPT-2 / RoBERTa): ByteLevel pre-tokenizer + BPE model.
 *
 * Design choices:
 * - The split pattern is GPT-2's, run by PCRE2 with PCRE2_UTF|PCRE2_UCP (HF
 *   runs it with Oniguruma). \s is spelled out as White_Space, Oniguruma's
 *   meaning; \p{L} \p{N} agree on every code point PCRE2's Unicode version
 *   knows (letters and digits added in Unicode 15/16, 9,392 code points, split
 *   differently). JIT-compiled when available;
 *   the compiled code is shared, match data is per call, so encode stays
 *   thread-safe.
 * - Bytes of each piece are mapped to GPT-2's printable alphabet
 *   (bytes_to_unicode), computed here rather than tabulated.
 * - Merging is HF's algorithm exactly: a min-heap of (rank, position) over
 *   adjacent symbol pairs, stale entries skipped when popped. That is
 *   O(n log n) per word, so a 100k-character "word" stays cheap. */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* GPT-2's 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with \s spelled out as the White_Space property (Oniguruma's \s), because
 * PCRE2's \s also takes U+180E. */
#define WS "\\t-\\r\\x{85}\\p{Z}"
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

int tok_bytelevel_init(simcse_tokenizer *t) {
    /* bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other
     * 68 bytes take code points 256.. in byte order. */
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = keep ? b : 256 + extra++;
        if (cp < 0x80) {
            t->byte_chars[b][0] = (char)cp;
            t->byte_len[b] = 1;
        } else {
            t->byte_chars[b][0] = (char)(0xC0 | cp >> 6);
            t->byte_chars[b][1] = (char)(0x80 | (cp & 0x3F));
            t->byte_len[b] = 2;
        }
    }
    if (!t->use_regex || t->regex) return 0;
    int err;
    PCRE2_SIZE off;
    t->regex = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!t->regex) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return simcse_error("cannot compile the GPT-2 split pattern: %s", (const char *)msg);
    }
    (void)pcre2_jit_compile(t->regex, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return 0;
}

static int bytelevel_piece(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, tok_str *buf) {
    buf->n = 0;
    for (size_t i = 0; i < n; i++) tok_str_put(buf, t->byte_chars[(uint8_t)s[i]], t->byte_len[(uint8_t)s[i]]);
    return tok_model_piece(t, buf->s, buf->n, out);
}

int tok_pretok_bytelevel(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit) {
    if (!n) return 0;
    tok_str text = {0}, buf = {0};
    if (t->add_prefix_space && s[0] != ' ') {
        tok_str_put(&text, " ", 1);
        tok_str_put(&text, s, n);
        s = text.s;
        n = text.n;
    }
    int rc = 0;
    if (!t->regex) {
        rc = bytelevel_piece(t, s, n, out, &buf);
    } else {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->regex, NULL);
        size_t pos = 0;
        while (pos < n) {
            int m = pcre2_match(t->regex, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (m == PCRE2_ERROR_NOMATCH) break;
            if (m < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(m, msg, sizeof msg);
                rc = simcse_error("%s: GPT-2 split pattern: %s", t->source, (const char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t a = ov[0], b = ov[1];
            if (b == a) { /* cannot happen with this pattern; step one character to stay safe */
                int k;
                tok_utf8_next(s + a, n - a, &k);
                b = a + (size_t)k;
            }
            /* HF splits "Isolated": text between matches is a piece too. */
            if (a > pos && (rc = bytelevel_piece(t, s + pos, a - pos, out, &buf)) < 0) break;
            if ((rc = bytelevel_piece(t, s + a, b - a, out, &buf)) < 0) break;
            pos = b;
            if (limit >= 0 && (long)out->n >= limit) break;
        }
        if (rc == 0 && pos < n && !(limit >= 0 && (long)out->n >= limit))
            rc = bytelevel_piece(t, s + pos, n - pos, out, &buf);
        pcre2_match_data_free(md);
    }
    free(text.s);
    free(buf.s);
    return rc;
}

/* ---- BPE ----------------------------------------------------------------- */

typedef struct {
    int32_t id;
    int prev, next; /* linked list over positions; len 0 = merged away */
    size_t len;
} sym;

typedef struct {
    int32_t rank, id;
    int pos;
} cand;

static int cand_less(const cand *a, const cand *b) { return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos; }

static void heap_push(cand **h, size_t *n, size_t *cap, cand c) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *h = simcse_xrealloc(*h, *cap * sizeof **h);
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &(*h)[p])) break;
        (*h)[i] = (*h)[p];
        i = p;
    }
    (*h)[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && cand_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static void add_sym(sym **v, size_t *n, size_t *cap, int32_t id, size_t len) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 32;
        *v = simcse_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[*n] = (sym){id, (int)*n - 1, (int)*n + 1, len};
    (*n)++;
}

int tok_bpe_word(const simcse_tokenizer *t, const char *w, size_t n, tok_ids *out) {
    if (t->ignore_merges) {
        int32_t id = tok_map_get(&t->vocab, w, n);
        if (id >= 0) {
            tok_ids_push(out, id);
            return 0;
        }
    }
    size_t plen = strlen(t->subword_prefix), slen = strlen(t->end_suffix);
    sym *s = NULL;
    size_t ns = 0, cap = 0;
    char tmp[64];
    /* One symbol per character (with prefix / suffix where HF adds them);
     * characters outside the vocabulary become unk, or vanish without one. */
    int32_t unk = -1;
    size_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        int k;
        tok_utf8_next(w + i, n - i, &k);
        size_t pre = i > 0 ? plen : 0, suf = i + (size_t)k >= n ? slen : 0;
        int32_t id = -1;
        if (pre + (size_t)k + suf <= sizeof tmp) { /* longer affixes cannot be in a sane vocabulary */
            memcpy(tmp, t->subword_prefix, pre);
            memcpy(tmp + pre, w + i, (size_t)k);
            memcpy(tmp + pre + k, t->end_suffix, suf);
            id = tok_map_get(&t->vocab, tmp, pre + (size_t)k + suf);
        }
        if (id >= 0) {
            if (unk >= 0) {
                add_sym(&s, &ns, &cap, unk, unk_len);
                unk = -1;
            }
            add_sym(&s, &ns, &cap, id, (size_t)k);
        } else if (t->unk_id >= 0) {
            if (unk >= 0 && t->fuse_unk) {
                unk_len += (size_t)k;
            } else {
                if (unk >= 0) add_sym(&s, &ns, &cap, unk, unk_len);
                unk = t->unk_id;
                unk_len = (size_t)k;
            }
        }
        i += (size_t)k;
    }
    if (unk >= 0) add_sym(&s, &ns, &cap, unk, unk_len);
    if (!ns) return 0;
    s[ns - 1].next = -1;

    cand *h = NULL;
    size_t nh = 0, hcap = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        const tok_merge *m = tok_merges_get(&t->merges, s[i].id, s[i + 1].id);
        if (m) heap_push(&h, &nh, &hcap, (cand){m->rank, m->id, (int)i});
    }
    while (nh) {
        cand top = heap_pop(h, &nh);
        sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        sym right = s[cur->next];
        const tok_merge *m = tok_merges_get(&t->merges, cur->id, right.id);
        if (!m || m->id != top.id) continue; /* stale entry */
        s[cur->next].len = 0;
        cur->id = top.id;
        cur->len += right.len;
        cur->next = right.next;
        if (right.next >= 0) s[right.next].prev = top.pos;
        if (cur->prev >= 0) {
            m = tok_merges_get(&t->merges, s[cur->prev].id, cur->id);
            if (m) heap_push(&h, &nh, &hcap, (cand){m->rank, m->id, cur->prev});
        }
        if (cur->next >= 0) {
            m = tok_merges_get(&t->merges, cur->id, s[cur->next].id);
            if (m) heap_push(&h, &nh, &hcap, (cand){m->rank, m->id, top.pos});
        }
    }
    for (size_t i = 0; i < ns; i++)
        if (s[i].len) tok_ids_push(out, s[i].id);
    free(h);
    free(s);
    return 0;
}
