#!/usr/bin/env bash
# bench/run.sh: one command for the benchmarks (`make bench` runs it).
#
# With a GPU (nvidia-smi lists one): builds with CUDA, runs bench_kernels (fp32 and
# bf16), bench_step at the issue's configurations (base B=64/512 L=32, base B=128
# L=128, large B=512 L=32, real sentences at B=64 and B=512, gradient caching at
# B=512 chunk 128) and, in the same run on the same card, the PyTorch baseline
# (../shared/bench/torch_simcse.py: eager, torch.compile, reduce-overhead) plus
# SDPA / InfoNCE kernel baselines; then prints a markdown table (card, date, our
# ms/step, each PyTorch figure, ratios) and appends it to bench/RESULTS.md.
# Without a GPU: builds CPU-only and runs small CPU configurations (tiny model) of
# both programs to show they work; GPU figures need a GPU machine.
#
# Environment (all optional):
#   BUILD            build directory (default build with a GPU, build-nocuda without)
#   BENCH_OUT        where logs and JSON go (default $BUILD/bench-out/<UTC time>); a later
#                    call with the same BENCH_OUT reuses what an earlier one measured
#   BENCH_PARTS      comma list of kernels,steps,torch,encode (default all four)
#   BENCH_APPEND     1: append the table to bench/RESULTS.md (default 1 with a GPU, 0 without)
#   BENCH_TIMEOUT    seconds per command (default 600; PyTorch compile runs get twice that)
#   TORCH_ALL_MODES  1: torch.compile and reduce-overhead for every config, not only
#                    the ones the targets name (each compilation costs about a minute)
#   PYTHON           interpreter for the PyTorch baseline (default python3)
#   SIMCSE_DATA_DIR  data directory (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=$(cd .. && pwd)/shared
DATA=${SIMCSE_DATA_DIR:-../shared/data}
CORPUS=$DATA/corpus/wiki1m_for_simcse.head.txt
TORCH_BENCH=$SHARED/bench/torch_simcse.py
PYTHON=${PYTHON:-python3}
TMO=${BENCH_TIMEOUT:-600}
PARTS=",${BENCH_PARTS:-kernels,steps,torch,encode},"

GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then GPU=1; fi

if [ "$GPU" = 1 ]; then
    BUILD=${BUILD:-build}
    MAKE_ARGS=(BUILD="$BUILD")
    CARD=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i 0 | head -n 1)
else
    BUILD=${BUILD:-build-nocuda}
    MAKE_ARGS=(CUDA=0 BUILD="$BUILD")
    CARD="CPU only: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
