/* Training data: the shared corpora and NLI CSV, malformed CSV files in both
 * modes, shuffling and the sampler's position, and token-packed batches. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "simcse/common.h"
#include "simcse/data.h"
#include "simcse/tokenizer.h"
#include "test_util.h"

static char *data_path(const char *rel) { return simcse_path_join(test_data_dir(), rel); }

/* Writes content to a fresh /tmp file whose name ends with suffix. */
static char *write_tmp(const char *content, size_t len, const char *suffix) {
    char *path = simcse_xmalloc(128);
    snprintf(path, 128, "/tmp/simcse_data_test_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static char *write_tmp_str(const char *content, const char *suffix) {
    return write_tmp(content, strlen(content), suffix);
}

static simcse_data_options opts(int skip) {
    simcse_data_options o;
    simcse_data_options_default(&o);
    o.skip_bad_rows = skip;
    o.quiet = 1;
    return o;
}

static void expect_example(simcse_dataset *d, int64_t i, const char *a, const char *b, const char *c) {
    simcse_example ex;
    cr_assert_eq(simcse_dataset_get(d, i, &ex), 0, "%s", simcse_last_error());
    const char *want[3] = {a, b, c};
    int nf = c ? 3 : b ? 2 : 1;
    cr_assert_eq(ex.n_fields, nf);
    for (int f = 0; f < nf; f++) {
        cr_assert_str_eq(ex.text[f], want[f], "example %lld field %d", (long long)i, f);
        cr_assert_eq(ex.len[f], strlen(want[f]));
    }
}

/* ---- shared files ---- */

Test(data_files, nli_csv_triplets_with_rfc_quoting) {
    char *p = data_path("nli/nli_for_simcse.subset27k.csv");
    simcse_data_options o = opts(0);
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, &o);
    cr_assert_not_null(d, "%s", simcse_last_error());
    cr_assert_eq(simcse_dataset_kind(d), SIMCSE_DATA_CSV);
    cr_assert_eq(simcse_dataset_size(d), 27560);
    cr_assert_eq(simcse_dataset_n_fields(d), 3);
    cr_assert_eq(simcse_dataset_n_bad_rows(d), 0);
    cr_assert_eq(simcse_dataset_n_empty_lines(d), 0);
    expect_example(d, 0, "A man wearing a cowboy hat is playing a black guitar outside.", "A man is playing guitar.",
                   "The man is playing piano.");
    /* quoted commas */
    expect_example(d, 1, "Two sunbathers, a man and a woman, soak in the sun.", "Sunbathers are soaking in the sun.",
                   "People are fighting.");
    /* "" escapes (file line 237) */
    expect_example(d, 235,
                   "Pedestrians walk by a person set up in front of a business in New York called \"Globe-Slicers.\"",
                   "The pedestrian walked by Globe-Slicers.", "The man ran by the business.");
    expect_example(d, 2689, "A man is sweeping a large blue surface that has \"Rock Bowl\" written on it.",
                   "A man is sweeping a large blue surface that has \"Rock Bowl\" written on it.",
                   "The man set fire the large blue surface that has \"rock bowl\" written on it");
    /* the last row has no final newline; CRLF elsewhere */
    expect_example(d, 27559, "A group of people at a parade.", "The people are outdoors.",
                   "The people are hunting rabbits.");
    /* fetching out of order gives the same answers */
    expect_example(d, 1, "Two sunbathers, a man and a woman, soak in the sun.", "Sunbathers are soaking in the sun.",
                   "People are fighting.");
    simcse_example ex;
    cr_assert_eq(simcse_dataset_get(d, 27560, &ex), -1);
    cr_assert(strstr(simcse_last_error(), "out of range"));
    simcse_dataset_close(d);
    free(p);
}

