//! Clients that are not the docker CLI: raw HTTP as scripts write it
//! (`curl -g`, a raw socket), with dockerd's answers.

use crate::common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::containers::*;
use common::*;

fn curl(d: &Daemon, args: &[&str]) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-sg", "--unix-socket"])
        .arg(&d.sock)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn raw_json_in_query_strings_is_accepted_as_dockerd_accepts_it() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run", "-d", "--name", "up1", "--label", "k=<v|^>", "busybox", "sleep", "60",
    ]);
    d.docker_ok(&["create", "--name", "down1", "busybox", "true"]);

    // As people type it: the JSON unescaped, `curl -g` sends it raw.
    let (code, body) = curl(
        &d,
        &["http://d/containers/json?all=1&filters={\"status\":[\"running\"]}"],
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/up1"]);

    // Bytes Go takes in a target and the http crate does not: `<>|^`.
    let (code, body) = curl(
        &d,
        &["http://d/containers/json?filters={\"label\":[\"k=<v|^>\"]}"],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"/up1\""), "{body}");

    for path in [
        "/networks?filters={\"name\":[\"bridge\"]}",
        "/images/json?filters={\"reference\":[\"busybox\"]}",
        "/volumes?filters={\"dangling\":[\"true\"]}",
    ] {
        let (code, body) = curl(&d, &[&format!("http://d{path}")]);
        assert_eq!(code, 200, "{path}: {body}");
        assert!(body.starts_with('[') || body.starts_with('{'), "{body}");
    }
    let (code, body) = curl(&d, &["http://d/networks?filters={\"name\":[\"bridge\"]}"]);
    assert_eq!(code, 200);
    assert!(body.contains("\"Name\":\"bridge\""), "{body}");
    let (code, body) = curl(
        &d,
        &[
            "-XPOST",
            "http://d/containers/prune?filters={\"label\":[\"nope\"]}",
        ],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ContainersDeleted\":null"), "{body}");
    // A bad filter is still a 400 with dockerd's body, and the daemon stays.
    let (code, body) = curl(&d, &["http://d/containers/json?filters={\"status\":"]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    d.docker_ok(&["rm", "-f", "up1", "down1"]);
    d.stop();
}

