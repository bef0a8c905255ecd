/* safetensors reader/writer: conversions, round trip, sharded checkpoints, and
 * every kind of broken file (made in /tmp from a good one at test time). Each
 * error test checks the return code and that the message names the file and
 * the problem. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/safetensors.h"

#include "test_tmpdir.h"

#define BERT_ST "tests/golden/io/bert/model.safetensors"
#define SHARDED "tests/golden/io/bert_sharded"

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A safetensors image from a header string and a data region. */
static size_t make_st(uint8_t *out, const char *header, const void *data, size_t dlen) {
    size_t h = strlen(header);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(out + 8, header, h);
    if (dlen) memcpy(out + 8 + h, data, dlen);
    return 8 + h + dlen;
}

/* Rewrites the JSON header of a good file (data region kept as is). */
static void rewrite_header(const char *src, const char *dst, void (*edit)(cJSON *root)) {
    size_t len;
    char *buf = simcse_read_file(src, &len);
    cr_assert_not_null(buf);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (uint8_t)buf[i];
    cJSON *root = cJSON_ParseWithLength(buf + 8, h);
    cr_assert_not_null(root);
    edit(root);
    char *j = cJSON_PrintUnformatted(root);
    size_t jl = strlen(j);
    size_t out_len = 8 + jl + (len - 8 - h);
    uint8_t *out = malloc(out_len);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)jl >> (8 * i));
    memcpy(out + 8, j, jl);
    memcpy(out + 8 + jl, buf + 8 + h, len - 8 - h);
    write_bytes(dst, out, out_len);
    free(out);
    free(j);
    cJSON_Delete(root);
    free(buf);
}

static void assert_error_has(const char *a, const char *b) {
    const char *e = simcse_last_error();
    cr_assert(strstr(e, a) != NULL, "error '%s' should contain '%s'", e, a);
    if (b) cr_assert(strstr(e, b) != NULL, "error '%s' should contain '%s'", e, b);
}

/* ------------------------------------------------------------ conversions */

