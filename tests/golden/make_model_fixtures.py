#!/usr/bin/env python3
"""Generates the model fixtures in tests/golden/model/ (see tests/golden/README.md).

    python3 tests/golden/make_model_fixtures.py [--out DIR] [--report]

Two tiny random encoders (BERT and RoBERTa) are written with save_pretrained, then
PyTorch/transformers computes, in float64 from the saved fp32 weights, the
reference outputs that the C implementation must match:

  * forward: every SimCSE pooler, every hidden state, batched (padded) and each
    sentence alone;
  * one SimCSE training step (loss + gradient of every parameter) for the
    unsupervised, pair and hard-negative objectives, exactly as
    princeton-nlp/SimCSE simcse/models.py cl_forward computes them;
  * three AdamW steps with gradient clipping (HF Trainer parameter groups).

Everything is stored as F32 safetensors (tensors) and JSON (integer inputs and
scalars). The script is deterministic: rerunning it reproduces the same bytes
(with the same torch / transformers / safetensors versions).

--report prints how far PyTorch's own fp32 computation lies from the fp64
reference (a guide for the C tests' tolerances).
"""
import argparse
import copy
import json
import os
import random
import sys

import torch
import torch.nn as nn
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 1234

VOCAB = 512
HIDDEN = 32
LAYERS = 2
HEADS = 4
INTER = 64
FIRST_RANDOM_ID = 5          # random token ids are drawn from [5, 512)

TEMP = 0.05
HN_WEIGHT = 0.5
TRAIN_B = 4
FORWARD_LENGTHS = [3, 7, 12, 5, 64, 9]   # 64 = the longest sequence the position table allows

ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, max_grad_norm=1.0, steps=3)

POOLERS = ["cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2"]

ARCHS = {
    "bert": dict(
        model_dir="tiny-bert",
        special=dict(cls=2, sep=3, pad=0),
        position_offset=0,
        max_positions=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
    ),
    "roberta": dict(
        model_dir="tiny-roberta",
        special=dict(cls=0, sep=2, pad=1),   # <s>, </s>, <pad>
        position_offset=2,                  # pad_token_id + 1
        max_positions=66,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
    ),
}


def make_config(arch):
    a = ARCHS[arch]
    common = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTER,
        max_position_embeddings=a["max_positions"],
        type_vocab_size=a["type_vocab_size"],
        layer_norm_eps=a["layer_norm_eps"],
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=a["special"]["pad"],
        position_embedding_type="absolute",
        initializer_range=0.02,
    )
    if arch == "bert":
        return BertConfig(**common)
    return RobertaConfig(bos_token_id=0, eos_token_id=2, **common)


def model_class(arch):
    return BertModel if arch == "bert" else RobertaModel


def perturb(model, gen):
    """Non-trivial weights: every bias, LayerNorm gamma/beta and the padding rows
    random, matrices scaled so that attention is far from uniform and GELU/tanh
    work in their curved range."""
    def randn(shape):
        return torch.randn(shape, generator=gen, dtype=torch.float32)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * randn(p.shape))
            elif "LayerNorm.bias" in name:
                p.copy_(0.1 * randn(p.shape))
            elif name.endswith(".bias"):
                p.copy_(0.05 * randn(p.shape))
            elif name == "embeddings.word_embeddings.weight":
                p.copy_(1.0 * randn(p.shape))
            elif name in ("embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight"):
                p.copy_(0.5 * randn(p.shape))
            elif name.endswith(".weight") and p.ndim == 2:
                fan_in = p.shape[1]
                # std 0.2 for fan_in 32: attention logits of order 1, GELU inputs of order 1
                p.copy_(randn(p.shape) * (0.2 * (32.0 / fan_in) ** 0.5))
            else:
                raise RuntimeError("unexpected parameter " + name)


def rand_seq(rng, arch, length):
    s = ARCHS[arch]["special"]
    return [s["cls"]] + [rng.randrange(FIRST_RANDOM_ID, VOCAB) for _ in range(length - 2)] + [s["sep"]]


def pad_batch(arch, seqs):
    pad = ARCHS[arch]["special"]["pad"]
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def expected_position_ids(arch, seqs):
    off = ARCHS[arch]["position_offset"]
    return [[off + t for t in range(len(s))] for s in seqs]


def check_position_ids(model, arch, seqs):
    """The rule documented for the C side equals what transformers computes."""
    ids, _ = pad_batch(arch, seqs)
    if arch == "roberta":
        emb = model.embeddings
        pos = emb.create_position_ids_from_input_ids(ids, emb.padding_idx)
    else:
        pos = torch.arange(ids.shape[1]).expand(ids.shape[0], -1)
    for i, want in enumerate(expected_position_ids(arch, seqs)):
        got = pos[i, : len(want)].tolist()
        assert got == want, (arch, i, got, want)


