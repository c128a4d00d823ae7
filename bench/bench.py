#!/usr/bin/env python3
"""Start berthd and Debian's dockerd side by side on temp roots and report
each figure as a ratio berthd/dockerd from the same run."""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DOCKER = "/usr/local/bin/docker"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(p))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        c = todo.pop()
        for k in kids.get(c, []):
            out.append(k)
            todo.append(k)
    return out


class Conn:
    """A keep-alive unix-socket connection with its read buffer."""

    def __init__(self, sock_path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock_path)
        self.buf = b""

    def sendall(self, b):
        self.sock.sendall(b)

    def recv(self, n):
        return self.sock.recv(n)

    def close(self):
        self.sock.close()


def request(sock_path, path, conn=None):
    """One GET on a keep-alive connection; returns the connection."""
    if conn is None:
        conn = Conn(sock_path)
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    buf = conn.buf
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        rest += conn.recv(65536)
    conn.buf = rest[length:]
    return conn


def throughput(loadgen, sock_path, path, seconds):
    out = subprocess.run([loadgen, sock_path, path, str(seconds)], capture_output=True, check=True, text=True)
    return float(out.stdout.strip())


def cli_mean(sock_path, runs):
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock_path}")
    env.pop("DOCKER_CONTEXT", None)
    subprocess.run([DOCKER, "version"], env=env, capture_output=True, check=True)
    t = time.monotonic()
    for _ in range(runs):
        subprocess.run([DOCKER, "version"], env=env, capture_output=True, check=True)
    return (time.monotonic() - t) / runs


def make_archive(path, layers, layer_mb):
    """A docker-archive of `layers` layers of incompressible data."""
    import hashlib, io, tarfile
    diff_ids, names = [], []
    with tarfile.open(path, "w") as out:
        for i in range(layers):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as lt:
                data = os.urandom(layer_mb << 20)
                ti = tarfile.TarInfo(f"layer{i}.bin")
                ti.size = len(data)
                lt.addfile(ti, io.BytesIO(data))
            blob = buf.getvalue()
            diff_ids.append("sha256:" + hashlib.sha256(blob).hexdigest())
            name = f"l{i}/layer.tar"
            ti = tarfile.TarInfo(name)
            ti.size = len(blob)
            out.addfile(ti, io.BytesIO(blob))
            names.append(name)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
                             "config": {"Cmd": ["/bin/sh"]}}).encode()
        cid = hashlib.sha256(config).hexdigest()
        for n, data in ((f"{cid}.json", config),
                        ("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["bench/big:1"], "Layers": names}]).encode())):
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data))


def docker(sock_path, *args, check=True):
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock_path}")
    env.pop("DOCKER_CONTEXT", None)
    return subprocess.run([DOCKER, *args], env=env, capture_output=True, check=check, text=True)


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def peak_rss_during(pid, fn):
    """Run fn while sampling the RSS of pid (and children); return (seconds, peak KiB)."""
    import threading
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], sum(rss_kib(x) for x in [pid] + descendants(pid)))
            time.sleep(0.02)
    th = threading.Thread(target=sample)
    th.start()
    try:
        secs = timed(fn)
    finally:
        done.set()
        th.join()
    return secs, peak[0]


def image_figures(name, sock, pid, archive, size_mb, registry, tiny_dir):
    r = {}
    r["load_mbps"] = size_mb / timed(lambda: docker(sock, "load", "-i", archive))
    tag = f"{registry}/bench/{name}:1"
    docker(sock, "tag", "bench/big:1", tag)
    r["push_mbps"] = size_mb / timed(lambda: docker(sock, "push", tag))
    docker(sock, "rmi", "bench/big:1", tag)
    docker(sock, "image", "prune", "-a", "-f")
    r["pull_s"], r["pull_peak_rss_kib"] = peak_rss_during(pid, lambda: docker(sock, "pull", tag))
    for i in range(200):
        docker(sock, "import", os.path.join(tiny_dir, f"t{i}.tar"), f"bench/tiny:{i}")
    return r


