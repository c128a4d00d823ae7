"""A compatibility suite for the Docker SDK for Python (`docker` on PyPI),
run against a daemon at DOCKER_HOST that has `busybox:latest`.

Written for berth: tests/python_sdk.rs runs it against a berthd it starts;
bench/sdk_compare.sh runs it against Debian's dockerd and berthd side by
side. Every check uses the SDK as its users do and asserts what dockerd
answers. Environment:
  DOCKER_HOST        the daemon
  SUITE_PREFIX       a prefix for every object name (unique per run)
  SUITE_SUBNET4      an IPv4 /24 free on this host, e.g. 10.250.3.0/24
  SUITE_SUBNET6      an IPv6 /64 for the IPv6 network, e.g. fd00:b5:3::/64
Prints one line per check; exits 1 if any failed.
"""

import io
import os
import socket
import sys
import tarfile
import threading
import time
import traceback

import docker
from docker.types import IPAMConfig, IPAMPool

P = os.environ.get("SUITE_PREFIX", "sdk")
NET4 = os.environ.get("SUITE_SUBNET4", "10.250.3.0/24")
NET6 = os.environ.get("SUITE_SUBNET6", "fd00:b5:3::/64")
IMAGE = "busybox:latest"

client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto", timeout=60)
api = client.api
failures = []
checks = []


def check(fn):
    checks.append(fn)
    return fn


def run_check(fn):
    name = fn.__name__
    only = os.environ.get("SUITE_ONLY")
    if only and only not in name:
        return
    try:
        fn()
        print(f"ok   {name}", flush=True)
    except Exception:  # noqa: BLE001 - report every failure, go on
        failures.append(name)
        print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def cleanup():
    for c in client.containers.list(all=True, filters={"name": P}):
        c.remove(force=True)
    for n in client.networks.list(names=[f"{P}-net4", f"{P}-net6"]):
        n.remove()
    for v in client.volumes.list(filters={"name": P}) + client.volumes.list(filters={"label": f"suite={P}"}):
        try:
            v.remove(force=True)
        except docker.errors.NotFound:
            pass
    for t in (f"{P}-img:1", f"{P}-img:2"):
        try:
            client.images.remove(t)
        except docker.errors.ImageNotFound:
            pass


@check
def system_ping_version_info():
    eq(client.ping(), True, "ping")
    v = client.version()
    assert v["ApiVersion"] and v["Os"] == "linux", v
    info = client.info()
    assert info["Containers"] >= 0 and info["OSType"] == "linux", info
    df = client.df()
    # The lists before API 1.52 (dockerd 20.10), per-type usage from 1.53.
    if tuple(int(x) for x in api.api_version.split(".")) >= (1, 53):
        eq(df["ImageUsage"]["TotalCount"], len(client.images.list()), "images counted")
        assert "Images" not in df, df
    else:
        assert "Images" in df and "Volumes" in df, df


@check
def images_get_tag_history_remove():
    img = client.images.get(IMAGE)
    assert img.id.startswith("sha256:"), img.id
    assert IMAGE in img.tags, img.tags
    assert img.tag(f"{P}-img", "1")
    assert img.tag(f"{P}-img", "2")
    tags = client.images.get(f"{P}-img:1").tags
    assert f"{P}-img:1" in tags and f"{P}-img:2" in tags, tags
    listed = client.images.list(name=f"{P}-img")
    eq(len(listed), 1, "images.list(name)")
    assert isinstance(img.history(), list)
    client.images.remove(f"{P}-img:1")
    client.images.remove(f"{P}-img:2")
    try:
        client.images.get(f"{P}-img:1")
        raise AssertionError("removed tag still found")
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.get("nosuchimage:nope")
        raise AssertionError("missing image found")
    except docker.errors.ImageNotFound:
        pass


