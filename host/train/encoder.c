/* The encoder graph, forward and backward, written once against the op interface.
 *
 * Layout: every activation is token-packed [T, width]; sequences are given by
 * offsets. The forward keeps exactly what the backward needs and nothing more:
 * dropout masks are regenerated from (seed, step, site, row, element), so the
 * post-dropout tensor overwrites the pre-dropout one; LayerNorm keeps its two
 * inputs (the residual stream is the previous LayerNorm's output, stored once)
 * and its row statistics. Buffers are allocated once at creation for a fixed
 * capacity; a forward with a larger batch is an error, not a reallocation.
 *
 * Dropout sites: 0 = embeddings; for layer l, 1+3l = attention probabilities,
 * 2+3l = attention output, 3+3l = FFN output. A token's rng row is its global row
 * identity (simcse_packed.row_ids: (view * global_B + example) * max_len + position;
 * attention: row * heads + head), or its packed index when the batch carries none.
 * The masks therefore do not depend on where a sentence sits in a batch, a chunk or
 * a rank, and the two SimCSE views of a sentence, being different views, get
 * different masks, as in the PyTorch code. */
#include "simcse/encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/common.h"

typedef struct {
    float *q, *k, *v; /* [T,H] */
    float *ctx;       /* attention output before the output dense [T,H] */
    float *lse;       /* [T*heads] */
    float *ao;        /* output dense, after dropout [T,H] */
    float *mean1, *rstd1;
    float *h1;  /* LayerNorm(ao + x) [T,H] */
    float *fc1; /* intermediate before GELU [T,I] */
    float *act; /* GELU output [T,I] */
    float *fc2; /* output dense, after dropout [T,H] */
    float *mean2, *rstd2;
    float *out; /* layer output = LayerNorm(fc2 + h1) [T,H] */
} layer_acts;

struct simcse_encoder {
    simcse_backend *be;
    simcse_config cfg;
    int max_seqs, max_tokens, with_grads;
    size_t n_params;
    float *params, *grads;
    simcse_params w, g;
    /* inputs */
    int32_t *ids, *pos_ids, *type_ids, *offsets, *row_ids;
    /* activations */
    float *emb_sum, *emb_mean, *emb_rstd, *emb_out;
    layer_acts *L;
    float *pooled;  /* [S,H] pooler output before the MLP */
    float *mlp_pre; /* [S,H] */
    float *out;     /* [S,H] */
    /* backward scratch */
    float *dh, *dh2, *dtmp, *dq, *dk, *dv, *dI, *dpooled, *dmlp;
    /* gradient buckets: [0] the MLP head, [1 + l] layer l, [layers + 1] embeddings */
    size_t *bucket_off, *bucket_n;
    simcse_grads_ready_fn ready;
    void *ready_ctx;
    /* state of the last forward */
    int n_seq, T, has_types, has_rows;
    simcse_pooler pooler;
    int apply_mlp;
    int train;
    uint64_t seed;
    uint32_t step;
};

static void *balloc(simcse_encoder *e, size_t bytes, int *failed) {
    if (*failed) return NULL;
    void *p = e->be->alloc(e->be, bytes ? bytes : 4);
    if (!p) *failed = 1;
    return p;
}

/* The gradient buckets as offsets into the parameter buffer, from the tensor table:
 * a layer's tensors are contiguous (model.h's fixed order), which is checked. */
static void make_buckets(simcse_encoder *e, const simcse_model *m) {
    const int nb = m->cfg.layers + 2;
    e->bucket_off = simcse_xcalloc((size_t)nb, sizeof *e->bucket_off);
    e->bucket_n = simcse_xcalloc((size_t)nb, sizeof *e->bucket_n);
    size_t *lo = simcse_xcalloc((size_t)nb, sizeof *lo), *hi = simcse_xcalloc((size_t)nb, sizeof *hi);
    for (int b = 0; b < nb; b++) lo[b] = (size_t)-1;
    size_t total = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const simcse_param *t = &m->tensors[i];
        int b, l;
        if (!strncmp(t->name, "pooler.", 7))
            b = 0;
        else if (sscanf(t->name, "encoder.layer.%d.", &l) == 1 && l >= 0 && l < m->cfg.layers)
            b = 1 + l;
        else
            b = nb - 1;
        if (t->offset < lo[b]) lo[b] = t->offset;
        if (t->offset + t->numel > hi[b]) hi[b] = t->offset + t->numel;
        e->bucket_n[b] += t->numel;
        total += t->numel;
    }
    for (int b = 0; b < nb; b++) {
        if (e->bucket_n[b] && hi[b] - lo[b] != e->bucket_n[b])
            simcse_fatal("internal: gradient bucket %d is not contiguous in the parameter buffer", b);
        e->bucket_off[b] = e->bucket_n[b] ? lo[b] : 0;
    }
    if (total != m->n_floats)
        simcse_fatal("internal: gradient buckets cover %zu of %zu parameters", total, m->n_floats);
    free(lo);
    free(hi);
}

