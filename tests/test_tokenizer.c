/* Tokenizer tests: exact parity with Hugging Face on the committed fixtures
 * (tests/golden/make_tokenizer_fixtures.py), through both load paths, the
 * SQuAD and GPT-2 golden files from shared/data, bad input, batches, the CLI.
 *
 * Parity tests report every mismatching sentence (up to a few) before failing,
 * so a regression shows what differs, not just that something does.
 *
 * Not covered, on purpose: code points whose Unicode data differs between HF's
 * crates and utf8proc / PCRE2 (assigned or recategorized in Unicode 9-16; see
 * host/text/tokenizer_normalize.c and tokenizer_pretok.c). The fixture script
 * leaves those out of its code point sweep. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "simcse/common.h"
#include "simcse/tokenizer.h"
#include "tests/test_util.h"

#define FIXTURES "tests/golden/tokenizers"

/* ---- helpers ------------------------------------------------------------- */

static char *gz_slurp(const char *path, size_t *len) {
    gzFile g = gzopen(path, "rb");
    cr_assert_not_null(g, "cannot open %s", path);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    int k;
    while ((k = gzread(g, buf + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)k;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    gzclose(g);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* A file's lines (content modified in place: '\n' -> NUL). */
static char **split_lines(char *buf, size_t len, int *count) {
    int n = 0, cap = 1024;
    char **lines = malloc(sizeof(char *) * (size_t)cap);
    for (size_t i = 0; i < len;) {
        char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len;
        buf[e] = 0;
        if (n == cap) lines = realloc(lines, sizeof(char *) * (size_t)(cap *= 2));
        lines[n++] = buf + i;
        i = e + 1;
    }
    *count = n;
    return lines;
}

typedef struct {
    char **text;
    size_t *len;
    int n;
    char *store;
} sentences;

/* sentences.txt.gz: "\\" is a backslash, "\xHH" a raw byte. */
static sentences load_sentences(void) {
    sentences s = {0};
    size_t len;
    s.store = gz_slurp(FIXTURES "/sentences.txt.gz", &len);
    s.text = split_lines(s.store, len, &s.n);
    s.len = malloc(sizeof(size_t) * (size_t)s.n);
    for (int i = 0; i < s.n; i++) {
        char *p = s.text[i], *q = p;
        while (*p) {
            if (p[0] == '\\' && p[1] == '\\') {
                *q++ = '\\';
                p += 2;
            } else if (p[0] == '\\' && p[1] == 'x') {
                char hex[3] = {p[2], p[3], 0};
                *q++ = (char)strtol(hex, NULL, 16);
                p += 4;
            } else {
                *q++ = *p++;
            }
        }
        s.len[i] = (size_t)(q - s.text[i]);
    }
    return s;
}

static void free_sentences(sentences *s) {
    free(s->text);
    free(s->len);
    free(s->store);
}

/* Decompresses a committed tokenizer.json.gz into a temp file and loads it. */
static simcse_tokenizer *load_fixture_json(const char *name) {
    char gz[256], tmp[] = "/tmp/simcse_tokjsonXXXXXX";
    snprintf(gz, sizeof gz, FIXTURES "/%s/tokenizer.json.gz", name);
    size_t n;
    char *data = gz_slurp(gz, &n);
    int fd = mkstemp(tmp);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
    free(data);
    simcse_tokenizer *t = simcse_tokenizer_load_json(tmp);
    unlink(tmp);
    cr_assert_not_null(t, "%s: %s", name, simcse_last_error());
    return t;
}

static simcse_tokenizer *load_vocab_files(const char *name) {
    char a[512], b[512];
    simcse_tokenizer *t;
    if (!strcmp(name, "roberta-base")) {
        snprintf(a, sizeof a, "%s/tokenizers/roberta-base/vocab.json", test_data_dir());
        snprintf(b, sizeof b, "%s/tokenizers/roberta-base/merges.txt", test_data_dir());
        t = simcse_tokenizer_load_bpe(a, b);
    } else {
        snprintf(a, sizeof a, "%s/tokenizers/%s/vocab.txt", test_data_dir(), name);
        t = simcse_tokenizer_load_wordpiece(a, !strcmp(name, "bert-base-uncased"));
    }
    cr_assert_not_null(t, "%s: %s", name, simcse_last_error());
    return t;
}

static int parse_ids(char *line, int32_t *out, int cap) {
    int n = 0;
    for (char *tok = strtok(line, " "); tok && n < cap; tok = strtok(NULL, " ")) out[n++] = (int32_t)atoi(tok);
    return n;
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

/* Every fixture sentence at max_len 512 and 32 against the HF ids. */
static void check_parity(const char *name, simcse_tokenizer *t) {
    sentences s = load_sentences();
    char path[256];
    snprintf(path, sizeof path, FIXTURES "/%s/ids.txt.gz", name);
    size_t len;
    char *store = gz_slurp(path, &len);
    int nlines;
    char **lines = split_lines(store, len, &nlines);
    cr_assert_eq(nlines, 2 * s.n, "%s: %d id lines for %d sentences", name, nlines, s.n);
    static int32_t want[512], got[512];
    int bad = 0, total = 0;
    for (int i = 0; i < s.n; i++) {
        for (int k = 0; k < 2; k++) {
            int max_len = k ? 32 : 512;
            int nw = parse_ids(lines[2 * i + k], want, 512);
            int ng = simcse_tokenizer_encode(t, s.text[i], s.len[i], max_len, got);
            total++;
            if (ng == nw && !memcmp(want, got, sizeof(int32_t) * (size_t)nw)) continue;
            if (bad++ < 5) {
                fprintf(stderr, "%s: sentence %d at max_len %d differs: '%.*s'\n", name, i, max_len,
                        (int)(s.len[i] < 200 ? s.len[i] : 200), s.text[i]);
                print_ids("want", want, nw);
                print_ids("got ", got, ng);
            }
        }
    }
    fprintf(stderr, "%s: %d/%d encodings identical to HF\n", name, total - bad, total);
    cr_assert_eq(bad, 0, "%s: %d of %d encodings differ from HF", name, bad, total);
    free(lines);
    free(store);
    free_sentences(&s);
    simcse_tokenizer_free(t);
}

/* ---- parity -------------------------------------------------------------- */

Test(tokenizer_parity, bert_uncased_json) { check_parity("bert-base-uncased", load_fixture_json("bert-base-uncased")); }
Test(tokenizer_parity, bert_uncased_vocab_txt) {
    check_parity("bert-base-uncased", load_vocab_files("bert-base-uncased"));
}
Test(tokenizer_parity, bert_cased_json) { check_parity("bert-base-cased", load_fixture_json("bert-base-cased")); }
Test(tokenizer_parity, bert_cased_vocab_txt) { check_parity("bert-base-cased", load_vocab_files("bert-base-cased")); }
Test(tokenizer_parity, roberta_json) { check_parity("roberta-base", load_fixture_json("roberta-base")); }
Test(tokenizer_parity, roberta_vocab_json_merges) { check_parity("roberta-base", load_vocab_files("roberta-base")); }

/* The small seed tokenizers: added-token flags, add_prefix_space, BPE affixes,
 * fuse_unk, Sequence post-processor (features.txt.gz: seed, text, ids). */
Test(tokenizer_parity, feature_seeds) {
    size_t len;
    char *store = gz_slurp(FIXTURES "/features.txt.gz", &len);
    int n;
    char **lines = split_lines(store, len, &n);
    cr_assert_gt(n, 100);
    char loaded[128] = "";
    simcse_tokenizer *t = NULL;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char *name = lines[i], *text = strchr(name, '\t'), *ids = text ? strchr(text + 1, '\t') : NULL;
        cr_assert_not_null(ids, "features line %d", i + 1);
        *text++ = 0;
        *ids++ = 0;
        if (strcmp(name, loaded)) {
            char path[256];
            snprintf(path, sizeof path, "tests/fuzz/seeds/fuzz_tokenizer_json/%s", name);
            simcse_tokenizer_free(t);
            t = simcse_tokenizer_load_json(path);
            cr_assert_not_null(t, "%s", simcse_last_error());
            snprintf(loaded, sizeof loaded, "%s", name);
        }
        char *q = text; /* unescape in place: \\ and \xHH */
        for (char *p = text; *p;) {
            if (p[0] == '\\' && p[1] == 'x') {
                char hex[3] = {p[2], p[3], 0};
                *q++ = (char)strtol(hex, NULL, 16);
                p += 4;
            } else if (p[0] == '\\' && p[1] == '\\') {
                *q++ = '\\';
                p += 2;
            } else {
                *q++ = *p++;
            }
        }
        int32_t want[128], got[128];
        int nw = parse_ids(ids, want, 128), ng = simcse_tokenizer_encode(t, text, (size_t)(q - text), 128, got);
        if (ng != nw || memcmp(want, got, sizeof(int32_t) * (size_t)nw)) {
            fprintf(stderr, "%s: '%.*s' differs\n", name, (int)(q - text), text);
            print_ids("want", want, nw);
            print_ids("got ", got, ng);
            bad++;
        }
    }
    simcse_tokenizer_free(t);
    free(lines);
    free(store);
    cr_assert_eq(bad, 0, "%d of %d feature cases differ from HF", bad, n);
}

/* ---- golden files from shared/data --------------------------------------- */

static cJSON *load_gz_json(const char *path) {
    size_t n;
    char *data = gz_slurp(path, &n);
    cJSON *j = cJSON_ParseWithLength(data, n);
    free(data);
    cr_assert_not_null(j, "%s: bad JSON", path);
    return j;
}

static void check_squad(simcse_tokenizer *t) {
    char qp[512], ip[512];
    snprintf(qp, sizeof qp, "%s/tokenizers/testdata/squad_question_wordpiece_uncased.json.gz", test_data_dir());
    snprintf(ip, sizeof ip, "%s/tokenizers/testdata/squad_question_ids_uncased.json.gz", test_data_dir());
    cJSON *qs = load_gz_json(qp), *ids = load_gz_json(ip);
    int n = cJSON_GetArraySize(qs), bad = 0;
    cr_assert_eq(n, cJSON_GetArraySize(ids));
    cr_assert_eq(n, 10570);
    const cJSON *q = qs->child, *want = ids->child;
    for (int i = 0; i < n; i++, q = q->next, want = want->next) {
        const char *text = cJSON_GetObjectItem(q, "original")->valuestring;
        int32_t *got;
        int ng = simcse_tokenizer_tokenize(t, text, strlen(text), &got);
        int ok = ng == cJSON_GetArraySize(want);
        int k = 0;
        for (const cJSON *v = want->child; ok && v; v = v->next, k++) ok = got[k] == (int32_t)v->valuedouble;
        if (!ok && bad++ < 5) fprintf(stderr, "squad question %d differs: %s\n", i, text);
        free(got);
    }
    fprintf(stderr, "squad: %d/%d questions identical\n", n - bad, n);
    cr_assert_eq(bad, 0, "%d of %d SQuAD questions differ", bad, n);
    cJSON_Delete(qs);
    cJSON_Delete(ids);
    simcse_tokenizer_free(t);
}

Test(tokenizer_golden, squad_questions_vocab_txt) { check_squad(load_vocab_files("bert-base-uncased")); }
Test(tokenizer_golden, squad_questions_json) { check_squad(load_fixture_json("bert-base-uncased")); }

/* GPT-2 ids differ from RoBERTa's, the BPE pieces do not: compare pieces. */
static void check_gpt2(simcse_tokenizer *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizers/testdata/gpt2_encoded_tokens.json", test_data_dir());
    size_t n;
    char *data = simcse_read_file(path, &n);
    cr_assert_not_null(data, "%s", simcse_last_error());
    cJSON *j = cJSON_ParseWithLength(data, n);
    free(data);
    const char *text = cJSON_GetObjectItem(j, "text")->valuestring;
    const cJSON *pieces = cJSON_GetObjectItem(j, "bpe_tokens");
    int32_t *got;
    int ng = simcse_tokenizer_tokenize(t, text, strlen(text), &got);
    cr_assert_eq(ng, cJSON_GetArraySize(pieces), "%d pieces, want %d", ng, cJSON_GetArraySize(pieces));
    int k = 0;
    for (const cJSON *p = pieces->child; p; p = p->next, k++) {
        cr_assert_str_eq(simcse_tokenizer_id_to_token(t, got[k]), p->valuestring, "piece %d", k);
        cr_assert_eq(simcse_tokenizer_token_to_id(t, p->valuestring), got[k]);
    }
    free(got);
    cJSON_Delete(j);
    simcse_tokenizer_free(t);
}

Test(tokenizer_golden, gpt2_pieces_vocab_json) { check_gpt2(load_vocab_files("roberta-base")); }
Test(tokenizer_golden, gpt2_pieces_json) { check_gpt2(load_fixture_json("roberta-base")); }

/* ---- bad input ----------------------------------------------------------- */

static char *write_tmp(const char *content, char *path /* [64] */) {
    strcpy(path, "/tmp/simcse_tokbadXXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t n = strlen(content);
    cr_assert_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
    return path;
}

static void expect_json_error(const char *json, const char *problem) {
    char path[64];
    write_tmp(json, path);
    simcse_clear_error();
    simcse_tokenizer *t = simcse_tokenizer_load_json(path);
    const char *e = simcse_last_error();
    cr_assert_null(t, "loaded: %s", json);
    cr_assert(strstr(e, path) != NULL, "error does not name the file: %s", e);
    cr_assert(strstr(e, problem) != NULL, "error '%s' does not say '%s'", e, problem);
    cr_assert(strchr(e, '\n') == NULL);
    unlink(path);
}

Test(tokenizer_errors, missing_file) {
    cr_assert_null(simcse_tokenizer_load_json("/nonexistent/tokenizer.json"));
    cr_assert(strstr(simcse_last_error(), "/nonexistent/tokenizer.json"));
    cr_assert_null(simcse_tokenizer_load_wordpiece("/nonexistent/vocab.txt", 1));
    cr_assert(strstr(simcse_last_error(), "/nonexistent/vocab.txt"));
    cr_assert_null(simcse_tokenizer_load("/nonexistent"));
    cr_assert(strstr(simcse_last_error(), "/nonexistent"));
    cr_assert(strstr(simcse_last_error(), "no tokenizer.json"));
}

Test(tokenizer_errors, malformed_json) {
    expect_json_error("{\"model\": {", "invalid JSON");
    expect_json_error("[1, 2]", "expected a JSON object");
    expect_json_error("{\"version\": \"1.0\"}", "missing 'model'");
    expect_json_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "unknown model type 'Unigram'");
    expect_json_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": [\"a\"]}}", "model.vocab: expected an object");
    expect_json_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "empty vocabulary");
    expect_json_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": -3}}}", "token 'a'");
    expect_json_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "unk_token '[UNK]' is not in");
    expect_json_error(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a c\"]}}",
        "token 'c' is not in the vocabulary");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [[\"a\", \"b\"]]}}",
                      "merged token 'ab' is not in the vocabulary");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"abc\"]}}", "merges[0]");
    expect_json_error(
        "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"normalizer\": {\"type\": \"NFKC\"}}",
        "unsupported type 'NFKC'");
}

