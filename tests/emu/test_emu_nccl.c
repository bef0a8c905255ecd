/* host/train/comm_nccl.c on the harness's NCCL stand-in (rule 9): threads are the ranks,
 * each on its own emulated device, as one process per GPU would be.
 *
 * - The collectives of comm_nccl.c on device buffers with 1 to 4 ranks give the values of
 *   their definitions (comm.h), including the overlapped all_reduce_sum_start / wait.
 * - A training step of the CUDA backend with 2 and 4 NCCL ranks (and gradient caching) gives
 *   the losses, gradients and weights after 3 AdamW steps of one rank with the whole batch,
 *   with dropout on (fp32; the tolerance and the attention key-bias exception of
 *   tests/test_distributed.c, which runs the same check on the CPU with the threads
 *   communicator).
 * - Ranks that call different collectives (another count or kind), or a rank that skips
 *   one, are rejected with the stand-in's message naming the collective, its number and
 *   the ranks (in a child process: the stand-in aborts, as a GPU job would hang).
 * - A rank that aborts makes its peer's collective fail instead of hang; its own later
 *   collectives fail, and destroy() frees it after the abort (comm.h: the creator frees an
 *   aborted communicator; LeakSanitizer checks that nothing is left).
 * Built only by make test-emu (tests/emu/test_*.c). */
#include <criterion/criterion.h>
#include <cuda_runtime.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simcse/comm.h"
#include "simcse/common.h"
#include "simcse/encoder.h"
#include "simcse/loss.h"
#include "simcse/model.h"
#include "simcse/ops.h"
#include "simcse/optimizer.h"
#include "simcse/rng.h"

#define MAX_RANKS 4

/* ---------------- collectives ---------------- */

typedef struct {
    int rank, size;
    const unsigned char *id;
    int ok;
    char why[160];
} coll_arg;

static float *dev_copy(const float *h, size_t n) {
    float *d = NULL;
    if (cudaMalloc((void **)&d, n * sizeof(float)) != cudaSuccess) return NULL;
    if (h && cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) return NULL;
    return d;
}

#define COLL_FAIL(...)                                \
    do {                                              \
        snprintf(a->why, sizeof a->why, __VA_ARGS__); \
        return NULL;                                  \
    } while (0)

static void *collectives(void *p) {
    coll_arg *a = p;
    const int r = a->rank, G = a->size, n = 5;
    simcse_comm *c = simcse_comm_nccl_create(r, G, a->id, r);
    if (!c) COLL_FAIL("rank %d: %s", r, simcse_last_error());
    float buf[5], send[4 * 5], recv[4 * 5];
    for (int i = 0; i < n; i++) buf[i] = (float)(r * 10 + i);
    float *d_buf = dev_copy(buf, 5), *d_send = dev_copy(NULL, 4 * 5), *d_recv = dev_copy(NULL, 4 * 5);
    if (!d_buf || !d_send || !d_recv) COLL_FAIL("cudaMalloc failed");
    if (c->all_reduce_sum(c, d_buf, (size_t)n)) COLL_FAIL("all_reduce_sum: %s", simcse_last_error());
    cudaMemcpy(buf, d_buf, sizeof buf, cudaMemcpyDeviceToHost);
    for (int i = 0; i < n; i++)
        if (buf[i] != (float)(10 * G * (G - 1) / 2 + G * i)) COLL_FAIL("all_reduce_sum[%d] = %g", i, buf[i]);
    /* the overlapped form: started, then waited for */
    for (int i = 0; i < n; i++) buf[i] = (float)(r + i);
    cudaMemcpy(d_buf, buf, sizeof buf, cudaMemcpyHostToDevice);
    if (c->all_reduce_sum_start(c, d_buf, (size_t)n) || c->wait(c)) COLL_FAIL("start/wait: %s", simcse_last_error());
    cudaMemcpy(buf, d_buf, sizeof buf, cudaMemcpyDeviceToHost);
    for (int i = 0; i < n; i++)
        if (buf[i] != (float)(G * (G - 1) / 2 + G * i)) COLL_FAIL("all_reduce_sum_start[%d] = %g", i, buf[i]);
    float mine[5];
    for (int i = 0; i < n; i++) mine[i] = (float)(100 * r + i);
    float *d_mine = dev_copy(mine, 5);
    if (c->all_gather(c, d_mine, d_recv, (size_t)n)) COLL_FAIL("all_gather: %s", simcse_last_error());
    cudaMemcpy(recv, d_recv, (size_t)G * n * sizeof(float), cudaMemcpyDeviceToHost);
    for (int q = 0; q < G; q++)
        for (int i = 0; i < n; i++)
            if (recv[q * n + i] != (float)(100 * q + i)) COLL_FAIL("all_gather[%d][%d] = %g", q, i, recv[q * n + i]);
    for (int q = 0; q < G; q++)
        for (int i = 0; i < n; i++) send[q * n + i] = (float)(r + 1) * (float)(q * n + i);
    cudaMemcpy(d_send, send, (size_t)G * n * sizeof(float), cudaMemcpyHostToDevice);
    if (c->reduce_scatter_sum(c, d_send, d_recv, (size_t)n)) COLL_FAIL("reduce_scatter: %s", simcse_last_error());
    cudaMemcpy(recv, d_recv, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost);
    for (int i = 0; i < n; i++)
        if (recv[i] != (float)(G * (G + 1) / 2) * (float)(r * n + i)) COLL_FAIL("reduce_scatter[%d] = %g", i, recv[i]);
    double v = r + 0.5;
    if (c->all_reduce_host_f64(c, &v, 1)) COLL_FAIL("all_reduce_host_f64: %s", simcse_last_error());
    if (v != G * (G - 1) / 2.0 + 0.5 * G) COLL_FAIL("all_reduce_host_f64 = %g", v);
    cudaFree(d_buf);
    cudaFree(d_send);
    cudaFree(d_recv);
    cudaFree(d_mine);
    c->destroy(c);
    a->ok = 1;
    return NULL;
}

