/* Model table, random init, loading real transformers directories (F32, BF16,
 * F16, sharded, prefixed, SimCSE's raw layout), saving and reloading, broken
 * model directories (made in /tmp from the good fixtures), and .npy files.
 * Values are checked against expected.json written by
 * tests/golden/make_io_fixtures.py from torch's own tensors. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/model.h"
#include "simcse/npy.h"
#include "simcse/safetensors.h"

#include "test_tmpdir.h"

#define IO "tests/golden/io/"

static void assert_error_has(const char *a, const char *b) {
    const char *e = simcse_last_error();
    cr_assert(strstr(e, a) != NULL, "error '%s' should contain '%s'", e, a);
    if (b) cr_assert(strstr(e, b) != NULL, "error '%s' should contain '%s'", e, b);
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void copy_file(const char *src_dir, const char *name) {
    char *s = simcse_path_join(src_dir, name), *d = tmp_path(name);
    size_t n;
    char *b = simcse_read_file(s, &n);
    cr_assert_not_null(b, "%s", simcse_last_error());
    write_bytes(d, b, n);
    free(b);
    free(s);
    free(d);
}

/* ------------------------------------------------------------------ table */

static simcse_config tiny_cfg(simcse_arch arch) {
    simcse_config c = {.arch = arch,
                       .vocab_size = 128,
                       .hidden = 32,
                       .layers = 2,
                       .heads = 4,
                       .intermediate = 64,
                       .max_positions = 64,
                       .type_vocab_size = arch == SIMCSE_ARCH_BERT ? 2 : 1,
                       .pad_token_id = arch == SIMCSE_ARCH_BERT ? 0 : 1,
                       .layer_norm_eps = 1e-12f,
                       .hidden_dropout = 0.1f,
                       .attn_dropout = 0.1f};
    return c;
}

Test(io_model, table_layout) {
    simcse_config c = tiny_cfg(SIMCSE_ARCH_BERT);
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), 0);
    cr_assert_eq(m.n_tensors, 5 + 16 * 2 + 2);
    size_t H = 32, I = 64, V = 128, P = 64, T = 2;
    size_t per_layer = 4 * (H * H + H) + 2 * H + (I * H + I) + (H * I + H) + 2 * H;
    cr_assert_eq(m.n_floats, V * H + P * H + T * H + 2 * H + 2 * per_layer + H * H + H);
    size_t off = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const simcse_param *p = &m.tensors[i];
        cr_assert_eq(p->offset, off, "%s", p->name);
        off += p->numel;
        int is_bias = strstr(p->name, ".bias") != NULL, is_ln = strstr(p->name, "LayerNorm") != NULL;
        cr_assert_eq(p->no_decay, is_bias || is_ln, "%s", p->name);
        cr_assert_eq(p->ndim, (is_bias || is_ln) ? 1 : 2, "%s", p->name);
    }
    cr_assert_eq(off, m.n_floats);
    cr_assert_str_eq(m.tensors[0].name, "embeddings.word_embeddings.weight");
    cr_assert_str_eq(m.tensors[4].name, "embeddings.LayerNorm.bias");
    cr_assert_str_eq(m.tensors[5].name, "encoder.layer.0.attention.self.query.weight");
    cr_assert_str_eq(m.tensors[20].name, "encoder.layer.0.output.LayerNorm.bias");
    cr_assert_str_eq(m.tensors[21 + 10].name, "encoder.layer.1.intermediate.dense.weight");
    cr_assert_str_eq(m.tensors[37].name, "pooler.dense.weight");
    cr_assert_str_eq(m.tensors[38].name, "pooler.dense.bias");
    const simcse_param *fc1 = simcse_model_find(&m, "encoder.layer.1.intermediate.dense.weight");
    const simcse_param *fc2 = simcse_model_find(&m, "encoder.layer.1.output.dense.weight");
    cr_assert(fc1 && fc1->shape[0] == 64 && fc1->shape[1] == 32);
    cr_assert(fc2 && fc2->shape[0] == 32 && fc2->shape[1] == 64);
    cr_assert_null(simcse_model_find(&m, "nope"));
    /* the bound views */
    cr_assert_eq(m.w.word_emb, m.data);
    cr_assert_eq(m.w.layer[1].fc1_w, m.data + fc1->offset);
    cr_assert_eq(m.w.layer[1].fc2_w, m.data + fc2->offset);
    cr_assert_eq(m.w.layer[0].ln2_b, m.data + m.tensors[20].offset);
    cr_assert_eq(m.w.mlp_w, m.data + m.tensors[37].offset);
    cr_assert_eq(m.w.mlp_b + H, m.data + m.n_floats);
    /* binding another buffer gives the same offsets */
    float *g = calloc(m.n_floats, sizeof *g);
    simcse_params p;
    simcse_params_bind(&m, g, &p);
    cr_assert_eq(p.layer[1].v_b - g, m.w.layer[1].v_b - m.data);
    cr_assert_eq(p.mlp_w - g, m.w.mlp_w - m.data);
    simcse_params_unbind(&p);
    cr_assert_null(p.layer);
    free(g);
    simcse_model_free(&m);
    cr_assert_null(m.data);
}

