/* The encoder's hyperparameters and its parameters.
 *
 * All parameters live in one contiguous fp32 buffer (llm.c style) so that the
 * optimizer, gradient all-reduce and checkpointing each see one array; each
 * tensor is a named view with its Hugging Face key, shape and offset. Linear
 * weights keep the PyTorch layout [out, in]: y = x W^T + b. */
#ifndef SIMCSE_MODEL_H
#define SIMCSE_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SIMCSE_ARCH_BERT = 0, SIMCSE_ARCH_ROBERTA = 1 } simcse_arch;

/* How a sentence embedding is read off the encoder's output: the SimCSE poolers.
 * Here rather than in encoder.h because the export writes it into the saved model. */
typedef enum {
    SIMCSE_POOL_CLS = 0,           /* [CLS] through the MLP head (dense + tanh) */
    SIMCSE_POOL_CLS_BEFORE_POOLER, /* [CLS] hidden state as is */
    SIMCSE_POOL_AVG,               /* mean of the last layer over real tokens */
    SIMCSE_POOL_AVG_FIRST_LAST,    /* mean of (first layer output + last) / 2, SimCSE's hidden_states[1] */
    SIMCSE_POOL_AVG_TOP2,          /* mean of (last two layers) / 2 */
} simcse_pooler;

/* "cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2"; -1 + error otherwise. */
int simcse_pooler_parse(const char *name, simcse_pooler *out);
const char *simcse_pooler_name(simcse_pooler p);

typedef struct {
    simcse_arch arch;
    int vocab_size;
    int hidden;        /* hidden_size */
    int layers;        /* num_hidden_layers */
    int heads;         /* num_attention_heads */
    int intermediate;  /* intermediate_size */
    int max_positions; /* max_position_embeddings */
    int type_vocab_size;
    int pad_token_id;
    float layer_norm_eps;
    float hidden_dropout; /* hidden_dropout_prob */
    float attn_dropout;   /* attention_probs_dropout_prob */
} simcse_config;

/* Parses a Hugging Face config.json. Missing or out-of-range required keys and
 * an unsupported model_type / hidden_act / position_embedding_type are errors
 * that name the file and the key. */
int simcse_config_load(const char *path, simcse_config *cfg);
/* Writes config.json that transformers' AutoConfig loads (atomically). */
int simcse_config_save(const char *path, const simcse_config *cfg);
/* First position id: RoBERTa counts positions from pad_token_id + 1. */
int simcse_config_position_offset(const simcse_config *cfg);
/* Largest number of tokens per sequence the position table allows. */
int simcse_config_max_tokens(const simcse_config *cfg);

typedef struct {
    char name[96]; /* HF key without the bert./roberta. prefix, e.g. "encoder.layer.0.attention.self.query.weight" */
    int ndim;      /* 1 or 2 */
    int64_t shape[2];
    size_t offset; /* in floats, into simcse_model.data */
    size_t numel;
    int no_decay; /* biases and LayerNorm weights: no weight decay */
} simcse_param;

typedef struct {
    float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [H,H], [H] */
    float *ao_w, *ao_b;                       /* attention.output.dense */
    float *ln1_g, *ln1_b;                     /* attention.output.LayerNorm */
    float *fc1_w, *fc1_b;                     /* intermediate.dense [I,H], [I] */
    float *fc2_w, *fc2_b;                     /* output.dense [H,I], [H] */
    float *ln2_g, *ln2_b;                     /* output.LayerNorm */
} simcse_layer_params;

/* Pointers into one parameter buffer (weights, gradients or moments share the
 * same layout; simcse_params_bind() points a struct at any such buffer). */
typedef struct {
    float *word_emb, *pos_emb, *type_emb; /* [V,H], [P,H], [T,H] */
    float *emb_ln_g, *emb_ln_b;
    simcse_layer_params *layer; /* [layers], owned by the model */
    float *mlp_w, *mlp_b;       /* SimCSE MLP head (pooler.dense on export) */
} simcse_params;

typedef struct {
    simcse_config cfg;
    int n_tensors;
    simcse_param *tensors; /* table of named views, in a fixed order */
    size_t n_floats;       /* total parameter count */
    float *data;           /* the weights, n_floats */
    simcse_params w;       /* views of data */
    int has_mlp_weights;   /* pooler.dense (or SimCSE's mlp.dense) was in the checkpoint. Note that
                                bert-base-*'s own checkpoint has its NSP pooler there too; SimCSE's
                                BertForCL ignores that and initialises a fresh MLP. */
} simcse_model;

/* Builds the tensor table for cfg and allocates zeroed weights. */
int simcse_model_init(simcse_model *m, const simcse_config *cfg);
/* Random init as transformers does: N(0, 0.02) for weights and embeddings,
 * zero biases, LayerNorm gamma 1 beta 0, padding row zero. */
void simcse_model_init_random(simcse_model *m, uint64_t seed);
void simcse_model_free(simcse_model *m);
/* Points p at buf (n_floats long) with the model's layout; p->layer is allocated. */
void simcse_params_bind(const simcse_model *m, float *buf, simcse_params *p);
void simcse_params_unbind(simcse_params *p);
const simcse_param *simcse_model_find(const simcse_model *m, const char *name);

/* Loads a Hugging Face model directory: config.json + model.safetensors or a
 * sharded model.safetensors.index.json. Keys with or without the bert./roberta.
 * prefix; cls.*, lm_head.*, position_ids and other keys skipped; SimCSE's mlp.dense.*,
 * else pooler.dense.*, loaded as the MLP head when present. Each needed tensor is checked for presence, dtype and shape. */
int simcse_model_load(simcse_model *m, const char *dir);
/* Writes model.safetensors (atomically) with the original key names
 * (prefix given, e.g. "bert." or "" ), including pooler.dense when with_pooler. */
int simcse_model_save_safetensors(const simcse_model *m, const char *path, const char *prefix, int with_pooler);
/* Writes a directory AutoModel.from_pretrained loads: DIR/config.json and
 * DIR/model.safetensors with bare BertModel/RobertaModel keys (prefix "").
 * Creates DIR if it does not exist. */
int simcse_model_save_dir(const simcse_model *m, const char *dir, int with_pooler);

#endif