@check
def run_returns_output_and_raises_on_failure():
    out = client.containers.run(IMAGE, ["sh", "-c", "echo hello; echo world"], remove=True)
    eq(out, b"hello\nworld\n", "run output")
    # stderr only when asked
    out = client.containers.run(
        IMAGE, ["sh", "-c", "echo out; echo err >&2"], remove=True, stdout=False, stderr=True
    )
    eq(out, b"err\n", "stderr output")
    try:
        client.containers.run(IMAGE, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
        raise AssertionError("no ContainerError")
    except docker.errors.ContainerError as e:
        eq(e.exit_status, 3, "exit status")
        assert b"bad" in (e.stderr or b""), e.stderr
    try:
        # (left created, as with dockerd: the SDK removes after the wait)
        client.containers.run(IMAGE, ["nosuchcommand"], name=f"{P}-nocmd", remove=True)
        raise AssertionError("no error for a missing command")
    except docker.errors.APIError as e:
        assert "executable file not found" in str(e), str(e)
    # nothing left behind by remove=True
    eq(client.containers.list(all=True, filters={"ancestor": IMAGE, "status": "exited"}), [], "left")


@check
def container_lifecycle_and_attrs():
    c = client.containers.run(
        IMAGE,
        ["sleep", "60"],
        name=f"{P}-life",
        detach=True,
        labels={"suite": P},
        environment={"A": "1"},
        working_dir="/tmp",
        hostname="lifehost",
    )
    c.reload()
    eq(c.status, "running", "status")
    eq(c.name, f"{P}-life", "name")
    eq(c.labels.get("suite"), P, "labels")
    assert "A=1" in c.attrs["Config"]["Env"], c.attrs["Config"]["Env"]
    eq(c.attrs["Config"]["Hostname"], "lifehost", "hostname")
    eq(c.attrs["Config"]["WorkingDir"], "/tmp", "workdir")
    found = client.containers.list(filters={"label": f"suite={P}"})
    eq([x.id for x in found], [c.id], "list by label")
    c.pause()
    c.reload()
    eq(c.status, "paused", "paused")
    c.unpause()
    c.rename(f"{P}-life2")
    c.reload()
    eq(c.name, f"{P}-life2", "renamed")
    top = c.top()
    assert any("sleep" in " ".join(p) for p in top["Processes"]), top
    stats = c.stats(stream=False)
    assert "memory_stats" in stats and "cpu_stats" in stats, stats.keys()
    c.kill()
    # kill (SIGKILL) answers after the exit: the state is final at once
    c.reload()
    eq(c.status, "exited", "status after kill")
    eq(c.attrs["State"]["ExitCode"], 137, "exit code after kill")
    c.remove()
    try:
        client.containers.get(f"{P}-life2")
        raise AssertionError("removed container found")
    except docker.errors.NotFound:
        pass


@check
def wait_and_stop_timeout():
    c = client.containers.run(IMAGE, ["sh", "-c", "sleep 0.3; exit 7"], name=f"{P}-wait", detach=True)
    r = c.wait(timeout=30)
    eq(r["StatusCode"], 7, "wait status")
    c.remove()
    c = client.containers.run(IMAGE, ["sleep", "60"], name=f"{P}-stop", detach=True)
    t = time.time()
    c.stop(timeout=1)
    assert time.time() - t < 15, "stop took too long"
    c.reload()
    eq(c.status, "exited", "stopped")
    c.remove()


@check
def exec_run_plain_demux_tty_user_env():
    c = client.containers.run(IMAGE, ["sleep", "60"], name=f"{P}-exec", detach=True)
    # stdout and stderr are two pipes: their relative order is not kept
    # (not by dockerd either); each stream's is.
    r = c.exec_run(["sh", "-c", "echo hello out; echo hello err >&2"])
    eq(r.exit_code, 0, "exit code")
    eq(sorted(r.output.splitlines()), [b"hello err", b"hello out"], "merged output")
    r = c.exec_run(["sh", "-c", "echo hello out; echo hello err >&2"], demux=True)
    eq(r.output, (b"hello out\n", b"hello err\n"), "demuxed output")
    # With a TTY both go through the one terminal, in order.
    r = c.exec_run(["sh", "-c", "echo hello out; echo hello err >&2"], tty=True)
    eq(r.output, b"hello out\r\nhello err\r\n", "tty output")
    r = c.exec_run(["sh", "-c", "exit 5"])
    eq(r.exit_code, 5, "exec exit code")
    r = c.exec_run(["id", "-u"], user="65534")
    eq(r.output, b"65534\n", "user")
    r = c.exec_run(["sh", "-c", "echo $X-$A"], environment={"X": "x1", "A": "a1"})
    eq(r.output, b"x1-a1\n", "environment")
    r = c.exec_run(["pwd"], workdir="/tmp")
    eq(r.output, b"/tmp\n", "workdir")
    r = c.exec_run(["echo", "hello world"])
    eq(r.output, b"hello world\n", "echo")
    # streamed, without waiting for the end
    r = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"], stream=True)
    eq(b"".join(r.output), b"1\n2\n3\n", "streamed exec")
    r = c.exec_run(["nosuchcmd"])
    # 127 as current dockerd (and berth) answer; dockerd 20.10 says 126.
    assert r.exit_code in (126, 127), r.exit_code
    assert b"executable file not found" in r.output, r.output
    # exec with stdin through the socket
    e = api.exec_create(c.id, ["cat"], stdin=True)
    sock = api.exec_start(e["Id"], socket=True)
    raw = sock._sock
    raw.sendall(b"piped in\n")
    raw.shutdown(socket.SHUT_WR)
    data = b""
    raw.settimeout(20)
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
    eq(data, b"\x01\x00\x00\x00\x00\x00\x00\x09piped in\n", "stdin through exec")
    c.remove(force=True)


@check
def attach_and_logs_follow():
    c = client.containers.create(
        IMAGE, ["sh", "-c", "sleep 0.5; echo one; echo two >&2; sleep 0.3; echo three"], name=f"{P}-att"
    )
    got = []
    stream = c.attach(stream=True, stdout=True, stderr=True, logs=True)

    def reader():
        for chunk in stream:
            got.append(chunk)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    c.start()
    t.join(30)
    eq(sorted(b"".join(got).splitlines()), [b"one", b"three", b"two"], "attach stream")
    # logs after the fact, split by stream, and timestamps
    eq(c.logs(stdout=True, stderr=False), b"one\nthree\n", "stdout logs")
    eq(c.logs(stdout=False, stderr=True), b"two\n", "stderr logs")
    ts = c.logs(timestamps=True).splitlines()
    eq(len(ts), 3, "timestamped lines")
    eq(sorted(t.split(b" ", 1)[1] for t in ts), [b"one", b"three", b"two"], "timestamped")
    assert all(t[:4].isdigit() and t.split(b" ", 1)[0].endswith(b"Z") for t in ts), ts
    eq(c.logs(tail=1), b"three\n", "tail")
    c.remove()
    # follow: lines arrive as they are written, the stream ends at the exit
    c = client.containers.run(
        IMAGE, ["sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.2; done"], name=f"{P}-follow", detach=True
    )
    seen = []
    start = time.time()
    for line in c.logs(stream=True, follow=True):
        seen.append((line, time.time() - start))
    eq(b"".join(x for x, _ in seen), b"line1\nline2\nline3\nline4\n", "followed logs")
    # one frame per entry: the SDK yields each line as its own chunk, the
    # first well before the last was written
    eq(len(seen), 4, "chunks")
    assert seen[0][1] < seen[-1][1] - 0.3, seen
    c.remove()


@check
def networks_ipam_ipv6_connect_aliases():
    n4 = client.networks.create(
        f"{P}-net4",
        driver="bridge",
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=NET4, gateway=NET4.replace("0/24", "1"))]),
        labels={"suite": P},
    )
    n4.reload()
    cfg = n4.attrs["IPAM"]["Config"][0]
    eq(cfg["Subnet"], NET4, "subnet")
    eq(n4.attrs["Labels"], {"suite": P}, "labels")
    eq(n4.attrs["Options"], {}, "options of a network without any")
    n6 = client.networks.create(
        f"{P}-net6",
        driver="bridge",
        enable_ipv6=True,
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=NET6)]),
    )
    n6.reload()
    eq(n6.attrs["EnableIPv6"], True, "ipv6 on")
    assert any(c["Subnet"] == NET6 for c in n6.attrs["IPAM"]["Config"]), n6.attrs["IPAM"]
    web = client.containers.run(IMAGE, ["sleep", "60"], name=f"{P}-web", detach=True, network=f"{P}-net4")
    try:
        n4.connect(web)
        raise AssertionError("connecting twice was accepted")
    except docker.errors.APIError as e:
        eq(e.status_code, 403, "connect twice")
    n6.connect(web, aliases=["web6alias"])
    web.reload()
    nets = web.attrs["NetworkSettings"]["Networks"]
    assert set(nets) == {f"{P}-net4", f"{P}-net6"}, nets.keys()
    ip4 = nets[f"{P}-net4"]["IPAddress"]
    assert ip4.startswith(NET4.rsplit(".", 1)[0]), ip4
    assert nets[f"{P}-net6"]["GlobalIPv6Address"], nets[f"{P}-net6"]
    out = client.containers.run(
        IMAGE, ["sh", "-c", f"ping -c1 -W2 {P}-web >/dev/null && echo reached"], remove=True, network=f"{P}-net4"
    )
    eq(out, b"reached\n", "name resolution on the user network")
    out = client.containers.run(
        IMAGE, ["sh", "-c", "nslookup web6alias 127.0.0.11 >/dev/null && echo found"], remove=True, network=f"{P}-net6"
    )
    eq(out, b"found\n", "alias on the IPv6 network")
    n4.reload()
    assert web.id in n4.attrs["Containers"], n4.attrs["Containers"]
    n6.disconnect(web)
    web.reload()
    eq(set(web.attrs["NetworkSettings"]["Networks"]), {f"{P}-net4"}, "after disconnect")
    listed = client.networks.list(filters={"label": f"suite={P}"})
    eq([n.name for n in listed], [f"{P}-net4"], "networks by label")
    try:
        n4.remove()
        raise AssertionError("removed a network with an endpoint")
    except docker.errors.APIError as e:
        eq(e.status_code, 403, "remove in use")
    web.remove(force=True)
    n4.remove()
    n6.remove()


