/* bench_step: wall time of full unsupervised SimCSE training steps on a randomly
 * initialised BERT, the figure ../shared/bench/torch_simcse.py measures for PyTorch.
 *
 * Design choices
 * - A step is exactly what the trainer runs (host/train/trainer.c): zero the
 *   gradients, set the dropout step, simcse_step_run (both views, cls pooler
 *   through the MLP head, InfoNCE at temperature 0.05, backward; with
 *   --grad-cache-chunk the chunked re-embedding) and simcse_optimizer_step
 *   (AdamW, gradient-norm clipping at 1.0). Nothing is reimplemented here.
 * - Inputs are prepared before the clock starts: fixed-length random ids
 *   (torch_simcse.py's randint(1000, vocab), one batch reused every step, as there),
 *   or real sentences shuffled (Philox, seed 0: the same kind of sample as the
 *   PyTorch script's random.Random(0), not the same sentences), tokenized to at
 *   most --max-len ids and token-packed into warmup + steps distinct batches.
 *   For real sentences we also count the tokens PyTorch computes (each batch
 *   padded to its longest sentence, both views) to report the padding saved.
 * - Each timed step ends with be->sync before the clock is read; per-step times
 *   give the median (the headline figure) and the mean.
 * - FLOPs: torch_simcse.py's step_flops, written per sequence so that it also
 *   holds for packed real sentences: per sequence of l tokens
 *   6 * layers * (4 H^2 + 2 H I) * l + 12 * layers * l^2 * H, plus 6 * 2B * H^2 for
 *   the MLP head. With I = 4H and fixed L this is the PyTorch formula term for term.
 * - --compare-grad-cache C runs the same inputs with chunk C first and then
 *   uncached (each with its own encoder), so the host peak RSS of the cached run is
 *   not inflated by the larger uncached one, and checks that both give the same loss.
 * - --counters (include/simcse/cuda_counters.h; bench/README.md defines each figure): per
 *   timed step, the executed launches (kernel grids and library calls, graph replays
 *   included), the host-blocking waits issued by the step (the bench's own be->sync that
 *   ends the step is not one of them), device allocations and host-to-device bytes.
 *   launches_per_layer is the difference of per-step launches between this model and the
 *   same model with one layer fewer. That one runs in a forked child before either touches
 *   the device, so that nothing one run caches (graphs, cuBLASLt plans, the scratch arena)
 *   can change the other's count, and the figure holds however a step is issued (eagerly,
 *   fused, or as one graph replay). optimizer_launches: one more simcse_optimizer_step run
 *   eagerly after the timed steps, launches counted around it (the step itself may be a
 *   graph replay, where the optimizer's share cannot be told apart). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "simcse/cli.h"
#include "simcse/cuda_counters.h"
#include "simcse/data.h"
#include "simcse/data_dir.h"
#include "simcse/embedder.h"
#include "simcse/encoder.h"
#include "simcse/loss.h"
#include "simcse/model.h"
#include "simcse/optimizer.h"
#include "simcse/tokenizer.h"

typedef struct {
    const char *model, *data, *vocab, *device, *precision, *json;
    int batch, seq, max_len, steps, warmup, chunk, compare_chunk, seed;
    int nccl, counters;
} options;

/* The prepared inputs for one chunk size: n_batches batches of n_chunks packed chunks. */
typedef struct {
    int n_batches, n_chunks, chunk, max_len;
    simcse_token_batch *tb;  /* [n_batches * n_chunks] */
    simcse_packed *packed;   /* [n_batches * n_chunks] */
    int *counts;             /* [n_chunks] examples per chunk (the same for every batch) */
    long long real_tokens;   /* summed over the batches, both views */
    long long padded_tokens; /* what PyTorch computes: 2 * B * longest, summed over the batches */
    double flops;            /* model FLOPs summed over the batches */
} inputs;