def encode(model, arch, seqs):
    """transformers forward of a padded batch; returns the outputs and the mask."""
    ids, mask = pad_batch(arch, seqs)
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, return_dict=True)
    return out, mask


def pool_all(out, mask):
    """All poolers of SimCSE's models.py Pooler (+ MLP for 'cls')."""
    m = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
    den = mask.sum(-1).unsqueeze(-1).to(out.last_hidden_state.dtype)
    hs = out.hidden_states
    last = out.last_hidden_state
    res = {
        "cls": out.pooler_output,                     # tanh(dense(last[:,0])) == SimCSE MLPLayer
        "cls_before_pooler": last[:, 0],
        "avg": (last * m).sum(1) / den,
        "avg_first_last": ((hs[1] + hs[-1]) / 2.0 * m).sum(1) / den,
        "avg_top2": ((hs[-1] + hs[-2]) / 2.0 * m).sum(1) / den,
    }
    return res


def pack(x, seqs):
    """[B, L, H] padded -> [T, H] real tokens, sequence after sequence."""
    return torch.cat([x[i, : len(s)] for i, s in enumerate(seqs)], 0)


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def simcse_loss(model, arch, seqs, B, nfields, hn_weight):
    """cl_forward of princeton-nlp/SimCSE with pooler 'cls' (MLP on), dropout off.
    seqs are [field0 x B, field1 x B, (field2 x B)]."""
    out, _ = encode(model, arch, seqs)
    z = out.pooler_output                          # mlp(last_hidden[:, 0])
    zf = z.view(nfields, B, z.shape[-1])
    z1, z2 = zf[0], zf[1]
    sim = nn.CosineSimilarity(dim=-1)
    cos_sim = sim(z1.unsqueeze(1), z2.unsqueeze(0)) / TEMP
    if nfields == 3:
        z3 = zf[2]
        z1_z3_cos = sim(z1.unsqueeze(1), z3.unsqueeze(0)) / TEMP
        cos_sim = torch.cat([cos_sim, z1_z3_cos], 1)
    labels = torch.arange(cos_sim.size(0)).long()
    if nfields == 3:
        n3 = z1_z3_cos.size(-1)
        weights = torch.tensor(
            [[0.0] * (cos_sim.size(-1) - n3) + [0.0] * i + [hn_weight] + [0.0] * (n3 - i - 1) for i in range(n3)],
            dtype=cos_sim.dtype,
        )
        cos_sim = cos_sim + weights
    loss = nn.CrossEntropyLoss()(cos_sim, labels)
    return loss, z, cos_sim