static void grads_ready(simcse_encoder *e, int bucket) {
    if (e->ready && e->bucket_n[bucket]) e->ready(e->ready_ctx, e->grads + e->bucket_off[bucket], e->bucket_n[bucket]);
}

void simcse_encoder_set_grads_ready(simcse_encoder *e, simcse_grads_ready_fn fn, void *ctx) {
    e->ready = fn;
    e->ready_ctx = ctx;
}

/* What simcse_encoder_create below allocates, buffer for buffer (keep the two in step:
 * tests/test_run_guards.c compares this with the CPU backend's own count). */
void simcse_encoder_bytes(const simcse_config *c, size_t n_params, double max_seqs, double max_tokens, int with_grads,
                          double *weights, double *acts) {
    const double T = max_tokens, S = max_seqs, H = c->hidden, I = c->intermediate, NH = c->heads, f = sizeof(float);
    const double L = c->layers;
    *weights = (double)n_params * f * (with_grads ? 2 : 1);
    double a = 4 * T * 4 + (S + 1) * 4;                                /* ids, pos_ids, type_ids, row_ids; offsets */
    a += (2 * T * H + 2 * T) * f;                                      /* emb_sum, emb_out; emb_mean, emb_rstd */
    const double layer = (7 * T * H + T * NH + 4 * T + 2 * T * I) * f; /* q k v ctx ao h1 fc2, lse, stats, fc1 act */
    a += (with_grads ? L : 1) * layer + L * T * H * f; /* inference shares one layer's buffers; outputs per layer */
    a += 3 * S * H * f;                                /* pooled, mlp_pre, out */
    if (with_grads) a += (6 * T * H + T * I + 2 * S * H) * f; /* dh dh2 dtmp dq dk dv, dI, dpooled dmlp */
    *acts = a;
}