Test(tokenizer_errors, old_file_sets) {
    char v[64], m[64];
    write_tmp("", v);
    cr_assert_null(simcse_tokenizer_load_wordpiece(v, 1));
    cr_assert(strstr(simcse_last_error(), v) && strstr(simcse_last_error(), "empty vocabulary"), "%s",
              simcse_last_error());
    unlink(v);
    write_tmp("{\"a\": 0, \"b\": 1, \"ab\": 2}", v);
    write_tmp("#version: 0.2\na b\na x\n", m);
    cr_assert_null(simcse_tokenizer_load_bpe(v, m));
    cr_assert(strstr(simcse_last_error(), m) && strstr(simcse_last_error(), "merge 2") &&
                  strstr(simcse_last_error(), "token 'x' is not in the vocabulary"),
              "%s", simcse_last_error());
    unlink(m);
    write_tmp("a b c\n", m);
    cr_assert_null(simcse_tokenizer_load_bpe(v, m));
    cr_assert(strstr(simcse_last_error(), "line 1"), "%s", simcse_last_error());
    unlink(m);
    unlink(v);
    write_tmp("[1]", v);
    write_tmp("", m);
    cr_assert_null(simcse_tokenizer_load_bpe(v, m));
    cr_assert(strstr(simcse_last_error(), v) && strstr(simcse_last_error(), "expected an object"), "%s",
              simcse_last_error());
    unlink(m);
    unlink(v);
}

