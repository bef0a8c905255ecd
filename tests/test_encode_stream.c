/* Bounded encode memory: the streamed .npy writer (byte-identical to the one-shot writer,
 * header patched with the final row count), the embedder's token capacity (a batch whose
 * real tokens do not fit is embedded in pieces, with the same result), and `simcse encode`
 * streaming a batch at a time (rows in input order, every row written). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "simcse/common.h"
#include "simcse/embedder.h"
#include "simcse/model.h"
#include "simcse/npy.h"
#include "simcse/tokenizer.h"
#include "test_tmpdir.h"
#include "test_util.h"

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)len + 1);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

Test(encode_stream, npy_writer_streams_the_one_shot_bytes, .init = mk_tmpdir, .fini = rm_tmpdir) {
    const int64_t counts[] = {0, 7, 100000}; /* the row count's digits change the dict, not its length */
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        const int64_t rows = counts[c], cols = 3;
        float *x = malloc((size_t)(rows ? rows : 1) * cols * sizeof(float));
        for (int64_t i = 0; i < rows * cols; i++) x[i] = (float)i * 0.25f - 1.0f;
        char *one = tmp_path("one.npy"), *st = tmp_path("stream.npy");
        cr_assert_eq(simcse_npy_write_f32(one, x, rows, cols), 0, "%s", simcse_last_error());
        simcse_npy_writer w;
        cr_assert_eq(simcse_npy_writer_open(&w, st, cols), 0, "%s", simcse_last_error());
        int64_t done = 0;
        for (int64_t piece = 1; done < rows; piece *= 3) { /* uneven appends */
            int64_t k = rows - done < piece ? rows - done : piece;
            cr_assert_eq(simcse_npy_writer_append(&w, x + done * cols, k), 0);
            done += k;
        }
        cr_assert_eq(simcse_npy_writer_close(&w), 0, "%s", simcse_last_error());
        size_t na, nb;
        char *a = slurp(one, &na), *b = slurp(st, &nb);
        cr_assert_eq(na, nb, "%lld rows: %zu vs %zu bytes", (long long)rows, na, nb);
        cr_assert(memcmp(a, b, na) == 0, "%lld rows: streamed file differs", (long long)rows);
        float *y;
        int64_t r, cc;
        cr_assert_eq(simcse_npy_read_f32(st, &y, &r, &cc), 0, "%s", simcse_last_error());
        cr_assert(r == rows && cc == cols);
        free(y), free(a), free(b), free(x), free(one), free(st);
    }
}

Test(encode_stream, npy_writer_abort_leaves_nothing, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char *p = tmp_path("gone.npy");
    simcse_npy_writer w;
    cr_assert_eq(simcse_npy_writer_open(&w, p, 4), 0);
    float x[4] = {1, 2, 3, 4};
    cr_assert_eq(simcse_npy_writer_append(&w, x, 1), 0);
    simcse_npy_writer_abort(&w);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", g_dir);
    cr_assert_eq(system(cmd), 0, "abort left files in %s", g_dir);
    free(p);
}

/* A small BERT with bert-base-uncased's vocabulary and tokenizer, saved as a model directory. */
static char *make_model_dir(void) {
    char *dir = tmp_path("m");
    simcse_config c = {.arch = SIMCSE_ARCH_BERT,
                       .vocab_size = 30522,
                       .hidden = 32,
                       .layers = 2,
                       .heads = 2,
                       .intermediate = 64,
                       .max_positions = 64,
                       .type_vocab_size = 2,
                       .pad_token_id = 0,
                       .layer_norm_eps = 1e-12f,
                       .hidden_dropout = 0.1f,
                       .attn_dropout = 0.1f};
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), 0, "%s", simcse_last_error());
    simcse_model_init_random(&m, 11);
    cr_assert_eq(simcse_model_save_dir(&m, dir, 1), 0, "%s", simcse_last_error());
    simcse_model_free(&m);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s/tokenizers/bert-base-uncased/vocab.txt' '%s/'", test_data_dir(), dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

static const char *sentences[] = {
    "a man is playing a guitar.",
    "two dogs run through a field of tall grass near the old barn at sunset.",
    "hi",
    "the stock market fell sharply on monday after the central bank raised interest rates again.",
    "a woman slices an onion.",
    "",
    "children are playing soccer in the park while their parents watch.",
    "the cat sleeps.",
    "an extraordinarily long sentence about nothing in particular keeps going and going on.",
    "rain."};
#define N_SENT (int)(sizeof sentences / sizeof sentences[0])

