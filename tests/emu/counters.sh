#!/usr/bin/env bash
# The counters of a steady-state training step on the CPU execution harness (issue 11 rule 10),
# against issue 12's targets and the ratchet.
#   tests/emu/counters.sh            (needs make bench-emu: build-emu/bench_step)
# Runs build-emu/bench_step --device cuda --steps 2 --warmup 1 --counters on tests/emu/counters-model.json
# (the tiny model's 2 layers at width 64 with a 2,048-token vocabulary, B=8, L=16, one thread order:
# EMU_ORDERS=1; the tiny model's 30,522 x 128 embedding table takes many minutes per step under the
# emulation, and no launch count depends on width, vocabulary or batch), prints its counters line
# and a table of issue 12's targets (MET / MISSED: information, not failure), and
# fails when any figure is worse than tests/emu/counters_ratchet.txt (key=value lines: today's
# measured figures). The ratchet only goes down: whoever improves a figure lowers it in the same
# commit; raising one needs a reason in the commit message. Per-layer launch counts do not depend
# on width, so this model stands for BERT-base (h2d_bytes is for this batch).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BENCH_STEP:-build-emu/bench_step}
RATCHET=${COUNTERS_RATCHET:-tests/emu/counters_ratchet.txt}
[ -x "$BIN" ] || { echo "counters.sh: $BIN not found (make bench-emu)"; exit 1; }
[ -r "$RATCHET" ] || { echo "counters.sh: $RATCHET not found"; exit 1; }

out=$(EMU_ORDERS=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp ASAN_OPTIONS=detect_stack_use_after_return=0 \
    "$BIN" --model tests/emu/counters-model.json --device cuda --steps 2 --warmup 1 --batch 8 --seq 16 --counters) || {
    echo "$out"
    echo "counters.sh: $BIN failed"
    exit 1
}
line=$(grep '^counters: ' <<<"$out" || true)
[ "$(grep -c '^counters: ' <<<"$out")" = 1 ] || { echo "$out"; echo "counters.sh: expected exactly one counters line"; exit 1; }
echo "$line"
declare -A got want
for kv in ${line#counters: }; do got[${kv%%=*}]=${kv#*=}; done
keys="launches_per_layer optimizer_launches host_syncs allocations h2d_bytes graph"
for k in $keys; do
    [ -n "${got[$k]:-}" ] || { echo "counters.sh: '$k' missing from the counters line"; exit 1; }
done

# issue 12's targets (h2d_bytes has none: the batch upload is needed)
printf '%-20s %10s %10s  %s\n' figure measured target status
target() { # key op value
    local v=${got[$1]} ok
    case $2 in
        le) [ "$v" -le "$3" ] && ok=MET || ok=MISSED; printf '%-20s %10s %10s  %s\n' "$1" "$v" "<= $3" $ok ;;
        eq) [ "$v" = "$3" ] && ok=MET || ok=MISSED; printf '%-20s %10s %10s  %s\n' "$1" "$v" "= $3" $ok ;;
    esac
}
target launches_per_layer le 24
target optimizer_launches le 4
target host_syncs eq 0
target allocations eq 0
target graph eq yes

# the ratchet: nothing may get worse
while IFS= read -r l; do
    l=${l%%#*}
    l=${l// /}
    [ -n "$l" ] || continue
    want[${l%%=*}]=${l#*=}
done <"$RATCHET"
fail=0
for k in $keys; do
    w=${want[$k]:-}
    [ -n "$w" ] || { echo "counters.sh: $RATCHET has no '$k'"; fail=1; continue; }
    if [ "$k" = graph ]; then
        if [ "$w" = yes ] && [ "${got[$k]}" != yes ]; then
            echo "counters.sh: graph=${got[$k]}, the ratchet says yes (the step stopped being a graph replay)"
            fail=1
        fi
    elif [ "${got[$k]}" -gt "$w" ]; then
        echo "counters.sh: $k=${got[$k]} is worse than the ratchet's $w ($RATCHET)"
        fail=1
    elif [ "${got[$k]}" -lt "$w" ]; then
        echo "counters.sh: $k=${got[$k]} is better than the ratchet's $w: lower it in $RATCHET"
    fi
done
[ $fail = 0 ] || { echo "counters.sh: FAILED (a figure got worse; see tests/emu/counters_ratchet.txt)"; exit 1; }
echo "counters.sh: no figure worse than the ratchet"