Test(io_safetensors, f16_and_bf16_conversion) {
    cr_assert_eq(simcse_f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(simcse_f16_to_f32(0xc000), -2.0f);
    cr_assert_eq(simcse_f16_to_f32(0x7bff), 65504.0f);
    cr_assert_eq(simcse_f16_to_f32(0x3555), 0x1.554p-2f);
    cr_assert_eq(simcse_f16_to_f32(0x0001), 0x1p-24f);     /* smallest subnormal */
    cr_assert_eq(simcse_f16_to_f32(0x03ff), 0x1.ff8p-15f); /* largest subnormal */
    cr_assert_eq(simcse_f16_to_f32(0x0400), 0x1p-14f);     /* smallest normal */
    float nz = simcse_f16_to_f32(0x8000);
    cr_assert(nz == 0.0f && signbit(nz));
    cr_assert(isinf(simcse_f16_to_f32(0x7c00)) && simcse_f16_to_f32(0x7c00) > 0);
    cr_assert(isinf(simcse_f16_to_f32(0xfc00)) && simcse_f16_to_f32(0xfc00) < 0);
    cr_assert(isnan(simcse_f16_to_f32(0x7e00)));
    cr_assert_eq(simcse_bf16_to_f32(0x3f80), 1.0f);
    cr_assert_eq(simcse_bf16_to_f32(0xc0a0), -5.0f);
    cr_assert_eq(simcse_bf16_to_f32(0x3e4d), 0x1.9ap-3f);
    cr_assert(isnan(simcse_bf16_to_f32(0x7fc0)));
}

Test(io_safetensors, parse_memory_all_float_dtypes) {
    /* F32 [2], F16 [2,1], BF16 [] (scalar), I64 [1] */
    uint8_t data[8 + 4 + 2 + 8];
    float f[2] = {1.5f, -0.25f};
    uint16_t h[2] = {0x3c00, 0xbc00}, b = 0x4040;
    int64_t i64 = 7;
    memcpy(data, f, 8);
    memcpy(data + 8, h, 4);
    memcpy(data + 12, &b, 2);
    memcpy(data + 14, &i64, 8);
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F16\",\"shape\":[2,1],\"data_offsets\":[8,12]},"
                      "\"__metadata__\":{\"format\":\"pt\",\"anything\":\"x\"},"
                      "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[12,14]},"
                      "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[14,22]}}";
    uint8_t img[512];
    size_t n = make_st(img, hdr, data, sizeof data);
    simcse_st_file *st;
    cr_assert_eq(simcse_st_parse(img, n, "mem", &st), 0, "%s", simcse_last_error());
    cr_assert_eq(st->n_tensors, 4);
    float out[2];
    const simcse_st_tensor *t = simcse_st_find(st, "a");
    cr_assert_not_null(t);
    cr_assert_eq(simcse_st_read_f32(t, out, 2), 0);
    cr_assert(out[0] == 1.5f && out[1] == -0.25f);
    t = simcse_st_find(st, "b");
    cr_assert(t && t->dtype == SIMCSE_ST_F16 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 1);
    cr_assert_eq(simcse_st_read_f32(t, out, 2), 0);
    cr_assert(out[0] == 1.0f && out[1] == -1.0f);
    t = simcse_st_find(st, "c");
    cr_assert(t && t->ndim == 0 && t->numel == 1);
    cr_assert_eq(simcse_st_read_f32(t, out, 1), 0);
    cr_assert_eq(out[0], 3.0f);
    cr_assert_null(simcse_st_find(st, "__metadata__"));
    cr_assert_null(simcse_st_find(st, "zz"));
    /* wrong element count */
    cr_assert_eq(simcse_st_read_f32(simcse_st_find(st, "a"), out, 1), -1);
    assert_error_has("mem", "'a'");
    /* I64 parses but cannot be read as float */
    t = simcse_st_find(st, "d");
    cr_assert_not_null(t);
    cr_assert_eq(simcse_st_read_f32(t, out, 1), -1);
    assert_error_has("mem: tensor 'd'", "dtype I64 is not supported");
    simcse_st_close(st);
}

/* ------------------------------------------------------------- round trip */

Test(io_safetensors, write_read_round_trip) {
    mk_tmpdir();
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1e-30f, 0.0f, 3.4e38f}, s = 42;
    simcse_st_entry e[4] = {
        {.name = "x.weight", .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "odd \"name\"\\", .ndim = 1, .shape = {3}, .data = b},
        {.name = "scalar", .ndim = 0, .data = &s},
        {.name = "empty", .ndim = 2, .shape = {0, 5}, .data = NULL},
    };
    char *p = tmp_path("rt.safetensors");
    cr_assert_eq(simcse_st_write_f32(p, e, 4), 0, "%s", simcse_last_error());
    /* header layout: length multiple of 8, metadata format pt */
    size_t len;
    char *raw = simcse_read_file(p, &len);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (uint8_t)raw[i];
    cr_assert_eq(h % 8, 0);
    cr_assert_eq(len, 8 + h + (6 + 3 + 1) * 4);
    cr_assert(strstr(raw + 8, "\"__metadata__\":{\"format\":\"pt\"}") != NULL);
    free(raw);

    simcse_st_file *st;
    cr_assert_eq(simcse_st_open(p, &st), 0, "%s", simcse_last_error());
    cr_assert_eq(st->n_tensors, 4);
    float out[6];
    const simcse_st_tensor *t = simcse_st_find(st, "x.weight");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == SIMCSE_ST_F32);
    cr_assert_eq(simcse_st_read_f32(t, out, 6), 0);
    cr_assert_eq(memcmp(out, a, sizeof a), 0);
    t = simcse_st_find(st, "odd \"name\"\\");
    cr_assert_not_null(t);
    cr_assert_eq(simcse_st_read_f32(t, out, 3), 0);
    cr_assert_eq(memcmp(out, b, sizeof b), 0);
    t = simcse_st_find(st, "scalar");
    cr_assert(t && t->ndim == 0);
    cr_assert_eq(simcse_st_read_f32(t, out, 1), 0);
    cr_assert_eq(out[0], 42.0f);
    t = simcse_st_find(st, "empty");
    cr_assert(t && t->numel == 0);
    cr_assert_eq(simcse_st_read_f32(t, out, 0), 0);
    simcse_st_close(st);
    /* no temporary file left behind */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 1", g_dir);
    cr_assert_eq(system(cmd), 0);
    free(p);
    rm_tmpdir();
}

Test(io_safetensors, writer_rejects_duplicates) {
    mk_tmpdir();
    float a = 1;
    simcse_st_entry e[2] = {{.name = "w", .ndim = 0, .data = &a}, {.name = "w", .ndim = 0, .data = &a}};
    char *p = tmp_path("dup.safetensors");
    cr_assert_eq(simcse_st_write_f32(p, e, 2), -1);
    assert_error_has(p, "'w' given twice");
    cr_assert(!simcse_file_exists(p));
    free(p);
    rm_tmpdir();
}

