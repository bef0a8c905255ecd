/* libFuzzer target: tokenizer.json loading, then encoding with what loaded.
 *
 * Input = tokenizer.json bytes, optionally followed by a NUL and a text to
 * encode, so the fuzzer explores both the loader and the encoder on the
 * vocabularies it invents. Loading goes through the in-memory entry point
 * (no temp files: faster, and nothing left behind when a run is killed).
 * Fixed texts add the cases the fuzzer is unlikely to find on its own:
 * invalid UTF-8, special-token look-alikes, a long word, combining marks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/tokenizer.h"

static void encode_all(const simcse_tokenizer *t, const char *s, size_t n) {
    int32_t ids[64], *all = NULL;
    int k = simcse_tokenizer_encode(t, s, n, 64, ids);
    if (k > 64) abort(); /* the truncation contract */
    k = simcse_tokenizer_encode(t, s, n, 3, ids);
    if (k > 3) abort();
    k = simcse_tokenizer_tokenize(t, s, n, &all);
    if (k >= 0) free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *json = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    simcse_tokenizer *t = simcse_tokenizer_load_json_mem(json, jlen, "fuzz.json");
    if (!t) return 0;
    static const char *texts[] = {
        "Hello, world! I'm here.",
        "ab\xff\xfe\xc3 cd\xe2\x82",
        "[CLS] x [MASK] <s> <mask> </s>",
        "e\xcc\x81 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80  \t\n end",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) encode_all(t, texts[i], strlen(texts[i]));
    if (nul) encode_all(t, (const char *)nul + 1, size - jlen - 1);
    const char *batch[] = {"a b", "", "c"};
    simcse_padded_batch b;
    if (simcse_tokenizer_encode_batch(t, batch, 3, 16, &b) == 0) simcse_padded_batch_free(&b);
    (void)simcse_tokenizer_id_to_token(t, simcse_tokenizer_vocab_size(t) - 1);
    simcse_tokenizer_free(t);
    return 0;
}