Test(io_model, init_rejects_bad_config) {
    simcse_config c = tiny_cfg(SIMCSE_ARCH_BERT);
    c.heads = 5;
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), -1);
    assert_error_has("invalid model configuration", NULL);
    cr_assert_null(m.data);
}

Test(io_model, init_random) {
    simcse_config c = tiny_cfg(SIMCSE_ARCH_ROBERTA);
    c.vocab_size = 1000;
    simcse_model m, m2;
    cr_assert_eq(simcse_model_init(&m, &c), 0);
    cr_assert_eq(simcse_model_init(&m2, &c), 0);
    simcse_model_init_random(&m, 1234);
    simcse_model_init_random(&m2, 1234);
    cr_assert_eq(memcmp(m.data, m2.data, m.n_floats * sizeof(float)), 0, "same seed, same weights");
    simcse_model_init_random(&m2, 1235);
    cr_assert_neq(memcmp(m.data, m2.data, m.n_floats * sizeof(float)), 0);
    for (int i = 0; i < m.n_tensors; i++) {
        const simcse_param *p = &m.tensors[i];
        const float *x = m.data + p->offset;
        if (strstr(p->name, "LayerNorm.weight")) {
            for (size_t k = 0; k < p->numel; k++) cr_assert_eq(x[k], 1.0f, "%s", p->name);
        } else if (strstr(p->name, ".bias")) {
            for (size_t k = 0; k < p->numel; k++) cr_assert_eq(x[k], 0.0f, "%s", p->name);
        } else {
            double s = 0, s2 = 0;
            for (size_t k = 0; k < p->numel; k++) s += x[k], s2 += (double)x[k] * x[k];
            double mean = s / p->numel, sd = sqrt(s2 / p->numel - mean * mean);
            cr_assert(fabs(mean) < 0.004 && fabs(sd - 0.02) < 0.004, "%s: mean %g sd %g", p->name, mean, sd);
        }
    }
    /* the word embedding is 1000 x 32 = 32000 draws: tight */
    double s = 0, s2 = 0;
    for (size_t k = 0; k < 32000; k++) s += m.w.word_emb[k], s2 += (double)m.w.word_emb[k] * m.w.word_emb[k];
    cr_assert(fabs(s / 32000) < 0.0005 && fabs(sqrt(s2 / 32000) - 0.02) < 0.0005);
    /* padding rows (pad_token_id 1) of the word and (RoBERTa) position tables */
    for (int h = 0; h < 32; h++) {
        cr_assert_eq(m.w.word_emb[32 + h], 0.0f);
        cr_assert_eq(m.w.pos_emb[32 + h], 0.0f);
    }
    cr_assert_neq(m.w.word_emb[0], 0.0f);
    /* a tensor's values do not depend on the table before it: layer 1's query
     * weight is the same in a model with a larger vocabulary */
    simcse_config c2 = c;
    c2.vocab_size = 50;
    simcse_model m3;
    cr_assert_eq(simcse_model_init(&m3, &c2), 0);
    simcse_model_init_random(&m3, 1234);
    cr_assert_eq(memcmp(m.w.layer[1].q_w, m3.w.layer[1].q_w, 32 * 32 * sizeof(float)), 0);
    simcse_model_free(&m);
    simcse_model_free(&m2);
    simcse_model_free(&m3);
}

/* ------------------------------------------------------------------ load */