Test(io_safetensors, open_real_transformers_file) {
    simcse_st_file *st;
    cr_assert_eq(simcse_st_open(BERT_ST, &st), 0, "%s", simcse_last_error());
    const simcse_st_tensor *t = simcse_st_find(st, "embeddings.word_embeddings.weight");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 128 && t->shape[1] == 32);
    cr_assert_eq(strcmp(simcse_st_path(t), BERT_ST), 0);
    simcse_st_close(st);
}

/* ---------------------------------------------------------------- sharded */

Test(io_safetensors, sharded_index) {
    simcse_st_set *s;
    cr_assert_eq(simcse_st_open_dir(SHARDED, &s), 0, "%s", simcse_last_error());
    cr_assert_gt(s->n_files, 1);
    cr_assert(strstr(s->path, "model.safetensors.index.json") != NULL);
    simcse_st_set *one;
    cr_assert_eq(simcse_st_open_dir("tests/golden/io/bert", &one), 0, "%s", simcse_last_error());
    /* every tensor of the single file is in the shards, with the same bytes */
    const simcse_st_file *f = one->files[0];
    for (int i = 0; i < f->n_tensors; i++) {
        const simcse_st_tensor *a = &f->tensors[i], *b = simcse_st_set_find(s, a->name);
        cr_assert_not_null(b, "%s", a->name);
        cr_assert_eq(a->nbytes, b->nbytes);
        cr_assert_eq(memcmp(a->data, b->data, a->nbytes), 0, "%s", a->name);
    }
    simcse_st_set_close(one);
    simcse_st_set_close(s);
}

static void copy_file(const char *src, const char *dst) {
    size_t n;
    char *b = simcse_read_file(src, &n);
    cr_assert_not_null(b, "%s", simcse_last_error());
    write_bytes(dst, b, n);
    free(b);
}

static void copy_sharded(void) {
    const char *files[] = {"model.safetensors.index.json", "model-00001-of-00003.safetensors",
                           "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"};
    for (int i = 0; i < 4; i++) {
        char *s = simcse_path_join(SHARDED, files[i]), *d = tmp_path(files[i]);
        copy_file(s, d);
        free(s);
        free(d);
    }
}

Test(io_safetensors, sharded_missing_shard) {
    mk_tmpdir();
    copy_sharded();
    char *shard = tmp_path("model-00002-of-00003.safetensors");
    unlink(shard);
    simcse_st_set *s;
    cr_assert_eq(simcse_st_open_dir(g_dir, &s), -1);
    cr_assert_null(s);
    assert_error_has("model.safetensors.index.json", "model-00002-of-00003.safetensors");
    assert_error_has(shard, "No such file");
    free(shard);
    rm_tmpdir();
}

Test(io_safetensors, sharded_key_not_in_its_shard) {
    mk_tmpdir();
    copy_sharded();
    char *idx = tmp_path("model.safetensors.index.json");
    size_t n;
    char *txt = simcse_read_file(idx, &n);
    cJSON *root = cJSON_Parse(txt);
    cJSON *wm = cJSON_GetObjectItem(root, "weight_map");
    cJSON_ReplaceItemInObject(wm, "pooler.dense.weight", cJSON_CreateString("model-00001-of-00003.safetensors"));
    char *out = cJSON_Print(root);
    write_bytes(idx, out, strlen(out));
    simcse_st_set *s;
    cr_assert_eq(simcse_st_open_dir(g_dir, &s), -1);
    assert_error_has(idx, "'pooler.dense.weight' is not in its shard 'model-00001-of-00003.safetensors'");
    /* not an object */
    write_bytes(idx, "{\"weight_map\": 3}", 17);
    cr_assert_eq(simcse_st_open_dir(g_dir, &s), -1);
    assert_error_has(idx, "key 'weight_map'");
    /* path escaping the directory */
    const char *esc = "{\"weight_map\": {\"a\": \"../x.safetensors\"}}";
    write_bytes(idx, esc, strlen(esc));
    cr_assert_eq(simcse_st_open_dir(g_dir, &s), -1);
    assert_error_has(idx, "not a file name inside");
    free(out);
    cJSON_Delete(root);
    free(txt);
    free(idx);
    rm_tmpdir();
}

Test(io_safetensors, dir_without_weights) {
    mk_tmpdir();
    simcse_st_set *s;
    cr_assert_eq(simcse_st_open_dir(g_dir, &s), -1);
    assert_error_has(g_dir, "no model.safetensors");
    char *bin = tmp_path("pytorch_model.bin");
    write_bytes(bin, "x", 1);
    cr_assert_eq(simcse_st_open_dir(g_dir, &s), -1);
    assert_error_has(g_dir, "pytorch_model.bin is not supported");
    free(bin);
    rm_tmpdir();
}

