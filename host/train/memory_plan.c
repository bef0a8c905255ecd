/* Memory budgets (see include/simcse/memory_plan.h). Everything is counted in double
 * bytes from the shapes; nothing here allocates. */
#include "simcse/memory_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/encoder.h"
#include "simcse/host_memory.h"
#include "simcse/loss.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
/* The rest of the process (tokenizer tables, libraries, stacks, the heap's slack). */
#define HOST_ALLOWANCE (64.0 * 1024 * 1024)
double simcse_memory_eval_results(int hidden) {
    /* SentEval's largest split has under 20,000 distinct sentences; eval keeps their
     * embeddings in float and, for uniformity, in double */
    return 20000.0 * hidden * (sizeof(float) + sizeof(double));
}

double simcse_param_count(const simcse_config *c) {
    const double V = c->vocab_size, P = c->max_positions, TV = c->type_vocab_size, H = c->hidden, I = c->intermediate,
                 L = c->layers;
    /* embeddings and their LayerNorm; per layer q k v o (H x H + H), two LayerNorms,
     * the two FFN matrices and biases; the pooler / MLP head */
    return (V + P + TV + 2) * H + L * (4 * H * H + 2 * I * H + 9 * H + I) + H * H + H;
}

/* The CUDA backend beyond the encoder's buffers: two 32 MiB GEMM workspaces, and a
 * scratch arena that the bf16 GEMMs size to their operands (kept 25% larger when it grows). */
static double cuda_allowance(const simcse_config *c, double tokens) {
    const double H = c->hidden, I = c->intermediate;
    return 64.0 * 1024 * 1024 + 1.25 * 2.0 * (tokens * I + tokens * H + I * H);
}

simcse_memory_need simcse_memory_for_training(const simcse_config *mc, const simcse_train_config *tc, int views,
                                              int chunk, int ranks, int64_t n_examples, int resume, int cuda) {
    simcse_memory_need n = {0};
    const double P = simcse_param_count(mc), f = sizeof(float);
    int seqs = chunk * views;
    if (seqs < tc->eval_batch_size) seqs = tc->eval_batch_size; /* the encoder serves evaluation too */
    const double tokens = (double)seqs * tc->max_seq_len;
    double weights, acts;
    simcse_encoder_bytes(mc, (size_t)P, seqs, tokens, 1, &weights, &acts);
    n.params = P * f;
    n.grads = weights - n.params;
    n.moments = 2 * P * f;
    n.acts = acts + simcse_step_bytes(mc->hidden, tc->batch_size, views, ranks, ranks > 1);
    if (cuda) n.acts += cuda_allowance(mc, tokens);
    /* host: the model's own copy; a checkpoint's moments (and on resume the saved
     * weights too) copied out beside it; the data index; one packed batch per chunk;
     * the evaluation buffers */
    n.host = P * f + (resume ? 3 : 2) * P * f + 8.0 * ((double)n_examples + 1) +
             16.0 * tc->batch_size * views * tc->max_seq_len + 2.0 * tc->eval_batch_size * mc->hidden * f +
             HOST_ALLOWANCE;
    return n;
}

simcse_memory_need simcse_memory_for_inference(const simcse_config *mc, int batch, int max_len, double out_bytes,
                                               int cuda) {
    simcse_memory_need n = {0};
    const double P = simcse_param_count(mc), f = sizeof(float);
    double weights, acts;
    simcse_encoder_bytes(mc, (size_t)P, batch, (double)batch * max_len, 0, &weights, &acts);
    n.params = weights;
    n.acts = acts;
    if (cuda) n.acts += cuda_allowance(mc, (double)batch * max_len);
    n.host = P * f + out_bytes + 16.0 * batch * max_len + HOST_ALLOWANCE;
    return n;
}

void simcse_memory_available(simcse_backend *be, simcse_memory_avail *a) {
    memset(a, 0, sizeof *a);
    size_t dev = be->available(be, &a->device_source, &a->shared);
    size_t host = simcse_host_memory_available(&a->host_source);
    a->device = (double)dev;
    a->host = (double)host;
    const char *o = getenv("SIMCSE_TEST_AVAILABLE_MEMORY");
    if (o && *o) {
        char *end;
        double v = strtod(o, &end);
        if (!*end && v >= 0) {
            a->device = a->host = v;
            a->device_source = a->host_source = "SIMCSE_TEST_AVAILABLE_MEMORY";
        }
    }
}

static double device_total(const simcse_memory_need *n) { return n->params + n->grads + n->moments + n->acts; }

int simcse_memory_fits(const simcse_memory_need *n, int copies, const simcse_memory_avail *a) {
    /* 0 bytes available: the figure could not be read; nothing can be checked */
    if (a->shared) return a->host <= 0 || copies * (device_total(n) + n->host) <= a->host;
    return (a->device <= 0 || device_total(n) <= a->device) && (a->host <= 0 || copies * n->host <= a->host);
}

int simcse_memory_refuse(const simcse_memory_need *n, int copies, const simcse_memory_avail *a, const char *what,
                         const char *advice) {
    char parts[256];
    snprintf(parts, sizeof parts, "parameters %.2f, gradients %.2f, AdamW moments %.2f, activations %.2f, host %.2f",
             n->params / GIB, n->grads / GIB, n->moments / GIB, n->acts / GIB, n->host / GIB);
    char times[32] = "";
    if (copies > 1) snprintf(times, sizeof times, " x %d ranks", copies);
    if (a->shared || !(a->device <= 0 || device_total(n) <= a->device)) {
        double need = a->shared ? device_total(n) + n->host : device_total(n);
        return simcse_error("not enough memory for %s: it needs %.2f GiB%s (%s) and %.2f GiB are free (%s); %s", what,
                            copies * need / GIB, times, parts, (a->shared ? a->host : a->device) / GIB,
                            a->shared ? a->host_source : a->device_source, advice);
    }
    return simcse_error("not enough host memory for %s: it needs %.2f GiB%s (%s) and %.2f GiB are free (%s); %s", what,
                        copies * n->host / GIB, times, parts, a->host / GIB, a->host_source, advice);
}

int simcse_memory_check_inference(simcse_backend *be, const simcse_config *mc, int batch, int max_len, double out_bytes,
                                  const char *what) {
    simcse_memory_avail a;
    simcse_memory_available(be, &a);
    const int cuda = !a.shared;
    simcse_memory_need need = simcse_memory_for_inference(mc, batch, max_len, out_bytes, cuda);
    if (simcse_memory_fits(&need, 1, &a)) return 0;
    int lo = 1, hi = batch - 1, best = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        simcse_memory_need m = simcse_memory_for_inference(mc, mid, max_len, out_bytes, cuda);
        if (simcse_memory_fits(&m, 1, &a))
            best = mid, lo = mid + 1;
        else
            hi = mid - 1;
    }
    char advice[160];
    if (best > 0)
        snprintf(advice, sizeof advice, "lower --batch-size (at most %d fits)", best);
    else
        snprintf(advice, sizeof advice, "%s",
                 "even one sentence at a time does not fit: the model (or the output) is too large for this machine");
    return simcse_memory_refuse(&need, 1, &a, what, advice);
}