Test(emu_nccl, comm_nccl_collectives_on_1_to_4_ranks) {
    for (int G = 1; G <= MAX_RANKS; G++) {
        unsigned char id[SIMCSE_NCCL_ID_BYTES];
        cr_assert_eq(simcse_nccl_unique_id(id), 0, "%s", simcse_last_error());
        pthread_t th[MAX_RANKS];
        coll_arg args[MAX_RANKS];
        for (int r = 0; r < G; r++) {
            args[r] = (coll_arg){r, G, id, 0, ""};
            pthread_create(&th[r], NULL, collectives, &args[r]);
        }
        for (int r = 0; r < G; r++) pthread_join(th[r], NULL);
        for (int r = 0; r < G; r++) cr_assert(args[r].ok, "%d ranks, rank %d: %s", G, r, args[r].why);
    }
}

/* ---------------- a rank that aborts ---------------- */

typedef struct {
    int rank;
    const unsigned char *id;
    int rc;
    pthread_barrier_t *made; /* both ranks have tried to make their communicator */
} abort_arg;

static void *abort_or_reduce(void *p) {
    abort_arg *a = p;
    simcse_comm *c = simcse_comm_nccl_create(a->rank, 2, a->id, a->rank);
    /* rank 1 aborts once rank 0 has its communicator: an abort during ncclCommInitRank fails
     * the peer's init instead, which is not what this test is about */
    pthread_barrier_wait(a->made);
    if (!c) {
        a->rc = -2;
        return NULL;
    }
    float *d = dev_copy(NULL, 4);
    cudaMemset(d, 0, 4 * sizeof(float));
    if (a->rank == 1) {
        c->abort(c); /* rank 1 fails before the collective */
        c->abort(c); /* a second abort is harmless */
        /* its own later collectives fail (comm.h), and its creator still frees it */
        a->rc = c->all_reduce_sum(c, d, 4) == -1 && c->all_reduce_host_f64(c, (double[]){1.0}, 1) == -1 ? 0 : -3;
        c->destroy(c);
    } else {
        a->rc = c->all_reduce_sum(c, d, 4);
        if (a->rc == 0) a->rc = c->all_reduce_sum(c, d, 4); /* at the latest the next one fails */
        c->destroy(c);
    }
    cudaFree(d);
    return NULL;
}

