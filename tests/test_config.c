/* config.json: real transformers configs, defaults, every required key missing
 * in turn, wrong types and ranges, unsupported values, and save -> load. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/model.h"

#define BERT_CFG "tests/golden/io/bert/config.json"
#define ROBERTA_CFG "tests/golden/io/roberta/config.json"

static char g_path[64];

static void assert_error_has(const char *a, const char *b) {
    const char *e = simcse_last_error();
    cr_assert(strstr(e, a) != NULL, "error '%s' should contain '%s'", e, a);
    if (b) cr_assert(strstr(e, b) != NULL, "error '%s' should contain '%s'", e, b);
}

static void write_text(const char *text) {
    snprintf(g_path, sizeof g_path, "/tmp/simcse_io_cfgXXXXXX");
    int fd = mkstemp(g_path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* The bert fixture's config with one key changed (value NULL: removed). */
static void write_variant(const char *base, const char *key, cJSON *value) {
    size_t n;
    char *t = simcse_read_file(base, &n);
    cr_assert_not_null(t);
    cJSON *root = cJSON_Parse(t);
    free(t);
    if (value) {
        if (cJSON_HasObjectItem(root, key))
            cJSON_ReplaceItemInObject(root, key, value);
        else
            cJSON_AddItemToObject(root, key, value);
    } else {
        cJSON_DeleteItemFromObject(root, key);
    }
    char *s = cJSON_Print(root);
    write_text(s);
    free(s);
    cJSON_Delete(root);
}

static void expect_error(const char *key, const char *problem) {
    simcse_config c;
    cr_assert_eq(simcse_config_load(g_path, &c), -1, "key %s: expected an error", key);
    char want[128];
    snprintf(want, sizeof want, "%s: key '%s': ", g_path, key);
    assert_error_has(want, problem);
    unlink(g_path);
}

Test(io_config, bert_fixture) {
    simcse_config c;
    cr_assert_eq(simcse_config_load(BERT_CFG, &c), 0, "%s", simcse_last_error());
    cr_assert_eq(c.arch, SIMCSE_ARCH_BERT);
    cr_assert_eq(c.vocab_size, 128);
    cr_assert_eq(c.hidden, 32);
    cr_assert_eq(c.layers, 2);
    cr_assert_eq(c.heads, 4);
    cr_assert_eq(c.intermediate, 64);
    cr_assert_eq(c.max_positions, 64);
    cr_assert_eq(c.type_vocab_size, 2);
    cr_assert_eq(c.pad_token_id, 0);
    cr_assert_eq(c.layer_norm_eps, 1e-12f);
    cr_assert_eq(c.hidden_dropout, 0.1f);
    cr_assert_eq(c.attn_dropout, 0.1f);
    cr_assert_eq(simcse_config_position_offset(&c), 0);
    cr_assert_eq(simcse_config_max_tokens(&c), 64);
}

Test(io_config, roberta_fixture) {
    simcse_config c;
    cr_assert_eq(simcse_config_load(ROBERTA_CFG, &c), 0, "%s", simcse_last_error());
    cr_assert_eq(c.arch, SIMCSE_ARCH_ROBERTA);
    cr_assert_eq(c.type_vocab_size, 1);
    cr_assert_eq(c.pad_token_id, 1);
    cr_assert_eq(simcse_config_position_offset(&c), 2);
    cr_assert_eq(simcse_config_max_tokens(&c), 62);
}

Test(io_config, defaults) {
    simcse_config c;
    write_variant(BERT_CFG, "pad_token_id", NULL);
    cr_assert_eq(simcse_config_load(g_path, &c), 0, "%s", simcse_last_error());
    cr_assert_eq(c.pad_token_id, 0);
    unlink(g_path);
    write_variant(ROBERTA_CFG, "pad_token_id", NULL);
    cr_assert_eq(simcse_config_load(g_path, &c), 0, "%s", simcse_last_error());
    cr_assert_eq(c.pad_token_id, 1);
    unlink(g_path);
    write_variant(BERT_CFG, "hidden_dropout_prob", NULL);
    cr_assert_eq(simcse_config_load(g_path, &c), 0);
    cr_assert_eq(c.hidden_dropout, 0.1f);
    unlink(g_path);
    write_variant(BERT_CFG, "attention_probs_dropout_prob", cJSON_CreateNumber(0.0));
    cr_assert_eq(simcse_config_load(g_path, &c), 0);
    cr_assert_eq(c.attn_dropout, 0.0f);
    unlink(g_path);
    write_variant(BERT_CFG, "position_embedding_type", cJSON_CreateString("absolute"));
    cr_assert_eq(simcse_config_load(g_path, &c), 0);
    unlink(g_path);
    /* unknown keys are ignored */
    write_variant(BERT_CFG, "some_future_key", cJSON_CreateString("x"));
    cr_assert_eq(simcse_config_load(g_path, &c), 0);
    unlink(g_path);
}

Test(io_config, each_required_key_missing) {
    static const char *keys[] = {"model_type",
                                 "vocab_size",
                                 "hidden_size",
                                 "num_hidden_layers",
                                 "num_attention_heads",
                                 "intermediate_size",
                                 "max_position_embeddings",
                                 "type_vocab_size",
                                 "layer_norm_eps",
                                 "hidden_act"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        write_variant(BERT_CFG, keys[i], NULL);
        expect_error(keys[i], "missing");
    }
}