/* ---- encode, batch ------------------------------------------------------- */

Test(tokenizer_encode, truncation_keeps_special_tokens) {
    simcse_tokenizer *t = load_vocab_files("bert-base-uncased");
    int32_t ids[8];
    const char *s = "the cat sat on the mat with a hat";
    cr_assert_eq(simcse_tokenizer_encode(t, s, strlen(s), 5, ids), 5);
    cr_assert_eq(ids[0], 101);
    cr_assert_eq(ids[4], 102);
    cr_assert_eq(simcse_tokenizer_encode(t, s, strlen(s), 2, ids), 2);
    cr_assert_eq(simcse_tokenizer_encode(t, "", 0, 8, ids), 2);
    cr_assert_eq(simcse_tokenizer_encode(t, s, strlen(s), 1, ids), -1);
    cr_assert(strstr(simcse_last_error(), "max_len 1"));
    cr_assert_eq(simcse_tokenizer_num_special(t), 2);
    cr_assert_eq(simcse_tokenizer_vocab_size(t), 30522);
    cr_assert_eq(simcse_tokenizer_pad_id(t), 0);
    cr_assert(!simcse_tokenizer_is_bpe(t));
    simcse_tokenizer_free(t);
}

Test(tokenizer_encode, invalid_utf8_and_nul_bytes) {
    simcse_tokenizer *b = load_vocab_files("bert-base-uncased"), *r = load_vocab_files("roberta-base");
    /* every 1-3 byte string: must never crash, always frame with the specials */
    int32_t ids[64];
    char s[3];
    for (int x = 0; x < 256; x++)
        for (int y = 0; y < 256; y += 7) {
            s[0] = (char)x, s[1] = (char)y, s[2] = (char)(x ^ y);
            int n = simcse_tokenizer_encode(r, s, 3, 64, ids);
            cr_assert(n >= 2 && ids[0] == 0 && ids[n - 1] == 2);
            n = simcse_tokenizer_encode(b, s, 3, 64, ids);
            cr_assert(n >= 2 && ids[0] == 101 && ids[n - 1] == 102);
        }
    /* a lone invalid byte is U+FFFD: BERT's clean_text drops it, RoBERTa spells it out */
    cr_assert_eq(simcse_tokenizer_encode(b, "\xff", 1, 64, ids), 2);
    int n = simcse_tokenizer_encode(r, "\xff", 1, 64, ids);
    int32_t *want;
    int nw = simcse_tokenizer_tokenize(r, "\xEF\xBF\xBD", 3, &want);
    cr_assert_eq(n, nw + 2);
    cr_assert_arr_eq(ids + 1, want, sizeof(int32_t) * (size_t)nw);
    free(want);
    simcse_tokenizer_free(b);
    simcse_tokenizer_free(r);
}