static const float *tensor_by_name(const simcse_model *m, const char *name, size_t *numel) {
    if (strcmp(name, "mlp.weight") == 0) {
        *numel = (size_t)m->cfg.hidden * m->cfg.hidden;
        return m->w.mlp_w;
    }
    if (strcmp(name, "mlp.bias") == 0) {
        *numel = (size_t)m->cfg.hidden;
        return m->w.mlp_b;
    }
    const simcse_param *p = simcse_model_find(m, name);
    cr_assert_not_null(p, "%s", name);
    *numel = p->numel;
    return m->data + p->offset;
}

/* Compares against expected.json (torch's values). */
static void check_expected(const simcse_model *m, const char *dir) {
    char *path = simcse_path_join(dir, "expected.json");
    size_t n;
    char *t = simcse_read_file(path, &n);
    cr_assert_not_null(t, "%s", simcse_last_error());
    cJSON *root = cJSON_Parse(t);
    cr_assert_not_null(root);
    int count = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        size_t numel;
        const float *x = tensor_by_name(m, e->string, &numel);
        const cJSON *first = cJSON_GetObjectItem(e, "first");
        int k = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, first) {
            cr_assert_eq(x[k], (float)v->valuedouble, "%s[%d]: %.9g vs %.9g", e->string, k, x[k], v->valuedouble);
            k++;
        }
        double s = 0;
        for (size_t i = 0; i < numel; i++) s += x[i];
        double want = cJSON_GetObjectItem(e, "sum")->valuedouble;
        cr_assert(fabs(s - want) < 1e-9 * numel + 1e-12, "%s: sum %.12g vs %.12g", e->string, s, want);
        count++;
    }
    cr_assert_geq(count, 4);
    cJSON_Delete(root);
    free(t);
    free(path);
}

static void load_ok(simcse_model *m, const char *dir) {
    cr_assert_eq(simcse_model_load(m, dir), 0, "%s", simcse_last_error());
    check_expected(m, dir);
}

Test(io_model, load_bert) {
    simcse_model m;
    load_ok(&m, IO "bert");
    cr_assert_eq(m.cfg.arch, SIMCSE_ARCH_BERT);
    cr_assert_eq(m.has_mlp_weights, 1);
    simcse_model_free(&m);
}

Test(io_model, load_roberta_prefixed_with_lm_head) {
    simcse_model m;
    load_ok(&m, IO "roberta");
    cr_assert_eq(m.cfg.arch, SIMCSE_ARCH_ROBERTA);
    cr_assert_eq(m.has_mlp_weights, 0, "RobertaForMaskedLM has no pooler; lm_head must not be taken");
    for (int h = 0; h < 32; h++) cr_assert_eq(m.w.mlp_w[h], 0.0f);
    simcse_model_free(&m);
}

Test(io_model, load_bf16_and_f16) {
    simcse_model a, b;
    load_ok(&a, IO "bert_bf16");
    cr_assert_eq(a.has_mlp_weights, 1);
    load_ok(&b, IO "bert");
    /* bf16 keeps 8 significant bits */
    for (size_t i = 0; i < a.n_floats; i++)
        cr_assert(fabsf(a.data[i] - b.data[i]) <= fabsf(b.data[i]) * 0x1p-8f, "%zu: %g vs %g", i, a.data[i], b.data[i]);
    simcse_model_free(&a);
    simcse_model_free(&b);
    load_ok(&a, IO "roberta_f16");
    load_ok(&b, IO "roberta");
    for (size_t i = 0; i < a.n_floats; i++)
        cr_assert(fabsf(a.data[i] - b.data[i]) <= fabsf(b.data[i]) * 0x1p-11f + 0x1p-25f, "%zu", i);
    simcse_model_free(&a);
    simcse_model_free(&b);
}

Test(io_model, load_sharded_equals_single) {
    simcse_model a, b;
    load_ok(&a, IO "bert_sharded");
    load_ok(&b, IO "bert");
    cr_assert_eq(a.n_floats, b.n_floats);
    cr_assert_eq(memcmp(a.data, b.data, a.n_floats * sizeof(float)), 0);
    cr_assert_eq(a.has_mlp_weights, 1);
    simcse_model_free(&a);
    simcse_model_free(&b);
}

Test(io_model, load_simcse_raw_checkpoint) {
    simcse_model m;
    load_ok(&m, IO "simcse_raw"); /* mlp.dense wins over the zero decoy bert.pooler.dense */
    cr_assert_eq(m.has_mlp_weights, 1);
    cr_assert_eq(m.cfg.layers, 1);
    simcse_model_free(&m);
}

