#!/bin/sh
# The whole test suite, as CI runs it: system packages, formatting, lints,
# unit, integration (real berthd + real docker CLI) and fuzz-corpus tests,
# then every fuzz target for FUZZ_SECS (20) seconds (scripts/fuzz.sh).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
./scripts/fuzz.sh
