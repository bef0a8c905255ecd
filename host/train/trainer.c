/* The training loop, top to bottom: set up (the model's shape, tokenizer, data,
 * backend, the memory budget, then the model's weights, encoder, optimizer; or all of
 * it from a checkpoint), evaluate once, then
 * step: next indices -> text -> packed ids -> contrastive forward/backward ->
 * AdamW; log, evaluate, checkpoint; export the best model.
 *
 * Everything a step depends on is a function of (config, step, data position):
 * the data order comes from (seed, epoch), dropout masks from (seed, step), so
 * a resumed run replays exactly what an uninterrupted run would have done, as
 * long as nothing that enters a step changed (checked: config, ranks, backend).
 * A fresh run checkpoints step 0 before anything else, and metrics.jsonl is
 * flushed before each checkpoint and cut back to it on resume, so a run killed
 * at any moment resumes, and logs each step once. */
#include "simcse/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simcse/checkpoint.h"
#include "simcse/common.h"
#include "simcse/data.h"
#include "simcse/data_dir.h"
#include "simcse/embedder.h"
#include "simcse/encoder.h"
#include "simcse/eval.h"
#include "simcse/export.h"
#include "simcse/loss.h"
#include "simcse/memory_plan.h"
#include "simcse/model.h"
#include "simcse/optimizer.h"
#include "simcse/rng.h"
#include "simcse/run_dir.h"
#include "simcse/tokenizer.h"

/* Philox subsequence of the MLP head's initialisation (apart from the model's). */
#define MLP_INIT_SUBSEQ 0x6d6c70ull

typedef struct {
    const simcse_train_config *cfg;
    const simcse_train_options *opt;
    simcse_model model;
    simcse_tokenizer *tok;
    simcse_dataset *data;
    simcse_sampler sampler;
    simcse_backend *be;
    simcse_encoder *enc;
    simcse_optimizer optim;
    simcse_embedder embedder;
    simcse_text_batch text;
    simcse_token_batch *chunk_tokens; /* one packed batch per gradient-caching chunk */
    simcse_packed *chunks;
    int *chunk_counts, n_chunk_slots, chunk;
    const char **sub_text; /* a chunk's sentences (pointers into text) */
    size_t *sub_len;
    simcse_step *step;
    simcse_comm *comm;
    int rank, world, leader;
    simcse_loss_config loss_cfg;
    simcse_pooler eval_pooler;
    int eval_mlp, n_fields, views;
    double eval_alignment, eval_uniformity; /* of the latest evaluation (NaN before the first) */
    int64_t total_steps;
    simcse_train_state st;
    FILE *metrics;
    const char *tok_dir;
    char data_dir[512];
} trainer;

static void init_mlp_head(simcse_model *m, uint64_t seed) {
    /* SimCSE's MLPLayer is new: initialised as transformers' _init_weights does. */
    simcse_rng_stream rs = {seed, MLP_INIT_SUBSEQ, 0};
    float *w = m->w.mlp_w, *b = m->w.mlp_b;
    size_t n = (size_t)m->cfg.hidden * m->cfg.hidden;
    for (size_t i = 0; i < n; i++) w[i] = 0.02f * simcse_rng_normal(&rs);
    memset(b, 0, (size_t)m->cfg.hidden * sizeof(float));
}

static int setup_model(trainer *t) {
    const simcse_train_config *c = t->cfg;
    if (c->model[0]) {
        if (simcse_model_load(&t->model, c->model) != 0) return -1;
    } else {
        simcse_config mc;
        if (simcse_config_load(c->model_config, &mc) != 0) return -1;
        if (simcse_model_init(&t->model, &mc) != 0) return -1;
        simcse_model_init_random(&t->model, (uint64_t)c->seed);
    }
    /* As SimCSE's cl_init: the MLP head starts fresh (a BERT checkpoint's pooler.dense
     * is its next-sentence head, not a SimCSE MLP). --resume restores the trained one. */
    init_mlp_head(&t->model, (uint64_t)c->seed);
    t->model.has_mlp_weights = 1;
    if (c->hidden_dropout >= 0) t->model.cfg.hidden_dropout = (float)c->hidden_dropout;
    if (c->attention_dropout >= 0) t->model.cfg.attn_dropout = (float)c->attention_dropout;
    int limit = simcse_config_max_tokens(&t->model.cfg);
    if (c->max_seq_len > limit)
        return simcse_error("config: key 'max_seq_len': %d exceeds the model's %d positions", c->max_seq_len, limit);
    return 0;
}

