/* Pre-tokenizers: BertPreTokenizer and ByteLevel (GPT-2 / RoBERTa), and the
 * hand-off of each piece to the model.
 *
 * Design choices:
 * - A pre-tokenizer runs the model on each piece as soon as it is cut (rather
 *   than returning a list of pieces) so that encoding can stop once `limit`
 *   ids exist: truncated documents cost only their first words.
 * - The ByteLevel split pattern is GPT-2's, run by PCRE2 with PCRE2_UTF|PCRE2_UCP
 *   (HF runs it with Oniguruma). \s is spelled out as White_Space, Oniguruma's
 *   meaning; \p{L} \p{N} agree on every code point PCRE2's Unicode version
 *   knows (letters and digits added in Unicode 15/16, 9,392 code points, split
 *   differently). JIT-compiled when available; the compiled code is shared,
 *   match data is per call, so encode stays thread-safe.
 * - Bytes of each piece are mapped to GPT-2's printable alphabet
 *   (bytes_to_unicode), computed here rather than tabulated. */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

int tok_model_piece(const simcse_tokenizer *t, const char *w, size_t n, tok_ids *out) {
    if (!n) return 0;
    return t->model == TOK_MODEL_BPE ? tok_bpe_word(t, w, n, out) : tok_wordpiece_word(t, w, n, out);
}

int tok_pre_tokenize_and_model(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit) {
    switch (t->pre_tokenizer) {
    case TOK_PRE_BERT: return tok_pretok_bert(t, s, n, out, limit);
    case TOK_PRE_BYTELEVEL: return tok_pretok_bytelevel(t, s, n, out, limit);
    default: return tok_model_piece(t, s, n, out);
    }
}

/* BertPreTokenizer: split on whitespace (dropped) and around punctuation (kept
 * as one-character words). */
int tok_pretok_bert(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit) {
    size_t start = 0, i = 0;
    while (i < n) {
        int k;
        int32_t cp = tok_utf8_next(s + i, n - i, &k);
        int ws = tok_is_whitespace(cp), pu = !ws && tok_is_bert_punct(cp);
        if (ws || pu) {
            if (i > start && tok_model_piece(t, s + start, i - start, out) < 0) return -1;
            if (pu && tok_model_piece(t, s + i, (size_t)k, out) < 0) return -1;
            start = i + (size_t)k;
            if (limit >= 0 && (long)out->n >= limit) return 0;
        }
        i += (size_t)k;
    }
    if (n > start && tok_model_piece(t, s + start, n - start, out) < 0) return -1;
    return 0;
}

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