/* ------------------------------------------------------------------ save */

static void save_reload(const char *src, const char *prefix, int with_pooler) {
    mk_tmpdir();
    simcse_model a, b;
    cr_assert_eq(simcse_model_load(&a, src), 0, "%s", simcse_last_error());
    copy_file(src, "config.json");
    char *p = tmp_path("model.safetensors");
    cr_assert_eq(simcse_model_save_safetensors(&a, p, prefix, with_pooler), 0, "%s", simcse_last_error());
    simcse_st_file *st;
    cr_assert_eq(simcse_st_open(p, &st), 0);
    cr_assert_eq(st->n_tensors, a.n_tensors - (with_pooler ? 0 : 2));
    char key[160];
    snprintf(key, sizeof key, "%sembeddings.word_embeddings.weight", prefix);
    cr_assert_not_null(simcse_st_find(st, key));
    simcse_st_close(st);
    cr_assert_eq(simcse_model_load(&b, g_dir), 0, "%s", simcse_last_error());
    cr_assert_eq(b.has_mlp_weights, with_pooler);
    size_t n = with_pooler ? a.n_floats : a.n_floats - (size_t)(a.cfg.hidden + 1) * a.cfg.hidden;
    cr_assert_eq(memcmp(a.data, b.data, n * sizeof(float)), 0);
    simcse_model_free(&a);
    simcse_model_free(&b);
    free(p);
    rm_tmpdir();
}

Test(io_model, save_reload_bare) { save_reload(IO "bert", "", 1); }
Test(io_model, save_reload_prefixed) { save_reload(IO "roberta", "roberta.", 1); }
Test(io_model, save_reload_without_pooler) { save_reload(IO "bert", "bert.", 0); }

Test(io_model, save_dir_round_trip) {
    mk_tmpdir();
    simcse_config c = tiny_cfg(SIMCSE_ARCH_ROBERTA);
    simcse_model a, b;
    cr_assert_eq(simcse_model_init(&a, &c), 0);
    simcse_model_init_random(&a, 7);
    a.w.mlp_b[3] = 0.5f;
    char *d = tmp_path("export");
    cr_assert_eq(simcse_model_save_dir(&a, d, 1), 0, "%s", simcse_last_error());
    cr_assert_eq(simcse_model_save_dir(&a, d, 1), 0, "overwriting an existing export");
    cr_assert_eq(simcse_model_load(&b, d), 0, "%s", simcse_last_error());
    cr_assert_eq(memcmp(&a.cfg, &b.cfg, sizeof a.cfg), 0);
    cr_assert_eq(memcmp(a.data, b.data, a.n_floats * sizeof(float)), 0);
    cr_assert_eq(b.has_mlp_weights, 1);
    simcse_model_free(&a);
    simcse_model_free(&b);
    free(d);
    rm_tmpdir();
}

/* ------------------------------------------------------------ bad models */

/* Copies bert/ to the temp dir with the safetensors header edited. */
static void bad_copy(void (*edit)(cJSON *root)) {
    mk_tmpdir();
    copy_file(IO "bert", "config.json");
    size_t len;
    char *buf = simcse_read_file(IO "bert/model.safetensors", &len);
    cr_assert_not_null(buf);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (uint8_t)buf[i];
    cJSON *root = cJSON_ParseWithLength(buf + 8, h);
    edit(root);
    char *j = cJSON_PrintUnformatted(root);
    size_t jl = strlen(j), out_len = 8 + jl + (len - 8 - h);
    uint8_t *out = malloc(out_len);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)jl >> (8 * i));
    memcpy(out + 8, j, jl);
    memcpy(out + 8 + jl, buf + 8 + h, len - 8 - h);
    char *p = tmp_path("model.safetensors");
    write_bytes(p, out, out_len);
    free(p);
    free(out);
    free(j);
    cJSON_Delete(root);
    free(buf);
}

static void expect_load_error(const char *a, const char *b) {
    simcse_model m;
    memset(&m, 0x55, sizeof m);
    cr_assert_eq(simcse_model_load(&m, g_dir), -1);
    cr_assert_null(m.data);
    assert_error_has(a, b);
}

static void edit_remove_tensor(cJSON *root) { cJSON_DeleteItemFromObject(root, "encoder.layer.1.output.dense.bias"); }

