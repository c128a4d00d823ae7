#!/bin/sh
# Builds berthd (release), installs Debian's dockerd if missing, runs bench.py.
set -eu
cd "$(dirname "$0")/.."
if ! command -v dockerd >/dev/null 2>&1; then
    # Keep the package from starting a system dockerd on /var/run/docker.sock.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io || { rm -f /usr/sbin/policy-rc.d; exit 1; }
    rm -f /usr/sbin/policy-rc.d
fi
./scripts/install-deps.sh
cargo build --release --bins
mkdir -p target/bench
rustc -O --edition 2021 -o target/bench/loadgen bench/loadgen.rs
exec python3 bench/bench.py --berthd target/release/berthd --loadgen target/bench/loadgen "$@"