simcse_encoder *simcse_encoder_create(simcse_backend *be, const simcse_model *m, int max_seqs, int max_tokens,
                                      int with_grads) {
    simcse_encoder *e = simcse_xcalloc(1, sizeof *e);
    e->be = be;
    e->cfg = m->cfg;
    e->max_seqs = max_seqs;
    e->max_tokens = max_tokens;
    e->with_grads = with_grads;
    e->n_params = m->n_floats;
    const size_t T = (size_t)max_tokens, S = (size_t)max_seqs, H = (size_t)m->cfg.hidden,
                 I = (size_t)m->cfg.intermediate, NH = (size_t)m->cfg.heads;
    const size_t f = sizeof(float);
    int failed = 0;
    e->params = balloc(e, m->n_floats * f, &failed);
    if (with_grads) e->grads = balloc(e, m->n_floats * f, &failed);
    e->ids = balloc(e, T * 4, &failed);
    e->pos_ids = balloc(e, T * 4, &failed);
    e->type_ids = balloc(e, T * 4, &failed);
    e->row_ids = balloc(e, T * 4, &failed);
    e->offsets = balloc(e, (S + 1) * 4, &failed);
    e->emb_sum = balloc(e, T * H * f, &failed);
    e->emb_mean = balloc(e, T * f, &failed);
    e->emb_rstd = balloc(e, T * f, &failed);
    e->emb_out = balloc(e, T * H * f, &failed);
    e->L = simcse_xcalloc((size_t)m->cfg.layers, sizeof *e->L);
    for (int l = 0; l < m->cfg.layers; l++) {
        layer_acts *a = &e->L[l];
        /* Inference reuses one set of buffers for every layer except the outputs,
         * which the poolers may read from any layer. */
        if (with_grads || l == 0) {
            a->q = balloc(e, T * H * f, &failed);
            a->k = balloc(e, T * H * f, &failed);
            a->v = balloc(e, T * H * f, &failed);
            a->ctx = balloc(e, T * H * f, &failed);
            a->lse = balloc(e, T * NH * f, &failed);
            a->ao = balloc(e, T * H * f, &failed);
            a->mean1 = balloc(e, T * f, &failed);
            a->rstd1 = balloc(e, T * f, &failed);
            a->h1 = balloc(e, T * H * f, &failed);
            a->fc1 = balloc(e, T * I * f, &failed);
            a->act = balloc(e, T * I * f, &failed);
            a->fc2 = balloc(e, T * H * f, &failed);
            a->mean2 = balloc(e, T * f, &failed);
            a->rstd2 = balloc(e, T * f, &failed);
        } else {
            *a = e->L[0];
        }
        a->out = balloc(e, T * H * f, &failed);
    }
    e->pooled = balloc(e, S * H * f, &failed);
    e->mlp_pre = balloc(e, S * H * f, &failed);
    e->out = balloc(e, S * H * f, &failed);
    if (with_grads) {
        e->dh = balloc(e, T * H * f, &failed);
        e->dh2 = balloc(e, T * H * f, &failed);
        e->dtmp = balloc(e, T * H * f, &failed);
        e->dq = balloc(e, T * H * f, &failed);
        e->dk = balloc(e, T * H * f, &failed);
        e->dv = balloc(e, T * H * f, &failed);
        e->dI = balloc(e, T * I * f, &failed);
        e->dpooled = balloc(e, S * H * f, &failed);
        e->dmlp = balloc(e, S * H * f, &failed);
    }
    if (failed) {
        simcse_error_prefix("allocating activations for %d sequences / %d tokens (hidden %d, %d layers%s); "
                            "lower batch_size or max_seq_len, or use gradient caching",
                            max_seqs, max_tokens, m->cfg.hidden, m->cfg.layers, with_grads ? ", training" : "");
        simcse_encoder_free(e);
        return NULL;
    }
    be->to_device(be, e->params, m->data, m->n_floats * f);
    simcse_params_bind(m, e->params, &e->w);
    if (with_grads) {
        simcse_params_bind(m, e->grads, &e->g);
        be->zero(be, e->grads, m->n_floats * f);
        make_buckets(e, m);
    }
    return e;
}

void simcse_encoder_free(simcse_encoder *e) {
    if (!e) return;
    simcse_backend *be = e->be;
#define FREE(p)                 \
    do {                        \
        if (p) be->free(be, p); \
        (p) = NULL;             \
    } while (0)
    if (e->L) {
        for (int l = e->cfg.layers - 1; l >= 0; l--) {
            layer_acts *a = &e->L[l];
            FREE(a->out);
            if (e->with_grads || l == 0) {
                FREE(a->q);
                FREE(a->k);
                FREE(a->v);
                FREE(a->ctx);
                FREE(a->lse);
                FREE(a->ao);
                FREE(a->mean1);
                FREE(a->rstd1);
                FREE(a->h1);
                FREE(a->fc1);
                FREE(a->act);
                FREE(a->fc2);
                FREE(a->mean2);
                FREE(a->rstd2);
            }
        }
        free(e->L);
    }
    FREE(e->params);
    FREE(e->grads);
    FREE(e->ids);
    FREE(e->pos_ids);
    FREE(e->type_ids);
    FREE(e->row_ids);
    FREE(e->offsets);
    FREE(e->emb_sum);
    FREE(e->emb_mean);
    FREE(e->emb_rstd);
    FREE(e->emb_out);
    FREE(e->pooled);
    FREE(e->mlp_pre);
    FREE(e->out);
    FREE(e->dh);
    FREE(e->dh2);
    FREE(e->dtmp);
    FREE(e->dq);
    FREE(e->dk);
    FREE(e->dv);
    FREE(e->dI);
    FREE(e->dpooled);
    FREE(e->dmlp);
#undef FREE
    free(e->bucket_off);
    free(e->bucket_n);
    if (e->w.layer) simcse_params_unbind(&e->w);
    if (e->g.layer) simcse_params_unbind(&e->g);
    free(e);
}

void simcse_encoder_set_dropout(simcse_encoder *e, int train, uint64_t seed, uint32_t step) {
    e->train = train;
    e->seed = seed;
    e->step = step;
}

