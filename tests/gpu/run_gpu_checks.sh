#!/usr/bin/env bash
# GPU checks of the CUDA backend, in one command, on a machine with an NVIDIA GPU:
#   1. build build/simcse and build/simcse_tests (skip with --no-build: use what is there)
#   2. the cuda_ops suite (CUDA backend vs the CPU oracle) at full size
#   3. the same suite under compute-sanitizer memcheck, racecheck and synccheck, with
#      SIMCSE_TEST_SMALL=1 (smaller shapes: sanitizers slow kernels down 10-100x)
# then a table of the results. Exit status 0 only when every step passed.
#
# Idempotent: make rebuilds only what changed; logs are overwritten in build/gpu-checks/.
#
# Machines without the build's libraries (Criterion, cJSON, utf8proc, PCRE2, libcsv):
# run tests/gpu/pack_deps.sh on a machine that has them; it copies their headers and shared
# libraries into build/gpu-deps/, which this script puts on the compiler and loader paths
# (only the libraries the GPU machine lacks). With the device tool of this workplace:
#   run(command="bash tests/gpu/run_gpu_checks.sh", carry=["build/gpu-deps"])
# or, with build/ prebuilt here by `make build/simcse build/simcse_tests` (nvcc, no GPU needed):
#   run(command="bash tests/gpu/run_gpu_checks.sh --no-build", carry=["build"])
#
# Options: --no-build, --no-sanitizers, --filter PATTERN (Criterion, default 'cuda_ops/*').
# Environment: JOBS (make -j, default nproc), SIMCSE_TEST_SEED (replay a seed),
#              GPU_CHECKS_TIMEOUT (seconds per step, default 900).
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
OUT="$ROOT/build/gpu-checks"
mkdir -p "$OUT"

BUILD=1
SANITIZE=1
FILTER='cuda_ops/*'
while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) BUILD=0 ;;
    --no-sanitizers) SANITIZE=0 ;;
    --filter) FILTER="$2"; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run_gpu_checks: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
STEP_TIMEOUT=${GPU_CHECKS_TIMEOUT:-900}

