#!/usr/bin/env python3
"""Scale of the cluster (docs/cluster.md): N berthd nodes, each in its own
network namespace joined by an underlay bridge, one etcd (Debian's
etcd-server) on the underlay, M containers spread over the nodes on two
overlay networks. Reports: time until every name resolves on every node,
IPAM conflicts, etcd keys and watch events per endpoint, memory per node.

    python3 bench/cluster_bench.py --berthd target/release/berthd [--nodes 10] [--containers 500]

No dockerd column: dockerd's cluster-store overlay (libkv) spoke etcd's v2
API only and is gone from current dockerd; the figures are absolute.
Everything it makes (namespaces, bridge, etcd, nodes, containers) is
removed at the end, also on failure.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import DOCKER, make_busybox, rss_kib, wait_ping  # noqa: E402

TAG = f"{os.getpid() % 0xffff:04x}"
BRIDGE = f"bb{TAG}"
PREFIX = "10.233.0"


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{args}: {r.stderr}")
    return r


def ns(i):
    return f"berth-bench-{TAG}-{i}"


def docker(sock, *args, check=True):
    r = subprocess.run([DOCKER, "-H", f"unix://{sock}", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"docker {args}: {r.stderr}")
    return r.stdout


def etcdctl(url, *args):
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.run(["etcdctl", "--endpoints", url, *args], capture_output=True,
                           text=True, env=env).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berthd", required=True)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--containers", type=int, default=500)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-cluster-bench-")
    procs, etcd, watcher = [], None, None
    try:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{PREFIX}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i in range(args.nodes):
            sh("ip", "netns", "add", ns(i))
            sh("ip", "link", "add", f"vb{TAG}{i}", "type", "veth", "peer", "name", "u0", "netns", ns(i))
            sh("ip", "link", "set", f"vb{TAG}{i}", "master", BRIDGE, "up")
            sh("ip", "-n", ns(i), "addr", "add", f"{PREFIX}.{11 + i}/24", "dev", "u0")
            sh("ip", "-n", ns(i), "link", "set", "u0", "up")
            sh("ip", "-n", ns(i), "link", "set", "lo", "up")
        url = f"http://{PREFIX}.1:23990"
        etcd = subprocess.Popen(["etcd", "--data-dir", f"{tmp}/etcd", "--listen-client-urls", url,
                                 "--advertise-client-urls", url, "--listen-peer-urls", "http://127.0.0.1:23991"],
                                stdout=open(f"{tmp}/etcd.log", "w"), stderr=subprocess.STDOUT)
        for _ in range(100):
            if etcdctl(url, "endpoint", "health").strip():
                break
            time.sleep(0.1)
        # Every change under the prefix, as each node's single watch sees it.
        watcher = subprocess.Popen(["etcdctl", "--endpoints", url, "watch", "--prefix", "/berth/v1/"],
                                   stdout=open(f"{tmp}/watch.log", "w"), stderr=subprocess.DEVNULL,
                                   env=dict(os.environ, ETCDCTL_API="3"))
        archive = f"{tmp}/busybox.tar"
        make_busybox(archive)
        socks = []
        for i in range(args.nodes):
            d = f"{tmp}/n{i}"
            os.makedirs(d)
            cfg = {"data-root": f"{d}/data", "exec-root": f"{d}/exec", "pidfile": f"{d}/pid",
                   "hosts": [f"unix://{d}/d.sock"], "cluster-store": url.replace("http", "etcd"),
                   "cluster-advertise": "u0:2376", "bridge": "none"}
            json.dump(cfg, open(f"{d}/daemon.json", "w"))
            p = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns(i)}", args.berthd,
                                  "--config-file", f"{d}/daemon.json"],
                                 stdout=open(f"{d}/log", "w"), stderr=subprocess.STDOUT)
            procs.append(p)
            socks.append(f"{d}/d.sock")
        for s, p in zip(socks, procs):
            wait_ping(s, p)
            docker(s, "load", "-q", "-i", archive)
        docker(socks[0], "network", "create", "-d", "overlay", "net0")
        docker(socks[0], "network", "create", "-d", "overlay", "net1")
        for s in socks:
            while "net1" not in docker(s, "network", "ls"):
                time.sleep(0.05)
        rev0 = sum(1 for _ in open(f"{tmp}/watch.log"))

        # M containers, round-robin over nodes and networks, one thread per node.
        plan = collections.defaultdict(list)
        for c in range(args.containers):
            plan[c % args.nodes].append((f"c{c}", f"net{c % 2}"))
        t0 = time.monotonic()

        def run_node(i):
            for name, net in plan[i]:
                docker(socks[i], "run", "-d", "--name", name, "--network", net, "busybox", "sleep", "100000")

        with concurrent.futures.ThreadPoolExecutor(args.nodes) as ex:
            list(ex.map(run_node, range(args.nodes)))
        started = time.monotonic() - t0

        # Every name on every node: each node's DNS view (what berth-dns
        # answers from) holds all M endpoints of the two networks.
        def complete(i):
            try:
                v = json.load(open(f"{tmp}/n{i}/exec/dns/view.json"))
            except (OSError, ValueError):
                return False
            counts = collections.Counter()
            for n in v.get("networks", {}).values():
                counts[n["name"]] = len(n["endpoints"])
            return counts.get("net0", 0) + counts.get("net1", 0) == args.containers

        while not all(complete(i) for i in range(args.nodes)):
            if time.monotonic() - t0 > 600:
                raise RuntimeError("names did not reach every node in 10 minutes")
            time.sleep(0.05)
        converged = time.monotonic() - t0

        # One more endpoint at a time (the cluster at its full size): from
        # `docker run -d` returning on one node until every other node's DNS
        # view has it; and the same for its removal.
        def has(i, name):
            try:
                v = json.load(open(f"{tmp}/n{i}/exec/dns/view.json"))
            except (OSError, ValueError):
                return False
            return any(e["name"] == name for n in v.get("networks", {}).values() for e in n["endpoints"])

        adds, rms = [], []
        for k in range(5):
            src = k % args.nodes
            others = [i for i in range(args.nodes) if i != src]
            docker(socks[src], "run", "-d", "--name", f"probe{k}", "--network", "net0", "busybox", "sleep", "100000")
            t = time.monotonic()
            while not all(has(i, f"probe{k}") for i in others):
                time.sleep(0.002)
            adds.append(time.monotonic() - t)
            docker(socks[src], "rm", "-f", f"probe{k}")
            t = time.monotonic()
            while any(has(i, f"probe{k}") for i in others):
                time.sleep(0.002)
            rms.append(time.monotonic() - t)
        # And real lookups: 20 random names from a container on each node.
        wrong = 0
        for i in range(args.nodes):
            name, net = plan[i][0]
            peers = [n for n, m in (x for j in plan for x in plan[j]) if m == net]
            for q in random.sample(peers, 20):
                out = docker(socks[i], "exec", name, "nslookup", q, "127.0.0.11", check=False)
                wrong += "Address" not in out.split("Name:", 1)[-1]
        # IPAM: every address once.
        ips = collections.Counter()
        for i in range(args.nodes):
            for line in docker(socks[i], "ps", "-q").split():
                for ip in docker(socks[i], "inspect", "-f",
                                 "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", line).split():
                    ips[ip] += 1
        conflicts = sum(n - 1 for n in ips.values() if n > 1)
        keys = [k for k in etcdctl(url, "get", "--prefix", "--keys-only", "/berth/v1/").split() if k]
        kinds = collections.Counter(k.split("/")[3] for k in keys)
        time.sleep(1)
        events = sum(1 for l in open(f"{tmp}/watch.log") if l.strip() in ("PUT", "DELETE")) - 0
        events_run = sum(1 for l in list(open(f"{tmp}/watch.log"))[rev0:] if l.strip() in ("PUT", "DELETE"))
        rss = [rss_kib(p.pid) for p in procs]
        print(f"nodes {args.nodes}, containers {args.containers} on 2 overlay networks")
        print(f"  all `docker run -d` returned after      {started:8.2f} s")
        print(f"  every name in every node's DNS after    {converged:8.2f} s  ({converged - started:.2f} s after the last run)")
        print(f"  one endpoint on every other node, median {sorted(adds)[2] * 1000:8.1f} ms  (max {max(adds) * 1000:.1f} ms, 5 runs)")
        print(f"  one removal on every other node, median  {sorted(rms)[2] * 1000:8.1f} ms  (max {max(rms) * 1000:.1f} ms)")
        print(f"  sampled lookups wrong                   {wrong:8d} of {20 * args.nodes}")
        print(f"  IPAM conflicts                          {conflicts:8d}  ({len(ips)} addresses)")
        print(f"  etcd keys                               {len(keys):8d}  {dict(kinds)}")
        print(f"  etcd keys per endpoint                  {len(keys) / args.containers:8.2f}")
        print(f"  watch events (store-wide, whole run)    {events:8d}")
        print(f"  watch events per endpoint (its start)   {events_run / args.containers:8.2f}  (each node's watch gets all)")
        print(f"  berthd RSS per node (MiB) mean/max      {sum(rss) / len(rss) / 1024:8.1f} / {max(rss) / 1024:.1f}")
        print(f"  containers per node                     {args.containers / args.nodes:8.1f}")
    finally:
        for i, p in enumerate(procs):
            s = f"{tmp}/n{i}/d.sock"
            if p.poll() is None:
                ids = docker(s, "ps", "-aq", check=False).split()
                for k in range(0, len(ids), 50):
                    docker(s, "rm", "-f", *ids[k:k + 50], check=False)
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in (watcher, etcd):
            if p:
                p.kill()
                p.wait()
        for i in range(args.nodes):
            sh("ip", "netns", "del", ns(i), check=False)
        sh("ip", "link", "del", BRIDGE, check=False)
        subprocess.run(["umount", "-R", "-l", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
