#!/usr/bin/env bash
# The kill-and-resume loop: train a tiny model (one rank, or every fourth loop
# two ranks as threads) with a checkpoint every step and an evaluation (and
# best-model export) every 10 steps, kill -9 it at random moments (in setup, a
# step, a checkpoint swap, an export, an fsync), and --resume it until it
# finishes. Every run must finish; its losses, learning rates, gradient norms
# and evaluations must equal those of one uninterrupted run, each step and each
# evaluation must be logged exactly once, the exported model and the last
# checkpoint must be byte-identical, and nothing temporary may be left. A shell
# script rather than a Criterion test because it drives the real binary with
# real signals; .ci/run runs it (20-40 s on 2 idle cores, about 2 minutes on a loaded machine).
#
#   tests/kill_resume.sh [path/to/simcse]     KILL_LOOPS=8 KILL_SEED=N to vary
set -uo pipefail
BIN=${1:-build/simcse}
LOOPS=${KILL_LOOPS:-8}
SEED=${KILL_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
STEPS=40
DATA=${SIMCSE_DATA_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
[ -d "$DATA/tokenizers" ] || DATA=$(cd "$(dirname "$0")/.." && pwd)/../shared/data

work=$(mktemp -d /tmp/simcse_kill_XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/model.json" <<'EOF'
{"model_type": "bert", "vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 1,
 "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32,
 "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0}
EOF
for i in $(seq 0 59); do echo "sentence number $i says $([ $((i % 3)) = 0 ] && echo odd || echo nice) things about $((i * 7)) cats"; done >"$work/train.txt"
cat >"$work/config.json" <<EOF
{"model_config": "$work/model.json", "tokenizer": "$DATA/tokenizers/bert-base-uncased",
 "train_file": "$work/train.txt", "data_dir": "$DATA", "batch_size": 8, "max_steps": $STEPS,
 "learning_rate": 1e-3, "warmup_steps": 4, "eval_tasks": "stsb", "eval_steps": 10, "logging_steps": 4,
 "save_steps": 1, "max_seq_len": 16, "precision": "fp32", "pooler": "avg", "mlp_only_train": false}
EOF

# "step loss lr grad_norm" of each training record, "step eval" of each evaluation
train_records() { sed -n 's/^{"step": \([0-9]*\), "epoch": [0-9]*, "loss": \([^,]*\), "lr": \([^,]*\), "grad_norm": \([^,]*\),.*/\1 \2 \3 \4/p' "$1"; }
eval_records() { sed -n 's/^{"step": \([0-9]*\), "eval_dev_avg_spearman": \([^,]*\),.*/\1 \2/p' "$1"; }

fail=0
t0=$(date +%s%N)
if ! "$BIN" train --config "$work/config.json" --output "$work/ref" --quiet >/dev/null 2>"$work/ref.log"; then
    echo "kill_resume: the uninterrupted run failed:"; cat "$work/ref.log"; exit 1
fi
# kill moments scale with the uninterrupted run's length (fsync makes it vary tenfold with the disk)
run_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $run_ms -ge 200 ] || run_ms=200
# and with the setup (a resume with nothing left to do), so that most lives get past it
cp -r "$work/ref" "$work/done"
t0=$(date +%s%N)
"$BIN" train --resume "$work/done" --quiet >/dev/null 2>&1 || { echo "kill_resume: resuming a finished run failed"; exit 1; }
setup_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# every fourth loop runs two ranks (threads) with half the batch each: its own reference
if ! "$BIN" train --config "$work/config.json" --output "$work/ref2" --ranks 2 --set batch_size=4 --quiet \
    >/dev/null 2>"$work/ref.log"; then
    echo "kill_resume: the uninterrupted two-rank run failed:"; cat "$work/ref.log"; exit 1
fi
for r in ref ref2; do
    train_records "$work/$r/metrics.jsonl" >"$work/$r.train"
    eval_records "$work/$r/metrics.jsonl" >"$work/$r.eval"
    [ "$(wc -l <"$work/$r.train")" -eq $STEPS ] || { echo "kill_resume: $r has $(wc -l <"$work/$r.train") step records, not $STEPS"; exit 1; }
done

kills=0 resumes=0 restarts=0 mismatches=0 in_save=0 mid_swap=0 in_export=0
for loop in $(seq 1 "$LOOPS"); do
    out="$work/run$loop" ref=ref ranks=()
    [ $((loop % 4)) -eq 0 ] && ref=ref2 ranks=(--ranks 2)
    fresh=("$BIN" train --config "$work/config.json" --output "$out" --quiet "${ranks[@]}")
    [ $ref = ref2 ] && fresh+=(--set batch_size=4)
    cmd=("${fresh[@]}")
    attempts=0 stalled=0 last_step=-1
    while :; do
        attempts=$((attempts + 1))
        if [ $attempts -gt 300 ]; then
            echo "kill_resume: loop $loop: not done after 300 starts (at step $last_step); the last one said:"
            cat "$work/last.log"; fail=1; break
        fi
        "${cmd[@]}" >/dev/null 2>"$work/last.log" &
        pid=$!
        # lives from setup to a few steps in: in setup, a step, a swap, an export, an fsync;
        # longer after lives that got nowhere (a loaded machine's setup takes longer)
        ms=$(( setup_ms / 3 + (RANDOM * 32768 + RANDOM) % (run_ms / 6 + setup_ms) + stalled * setup_ms / 2 ))
        sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
        kill -9 $pid 2>/dev/null
        { wait $pid; } 2>/dev/null
        rc=$?
        if [ $rc -eq 0 ]; then break; fi
        if [ $rc -eq 137 ]; then
            kills=$((kills + 1))
            step=$(sed -n 's/.*"step":[[:space:]]*\([0-9]*\).*/\1/p' "$out/checkpoint/trainer_state.json" 2>/dev/null | head -n 1)
            if [ "${step:--1}" -gt $last_step ]; then stalled=0 last_step=$step; else stalled=$((stalled + 1)); fi
            # where the kill fell, as the directory shows it
            [ -e "$out/checkpoint.tmp" ] && in_save=$((in_save + 1))
            [ ! -e "$out/checkpoint" ] && [ -e "$out/checkpoint.old" ] && mid_swap=$((mid_swap + 1))
            [ -n "$(find "$out" -maxdepth 2 -name '*.tmp[0-9]*' -not -path '*/checkpoint*' 2>/dev/null)" ] && in_export=$((in_export + 1))
        elif grep -q "no checkpoint to resume" "$work/last.log"; then
            : # killed during setup, before its step-0 checkpoint: nothing was trained
        else
            echo "kill_resume: loop $loop: exit $rc after $kills kills:"; cat "$work/last.log"; fail=1; break
        fi
        if [ -d "$out/checkpoint" ] || [ -d "$out/checkpoint.old" ]; then
            cmd=("$BIN" train --resume "$out" --quiet "${ranks[@]}")
            resumes=$((resumes + 1))
        else
            cmd=("${fresh[@]}" --overwrite)
            restarts=$((restarts + 1))
        fi
    done
    [ $fail -eq 0 ] || break
    bad=""
    train_records "$out/metrics.jsonl" | cmp -s - "$work/$ref.train" || bad="$bad losses"
    eval_records "$out/metrics.jsonl" | cmp -s - "$work/$ref.eval" || bad="$bad evaluations"
    [ "$(grep -c '"step"' "$out/metrics.jsonl")" -eq "$(grep -c '"step"' "$work/$ref/metrics.jsonl")" ] || bad="$bad record-count"
    for f in model.safetensors config.json checkpoint/model.safetensors checkpoint/optimizer.safetensors; do
        cmp -s "$out/$f" "$work/$ref/$f" || bad="$bad $f"
    done
    left=$(find "$out" -name '*.tmp[0-9]*' -o -name 'checkpoint.tmp' -o -name 'checkpoint.old')
    [ -z "$left" ] || bad="$bad leftovers:$(echo $left | tr ' ' ',')"
    if [ -n "$bad" ]; then
        mismatches=$((mismatches + 1))
        echo "kill_resume: loop $loop (${ranks[*]:-one rank}) differs from the uninterrupted run:$bad"
        diff <(train_records "$out/metrics.jsonl") "$work/$ref.train" | head -5
    fi
done
echo "kill_resume: $LOOPS loops ($((LOOPS / 4)) with two ranks; seed $SEED; uninterrupted run ${run_ms} ms, setup ${setup_ms} ms): $kills kills ($in_save during a checkpoint write, $mid_swap between" \
     "the swap's renames, $in_export during an export), $resumes resumes, $restarts fresh restarts," \
     "$mismatches mismatching runs"
[ $fail -eq 0 ] && [ $mismatches -eq 0 ]
