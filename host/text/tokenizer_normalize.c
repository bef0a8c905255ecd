/* The BertNormalizer and the Unicode predicates every BERT stage uses.
 *
 * Design choices:
 * - Character classes come from utf8proc (no tables of our own). HF decides
 *   them with Rust's char methods and the `unicode_categories` crate; the
 *   predicates below say which Unicode notion each one is. The fixtures sweep
 *   the code points on which HF agrees with Python's Unicode 14 data (large
 *   uniform blocks sampled), and all of them match. Where HF's crates lag
 *   (unicode_categories predates Unicode 9: Mn / P* / Cf characters added
 *   since are not stripped or split by HF) utf8proc gives the newer answer:
 *   624 of 1,112,063 code points, all added or recategorized in Unicode 9-16,
 *   encode differently.
 * - Normalization works on an array of code points, stage by stage in HF's
 *   order (clean text, CJK spacing, NFD + drop Mn, lowercase); NFD goes
 *   through utf8proc_decompose, which also applies canonical ordering. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* Rust's char::is_whitespace (the White_Space property): Z* + \t..\r + U+0085. */
int tok_is_whitespace(int32_t cp) {
    if ((cp >= 9 && cp <= 13) || cp == 0x20 || cp == 0x85) return 1;
    if (cp < 0x80) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

/* HF is_bert_punc: ASCII punctuation (incl. $+<=>^`|~, which Unicode calls
 * symbols) or any Unicode P* category. */
int tok_is_bert_punct(int32_t cp) {
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

/* regex \w minus the explicit extras: letters, marks, Nd, Nl, Pc. */
int tok_is_word_category(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME) || c == UTF8PROC_CATEGORY_ND ||
           c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_PC;
}

/* HF's is_control for clean_text: Cc Cf Co (Cs cannot occur in UTF-8) except
 * \t \n \r. HF's code comment says Cn too, but the crate it uses does not put
 * unassigned code points in "other": they are kept (checked for every code point). */
static int is_control(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO;
}

/* The CJK blocks BERT puts spaces around (the ranges of the original BERT code). */
static int is_chinese(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

typedef struct {
    int32_t *v;
    size_t n, cap;
} cp_buf;

static void cp_push(cp_buf *b, int32_t cp) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = simcse_xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = cp;
}

/* The common all-ASCII case in one pass: no CJK, nothing to decompose. */
static int normalize_ascii(const simcse_tokenizer *t, const char *s, size_t n, tok_str *out) {
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80) return 0;
    out->n = 0;
    tok_str_put(out, s, n); /* sizes the buffer; rewritten below */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (t->clean_text) {
            if (c == 0 || c == 0x7F || (c < 0x20 && !(c == '\t' || c == '\n' || c == '\r'))) continue;
            if ((c >= 9 && c <= 13) || c == ' ') c = ' ';
        }
        if (t->lowercase && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        out->s[k++] = c;
    }
    out->n = k;
    out->s[k] = 0;
    return 1;
}

void tok_bert_normalize(const simcse_tokenizer *t, const char *s, size_t n, tok_str *out) {
    if (normalize_ascii(t, s, n, out)) return;
    cp_buf a = {0};
    int32_t max_cp = 0;
    for (size_t i = 0; i < n;) {
        int k;
        int32_t cp = tok_utf8_next(s + i, n - i, &k);
        i += (size_t)k;
        if (cp > max_cp) max_cp = cp;
        if (t->clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (tok_is_whitespace(cp)) cp = ' ';
        }
        if (t->chinese_chars && is_chinese(cp)) {
            cp_push(&a, ' ');
            cp_push(&a, cp);
            cp_push(&a, ' ');
        } else {
            cp_push(&a, cp);
        }
    }
    if (t->strip_accents && a.n && max_cp >= 0xC0) { /* below U+00C0 NFD changes nothing */
        /* NFD of the whole text (canonical ordering crosses characters), then drop Mn. */
        tok_str u = {0};
        for (size_t i = 0; i < a.n; i++) tok_str_put_cp(&u, a.v[i]);
        size_t cap = a.n * 2 + 8;
        int32_t *d = NULL;
        utf8proc_ssize_t m;
        for (;;) {
            d = simcse_xrealloc(d, cap * sizeof *d);
            m = utf8proc_decompose((const utf8proc_uint8_t *)u.s, (utf8proc_ssize_t)u.n, d, (utf8proc_ssize_t)cap,
                                   UTF8PROC_DECOMPOSE | UTF8PROC_STABLE);
            if (m < 0 || (size_t)m <= cap) break;
            cap = (size_t)m;
        }
        free(u.s);
        a.n = 0;
        for (utf8proc_ssize_t i = 0; i < m; i++)
            if (utf8proc_category(d[i]) != UTF8PROC_CATEGORY_MN) cp_push(&a, d[i]);
        free(d);
    }
    out->n = 0;
    tok_str_put(out, "", 0);
    for (size_t i = 0; i < a.n; i++) {
        int32_t cp = a.v[i];
        if (t->lowercase) {
            if (cp == 0x130) { /* Rust's to_lowercase: the one unconditional 1->2 mapping */
                tok_str_put(out, "i\xCC\x87", 3);
                continue;
            }
            cp = utf8proc_tolower(cp);
        }
        tok_str_put_cp(out, cp);
    }
    free(a.v);
}
