/* Export of a trained encoder as a Hugging Face model directory that is also a
 * sentence-transformers model: config.json, model.safetensors (original key
 * names; the SimCSE MLP head as pooler.dense, as SimCSE's own export does), the
 * tokenizer files, and modules.json + sentence_bert_config.json + 1_Pooling/
 * (+ 2_Dense/ with Tanh when the MLP head is part of the embedding). */
#ifndef SIMCSE_EXPORT_H
#define SIMCSE_EXPORT_H

#include "simcse/model.h"

/* tokenizer_dir: where the tokenizer files are copied from. pooler and apply_mlp:
 * how embeddings are made at inference time. Every file is written atomically. */
int simcse_export(const simcse_model *m, const char *dir, const char *tokenizer_dir, simcse_pooler pooler,
                  int apply_mlp, int max_seq_len);

/* Creates a directory (and its parents); 0 if it exists. */
int simcse_mkdirs(const char *dir);

#endif
