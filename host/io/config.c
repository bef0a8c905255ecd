/* Hugging Face config.json for BERT and RoBERTa. See include/simcse/model.h.
 *
 * Design: strict on what changes the computation (architecture, sizes,
 * activation, position embedding type), lenient on everything else (unknown
 * keys such as torch_dtype, transformers_version, bos/eos ids are ignored).
 * Every error reads "FILE: key 'NAME': problem". Sizes are capped well above
 * any real model so that products of them cannot overflow later. Floats are
 * written with the shortest "%g" that reads back to the same float, so 1e-12
 * stays "1e-12" rather than 9.99999996e-13. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"
#include "simcse/model.h"

static int get_int(const char *path, const cJSON *root, const char *key, int required, int def, long lo, long hi,
                   int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return simcse_error("%s: key '%s': missing", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble != floor(j->valuedouble))
        return simcse_error("%s: key '%s': expected an integer", path, key);
    double d = j->valuedouble;
    if (d < (double)lo || d > (double)hi)
        return simcse_error("%s: key '%s': value %.0f out of range [%ld, %ld]", path, key, d, lo, hi);
    *out = (int)d;
    return 0;
}

static int get_float(const char *path, const cJSON *root, const char *key, int required, float def, double lo,
                     double hi, int lo_open, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return simcse_error("%s: key '%s': missing", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return simcse_error("%s: key '%s': expected a number", path, key);
    double d = j->valuedouble;
    if ((lo_open ? d <= lo : d < lo) || d >= hi)
        return simcse_error("%s: key '%s': value %g out of range %c%g, %g)", path, key, d, lo_open ? '(' : '[', lo, hi);
    *out = (float)d;
    return 0;
}

/* String key: NULL in *out when absent and not required. */
static int get_str(const char *path, const cJSON *root, const char *key, int required, const char **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!j || cJSON_IsNull(j)) {
        if (required) return simcse_error("%s: key '%s': missing", path, key);
        return 0;
    }
    if (!cJSON_IsString(j) || !j->valuestring) return simcse_error("%s: key '%s': expected a string", path, key);
    *out = j->valuestring;
    return 0;
}

static int parse_config(const char *path, const cJSON *root, simcse_config *c) {
    if (!cJSON_IsObject(root)) return simcse_error("%s: not a JSON object", path);
    const char *s;
    if (get_str(path, root, "model_type", 1, &s)) return -1;
    if (strcmp(s, "bert") == 0)
        c->arch = SIMCSE_ARCH_BERT;
    else if (strcmp(s, "roberta") == 0)
        c->arch = SIMCSE_ARCH_ROBERTA;
    else
        return simcse_error("%s: key 'model_type': unsupported value '%s' (expected 'bert' or 'roberta')", path, s);
    if (get_str(path, root, "hidden_act", 1, &s)) return -1;
    if (strcmp(s, "gelu") != 0)
        return simcse_error("%s: key 'hidden_act': unsupported value '%s' (only 'gelu')", path, s);
    if (get_str(path, root, "position_embedding_type", 0, &s)) return -1;
    if (s && strcmp(s, "absolute") != 0)
        return simcse_error("%s: key 'position_embedding_type': unsupported value '%s' (only 'absolute')", path, s);

    const long big = 1L << 24;
    if (get_int(path, root, "vocab_size", 1, 0, 1, big, &c->vocab_size) ||
        get_int(path, root, "hidden_size", 1, 0, 1, 1 << 16, &c->hidden) ||
        get_int(path, root, "num_hidden_layers", 1, 0, 1, 1024, &c->layers) ||
        get_int(path, root, "num_attention_heads", 1, 0, 1, 1 << 16, &c->heads) ||
        get_int(path, root, "intermediate_size", 1, 0, 1, 1 << 18, &c->intermediate) ||
        get_int(path, root, "max_position_embeddings", 1, 0, 1, 1 << 20, &c->max_positions) ||
        get_int(path, root, "type_vocab_size", 1, 0, 1, 1 << 16, &c->type_vocab_size))
        return -1;
    if (c->hidden % c->heads != 0)
        return simcse_error("%s: key 'num_attention_heads': %d does not divide hidden_size %d", path, c->heads,
                            c->hidden);
    int pad_def = c->arch == SIMCSE_ARCH_ROBERTA ? 1 : 0;
    if (get_int(path, root, "pad_token_id", 0, pad_def, 0, c->vocab_size - 1, &c->pad_token_id)) return -1;
    if (get_float(path, root, "layer_norm_eps", 1, 0, 0.0, 1.0, 1, &c->layer_norm_eps) ||
        get_float(path, root, "hidden_dropout_prob", 0, 0.1f, 0.0, 1.0, 0, &c->hidden_dropout) ||
        get_float(path, root, "attention_probs_dropout_prob", 0, 0.1f, 0.0, 1.0, 0, &c->attn_dropout))
        return -1;
    if (simcse_config_max_tokens(c) < 1)
        return simcse_error("%s: key 'max_position_embeddings': %d leaves no positions after the RoBERTa offset %d",
                            path, c->max_positions, simcse_config_position_offset(c));
    return 0;
}

