#!/usr/bin/env bash
# make mutate: does the CPU suite catch plausible one-line bugs?
#
# Each line of the mutation list (tests/mutations.txt) is "FILE PERL-SUBSTITUTION";
# the substitution is applied line by line to FILE in a scratch copy of the tree
# (the tracked and untracked, not ignored, files, copied to a fresh directory under
# $TMPDIR, with its own build directory), the CPU suite runs (make CUDA=0 -j2 test),
# and the mutant is "killed" when the suite fails, "survived" when it passes. A
# substitution that changes no line (the code moved on: stale), changes more than
# one line, or does not build, is an ERROR: it tests nothing, so it is neither
# killed nor survived, and the list must be fixed. A mutant listed after a comment
# line "# equivalent: REASON" is expected to survive (it cannot change behaviour);
# it is reported, and not counted as a failure.
#
# The scratch copy, not the working tree, is mutated, so an interrupted run leaves
# the tree alone. Exit status: 0 when every mutant is killed or documented
# equivalent and there are no errors; 1 otherwise.
#
# --emu: the list (default tests/emu/mutations_emu.txt) is of bugs in the CPU execution
# harness (tests/emu/, its headers) and in what its suites check (kernels/cuda, rng,
# comm_nccl.c), and the suite is make test-emu instead (make -j2 emu-build, then
# make test-emu). A comment line "# suite: GLOB" runs the mutants after it with
# TEST_ARGS=--filter=GLOB (Criterion's extglob over SUITE/TEST, e.g. 'emu_rules/*' or
# '@(emu_philox|cuda_ops)/*'), until the next "# suite:" line; the baseline runs each
# glob once. The worktree's build-emu/ is copied with the tree (timestamps kept), so
# only what a mutant touches is rebuilt.
#
# Usage: tests/mutate.sh [--check] [--emu] [LIST] [PATTERN]
#   --check: only check that every substitution changes exactly one line (no builds)
#   PATTERN: run only the lines matching this grep regex
# Env: MUTATE_TIMEOUT (seconds per suite run, default 300: a mutant that hangs is killed),
#      MUTATE_KEEP=1 keeps the scratch copy.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CHECK=0 EMU=0
while :; do
    case "${1:-}" in
        --check) CHECK=1; shift ;;
        --emu) EMU=1; shift ;;
        *) break ;;
    esac
done
DEFAULT_LIST=tests/mutations.txt
[ $EMU = 1 ] && DEFAULT_LIST=tests/emu/mutations_emu.txt
LIST=${1:-$DEFAULT_LIST}
ONLY=${2:-}
TIMEOUT=${MUTATE_TIMEOUT:-300}
[ -f "$LIST" ] || { echo "mutate: $LIST: no such file" >&2; exit 2; }
LIST=$(realpath "$LIST")

# The suite finds the shared data relative to the tree; the scratch copy lives elsewhere.
if [ -z "${SIMCSE_DATA_DIR:-}" ]; then
    export SIMCSE_DATA_DIR
    SIMCSE_DATA_DIR=$(realpath ../shared/data 2>/dev/null) || { echo "mutate: no ../shared/data; set SIMCSE_DATA_DIR" >&2; exit 2; }
fi

# One substitution on one file: prints the number of lines it changed (writes the file when 1).
apply() { # file expr
    MUT_EXPR="$2" MUT_WRITE="$3" perl -e '
        my ($path) = @ARGV; my $expr = $ENV{MUT_EXPR};
        open(my $in, "<", $path) or die "$path: $!\n"; my @lines = <$in>; close $in;
        my $changed = 0;
        for (@lines) { my $before = $_; eval $expr; die "bad expression: $@" if $@; $changed++ if $_ ne $before; }
        if ($changed == 1 && $ENV{MUT_WRITE}) { open(my $out, ">", $path) or die "$path: $!\n"; print $out @lines; close $out; }
        print "$changed\n";' "$1"
}

if [ $CHECK = 1 ]; then
    bad=0 n=0
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in "#"* | "") continue ;; esac
        n=$((n + 1))
        file=${line%%[[:space:]]*}
        expr=$(sed -E 's/^[^[:space:]]+[[:space:]]+//' <<<"$line")
        if [ ! -f "$file" ]; then echo "ERROR $file: no such file: $expr"; bad=$((bad + 1)); continue; fi
        c=$(apply "$file" "$expr" "" 2>&1)
        [ "$c" = 1 ] || { echo "ERROR $file: changes ${c} lines: $expr"; bad=$((bad + 1)); }
    done <"$LIST"
    echo "mutate --check: $n mutations, $bad errors"
    [ $bad = 0 ]
    exit
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/simcse-mutate.XXXXXX")
cleanup() { [ "${MUTATE_KEEP:-0}" = 1 ] && echo "mutate: scratch copy kept in $SCRATCH" || rm -rf "$SCRATCH"; }
trap cleanup EXIT
# timestamps kept (-p): with build-emu/ copied as it is, make rebuilds only what is out of date
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] || continue  # deleted in the working tree, not yet committed
    mkdir -p "$SCRATCH/$(dirname "$f")" && cp -pP "$f" "$SCRATCH/$f"
