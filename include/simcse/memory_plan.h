/* Memory budgets: before a run allocates anything, what it will need (parameters,
 * gradients, AdamW moments, activations for its batch and length, evaluation and
 * checkpoint buffers), from the shapes alone, against what the machine has: the
 * backend's free memory (cudaMemGetInfo) and the host's (MemAvailable and the cgroup
 * limit, include/simcse/host_memory.h). Each allocation is checked anyway, but only the
 * total tells in time: a run whose buffers each fit can still grow until the kernel's
 * OOM killer ends it without a word, or fail after an hour at its first checkpoint.
 *
 * The figures mirror what the code allocates (simcse_encoder_bytes, simcse_step_bytes,
 * the optimizer's two moments, the trainer's host copies); where they are allowances
 * (the CUDA backend's workspaces and scratch, the evaluation sets) they say so below.
 * SIMCSE_TEST_AVAILABLE_MEMORY=BYTES replaces every available figure: it is for tests,
 * which need a machine of a known size. */
#ifndef SIMCSE_MEMORY_PLAN_H
#define SIMCSE_MEMORY_PLAN_H

#include <stdint.h>

#include "simcse/model.h"
#include "simcse/ops.h"
#include "simcse/train_config.h"

/* Bytes (double: shapes past any machine must not overflow). */
typedef struct {
    double params, grads, moments, acts; /* on the backend */
    double host;                         /* host memory besides: the model's copy, checkpoint and evaluation
                                            buffers, the data index */
} simcse_memory_need;

typedef struct {
    double device, host;                     /* bytes free on the backend and on the host */
    const char *device_source, *host_source; /* "cudaMemGetInfo", "MemAvailable", "cgroup memory.max", ... */
    int shared;                              /* the backend allocates host memory (the CPU): needs add up */
} simcse_memory_avail;

/* Parameters of the model a config describes (simcse_model_init's n_floats). */
double simcse_param_count(const simcse_config *c);

/* One rank of training: views per example (2 or 3), `chunk` examples per forward
 * (batch_size without gradient caching), `ranks` ranks in all (the gathered candidates),
 * n_examples in the data, resume (the checkpoint is read back beside the model), cuda
 * (the CUDA backend's workspaces). */
simcse_memory_need simcse_memory_for_training(const simcse_config *mc, const simcse_train_config *tc, int views,
                                              int chunk, int ranks, int64_t n_examples, int resume, int cuda);
/* eval's results (an allowance: the largest evaluation set's embeddings). */
double simcse_memory_eval_results(int hidden);
/* encode / eval: batch sequences of max_len tokens, plus out_bytes of host results. */
simcse_memory_need simcse_memory_for_inference(const simcse_config *mc, int batch, int max_len, double out_bytes,
                                               int cuda);

void simcse_memory_available(simcse_backend *be, simcse_memory_avail *a);
/* 1 when the need fits. `copies` of it run in this process (threads as ranks). */
int simcse_memory_fits(const simcse_memory_need *n, int copies, const simcse_memory_avail *a);
/* Records "not enough memory for WHAT: it needs X GiB (...) and Y GiB are free (SOURCE);
 * ADVICE" (one line) and returns -1. */
int simcse_memory_refuse(const simcse_memory_need *n, int copies, const simcse_memory_avail *a, const char *what,
                         const char *advice);
/* encode / eval: 0 when a forward of `batch` sequences fits, else -1 + the one line,
 * with the largest --batch-size that fits as the advice. */
int simcse_memory_check_inference(simcse_backend *be, const simcse_config *mc, int batch, int max_len, double out_bytes,
                                  const char *what);

#endif