int simcse_config_load(const char *path, simcse_config *cfg) {
    size_t len;
    char *text = simcse_read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t at = ep && ep >= text && ep <= text + len ? (size_t)(ep - text) : 0;
        free(text);
        return simcse_error("%s: not valid JSON (parse error at byte %zu)", path, at);
    }
    free(text);
    simcse_config c;
    memset(&c, 0, sizeof c);
    int rc = parse_config(path, root, &c);
    cJSON_Delete(root);
    if (rc == 0) *cfg = c;
    return rc;
}

int simcse_config_position_offset(const simcse_config *cfg) {
    return cfg->arch == SIMCSE_ARCH_ROBERTA ? cfg->pad_token_id + 1 : 0;
}

int simcse_config_max_tokens(const simcse_config *cfg) {
    return cfg->max_positions - simcse_config_position_offset(cfg);
}

/* Shortest %g that reads back as the same float. */
static void fmt_float(char *buf, size_t n, float v) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

int simcse_config_save(const char *path, const simcse_config *c) {
    if (c->arch != SIMCSE_ARCH_BERT && c->arch != SIMCSE_ARCH_ROBERTA)
        return simcse_error("%s: cannot save config: unknown architecture %d", path, (int)c->arch);
    int rob = c->arch == SIMCSE_ARCH_ROBERTA;
    char eps[32], hd[32], ad[32];
    fmt_float(eps, sizeof eps, c->layer_norm_eps);
    fmt_float(hd, sizeof hd, c->hidden_dropout);
    fmt_float(ad, sizeof ad, c->attn_dropout);
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "{\n"
                     "  \"architectures\": [\"%s\"],\n"
                     "  \"model_type\": \"%s\",\n"
                     "  \"vocab_size\": %d,\n"
                     "  \"hidden_size\": %d,\n"
                     "  \"num_hidden_layers\": %d,\n"
                     "  \"num_attention_heads\": %d,\n"
                     "  \"intermediate_size\": %d,\n"
                     "  \"hidden_act\": \"gelu\",\n"
                     "  \"hidden_dropout_prob\": %s,\n"
                     "  \"attention_probs_dropout_prob\": %s,\n"
                     "  \"max_position_embeddings\": %d,\n"
                     "  \"type_vocab_size\": %d,\n"
                     "  \"initializer_range\": 0.02,\n"
                     "  \"layer_norm_eps\": %s,\n"
                     "  \"pad_token_id\": %d,\n"
                     "  \"position_embedding_type\": \"absolute\",\n"
                     "  \"torch_dtype\": \"float32\"\n"
                     "}\n",
                     rob ? "RobertaModel" : "BertModel", rob ? "roberta" : "bert", c->vocab_size, c->hidden, c->layers,
                     c->heads, c->intermediate, hd, ad, c->max_positions, c->type_vocab_size, eps, c->pad_token_id);
    if (n < 0 || (size_t)n >= sizeof buf) return simcse_error("%s: config too long", path);
    return simcse_write_file_atomic(path, buf, (size_t)n);
}