/* A JSON number, or null where there is none (JSON has no NaN). */
static void json_number(FILE *f, const char *key, double v, int decimals) {
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.*f", key, decimals, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

/* The dev tasks' Spearman, and alignment / uniformity / anisotropy on STS-B dev
 * (the paper's Figure 2 follows the first two through training), exactly as
 * `simcse eval` computes them. */
static int evaluate(trainer *t, double *score) {
    simcse_eval_result res;
    simcse_embedding_stats es;
    double t0 = simcse_now_seconds();
    /* the statistics embed the STS-B dev sentences the scores just embedded */
    simcse_embed_cache *cache = simcse_embed_cache_create(simcse_embedder_embed, &t->embedder, t->model.cfg.hidden);
    if (!cache) return -1;
    int rc = simcse_eval_sts(t->data_dir, t->cfg->eval_tasks, SIMCSE_SPLIT_DEV, t->model.cfg.hidden,
                             t->embedder.batch_size, simcse_embed_cache_embed, cache, &res);
    if (rc == 0)
        rc = simcse_eval_embedding_stats(t->data_dir, SIMCSE_SPLIT_DEV, t->model.cfg.hidden, t->embedder.batch_size,
                                         simcse_embed_cache_embed, cache, &es);
    simcse_embed_cache_free(cache);
    if (rc != 0) return -1;
    *score = res.avg_spearman;
    t->eval_alignment = es.alignment;
    t->eval_uniformity = es.uniformity;
    if (t->metrics) {
        fprintf(t->metrics, "{\"step\": %lld", (long long)t->st.step);
        json_number(t->metrics, "eval_dev_avg_spearman", res.avg_spearman, 4);
        for (int i = 0; i < res.n_tasks; i++) {
            char key[64];
            snprintf(key, sizeof key, "eval_%s_dev_spearman", res.task[i].task);
            json_number(t->metrics, key, res.task[i].spearman, 4);
        }
        json_number(t->metrics, "eval_stsb_dev_alignment", es.alignment, 6);
        json_number(t->metrics, "eval_stsb_dev_uniformity", es.uniformity, 6);
        json_number(t->metrics, "eval_stsb_dev_anisotropy", es.anisotropy, 6);
        fprintf(t->metrics, ", \"eval_seconds\": %.2f}\n", simcse_now_seconds() - t0);
        fflush(t->metrics);
    }
    return 0;
}

/* Export the current weights as the best model (OUT is a HF/sentence-transformers directory). */
static int export_best(trainer *t) {
    simcse_encoder_download(t->enc, &t->model);
    return simcse_export(&t->model, t->opt->output_dir, t->tok_dir, t->eval_pooler, t->eval_mlp, t->cfg->max_seq_len);
}

static int save_checkpoint(trainer *t) {
    /* the records up to this step reach the disk before the checkpoint claims the step */
    if (t->metrics && (fflush(t->metrics) != 0 || fsync(fileno(t->metrics)) != 0))
        return simcse_error("%s/metrics.jsonl: write failed", t->opt->output_dir);
    simcse_encoder_download(t->enc, &t->model);
    size_t bytes = t->model.n_floats * sizeof(float);
    float *m = simcse_xmalloc(bytes), *v = simcse_xmalloc(bytes);
    t->be->to_host(t->be, m, t->optim.m, bytes);
    t->be->to_host(t->be, v, t->optim.v, bytes);
    t->st.pos = t->sampler.pos;
    int rc = simcse_checkpoint_save(t->opt->output_dir, &t->model, m, v, &t->st, t->cfg);
    free(m);
    free(v);
    return rc;
}

static int restore_checkpoint(trainer *t) {
    size_t bytes = t->model.n_floats * sizeof(float);
    float *m = simcse_xmalloc(bytes), *v = simcse_xmalloc(bytes);
    int rc = simcse_checkpoint_load_tensors(t->opt->output_dir, &t->model, m, v);
    if (rc == 0) {
        t->be->to_device(t->be, simcse_encoder_params(t->enc), t->model.data, bytes);
        t->be->to_device(t->be, t->optim.m, m, bytes);
        t->be->to_device(t->be, t->optim.v, v, bytes);
        t->optim.step = t->st.step;
        if (t->st.n_examples != simcse_dataset_size(t->data))
            rc = simcse_error("%s/checkpoint: saved for %lld training examples, the data has %lld", t->opt->output_dir,
                              (long long)t->st.n_examples, (long long)simcse_dataset_size(t->data));
        else
            rc = simcse_sampler_set_pos(&t->sampler, t->st.pos);
    }
    free(m);
    free(v);
    return rc;
}

/* A resumed run must compute what the uninterrupted one would have: every key
 * but the logging, evaluation and save intervals, the number of ranks and the
 * backend must be the checkpoint's. All differences are listed at once. */
static int check_resume(trainer *t, const simcse_train_config *saved) {
    char diff[640], more[160] = "";
    int n = simcse_train_config_diff(saved, t->cfg, diff, sizeof diff);
    size_t k = 0;
    if (t->st.world_size > 0 && t->st.world_size != t->world) {
        k += (size_t)snprintf(more + k, sizeof more - k, "%sranks (checkpoint %d, now %d)", n ? ", " : "",
                              t->st.world_size, t->world);
        n++;
    }
    if (t->st.backend[0] && strcmp(t->st.backend, t->be->name) != 0 && k < sizeof more) {
        snprintf(more + k, sizeof more - k, "%sbackend (checkpoint %s, now %s)", n ? ", " : "", t->st.backend,
                 t->be->name);
        n++;
    }
    if (n == 0) return 0;
    return simcse_error("%s/checkpoint: a resumed run must compute what the first one did, but %d setting%s "
                        "differ%s: %s%s (only %s and --quiet may change on --resume)",
                        t->opt->output_dir, n, n == 1 ? "" : "s", n == 1 ? "s" : "", diff, more,
                        simcse_train_config_resume_free);
}

static void progress(trainer *t, double loss, double lr, double norm, double sps, double elapsed, int force) {
    int tty = isatty(2);
    if (t->opt->quiet || !t->leader || (!tty && !force)) return;
    int64_t done = t->st.step, left = t->total_steps - done;
    double eta = sps > 0 ? (double)left * t->cfg->batch_size / sps : 0;
    char stats[64] = "";
    if (isfinite(t->eval_alignment) || isfinite(t->eval_uniformity))
        snprintf(stats, sizeof stats, " | align %.3f unif %.3f", t->eval_alignment, t->eval_uniformity);
    fprintf(stderr,
            "%sstep %lld/%lld | loss %.4f | lr %.3g | grad norm %.3f%s | %.1f sent/s | %.0fs elapsed, ETA %.0fs%s",
            tty ? "\r\033[K" : "", (long long)done, (long long)t->total_steps, loss, lr, norm, stats, sps, elapsed, eta,
            tty ? "" : "\n");
    if (tty && force) fputc('\n', stderr);
}

/* The whole run's memory against the machine's, before the model is allocated. When it
 * does not fit, the advice is the largest gradient-caching chunk that does (the gradient
 * stays the whole batch's), else what else to shrink. */
static int check_memory(trainer *t, const simcse_config *mc) {
    const simcse_train_config *c = t->cfg;
    simcse_memory_avail a;
    simcse_memory_available(t->be, &a);
    const int cuda = !a.shared, copies = t->comm && !strcmp(t->comm->name, "threads") ? t->world : 1;
    const int64_t n_ex = simcse_dataset_size(t->data);
    simcse_memory_need need =
        simcse_memory_for_training(mc, c, t->views, t->chunk, t->world, n_ex, t->opt->resume, cuda);
    if (simcse_memory_fits(&need, copies, &a)) return 0;
    int lo = 1, hi = t->chunk - 1, best = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        simcse_memory_need m = simcse_memory_for_training(mc, c, t->views, mid, t->world, n_ex, t->opt->resume, cuda);
        if (simcse_memory_fits(&m, copies, &a))
            best = mid, lo = mid + 1;
        else
            hi = mid - 1;
    }
    char advice[256];
    if (best > 0) {
        snprintf(advice, sizeof advice,
                 "set grad_cache_chunk=%d (the largest chunk that fits; the gradient stays the whole batch's) or "
                 "lower batch_size",
                 best);
    } else {
        simcse_train_config small = *c;
        small.eval_batch_size = 1;
        small.batch_size = 2;
        simcse_memory_need m =
            simcse_memory_for_training(mc, &small, t->views, 1, t->world, n_ex, t->opt->resume, cuda);
        snprintf(advice, sizeof advice, "%s",
                 simcse_memory_fits(&m, copies, &a)
                     ? "lower batch_size and eval_batch_size, or set grad_cache_chunk"
                     : "even one example at a time does not fit: the model is too large for this machine (fewer or "
                       "narrower layers, a shorter max_seq_len, or more memory)");
    }
    return simcse_memory_refuse(&need, copies, &a, "training", advice);
}

