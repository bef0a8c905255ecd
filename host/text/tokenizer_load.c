/* Loading tokenizer.json (the HF `tokenizers` format).
 *
 * Design choices:
 * - JSON goes through cJSON; each section (model, added_tokens, normalizer,
 *   pre_tokenizer, post_processor) has its own small reader. A component kind
 *   we do not implement is an error that names it, never silently ignored,
 *   since ignoring it would break parity without anyone noticing.
 * - Every error names the file and the problem; the reader functions report
 *   the problem and the public entry points prefix the file name.
 * - Ids are capped (TOK_MAX_ID) so a hostile file cannot make id_to_token
 *   allocate gigabytes.
 * - tok_finish(), which every loader ends with, lives here: it calls into the
 *   stages, which the tokenizer object itself (tokenizer.c) never does. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"
#include "simcse/common.h"

/* The last step of every loader (here and in tokenizer_files.c): sets up the
 * pre-tokenizer's tables, normalizes the normalized added tokens and picks the
 * padding id. */
int tok_finish(simcse_tokenizer *t) {
    if (!t->vocab.count) return simcse_error("empty vocabulary");
    if (t->pre_tokenizer == TOK_PRE_BYTELEVEL && tok_bytelevel_init(t) < 0) return -1;
    if (t->model == TOK_MODEL_WORDPIECE && t->unk_id < 0) return simcse_error("WordPiece model without an unk token");
    /* Normalized added tokens are matched in normalized text, so they are
     * normalized once here, as HF does when it builds its matcher. */
    for (int i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (a->normalized && t->has_bert_normalizer) {
            tok_str norm = {0};
            tok_bert_normalize(t, a->content, a->len, &norm);
            free(a->content);
            a->content = norm.s ? norm.s : simcse_xstrdup("");
            a->len = norm.n;
        }
        if (a->len) t->added_first[(uint8_t)a->content[0]] = 1;
    }
    if (t->pad_id < 0) {
        int32_t p = tok_map_get(&t->vocab, "[PAD]", 5);
        if (p < 0) p = tok_map_get(&t->vocab, "<pad>", 5);
        t->pad_id = p < 0 ? 0 : p;
    }
    return 0;
}

simcse_tokenizer *tok_load_fail(simcse_tokenizer *t, const char *name) {
    simcse_error_prefix("%s", name);
    simcse_tokenizer_free(t);
    return NULL;
}

int tok_json_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A string field; NULL when absent or null; -1 via *bad when of another type. */
static const char *json_str(const cJSON *o, const char *key, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return NULL;
    if (cJSON_IsString(v)) return v->valuestring;
    *bad = 1;
    return NULL;
}

static int json_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= TOK_MAX_ID ||
        v->valuedouble != (double)(int)v->valuedouble)
        return -1;
    *id = (int32_t)v->valuedouble;
    return 0;
}

/* ---- model --------------------------------------------------------------- */

int tok_read_vocab(simcse_tokenizer *t, const cJSON *vocab, const char *where) {
    if (!cJSON_IsObject(vocab)) return simcse_error("%s: expected an object", where);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id;
        if (json_id(e, &id) < 0)
            return simcse_error("%s: token '%.80s': expected an id in [0, %d)", where, e->string, TOK_MAX_ID);
        tok_vocab_add(t, e->string, strlen(e->string), id);
    }
    if (!t->vocab.count) return simcse_error("empty vocabulary");
    return 0;
}

