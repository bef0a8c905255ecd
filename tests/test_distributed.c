/* Several ranks and gradient caching against one rank with the whole batch.
 *
 * Threads play the ranks (the in-process communicator). G ranks x B examples,
 * with or without gradient caching, must give the loss, the gradients and the
 * weights after a few AdamW steps of one rank with G x B examples and no
 * caching, with dropout on: the masks are keyed by global rows, so they are the
 * same wherever a sentence is computed. Tolerance: fp32, 1e-5 relative (per
 * tensor for gradients). Exception, as in the transformers parity test: Adam
 * moves an element whose true gradient is 0 (the attention key biases: softmax
 * ignores a per-query constant) by about lr per step in whichever direction the
 * fp32 rounding noise points, so those are held to steps x lr. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/comm.h"
#include "simcse/common.h"
#include "simcse/data.h"
#include "simcse/encoder.h"
#include "simcse/loss.h"
#include "simcse/model.h"
#include "simcse/optimizer.h"
#include "simcse/rng.h"
#include "test_util.h"

#define N_EX 8 /* examples in the global batch */
#define STEPS 3
#define MAX_LEN 16
#define MAX_RANKS 4

typedef struct {
    int V;        /* views: 2 (unsupervised) or 3 (hard negatives) */
    int G, chunk; /* ranks; examples per chunk (0: no caching) */
} setup;

typedef struct {
    float loss[STEPS];
    float *grads;   /* after step 1 */
    float *weights; /* after STEPS steps */
} result;

static simcse_model base_model;
static const simcse_loss_config LC = {
    .pooler = SIMCSE_POOL_CLS, .apply_mlp = 1, .temperature = 0.1f, .hard_negative_weight = 0.3f};
static const simcse_adamw_config AC = {.lr = 1e-4,
                                       .beta1 = 0.9,
                                       .beta2 = 0.999,
                                       .eps = 1e-8,
                                       .weight_decay = 0.01,
                                       .max_grad_norm = 1.0,
                                       .warmup_steps = 0,
                                       .total_steps = STEPS,
                                       .linear_decay = 0};

static void make_base_model(void) {
    simcse_config c = {.arch = SIMCSE_ARCH_BERT,
                       .vocab_size = 64,
                       .hidden = 16,
                       .layers = 2,
                       .heads = 2,
                       .intermediate = 32,
                       .max_positions = 32,
                       .type_vocab_size = 2,
                       .pad_token_id = 0,
                       .layer_norm_eps = 1e-12f,
                       .hidden_dropout = 0.1f,
                       .attn_dropout = 0.1f};
    cr_assert_eq(simcse_model_init(&base_model, &c), 0);
    simcse_model_init_random(&base_model, 11);
    simcse_rng_stream rs = {5, 2, 0};
    for (size_t i = 0; i < base_model.n_floats; i++) base_model.data[i] += 0.05f * simcse_rng_normal(&rs);
}

/* Token j of view v of example e: a fixed synthetic sentence (unsupervised: both views equal). */
static int ex_len(int e, int v) { return 3 + (e * 7 + v * 3) % 6; }
static int32_t ex_id(int e, int v, int j) { return j == 0 ? 2 : (int32_t)(4 + (e * 13 + v * 5 + j * 7) % 58); }

typedef struct {
    int32_t ids[MAX_RANKS * N_EX * 3 * MAX_LEN], pos[MAX_RANKS * N_EX * 3 * MAX_LEN],
        rows[MAX_RANKS * N_EX * 3 * MAX_LEN];
    int32_t offs[N_EX * 3 + 1];
    simcse_packed p;
} packed_buf;

/* Packs examples [e0, e0+n) view-major with global dropout rows (global batch N_EX). */
static void pack(packed_buf *pb, int V, int e0, int n) {
    int T = 0, s = 0;
    for (int v = 0; v < V; v++)
        for (int i = 0; i < n; i++) {
            int e = e0 + i, vv = V == 2 ? 0 : v; /* unsupervised: the same ids in both views */
            pb->offs[s++] = T;
            for (int j = 0; j < ex_len(e, vv); j++, T++) {
                pb->ids[T] = ex_id(e, vv, j);
                pb->pos[T] = j;
                pb->rows[T] = (int32_t)(((int64_t)v * N_EX + e) * MAX_LEN + j);
            }
        }
    pb->offs[s] = T;
    pb->p = (simcse_packed){
        .n_seq = s, .T = T, .ids = pb->ids, .pos_ids = pb->pos, .offsets = pb->offs, .row_ids = pb->rows};
}