Test(data_files, wiki_text_lines) {
    char *p = data_path("corpus/wiki1m_for_simcse.head.txt");
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, NULL);
    cr_assert_not_null(d, "%s", simcse_last_error());
    cr_assert_eq(simcse_dataset_kind(d), SIMCSE_DATA_TEXT);
    cr_assert_eq(simcse_dataset_n_fields(d), 1);
    cr_assert_eq(simcse_dataset_size(d), 11914);
    cr_assert_eq(simcse_dataset_n_empty_lines(d), 0);
    cr_assert_eq(simcse_dataset_was_gzip(d), 0);
    expect_example(d, 0, "YMCA in South Australia", NULL, NULL);
    expect_example(d, 11913,
                   "The stations have staircases, elevators and escalators from the street level to the platform "
                   "level which provide easy and comfortable access.",
                   NULL, NULL);
    simcse_dataset_close(d);
    free(p);
}

Test(data_files, enwiki_gzip_lines) {
    char *p = data_path("corpus/enwiki_sentences_150k.txt.gz");
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, NULL);
    cr_assert_not_null(d, "%s", simcse_last_error());
    cr_assert_eq(simcse_dataset_was_gzip(d), 1);
    cr_assert_eq(simcse_dataset_kind(d), SIMCSE_DATA_TEXT);
    cr_assert_eq(simcse_dataset_size(d), 150000);
    cr_assert_eq(simcse_dataset_n_empty_lines(d), 0);
    expect_example(d, 0,
                   "Jarred Shaw (born September 28, 1990) is an American professional basketball player for Trouville "
                   "of the Liga Uruguaya de B\xc3\xa1squetbol (LUB).",
                   NULL, NULL);
    expect_example(d, 74999,
                   "In April 2018, Hogg was threatened by a Sinclair Broadcast Group TV host Jamie Allman from station "
                   "KDNL-TV in St. Louis, who wrote a tweet threatening to insert a hot poker in his anus.",
                   NULL, NULL);
    expect_example(d, 149999, "In order for cellular RNA to be effective it must enter the cells intact.", NULL, NULL);
    simcse_dataset_close(d);
    free(p);
}

/* ---- text edge cases ---- */

Test(data_text, blank_lines_crlf_and_gzip) {
    const char *txt = "first\r\n\r\n   \t \n second with spaces \r\n\nlast no newline";
    char *plain = write_tmp_str(txt, ".txt");
    /* the same bytes gzip-compressed, under a name that does not say so */
    char *gzp = simcse_xmalloc(128);
    snprintf(gzp, 128, "/tmp/simcse_data_test_XXXXXX");
    int fd = mkstemp(gzp);
    cr_assert(fd >= 0);
    close(fd);
    gzFile g = gzopen(gzp, "wb");
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, txt, (unsigned)strlen(txt)), (int)strlen(txt));
    gzclose(g);
    const char *paths[2] = {plain, gzp};
    for (int k = 0; k < 2; k++) {
        simcse_dataset *d = simcse_dataset_open(paths[k], SIMCSE_DATA_AUTO, NULL);
        cr_assert_not_null(d, "%s", simcse_last_error());
        cr_assert_eq(simcse_dataset_was_gzip(d), k);
        cr_assert_eq(simcse_dataset_size(d), 3);
        cr_assert_eq(simcse_dataset_n_empty_lines(d), 3);
        expect_example(d, 0, "first", NULL, NULL);
        expect_example(d, 1, " second with spaces ", NULL, NULL);
        expect_example(d, 2, "last no newline", NULL, NULL);
        simcse_dataset_close(d);
    }
    unlink(plain);
    unlink(gzp);
    free(plain);
    free(gzp);
}

Test(data_text, empty_file_and_truncated_gzip_are_errors) {
    char *p = write_tmp_str("\n \n\r\n", ".txt");
    cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_TEXT, NULL));
    cr_assert(strstr(simcse_last_error(), p) && strstr(simcse_last_error(), "no examples"), "%s", simcse_last_error());
    unlink(p);
    free(p);
    /* gzip header then garbage */
    const unsigned char bad[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0x4b, 0x4c};
    p = write_tmp((const char *)bad, sizeof bad, ".gz");
    cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_AUTO, NULL));
    cr_assert(strstr(simcse_last_error(), "gzip"), "%s", simcse_last_error());
    unlink(p);
    free(p);
    cr_assert_null(simcse_dataset_open("/nonexistent/corpus.txt", SIMCSE_DATA_AUTO, NULL));
    cr_assert(strstr(simcse_last_error(), "/nonexistent/corpus.txt"));
}

