/* The parameter table, random init, the pooler names, and loading / saving Hugging Face model
 * directories. See include/simcse/model.h.
 *
 * Design: the table is built in one fixed order (embeddings, layers, MLP head)
 * and offsets are assigned in that order without padding, so a parameter
 * buffer, its gradient and its Adam moments share one layout and
 * simcse_params_bind() only adds offsets. Names are the HF keys without the
 * bert./roberta. prefix; loading tries the bare key and both prefixes, so
 * BertModel / RobertaModel exports, *ForMaskedLM checkpoints and SimCSE's own
 * training checkpoints all load. Keys we do not need are never looked at, so
 * cls.*, lm_head.*, position_ids (I64) and anything else are ignored for free.
 * The MLP head prefers SimCSE's raw mlp.dense.* over pooler.dense.*.
 * Random init gives every tensor its own Philox subsequence (step UINT32_MAX,
 * site 0xfff, row = tensor index, which dropout never uses), so a tensor's
 * values do not depend on the sizes of the tensors before it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "simcse/common.h"
#include "simcse/model.h"
#include "simcse/rng.h"
#include "simcse/safetensors.h"

#define EMB_TENSORS 5
#define LAYER_TENSORS 16

static void add(simcse_model *m, int *k, size_t *off, const char *name, int64_t d0, int64_t d1, int no_decay) {
    simcse_param *p = &m->tensors[(*k)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    p->offset = *off;
    p->no_decay = no_decay;
    *off += p->numel;
}

int simcse_model_init(simcse_model *m, const simcse_config *c) {
    memset(m, 0, sizeof *m);
    if (c->vocab_size < 1 || c->hidden < 1 || c->layers < 1 || c->heads < 1 || c->intermediate < 1 ||
        c->max_positions < 1 || c->type_vocab_size < 1 || c->hidden % c->heads != 0)
        return simcse_error("invalid model configuration (hidden %d, layers %d, heads %d, intermediate %d, vocab "
                            "%d, positions %d, types %d)",
                            c->hidden, c->layers, c->heads, c->intermediate, c->vocab_size, c->max_positions,
                            c->type_vocab_size);
    m->cfg = *c;
    m->n_tensors = EMB_TENSORS + LAYER_TENSORS * c->layers + 2;
    m->tensors = simcse_xcalloc((size_t)m->n_tensors, sizeof *m->tensors);
    const int64_t H = c->hidden, I = c->intermediate;
    int k = 0;
    size_t off = 0;
    add(m, &k, &off, "embeddings.word_embeddings.weight", c->vocab_size, H, 0);
    add(m, &k, &off, "embeddings.position_embeddings.weight", c->max_positions, H, 0);
    add(m, &k, &off, "embeddings.token_type_embeddings.weight", c->type_vocab_size, H, 0);
    add(m, &k, &off, "embeddings.LayerNorm.weight", H, 0, 1);
    add(m, &k, &off, "embeddings.LayerNorm.bias", H, 0, 1);
    static const struct {
        const char *suffix;
        int in_i, out_i, vec; /* weight [out, in] (in/out = I when flagged), vec: 1-D */
        int no_decay;
    } L[LAYER_TENSORS] = {
        {"attention.self.query.weight", 0, 0, 0, 0},
        {"attention.self.query.bias", 0, 0, 1, 1},
        {"attention.self.key.weight", 0, 0, 0, 0},
        {"attention.self.key.bias", 0, 0, 1, 1},
        {"attention.self.value.weight", 0, 0, 0, 0},
        {"attention.self.value.bias", 0, 0, 1, 1},
        {"attention.output.dense.weight", 0, 0, 0, 0},
        {"attention.output.dense.bias", 0, 0, 1, 1},
        {"attention.output.LayerNorm.weight", 0, 0, 1, 1},
        {"attention.output.LayerNorm.bias", 0, 0, 1, 1},
        {"intermediate.dense.weight", 0, 1, 0, 0},
        {"intermediate.dense.bias", 0, 1, 1, 1},
        {"output.dense.weight", 1, 0, 0, 0},
        {"output.dense.bias", 0, 0, 1, 1},
        {"output.LayerNorm.weight", 0, 0, 1, 1},
        {"output.LayerNorm.bias", 0, 0, 1, 1},
    };
    for (int l = 0; l < c->layers; l++)
        for (int j = 0; j < LAYER_TENSORS; j++) {
            char name[96];
            snprintf(name, sizeof name, "encoder.layer.%d.%s", l, L[j].suffix);
            int64_t out = L[j].out_i ? I : H, in = L[j].in_i ? I : H;
            add(m, &k, &off, name, out, L[j].vec ? 0 : in, L[j].no_decay);
        }
    add(m, &k, &off, "pooler.dense.weight", H, H, 0);
    add(m, &k, &off, "pooler.dense.bias", H, 0, 1);
    m->n_floats = off;
    m->data = simcse_xcalloc(off, sizeof(float));
    simcse_params_bind(m, m->data, &m->w);
    return 0;
}

