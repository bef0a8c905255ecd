/* Loading the older file sets: vocab.txt [+ tokenizer_config.json] (BERT) and
 * vocab.json + merges.txt (RoBERTa / GPT-2), and a model directory.
 *
 * Design choices:
 * - The file sets become the same settings HF's converters write to
 *   tokenizer.json (BertTokenizerFast / RobertaTokenizerFast), so both load
 *   paths give identical ids (the parity tests run both).
 * - Lines are read as HF reads them: vocab.txt line number = id, trailing
 *   whitespace trimmed; merges.txt skips "#version" and blank lines, each
 *   other line must be exactly "a b". */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* ---- the older file sets ------------------------------------------------- */

typedef struct {
    const char *unk, *cls, *sep, *pad, *mask;
    int lowercase, strip_accents, chinese, add_prefix_space;
} old_config;

/* A special-token entry of tokenizer_config.json: "tok" or {"content": "tok"}. */
static const char *config_token(const cJSON *cfg, const char *key, const char *dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* Registers the special tokens present in the vocabulary as added tokens,
 * and the template cls $A sep, as the transformers converters do. */
static int old_specials(simcse_tokenizer *t, const char *const *names, int n, const char *cls, const char *sep) {
    for (int i = 0; i < n; i++) {
        int32_t id = names[i] ? tok_map_get(&t->vocab, names[i], strlen(names[i])) : -1;
        if (id >= 0) tok_add_token(t, names[i], id, 0, 0, 0, 0);
    }
    int32_t c = tok_map_get(&t->vocab, cls, strlen(cls)), s = tok_map_get(&t->vocab, sep, strlen(sep));
    if (c >= 0 && s >= 0) {
        tok_append_ids(&t->tpl_pre, &t->n_pre, &c, 1, 0);
        tok_append_ids(&t->tpl_post, &t->n_post, &s, 1, 0);
    }
    return 0;
}

static simcse_tokenizer *load_wordpiece(const char *vocab_txt, const old_config *c) {
    size_t n;
    char *data = simcse_read_file(vocab_txt, &n);
    if (!data) return NULL;
    simcse_tokenizer *t = tok_new(vocab_txt);
    t->model = TOK_MODEL_WORDPIECE;
    int32_t id = 0;
    for (size_t i = 0; i < n; id++) {
        size_t j = i;
        while (j < n && data[j] != '\n') j++;
        size_t e = j; /* HF trims the end of each line */
        while (e > i && (data[e - 1] == '\r' || data[e - 1] == ' ' || data[e - 1] == '\t')) e--;
        if (id >= TOK_MAX_ID) {
            simcse_error("more than %d lines", TOK_MAX_ID);
            free(data);
            return tok_load_fail(t, vocab_txt);
        }
        tok_vocab_add(t, data + i, e - i, id);
        i = j + 1;
    }
    free(data);
    if (!t->vocab.count) {
        simcse_error("empty vocabulary");
        return tok_load_fail(t, vocab_txt);
    }
    t->has_bert_normalizer = t->clean_text = 1;
    t->chinese_chars = c->chinese;
    t->lowercase = c->lowercase;
    t->strip_accents = c->strip_accents < 0 ? c->lowercase : c->strip_accents;
    t->pre_tokenizer = TOK_PRE_BERT;
    free(t->subword_prefix);
    t->subword_prefix = simcse_xstrdup("##");
    t->unk_id = tok_map_get(&t->vocab, c->unk, strlen(c->unk));
    if (t->unk_id < 0) {
        simcse_error("unk token '%.60s' is not in the vocabulary", c->unk);
        return tok_load_fail(t, vocab_txt);
    }
    const char *names[] = {c->pad, c->unk, c->cls, c->sep, c->mask};
    old_specials(t, names, 5, c->cls, c->sep);
    if (tok_finish(t) < 0) return tok_load_fail(t, vocab_txt);
    return t;
}

static simcse_tokenizer *load_bpe(const char *vocab_json, const char *merges_txt, const old_config *c) {
    size_t n;
    char *data = simcse_read_file(vocab_json, &n);
    if (!data) return NULL;
    simcse_tokenizer *t = tok_new(vocab_json);
    t->model = TOK_MODEL_BPE;
    cJSON *root = cJSON_ParseWithLength(data, n);
    free(data);
    if (!root) {
        simcse_error("invalid JSON");
        return tok_load_fail(t, vocab_json);
    }
    int rc = tok_read_vocab(t, root, "vocabulary");
    cJSON_Delete(root);
    if (rc < 0) return tok_load_fail(t, vocab_json);

    data = simcse_read_file(merges_txt, &n);
    if (!data) { /* the message already names merges_txt */
        simcse_tokenizer_free(t);
        return NULL;
    }
    int rank = 0, line = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && data[j] != '\n') j++;
        size_t e = j;
        if (e > i && data[e - 1] == '\r') e--;
        line++;
        if (e > i && !(e - i >= 8 && !memcmp(data + i, "#version", 8))) {
            const char *sp = memchr(data + i, ' ', e - i);
            if (!sp || memchr(sp + 1, ' ', (size_t)(data + e - sp - 1)))
                rc = simcse_error("line %d: expected two tokens separated by one space", line);
            else
                rc = tok_add_merge(t, rank++, data + i, (size_t)(sp - data - i), sp + 1, (size_t)(data + e - sp - 1));
        }
        i = j + 1;
    }
    free(data);
    if (rc < 0) return tok_load_fail(t, merges_txt);
    t->pre_tokenizer = TOK_PRE_BYTELEVEL;
    t->add_prefix_space = c->add_prefix_space;
    t->use_regex = 1;
    /* RoBERTa files (<s> ... </s>) or GPT-2 files (only <|endoftext|>, no template);
     * RoBERTa's vocabulary also holds <|endoftext|>, but not as a special token. */
    const char *roberta[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}, *gpt2[] = {"<|endoftext|>"};
    if (tok_map_get(&t->vocab, "<s>", 3) >= 0)
        old_specials(t, roberta, 5, "<s>", "</s>");
    else
        old_specials(t, gpt2, 1, "<s>", "</s>");
    if (tok_finish(t) < 0) return tok_load_fail(t, vocab_json);
    return t;
}

