#!/bin/sh
# Builds and runs berthd with its embedded defaults (data-root /var/lib/berth,
# exec-root /var/run/berth, socket /var/run/docker.sock). Extra arguments go
# to berthd, e.g. -H unix:///tmp/berth.sock
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --bins
exec ./target/debug/berthd "$@"