def make_busybox(path):
    """busybox:latest from Debian's busybox-static, every applet linked."""
    import hashlib, io, tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as lt:
        for d in ("bin", "etc", "tmp"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            lt.addfile(ti)
        data = open("/bin/busybox", "rb").read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode = len(data), 0o755
        lt.addfile(ti, io.BytesIO(data))
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split()
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            lt.addfile(ti)
        for n, t in (("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", b"root:x:0:\n")):
            ti = tarfile.TarInfo(n)
            ti.size = len(t)
            lt.addfile(ti, io.BytesIO(t))
    blob = buf.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(blob).hexdigest()]}}).encode()
    cid = hashlib.sha256(config).hexdigest()
    with tarfile.open(path, "w") as out:
        for n, data in (("l0/layer.tar", blob), (f"{cid}.json", config),
                        ("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["busybox:latest"], "Layers": ["l0/layer.tar"]}]).encode())):
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data))


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def pss_kib(pid):
    """Proportional set size: shared pages (the binary, libc) divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def shim_rss_kib(prefix):
    """Mean RSS and PSS of the per-container monitors (berth-shim or containerd-shim-runc-v2)."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and comm(int(p)).startswith(prefix)]
    rss = [v for v in (rss_kib(p) for p in pids) if v > 0]
    pss = [v for v in (pss_kib(p) for p in pids) if v > 0]
    if not rss:
        return 0, 0, 0
    return sum(rss) / len(rss), sum(pss) / max(len(pss), 1), len(rss)


def container_figures(name, sock, loadgen, seconds, runs):
    r = {}
    docker(sock, "run", "--rm", "busybox", "true")
    times = sorted(timed(lambda: docker(sock, "run", "--rm", "busybox", "true")) for _ in range(runs))
    r["run_rm_s"] = times[len(times) // 2]
    n = 100
    t = timed(lambda: [docker(sock, "run", "-d", "busybox", "sleep", "100000") for _ in range(n)])
    r["run_d_per_s"] = n / t
    time.sleep(1)
    prefix = "berth-shim" if name == "berthd" else "containerd-shim"
    r["shim_rss_kib"], r["shim_pss_kib"], count = shim_rss_kib(prefix)
    if count < n:
        print(f"warning: {name}: {count} monitors for {n} containers", file=sys.stderr)
    r["containers_json_rps"] = throughput(loadgen, sock, "/containers/json", seconds)
    ids = docker(sock, "ps", "-aq").stdout.split()
    docker(sock, "rm", "-f", *ids)
    def million():
        docker(sock, "run", "-d", "--name", "million", "busybox", "seq", "1", "1000000")
        docker(sock, "wait", "million")
    r["million_run_s"] = timed(million)
    r["million_logs_s"] = timed(lambda: docker(sock, "logs", "million"))
    docker(sock, "rm", "-f", "million")
    return r


# Run inside a container's network namespace: the mean time of one A query
# for argv[1] to the embedded DNS server (127.0.0.11:53), over argv[2] queries.
DNS_PROBE = r"""
import socket, struct, sys, time
name, n = sys.argv[1], int(sys.argv[2])
q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(("127.0.0.11", 53))
t = time.monotonic()
for i in range(n):
    s.send(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1))
    r = s.recv(512)
    assert struct.unpack(">H", r[6:8])[0] >= 1, "no answer"
print((time.monotonic() - t) * 1000 / n)
"""


SINK_C = r"""
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
static char b[1 << 20];
int main(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(5001);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 16)) return 1;
    for (;;) {
        int c = accept(l, 0, 0);
        if (c < 0) continue;
        while (read(c, b, sizeof b) > 0) {}
        close(c);
    }
}
"""


def make_sink(tmp):
    """A static TCP sink reading 1 MiB at a time (busybox nc reads a few KiB
    per call and would be the bottleneck of both daemons)."""
    d = os.path.join(tmp, "sink")
    if not os.path.exists(os.path.join(d, "sink")):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "sink.c"), "w") as f:
            f.write(SINK_C)
        subprocess.run(["cc", "-static", "-O2", "-o", os.path.join(d, "sink"), os.path.join(d, "sink.c")],
                       check=True)
    return d