typedef struct {
    setup su;
    simcse_comm *comm;
    result *out; /* written by rank 0 */
} rank_arg;

static void *run_rank(void *argp) {
    rank_arg *a = argp;
    const int G = a->su.G, r = a->comm ? a->comm->rank : 0, B = N_EX / G, V = a->su.V;
    const int chunk = a->su.chunk > 0 ? a->su.chunk : B;
    const int n_chunks = (B + chunk - 1) / chunk;
    simcse_backend *be = simcse_backend_cpu();
    simcse_encoder *e = simcse_encoder_create(be, &base_model, V * chunk, V * chunk * MAX_LEN, 1);
    simcse_step *st = simcse_step_create(e, &LC, a->comm, B, V);
    simcse_optimizer opt;
    simcse_optimizer_init(&opt, be, &base_model, &AC);
    packed_buf *pb = calloc((size_t)n_chunks, sizeof *pb);
    simcse_packed chunks[N_EX];
    int counts[N_EX];
    for (int k = 0; k < n_chunks; k++) {
        int n = B - k * chunk < chunk ? B - k * chunk : chunk;
        pack(&pb[k], V, r * B + k * chunk, n);
        chunks[k] = pb[k].p;
        counts[k] = n;
    }
    for (int s = 0; s < STEPS; s++) {
        simcse_encoder_zero_grads(e);
        simcse_encoder_set_dropout(e, 1, 77, (uint32_t)s);
        float loss;
        if (simcse_step_run(st, chunks, counts, n_chunks, &loss) != 0) abort();
        if (s == 0 && r == 0) memcpy(a->out->grads, simcse_encoder_grads(e), base_model.n_floats * sizeof(float));
        simcse_optimizer_step(&opt, simcse_encoder_params(e), simcse_encoder_grads(e), NULL);
        if (r == 0) a->out->loss[s] = loss;
    }
    if (r == 0) memcpy(a->out->weights, simcse_encoder_params(e), base_model.n_floats * sizeof(float));
    free(pb);
    simcse_optimizer_free(&opt);
    simcse_step_free(st);
    simcse_encoder_free(e);
    return NULL;
}

static void run_setup(setup su, int use_comm, result *out) {
    out->grads = malloc(base_model.n_floats * sizeof(float));
    out->weights = malloc(base_model.n_floats * sizeof(float));
    if (!use_comm) {
        rank_arg a = {su, NULL, out};
        run_rank(&a);
        return;
    }
    simcse_comm **comms = simcse_comm_threads_create(su.G);
    cr_assert_not_null(comms);
    pthread_t th[MAX_RANKS];
    rank_arg args[MAX_RANKS];
    for (int r = 0; r < su.G; r++) {
        args[r] = (rank_arg){su, comms[r], out};
        pthread_create(&th[r], NULL, run_rank, &args[r]);
    }
    for (int r = 0; r < su.G; r++) pthread_join(th[r], NULL);
    simcse_comm_threads_destroy(comms);
}

static void compare(const char *what, const result *got, const result *want) {
    for (int s = 0; s < STEPS; s++)
        cr_assert(fabsf(got->loss[s] - want->loss[s]) <= 1e-5f * fmaxf(1.0f, fabsf(want->loss[s])),
                  "%s: step %d loss %.8f vs %.8f", what, s, got->loss[s], want->loss[s]);
    double G = 0;
    for (size_t k = 0; k < base_model.n_floats; k++) G = fmax(G, fabs(want->grads[k]));
    for (int i = 0; i < base_model.n_tensors; i++) {
        const simcse_param *t = &base_model.tensors[i];
        int key_bias = strstr(t->name, "attention.self.key.bias") != NULL;
        double scale = 0, maxd = 0, maxw = 0;
        for (size_t k = t->offset; k < t->offset + t->numel; k++) {
            scale = fmax(scale, fabs(want->grads[k]));
            maxd = fmax(maxd, fabs(got->grads[k] - want->grads[k]));
            double dw = fabs(got->weights[k] - want->weights[k]);
            maxw = fmax(maxw, dw / fmax(1.0, fabs(want->weights[k])));
        }
        double tol = key_bias ? 1e-6 * G : 1e-5 * fmax(scale, 1e-2 * G);
        cr_assert(maxd <= tol, "%s: gradient %s differs by %.3g (> %.3g)", what, t->name, maxd, tol);
        double wtol = key_bias ? (STEPS + 0.2) * AC.lr : 1e-5;
        cr_assert(maxw <= wtol, "%s: %s after %d AdamW steps differs by %.3g (> %.3g)", what, t->name, STEPS, maxw,
                  wtol);
    }
}

