/* Private to host/text/tokenizer*.c.
 *
 * The tokenizer mirrors the stages of Hugging Face `tokenizers` so that each
 * stage can be checked against it on its own:
 *   split on added tokens -> normalizer -> pre-tokenizer -> model -> template.
 * One file per stage, each using only the ones after it:
 *   tokenizer_encode.c     added-token split, driving the stages, template, batches
 *   tokenizer_normalize.c  BertNormalizer, Unicode predicates
 *   tokenizer_pretok.c     BertPreTokenizer, ByteLevel; hands each piece to the model
 *   tokenizer_wordpiece.c, tokenizer_bpe.c   the two models
 * under them the object (tokenizer.c) and the containers and UTF-8 (tokenizer_util.c);
 * over them the loaders (tokenizer_load.c: tokenizer.json and tok_finish;
 * tokenizer_files.c: vocab.txt, vocab.json + merges.txt).
 * Stages are independent (any pre-tokenizer with any model), like in HF, but
 * only the kinds BERT and RoBERTa/GPT-2 need are implemented.
 *
 * Text inside the pipeline is always valid UTF-8 (invalid input bytes are
 * replaced first), so later stages never re-validate. Strings carry lengths,
 * never rely on NUL: input may contain U+0000. */
#ifndef SIMCSE_TOKENIZER_INTERNAL_H
#define SIMCSE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "simcse/tokenizer.h"

/* ---- string -> int32 hash map (open addressing, owns its keys) ---------- */
typedef struct {
    char *key;
    uint32_t len, hash;
    int32_t val;
} tok_map_entry;
typedef struct {
    tok_map_entry *slots;
    size_t cap, count; /* cap is a power of two, load <= 1/2 */
} tok_map;

uint32_t tok_hash(const char *s, size_t n);
/* Inserts or overwrites (later entries win, as in HF's HashMap collect). */
void tok_map_put(tok_map *m, const char *key, size_t n, int32_t val);
/* Returns the value or -1. */
int32_t tok_map_get(const tok_map *m, const char *key, size_t n);
void tok_map_free(tok_map *m);

/* ---- pair (a, b) -> (rank, new id) for BPE merges ----------------------- */
typedef struct {
    uint64_t key; /* (a << 32 | b) + 1, 0 = empty */
    int32_t rank, id;
} tok_merge;
typedef struct {
    tok_merge *slots;
    size_t cap, count;
} tok_merge_map;
void tok_merges_put(tok_merge_map *m, int32_t a, int32_t b, int32_t rank, int32_t id);
const tok_merge *tok_merges_get(const tok_merge_map *m, int32_t a, int32_t b);

/* ---- growable buffers ---------------------------------------------------- */
typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ids;
void tok_ids_push(tok_ids *b, int32_t id);

typedef struct {
    char *s;
    size_t n, cap;
} tok_str;
void tok_str_put(tok_str *b, const char *s, size_t n);
void tok_str_put_cp(tok_str *b, int32_t cp);

/* ---- the tokenizer ------------------------------------------------------- */
enum { TOK_MODEL_WORDPIECE = 1, TOK_MODEL_BPE = 2 };
enum { TOK_PRE_NONE = 0, TOK_PRE_BERT = 1, TOK_PRE_BYTELEVEL = 2 };

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int single_word, lstrip, rstrip, normalized;
} tok_added;

struct simcse_tokenizer {
    char *source; /* file name, for error messages */
    int model;

    /* vocabulary: model vocab + added tokens */
    tok_map vocab;
    char **id_to_token; /* [n_ids], NULL where no token has that id */
    int n_ids, cap_ids;

    /* added tokens (matched on the text before the model sees it) */
    tok_added *added;
    int n_added;
    uint8_t added_first[256]; /* 1 if some added token starts with this byte */

    /* BertNormalizer (has_bert_normalizer = 0: no normalizer) */
    int has_bert_normalizer, clean_text, chinese_chars, strip_accents, lowercase;

    int pre_tokenizer;
    int add_prefix_space, use_regex; /* ByteLevel */
    pcre2_code *regex;               /* GPT-2 split pattern */
    char byte_chars[256][2];         /* byte -> its byte-level character, UTF-8 */
    uint8_t byte_len[256];

