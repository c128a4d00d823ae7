#!/bin/sh
# The whole test suite, as CI runs it: system packages, formatting, lints,
# unit, integration (real berthd + real docker CLI) and fuzz-corpus tests,
# then every fuzz target for FUZZ_SECS (20) seconds (scripts/fuzz.sh).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-run
# The integration tests mostly wait on containers and daemons: the fuzz
# targets' release build (another toolchain and target directory) uses the
# idle CPU meanwhile, at the lowest priority. Its log is printed if it fails.
mkdir -p target
fuzz_log=target/fuzz-build.log
FUZZ_BUILD_ONLY=1 nice -n 19 ./scripts/fuzz.sh > "$fuzz_log" 2>&1 &
fuzz_build=$!
status=0
cargo test --workspace --no-fail-fast || status=$?
if ! wait "$fuzz_build"; then
    cat "$fuzz_log"
    echo "the fuzz targets' build failed"
    exit 1
fi
tail -1 "$fuzz_log"
[ "$status" = 0 ] || exit "$status"
./scripts/fuzz.sh
