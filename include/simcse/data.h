/* Training data: datasets indexed by byte offset, per-epoch shuffling, and
 * token-packed batches.
 *
 * - A dataset keeps only an index in memory (one uint64 start offset per
 *   example, plus the end of the data); an example is read back (pread) and,
 *   for CSV, re-parsed with libcsv when it is fetched. Files of millions of
 *   lines cost 8 bytes a line.
 * - gzip input (detected by its magic bytes, not the name) is decompressed once
 *   into an unlinked temporary file (options.tmp_dir, else $TMPDIR, else /tmp)
 *   which is indexed like a plain file; the space goes back to the system when
 *   the dataset is closed or the process ends, even on a crash.
 * - Text: one sentence per line; lines that are empty or whitespace only (after
 *   stripping \r) are skipped and counted. Fetched text has its \r\n removed,
 *   nothing else.
 * - CSV (RFC 4180, via libcsv in strict mode; spaces are part of fields): a
 *   header naming sent0, sent1 and optionally hard_neg, in any order; other
 *   columns are ignored. CRLF or LF, no final newline, quoted commas, quotes
 *   ("") and newlines are accepted; empty lines are skipped. A malformed row
 *   (field count differing from the header's, unterminated or stray quote, an
 *   empty or whitespace-only required field) is fatal (the error names
 *   file:line) or, with skip_bad_rows, warned about (stderr) and counted.
 *   After a malformed row, scanning resumes at the line after the row's first
 *   line, so one stray quote loses one row, not the rest of the file.
 * - A dataset is not thread-safe: one thread fetches from it at a time.
 * - Shuffling: epoch e's order is a Fisher-Yates permutation driven by Philox
 *   (simcse_rng_u32) with key = seed and subsequence =
 *   simcse_rng_subsequence(e, SIMCSE_RNG_SITE_SHUFFLE, 0); the dropout sites of
 *   the model must not use SIMCSE_RNG_SITE_SHUFFLE. The position (epoch, index
 *   in epoch) is a plain struct that a checkpoint stores and restores exactly.
 * - Packing: every sentence is encoded with simcse_tokenizer_encode (special
 *   tokens included, truncated to max_len) and laid out view-major with real
 *   tokens only; see simcse_token_batch. */
#ifndef SIMCSE_DATA_H
#define SIMCSE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "simcse/tokenizer.h"

#define SIMCSE_DATA_MAX_FIELDS 3
/* Longest example accepted, in bytes (longer lines/rows are malformed rows). */
#define SIMCSE_DATA_MAX_RECORD_BYTES (16u << 20)
/* Philox site reserved for the data order (see simcse_rng_subsequence). */
#define SIMCSE_RNG_SITE_SHUFFLE 0xfffu

typedef enum {
    SIMCSE_DATA_AUTO = 0, /* .csv / .csv.gz, or a first line starting "sent0," or "sent1," -> CSV; else text */
    SIMCSE_DATA_TEXT = 1,
    SIMCSE_DATA_CSV = 2,
} simcse_data_kind;

typedef struct {
    int skip_bad_rows;   /* 0: a malformed CSV row (or an over-long line) is an error; 1: warn and count */
    int max_warnings;    /* warnings printed before going quiet (the count goes on); default 20 */
    int quiet;           /* 1: print no warnings */
    const char *tmp_dir; /* where a gzip file is decompressed; NULL: $TMPDIR or /tmp */
} simcse_data_options;

void simcse_data_options_default(simcse_data_options *o);

typedef struct simcse_dataset simcse_dataset;

/* opt may be NULL (defaults). NULL + error naming the file (and line) on failure. */
simcse_dataset *simcse_dataset_open(const char *path, simcse_data_kind kind, const simcse_data_options *opt);
void simcse_dataset_close(simcse_dataset *d);

int64_t simcse_dataset_size(const simcse_dataset *d); /* number of examples */
int simcse_dataset_n_fields(const simcse_dataset *d); /* 1 (text), 2 (pairs) or 3 (triplets) */
simcse_data_kind simcse_dataset_kind(const simcse_dataset *d);
const char *simcse_dataset_path(const simcse_dataset *d);
int64_t simcse_dataset_n_empty_lines(const simcse_dataset *d); /* empty / whitespace-only lines skipped */
int64_t simcse_dataset_n_bad_rows(const simcse_dataset *d);    /* malformed rows skipped (skip mode) */
int simcse_dataset_was_gzip(const simcse_dataset *d);

typedef struct {
    int n_fields;
    const char *text[SIMCSE_DATA_MAX_FIELDS]; /* NUL-terminated (may also hold NULs: use len) */
    size_t len[SIMCSE_DATA_MAX_FIELDS];
} simcse_example;

/* Example i (0 <= i < size): the strings point into the dataset and stay valid
 * until the next get / get_batch / close on it. 0, or -1 + error. */
int simcse_dataset_get(simcse_dataset *d, int64_t i, simcse_example *ex);

/* n examples copied into an owned, reusable arena, field-major:
 * text[f * n + b] is field f of example idx[b] (the order the model's views use).
 * Zero-initialise before first use; free with simcse_text_batch_free. */