#[test]
fn raw_targets_on_a_keep_alive_connection_leave_bodies_alone() {
    let d = daemon_with_busybox();
    // One connection: a create whose JSON body contains a request line
    // with raw quotes (passed to the handler byte for byte), a chunked
    // upload, then a GET with raw JSON; each answered in turn.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let body = r#"{"Image":"busybox","Cmd":["echo","GET /x?a=\"b\" HTTP/1.1"],"Labels":{"q":"{\"x\":1}"}}"#;
    write!(
        s,
        "POST /containers/create?name=ka1 HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let chunked = "{\"q\":\"GET /?\\\"\\\" HTTP/1.1\"}";
    write!(
        s,
        "POST /containers/ka1/update HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunked}\r\n0\r\n\r\n",
        chunked.len()
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    s.write_all(
        b"GET /containers/json?all=1&filters={\"label\":[\"q={\\\"x\\\":1}\"]} HTTP/1.1\r\nHost: d\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v[0]["Names"][0], "/ka1", "{v}");
    assert_eq!(v[0]["Command"], "echo 'GET /x?a=\"b\" HTTP/1.1'", "{v}");
    assert_eq!(v[0]["Labels"]["q"], "{\"x\":1}");
    d.docker_ok(&["rm", "ka1"]);
    d.stop();
}

#[test]
fn features_berth_lacks_answer_as_a_dockerd_without_them() {
    let d = Daemon::start();
    // `system prune` ends with the build cache: it must not fail there.
    let out = d.docker_ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    d.docker_ok(&["builder", "prune", "-f"]);
    let not_manager = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
    for args in [
        &["node", "ls"][..],
        &["service", "ls"],
        &["secret", "ls"],
        &["config", "ls"],
        &["stack", "ls"],
    ] {
        let o = d.docker(args);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(not_manager), "{args:?}: {err}");
    }
    let o = d.docker(&["swarm", "leave"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("This node is not part of a swarm"));
    let out = d.docker_ok(&["plugin", "ls"]);
    assert!(out.starts_with("ID ") && out.lines().count() == 1, "{out}");
    let o = d.docker(&["plugin", "inspect", "nope"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("plugin \"nope\" not found"));

    for (method, path, status) in [
        ("GET", "/swarm", 503),
        ("GET", "/v1.41/tasks", 503),
        ("POST", "/services/create", 503),
        ("GET", "/secrets/abc", 503),
        ("POST", "/swarm/init", 501),
        ("POST", "/build", 400),
        ("POST", "/build?version=2", 501),
        ("POST", "/session", 501),
        ("POST", "/plugins/pull?remote=x", 501),
        ("GET", "/plugins/x/json", 404),
    ] {
        let r = d.raw(
            format!("{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(d.get("/plugins").json(), serde_json::json!([]));
    let r = d.raw(b"POST /build/prune?all=1 HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(
        r.json(),
        serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0})
    );
    d.stop();
}

/// Read everything until the daemon closes the connection.
fn read_to_close(s: &mut UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn split_head(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)))
        + 4;
    (
        String::from_utf8_lossy(&raw[..end]).into_owned(),
        raw[end..].to_vec(),
    )
}

fn exec_create(d: &Daemon, ctr: &str, body: &str) -> String {
    let r = d.raw(
        format!(
            "POST /containers/{ctr}/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["Id"].as_str().unwrap().to_string()
}

#[test]
fn attach_and_exec_start_without_upgrade_stream_as_dockerd() {
    let d = daemon_with_busybox();
    // attach without `Upgrade`: 200, raw-stream, stdcopy frames, closed
    // when the container ends (curl reads it to the end).
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "pa1",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo hello; echo err >&2; sleep 0.5; echo bye",
    ]);
    let o = Command::new("curl")
        .args(["-s", "-i", "-XPOST", "--max-time", "20", "--unix-socket"])
        .arg(&d.sock)
        .arg("http://d/v1.41/containers/pa1/attach?stream=1&stdout=1&stderr=1")
        .output()
        .unwrap();
    let (head, body) = split_head(&o.stdout);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/vnd.docker.raw-stream\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("Upgrade") && !head.contains("X-Berth"),
        "{head}"
    );
    assert_eq!(
        body,
        b"\x01\0\0\0\0\0\0\x06hello\n\x02\0\0\0\0\0\0\x04err\n\x01\0\0\0\0\0\0\x04bye\n"
    );

    // exec start without `Upgrade`, with stdin written after the request
    // on the same connection (dockerd hijacks it either way).
    d.docker_ok(&["run", "-d", "--name", "pa2", "busybox", "sleep", "60"]);
    let id = exec_create(
        &d,
        "pa2",
        r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","cat; echo done >&2"]}"#,
    );
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /exec/{id}/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"typed in\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (head, body) = split_head(&read_to_close(&mut s));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/vnd.docker.raw-stream"),
        "{head}"
    );
    assert_eq!(
        body,
        b"\x01\0\0\0\0\0\0\x09typed in\n\x02\0\0\0\0\0\0\x05done\n"
    );
    let v = d.get(&format!("/exec/{id}/json")).json();
    assert_eq!(v["ExitCode"], 0, "{v}");

    // With the upgrade headers: 101, multiplexed from API 1.42 without a
    // TTY, raw-stream before 1.42 and with a TTY.
    for (version, body, want) in [
        (
            "v1.44",
            r#"{"AttachStdout":true,"Cmd":["echo","x"]}"#,
            "multiplexed-stream",
        ),
        (
            "v1.41",
            r#"{"AttachStdout":true,"Cmd":["echo","x"]}"#,
            "raw-stream",
        ),
        (
            "v1.44",
            r#"{"AttachStdout":true,"Tty":true,"Cmd":["echo","x"]}"#,
            "raw-stream",
        ),
    ] {
        let id = exec_create(&d, "pa2", body);
        let mut s = UnixStream::connect(&d.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "POST /{version}/exec/{id}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .unwrap();
        let (head, _) = split_head(&read_to_close(&mut s));
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(
            head.contains(&format!("Content-Type: application/vnd.docker.{want}\r\n")),
            "{version} {body}: {head}"
        );
        assert!(head.contains("Upgrade: tcp"), "{head}");
    }
    // The CLI (upgrade, API 1.50) still works.
    assert_eq!(
        d.docker_ok(&["exec", "pa2", "echo", "via cli"]),
        "via cli\n"
    );
    d.docker_ok(&["rm", "-f", "pa1", "pa2"]);
    d.stop();
}

#[test]
fn sigkill_answers_after_the_exit_so_remove_follows_at_once() {
    let d = daemon_with_busybox();
    for i in 0..5 {
        let name = format!("kr{i}");
        // A shell that ignores nothing: SIGKILL ends it whatever it runs.
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; sleep 60",
        ]);
        let post = |path: &str| {
            d.raw(format!("POST {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        };
        let r = post(&format!("/containers/{name}/kill"));
        assert_eq!(r.status, 204, "{}", r.text());
        let v = d.get(&format!("/containers/{name}/json")).json();
        assert_eq!(v["State"]["Running"], false, "{}", v["State"]);
        assert_eq!(v["State"]["ExitCode"], 137);
        let r = d.raw(
            format!("DELETE /containers/{name} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(r.status, 204, "{}", r.text());
    }
    // Another signal does not wait: the container may handle it.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ku",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got' USR1; while true; do sleep 0.1; done",
    ]);
    d.docker_ok(&["kill", "-s", "USR1", "ku"]);
    assert_eq!(
        common::containers::inspect(&d, "ku", "{{.State.Running}}"),
        "true"
    );
    d.docker_ok(&["rm", "-f", "ku"]);
    d.stop();
}

#[test]
fn cli_env_entrypoint_and_missing_network_as_dockerd() {
    let d = daemon_with_busybox();
    let run = |args: &[&str]| -> std::process::Output {
        docker_cmd(d.dir.path())
            .env("DOCKER_HOST", d.docker_host())
            .env_remove("BERTH_UNSET_VAR")
            .args(args)
            .output()
            .unwrap()
    };
    // `-e V` with V unset in the client: V left out (the CLI sends the bare
    // name, which unsets it; HOSTNAME is set as dockerd sets it).
    let o = run(&[
        "run",
        "--rm",
        "-e",
        "BERTH_UNSET_VAR",
        "-e",
        "A=1",
        "busybox",
        "env",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let env = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!env.contains("BERTH_UNSET_VAR"), "{env}");
    assert!(env.contains("A=1\n") && env.contains("HOSTNAME="), "{env}");
    // Config.Env: the container's variables first, then the image's.
    let rootfs = d.dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_full_rootfs()).unwrap();
    d.docker_ok(&[
        "import",
        "-c",
        "ENV PATH=/bin",
        "-c",
        "ENV B=img",
        "-c",
        "ENV C=img",
        rootfs.to_str().unwrap(),
        "envimg",
    ]);
    d.docker_ok(&[
        "create", "--name", "en1", "-e", "A=1", "-e", "C=mine", "envimg", "true",
    ]);
    // (The CLI 28 itself sends `-e` variables in a varying order: 7 of 36
    // creates sent C before A to a capturing socket; berthd keeps the
    // order it gets.)
    let env: Vec<String> = serde_json::from_str(&common::containers::inspect(
        &d,
        "en1",
        "{{json .Config.Env}}",
    ))
    .unwrap();
    let mut mine = env[..2].to_vec();
    mine.sort();
    assert_eq!(mine, ["A=1", "C=mine"], "{env:?}");
    assert_eq!(env[2..], ["PATH=/bin", "B=img"], "{env:?}");
    // A bare name also takes the image's variable away.
    let o = run(&[
        "run",
        "--rm",
        "-e",
        "BERTH_UNSET_VAR",
        "-e",
        "B",
        "envimg",
        "env",
    ]);
    let env = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!env.contains("B=") && env.contains("C=img\n"), "{env}");
    // exec -e V likewise; the exec's TTY decides TERM.
    d.docker_ok(&["run", "-d", "--name", "en2", "busybox", "sleep", "60"]);
    let o = run(&["exec", "-e", "BERTH_UNSET_VAR", "-e", "X=2", "en2", "env"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let env = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !env.contains("BERTH_UNSET_VAR") && env.contains("X=2\n"),
        "{env}"
    );
    assert!(!env.contains("TERM="), "{env}");
    // --entrypoint '' resets the entrypoint: the command runs as given.
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--entrypoint", "", "busybox", "echo", "x"]),
        "x\n"
    );
    d.docker_ok(&[
        "create",
        "--name",
        "en3",
        "--entrypoint",
        "",
        "busybox",
        "echo",
        "y",
    ]);
    assert_eq!(
        common::containers::inspect(&d, "en3", "{{json .Path}} {{json .Config.Entrypoint}}"),
        r#""echo" null"#
    );
    // A network that does not exist: created, refused at start with 404,
    // so the CLI says so (125) instead of trying to pull the image.
    let o = d.docker(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("network nosuchnet not found"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    d.docker_ok(&["rm", "-f", "en1", "en2", "en3"]);
    d.stop();
}

#[test]
fn exec_failures_reach_the_cli_in_the_stream_with_126_or_127() {
    let d = daemon_with_busybox();
    d.docker_ok(&["run", "-d", "--name", "xf1", "busybox", "sleep", "60"]);
    for (args, code, text) in [
        (
            &["exec", "xf1", "nosuchcmd"][..],
            127,
            "executable file not found",
        ),
        (&["exec", "xf1", "/etc/passwd"], 126, "permission denied"),
        (
            &["exec", "-w", "/nonexistent", "xf1", "pwd"],
            127,
            "/nonexistent",
        ),
        (
            &["exec", "-u", "nosuchuser", "xf1", "id"],
            126,
            "unable to find user nosuchuser",
        ),
        (
            &["exec", "-t", "xf1", "nosuchcmd"],
            127,
            "executable file not found",
        ),
    ] {
        let o = d.docker(args);
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(code), "{args:?}: {out}");
        assert!(out.contains(text), "{args:?}: {out}");
        assert!(!out.contains("unable to upgrade"), "{args:?}: {out}");
    }
    // Detached, the refusal is the HTTP answer.
    let o = d.docker(&["exec", "-d", "xf1", "nosuchcmd"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
    d.docker_ok(&["rm", "-f", "xf1"]);
    d.stop();
}

#[test]
fn create_fills_dockerd_defaults_and_ipc_modes_apply() {
    let d = daemon_with_busybox();
    d.docker_ok(&["create", "--name", "df1", "busybox", "true"]);
    let hc: serde_json::Value = serde_json::from_str(&common::containers::inspect(
        &d,
        "df1",
        "{{json .HostConfig}}",
    ))
    .unwrap();
    assert_eq!(hc["ShmSize"], 67108864);
    assert_eq!(hc["IpcMode"], "private");
    assert_eq!(hc["CgroupnsMode"], "host", "cgroup v1 hybrid host");
    assert_eq!(hc["PidsLimit"], serde_json::Value::Null);
    assert_eq!(hc["MemorySwappiness"], serde_json::Value::Null);
    assert_eq!(hc["OomKillDisable"], false);
    let masked: Vec<&str> = hc["MaskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        masked.contains(&"/proc/timer_list") && masked.contains(&"/sys/firmware"),
        "{masked:?}"
    );
    // (/proc/timer_list is not empty on the host: masked, it reads empty.)
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    assert!(hc["ReadonlyPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/proc/sys"));
    d.docker_ok(&[
        "create",
        "--name",
        "df2",
        "-m",
        "64m",
        "--privileged",
        "busybox",
        "true",
    ]);
    let hc: serde_json::Value = serde_json::from_str(&common::containers::inspect(
        &d,
        "df2",
        "{{json .HostConfig}}",
    ))
    .unwrap();
    assert_eq!(hc["MemorySwap"], 128 << 20);
    assert_eq!(hc["MaskedPaths"], serde_json::Value::Null);
    // What the record says is what runs: the masked paths, the IPC modes.
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "wc -c < /proc/timer_list; readlink /proc/self/ns/ipc",
    ]);
    let mut lines = o.lines();
    assert_eq!(lines.next(), Some("0"), "{o}");
    let own_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_ne!(lines.next().unwrap(), own_ipc.to_str().unwrap());
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "host",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_eq!(o.trim(), own_ipc.to_str().unwrap());
    let o = d.docker(&["run", "--rm", "--ipc", "none", "busybox", "ls", "/dev/shm"]);
    assert!(!o.status.success());
    let o = d.docker(&["create", "--ipc", "bogus", "busybox", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid IPC mode: bogus"));
    d.docker_ok(&["rm", "df1", "df2"]);
    d.stop();
}

#[test]
fn small_semantics_sdks_rely_on() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sm1",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sleep",
        "60",
    ]);
    // Resizing a container without a TTY: accepted, nothing to do.
    let r = d.raw(b"POST /containers/sm1/resize?h=20&w=80 HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.text());
    // A fresh container has no changes (the runtime's mount points in /etc
    // are not the user's); a file it writes is.
    assert_eq!(d.docker_ok(&["diff", "sm1"]), "");
    d.docker_ok(&["exec", "sm1", "touch", "/etc/mine"]);
    assert_eq!(d.docker_ok(&["diff", "sm1"]), "C /etc\nA /etc/mine\n");
    // host-gateway is the host's address on the default bridge.
    let hosts = d.docker_ok(&["exec", "sm1", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{}\tgw\n", d.gateway())), "{hosts}");
    d.docker_ok(&["rm", "-f", "sm1"]);
    // Every network of one engine is local.
    let (code, body) = curl(&d, &["http://d/networks?filters={\"scope\":[\"global\"]}"]);
    assert_eq!((code, body.as_str()), (200, "[]"));
    let (_, body) = curl(&d, &["http://d/networks?filters={\"scope\":[\"local\"]}"]);
    assert!(body.contains("\"Name\":\"bridge\""), "{body}");
    // volume prune honours label!.
    d.docker_ok(&["volume", "create", "--label", "keep=1", "vkeep"]);
    d.docker_ok(&["volume", "create", "vgo"]);
    let (code, body) = curl(
        &d,
        &[
            "-XPOST",
            "http://d/v1.41/volumes/prune?filters={\"label!\":[\"keep=1\"]}",
        ],
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["VolumesDeleted"], serde_json::json!(["vgo"]));
    d.docker_ok(&["volume", "rm", "vkeep"]);
    d.stop();
}

fn create_raw(d: &Daemon, body: &str) -> Response {
    d.raw(
        format!(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

#[test]
fn create_refuses_what_dockerd_refuses_and_applies_what_it_accepts() {
    let d = daemon_with_busybox();
    for (part, msg) in [
        (
            r#""HostConfig":{"MemorySwappiness":200}"#,
            "Invalid value: 200, valid memory swappiness range is 0-100",
        ),
        (
            r#""HostConfig":{"BlkioWeight":5}"#,
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            r#""HostConfig":{"OomScoreAdj":5000}"#,
            "Invalid value 5000, range for oom score adj is [-1000, 1000]",
        ),
        (
            r#""HostConfig":{"CpuPeriod":1}"#,
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            r#""HostConfig":{"CpuQuota":500}"#,
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ),
        (
            r#""HostConfig":{"Isolation":"hyperv"}"#,
            "Invalid isolation: \"hyperv\" - linux only supports 'default'",
        ),
        (
            r#""HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"70000"}]}}"#,
            "invalid port specification: \"70000\"",
        ),
        (
            r#""HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"70-60"}]}}"#,
            "invalid port specification: \"70-60\"",
        ),
        (
            r#""ExposedPorts":{"99999/tcp":{}}"#,
            "invalid port specification: \"99999\"",
        ),
        (
            r#""Healthcheck":{"Test":["CMD","true"],"Interval":-1}"#,
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            r#""Healthcheck":{"Test":["CMD","true"],"Retries":-1}"#,
            "Retries in Healthcheck cannot be negative",
        ),
    ] {
        let r = create_raw(
            &d,
            &format!(r#"{{"Image":"busybox","Cmd":["true"],{part}}}"#),
        );
        assert_eq!(r.status, 400, "{part}: {}", r.text());
        assert_eq!(r.json()["message"], msg, "{part}");
    }
    // Accepted as dockerd accepts them.
    let r = create_raw(
        &d,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NanoCpus":500000}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    d.docker_ok(&["rm", &id]);
    // --device: the node is made and usable; a missing one fails the start.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/n2",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/n2 && echo x > /dev/n2 && echo wrote",
    ]);
    assert!(out.contains("1,   3") && out.ends_with("wrote\n"), "{out}");
    let o = d.docker(&["run", "--rm", "--device", "/dev/nosuch", "busybox", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("error gathering device information while adding custom device \"/dev/nosuch\""));
    // Sysctls: a namespaced one is applied; one outside the container's
    // namespaces is refused by the runtime at start.
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ip_forward"
        ]),
        "1\n"
    );
    let r = create_raw(
        &d,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Sysctls":{"vm.swappiness":"10"}}}"#,
    );
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let o = d.docker(&["start", &id]);
    assert!(!o.status.success());
    d.docker_ok(&["rm", &id]);
    // GroupAdd by number and name; the primary group is listed as dockerd
    // lists it; an exec's user gets the added groups too.
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--group-add",
            "50",
            "--group-add",
            "root",
            "busybox",
            "id"
        ]),
        "uid=0(root) gid=0(root) groups=0(root),50\n"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-u", "1000:1000", "busybox", "id", "-G"]),
        "1000\n"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--group-add",
        "nosuchgroup",
        "busybox",
        "true",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Unable to find group nosuchgroup"));
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ga1",
        "--group-add",
        "77",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.docker_ok(&["exec", "-u", "1000", "ga1", "id", "-G"]),
        "0 77\n"
    );
    d.docker_ok(&["rm", "-f", "ga1"]);
    d.stop();
}

#[test]
fn bridge_none_means_no_default_bridge() {
    let d = Daemon::builder()
        .config(serde_json::json!({"bridge": "none"}))
        .start();
    load_busybox(&d);
    let nets = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(nets, "host\nnone\n");
    // Without --network (or with the default bridge named): loopback only.
    for args in [
        &["run", "--rm", "busybox", "ip", "-o", "addr"][..],
        &[
            "run",
            "--rm",
            "--network",
            "bridge",
            "busybox",
            "ip",
            "-o",
            "addr",
        ],
    ] {
        let out = d.docker_ok(args);
        let ifs: Vec<&str> = out
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert!(ifs.iter().all(|i| *i == "lo"), "{out}");
    }
    // User networks work as ever.
    let subnet = d.subnet(1);
    d.docker_ok(&["network", "create", "--subnet", &subnet, "bn-user"]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "bn-user",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&subnet.replace("0/24", "2/24")), "{out}");
    d.docker_ok(&["network", "rm", "bn-user"]);
    // The network names of inspect: the default bridge, as dockerd shows it.
    d.docker_ok(&["create", "--name", "bn1", "busybox", "true"]);
    assert_eq!(
        common::containers::inspect(&d, "bn1", "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.NetworkID}}{{end}}"),
        "default bridge:"
    );
    d.docker_ok(&["rm", "bn1"]);
    d.stop();
}

#[test]
fn load_errors_network_names_and_aliases_by_api_version() {
    let d = daemon_with_busybox();
    // A bad archive: 200 and the error as the stream's last line.
    let body = b"this is not a tar archive".repeat(40);
    let mut req = format!(
        "POST /images/load HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = d.raw(&req);
    assert_eq!(r.status, 200, "{}", r.text());
    let last: serde_json::Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert!(
        last["errorDetail"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{last}"
    );
    assert_eq!(last["error"], last["errorDetail"]["message"]);
    // Network names with spaces, as dockerd takes them.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(2), "my net"]);
    assert_eq!(
        d.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{json .Options}}",
            "my net"
        ]),
        "my net {}\n"
    );
    // Aliases: the short ID first before API 1.45, no DNSNames before 1.44.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "al1",
        "--network",
        "my net",
        "--network-alias",
        "web",
        "busybox",
        "sleep",
        "60",
    ]);
    let short = &common::containers::inspect(&d, "al1", "{{.Id}}")[..12];
    let net = |v: &str| {
        d.get(&format!("/{v}/containers/al1/json")).json()["NetworkSettings"]["Networks"]["my net"]
            .clone()
    };
    assert_eq!(net("v1.41")["Aliases"], serde_json::json!([short, "web"]));
    assert!(net("v1.41").get("DNSNames").is_none());
    assert_eq!(net("v1.44")["Aliases"], serde_json::json!([short, "web"]));
    assert_eq!(
        net("v1.44")["DNSNames"],
        serde_json::json!(["al1", "web", short])
    );
    assert_eq!(net("v1.50")["Aliases"], serde_json::json!(["web"]));
    d.docker_ok(&["rm", "-f", "al1"]);
    d.docker_ok(&["network", "rm", "my net"]);
    d.stop();
}