/* ------------------------------------------------------------- bad files */

Test(io_safetensors, missing_file) {
    simcse_st_file *st = (simcse_st_file *)1;
    cr_assert_eq(simcse_st_open("/nonexistent/model.safetensors", &st), -1);
    cr_assert_null(st);
    assert_error_has("/nonexistent/model.safetensors", "cannot open");
}

Test(io_safetensors, truncated_file) {
    mk_tmpdir();
    size_t n;
    char *buf = simcse_read_file(BERT_ST, &n);
    cr_assert_not_null(buf);
    char *p = tmp_path("trunc.safetensors");
    /* cut in the data region: the last tensors' offsets run past the end */
    write_bytes(p, buf, n / 2);
    simcse_st_file *st;
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "past the end of the data");
    /* cut in the header */
    write_bytes(p, buf, 100);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "truncated file: header length");
    /* cut in the length */
    write_bytes(p, buf, 5);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "truncated file: 5 bytes");
    write_bytes(p, buf, 0);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "truncated file: 0 bytes");
    free(p);
    free(buf);
    rm_tmpdir();
}

Test(io_safetensors, absurd_header_length) {
    mk_tmpdir();
    char *p = tmp_path("absurd.safetensors");
    uint8_t img[64] = {0};
    img[7] = 0x7f; /* ~9e18 */
    memcpy(img + 8, "{}", 2);
    write_bytes(p, img, sizeof img);
    simcse_st_file *st;
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "header length 9151314442816847872 is absurd");
    /* 200 MB: over the cap even though it is a plausible number */
    memset(img, 0, 8);
    uint64_t h = 200000000;
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)(h >> (8 * i));
    write_bytes(p, img, sizeof img);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "is absurd");
    free(p);
    rm_tmpdir();
}

Test(io_safetensors, header_not_json) {
    mk_tmpdir();
    char *p = tmp_path("notjson.safetensors");
    uint8_t img[256];
    size_t n = make_st(img, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], ", NULL, 0);
    write_bytes(p, img, n);
    simcse_st_file *st;
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "header is not JSON");
    n = make_st(img, "[1, 2, 3]", NULL, 0);
    write_bytes(p, img, n);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "header is not a JSON object");
    n = make_st(img, "{} trailing", NULL, 0);
    write_bytes(p, img, n);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "trailing bytes");
    /* a pickle (pytorch_model.bin renamed) */
    static const uint8_t pickle[24] = {0x80, 0x02, 0x8a, 0x0a, 'l',  'f',  0xfc, 0x9c, 'F',  0xf9, ' ', 'j',
                                       0xa8, 'P',  0x19, '.',  0x80, 0x02, 'M',  0xe9, 0x03, '.',  0,   0};
    write_bytes(p, pickle, sizeof pickle);
    cr_assert_eq(simcse_st_open(p, &st), -1);
    assert_error_has(p, "header length");
    free(p);
    rm_tmpdir();
}

static void edit_offsets_past_end(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "pooler.dense.bias");
    cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
    cJSON_ReplaceItemInArray(off, 1, cJSON_CreateNumber(1e9));
}

static void edit_offsets_inconsistent(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias");
    cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
    double b = cJSON_GetArrayItem(off, 0)->valuedouble;
    cJSON_ReplaceItemInArray(off, 1, cJSON_CreateNumber(b + 64)); /* 16 floats, shape says 32 */
}

static void edit_offsets_reversed(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias");
    cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
    double e = cJSON_GetArrayItem(off, 1)->valuedouble;
    cJSON_ReplaceItemInArray(off, 0, cJSON_CreateNumber(e + 4));
}

static void edit_shape_negative(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias");
    cJSON_ReplaceItemInObject(t, "shape", cJSON_Parse("[-32]"));
}

static void edit_shape_fraction(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias");
    cJSON_ReplaceItemInObject(t, "shape", cJSON_Parse("[31.5]"));
}

static void edit_no_dtype(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias");
    cJSON_DeleteItemFromObject(t, "dtype");
}

static void edit_entry_not_object(cJSON *root) {
    cJSON_ReplaceItemInObject(root, "embeddings.LayerNorm.bias", cJSON_CreateString("F32"));
}

static void edit_duplicate(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias");
    cJSON_AddItemToObject(root, "embeddings.LayerNorm.bias", cJSON_Duplicate(t, 1));
}