static void edit_i64(cJSON *root) {
    /* I64 over the same bytes: [128, 16] x 8 bytes == [128, 32] x 4 */
    cJSON *t = cJSON_GetObjectItem(root, "embeddings.word_embeddings.weight");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I64"));
    cJSON_ReplaceItemInObject(t, "shape", cJSON_Parse("[128, 16]"));
}

static void edit_transposed(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(root, "encoder.layer.0.intermediate.dense.weight");
    cJSON_ReplaceItemInObject(t, "shape", cJSON_Parse("[32, 64]"));
}

static void edit_pooler_bias_missing(cJSON *root) { cJSON_DeleteItemFromObject(root, "pooler.dense.bias"); }

Test(io_model_bad, missing_tensor) {
    bad_copy(edit_remove_tensor);
    char *p = tmp_path("model.safetensors");
    expect_load_error(p, "tensor 'encoder.layer.1.output.dense.bias' missing");
    free(p);
    rm_tmpdir();
}

Test(io_model_bad, wrong_dtype) {
    bad_copy(edit_i64);
    char *p = tmp_path("model.safetensors");
    expect_load_error(p, "tensor 'embeddings.word_embeddings.weight': dtype I64 is not supported");
    free(p);
    rm_tmpdir();
}

Test(io_model_bad, shape_disagrees_with_config) {
    bad_copy(edit_transposed);
    char *p = tmp_path("model.safetensors");
    expect_load_error(p, "tensor 'encoder.layer.0.intermediate.dense.weight': shape [32, 64] does not match [64, 32]");
    assert_error_has("config.json", NULL);
    free(p);
    rm_tmpdir();
}

Test(io_model_bad, config_disagrees_with_weights) {
    bad_copy(edit_remove_tensor);
    copy_file(IO "bert", "model.safetensors");
    char *cfg = tmp_path("config.json");
    size_t n;
    char *t = simcse_read_file(cfg, &n);
    cJSON *root = cJSON_Parse(t);
    cJSON_ReplaceItemInObject(root, "vocab_size", cJSON_CreateNumber(30522));
    char *s = cJSON_Print(root);
    write_bytes(cfg, s, strlen(s));
    expect_load_error("model.safetensors: tensor 'embeddings.word_embeddings.weight': shape [128, 32] does not "
                      "match [30522, 32]",
                      NULL);
    free(s);
    cJSON_Delete(root);
    free(t);
    free(cfg);
    rm_tmpdir();
}

Test(io_model_bad, pooler_bias_missing) {
    bad_copy(edit_pooler_bias_missing);
    expect_load_error("tensor 'pooler.dense.bias' missing (its weight is there)", NULL);
    rm_tmpdir();
}

Test(io_model_bad, malformed_config) {
    mk_tmpdir();
    copy_file(IO "bert", "model.safetensors");
    char *cfg = tmp_path("config.json");
    write_bytes(cfg, "{\"model_type\": \"bert\",", 22);
    expect_load_error(cfg, "not valid JSON");
    write_bytes(cfg, "{\"model_type\": \"bert\"}", 22);
    expect_load_error(cfg, "missing");
    free(cfg);
    rm_tmpdir();
}

Test(io_model_bad, missing_files) {
    mk_tmpdir();
    char *cfg = tmp_path("config.json");
    expect_load_error(cfg, "cannot open");
    copy_file(IO "bert", "config.json");
    expect_load_error(g_dir, "no model.safetensors");
    free(cfg);
    simcse_model m;
    cr_assert_eq(simcse_model_load(&m, "/nonexistent/model"), -1);
    assert_error_has("/nonexistent/model/config.json", "cannot open");
    rm_tmpdir();
}

Test(io_model_bad, truncated_weights) {
    mk_tmpdir();
    copy_file(IO "bert", "config.json");
    size_t n;
    char *b = simcse_read_file(IO "bert/model.safetensors", &n);
    char *p = tmp_path("model.safetensors");
    write_bytes(p, b, n - 100);
    expect_load_error(p, "past the end of the data");
    free(p);
    free(b);
    rm_tmpdir();
}

Test(io_model_bad, sharded_missing_shard) {
    mk_tmpdir();
    copy_file(IO "bert_sharded", "config.json");
    copy_file(IO "bert_sharded", "model.safetensors.index.json");
    copy_file(IO "bert_sharded", "model-00001-of-00003.safetensors");
    copy_file(IO "bert_sharded", "model-00002-of-00003.safetensors");
    expect_load_error("model.safetensors.index.json: shard 'model-00003-of-00003.safetensors'", "No such file");
    rm_tmpdir();
}