#[test]
fn a_compressed_tar_goes_into_a_container_as_dockerd_takes_it() {
    use std::io::Write as _;
    let d = daemon_with_busybox();
    d.docker_ok(&["create", "--name", "gz1", "busybox", "true"]);
    let mut tar = tar::Builder::new(Vec::new());
    let data = b"zipped\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "gz.txt", &data[..]).unwrap();
    let plain = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let body = gz.finish().unwrap();
    let mut req = format!(
        "PUT /containers/gz1/archive?path=/tmp HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = d.raw(&req);
    assert_eq!(r.status, 200, "{}", r.text());
    let out = d.docker_ok(&["cp", "gz1:/tmp/gz.txt", "-"]);
    assert!(out.contains("zipped\n"), "{out}");
    d.docker_ok(&["rm", "gz1"]);
    d.stop();
}

#[test]
fn list_filters_as_dockerd_matches_them() {
    let d = daemon_with_busybox();
    let port = free_port().to_string();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "--expose",
        "8080",
        "busybox",
        "sleep",
        "60",
    ]);
    d.docker_ok(&["run", "-d", "--name", "webx", "busybox", "sleep", "60"]);
    let ps = |filter: &str| d.docker_ok(&["ps", "--filter", filter, "--format", "{{.Names}}"]);
    // Names are regular expressions, with or without the leading slash.
    assert_eq!(ps("name=^web$"), "web\n");
    assert_eq!(ps("name=^/web$"), "web\n");
    assert_eq!(ps("name=web").lines().count(), 2);
    // publish: the host port bound (as dockerd 20.10); expose: the
    // container's exposed ports, -p ones included.
    assert_eq!(ps(&format!("publish={port}")), "web\n");
    assert_eq!(ps(&format!("publish={port}/udp")), "");
    assert_eq!(ps("expose=8080"), "web\n");
    assert_eq!(ps("expose=79-81/tcp"), "web\n");
    assert!(!d.docker(&["ps", "--filter", "expose=x"]).status.success());
    d.docker_ok(&["rm", "-f", "web", "webx"]);
    // Images by reference list only the matching names.
    d.docker_ok(&["tag", "busybox:latest", "other:x"]);
    assert_eq!(
        d.docker_ok(&["images", "busybox", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );
    assert_eq!(
        d.docker_ok(&[
            "images",
            "--filter",
            "reference=oth*",
            "--format",
            "{{.Repository}}:{{.Tag}}"
        ]),
        "other:x\n"
    );
    d.docker_ok(&["rmi", "other:x"]);
    // network prune honours label!.
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &d.subnet(1),
        "--label",
        "keep=1",
        "nkeep",
    ]);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(2), "ngo"]);
    let out = d.docker_ok(&["network", "prune", "-f", "--filter", "label!=keep=1"]);
    assert!(out.contains("ngo") && !out.contains("nkeep"), "{out}");
    d.docker_ok(&["network", "rm", "nkeep"]);
    d.stop();
}

