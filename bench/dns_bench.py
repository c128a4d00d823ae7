#!/usr/bin/env python3
"""berth-dns builds side by side: memory and query rates of each, on the same
view, in the same run.

    python3 bench/dns_bench.py --bin loop=/path/berth-dns --bin hickory=target/release/berth-dns

Each binary serves a hand-written view (N containers, each in a network
namespace of its own made here, on one user-defined network) from a temp
directory. From inside the first namespace a client sends sequential
queries to 127.0.0.11: A of a container name (answered from the view), A
of an outside name (forwarded to a resolver this script runs on
127.0.0.1), and A of a name over TCP. Reported: VmRSS after start and
VmHWM after the load, queries per second of each kind. Everything made is
removed, also on failure. Needs root (network namespaces)."""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = f"bdnsb{os.getpid() % 10000}-"


def query(name, qid=1, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def upstream(stop, port_box):
    """A resolver that answers every A query with 192.0.2.7."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port_box.append(s.getsockname()[1])
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        qid = data[:2]
        qd = data[12:]
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 7])
        s.sendto(qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + qd + ans, peer)


CLIENT = r'''
import socket, struct, sys, time, json
def q(name, qid):
    m = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for p in name.split("."):
        m += bytes([len(p)]) + p.encode()
    return m + b"\x00" + struct.pack(">HH", 1, 1)
def udp(name, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    t = time.monotonic(); ok = 0
    for i in range(n):
        s.sendto(q(name, i & 0xffff), ("127.0.0.11", 53))
        r, _ = s.recvfrom(4096)
        ok += struct.unpack(">H", r[6:8])[0] >= 1
    return n / (time.monotonic() - t), ok
def tcp(name, n):
    s = socket.create_connection(("127.0.0.11", 53), timeout=2)
    t = time.monotonic(); ok = 0
    for i in range(n):
        m = q(name, i & 0xffff); s.sendall(struct.pack(">H", len(m)) + m)
        ln = struct.unpack(">H", s.recv(2))[0]; r = b""
        while len(r) < ln: r += s.recv(ln - len(r))
        ok += struct.unpack(">H", r[6:8])[0] >= 1
    return n / (time.monotonic() - t), ok
n = int(sys.argv[1])
out = {}
for k, f, name in (("local_udp", udp, "c1"), ("forward_udp", udp, "example.test"), ("local_tcp", tcp, "c1.benchnet")):
    f(name, 200)  # warm up
    rate, ok = f(name, n)
    out[k] = rate
    out[k + "_answered"] = ok
print(json.dumps(out))
'''


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_served(ns, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        probe = ("import socket;s=socket.socket(2,2);s.settimeout(0.3);"
                 f"s.sendto({query('c1')!r},('127.0.0.11',53));s.recv(512)")
        r = subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", probe], capture_output=True)
        if r.returncode == 0:
            return True
        time.sleep(0.1)
    return False


def run_one(binary, n_containers, n_queries, up_port):
    nss = [f"{PREFIX}{i}" for i in range(n_containers)]
    proc = None
    with tempfile.TemporaryDirectory() as d:
        try:
            for ns in nss:
                subprocess.run(["ip", "netns", "add", ns], check=True)
                subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            view = {
                "version": 1,
                "clients": {f"{i:064x}": {"sandbox": f"/run/netns/{ns}",
                                          "upstreams": [f"127.0.0.1:{up_port}"]}
                            for i, ns in enumerate(nss, 1)},
                "networks": {"n" * 64: {"name": "benchnet", "endpoints": [
                    {"container": f"{i:064x}", "name": f"c{i}", "aliases": [f"a{i}"],
                     "ip": f"10.99.0.{i}", "ipv6": ""} for i in range(1, n_containers + 1)]}},
            }
            with open(os.path.join(d, "view.json.tmp"), "w") as f:
                json.dump(view, f)
            os.rename(os.path.join(d, "view.json.tmp"), os.path.join(d, "view.json"))
            proc = subprocess.Popen([binary, d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not all(wait_served(ns) for ns in nss):
                raise RuntimeError(f"{binary}: not every namespace was served")
            time.sleep(0.5)
            rss = status(proc.pid, "VmRSS")
            r = subprocess.run(["ip", "netns", "exec", nss[0], "python3", "-c", CLIENT, str(n_queries)],
                               capture_output=True, text=True, check=True)
            res = json.loads(r.stdout)
            res["rss_kib"] = rss
            res["hwm_kib"] = status(proc.pid, "VmHWM")
            return res
        finally:
            if proc:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for ns in nss:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="label=path")
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    stop, port = threading.Event(), []
    t = threading.Thread(target=upstream, args=(stop, port), daemon=True)
    t.start()
    while not port:
        time.sleep(0.01)
    results = {label: [] for label, _ in bins}
    try:
        for _ in range(a.runs):
            for label, path in bins:
                results[label].append(run_one(path, a.containers, a.queries, port[0]))
    finally:
        stop.set()
    keys = ["rss_kib", "hwm_kib", "local_udp", "forward_udp", "local_tcp"]
    print(f"{a.containers} containers served, {a.queries} queries of each kind, median of {a.runs} runs")
    print(f"{'figure':14}" + "".join(f"{label:>12}" for label, _ in bins))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    for k in keys:
        print(f"{k:14}" + "".join(f"{med([r[k] for r in results[label]]):12.0f}" for label, _ in bins))
    for label, _ in bins:
        for r in results[label]:
            for k in ("local_udp", "forward_udp", "local_tcp"):
                if r[k + "_answered"] != a.queries:
                    print(f"{label}: {k} answered {r[k + '_answered']} of {a.queries}", file=sys.stderr)


if __name__ == "__main__":
    main()