static simcse_dropout drop_site(const simcse_encoder *e, uint32_t site, float p) {
    simcse_dropout d = {e->seed, e->step, site, e->train ? p : 0.0f, e->has_rows ? e->row_ids : NULL};
    return d;
}

enum { SITE_EMB = 0 };
static uint32_t site_of(int layer, int k) { return (uint32_t)(1 + 3 * layer + k); }

/* Which hidden states (0 = embeddings, l+1 = output of layer l) the pooler reads. */
static void pool_layers(const simcse_encoder *e, simcse_pooler p, int *a, int *b) {
    int n = e->cfg.layers;
    switch (p) {
    case SIMCSE_POOL_AVG_FIRST_LAST:
        *a = 1;
        *b = n;
        break;
    case SIMCSE_POOL_AVG_TOP2:
        *a = n - 1;
        *b = n;
        break;
    default:
        *a = n;
        *b = -1;
        break;
    }
}

static const float *hidden_state(const simcse_encoder *e, int k) { return k == 0 ? e->emb_out : e->L[k - 1].out; }

int simcse_encoder_forward(simcse_encoder *e, const simcse_packed *bt, simcse_pooler pooler, int apply_mlp) {
    if (bt->n_seq > e->max_seqs || bt->T > e->max_tokens)
        return simcse_error("batch of %d sequences / %d tokens exceeds the encoder's capacity (%d / %d)", bt->n_seq,
                            bt->T, e->max_seqs, e->max_tokens);
    if (pooler == SIMCSE_POOL_AVG_TOP2 && e->cfg.layers < 2)
        return simcse_error("pooler avg_top2 needs at least 2 layers");
    simcse_backend *be = e->be;
    const simcse_config *c = &e->cfg;
    const int T = bt->T, S = bt->n_seq, H = c->hidden, I = c->intermediate, NH = c->heads, hd = H / NH;
    e->n_seq = S;
    e->T = T;
    e->pooler = pooler;
    e->apply_mlp = apply_mlp;
    e->has_types = bt->type_ids != NULL;
    e->has_rows = bt->row_ids != NULL;
    be->to_device(be, e->ids, bt->ids, (size_t)T * 4);
    be->to_device(be, e->pos_ids, bt->pos_ids, (size_t)T * 4);
    if (bt->type_ids) be->to_device(be, e->type_ids, bt->type_ids, (size_t)T * 4);
    if (bt->row_ids) be->to_device(be, e->row_ids, bt->row_ids, (size_t)T * 4);
    be->to_device(be, e->offsets, bt->offsets, (size_t)(S + 1) * 4);

    be->embed_fwd(be, e->emb_sum, e->ids, e->pos_ids, bt->type_ids ? e->type_ids : NULL, e->w.word_emb, e->w.pos_emb,
                  e->w.type_emb, T, H);
    be->layernorm_fwd(be, e->emb_out, e->emb_mean, e->emb_rstd, e->emb_sum, NULL, e->w.emb_ln_g, e->w.emb_ln_b, T, H,
                      c->layer_norm_eps);
    be->dropout(be, e->emb_out, e->emb_out, T, H, drop_site(e, SITE_EMB, c->hidden_dropout));

    const float *x = e->emb_out;
    for (int l = 0; l < c->layers; l++) {
        layer_acts *a = &e->L[l];
        const simcse_layer_params *p = &e->w.layer[l];
        be->linear_fwd(be, a->q, x, p->q_w, p->q_b, T, H, H);
        be->linear_fwd(be, a->k, x, p->k_w, p->k_b, T, H, H);
        be->linear_fwd(be, a->v, x, p->v_w, p->v_b, T, H, H);
        be->attention_fwd(be, a->ctx, a->lse, a->q, a->k, a->v, e->offsets, S, T, NH, hd,
                          drop_site(e, site_of(l, 0), c->attn_dropout));
        be->linear_fwd(be, a->ao, a->ctx, p->ao_w, p->ao_b, T, H, H);
        be->dropout(be, a->ao, a->ao, T, H, drop_site(e, site_of(l, 1), c->hidden_dropout));
        be->layernorm_fwd(be, a->h1, a->mean1, a->rstd1, a->ao, x, p->ln1_g, p->ln1_b, T, H, c->layer_norm_eps);
        be->linear_fwd(be, a->fc1, a->h1, p->fc1_w, p->fc1_b, T, H, I);
        be->gelu_fwd(be, a->act, a->fc1, (size_t)T * I);
        be->linear_fwd(be, a->fc2, a->act, p->fc2_w, p->fc2_b, T, I, H);
        be->dropout(be, a->fc2, a->fc2, T, H, drop_site(e, site_of(l, 2), c->hidden_dropout));
        be->layernorm_fwd(be, a->out, a->mean2, a->rstd2, a->fc2, a->h1, p->ln2_g, p->ln2_b, T, H, c->layer_norm_eps);
        x = a->out;
    }

    int la, lb;
    pool_layers(e, pooler, &la, &lb);
    if (pooler == SIMCSE_POOL_CLS || pooler == SIMCSE_POOL_CLS_BEFORE_POOLER) {
        be->pool_first_fwd(be, e->pooled, hidden_state(e, la), e->offsets, S, H);
    } else if (lb < 0) {
        be->pool_mean_fwd(be, e->pooled, hidden_state(e, la), e->offsets, S, H);
    } else {
        /* mean((a + b) / 2) = (mean(a) + mean(b)) / 2 */
        be->pool_mean_fwd(be, e->pooled, hidden_state(e, la), e->offsets, S, H);
        be->pool_mean_fwd(be, e->mlp_pre, hidden_state(e, lb), e->offsets, S, H);
        be->add(be, e->pooled, e->pooled, e->mlp_pre, (size_t)S * H);
        be->scale(be, e->pooled, 0.5f, (size_t)S * H);
    }
    if (apply_mlp) {
        be->linear_fwd(be, e->mlp_pre, e->pooled, e->w.mlp_w, e->w.mlp_b, S, H, H);
        be->tanh_fwd(be, e->out, e->mlp_pre, (size_t)S * H);
    } else {
        be->copy(be, e->out, e->pooled, (size_t)S * H * sizeof(float));
    }
    return 0;
}