Test(data_text, batch_is_field_major_copy) {
    char *p = write_tmp_str("a\nbb\nccc\ndddd\n", ".txt");
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_TEXT, NULL);
    cr_assert_not_null(d);
    simcse_text_batch tb = {0};
    int64_t idx[3] = {3, 0, 2};
    cr_assert_eq(simcse_dataset_get_batch(d, idx, 3, &tb), 0);
    cr_assert_eq(tb.n, 3);
    cr_assert_eq(tb.n_fields, 1);
    cr_assert_str_eq(tb.text[0], "dddd");
    cr_assert_str_eq(tb.text[1], "a");
    cr_assert_str_eq(tb.text[2], "ccc");
    cr_assert_eq(tb.len[2], 3);
    simcse_text_batch_free(&tb);
    simcse_dataset_close(d);
    unlink(p);
    free(p);
}

/* ---- CSV edge cases ---- */

Test(data_csv, reordered_columns_extra_column_quoted_newline_crlf) {
    const char *csv = "\xEF\xBB\xBFid,hard_neg,sent1,sent0\r\n"
                      "1,\"x \"\"y\"\"\",\"multi\r\nline\",z\r\n"
                      "\r\n"
                      "   \r\n"
                      "2, p ,q,r";
    char *p = write_tmp_str(csv, ".csv");
    simcse_data_options o = opts(0);
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, &o);
    cr_assert_not_null(d, "%s", simcse_last_error());
    cr_assert_eq(simcse_dataset_n_fields(d), 3);
    cr_assert_eq(simcse_dataset_size(d), 2);
    cr_assert_eq(simcse_dataset_n_empty_lines(d), 2);
    expect_example(d, 0, "z", "multi\r\nline", "x \"y\"");
    expect_example(d, 1, "r", "q", " p ");
    simcse_text_batch tb = {0};
    int64_t idx[2] = {1, 0};
    cr_assert_eq(simcse_dataset_get_batch(d, idx, 2, &tb), 0);
    cr_assert_eq(tb.n_fields, 3);
    const char *want[6] = {"r", "z", "q", "multi\r\nline", " p ", "x \"y\""};
    for (int k = 0; k < 6; k++) cr_assert_str_eq(tb.text[k], want[k]);
    simcse_text_batch_free(&tb);
    simcse_dataset_close(d);
    unlink(p);
    free(p);
}

Test(data_csv, pairs_without_hard_neg) {
    char *p = write_tmp_str("sent0,sent1\nA,B\nC,\"D, E\"\n", ".dat");
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, NULL); /* sniffed from the header */
    cr_assert_not_null(d, "%s", simcse_last_error());
    cr_assert_eq(simcse_dataset_kind(d), SIMCSE_DATA_CSV);
    cr_assert_eq(simcse_dataset_n_fields(d), 2);
    expect_example(d, 1, "C", "D, E", NULL);
    simcse_dataset_close(d);
    unlink(p);
    free(p);
}

typedef struct {
    const char *name, *csv;
    int bad_line;             /* line named in fatal mode */
    const char *message;      /* part of the fatal message */
    int64_t n_skip, bad_skip; /* examples and malformed rows in skip mode */
    const char *last_sent0;   /* sent0 of the last example in skip mode */
} broken_case;

static const broken_case k_broken[] = {
    {"wrong field count", "sent0,sent1,hard_neg\na,b,c\nd,e\nf,g,h\n", 3, "expected 3 fields", 2, 1, "f"},
    {"too many fields", "sent0,sent1,hard_neg\r\na,b,c\r\nd,e,f,g\r\nh,i,j", 3, "found 4", 2, 1, "h"},
    {"unterminated quote", "sent0,sent1,hard_neg\na,b,c\nd,\"e,f\ng,h,i\nj,k,l\n", 3, "unterminated quoted field", 3, 1,
     "j"},
    {"quote closed by a later row", "sent0,sent1,hard_neg\na,b,c\nd,\"e,f\ng,\"h\",i\nj,k,l\n", 3,
     "parse failed at line 4", 3, 1, "j"},
    {"stray quote", "sent0,sent1,hard_neg\na,b,c\nd,e\"x,f\ng,h,i\n", 3, "stray", 2, 1, "g"},
    {"empty required field", "sent0,sent1,hard_neg\na,b,c\n\nd,,f\ng,h,i\n", 4, "empty field 'sent1'", 2, 1, "g"},
    {"whitespace-only field", "sent0,sent1,hard_neg\na,b,c\nd,e,  \ng,h,i\n", 3, "empty field 'hard_neg'", 2, 1, "g"},
};