static old_config default_config(int lowercase) {
    return (old_config){"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", lowercase, -1, 1, 0};
}

simcse_tokenizer *simcse_tokenizer_load_wordpiece(const char *vocab_txt, int lowercase) {
    old_config c = default_config(lowercase != 0);
    return load_wordpiece(vocab_txt, &c);
}

simcse_tokenizer *simcse_tokenizer_load_bpe(const char *vocab_json, const char *merges_txt) {
    old_config c = default_config(0);
    return load_bpe(vocab_json, merges_txt, &c);
}

simcse_tokenizer *simcse_tokenizer_load(const char *dir) {
    char *tj = simcse_path_join(dir, "tokenizer.json");
    char *vt = simcse_path_join(dir, "vocab.txt");
    char *vj = simcse_path_join(dir, "vocab.json");
    char *mt = simcse_path_join(dir, "merges.txt");
    char *cf = simcse_path_join(dir, "tokenizer_config.json");
    simcse_tokenizer *t = NULL;
    old_config c = default_config(1);
    cJSON *cfg = NULL;
    if (!simcse_file_exists(tj) && simcse_file_exists(cf)) {
        size_t n;
        char *data = simcse_read_file(cf, &n);
        if (!data) goto done;
        cfg = cJSON_ParseWithLength(data, n);
        free(data);
        if (!cJSON_IsObject(cfg)) {
            simcse_error("%s: invalid JSON", cf);
            goto done;
        }
        c.lowercase = tok_json_bool(cfg, "do_lower_case", 1);
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(cfg, "strip_accents");
        if (cJSON_IsBool(sa)) c.strip_accents = cJSON_IsTrue(sa);
        c.chinese = tok_json_bool(cfg, "tokenize_chinese_chars", 1);
        c.add_prefix_space = tok_json_bool(cfg, "add_prefix_space", 0);
        c.unk = config_token(cfg, "unk_token", c.unk);
        c.cls = config_token(cfg, "cls_token", c.cls);
        c.sep = config_token(cfg, "sep_token", c.sep);
        c.pad = config_token(cfg, "pad_token", c.pad);
        c.mask = config_token(cfg, "mask_token", c.mask);
    }
    if (simcse_file_exists(tj)) {
        t = simcse_tokenizer_load_json(tj);
    } else if (simcse_file_exists(vt)) {
        t = load_wordpiece(vt, &c);
    } else if (simcse_file_exists(vj) && simcse_file_exists(mt)) {
        c.add_prefix_space = cfg ? tok_json_bool(cfg, "add_prefix_space", 0) : 0;
        t = load_bpe(vj, mt, &c);
    } else {
        simcse_error("%s: no tokenizer.json, vocab.txt, or vocab.json + merges.txt", dir);
    }
done:
    cJSON_Delete(cfg);
    free(tj);
    free(vt);
    free(vj);
    free(mt);
    free(cf);
    return t;
}