def param_groups(model, wd):
    """HF Trainer: no decay for biases and LayerNorm weights."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if (n.endswith(".bias") or "LayerNorm" in n) else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def no_decay_names(model):
    return [n for n, _ in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]


def offsets_of(seqs):
    o = [0]
    for s in seqs:
        o.append(o[-1] + len(s))
    return o


def dump_json(path, obj):
    """Deterministic JSON: one key per line, integer lists of sequences one per line."""
    lines = ["{"]
    items = list(obj.items())
    for k, (key, v) in enumerate(items):
        comma = "," if k + 1 < len(items) else ""
        if isinstance(v, list) and v and all(isinstance(x, list) for x in v):
            inner = ",\n".join("    " + json.dumps(x) for x in v)
            lines.append("  %s: [\n%s\n  ]%s" % (json.dumps(key), inner, comma))
        else:
            lines.append("  %s: %s%s" % (json.dumps(key), json.dumps(v), comma))
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def save_tensors(path, d):
    save_file({k: f32(v) for k, v in d.items()}, path)


REPORT = []


def report(what, ref, got):
    ref = ref.detach().double()
    got = got.detach().double()
    diff = (ref - got).abs().max().item()
    scale = ref.abs().max().item()
    REPORT.append("%-58s max|ref| %9.3e  max|fp32-ref| %9.3e  rel %9.3e" % (what, scale, diff, diff / max(scale, 1e-30)))


def build_model(arch, out_dir, gen):
    cfg = make_config(arch)
    cfg._attn_implementation = "eager"
    model = model_class(arch)(cfg, add_pooling_layer=True)
    perturb(model, gen)
    mdir = os.path.join(out_dir, ARCHS[arch]["model_dir"])
    os.makedirs(mdir, exist_ok=True)
    model.save_pretrained(mdir, safe_serialization=True)
    # config.json must spell out every key the C parser reads
    with open(os.path.join(mdir, "config.json")) as f:
        cj = json.load(f)
    for key in ("model_type", "hidden_act", "layer_norm_eps", "pad_token_id", "hidden_size", "num_hidden_layers",
                "num_attention_heads", "intermediate_size", "max_position_embeddings", "type_vocab_size",
                "vocab_size", "hidden_dropout_prob", "attention_probs_dropout_prob", "position_embedding_type"):
        assert key in cj, (arch, key)
    # Reload what was written: the references come from the saved weights.
    loaded = model_class(arch).from_pretrained(mdir, attn_implementation="eager")
    sd0, sd1 = model.state_dict(), loaded.state_dict()
    for k, v in sd0.items():
        assert torch.equal(v, sd1[k]), k
    loaded.eval()
    return loaded


def make_forward(arch, m32, m64, out_dir, rng):
    seqs = [rand_seq(rng, arch, L) for L in FORWARD_LENGTHS]
    check_position_ids(m64, arch, seqs)
    tensors = {}
    with torch.no_grad():
        out, mask = encode(m64, arch, seqs)
        out32, mask32 = encode(m32, arch, seqs)
        pooled = pool_all(out, mask)
        pooled32 = pool_all(out32, mask32)
        for k, hs in enumerate(out.hidden_states):
            tensors["hidden_states.%d" % k] = pack(hs, seqs)
            report("%s forward hidden_states.%d" % (arch, k), pack(hs, seqs), pack(out32.hidden_states[k], seqs))
        tensors["last_hidden_state"] = pack(out.last_hidden_state, seqs)
        assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
        for p in POOLERS:
            tensors["pooled.%s" % p] = pooled[p]
            report("%s forward pooled.%s" % (arch, p), pooled[p], pooled32[p])
        # each sentence alone: batch of one, no padding
        single_last, single_hs = [], [[] for _ in range(LAYERS + 1)]
        single_pooled = {p: [] for p in POOLERS}
        for s in seqs:
            o, mk = encode(m64, arch, [s])
            single_last.append(o.last_hidden_state[0])
            for k in range(LAYERS + 1):
                single_hs[k].append(o.hidden_states[k][0])
            pp = pool_all(o, mk)
            for p in POOLERS:
                single_pooled[p].append(pp[p][0])
        tensors["single.last_hidden_state"] = torch.cat(single_last, 0)
        for k in range(LAYERS + 1):
            tensors["single.hidden_states.%d" % k] = torch.cat(single_hs[k], 0)
        for p in POOLERS:
            tensors["single.pooled.%s" % p] = torch.stack(single_pooled[p], 0)
            d = (tensors["single.pooled.%s" % p] - tensors["pooled.%s" % p]).abs().max().item()
            REPORT.append("%-58s max|single-batched| (fp64) %9.3e" % ("%s forward pooled.%s" % (arch, p), d))
    a = ARCHS[arch]
    dump_json(os.path.join(out_dir, "%s_forward.json" % arch), {
        "model_dir": a["model_dir"],
        "arch": arch,
        "special_ids": a["special"],
        "position_offset": a["position_offset"],
        "num_sequences": len(seqs),
        "num_tokens": sum(len(s) for s in seqs),
        "lengths": [len(s) for s in seqs],
        "offsets": offsets_of(seqs),
        "poolers": POOLERS,
        "sequences": seqs,
    })
    save_tensors(os.path.join(out_dir, "%s_forward.safetensors" % arch), tensors)


def make_train_case(arch, m32, m64, out_dir, case, seqs, nfields, hn_weight):
    res = {}
    for tag, m in (("fp64", m64), ("fp32", m32)):
        m.zero_grad(set_to_none=True)
        loss, z, logits = simcse_loss(m, arch, seqs, TRAIN_B, nfields, hn_weight)
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
        m.zero_grad(set_to_none=True)
        res[tag] = (loss.detach(), z.detach(), logits.detach(), grads)
    loss, z, logits, grads = res["fp64"]
    loss32, z32, logits32, grads32 = res["fp32"]
    report("%s %s loss" % (arch, case), loss, loss32)
    report("%s %s z" % (arch, case), z, z32)
    report("%s %s logits" % (arch, case), logits, logits32)
    for n in grads:
        report("%s %s grad %s" % (arch, case, n), grads[n], grads32[n])
    tensors = {"loss": loss.reshape(1), "z": z, "logits": logits}
    tensors.update(grads)
    a = ARCHS[arch]
    dump_json(os.path.join(out_dir, "%s_train_%s.json" % (arch, case)), {
        "model_dir": a["model_dir"],
        "arch": arch,
        "case": case,
        "pooler": "cls",
        "temperature": TEMP,
        "hard_negative_weight": hn_weight,
        "batch_size": TRAIN_B,
        "num_fields": nfields,
        "num_sequences": len(seqs),
        "num_tokens": sum(len(s) for s in seqs),
        "lengths": [len(s) for s in seqs],
        "offsets": offsets_of(seqs),
        "sequences": seqs,
    })
    save_tensors(os.path.join(out_dir, "%s_train_%s.safetensors" % (arch, case)), tensors)


def run_adamw(m, arch, seqs):
    opt = torch.optim.AdamW(param_groups(m, ADAMW["weight_decay"]), lr=ADAMW["lr"],
                            betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"], foreach=False)
    losses, norms, lrs = [], [], []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad(set_to_none=True)
        loss, _, _ = simcse_loss(m, arch, seqs, TRAIN_B, 2, 0.0)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), ADAMW["max_grad_norm"])
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        losses.append(loss.detach().item())
        norms.append(norm.detach().item())
    return losses, norms, lrs


def make_adamw(arch, m32, m64, out_dir, seqs):
    m64 = copy.deepcopy(m64)
    m32 = copy.deepcopy(m32)
    losses, norms, lrs = run_adamw(m64, arch, seqs)
    losses32, norms32, _ = run_adamw(m32, arch, seqs)
    report("%s adamw losses" % arch, torch.tensor(losses), torch.tensor(losses32))
    report("%s adamw grad_norm" % arch, torch.tensor(norms), torch.tensor(norms32))
    p32 = dict(m32.named_parameters())
    tensors = {
        "loss": torch.tensor(losses, dtype=torch.float64),
        "grad_norm": torch.tensor(norms, dtype=torch.float64),
        "lr": torch.tensor(lrs, dtype=torch.float64),
    }
    for n, p in m64.named_parameters():
        tensors[n] = p.detach()
        report("%s adamw param %s" % (arch, n), p, p32[n])
    a = ARCHS[arch]
    dump_json(os.path.join(out_dir, "%s_adamw.json" % arch), {
        "model_dir": a["model_dir"],
        "arch": arch,
        "case": "unsup",
        "pooler": "cls",
        "temperature": TEMP,
        "hard_negative_weight": 0.0,
        "batch_size": TRAIN_B,
        "num_fields": 2,
        "steps": ADAMW["steps"],
        "lr": ADAMW["lr"],
        "lr_schedule": "constant (warmup 0, no decay)",
        "beta1": ADAMW["beta1"],
        "beta2": ADAMW["beta2"],
        "eps": ADAMW["eps"],
        "weight_decay": ADAMW["weight_decay"],
        "max_grad_norm": ADAMW["max_grad_norm"],
        "clip_eps": 1e-6,
        "no_decay": no_decay_names(m64),
        "num_sequences": len(seqs),
        "num_tokens": sum(len(s) for s in seqs),
        "lengths": [len(s) for s in seqs],
        "offsets": offsets_of(seqs),
        "sequences": seqs,
    })
    save_tensors(os.path.join(out_dir, "%s_adamw.safetensors" % arch), tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "model"))
    ap.add_argument("--report", action="store_true", help="print fp32-vs-fp64 deviations of PyTorch itself")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    os.makedirs(args.out, exist_ok=True)

    for k, arch in enumerate(("bert", "roberta")):
        gen = torch.Generator().manual_seed(SEED + k)
        rng = random.Random(SEED + 100 + k)
        m32 = build_model(arch, args.out, gen)
        m64 = copy.deepcopy(m32).double()
        m64.eval()

        make_forward(arch, m32, m64, args.out, rng)

        B = TRAIN_B
        lens = lambda: [rng.randint(3, 24) for _ in range(B)]
        s0 = [rand_seq(rng, arch, L) for L in lens()]
        s1 = [rand_seq(rng, arch, L) for L in lens()]
        s2 = [rand_seq(rng, arch, L) for L in lens()]
        make_train_case(arch, m32, m64, args.out, "unsup", s0 + s0, 2, 0.0)
        make_train_case(arch, m32, m64, args.out, "pairs", s0 + s1, 2, 0.0)
        make_train_case(arch, m32, m64, args.out, "hardneg", s0 + s1 + s2, 3, HN_WEIGHT)
        make_adamw(arch, m32, m64, args.out, s0 + s0)

    if args.report:
        print("\n".join(REPORT))
    total = 0
    for root, _, files in os.walk(args.out):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)   # safetensors writes 0600
            total += os.path.getsize(os.path.join(root, f))
    print("wrote %s (%d bytes)" % (args.out, total), file=sys.stderr)


if __name__ == "__main__":
    main()
