/* Small containers and UTF-8 helpers for the tokenizer.
 *
 * Design choices:
 * - Vocabulary lookups dominate encoding time, so the string map is open
 *   addressing with keys stored inline-compared by (hash, length, bytes) and
 *   no per-lookup allocation: callers look up substrings of the text as is.
 * - BPE merges are keyed by the id pair packed in 64 bits (Fibonacci hashing),
 *   since ids are small consecutive integers that a plain mask would cluster.
 * - Invalid UTF-8 is repaired exactly like Python's decode(errors='replace')
 *   (one U+FFFD per maximal ill-formed subpart, Unicode Table 3-7), because
 *   that is what the HF reference saw when the fixtures were made. */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* ---- hash maps ----------------------------------------------------------- */

uint32_t tok_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a: short keys, good enough spread */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static void map_grow(tok_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    tok_map_entry *slots = simcse_xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < m->cap; i++) {
        tok_map_entry *e = &m->slots[i];
        if (!e->key) continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

void tok_map_put(tok_map *m, const char *key, size_t n, int32_t val) {
    if ((m->count + 1) * 2 > m->cap) map_grow(m);
    uint32_t h = tok_hash(key, n);
    size_t j = h & (m->cap - 1);
    for (; m->slots[j].key; j = (j + 1) & (m->cap - 1)) {
        tok_map_entry *e = &m->slots[j];
        if (e->hash == h && e->len == n && !memcmp(e->key, key, n)) {
            e->val = val;
            return;
        }
    }
    char *k = simcse_xmalloc(n + 1);
    memcpy(k, key, n);
    k[n] = 0;
    m->slots[j] = (tok_map_entry){k, (uint32_t)n, h, val};
    m->count++;
}

int32_t tok_map_get(const tok_map *m, const char *key, size_t n) {
    if (!m->cap) return -1;
    uint32_t h = tok_hash(key, n);
    for (size_t j = h & (m->cap - 1); m->slots[j].key; j = (j + 1) & (m->cap - 1)) {
        const tok_map_entry *e = &m->slots[j];
        if (e->hash == h && e->len == n && !memcmp(e->key, key, n)) return e->val;
    }
    return -1;
}

void tok_map_free(tok_map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static size_t merge_slot(uint64_t key, size_t cap) {
    key *= 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: ids are small consecutive ints */
    return (size_t)(key >> 32) & (cap - 1);
}

void tok_merges_put(tok_merge_map *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        tok_merge *slots = simcse_xcalloc(cap, sizeof *slots);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key) continue;
            size_t j = merge_slot(m->slots[i].key, cap);
            while (slots[j].key) j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t j = merge_slot(key, m->cap);
    for (; m->slots[j].key; j = (j + 1) & (m->cap - 1))
        if (m->slots[j].key == key) break;
    if (!m->slots[j].key) m->count++;
    m->slots[j] = (tok_merge){key, rank, id}; /* a repeated merge: the later one wins, as in HF */
}

const tok_merge *tok_merges_get(const tok_merge_map *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (size_t j = merge_slot(key, m->cap); m->slots[j].key; j = (j + 1) & (m->cap - 1))
        if (m->slots[j].key == key) return &m->slots[j];
    return NULL;
}

/* ---- buffers ------------------------------------------------------------- */

void tok_ids_push(tok_ids *b, int32_t id) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = simcse_xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = id;
}

void tok_str_put(tok_str *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        b->s = simcse_xrealloc(b->s, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void tok_str_put_cp(tok_str *b, int32_t cp) {
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    tok_str_put(b, u, k);
}

/* ---- UTF-8 --------------------------------------------------------------- */

void tok_utf8_sanitize(const char *str, size_t n, tok_str *out) {
    const uint8_t *s = (const uint8_t *)str;
    out->n = 0;
    tok_str_put(out, "", 0);
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte (Unicode Table 3-7) */
        if (b < 0x80) {
            size_t j = i;
            while (j < n && s[j] < 0x80) j++; /* ASCII runs in one copy */
            tok_str_put(out, str + i, j - i);
            i = j;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            tok_str_put(out, "\xEF\xBF\xBD", 3);
            i++;
            continue;
        }
        /* Consume the longest valid prefix; an incomplete one becomes a single
         * U+FFFD and the offending byte starts over (Python's "maximal subpart"). */
        size_t k = 1;
        while (k <= need && i + k < n) {
            uint8_t c = s[i + k];
            if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
            k++;
        }
        if (k == need + 1) {
            tok_str_put(out, str + i, k);
        } else {
            tok_str_put(out, "\xEF\xBF\xBD", 3);
        }
        i += k;
    }
}

int32_t tok_utf8_next(const char *str, size_t n, int *len) {
    const uint8_t *s = (const uint8_t *)str;
    /* Input is valid UTF-8 by construction; the length checks only keep a
     * broken invariant from turning into an out-of-bounds read. */
    if (s[0] < 0xC0 || n < 2) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *len = 2;
        return (s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0 || n < 4) {
        if (n < 3) {
            *len = 1;
            return s[0];
        }
        *len = 3;
        return (s[0] & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    }
    *len = 4;
    return (s[0] & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}