static int setup(trainer *t) {
    const simcse_train_config *c = t->cfg;
    snprintf(t->data_dir, sizeof t->data_dir, "%s", c->data_dir[0] ? c->data_dir : simcse_data_dir());
    /* The model's shape first, its weights last: the tokenizer, the data and the memory
     * budget are checked against the shape before anything large is allocated. */
    simcse_config mc;
    char *mc_path = c->model[0] ? simcse_path_join(c->model, "config.json") : simcse_xstrdup(c->model_config);
    int rc = simcse_config_load(mc_path, &mc);
    free(mc_path);
    if (rc != 0) return -1;
    t->tok_dir = c->tokenizer[0] ? c->tokenizer : c->model;
    t->tok = simcse_tokenizer_load(t->tok_dir);
    if (!t->tok) return -1;
    if (simcse_tokenizer_check_ids(t->tok, mc.vocab_size) != 0) return -1;
    simcse_data_options dopt;
    simcse_data_options_default(&dopt);
    dopt.skip_bad_rows = c->skip_malformed;
    t->data = simcse_dataset_open(c->train_file, SIMCSE_DATA_AUTO, &dopt);
    if (!t->data) return -1;
    if (simcse_dataset_size(t->data) < 2)
        return simcse_error("%s: %lld usable example%s; a contrastive batch needs at least 2", c->train_file,
                            (long long)simcse_dataset_size(t->data), simcse_dataset_size(t->data) == 1 ? "" : "s");
    t->n_fields = simcse_dataset_n_fields(t->data);
    t->views = t->n_fields < 2 ? 2 : t->n_fields;
    /* Every rank walks the same global order and takes its own slice of each
     * global batch; with several ranks an epoch's short tail is dropped so that
     * every rank always has the same number of examples. */
    if (simcse_sampler_init(&t->sampler, simcse_dataset_size(t->data), (uint64_t)c->seed, 1, t->world > 1) != 0)
        return -1;
    int64_t per_epoch = simcse_sampler_batches_per_epoch(&t->sampler, c->batch_size * t->world);
    t->total_steps = c->max_steps > 0 ? c->max_steps : per_epoch * c->num_epochs;

    t->be = simcse_backend_select(t->opt->device, c->precision, t->opt->gpu);
    if (!t->be) return -1;
    t->chunk = c->grad_cache_chunk > 0 && c->grad_cache_chunk < c->batch_size ? c->grad_cache_chunk : c->batch_size;
    t->n_chunk_slots = (c->batch_size + t->chunk - 1) / t->chunk;
    if (check_memory(t, &mc) != 0) return -1;
    if (setup_model(t) != 0) return -1;
    int max_seq = t->chunk * t->views;
    if (max_seq < c->eval_batch_size) max_seq = c->eval_batch_size;
    t->enc = simcse_encoder_create(t->be, &t->model, max_seq, max_seq * c->max_seq_len, 1);
    if (!t->enc) return -1;
    simcse_adamw_config ac = {.lr = c->learning_rate,
                              .beta1 = c->adam_beta1,
                              .beta2 = c->adam_beta2,
                              .eps = c->adam_epsilon,
                              .weight_decay = c->weight_decay,
                              .max_grad_norm = c->max_grad_norm,
                              .warmup_steps = c->warmup_steps,
                              .total_steps = t->total_steps,
                              .linear_decay = !strcmp(c->lr_scheduler, "linear")};
    if (simcse_optimizer_init(&t->optim, t->be, &t->model, &ac) != 0) return -1;

    if (simcse_pooler_parse(c->pooler, &t->loss_cfg.pooler) != 0) return -1;
    t->loss_cfg.apply_mlp = t->loss_cfg.pooler == SIMCSE_POOL_CLS;
    t->loss_cfg.temperature = (float)c->temperature;
    t->loss_cfg.hard_negative_weight = (float)c->hard_negative_weight;
    /* SimCSE: with mlp_only_train, evaluation uses the [CLS] vector without the MLP */
    t->eval_pooler = t->loss_cfg.pooler;
    t->eval_mlp = t->loss_cfg.apply_mlp && !c->mlp_only_train;
    if (t->loss_cfg.pooler == SIMCSE_POOL_CLS && c->mlp_only_train) t->eval_pooler = SIMCSE_POOL_CLS_BEFORE_POOLER;
    if (simcse_embedder_init(&t->embedder, t->tok, t->enc, &t->model, t->eval_pooler, t->eval_mlp, c->max_seq_len,
                             c->eval_batch_size) != 0)
        return -1;
    t->sub_text = simcse_xcalloc((size_t)SIMCSE_DATA_MAX_FIELDS * t->chunk, sizeof *t->sub_text);
    t->sub_len = simcse_xcalloc((size_t)SIMCSE_DATA_MAX_FIELDS * t->chunk, sizeof *t->sub_len);
    t->chunk_tokens = simcse_xcalloc((size_t)t->n_chunk_slots, sizeof *t->chunk_tokens);
    t->chunks = simcse_xcalloc((size_t)t->n_chunk_slots, sizeof *t->chunks);
    t->chunk_counts = simcse_xcalloc((size_t)t->n_chunk_slots, sizeof *t->chunk_counts);
    for (int k = 0; k < t->n_chunk_slots; k++)
        if (simcse_token_batch_init(&t->chunk_tokens[k], t->chunk * t->views, c->max_seq_len) != 0) return -1;
    t->step = simcse_step_create(t->enc, &t->loss_cfg, t->comm, c->batch_size, t->views);
    if (!t->step) return -1;

    const char *out = t->opt->output_dir;
    t->st.best_metric = -INFINITY;
    t->st.best_step = -1;
    t->st.n_examples = simcse_dataset_size(t->data);
    if (t->opt->resume) {
        simcse_train_config saved;
        if (simcse_checkpoint_recover(out) != 0 || simcse_checkpoint_load_config(out, &saved, &t->st) != 0 ||
            check_resume(t, &saved) != 0)
            return -1;
        if (t->st.step > t->total_steps)
            return simcse_error("%s/checkpoint/trainer_state.json: key 'step': %lld is past the run's %lld steps", out,
                                (long long)t->st.step, (long long)t->total_steps);
        if (restore_checkpoint(t) != 0) return -1;
    }
    t->st.world_size = t->world;
    snprintf(t->st.backend, sizeof t->st.backend, "%s", t->be->name);
    if (!t->leader) return 0; /* only rank 0 writes */
    if (simcse_mkdirs(out) != 0 || simcse_run_dir_clean_temporaries(out) != 0) return -1;
    /* A fresh run checkpoints its step 0 first: from then on a kill at any moment
     * leaves something to resume. (A stale checkpoint of an overwritten run goes.) */
    if (!t->opt->resume && (simcse_checkpoint_remove(out) != 0 || save_checkpoint(t) != 0)) return -1;
    /* Records after the checkpoint's step are logged again by this run; a resume
     * at step 0 is a fresh start, evaluation before training included. */
    char *mpath = simcse_path_join(out, "metrics.jsonl");
    int cut = t->st.step > 0 ? simcse_run_dir_cut_metrics(mpath, t->st.step) : 0;
    t->metrics = cut == 0 ? fopen(mpath, t->st.step > 0 ? "a" : "w") : NULL;
    if (!t->metrics && cut == 0) simcse_error("%s: cannot open for writing: %s", mpath, strerror(errno));
    free(mpath);
    return t->metrics ? 0 : -1;
}

