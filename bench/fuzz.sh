#!/usr/bin/env bash
# bench/fuzz.sh — builds the libFuzzer targets of test/fuzz (cmake -DFUZZ=ON with clang, into build-fuzz) and
# runs each for FUZZ_RUNS executions (default 10^6), starting from its seed corpus in test/fuzz/corpus/<target>.
# Prints one table row per target (executions, seconds, crashes) and exits non-zero when any target crashed
# (a sanitizer report or a broken invariant); the crashing input is kept in build-fuzz/artifacts/<target>/.
#
# Usage: bench/fuzz.sh [target ...]          (default: every test/fuzz/*.cpp; names without .cpp)
# Environment: FUZZ_RUNS (default 1000000), FUZZ_MAX_TIME (seconds per target, default 3600: a cap so a slow
#   machine still finishes; a target stopped by it reports fewer executions), CLANGXX (default clang++-14),
#   FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (build parallelism, default 2).
# Reproduce a crash: build-fuzz/test/fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-*
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

runs=${FUZZ_RUNS:-1000000}
max_time=${FUZZ_MAX_TIME:-3600}
cxx=${CLANGXX:-clang++-14}
build=${FUZZ_BUILD_DIR:-build-fuzz}

targets=("$@")
if ((${#targets[@]} == 0)); then
    for f in test/fuzz/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

echo "== build ($build, $cxx, FUZZ=ON)"
cmake -S . -B "$build" -DFUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.log" 2>&1 &&
    cmake --build "$build" --target fuzz -j"${FUZZ_JOBS:-2}" >>"$build.log" 2>&1 ||
    { tail -n 40 "$build.log" >&2; echo "fuzz: build failed (full log: $build.log)" >&2; exit 2; }

rows=()
crashed=0
for t in "${targets[@]}"; do
    bin=$build/test/fuzz/fuzz_$t
    [[ -x $bin ]] || { echo "fuzz: no target $t ($bin)" >&2; exit 2; }
    work=$build/corpus/$t        # new inputs go here; the checked-in seeds stay untouched
    artifacts=$build/artifacts/$t
    mkdir -p "$work" "$artifacts"
    touch "$artifacts/.started"  # only artifacts of this run count
    log=$build/fuzz-$t.log
    echo "== $t ($runs runs)"
    start=$(date +%s.%N)
    # halt_on_error/abort_on_error: the first sanitizer report ends the run as a crash, with its input saved.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1} \
        "$bin" -runs="$runs" -max_total_time="$max_time" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$work" "test/fuzz/corpus/$t" >"$log" 2>&1
    status=$?
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    execs=$(awk -F': *' '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n1)
    # After a crash libFuzzer prints no final stats; the last status line has the executions so far.
    [[ -n $execs ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')
    crashes=$(find "$artifacts" -type f -newer "$artifacts/.started" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    if ((status != 0)); then
        crashed=1
        ((crashes > 0)) || crashes=1
        grep -m3 -E 'ERROR:|runtime error|invariant broken|Test unit written' "$log" >&2
    elif ((crashes > 0)); then
        crashed=1
    fi
    rows+=("$(printf '%-18s %12s %8s %8s' "$t" "${execs:-?}" "$secs" "$crashes")")
done

echo
printf '%-18s %12s %8s %8s\n' target executions seconds crashes
for r in "${rows[@]}"; do echo "$r"; done
exit $crashed