@check
def links_legacy_and_on_a_user_network():
    # The default bridge: the child's variables and a hosts line.
    child = client.containers.run(
        IMAGE, ["sleep", "60"], name=f"{P}-lchild", detach=True, environment={"SECRET": "s"}, ports={"80/tcp": None}
    )
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    out = client.containers.run(
        IMAGE, ["sh", "-c", "env; cat /etc/hosts"], name=f"{P}-lparent", links={f"{P}-lchild": "db"}, remove=True
    ).decode()
    for want in (f"DB_PORT=tcp://{ip}:80", f"DB_PORT_80_TCP_ADDR={ip}", f"DB_NAME=/{P}-lparent/db", "DB_ENV_SECRET=s"):
        assert want in out.splitlines(), (want, out)
    assert any(l.startswith(f"{ip}\tdb ") for l in out.splitlines()), out
    # A user network: the alias resolves for the linking container only.
    n = client.networks.create(f"{P}-net4", driver="bridge", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=NET4)]))
    child.remove(force=True)
    child = client.containers.run(IMAGE, ["sleep", "60"], name=f"{P}-lchild", detach=True, network=n.name)
    # The endpoint's links (where the CLI puts --link, and compose links:).
    out = client.containers.run(
        IMAGE, ["sh", "-c", "ping -c1 -W2 db >/dev/null && echo linked"], network=n.name,
        networking_config={n.name: api.create_endpoint_config(links={f"{P}-lchild": "db"})}, remove=True,
    )
    eq(out, b"linked\n", "link alias on a user network")
    # HostConfig.Links (the SDK's links=) on a user network: dropped, as dockerd drops them.
    c = client.containers.create(IMAGE, ["true"], name=f"{P}-lhc", network=n.name, links={f"{P}-lchild": "db"})
    c.reload()
    eq(c.attrs["HostConfig"]["Links"], None, "HostConfig.Links on a user network")
    eq(c.attrs["NetworkSettings"]["Networks"][n.name]["Links"], None, "not moved to the endpoint")
    c.remove()
    out = client.containers.run(
        IMAGE, ["sh", "-c", "nslookup db 127.0.0.11 >/dev/null && echo found || echo none"], network=n.name, remove=True
    )
    eq(out, b"none\n", "the alias is the linker's only")
    child.remove(force=True)
    n.remove()