/* Records merge number `rank` (a, b), checked against the vocabulary as HF does. */
int tok_add_merge(simcse_tokenizer *t, int rank, const char *a, size_t na, const char *b, size_t nb) {
    int32_t ia = tok_map_get(&t->vocab, a, na), ib = tok_map_get(&t->vocab, b, nb);
    if (ia < 0 || ib < 0) {
        const char *bad = ia < 0 ? a : b;
        int nbad = (int)(ia < 0 ? na : nb);
        return simcse_error("merge %d ('%.*s %.*s'): token '%.*s' is not in the vocabulary", rank + 1, (int)na, a,
                            (int)nb, b, nbad, bad);
    }
    size_t plen = strlen(t->subword_prefix);
    size_t skip = plen <= nb ? plen : nb; /* HF drops the prefix from the right part */
    char stackbuf[256];
    size_t n = na + nb - skip;
    char *m = n <= sizeof stackbuf ? stackbuf : simcse_xmalloc(n);
    memcpy(m, a, na);
    memcpy(m + na, b + skip, nb - skip);
    int32_t id = tok_map_get(&t->vocab, m, n);
    if (id < 0) simcse_error("merge %d: merged token '%.*s' is not in the vocabulary", rank + 1, (int)n, m);
    if (m != stackbuf) free(m);
    if (id < 0) return -1;
    tok_merges_put(&t->merges, ia, ib, rank, id);
    return 0;
}

static int read_model(simcse_tokenizer *t, const cJSON *model) {
    if (!cJSON_IsObject(model)) return simcse_error("missing 'model'");
    int bad = 0;
    const char *type = json_str(model, "type", &bad);
    if (bad) return simcse_error("model.type: expected a string");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!type) type = merges ? "BPE" : "WordPiece"; /* old files have no type tag; HF infers it */
    if (!strcmp(type, "WordPiece")) {
        t->model = TOK_MODEL_WORDPIECE;
    } else if (!strcmp(type, "BPE")) {
        t->model = TOK_MODEL_BPE;
    } else {
        return simcse_error("unknown model type '%.60s' (WordPiece and BPE are supported)", type);
    }
    if (tok_read_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), "model.vocab") < 0) return -1;

    const char *unk = json_str(model, "unk_token", &bad);
    const char *prefix = json_str(model, "continuing_subword_prefix", &bad);
    if (bad) return simcse_error("model: unk_token / continuing_subword_prefix: expected a string");
    if (t->model == TOK_MODEL_WORDPIECE) {
        if (!unk) unk = "[UNK]";
        if (!prefix) prefix = "##";
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
        if (mx) {
            if (!cJSON_IsNumber(mx) || mx->valuedouble < 0 || mx->valuedouble > 1e9)
                return simcse_error("model.max_input_chars_per_word: expected a non-negative integer");
            t->max_input_chars = (int)mx->valuedouble;
        }
    }
    if (unk) {
        t->unk_id = tok_map_get(&t->vocab, unk, strlen(unk));
        if (t->unk_id < 0) return simcse_error("model.unk_token '%.60s' is not in the vocabulary", unk);
    }
    free(t->subword_prefix);
    t->subword_prefix = simcse_xstrdup(prefix ? prefix : "");
    if (t->model == TOK_MODEL_WORDPIECE) return 0;

    const char *suffix = json_str(model, "end_of_word_suffix", &bad);
    if (bad) return simcse_error("model.end_of_word_suffix: expected a string");
    free(t->end_suffix);
    t->end_suffix = simcse_xstrdup(suffix ? suffix : "");
    t->fuse_unk = tok_json_bool(model, "fuse_unk", 0);
    t->ignore_merges = tok_json_bool(model, "ignore_merges", 0);
    if (tok_json_bool(model, "byte_fallback", 0)) return simcse_error("model.byte_fallback is not supported");
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(drop) && drop->valuedouble > 0)
        return simcse_error("model.dropout is not supported (it makes encoding random)");
    if (!cJSON_IsArray(merges)) return simcse_error("model.merges: expected an array");
    int rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        /* Two spellings: "a b" (older files) or ["a", "b"] (tokenizers >= 0.20). */
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return simcse_error("model.merges[%d]: expected \"a b\", got '%.60s'", rank, s);
            if (tok_add_merge(t, rank, s, (size_t)(sp - s), sp + 1, strlen(sp + 1)) < 0) return -1;
        } else if (cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            const char *a = m->child->valuestring, *b = m->child->next->valuestring;
            if (tok_add_merge(t, rank, a, strlen(a), b, strlen(b)) < 0) return -1;
        } else {
            return simcse_error("model.merges[%d]: expected a string or a pair of strings", rank);
        }
    }
    return 0;
}