Test(data_csv, malformed_rows_fatal_names_file_and_line) {
    for (size_t k = 0; k < sizeof k_broken / sizeof k_broken[0]; k++) {
        const broken_case *c = &k_broken[k];
        char *p = write_tmp_str(c->csv, ".csv");
        simcse_data_options o = opts(0);
        cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_AUTO, &o), "%s: opened", c->name);
        char want[256];
        snprintf(want, sizeof want, "%s:%d: ", p, c->bad_line);
        cr_assert(strstr(simcse_last_error(), want), "%s: '%s' lacks '%s'", c->name, simcse_last_error(), want);
        cr_assert(strstr(simcse_last_error(), c->message), "%s: '%s' lacks '%s'", c->name, simcse_last_error(),
                  c->message);
        unlink(p);
        free(p);
    }
}

Test(data_csv, malformed_rows_skipped_and_counted) {
    for (size_t k = 0; k < sizeof k_broken / sizeof k_broken[0]; k++) {
        const broken_case *c = &k_broken[k];
        char *p = write_tmp_str(c->csv, ".csv");
        simcse_data_options o = opts(1);
        simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, &o);
        cr_assert_not_null(d, "%s: %s", c->name, simcse_last_error());
        cr_assert_eq(simcse_dataset_size(d), c->n_skip, "%s: %lld examples", c->name,
                     (long long)simcse_dataset_size(d));
        cr_assert_eq(simcse_dataset_n_bad_rows(d), c->bad_skip, "%s", c->name);
        simcse_example ex;
        cr_assert_eq(simcse_dataset_get(d, 0, &ex), 0);
        cr_assert_str_eq(ex.text[0], "a", "%s", c->name);
        cr_assert_eq(simcse_dataset_get(d, simcse_dataset_size(d) - 1, &ex), 0);
        cr_assert_str_eq(ex.text[0], c->last_sent0, "%s", c->name);
        for (int64_t i = 0; i < simcse_dataset_size(d); i++) {
            cr_assert_eq(simcse_dataset_get(d, i, &ex), 0);
            cr_assert_eq(ex.n_fields, 3);
            cr_assert_eq(strlen(ex.text[2]), 1, "%s: example %lld", c->name, (long long)i);
        }
        simcse_dataset_close(d);
        unlink(p);
        free(p);
    }
}

Test(data_csv, missing_header_columns) {
    char *p = write_tmp_str("sent0,foo,hard_neg\na,b,c\n", ".csv");
    cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_CSV, NULL));
    cr_assert(strstr(simcse_last_error(), "lacks the column 'sent1'"), "%s", simcse_last_error());
    cr_assert(strstr(simcse_last_error(), p));
    unlink(p);
    free(p);
    p = write_tmp_str("", ".csv");
    cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_CSV, NULL));
    cr_assert(strstr(simcse_last_error(), "no CSV header"), "%s", simcse_last_error());
    unlink(p);
    free(p);
    p = write_tmp_str("sent0,sent1,sent1\na,b,c\n", ".csv");
    cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_CSV, NULL));
    cr_assert(strstr(simcse_last_error(), "twice"), "%s", simcse_last_error());
    unlink(p);
    free(p);
    /* every row malformed in skip mode: no examples is an error */
    p = write_tmp_str("sent0,sent1\na\nb\n", ".csv");
    simcse_data_options o = opts(1);
    cr_assert_null(simcse_dataset_open(p, SIMCSE_DATA_CSV, &o));
    cr_assert(strstr(simcse_last_error(), "no examples"), "%s", simcse_last_error());
    unlink(p);
    free(p);
}

/* ---- order ---- */