static void teardown(trainer *t) {
    if (t->metrics) fclose(t->metrics);
    for (int k = 0; k < t->n_chunk_slots && t->chunk_tokens; k++) simcse_token_batch_free(&t->chunk_tokens[k]);
    free(t->chunk_tokens);
    free(t->chunks);
    free(t->chunk_counts);
    free(t->sub_text);
    free(t->sub_len);
    simcse_step_free(t->step);
    simcse_text_batch_free(&t->text);
    simcse_embedder_free(&t->embedder);
    if (t->optim.be) simcse_optimizer_free(&t->optim);
    simcse_encoder_free(t->enc);
    simcse_sampler_free(&t->sampler);
    if (t->data) simcse_dataset_close(t->data);
    if (t->tok) simcse_tokenizer_free(t->tok);
    simcse_model_free(&t->model);
}

/* Packs this rank's b examples (global positions rank*b ..) into gradient-caching
 * chunks; the dropout rows are global, so the chunking does not change the masks. */
static int pack_chunks(trainer *t, const int64_t *idx, int b, int *n_chunks, int *T) {
    if (simcse_dataset_get_batch(t->data, idx, b, &t->text) != 0) return -1;
    const int F = t->text.n_fields, pos0 = simcse_config_position_offset(&t->model.cfg);
    const char **text = t->sub_text;
    size_t *len = t->sub_len;
    *n_chunks = 0;
    *T = 0;
    for (int base = 0; base < b; base += t->chunk) {
        int n = b - base < t->chunk ? b - base : t->chunk;
        for (int f = 0; f < F; f++)
            for (int i = 0; i < n; i++) {
                text[f * n + i] = t->text.text[f * b + base + i];
                len[f * n + i] = t->text.len[f * b + base + i];
            }
        simcse_text_batch sub = {.n = n, .n_fields = F, .text = text, .len = len};
        simcse_token_batch *tb = &t->chunk_tokens[*n_chunks];
        tb->example_base = (int64_t)t->rank * b + base;
        tb->global_B = (int64_t)t->world * b;
        if (simcse_pack_batch(t->tok, &sub, pos0, tb) != 0) return -1;
        t->chunks[*n_chunks] = (simcse_packed){.n_seq = tb->n_seq,
                                               .T = tb->T,
                                               .ids = tb->ids,
                                               .pos_ids = tb->pos_ids,
                                               .type_ids = NULL,
                                               .offsets = tb->offsets,
                                               .row_ids = tb->row_ids};
        t->chunk_counts[*n_chunks] = n;
        *T += tb->T;
        ++*n_chunks;
    }
    return 0;
}