/* The later of two same-sized tensors moved onto the earlier one: they share bytes. */
static void edit_offsets_overlap(cJSON *root) {
    cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "embeddings.LayerNorm.weight"), "data_offsets");
    cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "embeddings.LayerNorm.bias"), "data_offsets");
    cJSON *later = cJSON_GetArrayItem(w, 0)->valuedouble > cJSON_GetArrayItem(b, 0)->valuedouble ? w : b;
    cJSON *earlier = later == w ? b : w;
    cJSON_ReplaceItemInArray(later, 0, cJSON_CreateNumber(cJSON_GetArrayItem(earlier, 0)->valuedouble + 4));
    cJSON_ReplaceItemInArray(later, 1, cJSON_CreateNumber(cJSON_GetArrayItem(earlier, 1)->valuedouble + 4));
}

static void expect_bad_header(void (*edit)(cJSON *), const char *what) {
    mk_tmpdir();
    char *p = tmp_path("bad.safetensors");
    rewrite_header(BERT_ST, p, edit);
    simcse_st_file *st = (simcse_st_file *)1;
    cr_assert_eq(simcse_st_open(p, &st), -1, "expected failure for %s", what);
    cr_assert_null(st);
    assert_error_has(p, what);
    free(p);
    rm_tmpdir();
}

Test(io_safetensors, data_offsets_past_end) {
    expect_bad_header(edit_offsets_past_end, "tensor 'pooler.dense.bias': data_offsets");
    assert_error_has("past the end of the data", NULL);
}
Test(io_safetensors, data_offsets_inconsistent_with_shape) {
    expect_bad_header(edit_offsets_inconsistent, "tensor 'embeddings.LayerNorm.bias'");
    assert_error_has("hold 64 bytes but F32 shape needs 32 x 4", NULL);
}
Test(io_safetensors, data_offsets_reversed) { expect_bad_header(edit_offsets_reversed, "are reversed"); }
Test(io_safetensors, shape_negative) {
    expect_bad_header(edit_shape_negative, "shape[0] is not a non-negative integer");
}
Test(io_safetensors, shape_fraction) {
    expect_bad_header(edit_shape_fraction, "shape[0] is not a non-negative integer");
}
Test(io_safetensors, dtype_missing) { expect_bad_header(edit_no_dtype, "'dtype' missing"); }
Test(io_safetensors, entry_not_object) { expect_bad_header(edit_entry_not_object, "header entry is not an object"); }
Test(io_safetensors, duplicate_tensor) { expect_bad_header(edit_duplicate, "appears twice"); }
/* as the safetensors library's validate(): no two tensors share bytes */
Test(io_safetensors, data_offsets_overlap) { expect_bad_header(edit_offsets_overlap, "overlap tensor"); }

Test(io_safetensors, shape_overflow_and_many_dims) {
    uint8_t img[512];
    simcse_st_file *st;
    size_t n = make_st(img,
                       "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                       "\"data_offsets\":[0,0]}}",
                       NULL, 0);
    cr_assert_eq(simcse_st_parse(img, n, "mem", &st), -1);
    assert_error_has("mem: tensor 'a'", "overflows");
    n = make_st(img, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", "abcd", 4);
    cr_assert_eq(simcse_st_parse(img, n, "mem", &st), -1);
    assert_error_has("mem: tensor 'a'", "9 dimensions");
    n = make_st(img, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "abcd", 4);
    cr_assert_eq(simcse_st_parse(img, n, "mem", &st), -1);
    assert_error_has("mem: tensor 'a'", "two integers");
    /* unknown dtype: parses (size unchecked), reading fails naming it */
    n = make_st(img, "{\"a\":{\"dtype\":\"F4\",\"shape\":[8],\"data_offsets\":[0,4]}}", "abcd", 4);
    cr_assert_eq(simcse_st_parse(img, n, "mem", &st), 0, "%s", simcse_last_error());
    float out[8];
    cr_assert_eq(simcse_st_read_f32(simcse_st_find(st, "a"), out, 8), -1);
    assert_error_has("mem: tensor 'a'", "dtype F4");
    simcse_st_close(st);
    /* empty header object: no tensors, fine */
    n = make_st(img, "{}      ", NULL, 0);
    cr_assert_eq(simcse_st_parse(img, n, "mem", &st), 0);
    cr_assert_eq(st->n_tensors, 0);
    cr_assert_null(simcse_st_find(st, "a"));
    simcse_st_close(st);
}