# ---- private dependencies (build/gpu-deps from tests/gpu/pack_deps.sh) ----
DEPS="$ROOT/build/gpu-deps"
if [ -d "$DEPS" ]; then
    # use only the carried libraries this machine cannot already resolve
    PRIV="$OUT/libs"
    rm -rf "$PRIV"
    mkdir -p "$PRIV"
    for f in "$DEPS"/lib/*; do
        [ -e "$f" ] || continue
        b=$(basename "$f")
        case "$b" in
        *.so) ln -sf "$f" "$PRIV/$b" ;;  # link-time names: harmless, the linker prefers -L order
        *) ldconfig -p 2>/dev/null | grep -qE "[[:space:]]$b[[:space:]]" || ln -sf "$f" "$PRIV/$b" ;;
        esac
    done
    export C_INCLUDE_PATH="$DEPS/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}"
    export LIBRARY_PATH="$PRIV${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$PRIV${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

CUDA_BIN=$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")
SANITIZER=$(command -v compute-sanitizer 2>/dev/null ||
    ls "$CUDA_BIN/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer \
        /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)

echo "== run_gpu_checks: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $ROOT"
nvidia-smi -L 2>/dev/null || echo "(nvidia-smi not found)"
nvcc --version 2>/dev/null | tail -n 1

declare -a T_NAME T_RES T_TESTS T_SAN T_SECS
add_row() { T_NAME+=("$1"); T_RES+=("$2"); T_TESTS+=("$3"); T_SAN+=("$4"); T_SECS+=("$5"); }
FAILED=0

# ---- 1. build ----
if [ "$BUILD" = 1 ]; then
    t0=$(date +%s)
    if make -j"$JOBS" build/simcse build/simcse_tests >"$OUT/build.log" 2>&1; then
        add_row build ok - - $(($(date +%s) - t0))
    else
        add_row build FAIL - - $(($(date +%s) - t0))
        FAILED=1
        echo "-- build failed; the end of $OUT/build.log:"
        tail -n 30 "$OUT/build.log"
    fi
fi
if [ ! -x build/simcse_tests ]; then
    echo "run_gpu_checks: build/simcse_tests does not exist" >&2
    FAILED=1
fi
if ! nm -C build/libsimcse.a 2>/dev/null | grep -q " T cu_attention_fwd"; then
    echo "run_gpu_checks: warning: build/libsimcse.a has no CUDA kernels (built with CUDA=0?)"
fi

# Criterion's summary line -> "passed/total" (crashes and failures count as not passed)
criterion_counts() {
    local line
    line=$(grep -a "Synthesis:" "$1" | tail -n 1)
    if [ -z "$line" ]; then echo "?"; return; fi
    local tested passing
    tested=$(echo "$line" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
    passing=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    echo "${passing:-?}/${tested:-?}"
}
# skipped tests are not in Criterion's synthesis: count them (tests the filter excludes
# are listed as "Test is disabled" and do not count)
criterion_skips() { grep -a "\[SKIP\]" "$1" 2>/dev/null | grep -avc "Test is disabled" || true; }

run_suite() { # name logfile [sanitizer tool]
    local name=$1 log=$2 tool=${3:-}
    local t0 rc
    t0=$(date +%s)
    if [ -z "$tool" ]; then
        timeout "$STEP_TIMEOUT" build/simcse_tests --filter "$FILTER" --jobs 1 --verbose >"$log" 2>&1
        rc=$?
    else
        SIMCSE_TEST_SMALL=1 timeout "$STEP_TIMEOUT" "$SANITIZER" --tool "$tool" --target-processes all \
            --error-exitcode 86 --print-limit 20 \
            build/simcse_tests --filter "$FILTER" --jobs 1 --verbose >"$log" 2>&1
        rc=$?
    fi
    local secs=$(($(date +%s) - t0))
    local counts skips san="-"
    counts=$(criterion_counts "$log")
    skips=$(criterion_skips "$log")
    if [ -n "$tool" ]; then
        local errs=0 n pat='s/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' key="ERROR SUMMARY:"
        if [ "$tool" = racecheck ] && grep -aq "RACECHECK SUMMARY:" "$log"; then
            key="RACECHECK SUMMARY:" pat='s/.*(\([0-9]*\) error.*/\1/p'
        fi
        for n in $(grep -a "$key" "$log" | sed -n "$pat"); do errs=$((errs + n)); done
        san="$errs errors"
    fi
    local res=PASS
    if [ "$rc" -ne 0 ]; then res=FAIL; fi
    if [ "$rc" -eq 124 ]; then res=TIMEOUT; fi
    # on a GPU machine nothing may skip: a skip means the CUDA backend was not usable
    if [ "$skips" != 0 ]; then res="FAIL($skips skipped)"; rc=1; fi
    [ "$rc" -ne 0 ] && FAILED=1
    add_row "$name" "$res" "$counts" "$san" "$secs"
}

if [ -x build/simcse_tests ]; then
    # ---- 2. the suite ----
    run_suite cuda_ops "$OUT/cuda_ops.log"
    # ---- 3. sanitizers ----
    if [ "$SANITIZE" = 1 ]; then
        if [ -z "$SANITIZER" ]; then
            add_row sanitizers "NOT RUN" - "compute-sanitizer not found" 0
            FAILED=1
        else
            for tool in memcheck racecheck synccheck; do
                run_suite "$tool" "$OUT/$tool.log" "$tool"
            done
        fi
    fi
fi

echo
printf '%-12s %-20s %-9s %-28s %7s\n' step result tests sanitizer seconds
printf '%-12s %-20s %-9s %-28s %7s\n' ------------ -------------------- --------- ---------------------------- -------
for i in "${!T_NAME[@]}"; do
    printf '%-12s %-20s %-9s %-28s %7s\n' "${T_NAME[$i]}" "${T_RES[$i]}" "${T_TESTS[$i]}" "${T_SAN[$i]}" "${T_SECS[$i]}"
done
echo "logs: $OUT/"
if [ "$FAILED" != 0 ]; then
    for f in "$OUT"/cuda_ops.log "$OUT"/memcheck.log "$OUT"/racecheck.log "$OUT"/synccheck.log; do
        [ -f "$f" ] || continue
        if grep -aqE "FAIL|CRASH|ERROR SUMMARY: [1-9]|Assertion" "$f"; then
            echo "---- $(basename "$f"): failures"
            grep -aE "\[FAIL\]|Assertion|CRASH|element|ERROR SUMMARY: [1-9]|Invalid|Race|hazard" "$f" | head -n 40
        fi
    done
fi
exit "$FAILED"