/* ---- the other sections -------------------------------------------------- */

static int read_added_tokens(simcse_tokenizer *t, const cJSON *arr) {
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr)) return simcse_error("added_tokens: expected an array");
    int i = 0;
    for (const cJSON *a = arr->child; a; a = a->next, i++) {
        int32_t id;
        int bad = 0;
        const char *content = json_str(a, "content", &bad);
        if (!cJSON_IsObject(a) || !content || bad || json_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id) < 0)
            return simcse_error("added_tokens[%d]: expected {\"id\": n, \"content\": \"...\"}", i);
        tok_add_token(t, content, id, tok_json_bool(a, "single_word", 0), tok_json_bool(a, "lstrip", 0),
                      tok_json_bool(a, "rstrip", 0), tok_json_bool(a, "normalized", 0));
    }
    return 0;
}

static int read_normalizer(simcse_tokenizer *t, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return 0;
    int bad = 0;
    const char *type = json_str(n, "type", &bad);
    if (!type || strcmp(type, "BertNormalizer"))
        return simcse_error("normalizer: unsupported type '%.60s' (BertNormalizer or null)", type ? type : "?");
    t->has_bert_normalizer = 1;
    t->clean_text = tok_json_bool(n, "clean_text", 1);
    t->chinese_chars = tok_json_bool(n, "handle_chinese_chars", 1);
    t->lowercase = tok_json_bool(n, "lowercase", 1);
    t->strip_accents = tok_json_bool(n, "strip_accents", t->lowercase); /* null: follow lowercase */
    return 0;
}

static int read_pre_tokenizer(simcse_tokenizer *t, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return 0;
    int bad = 0;
    const char *type = json_str(p, "type", &bad);
    if (type && !strcmp(type, "BertPreTokenizer")) {
        t->pre_tokenizer = TOK_PRE_BERT;
    } else if (type && !strcmp(type, "ByteLevel")) {
        t->pre_tokenizer = TOK_PRE_BYTELEVEL;
        t->add_prefix_space = tok_json_bool(p, "add_prefix_space", 1);
        t->use_regex = tok_json_bool(p, "use_regex", 1);
    } else {
        return simcse_error("pre_tokenizer: unsupported type '%.60s' (BertPreTokenizer, ByteLevel or null)",
                            type ? type : "?");
    }
    return 0;
}

void tok_append_ids(int32_t **v, int *n, const int32_t *ids, int k, int at_front) {
    *v = simcse_xrealloc(*v, (size_t)(*n + k + 1) * sizeof **v);
    if (at_front) {
        memmove(*v + k, *v, (size_t)*n * sizeof **v);
        memcpy(*v, ids, (size_t)k * sizeof **v);
    } else {
        memcpy(*v + *n, ids, (size_t)k * sizeof **v);
    }
    *n += k;
}

/* TemplateProcessing "single": ids of special tokens before and after $A. */
static int read_template(const cJSON *p, int32_t **pre, int *npre, int32_t **post, int *npost) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single)) return simcse_error("post_processor.single: expected an array");
    int seen_a = 0, i = 0;
    for (const cJSON *it = single->child; it; it = it->next, i++) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        if (sq) {
            if (seen_a++) return simcse_error("post_processor.single: more than one sequence");
            continue;
        }
        int bad = 0;
        const char *name = json_str(sp, "id", &bad);
        if (!name) return simcse_error("post_processor.single[%d]: expected SpecialToken or Sequence", i);
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(specials, name);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(tok, "ids");
        if (!cJSON_IsArray(ids)) return simcse_error("post_processor.special_tokens: no ids for '%.60s'", name);
        for (const cJSON *v = ids->child; v; v = v->next) {
            int32_t id;
            if (json_id(v, &id) < 0) return simcse_error("post_processor.special_tokens['%.60s']: bad id", name);
            if (seen_a)
                tok_append_ids(post, npost, &id, 1, 0);
            else
                tok_append_ids(pre, npre, &id, 1, 0);
        }
    }
    if (!seen_a) return simcse_error("post_processor.single: no $A sequence");
    return 0;
}