/* --counters: per timed step (averages), and the optimizer's launches */
typedef struct {
    int ok; /* the build counts (simcse_cuda_counters_read) */
    double launches, graph_launches, host_syncs, allocations, h2d_bytes;
    double optimizer_launches;
} step_counters;

typedef struct {
    double ms_median, ms_mean, ms_min;
    float loss;
    double rss_mib;
    long long dev_peak;
    step_counters counts;
} run_result;

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_step [options]\n"
            "  --model M              base, large, tiny (2 x 128, CPU smoke runs) or PATH/config.json (default base)\n"
            "  --batch B              examples (sentences) per step (default 64)\n"
            "  --seq L                fixed-length inputs of L random ids (default 32)\n"
            "  --data FILE            real sentences instead (one per line), shuffled with --seed, token-packed\n"
            "  --vocab DIR            tokenizer for --data (default $SIMCSE_DATA_DIR/tokenizers/bert-base-uncased,\n"
            "                         $SIMCSE_DATA_DIR defaulting to ../shared/data)\n"
            "  --max-len N            most tokens per sentence with --data (default 32)\n"
            "  --steps N              timed steps (default 20)\n"
            "  --warmup W             untimed steps first (default 5)\n"
            "  --device D             cpu, cuda or auto (default auto)\n"
            "  --precision P          fp32 or bf16 (default bf16; the CPU always runs fp32)\n"
            "  --grad-cache-chunk C   gradient caching in chunks of C examples (0: off)\n"
            "  --compare-grad-cache C time the same batch with chunk C and uncached; print the ratio\n"
            "  --seed S               input and weight seed (default 0)\n"
            "  --nccl                 run the step through a one-rank NCCL communicator (its collectives\n"
            "                         included), to compare with the step without one\n"
            "  --json FILE            also append the JSON line(s) to FILE\n"
            "  --counters             also print the CUDA counters of a steady-state step: launches per\n"
            "                         encoder layer, optimizer launches, host syncs, allocations, H2D bytes,\n"
            "                         graph replay (bench/README.md)\n");
}

static void parse(int argc, char **argv, options *o) {
    *o = (options){.model = "base",
                   .device = "auto",
                   .precision = "bf16",
                   .batch = 64,
                   .seq = 32,
                   .max_len = 32,
                   .steps = 20,
                   .warmup = 5};
    int seq_given = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            exit(0);
        }
        const char *a = argv[i];
        if (!strcmp(a, "--nccl")) {
            o->nccl = 1;
            continue;
        }
        if (!strcmp(a, "--counters")) {
            o->counters = 1;
            continue;
        }
        if ((r = simcse_arg_str(argc, argv, &i, "--model", &o->model)) ||
            (r = simcse_arg_str(argc, argv, &i, "--data", &o->data)) ||
            (r = simcse_arg_str(argc, argv, &i, "--vocab", &o->vocab)) ||
            (r = simcse_arg_str(argc, argv, &i, "--device", &o->device)) ||
            (r = simcse_arg_str(argc, argv, &i, "--precision", &o->precision)) ||
            (r = simcse_arg_str(argc, argv, &i, "--json", &o->json)) ||
            (r = simcse_arg_int(argc, argv, &i, "--batch", 2, 1 << 20, &o->batch)) ||
            (r = simcse_arg_int(argc, argv, &i, "--max-len", 3, 1 << 16, &o->max_len)) ||
            (r = simcse_arg_int(argc, argv, &i, "--steps", 1, 1 << 20, &o->steps)) ||
            (r = simcse_arg_int(argc, argv, &i, "--warmup", 0, 1 << 20, &o->warmup)) ||
            (r = simcse_arg_int(argc, argv, &i, "--grad-cache-chunk", 0, 1 << 20, &o->chunk)) ||
            (r = simcse_arg_int(argc, argv, &i, "--compare-grad-cache", 1, 1 << 20, &o->compare_chunk)) ||
            (r = simcse_arg_int(argc, argv, &i, "--seed", 0, 1 << 30, &o->seed))) {
            if (r < 0) bench_die("%s", simcse_last_error());
            continue;
        }
        if ((r = simcse_arg_int(argc, argv, &i, "--seq", 1, 1 << 16, &o->seq))) {
            if (r < 0) bench_die("%s", simcse_last_error());
            seq_given = 1;
            continue;
        }
        fprintf(stderr, "bench_step: unknown option '%s'\n", a);
        usage(stderr);
        exit(1);
    }
    if (o->data && seq_given) bench_die("--seq and --data exclude each other (--max-len bounds real sentences)");
    if (o->chunk && o->compare_chunk) bench_die("--grad-cache-chunk and --compare-grad-cache exclude each other");
    if (o->counters && o->compare_chunk) bench_die("--counters and --compare-grad-cache exclude each other");
    if (o->compare_chunk && o->compare_chunk >= o->batch)
        bench_die("--compare-grad-cache %d: the chunk must be smaller than --batch %d", o->compare_chunk, o->batch);
}