done
[ $EMU = 1 ] && [ -d build-emu ] && cp -a build-emu "$SCRATCH/"
cd "$SCRATCH"

suite() { # builds and runs the suite; the log goes to $1; $2: the Criterion filter (--emu)
    if [ $EMU = 1 ]; then
        make -j2 emu-build >"$1" 2>&1 || return 3
        # quoted for the recipe's shell: extglobs have parentheses and bars
        timeout "$TIMEOUT" make test-emu ${2:+TEST_ARGS="--filter='$2'"} >>"$1" 2>&1
        return
    fi
    make CUDA=0 -j2 build/simcse build/simcse_tests >"$1" 2>&1 || return 3
    timeout "$TIMEOUT" make CUDA=0 -j2 test >>"$1" 2>&1
}

t0=$(date +%s)
echo "mutate: baseline (unmutated copy in $SCRATCH)"
baseline_globs="" # --emu: each suite glob that a mutation line runs under, once ("": all of test-emu)
if [ $EMU = 1 ]; then
    baseline_globs=$(
        g=""
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in
                "# suite:"*) g=$(sed -E 's/^# suite:[[:space:]]*//' <<<"$line") ;;
                "#"* | "") ;;
                *) if [ -z "$ONLY" ] || grep -q -- "$ONLY" <<<"$line"; then printf '%s\n' "$g"; fi ;;
            esac
        done <"$LIST" | sort -u
    )
fi
while IFS= read -r glob; do
    if ! suite "$SCRATCH/baseline.log" "$glob"; then
        tail -20 "$SCRATCH/baseline.log"
        echo "mutate: the unmutated suite${glob:+ ($glob)} fails in the scratch copy; nothing to measure" >&2
        exit 2
    fi
done <<<"$baseline_globs"
echo "mutate: baseline passes ($(($(date +%s) - t0)) s)"

killed=0 survived=0 equivalent=0 errors=0 total=0 line_no=0 pending_equiv="" glob=""
declare -a report
while IFS= read -r line || [ -n "$line" ]; do
    line_no=$((line_no + 1))
    case "$line" in
        "# suite:"*) glob=$(sed -E 's/^# suite:[[:space:]]*//' <<<"$line"); continue ;;
        "# equivalent:"*) pending_equiv=${line#"# equivalent:"}; continue ;;
        "#"* | "") [ -z "$line" ] && pending_equiv=""; continue ;;
    esac
    equiv=$pending_equiv
    pending_equiv=""
    if [ -n "$ONLY" ] && ! grep -q -- "$ONLY" <<<"$line"; then continue; fi
    file=${line%%[[:space:]]*}
    expr=$(sed -E 's/^[^[:space:]]+[[:space:]]+//' <<<"$line")
    total=$((total + 1))
    tag="#$line_no $file: $expr"
    if [ ! -f "$file" ]; then
        errors=$((errors + 1)); report+=("ERROR     $tag (no such file: stale)"); echo "ERROR     $tag (no such file)"; continue
    fi
    cp -p "$file" "$file.orig"
    n=$(apply "$file" "$expr" 1 2>&1)
    if [ "$n" != 1 ]; then
        mv "$file.orig" "$file"
        case "$n" in
            0) why="matches no line: stale" ;;
            [0-9]*) why="changes $n lines, not one" ;;
            *) why="$n" ;;
        esac
        errors=$((errors + 1)); report+=("ERROR     $tag ($why)"); echo "ERROR     $tag ($why)"; continue
    fi
    ts=$(date +%s)
    suite "$SCRATCH/mutant.log" "$glob"
    rc=$?
    dt=$(($(date +%s) - ts))
    mv "$file.orig" "$file"
    touch "$file" # newer than the mutant's object, so the next build recompiles it
    if [ $rc = 3 ]; then
        errors=$((errors + 1)); res="ERROR     $tag (does not build)"
    elif [ $rc != 0 ]; then
        killed=$((killed + 1))
        by=$(grep -oE '^\[FAIL\] [^:]+::[^:]+' "$SCRATCH/mutant.log" | sed 's/^\[FAIL\] //' | head -3 | paste -sd, -)
        [ $rc = 124 ] && by="timeout ${TIMEOUT}s"
        [ -z "$by" ] && by=$(grep -E 'CRASH|Synthesis' "$SCRATCH/mutant.log" | head -2 | paste -sd' ' -)
        res="killed    $tag (${dt}s; by ${by:-suite failure})"
    elif [ -n "$equiv" ]; then
        equivalent=$((equivalent + 1)); res="equivalent $tag (survives, documented:$equiv)"
    else
        survived=$((survived + 1)); res="SURVIVED  $tag (${dt}s)"
    fi
    report+=("$res")
    echo "$res"
done <"$LIST"

wall=$(($(date +%s) - t0))
echo
echo "mutate: summary"
printf '  %s\n' "${report[@]}"
scored=$((killed + survived))
pct=$([ $scored -gt 0 ] && echo "$((100 * killed / scored))" || echo 0)
echo "mutate: $total mutations: $killed killed, $survived survived, $equivalent equivalent (documented), $errors errors; ${pct}% of the scored mutants killed; wall ${wall}s"
[ $survived = 0 ] && [ $errors = 0 ]