Test(emu_nccl, an_aborting_rank_fails_its_peers_collective, .timeout = 60) {
    unsigned char id[SIMCSE_NCCL_ID_BYTES];
    cr_assert_eq(simcse_nccl_unique_id(id), 0);
    pthread_t th[2];
    pthread_barrier_t made;
    pthread_barrier_init(&made, NULL, 2);
    abort_arg args[2] = {{0, id, 1, &made}, {1, id, 1, &made}};
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, abort_or_reduce, &args[r]);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&made);
    cr_assert_eq(args[1].rc, 0, "the aborted rank's own collectives: %d (-3: one did not fail)", args[1].rc);
    cr_assert_eq(args[0].rc, -1, "rank 0's all-reduce after rank 1 aborted returned %d, want an error", args[0].rc);
}

/* ---------------- ranks that disagree: rejected, with the stand-in's message ---------------- */

/* What rank 1 does where rank 0 calls all_reduce_sum(5 floats) */
enum { MIS_COUNT, MIS_KIND, MIS_SKIP };
static int g_mismatch;

static void *mismatched_rank(void *p) {
    abort_arg *a = p;
    simcse_comm *c = simcse_comm_nccl_create(a->rank, 2, a->id, a->rank);
    if (!c) return NULL;
    float *d = dev_copy(NULL, 10);
    cudaMemset(d, 0, 10 * sizeof(float));
    if (a->rank == 0)
        a->rc = c->all_reduce_sum(c, d, 5);
    else if (g_mismatch == MIS_COUNT)
        a->rc = c->all_reduce_sum(c, d, 4);
    else if (g_mismatch == MIS_KIND)
        a->rc = c->all_gather(c, d + 5, d, 5); /* in place: rank 1 sends recv[5..10) */
    /* MIS_SKIP: rank 1 never calls it (and keeps its communicator) */
    return NULL;
}

/* In a child (the stand-in aborts the process): returns its stderr; *failed = it did not exit 0. */
static char *mismatch_in_child(int kind, int *failed) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        setenv("EMU_NCCL_TIMEOUT_S", "1", 1); /* the skipped collective: rank 0 gives up after 1 s */
        g_mismatch = kind;
        unsigned char id[SIMCSE_NCCL_ID_BYTES];
        if (simcse_nccl_unique_id(id) != 0) _exit(3);
        pthread_t th[2];
        abort_arg args[2] = {{0, id, 0, NULL}, {1, id, 0, NULL}};
        for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, mismatched_rank, &args[r]);
        for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
        fflush(stderr);
        _exit(0);
    }
    close(p[1]);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    ssize_t n;
    while ((n = read(p[0], out + len, cap - 1 - len)) > 0) len += (size_t)n;
    out[len] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *failed = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return out;
}

static void expect_mismatch_rejected(int kind, const char *what) {
    int failed = 0;
    char *err = mismatch_in_child(kind, &failed);
    cr_assert(failed, "the NCCL stand-in accepted ranks that disagree; its stderr:\n%s", err);
    cr_assert(strstr(err, what), "the error does not say '%s':\n%s", what, err);
    free(err);
}

Test(emu_nccl, ranks_that_call_different_collectives_are_rejected, .timeout = 60) {
    expect_mismatch_rejected(MIS_COUNT, "ncclAllReduce: collective #0: rank 0 called ncclAllReduce(count 5, type 7, op "
                                        "0) but rank 1 called ncclAllReduce(count 4, type 7, op 0): ranks must call "
                                        "the same collectives in the same order");
    expect_mismatch_rejected(MIS_KIND, "collective #0: rank 0 called ncclAllReduce(count 5, type 7, op 0) but rank 1 "
                                       "called ncclAllGather(count 5");
    expect_mismatch_rejected(MIS_SKIP, "ncclAllReduce: rank 0 of 2 waited 1 s in collective #0 for rank(s) 1, which "
                                       "never reached it");
}

/* ---------------- training: NCCL ranks vs one rank ---------------- */

#define N_EX 8
#define STEPS 3
#define MAX_LEN 16

typedef struct {
    int V, G, chunk;
} setup;