/* Model FLOPs of one step for the sequence lengths of a packed batch (both views). */
static double step_flops(const simcse_config *c, const int32_t *lens, int n_seq, int B) {
    const double H = c->hidden, I = c->intermediate, n = c->layers;
    double f = 6.0 * 2 * B * H * H; /* MLP head */
    for (int s = 0; s < n_seq; s++) {
        double l = lens[s];
        f += 6.0 * n * (4 * H * H + 2 * H * I) * l + 12.0 * n * l * l * H;
    }
    return f;
}

static void packed_view(inputs *in, int k) {
    simcse_token_batch *tb = &in->tb[k];
    in->packed[k] = (simcse_packed){.n_seq = tb->n_seq,
                                    .T = tb->T,
                                    .ids = tb->ids,
                                    .pos_ids = tb->pos_ids,
                                    .type_ids = NULL,
                                    .offsets = tb->offsets,
                                    .row_ids = tb->row_ids};
}

static void inputs_alloc(inputs *in, int n_batches, int B, int chunk, int max_len) {
    memset(in, 0, sizeof *in);
    in->n_batches = n_batches;
    in->chunk = chunk;
    in->max_len = max_len;
    in->n_chunks = (B + chunk - 1) / chunk;
    const int nt = n_batches * in->n_chunks;
    in->tb = simcse_xcalloc((size_t)nt, sizeof *in->tb);
    in->packed = simcse_xcalloc((size_t)nt, sizeof *in->packed);
    in->counts = simcse_xcalloc((size_t)in->n_chunks, sizeof *in->counts);
    for (int k = 0; k < in->n_chunks; k++) in->counts[k] = B - k * chunk < chunk ? B - k * chunk : chunk;
    for (int k = 0; k < nt; k++) bench_check(simcse_token_batch_init(&in->tb[k], 2 * chunk, max_len), "inputs");
}

static void inputs_free(inputs *in) {
    for (int k = 0; k < in->n_batches * in->n_chunks; k++) simcse_token_batch_free(&in->tb[k]);
    free(in->tb);
    free(in->packed);
    free(in->counts);
    memset(in, 0, sizeof *in);
}

/* One batch of B fixed-length sequences of random ids, both views the same ids,
 * chunked; dropout rows are global (as simcse_pack_batch numbers them). */
#define SIMCSE_BENCH_MAX_CHUNK 8192

