#!/bin/sh
# Builds (optimized: the release profile, about 6 minutes the first time on
# a 2-core machine, incremental afterwards) and runs berthd with its
# embedded defaults (data-root /var/lib/berth, exec-root /var/run/berth,
# socket /var/run/docker.sock). Extra arguments go to berthd, e.g.
# -H unix:///tmp/berth.sock
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --bins
exec ./target/release/berthd "$@"
