#!/usr/bin/env python3
"""Checks that a model directory exported by `simcse train` is a working
sentence-transformers / transformers model, and that `simcse encode` gives the
same embeddings as those libraries.

usage:
  python3 tests/check_sentence_transformers.py --model OUT_DIR --simcse build/simcse \\
      --sentences FILE [--pooler P] [--min-cos 0.9999] [--device cpu|cuda] \\
      [--simcse-arg ARG ...] [--batch-size N]

OUT_DIR is the exported directory: config.json + model.safetensors + tokenizer
files, and the sentence-transformers files modules.json,
sentence_bert_config.json, 1_Pooling/config.json and, for the 'cls' pooler
(SimCSE's MLP head), 2_Dense (Linear + Tanh).

What it does
  1. SentenceTransformer(OUT_DIR).encode(sentences)            -> E_st
  2. AutoTokenizer + AutoModel.from_pretrained(OUT_DIR), with SimCSE's pooler
     P computed as princeton-nlp/SimCSE simcse/models.py does  -> E_hf
     (cls = tanh(pooler.dense(h_CLS)), cls_before_pooler = h_CLS,
      avg = masked mean of the last layer, avg_first_last = mean of
      (hidden_states[1] + hidden_states[-1]) / 2, avg_top2 = mean of
      (hidden_states[-1] + hidden_states[-2]) / 2)
  3. SIMCSE encode --model OUT_DIR --pooler P --output TMP.npy --input FILE
     [ARG ...]                                                  -> E_c
  4. per sentence: cos(E_c, E_st) >= min-cos, cos(E_c, E_hf) >= min-cos and
     cos(E_st, E_hf) >= min-cos (the export is self-consistent).
     sentence-transformers has no pooling for avg_first_last / avg_top2: for
     those only E_c vs E_hf is checked (and the ST export is not compared).

P defaults to what the export describes: 2_Dense with Tanh -> cls, Pooling
'cls' -> cls_before_pooler, Pooling 'mean' -> avg.

Every line of FILE is one sentence (empty lines included, as simcse reads
them). Prints a summary; exits 0 when every check passes, 1 when one fails,
2 on a usage or setup error.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

POOLERS = ["cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2"]


def die(msg, code=2):
    print("check_sentence_transformers: error: " + msg, file=sys.stderr)
    sys.exit(code)


def read_sentences(path):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()                        # the newline that ends the last line
    return [l[:-1] if l.endswith("\r") else l for l in lines]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def export_description(model_dir):
    """What the sentence-transformers files of the export say: (modules, pooling
    mode, dense activation or None, max_seq_length or None)."""
    modules_path = os.path.join(model_dir, "modules.json")
    if not os.path.exists(modules_path):
        die("%s: no modules.json: not a sentence-transformers export" % model_dir)
    modules = read_json(modules_path)
    pooling_mode, dense_act = None, None
    for m in modules:
        kind = m.get("type", "")
        path = os.path.join(model_dir, m.get("path", ""))
        if kind.endswith("Pooling"):
            cfg = read_json(os.path.join(path, "config.json"))
            if "pooling_mode" in cfg:       # sentence-transformers >= 5.x style
                pm = cfg["pooling_mode"]
                pooling_mode = pm if isinstance(pm, str) else "+".join(pm)
            else:                           # classic flags
                on = [k[len("pooling_mode_"):] for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
                on = ["cls" if k == "cls_token" else "mean" if k == "mean_tokens" else k for k in on]
                pooling_mode = "+".join(on)
        elif kind.endswith("Dense"):
            cfg = read_json(os.path.join(path, "config.json"))
            dense_act = cfg.get("activation_function", "torch.nn.modules.activation.Tanh")
    sb = os.path.join(model_dir, "sentence_bert_config.json")
    max_seq = read_json(sb).get("max_seq_length") if os.path.exists(sb) else None
    return modules, pooling_mode, dense_act, max_seq


def implied_pooler(pooling_mode, dense_act):
    if dense_act is not None:
        if pooling_mode == "cls" and dense_act.endswith("Tanh"):
            return "cls"
        return None
    return {"cls": "cls_before_pooler", "mean": "avg"}.get(pooling_mode)


def cosine_rows(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-30)


def hf_reference(model_dir, sentences, pooler, max_len, device, batch_size):
    """transformers + SimCSE's pooler, in float64. Returns (embeddings, token counts)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model, info = AutoModel.from_pretrained(model_dir, output_loading_info=True, attn_implementation="eager")
    missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
    if pooler == "cls" and any("pooler" in k for k in missing):
        die("%s: model.safetensors has no pooler.dense (the MLP head): %s" % (model_dir, missing))
    if missing:
        print("note: transformers reports missing keys %s" % missing)
    model = model.to(device=device, dtype=torch.float64).eval()
    out_rows, counts = [], []
    with torch.no_grad():
        for i in range(0, len(sentences), batch_size):
            batch = sentences[i : i + batch_size]
            enc = tok(batch, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            full = tok(batch, truncation=False)["input_ids"]
            counts.extend(len(x) for x in full)
            enc = {k: v.to(device) for k, v in enc.items()}
            o = model(**enc, output_hidden_states=True, return_dict=True)
            mask = enc["attention_mask"].unsqueeze(-1).to(torch.float64)
            den = mask.sum(1)
            hs = o.hidden_states
            if pooler == "cls":
                z = o.pooler_output
            elif pooler == "cls_before_pooler":
                z = o.last_hidden_state[:, 0]
            elif pooler == "avg":
                z = (o.last_hidden_state * mask).sum(1) / den
            elif pooler == "avg_first_last":
                z = ((hs[1] + hs[-1]) / 2.0 * mask).sum(1) / den
            else:
                z = ((hs[-1] + hs[-2]) / 2.0 * mask).sum(1) / den
            out_rows.append(z.cpu().numpy())
    return np.concatenate(out_rows, 0), counts, tok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="exported model directory")
    ap.add_argument("--simcse", required=True, help="the simcse binary (build/simcse)")
    ap.add_argument("--sentences", required=True, help="text file, one sentence a line")
    ap.add_argument("--pooler", choices=POOLERS, help="default: the one the export describes")
    ap.add_argument("--min-cos", type=float, default=0.9999)
    ap.add_argument("--device", default="cpu", help="torch device for the Python side (cpu, cuda)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--simcse-arg", action="append", default=[],
                    help="extra argument for `simcse encode` (repeat), e.g. --simcse-arg=--device --simcse-arg=cpu")
    ap.add_argument("--output", help="where simcse writes its .npy (default: a temporary file)")
    args = ap.parse_args()

    if not os.path.isdir(args.model):
        die("%s: not a directory" % args.model)
    if not os.path.exists(args.simcse):
        die("%s: no such binary (run make first)" % args.simcse)
    sentences = read_sentences(args.sentences)
    if not sentences:
        die("%s: no sentences" % args.sentences)

    modules, pooling_mode, dense_act, max_seq = export_description(args.model)
    implied = implied_pooler(pooling_mode, dense_act)
    pooler = args.pooler or implied
    if pooler is None:
        die("the export's pooling (%s, dense %s) matches no SimCSE pooler; pass --pooler" % (pooling_mode, dense_act))
    print("model      %s" % args.model)
    print("modules    %s" % ", ".join("%s:%s" % (m.get("path") or ".", m.get("type", "?").split(".")[-1]) for m in modules))
    print("export     pooling=%s dense=%s max_seq_length=%s -> pooler %s" % (pooling_mode, dense_act, max_seq, implied))
    print("pooler     %s%s" % (pooler, "" if args.pooler is None else " (from --pooler)"))
    print("sentences  %d from %s" % (len(sentences), args.sentences))

    failures = []
    st_comparable = pooler in ("cls", "cls_before_pooler", "avg")
    if args.pooler is not None and implied is not None and args.pooler != implied:
        if st_comparable:
            failures.append("--pooler %s differs from the pooler the export describes (%s)" % (args.pooler, implied))
        st_comparable = False

    cfg = read_json(os.path.join(args.model, "config.json"))
    pos_offset = cfg.get("pad_token_id", 1) + 1 if cfg.get("model_type") in ("roberta", "xlm-roberta", "camembert") else 0
    max_len = max_seq or (cfg.get("max_position_embeddings", 512) - pos_offset)

    # 1. sentence-transformers
    e_st = None
    if st_comparable:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(args.model, device=args.device)
        e_st = st.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True,
                         normalize_embeddings=False, show_progress_bar=False).astype(np.float64)
        print("sentence-transformers: %s x %s, max_seq_length %s" % (e_st.shape[0], e_st.shape[1], st.max_seq_length))
        if st.max_seq_length is not None:
            max_len = st.max_seq_length
    else:
        print("sentence-transformers: not compared (%s)" % (
            "no sentence-transformers pooling for %s" % pooler if pooler in ("avg_first_last", "avg_top2")
            else "--pooler differs from the export"))

    # 2. transformers + SimCSE pooler
    e_hf, counts, _ = hf_reference(args.model, sentences, pooler, max_len, args.device, args.batch_size)
    long_ones = [i for i, c in enumerate(counts) if c > max_len]
    if long_ones:
        print("note: %d sentences are longer than %d tokens and get truncated (first: line %d)"
              % (len(long_ones), max_len, long_ones[0] + 1))

    # 3. simcse encode
    tmpdir = None
    out = args.output
    if out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="simcse-st-check-")
        out = os.path.join(tmpdir.name, "emb.npy")
    cmd = [args.simcse, "encode", "--model", args.model, "--pooler", pooler, "--output", out,
           "--input", args.sentences] + args.simcse_arg
    print("running    %s" % " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        die("simcse encode exited with status %d" % r.returncode, 1)
    e_c = np.load(out)
    if tmpdir is not None:
        tmpdir.cleanup()
    print("simcse encode: %s, dtype %s" % (" x ".join(map(str, e_c.shape)), e_c.dtype))
    if e_c.ndim != 2 or e_c.shape != e_hf.shape:
        die("simcse wrote shape %s, expected %s" % (e_c.shape, e_hf.shape), 1)
    if not np.all(np.isfinite(e_c)):
        die("simcse wrote non-finite values", 1)

    # 4. compare
    pairs = [("simcse vs transformers", e_c, e_hf)]
    if e_st is not None:
        pairs += [("simcse vs sentence-transformers", e_c, e_st),
                  ("sentence-transformers vs transformers", e_st, e_hf)]
    print()
    print("%-40s %12s %12s %14s %10s" % ("comparison", "min cos", "mean cos", "max |diff|", "failures"))
    for name, a, b in pairs:
        cos = cosine_rows(a, b)
        bad = np.nonzero(~(cos >= args.min_cos))[0]
        print("%-40s %12.8f %12.8f %14.3e %10d" % (name, cos.min(), cos.mean(), np.abs(a - b).max(), len(bad)))
        for i in bad[:5]:
            failures.append("%s: line %d cos %.8f: %r" % (name, i + 1, cos[i], sentences[i][:80]))
        if len(bad) > 5:
            failures.append("%s: ... %d more below %.6f" % (name, len(bad) - 5, args.min_cos))
    print()
    if failures:
        print("FAIL (min cos %.6f):" % args.min_cos)
        for f in failures:
            print("  " + f)
        return 1
    print("PASS: %d sentences, pooler %s, every cosine >= %.6f" % (len(sentences), pooler, args.min_cos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