typedef struct {
    int n, n_fields;
    const char **text; /* [n_fields * n] */
    size_t *len;       /* [n_fields * n] */
    /* storage */
    char *buf;
    size_t buf_len, buf_cap;
    size_t *off;
    int cap;
} simcse_text_batch;

int simcse_dataset_get_batch(simcse_dataset *d, const int64_t *idx, int n, simcse_text_batch *out);
/* Fills a text batch from plain strings (n_fields = 1), e.g. for encoding. */
int simcse_text_batch_set(simcse_text_batch *out, const char *const *sents, int n);
void simcse_text_batch_free(simcse_text_batch *b);

/* ---- order ---- */

/* Where the data stream stands: the next batch starts at perm_epoch[index]. */
typedef struct {
    uint64_t epoch;
    int64_t index; /* examples of this epoch already consumed, 0..n */
} simcse_data_pos;

/* perm[0..n) = epoch's permutation of 0..n-1 for this seed (Fisher-Yates, Philox). */
void simcse_shuffle_permutation(uint64_t seed, uint64_t epoch, int64_t n, int64_t *perm);

typedef struct {
    int64_t n;
    uint64_t seed;
    int shuffle;   /* 0: identity order every epoch */
    int drop_last; /* 1: an epoch's last partial batch is dropped */
    simcse_data_pos pos;
    int64_t *perm; /* order of perm_epoch, or NULL */
    uint64_t perm_epoch;
} simcse_sampler;

/* Starts at epoch 0, index 0. n >= 1. */
int simcse_sampler_init(simcse_sampler *s, int64_t n, uint64_t seed, int shuffle, int drop_last);
void simcse_sampler_free(simcse_sampler *s);
/* Batches per epoch for batch size b: ceil(n/b), or floor with drop_last. */
int64_t simcse_sampler_batches_per_epoch(const simcse_sampler *s, int b);
/* Restores a position saved from s->pos (validated against n). */
int simcse_sampler_set_pos(simcse_sampler *s, simcse_data_pos pos);
/* Writes the next batch's example indices (up to max_b) and advances s->pos;
 * starts the next epoch when this one is used up (or, with drop_last, when
 * fewer than max_b remain). Returns the count (>= 1), or -1 + error. */
int simcse_sampler_next(simcse_sampler *s, int max_b, int64_t *idx);

/* ---- token-packed batches ----
 * Views are laid out view-major, each view holding the B examples in order:
 *   F = 1 (unsupervised): [s_0..s_{B-1}, s_0..s_{B-1}]     (n_views 2; same ids twice)
 *   F = 2 (pairs):        [sent0 x B, sent1 x B]            (n_views 2)
 *   F = 3 (triplets):     [sent0 x B, sent1 x B, hard_neg x B] (n_views 3)
 * Sequence k holds tokens offsets[k] .. offsets[k+1]-1 (real tokens only).
 * pos_ids count from pos_offset (BERT 0, RoBERTa pad_token_id + 1);
 * type_ids are all 0. The fields map one to one onto simcse_packed. */
typedef struct {
    int max_len, max_seq; /* capacity: max_seq sequences of at most max_len ids */
    int B, n_views, n_seq, T;
    int32_t *ids, *pos_ids, *type_ids; /* [T] (allocated max_seq * max_len) */
    int32_t *offsets;                  /* [n_seq + 1] */
    int32_t *lens;                     /* [n_seq] */
    int32_t *row_ids;                  /* [T]: dropout row identity, (v * global_B + example_base + b) * max_len + j
                                      * for token j of view v of example b, so masks do not depend on chunking
                                      * or on the rank (see simcse_dropout in ops.h) */
    int64_t example_base, global_B;    /* set by the caller; defaults 0 and B (one rank, no chunks) */
    int n_at_max_len;                  /* sequences of exactly max_len ids (truncated or just fitting) */
} simcse_token_batch;

/* Allocates for up to max_seq sequences of at most max_len (default 32 when <= 0) ids. */
int simcse_token_batch_init(simcse_token_batch *b, int max_seq, int max_len);
void simcse_token_batch_free(simcse_token_batch *b);

/* Packs a text batch into views (see above); needs B * max(2, F) <= max_seq. */
int simcse_pack_batch(const simcse_tokenizer *tok, const simcse_text_batch *tb, int pos_offset,
                      simcse_token_batch *out);
/* Packs sequences already encoded (special tokens included) the same way: sequence
 * k of n_views * B (view-major) is ids[k][0 .. lens[k]), lens[k] <= max_len. */
int simcse_pack_ids(const int32_t *const *ids, const int *lens, int B, int n_views, int pos_offset,
                    simcse_token_batch *out);
/* Packs n plain sentences, one sequence each (n_views = 1, B = n), e.g. for encoding.
 * lens[i] bytes of sents[i] (they may hold NUL bytes); lens NULL: NUL-terminated. */
int simcse_pack_sentences(const simcse_tokenizer *tok, const char *const *sents, const size_t *lens, int n,
                          int pos_offset, simcse_token_batch *out);

#endif