static int run(trainer *t, simcse_train_summary *sum) {
    const simcse_train_config *c = t->cfg;
    const int eval_on = c->eval_tasks[0] != 0 && t->leader;
    if (t->leader && !t->opt->quiet) {
        fprintf(stderr,
                "simcse: training %s (%d layers, hidden %d, %zu parameters) on %s | %lld examples x %d field%s | "
                "batch %d | %lld steps | device %s\n",
                c->model[0] ? c->model : c->model_config, t->model.cfg.layers, t->model.cfg.hidden, t->model.n_floats,
                c->train_file, (long long)simcse_dataset_size(t->data), t->n_fields, t->n_fields > 1 ? "s" : "",
                c->batch_size * t->world, (long long)t->total_steps, t->be->name);
        if (t->world > 1 || t->chunk < c->batch_size)
            fprintf(stderr, "simcse: %d rank%s (%s) x %d examples; gradient caching in chunks of %d\n", t->world,
                    t->world > 1 ? "s" : "", t->comm ? t->comm->name : "single", c->batch_size, t->chunk);
        if (simcse_dataset_n_bad_rows(t->data) || simcse_dataset_n_empty_lines(t->data))
            fprintf(stderr, "simcse: %s: skipped %lld malformed rows and %lld empty lines\n", c->train_file,
                    (long long)simcse_dataset_n_bad_rows(t->data), (long long)simcse_dataset_n_empty_lines(t->data));
    }
    sum->eval_before = sum->eval_best = NAN;
    if (eval_on && t->st.step == 0) {
        if (evaluate(t, &sum->eval_before) != 0) return -1;
        fprintf(stderr,
                "simcse: before training: %s dev Spearman x100 = %.2f | stsb dev alignment %.4f, uniformity %.4f\n",
                c->eval_tasks, sum->eval_before, t->eval_alignment, t->eval_uniformity);
    }
    int64_t *idx = simcse_xmalloc((size_t)c->batch_size * t->world * sizeof *idx);
    double t_start = simcse_now_seconds(), t_log = t_start, loss_sum = 0;
    long long sent_log = 0, n_log = 0;
    float loss = NAN;
    int rc = 0;
    while (t->st.step < t->total_steps) {
        /* the global batch; this rank's slice of it */
        int gb = simcse_sampler_next(&t->sampler, c->batch_size * t->world, idx);
        if (gb < 0) {
            rc = -1;
            break;
        }
        int b = gb / t->world;
        if (b * t->world < 2) continue; /* a lone example has no negatives: skip it (an epoch tail of 1) */
        int T = 0, n_chunks = 0;
        if (pack_chunks(t, idx + (size_t)t->rank * b, b, &n_chunks, &T) != 0) {
            rc = -1;
            break;
        }
        simcse_encoder_zero_grads(t->enc);
        simcse_encoder_set_dropout(t->enc, 1, (uint64_t)c->seed, (uint32_t)t->st.step);
        if (simcse_step_run(t->step, t->chunks, t->chunk_counts, n_chunks, &loss) != 0) {
            rc = -1;
            break;
        }
        if (!isfinite(loss)) {
            rc = simcse_error("step %lld: loss is %f (lower learning_rate, check the data)", (long long)t->st.step + 1,
                              loss);
            break;
        }
        double lr;
        double norm =
            simcse_optimizer_step(&t->optim, simcse_encoder_params(t->enc), simcse_encoder_grads(t->enc), &lr);
        t->st.step++;
        loss_sum += loss;
        n_log++;
        sent_log += gb;
        double now = simcse_now_seconds();
        double sps = now > t_log ? sent_log / (now - t_log) : 0;
        if (t->metrics)
            fprintf(t->metrics,
                    "{\"step\": %lld, \"epoch\": %llu, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, "
                    "\"batch\": %d, \"tokens\": %d, \"elapsed_s\": %.3f}\n",
                    (long long)t->st.step, (unsigned long long)t->sampler.pos.epoch, loss, lr, norm, gb, T,
                    now - t_start);
        int log_now = t->st.step % c->logging_steps == 0 || t->st.step == t->total_steps;
        progress(t, loss_sum / (double)n_log, lr, norm, sps, now - t_start, log_now);
        if (log_now) {
            if (t->metrics) fflush(t->metrics);
            loss_sum = 0;
            n_log = 0;
            sent_log = 0;
            t_log = now;
        }
        int last = t->st.step == t->total_steps;
        if (eval_on && ((c->eval_steps > 0 && t->st.step % c->eval_steps == 0) || last)) {
            double score;
            if (evaluate(t, &score) != 0) {
                rc = -1;
                break;
            }
            int better = score > t->st.best_metric;
            fprintf(stderr,
                    "simcse: step %lld: %s dev Spearman x100 = %.2f | stsb dev alignment %.4f, uniformity %.4f%s\n",
                    (long long)t->st.step, c->eval_tasks, score, t->eval_alignment, t->eval_uniformity,
                    better ? " (best so far: exported)" : "");
            if (better) {
                t->st.best_metric = score;
                t->st.best_step = t->st.step;
                if (export_best(t) != 0) {
                    rc = -1;
                    break;
                }
            }
        }
        int stop = t->opt->stop_after > 0 && t->st.step == t->opt->stop_after;
        if (t->leader && ((c->save_steps > 0 && t->st.step % c->save_steps == 0) || last || stop)) {
            if (save_checkpoint(t) != 0) {
                rc = -1;
                break;
            }
        }
        if (stop) break;
    }
    free(idx);
    if (rc == 0 && t->leader && !eval_on && t->st.step == t->total_steps) rc = export_best(t);
    sum->steps = t->st.step;
    sum->final_loss = loss;
    sum->eval_best = t->st.best_metric;
    sum->best_step = t->st.best_step;
    if (rc == 0 && t->leader && !t->opt->quiet && t->st.step == t->total_steps)
        fprintf(stderr, "simcse: done: %lld steps in %.1f s; model exported to %s%s\n", (long long)t->st.step,
                simcse_now_seconds() - t_start, t->opt->output_dir, eval_on ? " (the best dev checkpoint)" : "");
    return rc;
}

int simcse_train(const simcse_train_config *cfg, const simcse_train_options *opt, simcse_train_summary *out) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.opt = opt;
    t.comm = opt->comm;
    t.rank = opt->comm ? opt->comm->rank : 0;
    t.world = opt->comm ? opt->comm->size : 1;
    t.leader = t.rank == 0;
    t.eval_alignment = t.eval_uniformity = NAN;
    simcse_train_summary sum;
    memset(&sum, 0, sizeof sum);
    int rc = simcse_train_config_validate(cfg);
    if (rc == 0) rc = setup(&t);
    if (rc == 0) rc = run(&t, &sum);
    if (rc != 0 && t.comm && t.comm->abort) t.comm->abort(t.comm); /* the other ranks must not wait for us */
    teardown(&t);
    if (out) *out = sum;
    return rc;
}