#[test]
fn events_carry_the_legacy_fields_for_older_clients() {
    let d = daemon_with_busybox();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    d.docker_ok(&["create", "--name", "ev1", "busybox", "true"]);
    d.docker_ok(&["rm", "ev1"]);
    let until = since + 5;
    let events = |v: &str| -> Vec<serde_json::Value> {
        d.get(&format!("/{v}/events?since={since}&until={until}&filters=%7B%22type%22%3A%5B%22container%22%5D%7D"))
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let old = events("v1.41");
    assert!(!old.is_empty());
    for e in &old {
        assert_eq!(e["status"], e["Action"], "{e}");
        assert_eq!(e["id"], e["Actor"]["ID"], "{e}");
        assert_eq!(e["from"], "busybox", "{e}");
    }
    for e in events("v1.52") {
        assert!(
            e.get("status").is_none() && e.get("id").is_none() && e.get("from").is_none(),
            "{e}"
        );
    }
    d.stop();
}

#[test]
fn mac_addresses_are_applied() {
    let d = daemon_with_busybox();
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--mac-address",
            "02:42:AC:11:00:99",
            "busybox",
            "cat",
            "/sys/class/net/eth0/address"
        ]),
        "02:42:ac:11:00:99\n"
    );
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "macnet"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "mc1",
        "--network",
        "macnet",
        "--mac-address",
        "02:aa:bb:cc:dd:ee",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.docker_ok(&["exec", "mc1", "cat", "/sys/class/net/eth0/address"]),
        "02:aa:bb:cc:dd:ee\n"
    );
    assert_eq!(
        common::containers::inspect(&d, "mc1", "{{.NetworkSettings.Networks.macnet.MacAddress}}"),
        "02:aa:bb:cc:dd:ee"
    );
    // network connect with EndpointConfig.MacAddress (through the API).
    d.docker_ok(&["run", "-d", "--name", "mc2", "busybox", "sleep", "60"]);
    let body = r#"{"Container":"mc2","EndpointConfig":{"MacAddress":"02:12:34:56:78:9a"}}"#;
    let r = d.raw(format!("POST /networks/macnet/connect HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        d.docker_ok(&["exec", "mc2", "cat", "/sys/class/net/eth1/address"]),
        "02:12:34:56:78:9a\n"
    );
    let r = create_raw(
        &d,
        r#"{"Image":"busybox","Cmd":["true"],"MacAddress":"zz"}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "invalid MAC address zz");
    d.docker_ok(&["rm", "-f", "mc1", "mc2"]);
    d.docker_ok(&["network", "rm", "macnet"]);
    d.stop();
}

#[test]
fn pid_and_uts_host_share_the_hosts_namespaces() {
    let d = daemon_with_busybox();
    let own_pid = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--pid",
            "host",
            "busybox",
            "readlink",
            "/proc/self/ns/pid"
        ])
        .trim(),
        own_pid.to_str().unwrap()
    );
    assert_ne!(
        d.docker_ok(&["run", "--rm", "busybox", "readlink", "/proc/self/ns/pid"])
            .trim(),
        own_pid.to_str().unwrap()
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--uts", "host", "busybox", "hostname"])
            .trim(),
        host
    );
    // Under --network host the host's name too, in $HOSTNAME and /etc/hostname.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; echo $HOSTNAME",
    ]);
    assert_eq!(out, format!("{host}\n{host}\n{host}\n"));
    let r = create_raw(
        &d,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"PidMode":"bogus"}}"#,
    );
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (400, "invalid PID mode: bogus")
    );
    d.stop();
}

