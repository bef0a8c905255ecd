/* The WordPiece model (BERT): greedy longest-match-first on byte offsets at
 * character boundaries; a word of more than max_input_chars characters, or one
 * with a piece that matches nothing, becomes the single unk id (as in HF). */
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

int tok_wordpiece_word(const simcse_tokenizer *t, const char *w, size_t n, tok_ids *out) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += ((uint8_t)w[i] & 0xC0) != 0x80;
    if (chars > (size_t)t->max_input_chars) {
        tok_ids_push(out, t->unk_id);
        return 0;
    }
    size_t plen = strlen(t->subword_prefix);
    char stackbuf[512];
    char *buf = n + plen <= sizeof stackbuf ? stackbuf : simcse_xmalloc(n + plen);
    memcpy(buf, t->subword_prefix, plen);
    size_t mark = out->n, start = 0;
    while (start < n) {
        size_t end = n;
        int32_t id = -1;
        while (end > start) {
            if (start > 0) {
                memcpy(buf + plen, w + start, end - start);
                id = tok_map_get(&t->vocab, buf, plen + end - start);
            } else {
                id = tok_map_get(&t->vocab, w, end);
            }
            if (id >= 0) break;
            do end--; /* back to the previous character boundary */
            while (end > start && ((uint8_t)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            out->n = mark; /* one piece fails: the whole word is unknown */
            tok_ids_push(out, t->unk_id);
            break;
        }
        tok_ids_push(out, id);
        start = end;
    }
    if (buf != stackbuf) free(buf);
    return 0;
}