float *simcse_encoder_output(simcse_encoder *e) { return e->out; }

void simcse_encoder_output_to_host(simcse_encoder *e, float *out) {
    e->be->to_host(e->be, out, e->out, (size_t)e->n_seq * e->cfg.hidden * sizeof(float));
}

void simcse_encoder_zero_grads(simcse_encoder *e) { e->be->zero(e->be, e->grads, e->n_params * sizeof(float)); }

void simcse_encoder_backward(simcse_encoder *e, const float *d_out) {
    simcse_backend *be = e->be;
    const simcse_config *c = &e->cfg;
    const int T = e->T, S = e->n_seq, H = c->hidden, I = c->intermediate, NH = c->heads, hd = H / NH;
    const size_t TH = (size_t)T * H;

    /* MLP head and pooler */
    const float *dpool = d_out;
    if (e->apply_mlp) {
        be->tanh_bwd(be, e->dmlp, d_out, e->out, (size_t)S * H);
        be->linear_bwd(be, e->dpooled, e->g.mlp_w, e->g.mlp_b, e->dmlp, e->pooled, e->w.mlp_w, S, H, H);
        dpool = e->dpooled;
    }
    grads_ready(e, 0);
    int la, lb;
    pool_layers(e, e->pooler, &la, &lb);
    if (lb >= 0) { /* the pooled vector is the mean of two hidden states: each gets half */
        if (dpool != e->dpooled) be->copy(be, e->dpooled, dpool, (size_t)S * H * sizeof(float));
        be->scale(be, e->dpooled, 0.5f, (size_t)S * H);
        dpool = e->dpooled;
    }

    /* dh: gradient of the current layer's output, starting with the last layer */
    float *dh = e->dh, *dx = e->dh2;
    be->zero(be, dh, TH * sizeof(float));
    for (int l = c->layers - 1; l >= 0; l--) {
        int k = l + 1; /* hidden-state index of this layer's output */
        if (k == la || k == lb) {
            if (e->pooler == SIMCSE_POOL_CLS || e->pooler == SIMCSE_POOL_CLS_BEFORE_POOLER)
                be->pool_first_bwd(be, dh, dpool, e->offsets, S, H);
            else
                be->pool_mean_bwd(be, dh, dpool, e->offsets, S, H);
        }
        layer_acts *a = &e->L[l];
        const simcse_layer_params *p = &e->w.layer[l];
        simcse_layer_params *g = &e->g.layer[l];
        const float *x = l == 0 ? e->emb_out : e->L[l - 1].out;

        /* out = LN2(fc2 + h1): dsum -> dtmp (flows to fc2 and to h1) */
        be->layernorm_bwd(be, e->dtmp, g->ln2_g, g->ln2_b, dh, a->fc2, a->h1, a->mean2, a->rstd2, p->ln2_g, T, H);
        /* dh1 accumulates in dh (free now): residual part */
        float *dh1 = dh;
        be->copy(be, dh1, e->dtmp, TH * sizeof(float));
        be->dropout(be, e->dtmp, e->dtmp, T, H, drop_site(e, site_of(l, 2), c->hidden_dropout));
        be->linear_bwd(be, e->dI, g->fc2_w, g->fc2_b, e->dtmp, a->act, p->fc2_w, T, I, H);
        be->gelu_bwd(be, e->dI, e->dI, a->fc1, (size_t)T * I);
        be->linear_bwd(be, e->dq, g->fc1_w, g->fc1_b, e->dI, a->h1, p->fc1_w, T, H, I);
        be->add(be, dh1, dh1, e->dq, TH);

        /* h1 = LN1(ao + x) */
        be->layernorm_bwd(be, e->dtmp, g->ln1_g, g->ln1_b, dh1, a->ao, x, a->mean1, a->rstd1, p->ln1_g, T, H);
        be->copy(be, dx, e->dtmp, TH * sizeof(float)); /* residual into the layer input */
        be->dropout(be, e->dtmp, e->dtmp, T, H, drop_site(e, site_of(l, 1), c->hidden_dropout));
        /* d ctx into dh (free again) */
        be->linear_bwd(be, dh, g->ao_w, g->ao_b, e->dtmp, a->ctx, p->ao_w, T, H, H);
        be->attention_bwd(be, e->dq, e->dk, e->dv, dh, a->q, a->k, a->v, a->ctx, a->lse, e->offsets, S, T, NH, hd,
                          drop_site(e, site_of(l, 0), c->attn_dropout));
        be->linear_bwd(be, e->dtmp, g->q_w, g->q_b, e->dq, x, p->q_w, T, H, H);
        be->add(be, dx, dx, e->dtmp, TH);
        be->linear_bwd(be, e->dtmp, g->k_w, g->k_b, e->dk, x, p->k_w, T, H, H);
        be->add(be, dx, dx, e->dtmp, TH);
        be->linear_bwd(be, e->dtmp, g->v_w, g->v_b, e->dv, x, p->v_w, T, H, H);
        be->add(be, dx, dx, e->dtmp, TH);
        grads_ready(e, 1 + l);
        /* dx is now the gradient of the previous layer's output */
        float *t = dh;
        dh = dx;
        dx = t;
    }
    /* embeddings: out = dropout(LN(sum)) */
    be->dropout(be, dh, dh, T, H, drop_site(e, SITE_EMB, c->hidden_dropout));
    be->layernorm_bwd(be, e->dtmp, e->g.emb_ln_g, e->g.emb_ln_b, dh, e->emb_sum, NULL, e->emb_mean, e->emb_rstd,
                      e->w.emb_ln_g, T, H);
    be->embed_bwd(be, e->g.word_emb, e->g.pos_emb, e->g.type_emb, e->dtmp, e->ids, e->pos_ids,
                  e->has_types ? e->type_ids : NULL, T, H);
    grads_ready(e, c->layers + 1);
}

float *simcse_encoder_params(simcse_encoder *e) { return e->params; }
float *simcse_encoder_grads(simcse_encoder *e) { return e->grads; }
size_t simcse_encoder_n_params(const simcse_encoder *e) { return e->n_params; }
simcse_backend *simcse_encoder_backend(simcse_encoder *e) { return e->be; }

void simcse_encoder_download(simcse_encoder *e, simcse_model *m) {
    e->be->to_host(e->be, m->data, e->params, m->n_floats * sizeof(float));
}

int simcse_encoder_max_tokens(const simcse_encoder *e) { return e->max_tokens; }
int simcse_encoder_max_seqs(const simcse_encoder *e) { return e->max_seqs; }

int simcse_encoder_hidden_size(const simcse_encoder *e) { return e->cfg.hidden; }

void simcse_encoder_hidden_to_host(simcse_encoder *e, int k, float *out) {
    e->be->to_host(e->be, out, hidden_state(e, k), (size_t)e->T * e->cfg.hidden * sizeof(float));
}
