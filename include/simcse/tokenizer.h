/* Tokenizers with exact parity with Hugging Face `tokenizers`:
 * WordPiece (BERT: BertNormalizer + BertPreTokenizer + ## continuations) and
 * byte-level BPE (RoBERTa/GPT-2: the GPT-2 pre-tokenizer regex, byte-to-unicode
 * map, merges by rank), from tokenizer.json or from the older file sets
 * (vocab.txt [+ tokenizer_config.json], vocab.json + merges.txt). */
#ifndef SIMCSE_TOKENIZER_H
#define SIMCSE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct simcse_tokenizer simcse_tokenizer;

/* Loads from a model directory: tokenizer.json if present, else vocab.txt
 * (+ tokenizer_config.json for do_lower_case), else vocab.json + merges.txt. */
simcse_tokenizer *simcse_tokenizer_load(const char *dir);
simcse_tokenizer *simcse_tokenizer_load_json(const char *path);
simcse_tokenizer *simcse_tokenizer_load_wordpiece(const char *vocab_txt, int lowercase);
simcse_tokenizer *simcse_tokenizer_load_bpe(const char *vocab_json, const char *merges_txt);
void simcse_tokenizer_free(simcse_tokenizer *t);
/* tokenizer.json held in memory (len bytes); name is used in error messages. */
simcse_tokenizer *simcse_tokenizer_load_json_mem(const char *data, size_t len, const char *name);

/* Encodes one sentence (len bytes, need not be NUL-terminated, may hold invalid
 * UTF-8, which is replaced by U+FFFD) with the special-token template
 * ([CLS] x [SEP] or <s> x </s>), truncated so that the whole is at most max_len
 * ids (special tokens kept). Writes ids (room for max_len needed); returns
 * their count, or -1 + error (max_len smaller than the special tokens).
 * Thread-safe: a loaded tokenizer is never modified. */
int simcse_tokenizer_encode(const simcse_tokenizer *t, const char *text, size_t len, int max_len, int32_t *ids);

/* Content ids only: no template, no truncation. *ids is malloc'ed (free it);
 * returns the count, or -1 + error. */
int simcse_tokenizer_tokenize(const simcse_tokenizer *t, const char *text, size_t len, int32_t **ids);

/* Vocabulary size = largest id + 1 (model vocabulary and added tokens). */
int simcse_tokenizer_vocab_size(const simcse_tokenizer *t);
/* Checks that every id the tokenizer can emit (vocabulary, added tokens, the
 * post-processor's special tokens, padding, unknown) indexes an embedding table of
 * vocab_size rows. 0, or -1 + "FILE: ... id N is past the model's embedding table". */
int simcse_tokenizer_check_ids(const simcse_tokenizer *t, int vocab_size);
int simcse_tokenizer_pad_id(const simcse_tokenizer *t);
int simcse_tokenizer_is_bpe(const simcse_tokenizer *t);
/* Number of ids the template adds (2 for [CLS] x [SEP] and <s> x </s>). */
int simcse_tokenizer_num_special(const simcse_tokenizer *t);
/* The token string of an id (NULL when out of range), and the id of a token (-1). */
const char *simcse_tokenizer_id_to_token(const simcse_tokenizer *t, int id);
int simcse_tokenizer_token_to_id(const simcse_tokenizer *t, const char *token);

/* Batch encoding padded to the longest sentence, with an attention mask. */
typedef struct {
    int n, width;  /* n sentences, width = longest (<= max_len) */
    int32_t *ids;  /* [n, width], pad id after each sentence */
    uint8_t *mask; /* [n, width], 1 for real tokens */
    int *lens;     /* [n] */
} simcse_padded_batch;
int simcse_tokenizer_encode_batch(const simcse_tokenizer *t, const char *const *texts, int n, int max_len,
                                  simcse_padded_batch *out);
void simcse_padded_batch_free(simcse_padded_batch *b);

#endif