/* ------------------------------------------------------------------- npy */

Test(io_npy, write_bytes_and_round_trip) {
    mk_tmpdir();
    float x[6] = {1, -2, 3.5f, 0, 1e-8f, 65504};
    char *p = tmp_path("e.npy");
    cr_assert_eq(simcse_npy_write_f32(p, x, 2, 3), 0, "%s", simcse_last_error());
    size_t n;
    char *b = simcse_read_file(p, &n);
    /* exactly what numpy.save writes for np.zeros((2,3), np.float32) */
    const char *hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    cr_assert_eq(n, 128 + 24);
    cr_assert_eq(memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10), 0);
    cr_assert_eq(memcmp(b + 10, hdr, strlen(hdr)), 0);
    for (size_t i = 10 + strlen(hdr); i < 127; i++) cr_assert_eq(b[i], ' ');
    cr_assert_eq(b[127], '\n');
    cr_assert_eq(memcmp(b + 128, x, 24), 0);
    free(b);
    float *y;
    int64_t r, c;
    cr_assert_eq(simcse_npy_read_f32(p, &y, &r, &c), 0, "%s", simcse_last_error());
    cr_assert(r == 2 && c == 3);
    cr_assert_eq(memcmp(x, y, sizeof x), 0);
    free(y);
    /* empty and large-row headers stay 64-aligned */
    cr_assert_eq(simcse_npy_write_f32(p, NULL, 0, 768), 0);
    cr_assert_eq(simcse_npy_read_f32(p, &y, &r, &c), 0, "%s", simcse_last_error());
    cr_assert(r == 0 && c == 768);
    free(y);
    free(p);
    rm_tmpdir();
}

static void npy_bad(const char *p, const void *bytes, size_t n, const char *problem) {
    write_bytes(p, bytes, n);
    float *y = (float *)1;
    int64_t r, c;
    cr_assert_eq(simcse_npy_read_f32(p, &y, &r, &c), -1, "expected '%s'", problem);
    cr_assert_null(y);
    assert_error_has(p, problem);
}

static size_t npy_image(char *buf, const char *dict, size_t data_bytes) {
    size_t total = 10 + strlen(dict) + 1, padded = (total + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((padded - 10) & 0xff);
    buf[9] = (char)((padded - 10) >> 8);
    memcpy(buf + 10, dict, strlen(dict));
    memset(buf + total - 1, ' ', padded - total);
    buf[padded - 1] = '\n';
    memset(buf + padded, 0, data_bytes);
    return padded + data_bytes;
}

Test(io_npy, reader_validates) {
    mk_tmpdir();
    char *p = tmp_path("bad.npy");
    char img[1024];
    size_t n;
    npy_bad(p, "hello world", 11, "bad magic");
    n = npy_image(img, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 48);
    npy_bad(p, img, n, "dtype '<i8' is not supported");
    n = npy_image(img, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24);
    npy_bad(p, img, n, "fortran_order");
    n = npy_image(img, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 96);
    npy_bad(p, img, n, "3-D arrays");
    n = npy_image(img, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20);
    npy_bad(p, img, n, "data is 20 bytes but shape (2, 3) needs 24");
    n = npy_image(img, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    img[6] = 9;
    npy_bad(p, img, n, "unsupported .npy version 9.0");
    img[6] = 1;
    npy_bad(p, img, 40, "truncated");
    npy_bad(p, "", 0, "bad magic");
    /* f8 and 1-D shapes are accepted (golden files written by numpy) */
    n = npy_image(img, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24);
    double d[3] = {0.5, -1, 1e300};
    memcpy(img + n - 24, d, 24);
    write_bytes(p, img, n);
    float *y;
    int64_t r, c;
    cr_assert_eq(simcse_npy_read_f32(p, &y, &r, &c), 0, "%s", simcse_last_error());
    cr_assert(r == 3 && c == 1 && y[0] == 0.5f && y[1] == -1.0f && isinf(y[2]));
    free(y);
    free(p);
    rm_tmpdir();
}

Test(io_npy, write_to_missing_dir_fails) {
    float x = 1;
    cr_assert_eq(simcse_npy_write_f32("/nonexistent/dir/e.npy", &x, 1, 1), -1);
    assert_error_has("/nonexistent/dir/e.npy", "cannot create");
}