static void free_result(result *r) {
    free(r->grads);
    free(r->weights);
}

static void check(int V) {
    make_base_model();
    result ref;
    run_setup((setup){V, 1, 0}, 0, &ref);
    cr_assert(ref.loss[0] > 0 && isfinite(ref.loss[0]));
    const setup cases[] = {{V, 1, 0}, {V, 2, 0}, {V, 4, 0}, {V, 1, 3}, {V, 2, 2}, {V, 4, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result got;
        run_setup(cases[i], 1, &got);
        char what[96];
        snprintf(what, sizeof what, "%d views, %d ranks, chunk %d", V, cases[i].G, cases[i].chunk);
        compare(what, &got, &ref);
        free_result(&got);
    }
    /* the chunked single rank without a communicator as well */
    result cached;
    run_setup((setup){V, 1, 3}, 0, &cached);
    compare("1 rank, no communicator, chunk 3", &cached, &ref);
    free_result(&cached);
    free_result(&ref);
    simcse_model_free(&base_model);
}

Test(distributed, unsupervised_ranks_and_grad_cache_match_one_rank, .timeout = 120) { check(2); }
Test(distributed, hard_negatives_ranks_and_grad_cache_match_one_rank, .timeout = 120) { check(3); }

typedef struct {
    simcse_comm *c;
    int ok;
} coll_arg;

static void *collectives(void *p) {
    coll_arg *a = p;
    simcse_comm *c = a->c;
    const int r = c->rank, G = c->size, n = 5;
    float buf[5], send[4 * 5], recv[4 * 5];
    for (int i = 0; i < n; i++) buf[i] = (float)(r * 10 + i);
    c->all_reduce_sum(c, buf, (size_t)n);
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= buf[i] == (float)(10 * G * (G - 1) / 2 + G * i);
    float mine[5];
    for (int i = 0; i < n; i++) mine[i] = (float)(100 * r + i);
    c->all_gather(c, mine, recv, (size_t)n);
    for (int q = 0; q < G; q++)
        for (int i = 0; i < n; i++) ok &= recv[q * n + i] == (float)(100 * q + i);
    for (int q = 0; q < G; q++)
        for (int i = 0; i < n; i++) send[q * n + i] = (float)(r + 1) * (float)(q * n + i);
    c->reduce_scatter_sum(c, send, recv, (size_t)n);
    for (int i = 0; i < n; i++) ok &= recv[i] == (float)(G * (G + 1) / 2) * (float)(r * n + i);
    double v = r + 0.5;
    c->all_reduce_host_f64(c, &v, 1);
    ok &= v == G * (G - 1) / 2.0 + 0.5 * G;
    a->ok = ok;
    return NULL;
}

Test(distributed, threads_collectives) {
    for (int G = 1; G <= 4; G++) {
        simcse_comm **comms = simcse_comm_threads_create(G);
        cr_assert_not_null(comms);
        pthread_t th[4];
        coll_arg args[4];
        for (int r = 0; r < G; r++) {
            args[r] = (coll_arg){comms[r], 0};
            pthread_create(&th[r], NULL, collectives, &args[r]);
        }
        for (int r = 0; r < G; r++) pthread_join(th[r], NULL);
        for (int r = 0; r < G; r++) cr_assert(args[r].ok, "G=%d rank %d: wrong collective result", G, r);
        simcse_comm_threads_destroy(comms);
    }
    cr_assert_null(simcse_comm_threads_create(0));
}

/* The trainer end to end: --ranks 2 and --ranks 4 with gradient caching log the
 * losses of one rank with the whole batch (the CLI, sharded data, global order). */
static char *run_cli_losses(const char *dir, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s train --config %s/cfg.json --output %s/out --device cpu --quiet %s >%s/log 2>&1",
             test_bin(), dir, dir, extra, dir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *res = test_metric_losses(path);
    cr_assert_not_null(res, "%s", simcse_last_error());
    return res;
}

Test(distributed, trainer_ranks_log_the_single_rank_losses, .timeout = 300) {
    char dir[] = "/tmp/simcse_test_dist_cli_XXXXXX"; /* unique: other checkouts may run the suite at once */
    cr_assert_not_null(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 16, \"num_hidden_layers\": 1,"
          " \"num_attention_heads\": 2, \"intermediate_size\": 32, \"max_position_embeddings\": 32,"
          " \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\", \"pad_token_id\": 0}",
          f);
    fclose(f);
    snprintf(path, sizeof path, "%s/train.csv", dir);
    f = fopen(path, "w");
    fputs("sent0,sent1,hard_neg\n", f);
    for (int i = 0; i < 48; i++)
        fprintf(f, "a man plays %d songs,someone makes music %d,\"nobody, %d, is here\"\n", i, i * 3, i * 7);
    fclose(f);
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    f = fopen(path, "w");
    fprintf(f,
            "{\"model_config\": \"%s/model.json\", \"tokenizer\": \"%s/tokenizers/bert-base-uncased\","
            " \"train_file\": \"%s/train.csv\", \"batch_size\": 8, \"max_steps\": 4, \"learning_rate\": 1e-3,"
            " \"eval_tasks\": \"\", \"max_seq_len\": 16, \"precision\": \"fp32\", \"hard_negative_weight\": 0.2,"
            " \"logging_steps\": 1}",
            dir, test_data_dir(), dir);
    fclose(f);
    char *one = run_cli_losses(dir, "");
    char *two = run_cli_losses(dir, "--overwrite --ranks 2 --set batch_size=4");
    char *four = run_cli_losses(dir, "--overwrite --ranks 4 --set batch_size=2 --set grad_cache_chunk=1");
    cr_assert(strlen(one) > 0);
    /* printed with 6 decimals: equal up to fp32 summation order */
    double a[4], b[4], c[4];
    cr_assert_eq(sscanf(one, "\"loss\": %lf \"loss\": %lf \"loss\": %lf \"loss\": %lf", &a[0], &a[1], &a[2], &a[3]), 4);
    cr_assert_eq(sscanf(two, "\"loss\": %lf \"loss\": %lf \"loss\": %lf \"loss\": %lf", &b[0], &b[1], &b[2], &b[3]), 4);
    cr_assert_eq(sscanf(four, "\"loss\": %lf \"loss\": %lf \"loss\": %lf \"loss\": %lf", &c[0], &c[1], &c[2], &c[3]),
                 4);
    for (int i = 0; i < 4; i++) {
        cr_assert(fabs(a[i] - b[i]) <= 2e-5 * fmax(1, a[i]), "step %d: 2 ranks %.6f vs 1 rank %.6f", i, b[i], a[i]);
        cr_assert(fabs(a[i] - c[i]) <= 2e-5 * fmax(1, a[i]), "step %d: 4 ranks %.6f vs 1 rank %.6f", i, c[i], a[i]);
    }
    /* two ranks stopped after step 2 and resumed log the uninterrupted run's losses */
    snprintf(cmd, sizeof cmd, "rm -rf %s/out", dir);
    cr_assert_eq(system(cmd), 0);
    char *stopped = run_cli_losses(dir, "--ranks 2 --set batch_size=4 --stop-after 2");
    char *whole = strdup(two);
    snprintf(cmd, sizeof cmd, "%s train --resume %s/out --device cpu --quiet --ranks 2 >%s/log 2>&1", test_bin(), dir,
             dir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    char *resumed = test_metric_losses(path);
    cr_assert_str_eq(resumed, whole, "resumed two-rank run:\n%s\nuninterrupted:\n%s", resumed, whole);
    free(stopped);
    free(whole);
    free(resumed);
    free(one);
    free(two);
    free(four);
    test_rm_dir(dir);
}

/* The backward hands every parameter gradient to the reduction exactly once, in
 * buckets: the MLP head, the layers from the last down, the embeddings. */
typedef struct {
    const float *base;
    int calls;
    size_t total;
    size_t first[8];
} bucket_log;

static void log_bucket(void *ctx, float *grads, size_t n) {
    bucket_log *b = ctx;
    if (b->calls < 8) b->first[b->calls] = (size_t)(grads - b->base);
    b->calls++;
    b->total += n;
}

Test(distributed, backward_reports_each_gradient_bucket_once) {
    make_base_model();
    simcse_backend *be = simcse_backend_cpu();
    packed_buf pb;
    pack(&pb, 2, 0, 4);
    simcse_encoder *e = simcse_encoder_create(be, &base_model, 8, 8 * MAX_LEN, 1);
    cr_assert_not_null(e);
    bucket_log log = {.base = simcse_encoder_grads(e)};
    simcse_encoder_set_grads_ready(e, log_bucket, &log);
    cr_assert_eq(simcse_encoder_forward(e, &pb.p, SIMCSE_POOL_CLS, 1), 0);
    float *d = calloc((size_t)8 * base_model.cfg.hidden, sizeof(float));
    simcse_encoder_backward(e, d);
    cr_assert_eq(log.calls, base_model.cfg.layers + 2);
    cr_assert_eq(log.total, base_model.n_floats);
    cr_assert_eq(log.first[0], simcse_model_find(&base_model, "pooler.dense.weight")->offset);
    cr_assert_eq(log.first[1], simcse_model_find(&base_model, "encoder.layer.1.attention.self.query.weight")->offset);
    cr_assert_eq(log.first[3], 0, "the embeddings come last and start the buffer");
    free(d);
    simcse_encoder_free(e);
    simcse_model_free(&base_model);
}

/* simcse_pack_ids lays out ids, positions and dropout rows as this file's own packer does. */
Test(distributed, pack_ids_gives_global_rows) {
    packed_buf pb;
    pack(&pb, 3, 2, 3); /* examples 2..4 of the global batch, 3 views */
    int32_t seqs_store[9][MAX_LEN];
    const int32_t *seqs[9];
    int lens[9];
    for (int v = 0; v < 3; v++)
        for (int i = 0; i < 3; i++) {
            int k = v * 3 + i;
            lens[k] = ex_len(2 + i, v);
            for (int j = 0; j < lens[k]; j++) seqs_store[k][j] = ex_id(2 + i, v, j);
            seqs[k] = seqs_store[k];
        }
    simcse_token_batch tb;
    cr_assert_eq(simcse_token_batch_init(&tb, 9, MAX_LEN), 0);
    tb.example_base = 2;
    tb.global_B = N_EX;
    cr_assert_eq(simcse_pack_ids(seqs, lens, 3, 3, 0, &tb), 0, "%s", simcse_last_error());
    cr_assert_eq(tb.T, pb.p.T);
    for (int t = 0; t < tb.T; t++) {
        cr_assert_eq(tb.ids[t], pb.ids[t]);
        cr_assert_eq(tb.pos_ids[t], pb.pos[t]);
        cr_assert_eq(tb.row_ids[t], pb.rows[t], "token %d: row %d, expected %d", t, tb.row_ids[t], pb.rows[t]);
    }
    lens[0] = MAX_LEN + 1;
    cr_assert_eq(simcse_pack_ids(seqs, lens, 3, 3, 0, &tb), -1);
    simcse_token_batch_free(&tb);
}

/* A rank that fails aborts the group: the others get an error, not a hang. */
static void *wait_in_collective(void *p) {
    coll_arg *a = p;
    float buf[4] = {1, 2, 3, 4};
    a->ok = a->c->all_reduce_sum(a->c, buf, 4) == -1 && strstr(simcse_last_error(), "another rank failed") != NULL;
    return NULL;
}

Test(distributed, abort_releases_the_other_ranks, .timeout = 20) {
    simcse_comm **comms = simcse_comm_threads_create(3);
    pthread_t th[2];
    coll_arg args[2] = {{comms[1], 0}, {comms[2], 0}};
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, wait_in_collective, &args[r]);
    comms[0]->abort(comms[0]); /* rank 0 failed before reaching the collective */
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    cr_assert(args[0].ok && args[1].ok, "the waiting ranks must fail with a clear error");
    float x = 1;
    cr_assert_eq(comms[0]->all_reduce_sum(comms[0], &x, 1), -1, "later collectives fail too");
    simcse_comm_threads_destroy(comms);
}
