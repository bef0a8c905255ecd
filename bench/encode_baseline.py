#!/usr/bin/env python3
"""sentence-transformers' encode() throughput, the baseline of `simcse encode`.

Makes (once) a randomly initialised BERT as a directory that both sentence-transformers
and `simcse encode` load (config.json, model.safetensors, vocab.txt, modules.json, mean
pooling), writes the sentences it times to a file, and prints one JSON line with the
sentences per second of SentenceTransformer.encode on them (tokenization included, as
`simcse encode` reports its own figure). bench/run.sh runs both on the same card.

usage: encode_baseline.py --model-dir DIR --sentences-out FILE [--size base|tiny] [--n 10000]
                          [--batch 256] [--max-len 32] [--device cuda|cpu] [--data DIR]
"""
import argparse, json, os, time

ap = argparse.ArgumentParser()
ap.add_argument("--model-dir", required=True)
ap.add_argument("--sentences-out", required=True)
ap.add_argument("--size", default="base", choices=["base", "tiny"])
ap.add_argument("--n", type=int, default=10000)
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--max-len", type=int, default=32)
ap.add_argument("--device", default="cuda")
ap.add_argument("--data", default=os.environ.get("SIMCSE_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")))
a = ap.parse_args()

import torch
from transformers import BertConfig, BertModel
from sentence_transformers import SentenceTransformer, models

# STS-B sentences (both columns of train, then dev, then test), the first n
sents = []
for split in ("train", "dev", "test"):
    with open(os.path.join(a.data, "stsbenchmark", "original", f"sts-{split}.csv"), encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 7:
                sents += [cols[5], cols[6]]
sents = sents[: a.n]
with open(a.sentences_out, "w", encoding="utf-8") as f:
    f.write("\n".join(s.replace("\n", " ") for s in sents) + "\n")

if not os.path.exists(os.path.join(a.model_dir, "modules.json")):
    torch.manual_seed(0)
    dims = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072) \
        if a.size == "base" else dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
    os.makedirs(a.model_dir, exist_ok=True)
    BertModel(BertConfig(vocab_size=30522, **dims)).save_pretrained(a.model_dir, safe_serialization=True)
    vocab = open(os.path.join(a.data, "tokenizers", "bert-base-uncased", "vocab.txt"), encoding="utf-8").read()
    open(os.path.join(a.model_dir, "vocab.txt"), "w", encoding="utf-8").write(vocab)
    json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": 512},
              open(os.path.join(a.model_dir, "tokenizer_config.json"), "w"))
    tr = models.Transformer(a.model_dir, max_seq_length=a.max_len)
    pool = models.Pooling(tr.get_word_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[tr, pool]).save(a.model_dir)

m = SentenceTransformer(a.model_dir, device=a.device)
m.max_seq_length = a.max_len
m.encode(sents[: a.batch], batch_size=a.batch)  # warm-up
if a.device.startswith("cuda"):
    torch.cuda.synchronize()
t0 = time.perf_counter()
m.encode(sents, batch_size=a.batch, convert_to_numpy=True)
if a.device.startswith("cuda"):
    torch.cuda.synchronize()
dt = time.perf_counter() - t0
print(json.dumps({"bench": "st_encode", "sentences": len(sents), "seconds": dt, "sentences_per_s": len(sents) / dt,
                  "batch": a.batch, "max_len": a.max_len, "device": a.device, "size": a.size}))