static void assert_permutation(const int64_t *perm, int64_t n) {
    char *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; i < n; i++) {
        cr_assert(perm[i] >= 0 && perm[i] < n);
        cr_assert_eq(seen[perm[i]], 0);
        seen[perm[i]] = 1;
    }
    free(seen);
}

Test(data_order, permutation_deterministic_per_seed_and_epoch) {
    enum { N = 1000 };
    static int64_t a[N], b[N], c[N], e[N];
    simcse_shuffle_permutation(42, 0, N, a);
    simcse_shuffle_permutation(42, 0, N, b);
    simcse_shuffle_permutation(42, 1, N, c);
    simcse_shuffle_permutation(43, 0, N, e);
    assert_permutation(a, N);
    assert_permutation(c, N);
    assert_permutation(e, N);
    cr_assert(memcmp(a, b, sizeof a) == 0);
    int diff_epoch = 0, diff_seed = 0, fixed = 0;
    for (int i = 0; i < N; i++) {
        diff_epoch += a[i] != c[i];
        diff_seed += a[i] != e[i];
        fixed += a[i] == i;
    }
    cr_assert_gt(diff_epoch, N / 2);
    cr_assert_gt(diff_seed, N / 2);
    cr_assert_lt(fixed, 10); /* a shuffle, not the identity (expected ~1 fixed point) */
    int64_t one = 7;
    simcse_shuffle_permutation(1, 0, 1, &one);
    cr_assert_eq(one, 0);
}

Test(data_order, permutation_is_roughly_uniform) {
    /* position of element 0 over many epochs of n = 4: each of 4 places ~1/4 */
    int count[4] = {0};
    for (uint64_t ep = 0; ep < 4000; ep++) {
        int64_t p[4];
        simcse_shuffle_permutation(7, ep, 4, p);
        for (int i = 0; i < 4; i++)
            if (p[i] == 0) count[i]++;
    }
    for (int i = 0; i < 4; i++) cr_assert(count[i] > 850 && count[i] < 1150, "place %d: %d", i, count[i]);
}

Test(data_order, sampler_epochs_and_exact_resume) {
    simcse_sampler s;
    cr_assert_eq(simcse_sampler_init(&s, 20, 5, 1, 0), 0);
    cr_assert_eq(simcse_sampler_batches_per_epoch(&s, 7), 3);
    int64_t idx[7], epoch0[20];
    int got = 0;
    for (int k = 0; k < 3; k++) {
        int m = simcse_sampler_next(&s, 7, idx);
        cr_assert_eq(m, k < 2 ? 7 : 6);
        memcpy(epoch0 + got, idx, (size_t)m * sizeof *idx);
        got += m;
    }
    assert_permutation(epoch0, 20);
    int64_t perm[20];
    simcse_shuffle_permutation(5, 0, 20, perm);
    cr_assert(memcmp(perm, epoch0, sizeof perm) == 0);
    cr_assert_eq(s.pos.epoch, 0);
    cr_assert_eq(s.pos.index, 20);
    /* next epoch: one batch, then save the position */
    cr_assert_eq(simcse_sampler_next(&s, 7, idx), 7);
    cr_assert_eq(s.pos.epoch, 1);
    simcse_data_pos saved = s.pos;
    int64_t want[7], again[7];
    cr_assert_eq(simcse_sampler_next(&s, 7, want), 7);
    simcse_sampler r;
    cr_assert_eq(simcse_sampler_init(&r, 20, 5, 1, 0), 0);
    cr_assert_eq(simcse_sampler_set_pos(&r, saved), 0);
    cr_assert_eq(simcse_sampler_next(&r, 7, again), 7);
    cr_assert(memcmp(want, again, sizeof want) == 0);
    simcse_data_pos badpos = {0, 21};
    cr_assert_eq(simcse_sampler_set_pos(&r, badpos), -1);
    simcse_sampler_free(&s);
    simcse_sampler_free(&r);
    /* drop_last and no shuffle */
    cr_assert_eq(simcse_sampler_init(&s, 10, 5, 0, 1), 0);
    cr_assert_eq(simcse_sampler_batches_per_epoch(&s, 4), 2);
    cr_assert_eq(simcse_sampler_next(&s, 4, idx), 4);
    cr_assert_eq(idx[0], 0);
    cr_assert_eq(simcse_sampler_next(&s, 4, idx), 4);
    cr_assert_eq(idx[3], 7);
    cr_assert_eq(simcse_sampler_next(&s, 4, idx), 4); /* 8, 9 dropped: next epoch */
    cr_assert_eq(idx[0], 0);
    cr_assert_eq(s.pos.epoch, 1);
    cr_assert_eq(simcse_sampler_next(&s, 11, idx), -1);
    simcse_sampler_free(&s);
}