void simcse_params_bind(const simcse_model *m, float *buf, simcse_params *p) {
    const simcse_param *t = m->tensors;
#define AT(i) (buf + t[(i)].offset)
    p->word_emb = AT(0);
    p->pos_emb = AT(1);
    p->type_emb = AT(2);
    p->emb_ln_g = AT(3);
    p->emb_ln_b = AT(4);
    p->layer = simcse_xcalloc((size_t)m->cfg.layers, sizeof *p->layer);
    for (int l = 0; l < m->cfg.layers; l++) {
        int b = EMB_TENSORS + LAYER_TENSORS * l;
        simcse_layer_params *L = &p->layer[l];
        L->q_w = AT(b + 0), L->q_b = AT(b + 1), L->k_w = AT(b + 2), L->k_b = AT(b + 3);
        L->v_w = AT(b + 4), L->v_b = AT(b + 5), L->ao_w = AT(b + 6), L->ao_b = AT(b + 7);
        L->ln1_g = AT(b + 8), L->ln1_b = AT(b + 9), L->fc1_w = AT(b + 10), L->fc1_b = AT(b + 11);
        L->fc2_w = AT(b + 12), L->fc2_b = AT(b + 13), L->ln2_g = AT(b + 14), L->ln2_b = AT(b + 15);
    }
    int h = EMB_TENSORS + LAYER_TENSORS * m->cfg.layers;
    p->mlp_w = AT(h);
    p->mlp_b = AT(h + 1);
#undef AT
}

void simcse_params_unbind(simcse_params *p) {
    free(p->layer);
    memset(p, 0, sizeof *p);
}

void simcse_model_free(simcse_model *m) {
    if (!m) return;
    simcse_params_unbind(&m->w);
    free(m->tensors);
    free(m->data);
    memset(m, 0, sizeof *m);
}

const simcse_param *simcse_model_find(const simcse_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

void simcse_model_init_random(simcse_model *m, uint64_t seed) {
    for (int k = 0; k < m->n_tensors; k++) {
        const simcse_param *p = &m->tensors[k];
        float *x = m->data + p->offset;
        if (ends_with(p->name, "LayerNorm.weight")) {
            for (size_t i = 0; i < p->numel; i++) x[i] = 1.0f;
        } else if (ends_with(p->name, ".bias")) {
            memset(x, 0, p->numel * sizeof *x);
        } else {
            simcse_rng_stream s = {seed, simcse_rng_subsequence(UINT32_MAX, 0xfffu, (uint32_t)k), 0};
            for (size_t i = 0; i < p->numel; i++) x[i] = 0.02f * simcse_rng_normal(&s);
        }
    }
    /* nn.Embedding(padding_idx=pad): that row starts at zero (RoBERTa's
     * position table has the same padding_idx). */
    const simcse_config *c = &m->cfg;
    size_t H = (size_t)c->hidden;
    if (c->pad_token_id >= 0 && c->pad_token_id < c->vocab_size)
        memset(m->w.word_emb + (size_t)c->pad_token_id * H, 0, H * sizeof(float));
    if (c->arch == SIMCSE_ARCH_ROBERTA && c->pad_token_id < c->max_positions)
        memset(m->w.pos_emb + (size_t)c->pad_token_id * H, 0, H * sizeof(float));
    m->has_mlp_weights = 0;
}

/* ------------------------------------------------------------------ load */

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Checks dtype, then shape, then converts into the model's buffer. */
static int load_tensor(simcse_model *m, const simcse_param *p, const simcse_st_tensor *t, const char *cfg_path) {
    if (t->dtype == SIMCSE_ST_OTHER)
        return simcse_error("%s: tensor '%s': dtype %s is not supported (F32, F16 or BF16)", simcse_st_path(t), t->name,
                            t->dtype_name);
    int ok = t->ndim == p->ndim;
    for (int d = 0; ok && d < p->ndim; d++) ok = t->shape[d] == p->shape[d];
    if (!ok) {
        char got[128], want[64];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, p->ndim, p->shape);
        return simcse_error("%s: tensor '%s': shape %s does not match %s from %s", simcse_st_path(t), t->name, got,
                            want, cfg_path);
    }
    return simcse_st_read_f32(t, m->data + p->offset, p->numel);
}

