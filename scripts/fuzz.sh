#!/bin/sh
# Every fuzz target in fuzz/ (libFuzzer through libfuzzer-sys, built with
# the nightly toolchain and sanitizer coverage, as `cargo fuzz build -s none`
# builds them) replays its corpus, then fuzzes for FUZZ_SECS seconds
# (default 20), two targets at a time. A crash fails the run and leaves the
# input in fuzz/artifacts/<target>-crash-*: fix the finding and keep the input
# in fuzz/corpus/<target>/. New inputs found on the way go to a scratch
# directory, never into the repository's corpus. FUZZ_BUILD_ONLY=1 only
# builds the targets.
set -eu
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECS:-20}
JOBS=${FUZZ_JOBS:-2}
TARGETS=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^berth-fuzz$')}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit target: the flags apply to the fuzz targets, not to build
# scripts (as cargo fuzz does).
TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly build --release --locked --bins --target "$TRIPLE"
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0
BIN=target/$TRIPLE/release
mkdir -p artifacts
scratch=$(mktemp -d /tmp/berth-fuzz-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
fail=0
run() {
    t=$1
    mkdir -p "$scratch/$t"
    if "$BIN/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t-" -print_final_stats=1 \
        "$scratch/$t" "corpus/$t" > "$scratch/$t.log" 2>&1; then
        echo "fuzz $t: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$t.log" | grep -o '[0-9]*$') runs in ${SECS}s)"
    else
        echo "fuzz $t: FAILED"
        tail -40 "$scratch/$t.log"
        return 1
    fi
}
set -- $TARGETS
while [ $# -gt 0 ]; do
    pids=""
    n=0
    while [ $# -gt 0 ] && [ $n -lt "$JOBS" ]; do
        run "$1" &
        pids="$pids $!"
        shift
        n=$((n + 1))
    done
    for p in $pids; do
        wait "$p" || fail=1
    done
done
exit $fail