/* ---- packing ---- */

static simcse_tokenizer *load_tok(const char *name) {
    char rel[96];
    snprintf(rel, sizeof rel, "tokenizers/%s", name);
    char *dir = data_path(rel);
    simcse_tokenizer *t = simcse_tokenizer_load(dir);
    cr_assert_not_null(t, "%s", simcse_last_error());
    free(dir);
    return t;
}

static void check_layout(const simcse_token_batch *b, int pos_offset) {
    cr_assert_eq(b->offsets[0], 0);
    for (int s = 0; s < b->n_seq; s++) {
        cr_assert_eq(b->offsets[s + 1] - b->offsets[s], b->lens[s]);
        cr_assert(b->lens[s] >= 2 && b->lens[s] <= b->max_len);
        for (int t = 0; t < b->lens[s]; t++) {
            cr_assert_eq(b->pos_ids[b->offsets[s] + t], pos_offset + t);
            cr_assert_eq(b->type_ids[b->offsets[s] + t], 0);
        }
    }
    cr_assert_eq(b->offsets[b->n_seq], b->T);
}

/* NLI batches end to end: sampler -> dataset -> packing (one tokenizer load per test keeps the
 * sanitizer build quick). */
static void nli_batches(const simcse_tokenizer *tok) {
    char *p = data_path("nli/nli_for_simcse.subset27k.csv");
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, NULL);
    cr_assert_not_null(d, "%s", simcse_last_error());
    simcse_sampler s;
    cr_assert_eq(simcse_sampler_init(&s, simcse_dataset_size(d), 42, 1, 0), 0);
    simcse_text_batch tb = {0};
    simcse_token_batch b;
    cr_assert_eq(simcse_token_batch_init(&b, 3 * 64, 32), 0);
    int64_t idx[64];
    for (int step = 0; step < 5; step++) {
        int m = simcse_sampler_next(&s, 64, idx);
        cr_assert_eq(m, 64);
        cr_assert_eq(simcse_dataset_get_batch(d, idx, m, &tb), 0, "%s", simcse_last_error());
        cr_assert_eq(simcse_pack_batch(tok, &tb, 0, &b), 0, "%s", simcse_last_error());
        cr_assert_eq(b.n_seq, 192);
        check_layout(&b, 0);
    }
    simcse_sampler_free(&s);
    simcse_token_batch_free(&b);
    simcse_text_batch_free(&tb);
    simcse_dataset_close(d);
    free(p);
}