int simcse_model_load(simcse_model *m, const char *dir) {
    memset(m, 0, sizeof *m);
    char *cfg_path = simcse_path_join(dir, "config.json");
    simcse_config cfg;
    simcse_st_set *set = NULL;
    int rc = simcse_config_load(cfg_path, &cfg);
    if (rc == 0) rc = simcse_st_open_dir(dir, &set);
    if (rc == 0) rc = simcse_model_init(m, &cfg);
    if (rc != 0) {
        free(cfg_path);
        simcse_st_set_close(set);
        return -1;
    }
    const char *own = cfg.arch == SIMCSE_ARCH_ROBERTA ? "roberta." : "bert.";
    const char *other = cfg.arch == SIMCSE_ARCH_ROBERTA ? "bert." : "roberta.";
    const char *prefixes[3] = {"", own, other};
    const int head = m->n_tensors - 2;
    char key[160];
    for (int k = 0; k < head && rc == 0; k++) {
        const simcse_param *p = &m->tensors[k];
        const simcse_st_tensor *t = NULL;
        for (int j = 0; j < 3 && !t; j++) {
            snprintf(key, sizeof key, "%s%s", prefixes[j], p->name);
            t = simcse_st_set_find(set, key);
        }
        if (!t)
            rc = simcse_error("%s: tensor '%s' missing (also tried '%s%s')", set->path, p->name, own, p->name);
        else
            rc = load_tensor(m, p, t, cfg_path);
    }
    /* MLP head: SimCSE's mlp.dense.* first, then pooler.dense.* (bare or prefixed). */
    const char *head_prefixes[4] = {"mlp.dense.", "pooler.dense.", NULL, NULL};
    char own_pooler[32], other_pooler[32];
    snprintf(own_pooler, sizeof own_pooler, "%spooler.dense.", own);
    snprintf(other_pooler, sizeof other_pooler, "%spooler.dense.", other);
    head_prefixes[2] = own_pooler;
    head_prefixes[3] = other_pooler;
    for (int j = 0; j < 4 && rc == 0; j++) {
        snprintf(key, sizeof key, "%sweight", head_prefixes[j]);
        const simcse_st_tensor *tw = simcse_st_set_find(set, key);
        if (!tw) continue;
        snprintf(key, sizeof key, "%sbias", head_prefixes[j]);
        const simcse_st_tensor *tb = simcse_st_set_find(set, key);
        if (!tb) {
            rc = simcse_error("%s: tensor '%s' missing (its weight is there)", set->path, key);
            break;
        }
        rc = load_tensor(m, &m->tensors[head], tw, cfg_path);
        if (rc == 0) rc = load_tensor(m, &m->tensors[head + 1], tb, cfg_path);
        if (rc == 0) m->has_mlp_weights = 1;
        break;
    }
    simcse_st_set_close(set);
    free(cfg_path);
    if (rc != 0) {
        simcse_model_free(m);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ save */

int simcse_model_save_safetensors(const simcse_model *m, const char *path, const char *prefix, int with_pooler) {
    if (!prefix) prefix = "";
    int n = with_pooler ? m->n_tensors : m->n_tensors - 2;
    simcse_st_entry *e = simcse_xcalloc((size_t)n, sizeof *e);
    char(*names)[192] = simcse_xcalloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        const simcse_param *p = &m->tensors[i];
        snprintf(names[i], sizeof names[i], "%s%s", prefix, p->name);
        e[i].name = names[i];
        e[i].ndim = p->ndim;
        e[i].shape[0] = p->shape[0];
        e[i].shape[1] = p->shape[1];
        e[i].data = m->data + p->offset;
    }
    int rc = simcse_st_write_f32(path, e, n);
    free(names);
    free(e);
    return rc;
}

int simcse_model_save_dir(const simcse_model *m, const char *dir, int with_pooler) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return simcse_error("%s: cannot create directory: %s", dir, strerror(errno));
    char *cfg = simcse_path_join(dir, "config.json");
    char *st = simcse_path_join(dir, "model.safetensors");
    int rc = simcse_config_save(cfg, &m->cfg);
    if (rc == 0) rc = simcse_model_save_safetensors(m, st, "", with_pooler);
    free(cfg);
    free(st);
    return rc;
}

/* The pooler names of include/simcse/model.h, as the CLI, the configs and the export spell them. */
static const char *pooler_names[] = {"cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2"};

int simcse_pooler_parse(const char *name, simcse_pooler *out) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, pooler_names[i])) {
            *out = (simcse_pooler)i;
            return 0;
        }
    return simcse_error("unknown pooler '%s' (expected cls, cls_before_pooler, avg, avg_first_last or avg_top2)", name);
}

const char *simcse_pooler_name(simcse_pooler p) { return pooler_names[p]; }