/* One post-processor; nested ones (Sequence) wrap what came before. */
static int read_post_processor(simcse_tokenizer *t, const cJSON *p, int depth) {
    if (!p || cJSON_IsNull(p)) return 0;
    if (depth > 8) return simcse_error("post_processor: nested too deeply");
    int bad = 0;
    const char *type = json_str(p, "type", &bad);
    if (!type) return simcse_error("post_processor: missing type");
    if (!strcmp(type, "ByteLevel")) return 0; /* only moves offsets */
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors");
        if (!cJSON_IsArray(list)) return simcse_error("post_processor.processors: expected an array");
        for (const cJSON *q = list->child; q; q = q->next)
            if (read_post_processor(t, q, depth + 1) < 0) return -1;
        return 0;
    }
    int32_t *pre = NULL, *post = NULL;
    int npre = 0, npost = 0, rc = 0;
    if (!strcmp(type, "TemplateProcessing")) {
        rc = read_template(p, &pre, &npre, &post, &npost);
    } else if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        int32_t cls, sep;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(p, "cls"), *s = cJSON_GetObjectItemCaseSensitive(p, "sep");
        if (cJSON_GetArraySize(c) != 2 || cJSON_GetArraySize(s) != 2 || json_id(cJSON_GetArrayItem(c, 1), &cls) < 0 ||
            json_id(cJSON_GetArrayItem(s, 1), &sep) < 0) {
            rc = simcse_error("post_processor: cls / sep: expected [\"token\", id]");
        } else {
            tok_append_ids(&pre, &npre, &cls, 1, 0);
            tok_append_ids(&post, &npost, &sep, 1, 0);
        }
    } else {
        rc = simcse_error("post_processor: unsupported type '%.60s'", type);
    }
    if (rc == 0) {
        tok_append_ids(&t->tpl_pre, &t->n_pre, pre, npre, 1);
        tok_append_ids(&t->tpl_post, &t->n_post, post, npost, 0);
    }
    free(pre);
    free(post);
    return rc;
}

simcse_tokenizer *simcse_tokenizer_load_json_mem(const char *data, size_t len, const char *name) {
    simcse_tokenizer *t = tok_new(name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= data && at <= data + len ? (size_t)(at - data) : 0;
        simcse_error("invalid JSON near byte %zu", off);
        return tok_load_fail(t, name);
    }
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        simcse_error("expected a JSON object at the top level");
    } else if (read_model(t, cJSON_GetObjectItemCaseSensitive(root, "model")) == 0 &&
               read_added_tokens(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) == 0 &&
               read_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer")) == 0 &&
               read_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")) == 0 &&
               read_post_processor(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), 0) == 0) {
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
        int32_t pid;
        if (cJSON_IsObject(pad) && json_id(cJSON_GetObjectItemCaseSensitive(pad, "pad_id"), &pid) == 0) t->pad_id = pid;
        rc = tok_finish(t);
    }
    cJSON_Delete(root);
    if (rc < 0) return tok_load_fail(t, name);
    return t;
}

simcse_tokenizer *simcse_tokenizer_load_json(const char *path) {
    size_t n;
    char *data = simcse_read_file(path, &n);
    if (!data) return NULL;
    simcse_tokenizer *t = simcse_tokenizer_load_json_mem(data, n, path);
    free(data);
    return t;
}