static void inputs_fixed(inputs *in, const simcse_config *c, int B, int L, int chunk, uint64_t seed) {
    inputs_alloc(in, 1, B, chunk, L);
    const int pos0 = simcse_config_position_offset(c), lo = c->vocab_size > 1000 ? 1000 : 0;
    uint64_t rs = seed * 0x2545f4914f6cdd1dull + 1;
    int32_t *ids = simcse_xmalloc((size_t)B * L * sizeof *ids);
    for (size_t t = 0; t < (size_t)B * L; t++)
        ids[t] = lo + (int32_t)(bench_rand_u64(&rs) % (uint64_t)(c->vocab_size - lo));
    for (int k = 0, base = 0; k < in->n_chunks; base += in->counts[k], k++) {
        simcse_token_batch *tb = &in->tb[k];
        const int n = in->counts[k];
        const int32_t *seqs[2 * SIMCSE_BENCH_MAX_CHUNK];
        int lens[2 * SIMCSE_BENCH_MAX_CHUNK];
        if (n > SIMCSE_BENCH_MAX_CHUNK) bench_die("chunk of %d examples: at most %d", n, SIMCSE_BENCH_MAX_CHUNK);
        for (int v = 0; v < 2; v++) /* the two views: the same ids, different dropout rows */
            for (int i = 0; i < n; i++) {
                seqs[v * n + i] = ids + (size_t)(base + i) * L;
                lens[v * n + i] = L;
            }
        tb->example_base = base;
        tb->global_B = B;
        bench_check(simcse_pack_ids(seqs, lens, n, 2, pos0, tb), "packing fixed-length inputs");
        packed_view(in, k);
        in->flops += step_flops(c, tb->lens, tb->n_seq, 0);
    }
    in->flops += 6.0 * 2 * B * (double)c->hidden * c->hidden;
    in->real_tokens = in->padded_tokens = 2LL * B * L;
    free(ids);
}

/* n_batches batches of B real sentences: consecutive slices of the shuffled file. */
static void inputs_data(inputs *in, const options *o, const simcse_config *c, int chunk, int n_batches) {
    char vocab_buf[4096];
    const char *vocab = o->vocab;
    if (!vocab) {
        snprintf(vocab_buf, sizeof vocab_buf, "%s/tokenizers/bert-base-uncased", simcse_data_dir());
        vocab = vocab_buf;
    }
    simcse_tokenizer *tok = simcse_tokenizer_load(vocab);
    if (!tok) bench_die("--vocab: %s", simcse_last_error());
    if (simcse_tokenizer_vocab_size(tok) > c->vocab_size)
        bench_die("%s: the tokenizer has %d tokens, the model's vocab_size is %d", vocab,
                  simcse_tokenizer_vocab_size(tok), c->vocab_size);
    simcse_dataset *d = simcse_dataset_open(o->data, SIMCSE_DATA_TEXT, NULL);
    if (!d) bench_die("--data: %s", simcse_last_error());
    const int64_t n = simcse_dataset_size(d);
    const int B = o->batch, pos0 = simcse_config_position_offset(c);
    int64_t *perm = simcse_xmalloc((size_t)n * sizeof *perm), *idx = simcse_xmalloc((size_t)B * sizeof *idx);
    simcse_shuffle_permutation((uint64_t)o->seed, 0, n, perm);
    inputs_alloc(in, n_batches, B, chunk, o->max_len);
    simcse_text_batch text;
    memset(&text, 0, sizeof text);
    for (int b = 0; b < n_batches; b++) {
        for (int i = 0; i < B; i++) idx[i] = perm[((int64_t)b * B + i) % n]; /* a small file wraps around */
        bench_check(simcse_dataset_get_batch(d, idx, B, &text), "--data");
        int longest = 0;
        for (int k = 0, base = 0; k < in->n_chunks; base += in->counts[k], k++) {
            simcse_token_batch *tb = &in->tb[b * in->n_chunks + k];
            simcse_text_batch sub = {
                .n = in->counts[k], .n_fields = 1, .text = text.text + base, .len = text.len + base};
            tb->example_base = base;
            tb->global_B = B;
            bench_check(simcse_pack_batch(tok, &sub, pos0, tb), "--data: packing");
            packed_view(in, b * in->n_chunks + k);
            for (int s = 0; s < tb->n_seq; s++) longest = tb->lens[s] > longest ? tb->lens[s] : longest;
            in->real_tokens += tb->T;
            in->flops += step_flops(c, tb->lens, tb->n_seq, 0);
        }
        in->padded_tokens += 2LL * B * longest;
        in->flops += 6.0 * 2 * B * (double)c->hidden * c->hidden;
    }
    simcse_text_batch_free(&text);
    free(idx);
    free(perm);
    simcse_dataset_close(d);
    simcse_tokenizer_free(tok);
}