# A log receiver on 127.0.0.1:PORT that counts messages and exits when it
# has N: "lines" (syslog, newline framed), "nul" (GELF over TCP), "msgpack"
# (fluentd's forward protocol: whole MessagePack objects). C, so the
# receiver is never what the daemons wait for.
RECV_C = r"""
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static unsigned char *buf[64];
static size_t len[64];
static volatile long got;
/* Stopped early (SIGTERM): say how many came. */
static void report(int sig) {
    char t[32];
    int n = snprintf(t, sizeof t, "%ld\n", got);
    (void)sig;
    write(1, t, n);
    _exit(0);
}
/* The size of one whole MessagePack object at p (0: not all here). */
static size_t obj(const unsigned char *p, size_t n) {
    if (!n) return 0;
    unsigned c = p[0];
    size_t h = 1, body = 0, items = 0;
#define BE(k) ({ size_t v = 0; if (n < 1 + (k)) return 0; for (int i = 1; i <= (k); i++) v = v << 8 | p[i]; h = 1 + (k); v; })
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) return 1;
    else if (c >= 0x80 && c <= 0x8f) items = 2 * (c & 15);
    else if (c >= 0x90 && c <= 0x9f) items = c & 15;
    else if (c >= 0xa0 && c <= 0xbf) body = c & 31;
    else if (c == 0xc4 || c == 0xd9) body = BE(1);
    else if (c == 0xc5 || c == 0xda) body = BE(2);
    else if (c == 0xc6 || c == 0xdb) body = BE(4);
    else if (c == 0xc7) body = BE(1) + 1;
    else if (c == 0xc8) body = BE(2) + 1;
    else if (c == 0xc9) body = BE(4) + 1;
    else if (c == 0xca || c == 0xd2 || c == 0xce) body = 4;
    else if (c == 0xcb || c == 0xd3 || c == 0xcf) body = 8;
    else if (c == 0xcc || c == 0xd0) body = 1;
    else if (c == 0xcd || c == 0xd1) body = 2;
    else if (c >= 0xd4 && c <= 0xd8) body = 1 + (1u << (c - 0xd4));
    else if (c == 0xdc) items = BE(2);
    else if (c == 0xdd) items = BE(4);
    else if (c == 0xde) items = 2 * BE(2);
    else if (c == 0xdf) items = 2 * BE(4);
    size_t at = h + body;
    if (at > n) return 0;
    for (size_t i = 0; i < items; i++) {
        size_t k = obj(p + at, n - at);
        if (!k) return 0;
        at += k;
    }
    return at;
}
int main(int argc, char **argv) {
    const char *mode = argv[1];
    long want = atol(argv[3]);
    signal(SIGTERM, report);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[2]));
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 16)) return 1;
    struct pollfd fds[64] = {{l, POLLIN, 0}};
    int nfds = 1;
    static unsigned char rb[1 << 20];
    while (got < want) {
        if (poll(fds, nfds, -1) < 0) return 1;
        if (fds[0].revents & POLLIN && nfds < 64) {
            int c = accept(l, 0, 0);
            if (c >= 0) { fds[nfds].fd = c; fds[nfds].events = POLLIN; buf[nfds] = malloc(1 << 22); len[nfds] = 0; nfds++; }
        }
        for (int i = 1; i < nfds; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t r = read(fds[i].fd, rb, sizeof rb);
            if (r <= 0) { close(fds[i].fd); fds[i] = fds[nfds - 1]; buf[i] = buf[nfds - 1]; len[i] = len[nfds - 1]; nfds--; i--; continue; }
            if (mode[0] == 'l' || mode[0] == 'n') {
                char sep = mode[0] == 'l' ? '\n' : 0;
                for (ssize_t j = 0; j < r; j++) got += rb[j] == sep;
            } else {
                memcpy(buf[i] + len[i], rb, r);
                len[i] += r;
                size_t at = 0, k;
                while ((k = obj(buf[i] + at, len[i] - at))) { at += k; got++; }
                memmove(buf[i], buf[i] + at, len[i] - at);
                len[i] -= at;
            }
        }
    }
    printf("%ld\n", got);
    return 0;
}
"""


def make_receiver(tmp):
    d = os.path.join(tmp, "recv")
    exe = os.path.join(d, "recv")
    if not os.path.exists(exe):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "recv.c"), "w") as f:
            f.write(RECV_C)
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(d, "recv.c")], check=True)
    return exe


