#!/bin/sh
# Installs the system packages berthd and its tests use on a fresh Debian
# machine. Idempotent: installs only what is missing.
set -eu
pkgs="curl git python3-venv docker-compose runc tini busybox-static docker-registry apache2-utils nftables iproute2 gcc libc6-dev e2fsprogs util-linux protobuf-compiler etcd-server"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
# tini is dockerd's docker-init. It is bind-mounted into containers that
# may have no libc, so it must be the static build (package tini ships both).
if [ -x /usr/bin/tini-static ]; then
    ln -sf /usr/bin/tini-static /usr/local/bin/docker-init
elif ! command -v docker-init >/dev/null 2>&1 && command -v tini >/dev/null 2>&1; then
    ln -sf "$(command -v tini)" /usr/local/bin/docker-init
fi
if [ ! -x /usr/local/bin/docker ] && ! command -v docker >/dev/null 2>&1; then
    echo "the docker CLI (28.x) is required at /usr/local/bin/docker" >&2
    exit 1
fi