#[test]
fn dockerenv_and_etc_files_over_a_volume_on_etc() {
    let d = daemon_with_busybox();
    d.docker_ok(&["volume", "create", "etcv"]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--hostname",
        "myhost",
        "-v",
        "etcv:/etc",
        "busybox",
        "sh",
        "-c",
        "test -f /.dockerenv && echo env; cat /etc/hostname; grep -c myhost /etc/hosts",
    ]);
    assert_eq!(out, "env\nmyhost\n1\n");
    // Mounting one of them explicitly wins over berth's file.
    let f = d.dir.path().join("myhosts");
    std::fs::write(&f, "1.2.3.4 mine\n").unwrap();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/etc/hosts:ro", f.display()),
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(out, "1.2.3.4 mine\n");
    d.docker_ok(&["volume", "rm", "etcv"]);
    d.stop();
}

/// Legacy links on the default bridge, as dockerd gives them: the
/// child's variables and a hosts line in the parent (run and exec), the
/// link in inspect as `/child:/parent/alias`, `docker rm --link`, and
/// dockerd's refusals (a missing child at create, a stopped one at start).
#[test]
fn legacy_links_on_the_default_bridge() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run", "-d", "--name", "web", "--expose", "80", "--expose", "81/udp", "-e", "SECRET=s",
        "-h", "webhost", "busybox", "sleep", "600",
    ]);
    let ip = inspect(&d, "web", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    let env = d.docker_ok(&[
        "run",
        "--rm",
        "--name",
        "app",
        "--link",
        "web:my-db",
        "busybox",
        "env",
    ]);
    for want in [
        format!("MY_DB_PORT=tcp://{ip}:80"),
        format!("MY_DB_PORT_80_TCP=tcp://{ip}:80"),
        format!("MY_DB_PORT_80_TCP_ADDR={ip}"),
        "MY_DB_PORT_80_TCP_PORT=80".into(),
        "MY_DB_PORT_80_TCP_PROTO=tcp".into(),
        format!("MY_DB_PORT_81_UDP=udp://{ip}:81"),
        "MY_DB_NAME=/app/my-db".into(),
        "MY_DB_ENV_SECRET=s".into(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing in:\n{env}");
    }
    assert!(!env.contains("MY_DB_ENV_PATH"), "{env}");
    // The child by its alias, hostname and name.
    d.docker_ok(&[
        "run", "-d", "--name", "app2", "--link", "web:db", "busybox", "sleep", "600",
    ]);
    let hosts = d.docker_ok(&["exec", "app2", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{ip}\tdb webhost web\n")),
        "{hosts}"
    );
    d.docker_ok(&["exec", "app2", "ping", "-c1", "-W2", "db"]);
    assert!(d
        .docker_ok(&["exec", "app2", "env"])
        .contains("DB_NAME=/app2/db"));
    assert_eq!(
        inspect(&d, "app2", "{{json .HostConfig.Links}}"),
        r#"["/web:/app2/db"]"#
    );
    // The child restarts with another address (a container took its old
    // one meanwhile): the running parent's hosts line follows, as dockerd.
    d.docker_ok(&["stop", "-t", "0", "web"]);
    d.docker_ok(&["run", "-d", "--name", "squatter", "busybox", "sleep", "600"]);
    d.docker_ok(&["start", "web"]);
    let ip2 = inspect(&d, "web", "{{.NetworkSettings.IPAddress}}");
    assert_ne!(ip, ip2);
    assert!(
        common::wait_for(Duration::from_secs(5), || d
            .docker_ok(&["exec", "app2", "cat", "/etc/hosts"])
            .contains(&format!("{ip2}\tdb webhost web\n"))),
        "{}",
        d.docker_ok(&["exec", "app2", "cat", "/etc/hosts"])
    );
    d.docker_ok(&["exec", "app2", "ping", "-c1", "-W2", "db"]);
    d.docker_ok(&["rm", "-f", "squatter"]);
    // docker rm --link: the parent forgets it, both containers stay.
    d.docker_ok(&["rm", "--link", "app2/db"]);
    assert_eq!(inspect(&d, "app2", "{{json .HostConfig.Links}}"), "null");
    let o = d.docker(&["rm", "--link", "app2/zz"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such container: app2/zz"));
    assert_eq!(inspect(&d, "web", "{{.State.Running}}"), "true");
    // Refusals, with dockerd's words and statuses.
    let r = create_raw(
        &d,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Links":["nosuch:db"]}}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "could not get container for nosuch: No such container: nosuch"
    );
    let r = create_raw(
        &d,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"host","Links":["web:db"]}}"#,
    );
    assert_eq!(r.status, 400);
    d.docker_ok(&["stop", "-t", "0", "web"]);
    let o = d.docker(&[
        "run", "--rm", "--name", "late", "--link", "web:db", "busybox", "true",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("Cannot link to a non running container: /web AS /late/db"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.docker_ok(&["rm", "-f", "web", "app2"]);
    d.stop();
}

fn create_at(d: &Daemon, version: &str, name: &str, body: &str) -> Response {
    d.raw(
        format!(
            "POST /{version}/containers/create?name={name} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// API 1.45 mounts as dockerd 28 takes them: `VolumeOptions.Subpath`
/// (resolved inside the volume: a symlink planted there never leads out),
/// read-only binds read-only below their submounts from API 1.44
/// (`ReadOnlyNonRecursive` and older clients keep the old way),
/// `NonRecursive`, `CreateMountpoint`, options of another mount type
/// refused, fields newer than the client refused.
#[test]
fn api_1_45_mount_options() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "spv:/v",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /v/a/b && echo deep > /v/a/b/f && ln -s / /v/evil && ln -s ../../.. /v/a/up",
    ]);
    let run = |name: &str, version: &str, mounts: &str, cmd: &str| {
        let body = format!(
            r#"{{"Image":"busybox","Cmd":["sh","-c",{cmd:?}],"HostConfig":{{"Mounts":{mounts}}}}}"#
        );
        let r = create_at(&d, version, name, &body);
        assert_eq!(r.status, 201, "{}", r.text());
        d.docker(&["start", "-a", name])
    };
    let sub = |p: &str| {
        format!(
            r#"[{{"Type":"volume","Source":"spv","Target":"/m","VolumeOptions":{{"Subpath":"{p}"}}}}]"#
        )
    };
    let o = run("s1", "v1.45", &sub("a/b"), "cat /m/f");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "deep\n");
    // Links out of the volume resolve inside it.
    for (name, p) in [("s2", "evil"), ("s3", "a/up")] {
        let o = run(name, "v1.45", &sub(p), "ls /m");
        let ls = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(ls, "a\nevil\n", "{p} must stay in the volume");
    }
    let r = create_at(
        &d,
        "v1.45",
        "s4",
        &format!(
            r#"{{"Image":"busybox","HostConfig":{{"Mounts":{}}}}}"#,
            sub("nope")
        ),
    );
    assert_eq!(r.status, 201);
    let r =
        d.raw(b"POST /v1.45/containers/s4/start HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert!(
        r.status >= 400 && r.text().contains("cannot access path"),
        "{}",
        r.text()
    );
    assert!(
        r.text()
            .contains("spv/_data/nope: no such file or directory"),
        "{}",
        r.text()
    );
    for (version, p, want) in [
        (
            "v1.45",
            "../x",
            "subpath must be a relative path within the volume",
        ),
        (
            "v1.45",
            "/etc",
            "subpath must be a relative path within the volume",
        ),
        (
            "v1.44",
            "a",
            "VolumeOptions.Subpath needs API v1.45 or newer",
        ),
    ] {
        let r = create_at(
            &d,
            version,
            "bad",
            &format!(
                r#"{{"Image":"busybox","HostConfig":{{"Mounts":{}}}}}"#,
                sub(p)
            ),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(want), "{}", r.text());
    }
    let staged = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !staged.contains(d.real_exec_root().join("subpaths").to_str().unwrap()),
        "staging mounts are gone once the containers run"
    );

    // A bind source with a submount (a tmpfs), mounted read-only.
    let src = d.dir.path().join("rosrc");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &src.join("sub"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let bind = |opts: &str| {
        format!(
            r#"[{{"Type":"bind","Source":"{}","Target":"/r","ReadOnly":true{opts}}}]"#,
            src.display()
        )
    };
    let probe = "touch /r/sub/x 2>/dev/null && echo sub-rw || echo sub-ro";
    let o = run("r1", "v1.44", &bind(""), probe);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sub-ro\n");
    let o = run(
        "r2",
        "v1.44",
        &bind(r#","BindOptions":{"ReadOnlyNonRecursive":true}"#),
        probe,
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sub-rw\n");
    let o = run("r3", "v1.43", &bind(""), probe);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sub-rw\n");
    let o = run(
        "r4",
        "v1.44",
        &bind(r#","BindOptions":{"ReadOnlyForceRecursive":true}"#),
        probe,
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sub-ro\n");
    let r = create_at(
        &d,
        "v1.43",
        "bad",
        &format!(
            r#"{{"Image":"busybox","HostConfig":{{"Mounts":{}}}}}"#,
            bind(r#","BindOptions":{"ReadOnlyForceRecursive":true}"#)
        ),
    );
    assert_eq!(r.status, 400);
    assert!(r
        .text()
        .contains("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"));
    // NonRecursive: the submount stays out.
    let nr = format!(
        r#"[{{"Type":"bind","Source":"{}","Target":"/r","BindOptions":{{"NonRecursive":true}}}}]"#,
        src.display()
    );
    let o = run(
        "n1",
        "v1.45",
        &nr,
        "grep -c ' /r/sub ' /proc/mounts || true",
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    // CreateMountpoint: a missing source is made.
    let made = d.dir.path().join("made/here");
    let cm = format!(
        r#"[{{"Type":"bind","Source":"{}","Target":"/c","BindOptions":{{"CreateMountpoint":true}}}}]"#,
        made.display()
    );
    run("c1", "v1.45", &cm, "true");
    assert!(made.is_dir());
    // Options of another type: refused from 1.42, dropped before.
    let wrong = r#"[{"Type":"tmpfs","Target":"/t","VolumeOptions":{"NoCopy":true}}]"#;
    let r = create_at(
        &d,
        "v1.45",
        "bad",
        &format!(r#"{{"Image":"busybox","HostConfig":{{"Mounts":{wrong}}}}}"#),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        r#"VolumeOptions must not be specified on mount type "tmpfs""#
    );
    let r = create_at(
        &d,
        "v1.41",
        "w1",
        &format!(r#"{{"Image":"busybox","HostConfig":{{"Mounts":{wrong}}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    d.docker_ok(&[
        "rm", "-f", "s1", "s2", "s3", "s4", "r1", "r2", "r3", "r4", "n1", "c1", "w1",
    ]);
    let _ = nix::mount::umount2(&src.join("sub"), nix::mount::MntFlags::MNT_DETACH);
    d.stop();
}

/// `--ipc container:X` (X shareable: its namespace and its /dev/shm, a
/// host tmpfs gone when X stops) and `--pid container:X`, with dockerd's
/// refusals: X missing at create (400), not running or not shareable at
/// start; the mode kept with X's full ID.
#[test]
fn ipc_and_pid_namespaces_of_another_container() {
    let d = daemon_with_busybox();
    d.docker_ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "600"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "--shm-size",
        "8m",
        "busybox",
        "sh",
        "-c",
        "echo shared > /dev/shm/mark; exec sleep 600",
    ]);
    assert!(common::wait_for(Duration::from_secs(5), || d
        .docker(&["exec", "donor", "test", "-f", "/dev/shm/mark"])
        .status
        .success()));
    let donor_ipc = d.docker_ok(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]);
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; cat /dev/shm/mark; df -k /dev/shm | tail -1",
    ]);
    let mut l = o.lines();
    assert_eq!(l.next(), Some(donor_ipc.trim()));
    assert_eq!(l.next(), Some("shared"));
    assert!(l.next().unwrap().contains(" 8192 "), "{o}");
    let o = d.docker(&["run", "--rm", "--ipc", "container:plain", "busybox", "true"]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ps = d.docker_ok(&[
        "run",
        "--rm",
        "--pid",
        "container:plain",
        "busybox",
        "ps",
        "-o",
        "pid,args",
    ]);
    assert!(ps.contains("1 sleep 600"), "{ps}");
    let plain_id = inspect(&d, "plain", "{{.Id}}");
    d.docker_ok(&[
        "create",
        "--name",
        "joiner",
        "--pid",
        "container:plain",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(&d, "joiner", "{{.HostConfig.PidMode}}"),
        format!("container:{plain_id}")
    );
    for mode in ["IpcMode", "PidMode"] {
        let r = create_raw(
            &d,
            &format!(
                r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{{"{mode}":"container:nosuch"}}}}"#
            ),
        );
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["message"], "No such container: nosuch");
    }
    // The shareable /dev/shm is a host tmpfs while the donor runs.
    let shm = d
        .real_exec_root()
        .join("shm")
        .join(inspect(&d, "donor", "{{.Id}}"));
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!(" {} ", shm.display()))
    };
    assert!(mounted());
    d.docker_ok(&["stop", "-t", "0", "donor", "plain"]);
    assert!(!mounted() && !shm.exists());
    let o = d.docker(&["start", "joiner"]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(&format!("container {plain_id} is not running")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.docker_ok(&["rm", "-f", "donor", "plain", "joiner"]);
    d.stop();
}