@check
def volumes_create_mount_list_prune():
    v = client.volumes.create(f"{P}-vol", labels={"suite": P})
    eq(v.attrs["Driver"], "local", "driver")
    eq(v.attrs["Labels"], {"suite": P}, "labels")
    client.containers.run(
        IMAGE, ["sh", "-c", "echo kept > /data/f"], remove=True, volumes={f"{P}-vol": {"bind": "/data", "mode": "rw"}}
    )
    out = client.containers.run(
        IMAGE, ["cat", "/data/f"], remove=True, volumes={f"{P}-vol": {"bind": "/data", "mode": "ro"}}
    )
    eq(out, b"kept\n", "data in the volume")
    names = [x.name for x in client.volumes.list(filters={"label": f"suite={P}"})]
    eq(names, [f"{P}-vol"], "list by label")
    user = client.containers.create(IMAGE, ["true"], name=f"{P}-voluser", volumes=[f"{P}-vol:/data"])
    try:
        v.remove()
        raise AssertionError("removed a volume in use")
    except docker.errors.APIError as e:
        eq(e.status_code, 409, "remove in use")
    user.remove()
    v.remove()
    anon = client.volumes.create(labels={"suite": P})
    # `all` exists from API 1.42 (before it, prune takes every unused one).
    filters = {"label": f"suite={P}"}
    if docker.utils.version_gte(api.api_version, "1.42"):
        filters["all"] = "true"
    r = client.volumes.prune(filters=filters)
    assert anon.name in (r["VolumesDeleted"] or []), r