static void inputs_make(inputs *in, const options *o, const simcse_config *c, int chunk) {
    if (o->data)
        inputs_data(in, o, c, chunk, o->warmup + o->steps);
    else
        inputs_fixed(in, c, o->batch, o->seq, chunk, (uint64_t)o->seed);
}

/* Warmup + timed steps on fresh encoder, step and optimizer state. */
static run_result run_steps(simcse_backend *be, const simcse_model *m, const options *o, const inputs *in) {
    const int V = 2, cap_seqs = V * in->chunk;
    simcse_encoder *e = simcse_encoder_create(be, m, cap_seqs, cap_seqs * in->max_len, 1);
    if (!e)
        bench_die("creating the encoder (%d sequences of %d tokens): %s", cap_seqs, in->max_len, simcse_last_error());
    const simcse_loss_config lc = {
        .pooler = SIMCSE_POOL_CLS, .apply_mlp = 1, .temperature = 0.05f, .hard_negative_weight = 0.0f};
    simcse_comm *comm = NULL;
    if (o->nccl) {
        unsigned char id[SIMCSE_NCCL_ID_BYTES];
        bench_check(simcse_nccl_unique_id(id), "making an NCCL id");
        comm = simcse_comm_nccl_create(0, 1, id, 0);
        if (!comm) bench_die("%s", simcse_last_error());
    }
    simcse_step *st = simcse_step_create(e, &lc, comm, o->batch, V);
    if (!st) bench_die("creating the step: %s", simcse_last_error());
    const simcse_adamw_config ac = {.lr = 3e-5,
                                    .beta1 = 0.9,
                                    .beta2 = 0.999,
                                    .eps = 1e-8,
                                    .weight_decay = 0.01,
                                    .max_grad_norm = 1.0,
                                    .warmup_steps = 0,
                                    .total_steps = o->warmup + o->steps,
                                    .linear_decay = 0};
    simcse_optimizer opt;
    bench_check(simcse_optimizer_init(&opt, be, m, &ac), "creating the optimizer");
    double *ms = simcse_xmalloc((size_t)o->steps * sizeof *ms);
    run_result r = {0};
    simcse_cuda_counters c0, c_issued, c1;
    r.counts.ok = o->counters && !bench_is_cpu(be) && simcse_cuda_counters_read(&c0);
    be->sync(be);
    for (int s = 0; s < o->warmup + o->steps; s++) {
        const simcse_packed *chunks = &in->packed[(s % in->n_batches) * in->n_chunks];
        const int counting = r.counts.ok && s >= o->warmup;
        if (counting) simcse_cuda_counters_read(&c0);
        double t0 = simcse_now_seconds();
        simcse_encoder_zero_grads(e);
        simcse_encoder_set_dropout(e, 1, (uint64_t)o->seed, (uint32_t)s);
        if (simcse_step_run(st, chunks, in->counts, in->n_chunks, &r.loss) != 0)
            bench_die("step %d: %s", s, simcse_last_error());
        double norm = simcse_optimizer_step(&opt, simcse_encoder_params(e), simcse_encoder_grads(e), NULL);
        if (counting) simcse_cuda_counters_read(&c_issued); /* the step's own waits end here */
        be->sync(be);
        double t1 = simcse_now_seconds();
        if (counting) { /* executed work and copies are complete after the sync (the harness runs them there) */
            simcse_cuda_counters_read(&c1);
            step_counters *k = &r.counts;
            k->launches +=
                (double)(c1.kernels_executed + c1.library_executed - c0.kernels_executed - c0.library_executed) /
                o->steps;
            k->graph_launches += (double)(c1.graph_launches - c0.graph_launches) / o->steps;
            k->host_syncs += (double)(c_issued.host_syncs - c0.host_syncs) / o->steps;
            k->allocations += (double)(c_issued.allocations - c0.allocations) / o->steps;
            k->h2d_bytes += (double)(c1.h2d_bytes - c0.h2d_bytes) / o->steps;
        }
        if (!isfinite(r.loss) || !isfinite(norm)) bench_die("step %d: loss %g, gradient norm %g", s, r.loss, norm);
        if (s >= o->warmup) ms[s - o->warmup] = (t1 - t0) * 1e3;
    }
    double sum = 0;
    r.ms_min = INFINITY;
    for (int s = 0; s < o->steps; s++) {
        sum += ms[s];
        r.ms_min = fmin(r.ms_min, ms[s]);
    }
    r.ms_mean = sum / o->steps;
    r.ms_median = bench_median(ms, o->steps);
    r.rss_mib = bench_peak_rss_mib();
    r.dev_peak = bench_device_peak_bytes(be);
    if (r.counts.ok) { /* the optimizer alone, eagerly, on the last step's gradients */
        simcse_cuda_counters_read(&c0);
        simcse_optimizer_step(&opt, simcse_encoder_params(e), simcse_encoder_grads(e), NULL);
        be->sync(be);
        simcse_cuda_counters_read(&c1);
        r.counts.optimizer_launches =
            (double)(c1.kernels_executed + c1.library_executed - c0.kernels_executed - c0.library_executed);
    }
    free(ms);
    simcse_optimizer_free(&opt);
    simcse_step_free(st);
    if (comm) comm->destroy(comm);
    simcse_encoder_free(e);
    return r;
}