    /* WordPiece */
    int32_t unk_id;       /* -1 when the model has no unk token */
    char *subword_prefix; /* "##" (WordPiece) or BPE continuing_subword_prefix, may be "" */
    char *end_suffix;     /* BPE end_of_word_suffix, may be "" */
    int max_input_chars;  /* WordPiece */

    /* BPE */
    tok_merge_map merges;
    int fuse_unk, ignore_merges;

    /* post-processor: prefix ids, the sequence, suffix ids */
    int32_t *tpl_pre, *tpl_post;
    int n_pre, n_post;

    int32_t pad_id;
};

/* A fresh tokenizer with defaults (no normalizer, no template). */
simcse_tokenizer *tok_new(const char *source);
/* Registers an added token; the id must already be in the vocabulary or be new. */
void tok_add_token(simcse_tokenizer *t, const char *content, int32_t id, int single_word, int lstrip, int rstrip,
                   int normalized);
/* Adds a vocabulary entry (token -> id), growing id_to_token. */
void tok_vocab_add(simcse_tokenizer *t, const char *token, size_t n, int32_t id);
/* Validates the assembled tokenizer (non-empty vocab, unk present, regex compiled...)
 * and finishes it (tokenizer_load.c). Returns 0 or -1 + error (not prefixed with the
 * file name). */
int tok_finish(simcse_tokenizer *t);

/* ---- loading helpers shared by tokenizer_load.c and tokenizer_files.c ---- */
#define TOK_MAX_ID 10000000 /* refuse ids that would make id_to_token absurdly large */
struct cJSON;
/* Prefixes the current error with the file name, frees t, returns NULL. */
simcse_tokenizer *tok_load_fail(simcse_tokenizer *t, const char *name);
int tok_json_bool(const struct cJSON *o, const char *key, int dflt);
/* A JSON object token -> id into the vocabulary; where names it in errors. */
int tok_read_vocab(simcse_tokenizer *t, const struct cJSON *vocab, const char *where);
/* Records merge number rank (a, b), checked against the vocabulary as HF does. */
int tok_add_merge(simcse_tokenizer *t, int rank, const char *a, size_t na, const char *b, size_t nb);
/* Appends (or prepends) k ids to a growable array. */
void tok_append_ids(int32_t **v, int *n, const int32_t *ids, int k, int at_front);

/* ---- stages ------------------------------------------------------------- */
/* Replaces invalid UTF-8 the way Python's bytes.decode('utf-8', 'replace') does
 * (one U+FFFD per maximal ill-formed subpart). */
void tok_utf8_sanitize(const char *s, size_t n, tok_str *out);
/* Decodes one code point of valid UTF-8 at s (n > 0 bytes); sets *len. */
int32_t tok_utf8_next(const char *s, size_t n, int *len);

/* BertNormalizer on valid UTF-8. */
void tok_bert_normalize(const simcse_tokenizer *t, const char *s, size_t n, tok_str *out);
/* Pre-tokenizes normalized s and runs the model on every piece, appending ids;
 * may stop early once out holds at least `limit` ids (limit < 0: no limit).
 * Returns 0 or -1 + error. */
int tok_pre_tokenize_and_model(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit);
int tok_pretok_bert(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit);
int tok_pretok_bytelevel(const simcse_tokenizer *t, const char *s, size_t n, tok_ids *out, long limit);
/* The model on one pre-tokenized piece (dispatch), and the two models. */
int tok_model_piece(const simcse_tokenizer *t, const char *w, size_t n, tok_ids *out);
int tok_wordpiece_word(const simcse_tokenizer *t, const char *w, size_t n, tok_ids *out);
int tok_bpe_word(const simcse_tokenizer *t, const char *w, size_t n, tok_ids *out);

/* Unicode predicates the way Rust / HF define them (see tokenizer_normalize.c). */
int tok_is_whitespace(int32_t cp);
int tok_is_bert_punct(int32_t cp);
int tok_is_word_category(int32_t cp);

/* Sets up ByteLevel: the GPT-2 bytes_to_unicode alphabet and the split regex. */
int tok_bytelevel_init(simcse_tokenizer *t);

#endif
