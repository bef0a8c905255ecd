/* Hugging Face + sentence-transformers export. Every file is written
 * atomically (temporary file, fsync, rename), so no file is ever half written.
 * avg_first_last and avg_top2 have no sentence-transformers Pooling
 * equivalent (it pools one layer only); those export as mean pooling of the
 * last layer and say so on stderr. */
#include "simcse/export.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "simcse/common.h"
#include "simcse/safetensors.h"

int simcse_mkdirs(const char *dir) {
    char buf[1024];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return simcse_error("%s: bad directory name", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return simcse_error("%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return 0;
}

static int write_json(const char *dir, const char *name, cJSON *j) {
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char *path = simcse_path_join(dir, name);
    size_t n = strlen(text);
    text = simcse_xrealloc(text, n + 2);
    text[n] = '\n';
    int rc = simcse_write_file_atomic(path, text, n + 1);
    free(text);
    free(path);
    return rc;
}

static int copy_file(const char *src_dir, const char *dst_dir, const char *name) {
    char *src = simcse_path_join(src_dir, name);
    int rc = 0;
    if (simcse_file_exists(src)) {
        size_t n;
        char *data = simcse_read_file(src, &n);
        if (!data)
            rc = -1;
        else {
            char *dst = simcse_path_join(dst_dir, name);
            rc = simcse_write_file_atomic(dst, data, n);
            free(dst);
            free(data);
        }
    }
    free(src);
    return rc;
}

static int export_tokenizer(const char *dir, const char *tok_dir, const simcse_model *m, int max_seq_len) {
    static const char *files[] = {
        "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"};
    if (strcmp(dir, tok_dir) != 0)
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
            if (copy_file(tok_dir, dir, files[i]) != 0) return -1;
    char *cfg_path = simcse_path_join(dir, "tokenizer_config.json");
    int have = simcse_file_exists(cfg_path);
    free(cfg_path);
    if (have) return 0;
    /* The old file sets carry no tokenizer_config.json: say what the files are. */
    cJSON *j = cJSON_CreateObject();
    int bert = m->cfg.arch == SIMCSE_ARCH_BERT;
    cJSON_AddStringToObject(j, "tokenizer_class", bert ? "BertTokenizer" : "RobertaTokenizer");
    if (bert) cJSON_AddBoolToObject(j, "do_lower_case", 1);
    cJSON_AddNumberToObject(j, "model_max_length", max_seq_len > 512 ? max_seq_len : 512);
    return write_json(dir, "tokenizer_config.json", j);
}

static int export_sentence_transformers(const simcse_model *m, const char *dir, simcse_pooler pooler, int apply_mlp,
                                        int max_seq_len) {
    const int H = m->cfg.hidden;
    cJSON *mods = cJSON_CreateArray();
    const char *names[3] = {"sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
                            "sentence_transformers.models.Dense"};
    const char *paths[3] = {"", "1_Pooling", "2_Dense"};
    int n_mods = apply_mlp ? 3 : 2;
    for (int i = 0; i < n_mods; i++) {
        cJSON *o = cJSON_CreateObject();
        char idx[8];
        snprintf(idx, sizeof idx, "%d", i);
        cJSON_AddNumberToObject(o, "idx", i);
        cJSON_AddStringToObject(o, "name", idx);
        cJSON_AddStringToObject(o, "path", paths[i]);
        cJSON_AddStringToObject(o, "type", names[i]);
        cJSON_AddItemToArray(mods, o);
    }
    if (write_json(dir, "modules.json", mods) != 0) return -1;

    cJSON *sb = cJSON_CreateObject();
    cJSON_AddNumberToObject(sb, "max_seq_length", max_seq_len);
    cJSON_AddBoolToObject(sb, "do_lower_case", 0);
    if (write_json(dir, "sentence_bert_config.json", sb) != 0) return -1;

    int cls = pooler == SIMCSE_POOL_CLS || pooler == SIMCSE_POOL_CLS_BEFORE_POOLER;
    if (pooler == SIMCSE_POOL_AVG_FIRST_LAST || pooler == SIMCSE_POOL_AVG_TOP2)
        fprintf(stderr,
                "simcse: warning: sentence-transformers has no %s pooling; the export uses mean pooling of "
                "the last layer (simcse encode --pooler %s reproduces the trained pooler)\n",
                simcse_pooler_name(pooler), simcse_pooler_name(pooler));
    char *pdir = simcse_path_join(dir, "1_Pooling");
    if (simcse_mkdirs(pdir) != 0) {
        free(pdir);
        return -1;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "word_embedding_dimension", H);
    cJSON_AddBoolToObject(p, "pooling_mode_cls_token", cls);
    cJSON_AddBoolToObject(p, "pooling_mode_mean_tokens", !cls);
    cJSON_AddBoolToObject(p, "pooling_mode_max_tokens", 0);
    cJSON_AddBoolToObject(p, "pooling_mode_mean_sqrt_len_tokens", 0);
    cJSON_AddBoolToObject(p, "pooling_mode_weightedmean_tokens", 0);
    cJSON_AddBoolToObject(p, "pooling_mode_lasttoken", 0);
    cJSON_AddBoolToObject(p, "include_prompt", 1);
    int rc = write_json(pdir, "config.json", p);
    free(pdir);
    if (rc != 0 || !apply_mlp) return rc;

    char *ddir = simcse_path_join(dir, "2_Dense");
    if (simcse_mkdirs(ddir) != 0) {
        free(ddir);
        return -1;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "in_features", H);
    cJSON_AddNumberToObject(d, "out_features", H);
    cJSON_AddBoolToObject(d, "bias", 1);
    cJSON_AddStringToObject(d, "activation_function", "torch.nn.modules.activation.Tanh");
    rc = write_json(ddir, "config.json", d);
    if (rc == 0) {
        const simcse_param *w = simcse_model_find(m, "pooler.dense.weight");
        const simcse_param *b = simcse_model_find(m, "pooler.dense.bias");
        simcse_st_entry e[2] = {
            {.name = "linear.weight", .ndim = 2, .shape = {H, H}, .data = m->data + w->offset},
            {.name = "linear.bias", .ndim = 1, .shape = {H}, .data = m->data + b->offset},
        };
        char *path = simcse_path_join(ddir, "model.safetensors");
        rc = simcse_st_write_f32(path, e, 2);
        free(path);
    }
    free(ddir);
    return rc;
}

int simcse_export(const simcse_model *m, const char *dir, const char *tokenizer_dir, simcse_pooler pooler,
                  int apply_mlp, int max_seq_len) {
    if (simcse_mkdirs(dir) != 0) return -1;
    char *path = simcse_path_join(dir, "model.safetensors");
    int rc = simcse_model_save_safetensors(m, path, "", 1);
    free(path);
    if (rc == 0) {
        path = simcse_path_join(dir, "config.json");
        rc = simcse_config_save(path, &m->cfg);
        free(path);
    }
    if (rc == 0) rc = export_tokenizer(dir, tokenizer_dir, m, max_seq_len);
    if (rc == 0) rc = export_sentence_transformers(m, dir, pooler, apply_mlp, max_seq_len);
    if (rc != 0) simcse_error_prefix("export to %s", dir);
    return rc;
}
