/* Evaluation as in SentEval / the SimCSE paper: STS tasks scored by the
 * Spearman correlation (x100) between the cosine similarity of the two
 * sentences' embeddings and the gold score, and the embedding-space statistics
 * alignment, uniformity and anisotropy.
 *
 * - Files (under data_dir, e.g. simcse_data_dir()): the SentEval-preprocessed
 *   copies the paper uses.
 *     stsb:  stsbenchmark/senteval_tok/sts-{dev,test}.csv   TAB, score = field 5, sentences 6 and 7
 *     sickr: sick/SICK_trial.txt (dev), sick/SICK_test_annotated.txt (test)
 *            TAB with a header; columns sentence_A, sentence_B, relatedness_score
 *     sts12..sts16: senteval_sts/STS1x-en-test/STS.input.<set>.txt + STS.gs.<set>.txt
 *            (sets found by listing STS.input.*.txt, sorted; test only). An empty
 *            gs line is an unscored pair and is skipped.
 *   Lines are split on TAB only (never CSV-quote-parsed); a trailing \r is
 *   dropped; sentences are normalised as SentEval does (' '.join(s.split()):
 *   runs of whitespace become one space, no leading/trailing space).
 *   A malformed line is an error naming file:line.
 * - STS12-16 use SentEval's "all" setting: one Spearman over the year's pooled
 *   pairs. STS-B and SICK-R: one Spearman over the split.
 * - Embeddings come from a callback, so this module does not depend on the
 *   model; cosine similarities are computed in double (NaN -> 0 as SentEval). */
#ifndef SIMCSE_EVAL_H
#define SIMCSE_EVAL_H

#include <stddef.h>
#include <stdint.h>

/* Writes the embeddings of sents[0..n) to out[n, dim]; returns 0, or -1 + error. */
typedef int (*simcse_embed_fn)(void *ctx, const char *const *sents, int n, float *out);

typedef enum { SIMCSE_SPLIT_DEV = 0, SIMCSE_SPLIT_TEST = 1 } simcse_split;

/* "dev" or "test" (also "validation"). */
int simcse_split_parse(const char *s, simcse_split *out);
const char *simcse_split_name(simcse_split s);

/* A memo in front of an embed callback (host/eval/embed_cache.c): each distinct
 * sentence is embedded once, so the STS scores and alignment / uniformity of one
 * evaluation share the work and the vectors. Pass simcse_embed_cache_embed with
 * the cache as ctx wherever a simcse_embed_fn goes. */
typedef struct simcse_embed_cache simcse_embed_cache;
simcse_embed_cache *simcse_embed_cache_create(simcse_embed_fn embed, void *ctx, int dim);
int simcse_embed_cache_embed(void *cache, const char *const *sents, int n, float *out);
size_t simcse_embed_cache_size(const simcse_embed_cache *c); /* distinct sentences held */
void simcse_embed_cache_free(simcse_embed_cache *c);

/* ---- data ---- */

#define SIMCSE_STS_MAX_SETS 16

typedef struct {
    char task[16]; /* "stsb", "sickr", "sts12", ... */
    simcse_split split;
    int n;           /* scored pairs */
    char **s1, **s2; /* [n] normalised sentences */
    double *gold;    /* [n] */
    int n_sets;      /* STS12-16: the sets in file order of the pool; others: 1 */
    char set_name[SIMCSE_STS_MAX_SETS][48];
    int set_begin[SIMCSE_STS_MAX_SETS + 1]; /* pairs set_begin[k] .. set_begin[k+1]-1 belong to set k */
} simcse_sts_data;

/* Task names: stsb, sickr, sts12, sts13, sts14, sts15, sts16 (case-insensitive;
 * SentEval's STSBenchmark and SICKRelatedness are accepted too). STS12-16 have
 * no dev split (error). 0, or -1 + error; free with simcse_sts_data_free. */
int simcse_sts_load(const char *data_dir, const char *task, simcse_split split, simcse_sts_data *out);
void simcse_sts_data_free(simcse_sts_data *d);

/* ---- statistics (host/eval/stats.c) ---- */

/* rank[i] = 1-based rank of x[i], ties get the mean of their ranks (scipy's rankdata "average"). */
void simcse_rank_average(const double *x, int n, double *rank);
/* Pearson's r; NaN when n < 2 or a variable is constant. */
double simcse_pearson(const double *x, const double *y, int n);
/* Spearman's rho = Pearson of the average ranks (scipy.stats.spearmanr). */
double simcse_spearman(const double *x, const double *y, int n);
/* Cosine similarity in double; 0 when a vector is zero or has a NaN (SentEval's nan_to_num). */
double simcse_cosine(const float *a, const float *b, int dim);

/* ---- STS evaluation ---- */

typedef struct {
    char task[16];
    int n_pairs;
    double spearman; /* x100 */
    double pearson;  /* x100 */
    int n_nonfinite; /* sentences whose embedding holds NaN or Inf (scored as SentEval does: cosine 0) */
} simcse_task_score;

#define SIMCSE_EVAL_MAX_TASKS 16

typedef struct {
    simcse_split split;
    int n_tasks;
    simcse_task_score task[SIMCSE_EVAL_MAX_TASKS];
    double avg_spearman; /* mean of the tasks' spearman (x100) */
} simcse_eval_result;

/* Scores one loaded task: embeds s1 and s2 in chunks of batch_size pairs. */
int simcse_eval_sts_data(const simcse_sts_data *d, int dim, int batch_size, simcse_embed_fn embed, void *ctx,
                         simcse_task_score *out);
/* tasks: comma-separated names ("stsb,sickr,sts12"); "all" = the seven tasks of
 * the paper (test) or stsb,sickr (dev). */
int simcse_eval_sts(const char *data_dir, const char *tasks, simcse_split split, int dim, int batch_size,
                    simcse_embed_fn embed, void *ctx, simcse_eval_result *out);

/* ---- alignment, uniformity, anisotropy (host/eval/embedding_stats.c) ----
 * Rows are L2-normalised inside (in double); the inputs are not modified. */

/* mean_i ||x_i - y_i||^2 over n positive pairs (Wang & Isola, alpha = 2). */
double simcse_alignment(const float *x, const float *y, int n, int dim);
/* log mean_{i<j} exp(-2 ||x_i - x_j||^2) over all distinct pairs (t = 2). NaN when n < 2. */
double simcse_uniformity(const float *x, int n, int dim);
/* Mean cosine of n_pairs random pairs (i != j) drawn with Philox from seed. NaN when n < 2. */
double simcse_anisotropy(const float *x, int n, int dim, int n_pairs, uint64_t seed);

typedef struct {
    double alignment;  /* over STS-B pairs of the split with gold > 4.0 */
    double uniformity; /* over the split's distinct STS-B sentences */
    double anisotropy; /* 10,000 random pairs of those sentences, seed 1234 */
    int n_pos_pairs;
    int n_sentences; /* distinct sentences */
    int n_nonfinite; /* embeddings holding NaN or Inf: then the three figures are NaN */
} simcse_embedding_stats;

#define SIMCSE_ANISOTROPY_PAIRS 10000
#define SIMCSE_ANISOTROPY_SEED 1234u

int simcse_eval_embedding_stats(const char *data_dir, simcse_split split, int dim, int batch_size,
                                simcse_embed_fn embed, void *ctx, simcse_embedding_stats *out);

#endif