Test(encode_stream, embedder_splits_a_batch_that_overflows_its_tokens, .init = mk_tmpdir, .fini = rm_tmpdir) {
    char *dir = make_model_dir();
    simcse_model m;
    cr_assert_eq(simcse_model_load(&m, dir), 0, "%s", simcse_last_error());
    simcse_tokenizer *tok = simcse_tokenizer_load(dir);
    cr_assert_not_null(tok, "%s", simcse_last_error());
    const int H = m.cfg.hidden, max_len = 24;
    float *want = malloc((size_t)N_SENT * H * sizeof(float)), *got = malloc((size_t)N_SENT * H * sizeof(float));
    /* room for the whole batch, then room for one sentence only */
    const int capacity[2] = {N_SENT * max_len, max_len};
    for (int c = 0; c < 2; c++) {
        simcse_encoder *e = simcse_encoder_create(simcse_backend_cpu(), &m, N_SENT, capacity[c], 0);
        cr_assert_not_null(e, "%s", simcse_last_error());
        simcse_embedder em;
        cr_assert_eq(simcse_embedder_init(&em, tok, e, &m, SIMCSE_POOL_AVG, 0, max_len, N_SENT), 0);
        cr_assert_eq(simcse_embedder_embed(&em, sentences, N_SENT, c ? got : want), 0, "%s", simcse_last_error());
        cr_assert_eq(em.n_sentences, N_SENT);
        simcse_embedder_free(&em);
        simcse_encoder_free(e);
    }
    for (int i = 0; i < N_SENT * H; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])), "row %d col %d: %g vs %g", i / H, i % H,
                  got[i], want[i]);
    cr_assert_eq(simcse_embedder_max_tokens(64, 32), 2048);
    cr_assert_eq(simcse_embedder_max_tokens(256, 256), SIMCSE_EMBED_TOKENS);
    cr_assert_eq(simcse_embedder_max_tokens(1, 8192), 8192); /* one sentence always fits */
    free(want), free(got), free(dir);
    simcse_tokenizer_free(tok);
    simcse_model_free(&m);
}

static int run_quiet(const char *cmd) {
    char full[4096];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(encode_stream, encode_streams_every_row_in_order, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120) {
    char *dir = make_model_dir(), *in = tmp_path("in.txt");
    FILE *f = fopen(in, "w");
    const int reps = 7; /* 70 lines: many batches of 3, a ragged last one */
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < N_SENT; i++) fprintf(f, "%s%s\n", sentences[i], r % 2 ? " again" : "");
    fclose(f);
    char cmd[2048];
    float *e[2];
    int64_t rows[2], cols[2];
    const int batch[2] = {64, 3};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "%s encode --model %s --pooler avg --input %s --output %s/e%d.npy --device cpu "
                 "--batch-size %d --max-len 24",
                 test_bin(), dir, in, g_dir, k, batch[k]);
        cr_assert_eq(run_quiet(cmd), 0, "%s", cmd);
        snprintf(cmd, sizeof cmd, "%s/e%d.npy", g_dir, k);
        cr_assert_eq(simcse_npy_read_f32(cmd, &e[k], &rows[k], &cols[k]), 0, "%s", simcse_last_error());
        cr_assert_eq(rows[k], reps * N_SENT, "batch %d: %lld rows", batch[k], (long long)rows[k]);
        cr_assert_eq(cols[k], 32);
    }
    for (int64_t i = 0; i < rows[0] * cols[0]; i++)
        cr_assert(fabsf(e[1][i] - e[0][i]) <= 1e-5f * (1 + fabsf(e[0][i])), "row %lld differs between batch sizes",
                  (long long)(i / cols[0]));
    /* rows follow the input: line i and line i + 2 * N_SENT are the same sentence (in other
     * batches: equal to rounding), line i + N_SENT another one */
    double same = 0, other = 0;
    for (int64_t i = 0; i < N_SENT * cols[1]; i++) {
        same = fmax(same, fabs(e[1][i] - e[1][i + 2 * N_SENT * cols[1]]));
        other = fmax(other, fabs(e[1][i] - e[1][i + N_SENT * cols[1]]));
    }
    cr_assert(same <= 1e-5 && other > 1e-3, "same sentence differs by %g, another by %g", same, other);
    /* an empty input is a [0, hidden] file */
    snprintf(cmd, sizeof cmd, "%s encode --model %s --pooler avg --output %s/z.npy --device cpu < /dev/null",
             test_bin(), dir, g_dir);
    cr_assert_eq(run_quiet(cmd), 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "%s/z.npy", g_dir);
    float *z;
    int64_t zr, zc;
    cr_assert_eq(simcse_npy_read_f32(cmd, &z, &zr, &zc), 0, "%s", simcse_last_error());
    cr_assert(zr == 0 && zc == 32);
    free(z), free(e[0]), free(e[1]), free(dir), free(in);
}
