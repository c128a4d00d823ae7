//! Clients that are not the docker CLI: raw HTTP as scripts write it
//! (`curl -g`, a raw socket), with dockerd's answers.

mod common;

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
        ("POST", "/build", 501),
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