typedef struct {
    float loss[STEPS];
    float *grads, *weights;
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

static int ex_len(int e, int v) { return 3 + (e * 7 + v * 3) % 6; }
static int32_t ex_id(int e, int v, int j) { return j == 0 ? 2 : (int32_t)(4 + (e * 13 + v * 5 + j * 7) % 58); }

typedef struct {
    int32_t ids[N_EX * 3 * MAX_LEN], pos[N_EX * 3 * MAX_LEN], rows[N_EX * 3 * MAX_LEN];
    int32_t offs[N_EX * 3 + 1];
    simcse_packed p;
} packed_buf;

/* examples [e0, e0+n) view-major with global dropout rows, as tests/test_distributed.c packs them */
static void pack(packed_buf *pb, int V, int e0, int n) {
    int T = 0, s = 0;
    for (int v = 0; v < V; v++)
        for (int i = 0; i < n; i++) {
            int e = e0 + i, vv = V == 2 ? 0 : v;
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
    int rank;
    const unsigned char *id; /* NULL: one rank without a communicator */
    result *out;             /* written by rank 0 */
    char why[200];
} rank_arg;

static void *run_rank(void *argp) {
    rank_arg *a = argp;
    const int G = a->su.G, r = a->rank, B = N_EX / G, V = a->su.V;
    const int chunk = a->su.chunk > 0 ? a->su.chunk : B;
    const int n_chunks = (B + chunk - 1) / chunk;
    simcse_comm *comm = NULL;
    if (a->id) {
        comm = simcse_comm_nccl_create(r, G, a->id, r);
        if (!comm) {
            snprintf(a->why, sizeof a->why, "rank %d: %s", r, simcse_last_error());
            return NULL;
        }
    }
    simcse_backend *be = simcse_backend_cuda(r, 0);
    if (!be) {
        snprintf(a->why, sizeof a->why, "rank %d: %s", r, simcse_last_error());
        return NULL;
    }
    simcse_encoder *e = simcse_encoder_create(be, &base_model, V * chunk, V * chunk * MAX_LEN, 1);
    simcse_step *st = simcse_step_create(e, &LC, comm, B, V);
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
    const size_t bytes = base_model.n_floats * sizeof(float);
    for (int s = 0; s < STEPS; s++) {
        simcse_encoder_zero_grads(e);
        simcse_encoder_set_dropout(e, 1, 77, (uint32_t)s);
        float loss;
        if (simcse_step_run(st, chunks, counts, n_chunks, &loss) != 0) {
            snprintf(a->why, sizeof a->why, "rank %d step %d: %s", r, s, simcse_last_error());
            return NULL;
        }
        if (s == 0 && r == 0) be->to_host(be, a->out->grads, simcse_encoder_grads(e), bytes);
        simcse_optimizer_step(&opt, simcse_encoder_params(e), simcse_encoder_grads(e), NULL);
        if (r == 0) a->out->loss[s] = loss;
    }
    if (r == 0) be->to_host(be, a->out->weights, simcse_encoder_params(e), bytes);
    be->sync(be);
    free(pb);
    simcse_optimizer_free(&opt);
    simcse_step_free(st);
    simcse_encoder_free(e);
    if (comm) comm->destroy(comm);
    return NULL;
}

static void run_setup(setup su, int use_nccl, result *out) {
    out->grads = malloc(base_model.n_floats * sizeof(float));
    out->weights = malloc(base_model.n_floats * sizeof(float));
    unsigned char id[SIMCSE_NCCL_ID_BYTES];
    if (use_nccl) cr_assert_eq(simcse_nccl_unique_id(id), 0);
    pthread_t th[MAX_RANKS];
    rank_arg args[MAX_RANKS];
    for (int r = 0; r < su.G; r++) {
        args[r] = (rank_arg){su, r, use_nccl ? id : NULL, out, ""};
        pthread_create(&th[r], NULL, run_rank, &args[r]);
    }
    for (int r = 0; r < su.G; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < su.G; r++) cr_assert(!args[r].why[0], "%s", args[r].why);
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
            maxw = fmax(maxw, fabs(got->weights[k] - want->weights[k]) / fmax(1.0, fabs(want->weights[k])));
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
    const setup cases[] = {{V, 2, 0}, {V, 4, 0}, {V, 2, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result got;
        run_setup(cases[i], 1, &got);
        char what[96];
        snprintf(what, sizeof what, "%d views, %d NCCL ranks, chunk %d", V, cases[i].G, cases[i].chunk);
        compare(what, &got, &ref);
        free_result(&got);
    }
    free_result(&ref);
    simcse_model_free(&base_model);
}

Test(emu_nccl, unsupervised_nccl_ranks_match_one_rank, .timeout = 600) { check(2); }
Test(emu_nccl, hard_negatives_nccl_ranks_match_one_rank, .timeout = 600) { check(3); }
