#!/usr/bin/env python3
"""Makes the small model directories under tests/golden/io/ that the IO tests
(tests/test_model_io.c) load: real transformers save_pretrained output, so the
loader is tested on what users feed it, not on files we wrote ourselves.

  bert/           BertModel (keys without prefix, has pooler.dense), F32
  roberta/        RobertaForMaskedLM (keys 'roberta.*' + 'lm_head.*', no pooler), F32
  bert_bf16/      bert/ cast to bfloat16
  roberta_f16/    roberta/ cast to float16
  bert_sharded/   bert/ saved with a small max_shard_size (index + shards)
  simcse_raw/     SimCSE's own training-checkpoint layout: 'bert.*' + 'mlp.dense.*'
                  (+ a bert.pooler.dense that must NOT win over mlp.dense)

Each directory also gets expected.json: for a few tensors, the first values
and the float64 sum of the tensor as torch holds it after the dtype cast.
Run from the repository root:  python3 tests/golden/make_io_fixtures.py
Needs torch, transformers, safetensors (not needed by the tests themselves)."""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, RobertaConfig, RobertaForMaskedLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "io")
SIZES = dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=64)
CHECK = ["embeddings.word_embeddings.weight", "encoder.layer.1.output.dense.weight",
         "encoder.layer.0.attention.self.query.bias", "embeddings.LayerNorm.weight"]


def expected(dirname, tensors):
    """tensors: {name as the C test knows it: tensor}"""
    out = {}
    for n, t in tensors.items():
        t = t.float()
        out[n] = {"shape": list(t.shape), "first": [float(x) for x in t.flatten()[:4]],
                  "sum": float(t.double().sum())}
    with open(os.path.join(dirname, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)


def pick(model, prefix, head=None):
    """CHECK tensors (key = prefix + name) and the MLP head as 'mlp.weight' / 'mlp.bias'."""
    sd = model.state_dict()
    out = {n: sd[prefix + n] for n in CHECK}
    if head:
        out["mlp.weight"] = sd[head + ".weight"]
        out["mlp.bias"] = sd[head + ".bias"]
    return out


def perturb(model):
    # Fresh init has zero biases and unit LayerNorm weights: make every tensor
    # distinctive so a mix-up between tensors would show.
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def save(model, name, **kw):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True, **kw)
    return d


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)

    bert = BertModel(BertConfig(type_vocab_size=2, **SIZES)).eval()
    perturb(bert)
    d = save(bert, "bert")
    expected(d, pick(bert, "", "pooler.dense"))

    d = save(bert, "bert_sharded", max_shard_size="40KB")
    expected(d, pick(bert, "", "pooler.dense"))

    bf = bert.to(torch.bfloat16)
    d = save(bf, "bert_bf16")
    expected(d, pick(bf, "", "pooler.dense"))

    rob = RobertaForMaskedLM(RobertaConfig(type_vocab_size=1, pad_token_id=1, **SIZES)).eval()
    perturb(rob)
    d = save(rob, "roberta")
    expected(d, pick(rob, "roberta."))

    rf = rob.to(torch.float16)
    d = save(rf, "roberta_f16")
    expected(d, pick(rf, "roberta."))

    # SimCSE's training checkpoint (BertForCL): bert.* without a pooler, and
    # mlp.dense.*. One layer to keep it small. A decoy bert.pooler.dense must
    # not win over mlp.dense, and the I64 position_ids buffer must be ignored.
    small = BertModel(BertConfig(type_vocab_size=2, **dict(SIZES, num_hidden_layers=1))).eval()
    perturb(small)
    d = os.path.join(OUT, "simcse_raw")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    small.config.save_pretrained(d)
    sd = {"bert." + k: v.contiguous() for k, v in small.state_dict().items() if not k.startswith("pooler")}
    g = torch.Generator().manual_seed(2)
    sd["mlp.dense.weight"] = torch.randn(32, 32, generator=g)
    sd["mlp.dense.bias"] = torch.randn(32, generator=g)
    sd["bert.pooler.dense.weight"] = torch.zeros(32, 32)
    sd["bert.pooler.dense.bias"] = torch.zeros(32)
    sd["bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    check = {n: sd["bert." + n] for n in CHECK if "layer.1." not in n}
    check["mlp.weight"] = sd["mlp.dense.weight"]
    check["mlp.bias"] = sd["mlp.dense.bias"]
    expected(d, check)

    total = 0
    for root, _, files in os.walk(OUT):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    print(f"fixtures in {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