# An authorization plugin that allows everything, on a unix socket: one
# thread per connection, keep-alive, so the plugin is never what the
# daemons wait for. Answers Plugin.Activate with authz.
AUTHZ_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static void *serve(void *arg) {
    int c = (int)(long)arg;
    const size_t cap = 1 << 22;
    char *b = malloc(cap);
    size_t n = 0;
    for (;;) {
        char *end = 0;
        while (!(end = memmem(b, n, "\r\n\r\n", 4))) {
            ssize_t r = read(c, b + n, cap - n);
            if (r <= 0) { close(c); free(b); return 0; }
            n += r;
        }
        size_t head = end + 4 - b, body = 0;
        for (char *p = b; p < end; p++)
            if (!strncasecmp(p, "\ncontent-length:", 16)) body = strtoul(p + 16, 0, 10);
        while (n < head + body) {
            ssize_t r = read(c, b + n, cap - n);
            if (r <= 0) { close(c); free(b); return 0; }
            n += r;
        }
        const char *ans = strstr(b, "/Plugin.Activate") && strstr(b, "/Plugin.Activate") < end
            ? "{\"Implements\":[\"authz\"]}" : "{\"Allow\":true}";
        char out[256];
        int k = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: %zu\r\n\r\n%s", strlen(ans), ans);
        if (write(c, out, k) != k) { close(c); free(b); return 0; }
        memmove(b, b + head + body, n - head - body);
        n -= head + body;
    }
}
int main(int argc, char **argv) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    unlink(argv[1]);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128)) return 1;
    for (;;) {
        int c = accept(l, 0, 0);
        if (c < 0) continue;
        pthread_t t;
        pthread_create(&t, 0, serve, (void *)(long)c);
        pthread_detach(t);
    }
}
"""


def start_authz_plugin(tmp, name):
    """The allow-all plugin at /run/docker/plugins/NAME.sock (where dockerd
    looks; berthd looks there too)."""
    d = os.path.join(tmp, "authz")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "authz.c"), "w") as f:
        f.write(AUTHZ_C)
    exe = os.path.join(d, "authz")
    subprocess.run(["cc", "-O2", "-pthread", "-o", exe, os.path.join(d, "authz.c")], check=True)
    os.makedirs("/run/docker/plugins", exist_ok=True)
    sock = f"/run/docker/plugins/{name}.sock"
    p = subprocess.Popen([exe, sock])
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.02)
    return p, sock


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def logdriver_figures(name, sock, tmp, lines=1_000_000):
    """A container writing `lines` lines through each driver to its
    receiver on loopback (blocking mode, the default): the time from
    `docker run` until the receiver has every line (local: until the
    container has exited and its file holds them), and how many were lost."""
    exe = make_receiver(tmp)
    r = {}
    for driver, mode in (("syslog", "lines"), ("gelf", "nul"), ("fluentd", "msgpack"), ("local", None)):
        port = free_port()
        opt = {"syslog": f"syslog-address=tcp://127.0.0.1:{port}",
               "gelf": f"gelf-address=tcp://127.0.0.1:{port}",
               "fluentd": f"fluentd-address=127.0.0.1:{port}",
               "local": "max-size=200m"}[driver]
        recv = subprocess.Popen([exe, mode, str(port), str(lines)], stdout=subprocess.PIPE, text=True) if mode else None
        time.sleep(0.2)
        cname = f"logs-{driver}"
        t = time.monotonic()
        docker(sock, "run", "-d", "--name", cname, "--log-driver", driver, "--log-opt", opt,
               "busybox", "seq", "1", str(lines))
        if recv:
            # Until the receiver has every line, or the container has been
            # gone for 15 s without them (lines lost).
            gone, checked = None, time.monotonic()
            while recv.poll() is None:
                time.sleep(0.02)
                if gone is None and time.monotonic() - checked > 2:
                    checked = time.monotonic()
                    st = docker(sock, "inspect", "-f", "{{.State.Running}}", cname, check=False).stdout.strip()
                    if st == "false":
                        gone = time.monotonic()
                elif gone is not None and time.monotonic() - gone > 15:
                    recv.terminate()
            out, _ = recv.communicate()
            got = int(out.strip() or 0)
            r[f"log_{driver}_s"] = time.monotonic() - t if got >= lines else float("nan")
        else:
            docker(sock, "wait", cname)
            r[f"log_{driver}_s"] = time.monotonic() - t
            got = docker(sock, "logs", cname).stdout.count("\n")
        docker(sock, "wait", cname)
        r[f"log_{driver}_lost"] = lines - got if got >= 0 else lines
        docker(sock, "rm", "-f", cname)
    return r


def network_figures(name, sock, runs, subnet, sink_dir, mb=2048):
    """run --rm on a user-defined network; TCP throughput host -> container
    through a published port on 127.0.0.1; DNS latency of a container name."""
    r = {}
    docker(sock, "network", "create", "--subnet", subnet, "appnet")
    docker(sock, "run", "--rm", "--network", "appnet", "busybox", "true")
    times = sorted(timed(lambda: docker(sock, "run", "--rm", "--network", "appnet", "busybox", "true"))
                   for _ in range(runs))
    r["net_run_rm_s"] = times[len(times) // 2]
    # Throughput: a sink in the container, bytes sent from the host.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    hp = s.getsockname()[1]
    s.close()
    docker(sock, "run", "-d", "--name", "sink", "-p", f"127.0.0.1:{hp}:5001",
           "-v", f"{sink_dir}:/sink:ro", "busybox", "/sink/sink")
    chunk = b"\0" * (1 << 20)
    best = 0.0
    for _ in range(3):
        deadline = time.monotonic() + 10
        while True:
            try:
                c = socket.create_connection(("127.0.0.1", hp), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        t = time.monotonic()
        for _ in range(mb):
            c.sendall(chunk)
        c.shutdown(socket.SHUT_WR)
        c.settimeout(30)
        try:
            c.recv(1)
        except OSError:
            pass
        c.close()
        best = max(best, mb / (time.monotonic() - t))
        time.sleep(0.3)
    r["port_tcp_mbps"] = best
    # DNS: 200 lookups of a container name (A and AAAA each), timed inside.
    docker(sock, "run", "-d", "--name", "target", "--network", "appnet", "busybox", "sleep", "100000")
    docker(sock, "run", "-d", "--name", "asker", "--network", "appnet", "busybox", "sleep", "100000")
    pid = docker(sock, "inspect", "-f", "{{.State.Pid}}", "asker").stdout.strip()
    o = subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", DNS_PROBE, "target", "2000"],
                       capture_output=True, text=True, check=True)
    r["dns_lookup_ms"] = float(o.stdout.strip())
    docker(sock, "rm", "-f", "sink", "target", "asker")
    docker(sock, "network", "rm", "appnet")
    return r


def restart_to_ready(name, sock, procs, argv, logf, live=50):
    """Restart the daemon (SIGTERM with live-restore, as for an upgrade) with
    50 live containers; time from the new start until `docker ps` lists them."""
    for _ in range(live):
        docker(sock, "run", "-d", "busybox", "sleep", "100000")
    p = procs[name]
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    time.sleep(1)
    t = time.monotonic()
    procs[name] = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT)
    deadline = t + 120
    while True:
        o = docker(sock, "ps", "-q", check=False)
        if o.returncode == 0 and len(o.stdout.split()) >= live:
            break
        if time.monotonic() > deadline or procs[name].poll() is not None:
            raise RuntimeError(f"{name} did not come back with its {live} containers")
        time.sleep(0.01)
    secs = time.monotonic() - t
    ids = docker(sock, "ps", "-aq").stdout.split()
    docker(sock, "rm", "-f", *ids)
    return secs


def make_build_context(d):
    """A 15-step Dockerfile (busybox base; ENV, RUN, COPY of 1 MiB files,
    WORKDIR, CMD) and its files."""
    os.makedirs(d, exist_ok=True)
    for i in range(4):
        with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
    lines = [
        "FROM busybox",
        "ENV A=1",
        "RUN echo one > /one",
        "COPY f0.bin /data/",
        "ENV B=2",
        "RUN echo two > /two && ls /data",
        "COPY f1.bin /data/",
        "WORKDIR /srv",
        "RUN echo three > three",
        "COPY f2.bin f3.bin /data/",
        "ENV C=3",
        "RUN cat /one /two > /both",
        "LABEL bench=build",
        "RUN wc -c /data/f0.bin",
        "CMD [\"cat\", \"/both\"]",
    ]
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def build_cli(sock, ctx, *extra):
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_BUILDKIT="0")
    t = time.monotonic()
    r = subprocess.run([DOCKER, "build", "-q", *extra, ctx], env=env, capture_output=True, text=True)
    dt = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(f"docker build failed: {r.stderr}")
    return dt


def build_raw(sock, ctx_tar):
    """The daemon's own time for a build: the context posted, the stream
    read to its end (no CLI)."""
    body = open(ctx_tar, "rb").read()
    t = time.monotonic()
    c = socket.socket(socket.AF_UNIX)
    c.connect(sock)
    c.sendall(f"POST /v1.41/build?q=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    out = b""
    while True:
        try:
            b = c.recv(65536)
        except ConnectionResetError:
            # dockerd resets the connection after its last chunk when
            # the tar's trailing record padding was left unread.
            break
        if not b:
            break
        out += b
    c.close()
    dt = time.monotonic() - t
    if b"sha256:" not in out:
        raise RuntimeError(f"raw build failed: {out[-300:]!r}")
    return dt


def build_figures(sock, tmp, runs=3):
    """Cold (--no-cache), fully cached, one copied file changed: medians."""
    ctx = os.path.join(tmp, "buildctx")
    if not os.path.exists(ctx):
        make_build_context(ctx)
    ctx_tar = os.path.join(tmp, "buildctx.tar")
    subprocess.run(["tar", "cf", ctx_tar, "-C", ctx, "."], check=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    out = {"build_cold_s": med([build_cli(sock, ctx, "--no-cache") for _ in range(runs)])}
    out["build_cached_s"] = med([build_cli(sock, ctx) for _ in range(runs * 2)])
    out["build_cached_raw_s"] = med([build_raw(sock, ctx_tar) for _ in range(runs * 2)])
    changed = []
    for i in range(runs):
        with open(os.path.join(ctx, "f1.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        changed.append(build_cli(sock, ctx))
    out["build_changed_s"] = med(changed)
    return out


def wait_ping(sock_path, proc, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited: {proc.args}")
        try:
            request(sock_path, "/_ping").close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no ping from {sock_path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berthd", required=True)
    ap.add_argument("--dockerd", default=shutil.which("dockerd") or "/usr/sbin/dockerd")
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--layer-mb", type=int, default=50)
    ap.add_argument("--only", choices=["all", "system", "images", "containers", "network", "sdk", "build", "logs", "authz"], default="all")
    ap.add_argument("--sdk-python", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "..", "target", "sdk-venv", "bin", "python"),
                    help="a python with the pinned docker SDK (made by `cargo test --test integration python_sdk::`)")
    args = ap.parse_args()
    want = lambda part: args.only in ("all", part)

    tmp = tempfile.mkdtemp(prefix="berth-bench-")
    procs = {}
    authz = {}
    try:
        # live-restore on both: the restart figure needs it, nothing else
        # notices. The network figures give each its own default bridge.
        # The SDK suite's links need a default bridge on both too.
        net = want("network") or args.only in ("sdk", "build")
        # Authorization: both daemons ask the same allow-all plugin about
        # every request (its own run: it slows every other figure).
        authz = {}
        if args.only == "authz":
            name = f"berthbench{os.getpid()}"
            authz_proc, authz_sock = start_authz_plugin(tmp, name)
            authz = {"authorization-plugins": [name]}
        cfgs = {}
        for n, bip in (("berthd", "10.250.1.1/24"), ("dockerd", "10.250.0.1/24")):
            cfgs[n] = os.path.join(tmp, f"{n}.json")
            with open(cfgs[n], "w") as f:
                json.dump({"live-restore": True, **({"bip": bip} if net else {}), **authz}, f)
        socks = {n: os.path.join(tmp, f"{n}.sock") for n in ("berthd", "dockerd")}
        common = lambda n: [
            "--data-root", os.path.join(tmp, n, "data"),
            "--exec-root", os.path.join(tmp, n, "exec"),
            "--pidfile", os.path.join(tmp, n, "pid"),
            "--config-file", cfgs[n],
            "-H", f"unix://{socks[n]}",
        ]
        for n in socks:
            os.makedirs(os.path.join(tmp, n), exist_ok=True)
        log = lambda n: open(os.path.join(tmp, n, "log"), "w")
        argv = {
            "berthd": [args.berthd] + common("berthd"),
            "dockerd": [args.dockerd] + common("dockerd") + (
                ["--ip6tables=false"] if net else ["--bridge", "none", "--iptables=false", "--ip6tables=false"]),
        }
        tables_before = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        logs = {n: log(n) for n in argv}
        for n in argv:
            procs[n] = subprocess.Popen(argv[n], stdout=logs[n], stderr=subprocess.STDOUT)
        for n, p in procs.items():
            wait_ping(socks[n], p)
        time.sleep(3)
        res = {}
        for n, p in procs.items():
            pids = [p.pid] + descendants(p.pid)
            res[n] = {"rss_kib": sum(rss_kib(x) for x in pids), "processes": len(pids)}
        for n in (procs if want("system") else []):
            res[n]["ping_rps"] = throughput(args.loadgen, socks[n], "/_ping", args.seconds)
            res[n]["version_rps"] = throughput(args.loadgen, socks[n], "/version", args.seconds)
            res[n]["docker_version_s"] = cli_mean(socks[n], args.runs)
        for n in (procs if authz else []):
            res[n]["authz_ping_rps"] = throughput(args.loadgen, socks[n], "/_ping", args.seconds)
            res[n]["authz_containers_json_rps"] = throughput(args.loadgen, socks[n], "/containers/json", args.seconds)
            res[n]["authz_docker_version_s"] = cli_mean(socks[n], args.runs)
            print(n, json.dumps(res[n]), flush=True)
        # Containers: run --rm, run -d rate, shim RSS, /containers/json with 100, 1M lines, restart.
        if want("containers"):
            bb = os.path.join(tmp, "busybox.tar")
            make_busybox(bb)
            for n in ("berthd", "dockerd"):
                docker(socks[n], "load", "-i", bb)
                res[n].update(container_figures(n, socks[n], args.loadgen, args.seconds, args.runs))
                res[n]["restart_ready_s"] = restart_to_ready(n, socks[n], procs, argv[n], logs[n])
                print(n, json.dumps(res[n]), flush=True)
        # The Python SDK suite (tests/python/sdk_suite.py) on both, side by
        # side: a difference is a compatibility finding, not a figure.
        if args.only == "sdk":
            bb = os.path.join(tmp, "busybox.tar")
            make_busybox(bb)
            suite = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python", "sdk_suite.py")
            results = {}
            for n, k in (("berthd", 6), ("dockerd", 7)):
                docker(socks[n], "load", "-i", bb)
                env = dict(os.environ, DOCKER_HOST=f"unix://{socks[n]}", SUITE_PREFIX="sdkcmp",
                           SUITE_SUBNET4=f"10.252.{k}.0/24", SUITE_SUBNET6=f"fd00:b5:252:{k}::/64")
                r = subprocess.run([args.sdk_python, suite], env=env, capture_output=True, text=True)
                results[n] = {l.split()[1]: l.split()[0] for l in r.stdout.splitlines()
                              if l.startswith(("ok ", "FAIL "))}
                res[n]["sdk"] = results[n]
                if r.returncode != 0:
                    print(f"--- {n}\n{r.stdout}{r.stderr}", flush=True)
            print(f"{'Python SDK check':44} {'berthd':>8} {'dockerd':>8}")
            for c in sorted(results["berthd"].keys() | results["dockerd"].keys()):
                print(f"{c:44} {results['berthd'].get(c, '-'):>8} {results['dockerd'].get(c, '-'):>8}")
        # Build: the same 15-step Dockerfile, cold, cached, one file changed.
        if want("build"):
            bb = os.path.join(tmp, "busybox.tar")
            if not os.path.exists(bb):
                make_busybox(bb)
            for n in ("berthd", "dockerd"):
                if not want("containers"):
                    docker(socks[n], "load", "-i", bb)
                res[n].update(build_figures(socks[n], tmp))
                print(n, json.dumps(res[n]), flush=True)
        # Logging drivers: 1M lines to each driver's receiver on loopback.
        if want("logs"):
            bb = os.path.join(tmp, "busybox.tar")
            if not os.path.exists(bb):
                make_busybox(bb)
            for n in ("berthd", "dockerd"):
                if not (want("containers") or want("build")):
                    docker(socks[n], "load", "-i", bb)
                res[n].update(logdriver_figures(n, socks[n], tmp))
                print(n, json.dumps(res[n]), flush=True)
        # Network: run --rm on a user network, port throughput, DNS latency.
        if net:
            bb = os.path.join(tmp, "busybox.tar")
            if not os.path.exists(bb):
                make_busybox(bb)
            for n, sub in (("berthd", "10.251.1.0/24"), ("dockerd", "10.251.0.0/24")):
                if not want("containers"):
                    docker(socks[n], "load", "-i", bb)
                res[n].update(network_figures(n, socks[n], args.runs, sub, make_sink(tmp)))
                print(n, json.dumps(res[n]), flush=True)
        # Images: load, push, pull (with peak RSS), then /images/json with 200 images.
        archive = os.path.join(tmp, "big.tar")
        layers, layer_mb = 4, args.layer_mb
        if want("images"):
            make_archive(archive, layers, layer_mb)
        size_mb = layers * layer_mb * 1.048576
        tiny_dir = os.path.join(tmp, "tiny")
        os.makedirs(tiny_dir)
        import io, tarfile
        for i in range(200 if want("images") else 0):
            with tarfile.open(os.path.join(tiny_dir, f"t{i}.tar"), "w") as t:
                data = f"tiny {i}\n".encode()
                ti = tarfile.TarInfo("f")
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        reg_dir = os.path.join(tmp, "registry")
        os.makedirs(reg_dir)
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        reg_addr = "127.0.0.1:%d" % port.getsockname()[1]
        port.close()
        with open(os.path.join(reg_dir, "config.yml"), "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {reg_dir}/data\nhttp:\n  addr: {reg_addr}\n")
        procs["registry"] = subprocess.Popen(["docker-registry", "serve", os.path.join(reg_dir, "config.yml")],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        for n in (("berthd", "dockerd") if want("images") else ()):
            res[n].update(image_figures(n, socks[n], procs[n].pid, archive, size_mb, reg_addr, tiny_dir))
            res[n]["images_json_rps"] = throughput(args.loadgen, socks[n], "/images/json", args.seconds)
        b, d = res["berthd"], res["dockerd"]
        rows = [
            ("idle RSS (KiB)", "rss_kib", "<= 0.15"),
            ("/_ping req/s (1 keep-alive conn)", "ping_rps", ">= 10"),
            ("/version req/s (1 keep-alive conn)", "version_rps", ">= 10"),
            ("docker version mean (s)", "docker_version_s", "lower is better"),
            ("docker load MB/s", "load_mbps", ">= 1.5"),
            ("docker push MB/s", "push_mbps", ">= 1.5"),
            ("docker pull wall time (s)", "pull_s", "<= 0.65"),
            ("peak RSS during pull (KiB)", "pull_peak_rss_kib", "berthd < 64 MiB"),
            ("/images/json req/s, 200 images", "images_json_rps", ">= 5"),
            ("docker run --rm true median (s)", "run_rm_s", "<= 0.3"),
            ("docker run -d containers/s", "run_d_per_s", ">= 3"),
            ("monitor RSS per container (KiB)", "shim_rss_kib", "berth-shim <= 1.5 MiB"),
            ("monitor PSS per container (KiB)", "shim_pss_kib", "(shared pages split)"),
            ("/containers/json req/s, 100 running", "containers_json_rps", ">= 10"),
            ("1M-line container, run to exit (s)", "million_run_s", "<= 0.4"),
            ("docker logs of 1M lines (s)", "million_logs_s", "<= 0.33"),
            ("restart to ready, 50 live (s)", "restart_ready_s", "<= 0.3"),
            ("run --rm --network appnet median (s)", "net_run_rm_s", "<= 0.35"),
            ("TCP via published port MB/s", "port_tcp_mbps", ">= 1"),
            ("DNS lookup of a container name (ms)", "dns_lookup_ms", "<= 1"),
            ("build, 15 steps, --no-cache (s)", "build_cold_s", "<= 0.5"),
            ("build, 15 steps, all cached (s)", "build_cached_s", "<= 0.5"),
            ("  the same, daemon only (s)", "build_cached_raw_s", "berthd < 0.1 s"),
            ("build, one copied file changed (s)", "build_changed_s", "<= 0.5"),
            ("1M lines via syslog tcp (s)", "log_syslog_s", "<= 0.5, none lost"),
            ("1M lines via gelf tcp (s)", "log_gelf_s", "<= 0.5, none lost"),
            ("1M lines via fluentd (s)", "log_fluentd_s", "<= 0.5, none lost"),
            ("1M lines via local, run to exit (s)", "log_local_s", "<= 0.5, none lost"),
            ("  syslog lines lost", "log_syslog_lost", "0"),
            ("  gelf lines lost", "log_gelf_lost", "0"),
            ("  fluentd lines lost", "log_fluentd_lost", "0"),
            ("  local lines lost", "log_local_lost", "0"),
            ("authz plugin: /_ping req/s", "authz_ping_rps", ">= 1"),
            ("authz plugin: /containers/json req/s", "authz_containers_json_rps", ">= 1"),
            ("authz plugin: docker version mean (s)", "authz_docker_version_s", "<= 1"),
        ]
        print(f"{'figure':38} {'berthd':>12} {'dockerd':>12} {'ratio':>8}  goal")
        for label, key, goal in rows:
            if key not in b or key not in d:
                continue
            ratio = b[key] / d[key] if d[key] else float("nan")
            print(f"{label:38} {b[key]:12.3f} {d[key]:12.3f} {ratio:8.3f}  {goal}")
            res.setdefault("ratios", {})[key] = ratio
        if "processes" in d:
            print(f"(dockerd figure counts {d['processes']} processes: dockerd and its containerd)")
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, time.strftime("%Y%m%d-%H%M%S") + ".json"), "w") as f:
            json.dump(res, f, indent=2)
    finally:
        for n in ("berthd", "dockerd"):
            if n in procs and procs[n].poll() is None:
                ids = docker(socks[n], "ps", "-aq", check=False).stdout.split()
                if ids:
                    docker(socks[n], "rm", "-f", *ids, check=False)
        for n, p in reversed(list(procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    for c in descendants(p.pid):
                        try:
                            os.kill(c, signal.SIGKILL)
                        except OSError:
                            pass
                    p.kill()
        # berthd (live-restore) leaves its berth-dns and proxies running:
        # everything working under the bench's directory goes.
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.readlink(f"/proc/{pid}/cwd").startswith(tmp):
                        os.kill(int(pid), signal.SIGTERM)
                except OSError:
                    pass
        # Mounts left under the bench's directory (berthd's netns bind mount,
        # kept across its restarts for live-restore; dockerd's data-root):
        # deepest first, before the directory goes.
        with open("/proc/self/mountinfo") as f:
            points = [l.split()[4] for l in f if l.split()[4].startswith(tmp)]
        for m in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if authz:
            authz_proc.kill()
            try:
                os.unlink(authz_sock)
            except OSError:
                pass
        # dockerd leaves docker0 and its iptables (nft) tables behind, berthd
        # (live-restore) its default bridge and table: remove what is new.
        if "dockerd" in procs:
            import hashlib
            h = hashlib.sha256(os.path.join(tmp, "berthd", "exec").encode()).hexdigest()[:8]
            old = {l.split(":")[1].strip().split("@")[0] for l in links_before.splitlines()}
            for name in ("docker0", f"bt-{h}"):
                if name not in old:
                    subprocess.run(["ip", "link", "del", name], capture_output=True)
            after = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
            for t in set(after.splitlines()) - set(tables_before.splitlines()):
                # "table <family> <name>": dockerd's ip/ip6 nat and filter, berthd's own
                fam, name = t.split()[1:3]
                if fam in ("ip", "ip6") or name == f"berth-{h}":
                    subprocess.run(["nft", "delete", "table", fam, name], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