/* The human line and the JSON line of one run. */
static void report(const options *o, const simcse_model *m, simcse_backend *be, const char *precision, const inputs *in,
                   const run_result *r, int chunk) {
    const double per_step_tokens = (double)in->real_tokens / in->n_batches;
    const double per_step_padded = (double)in->padded_tokens / in->n_batches;
    const double flops = in->flops / in->n_batches;
    const double s = r->ms_median / 1e3;
    const int cached = chunk < o->batch;
    char shape[64], dev[32];
    if (o->data)
        snprintf(shape, sizeof shape, "real<=%d", o->max_len);
    else
        snprintf(shape, sizeof shape, "%d", o->seq);
    if (r->dev_peak >= 0)
        snprintf(dev, sizeof dev, "%.0f MiB", r->dev_peak / 1048576.0);
    else
        snprintf(dev, sizeof dev, "n/a");
    printf("bench_step: %s B=%d L=%s %s %s%s | %.2f ms/step median (mean %.2f, min %.2f, %d steps) | %.0f sent/s | "
           "%.0f tok/s | %.4g TFLOP/step, %.3f TFLOP/s | peak host RSS %.0f MiB, device %s | loss %.4f\n",
           o->model, o->batch, shape, be->name, precision, cached ? " grad-cache" : "", r->ms_median, r->ms_mean,
           r->ms_min, o->steps, o->batch / s, per_step_tokens / s, flops / 1e12, flops / s / 1e12, r->rss_mib, dev,
           r->loss);
    if (cached) printf("bench_step:   gradient caching in %d chunks of %d examples\n", in->n_chunks, chunk);
    if (o->data)
        printf("bench_step:   real sentences: %.0f tokens/step computed; padded to the longest per batch "
               "(PyTorch) %.0f: useful fraction %.3f, %.1f%% of PyTorch's tokens are padding\n",
               per_step_tokens, per_step_padded, per_step_tokens / per_step_padded,
               100.0 * (1 - per_step_tokens / per_step_padded));
    bench_json j = {.n = 0};
    bench_json_common(&j, "step", be, precision);
    bench_json_str(&j, "model", o->model);
    bench_json_int(&j, "hidden", m->cfg.hidden);
    bench_json_int(&j, "layers", m->cfg.layers);
    bench_json_int(&j, "params", (long long)m->n_floats);
    bench_json_int(&j, "batch", o->batch);
    if (o->data) {
        bench_json_str(&j, "seq", "real");
        bench_json_str(&j, "data", o->data);
    } else {
        bench_json_int(&j, "seq", o->seq);
    }
    bench_json_int(&j, "max_len", in->max_len);
    bench_json_int(&j, "grad_cache_chunk", cached ? chunk : 0);
    bench_json_int(&j, "steps", o->steps);
    bench_json_int(&j, "warmup", o->warmup);
    bench_json_num(&j, "ms_median", r->ms_median);
    bench_json_num(&j, "ms_mean", r->ms_mean);
    bench_json_num(&j, "ms_min", r->ms_min);
    bench_json_num(&j, "sentences_per_s", o->batch / s);
    bench_json_num(&j, "tokens_per_step", per_step_tokens);
    bench_json_num(&j, "padded_tokens_per_step", per_step_padded);
    bench_json_num(&j, "useful_token_fraction", per_step_tokens / per_step_padded);
    bench_json_num(&j, "tokens_per_s", per_step_tokens / s);
    bench_json_num(&j, "flops_per_step", flops);
    bench_json_num(&j, "tflops", flops / s / 1e12);
    bench_json_num(&j, "peak_host_rss_mib", r->rss_mib);
    bench_json_num(&j, "peak_device_mib", r->dev_peak >= 0 ? r->dev_peak / 1048576.0 : NAN);
    bench_json_num(&j, "loss", r->loss);
    bench_json_emit(&j, o->json, 1);
}