fi
DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=${BENCH_OUT:-$BUILD/bench-out/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
APPEND=${BENCH_APPEND:-$GPU}

echo "== bench: $CARD | $DATE | results in $OUT"
echo "== build"
make -j"$(nproc)" "${MAKE_ARGS[@]}" -f Makefile -f bench/bench.mk "$BUILD/simcse" "$BUILD/bench_step" "$BUILD/bench_kernels"
STEP=$BUILD/bench_step
KERN=$BUILD/bench_kernels

FAILED=()
# run TAG SECONDS CMD...: runs CMD with a timeout, output to the terminal and OUT/TAG.log;
# a failure is recorded and the remaining benchmarks still run.
run() {
    local tag=$1 t=$2 rc=0
    shift 2
    echo "== $tag: $*"
    if timeout -k 10 "$t" "$@" 2>&1 | tee "$OUT/$tag.log"; then :; else rc=$?; fi
    if [ "$rc" != 0 ]; then
        [ "$rc" = 124 ] && echo "== $tag: timed out after ${t}s" || echo "== $tag: failed (exit $rc)"
        FAILED+=("$tag")
    fi
    return 0
}
part() { case $PARTS in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# jnum FILE KEY [MATCH]: KEY's value in the last JSON line of FILE that contains MATCH
jnum() {
    [ -f "$1" ] || return 0
    { grep -F -- "${3:-\"bench\"}" "$1" || true; } | tail -n 1 |
        sed -n -e "s/.*\"$2\": \"\([^\"]*\)\".*/\1/p" -e t -e "s/.*\"$2\": \([^,}]*\).*/\1/p"
}
# tnum KEY FILE: second field of the line of FILE whose first field is KEY (last wins)
tnum() {
    [ -f "$2" ] || return 0
    awk -v k="$1" '$1 == k { v = $2 } END { if (v != "") print v }' "$2"
}
fmt() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "–"; else printf "%.2f", x }'; }
# ratio A B: B / A as "2.13x" (how many times faster A is than B)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", b / a; else print "–" }'; }

# ---------------------------------------------------------------- our benchmarks
if [ "$GPU" = 1 ]; then
    DEVICE=cuda
    DEV=(--device cuda --precision bf16)
    STEPS=(--steps 30 --warmup 10)
    # tag model batch seq|real
    STEP_CONFIGS=("base_64_32 base 64 32" "base_512_32 base 512 32" "base_128_128 base 128 128"
                  "large_512_32 large 512 32" "base_64_real base 64 real" "base_512_real base 512 real")
    GC=(base 512 32 128)
    KERNEL_RUNS=("kernels_fp32 --precision fp32" "kernels_bf16 --precision bf16")
else
    DEVICE=cpu
    DEV=(--device cpu)
    STEPS=(--steps 5 --warmup 2)
    STEP_CONFIGS=("tiny_16_32 tiny 16 32" "tiny_16_real tiny 16 real")
    GC=(tiny 32 32 8)
    KERNEL_RUNS=("kernels_cpu --small")
fi

if part kernels; then
    for k in "${KERNEL_RUNS[@]}"; do
        read -r -a a <<<"$k"
        rm -f "$OUT/${a[0]}.json"
        run "${a[0]}" "$TMO" "$KERN" --device "$DEVICE" "${a[@]:1}" --json "$OUT/${a[0]}.json"
    done
fi
if part steps; then
    for c in "${STEP_CONFIGS[@]}"; do
        read -r tag model b l <<<"$c"
        rm -f "$OUT/step_$tag.json"
        if [ "$l" = real ]; then
            run "step_$tag" "$TMO" "$STEP" --model "$model" --batch "$b" --data "$CORPUS" "${DEV[@]}" "${STEPS[@]}" \
                --json "$OUT/step_$tag.json"
        else
            run "step_$tag" "$TMO" "$STEP" --model "$model" --batch "$b" --seq "$l" "${DEV[@]}" "${STEPS[@]}" \
                --json "$OUT/step_$tag.json"
        fi
    done
    rm -f "$OUT/step_grad_cache.json"
    run step_grad_cache "$TMO" "$STEP" --model "${GC[0]}" --batch "${GC[1]}" --seq "${GC[2]}" \
        --compare-grad-cache "${GC[3]}" "${DEV[@]}" "${STEPS[@]}" --json "$OUT/step_grad_cache.json"
    if [ "$GPU" = 1 ]; then # the NCCL path with one rank against the same step without it (target: within 3%)
        rm -f "$OUT/step_nccl.json" "$OUT/step_nonccl.json"
        run step_nonccl "$TMO" "$STEP" --model base --batch 64 --seq 32 "${DEV[@]}" "${STEPS[@]}" \
            --json "$OUT/step_nonccl.json"
        run step_nccl "$TMO" "$STEP" --model base --batch 64 --seq 32 --nccl "${DEV[@]}" "${STEPS[@]}" \
            --json "$OUT/step_nccl.json"
    fi
fi

# ---------------------------------------------------------------- encode vs sentence-transformers
# The same randomly initialised model (made and saved by encode_baseline.py, mean pooling),
# the same sentences (STS-B), batch 256, max length 32, fp32, tokenization included.
ENC_N=10000 ENC_SIZE=base ENC_DEV=cuda
[ "$GPU" = 1 ] || { ENC_N=2000 ENC_SIZE=tiny ENC_DEV=cpu; }
if part encode; then
    if "$PYTHON" -c 'import sentence_transformers' >/dev/null 2>&1; then
        run encode_st "$TMO" "$PYTHON" bench/encode_baseline.py --model-dir "$OUT/encode-model-$ENC_SIZE" \
            --sentences-out "$OUT/encode-sentences.txt" --size "$ENC_SIZE" --n "$ENC_N" --device "$ENC_DEV" \
            --data "$DATA" || true
        run encode_simcse "$TMO" "$BUILD/simcse" encode --model "$OUT/encode-model-$ENC_SIZE" --pooler avg \
            --batch-size 256 --max-len 32 --precision fp32 --device "$ENC_DEV" --input "$OUT/encode-sentences.txt" \
            --output "$OUT/encode.npy" || true
    else
        echo "== encode: $PYTHON has no sentence_transformers; skipped"
    fi
fi

# ---------------------------------------------------------------- PyTorch, same card, same run
TORCH_NOTE=""
if [ "$GPU" = 1 ] && part torch; then
    if ! "$PYTHON" -c 'import sys, torch, transformers; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        TORCH_NOTE="PyTorch baseline not measured: $PYTHON cannot import torch with CUDA and transformers"
        echo "== $TORCH_NOTE"
    else
        "$PYTHON" -c 'import torch, transformers; print(torch.__version__, transformers.__version__)' >"$OUT/torch_version.txt"
        FIXED=base:64:32,base:512:32,base:128:128,large:512:32
        RO=base:64:32
        CO=base:512:32
        if [ "${TORCH_ALL_MODES:-0}" = 1 ]; then RO=$FIXED; CO=$FIXED; fi
        run torch_eager "$TMO" "$PYTHON" "$TORCH_BENCH" --configs "$FIXED" --json "$OUT/torch_eager.json"
        run torch_reduce_overhead $((2 * TMO)) "$PYTHON" "$TORCH_BENCH" --configs "$RO" --compile \
            --compile-mode reduce-overhead --json "$OUT/torch_reduce_overhead.json"
        run torch_compile $((2 * TMO)) "$PYTHON" "$TORCH_BENCH" --configs "$CO" --compile --json "$OUT/torch_compile.json"
        run torch_real "$TMO" "$PYTHON" "$TORCH_BENCH" --configs base:64:real,base:512:real --data "$CORPUS" \
            --vocab "$DATA/tokenizers/bert-base-uncased/vocab.txt" --json "$OUT/torch_real.json"
        # kernel baselines at bench_kernels' default shapes: SDPA (bf16, dropout 0.1) on
        # 128 sequences of 32 tokens, 12 heads of 64; InfoNCE as normalise + matmul +
        # cross-entropy (fp32, as SimCSE's loss) at N=4096, d=768; both forward + backward
        cat >"$OUT/torch_kernels.py" <<'EOF'
import json, sys, torch, torch.nn.functional as F
def timeit(fn, iters=50):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    s, e, t = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True), []
    for _ in range(5):
        s.record()
        for _ in range(iters): fn()
        e.record(); torch.cuda.synchronize(); t.append(s.elapsed_time(e) / iters)
    return sorted(t)[2]