/* Found by the fuzzer: an added token that normalizes to nothing (U+200B under
 * clean_text) once matched everywhere and looped forever. */
Test(tokenizer_encode, added_token_normalizing_to_nothing, .timeout = 10) {
    char path[64];
    write_tmp("{\"added_tokens\": [{\"id\": 3, \"content\": \"\\u200b\", \"normalized\": true},"
              " {\"id\": 4, \"content\": \"[X]\", \"normalized\": false}, {\"id\": 5, \"content\": "
              "\"\\u00e9\\u00ff\\u00c3\"}],"
              " \"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
              " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1, \"[\": 2}}}",
              path);
    simcse_tokenizer *t = simcse_tokenizer_load_json(path);
    unlink(path);
    cr_assert_not_null(t, "%s", simcse_last_error());
    int32_t ids[16];
    const char *s = "a [ a [X] \xe2\x80\x8b a";
    int n = simcse_tokenizer_encode(t, s, strlen(s), 16, ids);
    int32_t want[] = {1, 2, 1, 4, 1};
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(ids, want, sizeof want);
    simcse_tokenizer_free(t);
}

Test(tokenizer_encode, batch_pads_and_masks) {
    simcse_tokenizer *t = load_vocab_files("roberta-base");
    const char *texts[] = {"Hello world!", "", "A much longer sentence that goes on and on."};
    simcse_padded_batch b;
    cr_assert_eq(simcse_tokenizer_encode_batch(t, texts, 3, 8, &b), 0);
    cr_assert_eq(b.n, 3);
    cr_assert_eq(b.width, 8);
    cr_assert_eq(b.lens[1], 2);
    cr_assert_eq(b.lens[2], 8);
    for (int i = 0; i < 3; i++) {
        int32_t one[8];
        int n = simcse_tokenizer_encode(t, texts[i], strlen(texts[i]), 8, one);
        cr_assert_eq(n, b.lens[i]);
        for (int j = 0; j < 8; j++) {
            cr_assert_eq(b.mask[i * 8 + j], j < n);
            cr_assert_eq(b.ids[i * 8 + j], j < n ? one[j] : 1 /* <pad> */);
        }
    }
    simcse_padded_batch_free(&b);
    cr_assert_eq(simcse_tokenizer_encode_batch(t, texts, 2, 64, &b), 0);
    cr_assert_eq(b.width, b.lens[0]); /* padded to the longest, not to max_len */
    simcse_padded_batch_free(&b);
    simcse_tokenizer_free(t);
}