/* --counters: the same run on the model with one layer fewer, in a child forked before this
 * process touches the device; returns its per-step launches. */
static double launches_one_layer_fewer(const options *o, const simcse_config *cfg) {
    if (cfg->layers < 2) bench_die("--counters needs a model of at least 2 layers (it has %d)", cfg->layers);
    int fd[2];
    if (pipe(fd) != 0) bench_die("--counters: pipe failed");
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) bench_die("--counters: fork failed");
    if (pid == 0) {
        close(fd[0]);
        simcse_config c = *cfg;
        c.layers--;
        simcse_backend *be = simcse_backend_select(o->device, o->precision, 0);
        if (!be) bench_die("%s", simcse_last_error());
        simcse_model m;
        bench_check(simcse_model_init(&m, &c), "model");
        simcse_model_init_random(&m, (uint64_t)o->seed);
        const int chunk = o->chunk > 0 && o->chunk < o->batch ? o->chunk : o->batch;
        inputs in;
        inputs_make(&in, o, &c, chunk);
        run_result r = run_steps(be, &m, o, &in);
        inputs_free(&in);
        simcse_model_free(&m);
        double v = r.counts.ok ? r.counts.launches : -1;
        if (write(fd[1], &v, sizeof v) != (ssize_t)sizeof v) bench_die("--counters: writing to the parent failed");
        close(fd[1]);
        exit(0);
    }
    close(fd[1]);
    double v = -1;
    const ssize_t got = read(fd[0], &v, sizeof v);
    close(fd[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof v)
        bench_die("--counters: the run with %d layers failed (see above)", cfg->layers - 1);
    return v;
}

static void report_counters(const run_result *r, double fewer, const simcse_config *cfg) {
    const step_counters *k = &r->counts;
    if (!k->ok || fewer < 0) {
        printf("counters: unavailable (this build or backend does not count: --device cuda on the harness "
               "build or an nvcc build)\n");
        return;
    }
    printf("bench_step:   counters: %.1f launches per step with %d layers, %.1f with %d, %.2f graph launches per "
           "step\n",
           k->launches, cfg->layers, fewer, cfg->layers - 1, k->graph_launches);
    printf("counters: launches_per_layer=%lld optimizer_launches=%lld host_syncs=%lld allocations=%lld "
           "h2d_bytes=%lld graph=%s\n",
           llround(k->launches - fewer), llround(k->optimizer_launches), llround(k->host_syncs),
           llround(k->allocations), llround(k->h2d_bytes), k->graph_launches > 0 ? "yes" : "no");
}