S, L, NH, HD, N, D = (int(x) for x in sys.argv[1:7])
q, k, v = (torch.randn(S, NH, L, HD, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
do = torch.randn_like(q)
def attn():
    o = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1)
    torch.autograd.grad(o, (q, k, v), do)
a, c = (torch.randn(N, D, device="cuda", requires_grad=True) for _ in range(2))
lab = torch.arange(N, device="cuda")
def nce():
    loss = F.cross_entropy(F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T / 0.05, lab)
    torch.autograd.grad(loss, (a, c))
rows = [dict(op="attention_fwd_bwd", ms=timeit(attn)), dict(op="infonce_fwd_bwd", ms=timeit(nce))]
for r in rows: print(f"torch {r['op']:20s} {r['ms']:.4f} ms")
json.dump(rows, open(sys.argv[7], "w"))
EOF
        run torch_kernels "$TMO" "$PYTHON" "$OUT/torch_kernels.py" 128 32 12 64 4096 768 "$OUT/torch_kernels.json"
        # flatten the PyTorch results: "model:batch:seq:mode ms useful_fraction" per line
        : >"$OUT/torch.tsv"
        for f in "$OUT"/torch_eager.json "$OUT"/torch_reduce_overhead.json "$OUT"/torch_compile.json "$OUT"/torch_real.json; do
            [ -f "$f" ] || continue
            "$PYTHON" -c 'import json, sys
for r in json.load(open(sys.argv[1])):
    mode = r["compiled"] if r["compiled"] else "eager"
    print("%s:%s:%s:%s %.4f %.4f" % (r["model"], r["batch"], r["seq_len"], mode, r["ms_per_step"], r["useful_token_fraction"]))' \
                "$f" >>"$OUT/torch.tsv" || FAILED+=("parse $f")
        done
        if [ -f "$OUT/torch_kernels.json" ]; then
            "$PYTHON" -c 'import json, sys
for r in json.load(open(sys.argv[1])): print(r["op"], "%.4f" % r["ms"])' "$OUT/torch_kernels.json" \
                >"$OUT/torch_kernels.tsv" || FAILED+=("parse torch_kernels.json")
        fi
    fi
fi

# ---------------------------------------------------------------- the table
TABLE=$OUT/table.md
{
    if [ "$GPU" = 1 ]; then
        echo "## $DATE — $CARD"
    else
        echo "## $DATE — CPU smoke run (not a performance claim)"
    fi
    echo
    echo "- card: $CARD"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' (with uncommitted changes)')"
    [ -f "$OUT/torch_version.txt" ] && echo "- PyTorch / transformers: $(cat "$OUT/torch_version.txt") (measured in this run, same card)"
    [ -n "$TORCH_NOTE" ] && echo "- $TORCH_NOTE"
    [ "$GPU" = 1 ] || echo "- no GPU on this machine: tiny model on the CPU reference backend; GPU figures need a GPU machine"
    [ "${#FAILED[@]}" -gt 0 ] && echo "- FAILED or timed out: ${FAILED[*]} (logs in $OUT)"
    echo
    echo "| config | ours ms/step | ours sent/s | torch eager | torch compile | torch reduce-overhead | vs eager | vs compile | vs reduce-overhead | target |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    TSV=$OUT/torch.tsv
    for c in "${STEP_CONFIGS[@]}"; do
        read -r tag model b l <<<"$c"
        f=$OUT/step_$tag.json
        ms=$(jnum "$f" ms_median)
        sps=$(jnum "$f" sentences_per_s)
        key=$model:$b:$l
        te=$(tnum "$key:eager" "$TSV")
        tc=$(tnum "$key:default" "$TSV")
        tr=$(tnum "$key:reduce-overhead" "$TSV")
        case $tag in
            base_64_32) target=">= 2x reduce-overhead" ;;
            base_512_32) target=">= 1.9x compile" ;;
            base_128_128 | large_512_32) target=">= 2x eager" ;;
            *_real) target=">= 2.5x" ;;
        esac
        [ "$GPU" = 1 ] || target="(CPU smoke run)"
        label="$model B=$b L=$l"
        if [ "$l" = real ]; then
            uf=$(jnum "$f" useful_token_fraction)
            label="$model B=$b real sentences (useful tokens $(fmt "$uf") of padded)"
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(fmt "$ms")" \
            "$(awk -v x="$sps" 'BEGIN { if (x == "") print "–"; else printf "%.0f", x }')" \
            "$(fmt "$te")" "$(fmt "$tc")" "$(fmt "$tr")" "$(ratio "$ms" "$te")" "$(ratio "$ms" "$tc")" \
            "$(ratio "$ms" "$tr")" "$target"
    done
    g=$OUT/step_grad_cache.json
    echo
    echo "| gradient caching | cached ms/step | uncached ms/step | cached / uncached | target |"
    echo "|---|---|---|---|---|"
    printf '| %s B=%s L=%s chunk %s | %s | %s | %s | %s |\n' "${GC[0]}" "${GC[1]}" "${GC[2]}" "${GC[3]}" \
        "$(fmt "$(jnum "$g" ms_cached)")" "$(fmt "$(jnum "$g" ms_uncached)")" \
        "$(awk -v x="$(jnum "$g" ratio)" 'BEGIN { if (x == "") print "–"; else printf "%.3fx", x }')" \
        "$([ "$GPU" = 1 ] && echo '<= 1.4x' || echo '(CPU smoke run)')"
    if [ "$GPU" = 1 ]; then
        echo
        echo "| one-rank NCCL path | with NCCL ms/step | without ms/step | ratio | target |"
        echo "|---|---|---|---|---|"
        a=$(jnum "$OUT/step_nccl.json" ms_median)
        b=$(jnum "$OUT/step_nonccl.json" ms_median)
        printf '| base B=64 L=32 | %s | %s | %s | <= 1.03x |\n' "$(fmt "$a")" "$(fmt "$b")" "$(ratio "$b" "$a")"
    fi
    if [ -f "$OUT/encode_simcse.log" ] && [ -f "$OUT/encode_st.log" ]; then
        es=$(sed -n 's/.*(\([0-9.]*\) sentences\/s).*/\1/p' "$OUT/encode_simcse.log" | tail -n 1)
        et=$(sed -n 's/.*"sentences_per_s": \([0-9.]*\).*/\1/p' "$OUT/encode_st.log" | tail -n 1)
        echo
        echo "| encode ($ENC_SIZE, $ENC_N STS-B sentences, batch 256, len 32, fp32) | ours sentences/s | sentence-transformers | ratio | target |"
        echo "|---|---|---|---|---|"
        printf '| %s | %s | %s | %s | %s |\n' "$ENC_DEV" "$(fmt "$es")" "$(fmt "$et")" "$(ratio "$et" "$es")" \
            "$([ "$GPU" = 1 ] && echo '>= 10x' || echo '(CPU smoke run)')"
    fi
    kf=$OUT/kernels_bf16.json
    [ "$GPU" = 1 ] || kf=$OUT/kernels_cpu.json
    echo
    echo "| kernel (fwd+bwd) | ours ms | torch ms | speedup | target |"
    echo "|---|---|---|---|---|"
    KT=$OUT/torch_kernels.tsv
    ka=$(jnum "$kf" ms '"op": "attention fwd+bwd"')
    ki=$(jnum "$kf" ms '"op": "infonce fwd+bwd"')
    ta=$(tnum attention_fwd_bwd "$KT")
    ti=$(tnum infonce_fwd_bwd "$KT")
    kt=">= 5x"
    [ "$GPU" = 1 ] || kt="(CPU smoke run)"
    printf '| attention, %s (torch: SDPA bf16) | %s | %s | %s | %s |\n' \
        "$(jnum "$kf" shape '"op": "attention fwd+bwd"')" "$(fmt "$ka")" "$(fmt "$ta")" "$(ratio "$ka" "$ta")" "$kt"
    printf '| InfoNCE, %s (torch: normalize + matmul + cross_entropy, fp32) | %s | %s | %s | %s |\n' \
        "$(jnum "$kf" shape '"op": "infonce fwd+bwd"')" "$(fmt "$ki")" "$(fmt "$ti")" "$(ratio "$ki" "$ti")" "$kt"
    for k in "${KERNEL_RUNS[@]}"; do
        read -r -a a <<<"$k"
        [ -f "$OUT/${a[0]}.log" ] || continue
        echo
        echo "bench_kernels (${a[*]:1}):"
        echo
        echo '```'
        grep -v '^== ' "$OUT/${a[0]}.log" || true
        echo '```'
    done
    echo
} >"$TABLE"

echo
cat "$TABLE"
if [ "$APPEND" = 1 ]; then
    cat "$TABLE" >>bench/RESULTS.md
    echo "== appended to bench/RESULTS.md"
else
    echo "== not appended to bench/RESULTS.md (BENCH_APPEND=1 to append)"
fi
if [ "$GPU" != 1 ]; then
    echo "== no GPU here: these are CPU smoke runs of both programs (tiny model), not performance figures."
    echo "== GPU figures and the PyTorch comparison need a GPU machine: run 'bash bench/run.sh' (or 'make bench') there."
fi
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "== FAILED: ${FAILED[*]}" >&2
    exit 1
fi
