/* The BPE model (GPT-2 / RoBERTa) on one byte-level piece.
 *
 * Merging is HF's algorithm exactly: a min-heap of (rank, position) over
 * adjacent symbol pairs, stale entries skipped when popped. That is
 * O(n log n) per word, so a 100k-character "word" stays cheap. */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

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