Test(tokenizer_encode, load_dir_prefers_tokenizer_json_then_vocab) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tokenizers/roberta-base", test_data_dir());
    simcse_tokenizer *t = simcse_tokenizer_load(dir);
    cr_assert_not_null(t, "%s", simcse_last_error());
    cr_assert(simcse_tokenizer_is_bpe(t));
    cr_assert_eq(simcse_tokenizer_vocab_size(t), 50265);
    simcse_tokenizer_free(t);
    /* vocab.txt + tokenizer_config.json (do_lower_case false) */
    char tmp[] = "/tmp/simcse_tokdirXXXXXX", path[600], cmd[1400];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(cmd, sizeof cmd, "cp %s/tokenizers/bert-base-cased/vocab.txt %s/", test_data_dir(), tmp);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp);
    FILE *f = fopen(path, "w");
    fputs("{\"do_lower_case\": false}", f);
    fclose(f);
    t = simcse_tokenizer_load(tmp);
    cr_assert_not_null(t, "%s", simcse_last_error());
    int32_t a[16], b[16];
    simcse_tokenizer *c = load_vocab_files("bert-base-cased");
    int na = simcse_tokenizer_encode(t, "Hello World", 11, 16, a),
        nb = simcse_tokenizer_encode(c, "Hello World", 11, 16, b);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(a, b, sizeof(int32_t) * (size_t)na);
    simcse_tokenizer_free(t);
    simcse_tokenizer_free(c);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    cr_assert_eq(system(cmd), 0);
}

/* ---- CLI ----------------------------------------------------------------- */

Test(tokenizer_cli, tokenize_stdin_lines) {
    char dir[512], cmd[1400];
    snprintf(dir, sizeof dir, "%s/tokenizers/bert-base-uncased", test_data_dir());
    snprintf(cmd, sizeof cmd, "printf 'Hello world!\\r\\n\\nThe cat sat.\\n' | %s tokenize --model %s --max-len 4",
             test_bin(), dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0);
    cr_assert_str_eq(out, "101 7592 2088 102\n101 102\n101 1996 4937 102\n");
    snprintf(cmd, sizeof cmd, "%s tokenize --model /nonexistent 2>&1 </dev/null", test_bin());
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    cr_assert(strstr(out, "simcse: error: ") == out && strstr(out, "/nonexistent"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s tokenize --help", test_bin());
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0);
    cr_assert(strstr(out, "--max-len"), "%s", out);
}