@check
def archives_put_get_and_prune():
    c = client.containers.create(IMAGE, ["true"], name=f"{P}-arch")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"from the sdk\n"
        info = tarfile.TarInfo("sdk.txt")
        info.size = len(data)
        info.mode = 0o640
        t.addfile(info, io.BytesIO(data))
    assert c.put_archive("/tmp", buf.getvalue())
    bits, stat = c.get_archive("/tmp/sdk.txt")
    eq(stat["name"], "sdk.txt", "stat name")
    eq(stat["size"], 13, "stat size")
    raw = b"".join(bits)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        m = t.getmember("sdk.txt")
        eq(t.extractfile(m).read(), b"from the sdk\n", "content")
        eq(m.mode & 0o777, 0o640, "mode")
    diff = c.diff()
    assert {"Kind": 1, "Path": "/tmp/sdk.txt"} in diff, diff
    r = client.containers.prune(filters={"label": "nosuchlabel"})
    eq(r["ContainersDeleted"], None, "prune with a filter that matches nothing")
    c.remove()


@check
def build_from_a_path_and_a_fileobj_and_commit():
    import tempfile

    with tempfile.TemporaryDirectory() as ctx:
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM busybox\nARG WHO\nCOPY hello.txt /\nRUN echo \"built by $WHO\" > /by\nCMD [\"cat\", \"/by\"]\n")
        with open(os.path.join(ctx, "hello.txt"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(ctx, "ignored.txt"), "w") as f:
            f.write("x\n")
        with open(os.path.join(ctx, ".dockerignore"), "w") as f:
            f.write("ignored.txt\n")
        img, logs = client.images.build(
            path=ctx, tag=f"{P}-img:1", buildargs={"WHO": "sdk"}, rm=True, gzip=True
        )
        text = "".join(l.get("stream", "") for l in logs)
        assert "Successfully tagged" in text, text
        eq(client.containers.run(f"{P}-img:1", remove=True), b"built by sdk\n", "built image runs")
        # Again: from the cache, the same image.
        again, logs = client.images.build(path=ctx, tag=f"{P}-img:1", buildargs={"WHO": "sdk"})
        eq(again.id, img.id, "cached build")
        assert any("Using cache" in l.get("stream", "") for l in logs)
    # A Dockerfile alone, and a failing one.
    img2, _ = client.images.build(fileobj=io.BytesIO(b"FROM busybox\nENV X=2\n"), tag=f"{P}-img:2")
    eq(img2.attrs["Config"]["Env"][-1], "X=2", "env")
    try:
        client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 7\n"), forcerm=True)
        raise AssertionError("a failing RUN must raise BuildError")
    except docker.errors.BuildError as e:
        assert "returned a non-zero code: 7" in str(e), str(e)
    # Commit a container's change as an image.
    c = client.containers.run(IMAGE, ["sh", "-c", "echo committed > /c"], name=f"{P}-commit", detach=True)
    c.wait()
    snap = c.commit(repository=f"{P}-img", tag="2", message="from the sdk", changes=["CMD cat /c"])
    eq(client.containers.run(snap.id, remove=True), b"committed\n", "committed image runs")
    eq(snap.attrs["Comment"], "from the sdk", "comment")
    c.remove()


@check
def healthcheck_states_and_the_health_filter():
    c = client.containers.run(
        IMAGE,
        ["sleep", "1000"],
        name=f"{P}-hc",
        detach=True,
        healthcheck={"test": ["CMD-SHELL", "test -f /ok"], "interval": 300_000_000, "retries": 2},
    )
    eq(c.health, "unknown", "health as created (attrs from before the start)")
    c.reload()
    eq(c.health, "starting", "health before the first probe")
    deadline = time.time() + 10
    while c.health != "unhealthy" and time.time() < deadline:
        time.sleep(0.2)
        c.reload()
    eq(c.health, "unhealthy", "failing probes")
    eq(c.attrs["State"]["Health"]["Log"][-1]["ExitCode"], 1, "probe exit code")
    c.exec_run(["touch", "/ok"])
    deadline = time.time() + 10
    while c.health != "healthy" and time.time() < deadline:
        time.sleep(0.2)
        c.reload()
    eq(c.health, "healthy", "passing probe")
    eq([x.id for x in client.containers.list(filters={"health": "healthy", "name": f"{P}-hc"})], [c.id], "filter")
    c.remove(force=True)


@check
def logging_drivers_local_syslog_and_bad_options():
    from docker.types import LogConfig
    c = client.containers.run(
        IMAGE, ["sh", "-c", "echo one; echo two >&2"], name=f"{P}-loc", detach=True,
        log_config=LogConfig(type="local", config={"max-size": "1m"}),
    )
    c.wait()
    eq(c.logs(), b"one\ntwo\n", "logs of the local driver")
    eq(c.logs(stderr=False), b"one\n", "stdout only")
    c.reload()
    eq(c.attrs["HostConfig"]["LogConfig"], {"Type": "local", "Config": {"max-size": "1m"}}, "LogConfig")
    eq(c.attrs["LogPath"], "", "LogPath of a non-json-file driver")
    c.remove()
    # syslog to a UDP socket of this process: the line and its severity.
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 0))
    r.settimeout(10)
    addr = "udp://127.0.0.1:%d" % r.getsockname()[1]
    c = client.containers.run(
        IMAGE, ["echo", "to-syslog"], name=f"{P}-sys", detach=True,
        log_config=LogConfig(type="syslog", config={"syslog-address": addr, "tag": "suite"}),
    )
    msg = r.recv(4096).decode()
    r.close()
    assert msg.startswith("<30>") and msg.endswith("suite[%s]: to-syslog\n" % msg.split("[")[1].split("]")[0]), msg
    c.wait()
    c.remove()
    try:
        client.containers.create(IMAGE, ["true"], log_config=LogConfig(type="syslog", config={"nope": "1"}))
        raise AssertionError("a bad log option was taken")
    except docker.errors.APIError as e:
        eq(e.status_code, 400, "status")
        assert "unknown log opt 'nope' for syslog log driver" in str(e.explanation), e.explanation


@check
def events_stream_sees_create_and_destroy():
    since = int(time.time()) - 1
    c = client.containers.create(IMAGE, ["true"], name=f"{P}-ev")
    c.remove()
    until = int(time.time()) + 1
    seen = [
        (e.get("Type"), e.get("Action"))
        for e in client.events(since=since, until=until, decode=True, filters={"container": f"{P}-ev"})
    ]
    assert ("container", "create") in seen and ("container", "destroy") in seen, seen


def main():
    cleanup()
    try:
        for fn in checks:
            run_check(fn)
    finally:
        cleanup()
    if failures:
        print(f"{len(failures)} failed: {', '.join(failures)}")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