Test(io_config, wrong_types) {
    write_variant(BERT_CFG, "hidden_size", cJSON_CreateString("32"));
    expect_error("hidden_size", "expected an integer");
    write_variant(BERT_CFG, "num_hidden_layers", cJSON_CreateNumber(2.5));
    expect_error("num_hidden_layers", "expected an integer");
    write_variant(BERT_CFG, "vocab_size", cJSON_CreateTrue());
    expect_error("vocab_size", "expected an integer");
    write_variant(BERT_CFG, "layer_norm_eps", cJSON_CreateString("1e-12"));
    expect_error("layer_norm_eps", "expected a number");
    write_variant(BERT_CFG, "model_type", cJSON_CreateNumber(1));
    expect_error("model_type", "expected a string");
    write_variant(BERT_CFG, "hidden_act", cJSON_CreateArray());
    expect_error("hidden_act", "expected a string");
}

Test(io_config, out_of_range) {
    write_variant(BERT_CFG, "hidden_size", cJSON_CreateNumber(0));
    expect_error("hidden_size", "out of range");
    write_variant(BERT_CFG, "intermediate_size", cJSON_CreateNumber(-5));
    expect_error("intermediate_size", "out of range");
    write_variant(BERT_CFG, "vocab_size", cJSON_CreateNumber(1e12));
    expect_error("vocab_size", "out of range");
    write_variant(BERT_CFG, "num_attention_heads", cJSON_CreateNumber(5));
    expect_error("num_attention_heads", "does not divide hidden_size 32");
    write_variant(BERT_CFG, "pad_token_id", cJSON_CreateNumber(128));
    expect_error("pad_token_id", "out of range");
    write_variant(BERT_CFG, "layer_norm_eps", cJSON_CreateNumber(0));
    expect_error("layer_norm_eps", "out of range");
    write_variant(BERT_CFG, "hidden_dropout_prob", cJSON_CreateNumber(1.0));
    expect_error("hidden_dropout_prob", "out of range");
    write_variant(ROBERTA_CFG, "max_position_embeddings", cJSON_CreateNumber(2));
    expect_error("max_position_embeddings", "no positions after the RoBERTa offset 2");
}

Test(io_config, unsupported_values) {
    write_variant(BERT_CFG, "model_type", cJSON_CreateString("xlm-roberta"));
    expect_error("model_type", "unsupported value 'xlm-roberta'");
    write_variant(BERT_CFG, "hidden_act", cJSON_CreateString("gelu_new"));
    expect_error("hidden_act", "unsupported value 'gelu_new'");
    write_variant(BERT_CFG, "position_embedding_type", cJSON_CreateString("relative_key"));
    expect_error("position_embedding_type", "unsupported value 'relative_key'");
}

Test(io_config, malformed_json) {
    simcse_config c;
    write_text("{\"model_type\": \"bert\", \"hidden_size\": 32,,}");
    cr_assert_eq(simcse_config_load(g_path, &c), -1);
    assert_error_has(g_path, "not valid JSON");
    unlink(g_path);
    write_text("[1, 2]");
    cr_assert_eq(simcse_config_load(g_path, &c), -1);
    assert_error_has(g_path, "not a JSON object");
    unlink(g_path);
    write_text("");
    cr_assert_eq(simcse_config_load(g_path, &c), -1);
    assert_error_has(g_path, "not valid JSON");
    unlink(g_path);
}

Test(io_config, missing_file) {
    simcse_config c;
    cr_assert_eq(simcse_config_load("/nonexistent/config.json", &c), -1);
    assert_error_has("/nonexistent/config.json", "cannot open");
}

static void round_trip(const char *src) {
    simcse_config a, b;
    cr_assert_eq(simcse_config_load(src, &a), 0);
    a.layer_norm_eps = 1e-5f;
    a.hidden_dropout = 0.05f;
    char path[] = "/tmp/simcse_io_cfgsaveXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(simcse_config_save(path, &a), 0, "%s", simcse_last_error());
    cr_assert_eq(simcse_config_load(path, &b), 0, "%s", simcse_last_error());
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    size_t n;
    char *t = simcse_read_file(path, &n);
    cr_assert(strstr(t, "\"layer_norm_eps\": 1e-05") != NULL, "%s", t);
    cr_assert(strstr(t, "\"hidden_dropout_prob\": 0.05,") != NULL, "%s", t);
    cr_assert(strstr(t, a.arch == SIMCSE_ARCH_BERT ? "\"BertModel\"" : "\"RobertaModel\"") != NULL);
    cr_assert(strstr(t, "\"torch_dtype\": \"float32\"") != NULL);
    cJSON *j = cJSON_Parse(t);
    cr_assert_not_null(j, "saved config is not JSON");
    cJSON_Delete(j);
    free(t);
    unlink(path);
}

Test(io_config, save_load_round_trip) {
    round_trip(BERT_CFG);
    round_trip(ROBERTA_CFG);
}