int main(int argc, char **argv) {
    bench_prog = "bench_step";
    options o;
    parse(argc, argv, &o);
    simcse_config cfg;
    bench_model_config(o.model, &cfg);
    const double fewer = o.counters ? launches_one_layer_fewer(&o, &cfg) : -1;
    if (!o.data && o.seq > simcse_config_max_tokens(&cfg))
        bench_die("--seq %d exceeds the model's %d positions", o.seq, simcse_config_max_tokens(&cfg));
    if (o.data && o.max_len > simcse_config_max_tokens(&cfg))
        bench_die("--max-len %d exceeds the model's %d positions", o.max_len, simcse_config_max_tokens(&cfg));
    simcse_backend *be = simcse_backend_select(o.device, o.precision, 0);
    if (!be) bench_die("%s", simcse_last_error());
    const char *precision = bench_is_cpu(be) ? "fp32" : o.precision;
    simcse_model m;
    bench_check(simcse_model_init(&m, &cfg), "model");
    simcse_model_init_random(&m, (uint64_t)o.seed);

    if (!o.compare_chunk) {
        const int chunk = o.chunk > 0 && o.chunk < o.batch ? o.chunk : o.batch;
        inputs in;
        inputs_make(&in, &o, &cfg, chunk);
        run_result r = run_steps(be, &m, &o, &in);
        report(&o, &m, be, precision, &in, &r, chunk);
        if (o.counters) report_counters(&r, fewer, &cfg);
        inputs_free(&in);
    } else {
        inputs in_c, in_u;
        inputs_make(&in_c, &o, &cfg, o.compare_chunk);
        run_result rc = run_steps(be, &m, &o, &in_c);
        report(&o, &m, be, precision, &in_c, &rc, o.compare_chunk);
        inputs_make(&in_u, &o, &cfg, o.batch);
        run_result ru = run_steps(be, &m, &o, &in_u);
        report(&o, &m, be, precision, &in_u, &ru, o.batch);
        const double ratio = rc.ms_median / ru.ms_median;
        const double dloss = fabs((double)rc.loss - (double)ru.loss);
        printf("bench_step: gradient caching, chunk %d of batch %d: %.2f ms vs %.2f ms uncached = %.3fx "
               "(target <= 1.4x: %s); last-step loss %.6f vs %.6f\n",
               o.compare_chunk, o.batch, rc.ms_median, ru.ms_median, ratio, ratio <= 1.4 ? "met" : "NOT met", rc.loss,
               ru.loss);
        bench_json j = {.n = 0};
        bench_json_common(&j, "step_grad_cache", be, precision);
        bench_json_str(&j, "model", o.model);
        bench_json_int(&j, "batch", o.batch);
        if (o.data)
            bench_json_str(&j, "seq", "real");
        else
            bench_json_int(&j, "seq", o.seq);
        bench_json_int(&j, "grad_cache_chunk", o.compare_chunk);
        bench_json_num(&j, "ms_cached", rc.ms_median);
        bench_json_num(&j, "ms_uncached", ru.ms_median);
        bench_json_num(&j, "ratio", ratio);
        bench_json_num(&j, "loss_abs_diff", dloss);
        bench_json_num(&j, "peak_host_rss_mib_cached", rc.rss_mib);
        bench_json_num(&j, "peak_host_rss_mib_uncached", ru.rss_mib);
        bench_json_emit(&j, o.json, 1);
        /* the same masks and inputs: the losses must agree (fp32: to rounding) */
        const double tol = strcmp(precision, "fp32") ? 5e-2 : 1e-3;
        if (!(dloss <= tol * fmax(1.0, fabs(ru.loss))))
            bench_die("gradient caching changed the loss: %.6f cached vs %.6f uncached", rc.loss, ru.loss);
        inputs_free(&in_c);
        inputs_free(&in_u);
    }
    simcse_model_free(&m);
    return 0;
}