Test(data_pack, unsupervised_bert_two_views_truncation_nli) {
    simcse_tokenizer *tok = load_tok("bert-base-uncased");
    const char *sents[3] = {"hello world", "The",
                            "a very long sentence that will certainly be cut at the maximum length of eight"};
    simcse_text_batch tb = {0};
    cr_assert_eq(simcse_text_batch_set(&tb, sents, 3), 0);
    simcse_token_batch b;
    cr_assert_eq(simcse_token_batch_init(&b, 6, 8), 0);
    int32_t *ids0 = b.ids;
    cr_assert_eq(simcse_pack_batch(tok, &tb, 0, &b), 0, "%s", simcse_last_error());
    cr_assert_eq(b.B, 3);
    cr_assert_eq(b.n_views, 2);
    cr_assert_eq(b.n_seq, 6);
    check_layout(&b, 0);
    const int32_t hello[4] = {101, 7592, 2088, 102};
    cr_assert_eq(b.lens[0], 4);
    for (int t = 0; t < 4; t++) cr_assert_eq(b.ids[t], hello[t]);
    cr_assert_eq(b.lens[1], 3); /* [CLS] the [SEP] */
    cr_assert_eq(b.ids[5], 1996);
    cr_assert_eq(b.lens[2], 8); /* truncated, specials kept */
    cr_assert_eq(b.ids[b.offsets[2]], 101);
    cr_assert_eq(b.ids[b.offsets[3] - 1], 102);
    cr_assert_eq(b.n_at_max_len, 2);
    cr_assert_eq(b.T, 2 * (4 + 3 + 8));
    for (int s = 0; s < 3; s++) { /* view 2 = view 1 */
        cr_assert_eq(b.lens[3 + s], b.lens[s]);
        for (int t = 0; t < b.lens[s]; t++) cr_assert_eq(b.ids[b.offsets[3 + s] + t], b.ids[b.offsets[s] + t]);
    }
    /* buffers are reused, and a batch that does not fit is an error */
    cr_assert_eq(simcse_pack_batch(tok, &tb, 0, &b), 0);
    cr_assert_eq(b.ids, ids0);
    const char *four[4] = {"a", "b", "c", "d"};
    cr_assert_eq(simcse_text_batch_set(&tb, four, 4), 0);
    cr_assert_eq(simcse_pack_batch(tok, &tb, 0, &b), -1);
    cr_assert(strstr(simcse_last_error(), "capacity"), "%s", simcse_last_error());
    simcse_token_batch_free(&b);
    simcse_text_batch_free(&tb);
    nli_batches(tok);
    simcse_tokenizer_free(tok);
}

Test(data_pack, triplets_roberta_positions) {
    simcse_tokenizer *tok = load_tok("roberta-base");
    const char *csv = "sent0,sent1,hard_neg\nhello world,\"A man, walking.\",nobody\nx,y,z\n";
    char *p = write_tmp_str(csv, ".csv");
    simcse_dataset *d = simcse_dataset_open(p, SIMCSE_DATA_AUTO, NULL);
    cr_assert_not_null(d, "%s", simcse_last_error());
    simcse_text_batch tb = {0};
    int64_t idx[2] = {0, 1};
    cr_assert_eq(simcse_dataset_get_batch(d, idx, 2, &tb), 0);
    simcse_token_batch b;
    cr_assert_eq(simcse_token_batch_init(&b, 6, 0), 0);
    cr_assert_eq(b.max_len, 32);
    int pos_offset = simcse_tokenizer_pad_id(tok) + 1; /* RoBERTa: pad 1 -> positions from 2 */
    cr_assert_eq(pos_offset, 2);
    cr_assert_eq(simcse_pack_batch(tok, &tb, pos_offset, &b), 0, "%s", simcse_last_error());
    cr_assert_eq(b.n_views, 3);
    cr_assert_eq(b.n_seq, 6);
    check_layout(&b, 2);
    const int32_t hello[4] = {0, 42891, 232, 2};
    cr_assert_eq(b.lens[0], 4);
    for (int t = 0; t < 4; t++) cr_assert_eq(b.ids[t], hello[t]);
    cr_assert_eq(b.pos_ids[0], 2);
    cr_assert_eq(b.pos_ids[3], 5);
    /* sequence order: sent0 x B, sent1 x B, hard_neg x B */
    const char *order[6] = {"hello world", "x", "A man, walking.", "y", "nobody", "z"};
    for (int s = 0; s < 6; s++) {
        int32_t want[32];
        int n = simcse_tokenizer_encode(tok, order[s], strlen(order[s]), 32, want);
        cr_assert_eq(n, b.lens[s], "sequence %d", s);
        for (int t = 0; t < n; t++) cr_assert_eq(b.ids[b.offsets[s] + t], want[t], "sequence %d token %d", s, t);
    }
    /* plain sentences: one view */
    cr_assert_eq(simcse_pack_sentences(tok, order, NULL, 5, 2, &b), 0);
    cr_assert_eq(b.n_seq, 5);
    cr_assert_eq(b.n_views, 1);
    check_layout(&b, 2);
    simcse_token_batch_free(&b);
    simcse_text_batch_free(&tb);
    simcse_dataset_close(d);
    simcse_tokenizer_free(tok);
    unlink(p);
    free(p);
}
