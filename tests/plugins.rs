//! Authorization plugins (`authorization-plugins`) through the docker CLI
//! and raw HTTP, against a policy plugin the test runs: a small HTTP
//! server on a unix socket (or TCP, found by a `.spec` file) that records
//! every `AuthZReq`/`AuthZRes` and denies by path and by body. The bodies
//! the plugin records are compared byte for byte with what was sent: 2 MiB,
//! chunked, `Content-Length: 0` with a body, `Expect: 100-continue`; the
//! paths that could smuggle a request past a path rule (double slashes,
//! trailing slash, `.`, percent-encoding, the version prefix) are denied or
//! not routed; a plugin that is down, hangs or answers garbage denies.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::containers::*;
use common::*;
use serde_json::{json, Value};

/// What the policy answers one call with.
enum Answer {
    Json(u16, Value),
    Text(&'static str),
    Hang,
}

fn allow() -> Answer {
    Answer::Json(200, json!({"Allow": true}))
}

fn deny(msg: &str) -> Answer {
    Answer::Json(200, json!({"Allow": false, "Msg": msg}))
}

type Policy = Arc<dyn Fn(&str, &Value) -> Answer + Send + Sync>;

/// The test's plugin: answers `Plugin.Activate` with `authz`, every other
/// call with its policy, and records each call (method, JSON body).
struct Plugin {
    /// The activation's `Implements`.
    implements: &'static [&'static str],
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    policy: Arc<Mutex<Policy>>,
    stopped: Arc<AtomicBool>,
    sock: Option<PathBuf>,
}

trait Conn: Read + Write + Send + 'static {}
impl<T: Read + Write + Send + 'static> Conn for T {}

impl Plugin {
    fn new(policy: Policy) -> Plugin {
        Plugin::implementing(&["authz"], policy)
    }

    fn implementing(implements: &'static [&'static str], policy: Policy) -> Plugin {
        Plugin {
            implements,
            calls: Arc::new(Mutex::new(Vec::new())),
            policy: Arc::new(Mutex::new(policy)),
            stopped: Arc::new(AtomicBool::new(false)),
            sock: None,
        }
    }

    fn on_unix(mut self, sock: &Path) -> Plugin {
        std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
        let l = UnixListener::bind(sock).unwrap();
        self.sock = Some(sock.to_path_buf());
        self.serve(move || l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>));
        self
    }

    fn on_tcp(self) -> (Plugin, u16) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        self.serve(move || l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>));
        (self, port)
    }

    /// On TCP with TLS (the server certificate `cert`, its key `key`, PEM).
    fn on_tls(self, cert: &str, key: &str) -> (Plugin, u16) {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        self.serve(move || {
            let (s, _) = l.accept()?;
            let conn = rustls::ServerConnection::new(cfg.clone()).map_err(std::io::Error::other)?;
            Ok(Box::new(rustls::StreamOwned::new(conn, s)) as Box<dyn Conn>)
        });
        (self, port)
    }

    fn serve(&self, accept: impl Fn() -> std::io::Result<Box<dyn Conn>> + Send + 'static) {
        let (calls, policy, stopped, implements) = (
            self.calls.clone(),
            self.policy.clone(),
            self.stopped.clone(),
            self.implements,
        );
        std::thread::spawn(move || loop {
            let Ok(c) = accept() else { return };
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let (calls, policy) = (calls.clone(), policy.clone());
            std::thread::spawn(move || answer(c, implements, &calls, &policy));
        });
    }

    fn set(&self, p: Policy) {
        *self.policy.lock().unwrap() = p;
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// The last `AuthZReq` whose unversioned path is `path`.
    fn last_req(&self, method: &str, path: &str) -> Value {
        self.calls()
            .into_iter()
            .rev()
            .find(|(m, v)| {
                m == "/AuthZPlugin.AuthZReq"
                    && v["RequestMethod"] == method
                    && unversioned(v["RequestUri"].as_str().unwrap_or("")) == path
            })
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no AuthZReq for {method} {path}: {:?}", self.calls()))
    }

    /// Stop answering: the socket is gone.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(s) = &self.sock {
            let _ = UnixStream::connect(s);
            let _ = std::fs::remove_file(s);
        }
    }
}

fn answer(
    mut c: Box<dyn Conn>,
    implements: &[&str],
    calls: &Mutex<Vec<(String, Value)>>,
    policy: &Mutex<Policy>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buf[head_end..head_end + len];
    let a = if path == "/Plugin.Activate" {
        Answer::Json(200, json!({ "Implements": implements }))
    } else {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        calls.lock().unwrap().push((path.clone(), v.clone()));
        let p = policy.lock().unwrap().clone();
        p(&path, &v)
    };
    let (status, text) = match a {
        Answer::Json(s, v) => (s, v.to_string()),
        Answer::Text(t) => (200, t.to_string()),
        Answer::Hang => {
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
    };
    let _ = write!(
        c,
        "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// A request URI without its version prefix and query.
fn unversioned(uri: &str) -> &str {
    let path = uri.split('?').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            if rest[..i].chars().all(|c| c.is_ascii_digit() || c == '.') {
                return &rest[i..];
            }
        }
    }
    path
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or(""))
        .unwrap()
}

/// The test's policy: no privileged containers (read from the body), no
/// `system df`, nothing about the container named `secret`.
fn policy() -> Policy {
    Arc::new(|method, req| {
        if method != "/AuthZPlugin.AuthZReq" {
            return allow();
        }
        let uri = req["RequestUri"].as_str().unwrap_or("");
        let path = unversioned(uri);
        if path == "/system/df" {
            return deny("no df");
        }
        if path.starts_with("/containers/secret/") {
            return deny("secret is secret");
        }
        if path == "/containers/create" {
            let body = b64(&req["RequestBody"]);
            let privileged = match serde_json::from_slice::<Value>(&body) {
                Ok(v) => v["HostConfig"]["Privileged"] == true,
                // What the policy cannot read it refuses.
                Err(_) => !body.is_empty(),
            };
            if privileged {
                return deny("privileged containers are not allowed");
            }
        }
        allow()
    })
}

/// A berthd whose plugin directories are the test's own.
fn daemon_with(plugins: &Path, config: Value) -> Daemon {
    let mut d = Daemon::prepare();
    d.write_config(&config);
    d.extra_args = vec![
        "-H".into(),
        d.docker_host(),
        "--testing-chaos-control".into(),
    ];
    spawn_with(d, plugins)
}

/// Start (or start again) `d` with the test's plugin directories.
fn spawn_with(d: Daemon, plugins: &Path) -> Daemon {
    let mut cmd = d.command();
    cmd.args(&d.extra_args)
        .env("BERTH_PLUGIN_SOCKETS", plugins.join("run"))
        .env("BERTH_PLUGIN_SPECS", plugins.join("etc"));
    d.spawn(cmd)
}

/// Kill a registered actor through the chaos control.
fn chaos_kill(d: &Daemon, actor: &str) {
    let r = d.raw(
        format!("POST /_berth/chaos/kill?actor={actor} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(r.status < 300, "{}: {}", r.status, r.text());
}

fn plugin_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-plugins-")
        .tempdir()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn container_count(d: &Daemon) -> usize {
    d.docker_ok(&["ps", "-aq"]).lines().count()
}

fn post_json(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn authorization_plugin_sees_what_the_handler_sees() {
    let dir = plugin_dir();
    let p = Plugin::new(policy()).on_unix(&dir.path().join("run/pol.sock"));
    let d = daemon_with(dir.path(), json!({"authorization-plugins": ["pol"]}));
    load_busybox(&d);

    // Allowed and denied through the CLI.
    d.docker_ok(&["ps"]);
    let ps = p.last_req("GET", "/containers/json");
    assert!(ps["RequestHeaders"]["User-Agent"]
        .as_str()
        .unwrap()
        .starts_with("Docker-Client/"));
    let res = p
        .calls()
        .into_iter()
        .rev()
        .find(|(m, v)| {
            m == "/AuthZPlugin.AuthZRes"
                && unversioned(v["RequestUri"].as_str().unwrap()) == "/containers/json"
        })
        .unwrap()
        .1;
    assert_eq!(res["ResponseStatusCode"], 200);
    let listed: Value = serde_json::from_slice(&b64(&res["ResponseBody"])).unwrap();
    assert!(listed.is_array(), "{listed}");
    assert_eq!(res["ResponseHeaders"]["Content-Type"], "application/json");

    assert_eq!(
        d.docker_ok(&["run", "--rm", "busybox", "echo", "ok"]),
        "ok\n"
    );
    let before = container_count(&d);
    let o = d.docker(&["run", "--privileged", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("authorization denied by plugin pol: privileged containers are not allowed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        container_count(&d),
        before,
        "a denied create made a container"
    );
    let o = d.docker(&["system", "df"]);
    assert!(stderr(&o).contains("authorization denied by plugin pol: no df"));
    let info = d.docker_ok(&["info", "--format", "{{json .Plugins.Authorization}}"]);
    assert_eq!(info.trim(), r#"["pol"]"#);

    // The body the plugin saw is the body sent, byte for byte: 2 MiB.
    let pad = "x".repeat(2 << 20);
    let big = serde_json::to_vec(&json!({
        "Image": "busybox", "Cmd": ["true"], "Labels": {"pad": pad},
        "HostConfig": {"Privileged": true},
    }))
    .unwrap();
    let r = d.raw(&post_json("/containers/create", &big));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "authorization denied by plugin pol: privileged containers are not allowed"
    );
    assert_eq!(
        b64(&p.last_req("POST", "/containers/create")["RequestBody"]),
        big
    );
    let fine = serde_json::to_vec(&json!({
        "Image": "busybox", "Cmd": ["true"], "Labels": {"pad": pad},
    }))
    .unwrap();
    let r = d.raw(&post_json("/v1.41/containers/create?name=big", &fine));
    assert_eq!(r.status, 201, "{}", r.text());
    let seen = p.last_req("POST", "/containers/create");
    assert_eq!(seen["RequestUri"], "/v1.41/containers/create?name=big");
    assert_eq!(b64(&seen["RequestBody"]), fine);
    d.docker_ok(&["rm", "big"]);

    // Chunked, in uneven pieces.
    let body = br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Privileged":true}}"#;
    let mut req = b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in body.chunks(7) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = d.raw(&req);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        b64(&p.last_req("POST", "/containers/create")["RequestBody"]),
        body
    );

    // Content-Length: 0 with a body behind it (CVE-2024-41110's shape):
    // the handler gets no body, as the plugin saw none; nothing is made.
    p.clear();
    let mut req = b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n".to_vec();
    req.extend_from_slice(body);
    let r = d.raw(&req);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(p
        .last_req("POST", "/containers/create")
        .get("RequestBody")
        .is_none());
    assert_eq!(container_count(&d), before);

    // Both framings at once: refused before any plugin or handler.
    p.clear();
    let mut req = b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    req.extend_from_slice(body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = d.raw(&req);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Transfer-Encoding and Content-Length"));
    assert!(p.calls().is_empty(), "{:?}", p.calls());
    assert_eq!(container_count(&d), before);

    // Expect: 100-continue: the body follows the interim answer.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue"), "{interim:?}");
    s.write_all(body).unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        b64(&p.last_req("POST", "/containers/create")["RequestBody"]),
        body
    );

    // Paths: what could pass a path rule as something else is denied or
    // not routed; never served.
    for path in [
        "/system/df",
        "/v1.41/system/df",
        "/system/df?verbose=1",
        "//system/df",
        "/system//df",
        "/system/df/",
        "/./system/df",
        "/v1.41/../system/df",
        "/system/%64f",
        "/%73ystem/df",
        "/v1.41%2Fsystem/df",
        "/system%2Fdf",
    ] {
        let r = d.get(path);
        assert!(
            r.status == 403 || r.status == 404,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        if ["/system/df", "/v1.41/system/df", "/system/df?verbose=1"].contains(&path) {
            assert_eq!(r.status, 403, "{path}");
        }
    }
    d.docker_ok(&["create", "--name", "secret", "busybox", "true"]);
    for path in [
        "/containers/secret/json",
        "/containers/s%65cret/json",
        "/containers/%73%65%63%72%65%74/json",
    ] {
        p.clear();
        let r = d.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        // The plugin is shown the container the router resolves.
        assert_eq!(
            p.last_req("GET", "/containers/secret/json")["RequestUri"],
            "/containers/secret/json"
        );
    }
    let r = d.get("/v1.41/containers/secret/json");
    assert_eq!(r.status, 403, "{}", r.text());
    let o = d.docker(&["inspect", "secret"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("authorization denied by plugin pol: secret is secret"),
        "{}",
        stderr(&o)
    );

    // Streams: exec start's JSON body is shown; an upload's is not (its
    // headers are); the hijacked answer is asked about before it starts.
    d.docker_ok(&["run", "-d", "--name", "worker", "busybox", "sleep", "300"]);
    p.clear();
    assert_eq!(d.docker_ok(&["exec", "worker", "echo", "hi"]), "hi\n");
    let create = p.last_req("POST", "/containers/worker/exec");
    let cbody: Value = serde_json::from_slice(&b64(&create["RequestBody"])).unwrap();
    assert_eq!(cbody["Cmd"], json!(["echo", "hi"]));
    let start = p
        .calls()
        .into_iter()
        .find(|(m, v)| {
            m == "/AuthZPlugin.AuthZReq"
                && unversioned(v["RequestUri"].as_str().unwrap()).starts_with("/exec/")
                && unversioned(v["RequestUri"].as_str().unwrap()).ends_with("/start")
        })
        .expect("exec start asked")
        .1;
    let sbody: Value = serde_json::from_slice(&b64(&start["RequestBody"])).unwrap();
    assert_eq!(sbody["Detach"], false);
    assert!(p.calls().iter().any(|(m, v)| m == "/AuthZPlugin.AuthZRes"
        && unversioned(v["RequestUri"].as_str().unwrap()).ends_with("/start")
        && v["ResponseStatusCode"] == 101));
    let tar = d.dir.path().join("busybox.tar");
    d.docker_ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    let l = p.last_req("POST", "/images/load");
    assert!(l.get("RequestBody").is_none(), "an upload's body was sent");
    assert_eq!(l["RequestHeaders"]["Content-Type"], "application/x-tar");
    // archive put and a build context: uploads too.
    let f = d.dir.path().join("f.txt");
    std::fs::write(&f, "x").unwrap();
    d.docker_ok(&["cp", f.to_str().unwrap(), "worker:/tmp/"]);
    let put = p.last_req("PUT", "/containers/worker/archive");
    assert!(put.get("RequestBody").is_none(), "{put}");
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nLABEL a=b\n").unwrap();
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "authz-built", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let b = p.last_req("POST", "/build");
    assert!(b.get("RequestBody").is_none());
    assert_eq!(b["RequestHeaders"]["Content-Type"], "application/x-tar");
    // attach (the CLI's run without -d): no body, its hijacked answer asked.
    p.clear();
    d.docker_ok(&["run", "--rm", "busybox", "true"]);
    let attach = p
        .calls()
        .into_iter()
        .find(|(m, v)| {
            m == "/AuthZPlugin.AuthZReq" && v["RequestUri"].as_str().unwrap().contains("/attach?")
        })
        .expect("attach asked")
        .1;
    assert!(attach.get("RequestBody").is_none());

    // Credentials never reach the plugin.
    let r = d.raw(b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Registry-Auth: c2VjcmV0\r\nAuthorization: Basic c2VjcmV0\r\nX-Custom: 1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    let ping = p.last_req("GET", "/_ping");
    assert_eq!(ping["RequestHeaders"]["X-Custom"], "1");
    assert!(ping["RequestHeaders"].get("X-Registry-Auth").is_none());
    assert!(ping["RequestHeaders"].get("Authorization").is_none());

    // The plugin is listed.
    let l = d.get("/plugins").json();
    assert_eq!(l[0]["Name"], "pol");
    assert_eq!(l[0]["Enabled"], true);
    assert_eq!(
        l[0]["Config"]["Interface"]["Types"],
        json!(["docker.authz/1.0"])
    );
    assert_eq!(
        d.docker_ok(&["plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"]),
        "pol true\n"
    );
    d.docker_ok(&["rm", "-f", "worker", "secret"]);
    p.stop();
    d.stop();
}

#[test]
fn authorization_plugin_failures_deny_and_reload_changes_the_list() {
    let dir = plugin_dir();
    let sock = dir.path().join("run/pol/pol.sock");
    let p = Plugin::new(Arc::new(|_, _| allow())).on_unix(&sock);
    let d = daemon_with(dir.path(), json!({"authorization-plugins": ["pol"]}));
    d.docker_ok(&["ps"]);

    let cases: Vec<(Policy, &str)> = vec![
        (
            Arc::new(|_, _| Answer::Text("<html>not json</html>")),
            "plugin pol failed with error: AuthZPlugin.AuthZReq: invalid answer",
        ),
        (
            Arc::new(|_, _| Answer::Json(200, json!({"Allow": false, "Err": "engine broken"}))),
            "plugin pol failed with error: AuthZPlugin.AuthZReq: engine broken",
        ),
        (
            Arc::new(|_, _| Answer::Json(500, json!({"Err": "crashed"}))),
            "plugin pol failed with error: AuthZPlugin.AuthZReq: crashed",
        ),
        (
            Arc::new(|m, _| {
                if m == "/AuthZPlugin.AuthZRes" {
                    deny("answers are secret")
                } else {
                    allow()
                }
            }),
            "authorization denied by plugin pol: answers are secret",
        ),
    ];
    for (policy, want) in cases {
        p.set(policy);
        let r = d.get("/containers/json");
        assert!(r.status == 500 || r.status == 403, "{}", r.status);
        assert!(
            r.json()["message"].as_str().unwrap().starts_with(want),
            "{}",
            r.text()
        );
        let o = d.docker(&["ps"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }

    // A plugin that never answers: the request fails, bounded.
    p.set(Arc::new(|_, _| Answer::Hang));
    let t = Instant::now();
    let r = d.get("/_ping");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(r.text().contains("did not answer"), "{}", r.text());

    // Down: denied at once; back: allowed again.
    p.stop();
    let t = Instant::now();
    let r = d.get("/_ping");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("plugin pol failed with error"),
        "{}",
        r.text()
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let p = Plugin::new(Arc::new(|_, _| allow())).on_unix(&sock);
    assert!(wait_for(Duration::from_secs(10), || d.get("/_ping").status == 200));

    // The plugin's actor and its supervisor killed: requests are asked
    // again once they are back, never let through unasked.
    for actor in ["plugin:pol", "plugins"] {
        chaos_kill(&d, actor);
        p.set(Arc::new(|_, _| deny("after the kill")));
        assert!(wait_for(Duration::from_secs(10), || d.get("/_ping").status == 403));
        p.set(Arc::new(|_, _| allow()));
        assert!(wait_for(Duration::from_secs(10), || d.get("/_ping").status == 200));
    }

    // SIGHUP: the list is reloadable; a plugin that cannot be found is
    // refused and nothing changes.
    p.set(Arc::new(|_, _| deny("closed")));
    assert_eq!(d.get("/_ping").status, 403);
    d.write_config(&json!({"authorization-plugins": ["nope"]}));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_for(Duration::from_secs(20), || d
        .log()
        .contains("failed to validate authorization plugin")));
    assert_eq!(d.get("/_ping").status, 403);
    d.write_config(&json!({}));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_for(Duration::from_secs(10), || d.get("/_ping").status == 200));
    assert_eq!(
        d.docker_ok(&["info", "--format", "{{json .Plugins.Authorization}}"])
            .trim(),
        "null"
    );
    p.stop();
    d.stop();
}

#[test]
fn berthd_does_not_start_without_its_authorization_plugin() {
    let dir = plugin_dir();
    let d = Daemon::prepare();
    d.write_config(&json!({"authorization-plugins": ["missing"]}));
    let o = d
        .command()
        .args(["-H", &d.docker_host()])
        .env("BERTH_PLUGIN_SOCKETS", dir.path().join("run"))
        .env("BERTH_PLUGIN_SPECS", dir.path().join("etc"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("failed to validate authorization plugin: could not find plugin missing in v1 plugin registry: plugin not found"),
        "{err}"
    );
    assert!(!d.sock.exists());
}

#[test]
fn tls_user_and_plugins_on_tcp_and_tls_found_by_spec_files() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let dir = plugin_dir();
    let (p, port) = Plugin::new(Arc::new(|_, _| allow())).on_tcp();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/tcppol.spec"),
        format!("tcp://127.0.0.1:{port}\n"),
    )
    .unwrap();

    let mut cap = CertificateParams::new(Vec::<String>::new()).unwrap();
    cap.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    cap.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = cap.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(cap, ca_key);
    let leaf = |cn: &str, sans: Vec<String>, usage| {
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        let k = KeyPair::generate().unwrap();
        (p.signed_by(&k, &issuer).unwrap().pem(), k.serialize_pem())
    };
    let (srv_cert, srv_key) = leaf(
        "localhost",
        vec!["127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (cli_cert, cli_key) = leaf("alice", vec![], ExtendedKeyUsagePurpose::ClientAuth);
    let d = Daemon::prepare();
    let certs = d.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for (n, t) in [
        ("ca.pem", &ca_pem),
        ("server-cert.pem", &srv_cert),
        ("server-key.pem", &srv_key),
        ("cert.pem", &cli_cert),
        ("key.pem", &cli_key),
    ] {
        std::fs::write(certs.join(n), t).unwrap();
    }
    // A second plugin on TLS, found by a `.json` spec naming the CA.
    let (tls_cert, tls_key) = leaf(
        "127.0.0.1",
        vec!["127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (tp, tls_port) = Plugin::new(Arc::new(|_, _| allow())).on_tls(&tls_cert, &tls_key);
    std::fs::write(dir.path().join("etc/ca.pem"), &ca_pem).unwrap();
    std::fs::write(
        dir.path().join("etc/tlspol.json"),
        json!({
            "Name": "tlspol",
            "Addr": format!("tcp://127.0.0.1:{tls_port}"),
            "TLSConfig": {"CAFile": dir.path().join("etc/ca.pem")},
        })
        .to_string(),
    )
    .unwrap();
    d.write_config(&json!({"authorization-plugins": ["tcppol", "tlspol"]}));
    let tport = free_port();
    let tcp = format!("tcp://127.0.0.1:{tport}");
    let mut cmd = d.command();
    cmd.args(["-H", &d.docker_host(), "-H", &tcp, "--tlsverify"])
        .arg("--tlscacert")
        .arg(certs.join("ca.pem"))
        .arg("--tlscert")
        .arg(certs.join("server-cert.pem"))
        .arg("--tlskey")
        .arg(certs.join("server-key.pem"))
        .env("BERTH_PLUGIN_SOCKETS", dir.path().join("run"))
        .env("BERTH_PLUGIN_SPECS", dir.path().join("etc"));
    let d = d.spawn(cmd);
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs)
        .args(["-H", &tcp, "ps"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ps = p
        .calls()
        .into_iter()
        .rev()
        .find(|(_, v)| unversioned(v["RequestUri"].as_str().unwrap_or("")) == "/containers/json")
        .unwrap()
        .1;
    assert_eq!(ps["User"], "alice");
    assert_eq!(ps["UserAuthNMethod"], "TLS");
    let pem = String::from_utf8(b64(&ps["RequestPeerCertificates"][0])).unwrap();
    assert_eq!(pem.trim(), cli_cert.trim());
    // Both plugins were asked, in order.
    assert!(tp.calls().iter().any(|(_, v)| v["User"] == "alice"));
    tp.set(Arc::new(|_, _| deny("tls says no")));
    let o = d.docker(&["ps"]);
    assert!(
        stderr(&o).contains("authorization denied by plugin tlspol: tls says no"),
        "{}",
        stderr(&o)
    );
    tp.set(Arc::new(|_, _| allow()));
    // Over the unix socket: no user.
    d.docker_ok(&["version"]);
    let v = p
        .calls()
        .into_iter()
        .rev()
        .find(|(_, v)| unversioned(v["RequestUri"].as_str().unwrap_or("")) == "/version")
        .unwrap()
        .1;
    assert!(v.get("User").is_none(), "{v}");
    d.stop();
}

/// A volume plugin: each volume a directory under `root`.
fn volume_driver(root: PathBuf) -> Policy {
    // One volume the plugin made for someone else.
    let vols = Arc::new(Mutex::new(std::collections::BTreeMap::from([(
        "outside".to_string(),
        root.join("outside"),
    )])));
    Arc::new(move |m, v| {
        let name = v["Name"].as_str().unwrap_or("").to_string();
        let mut vols = vols.lock().unwrap();
        let ok = || Answer::Json(200, json!({"Err": ""}));
        match m {
            "/VolumeDriver.Create" => {
                let p = root.join(&name);
                std::fs::create_dir_all(&p).unwrap();
                vols.insert(name, p);
                ok()
            }
            "/VolumeDriver.Remove" => match vols.remove(&name) {
                Some(p) => {
                    let _ = std::fs::remove_dir_all(p);
                    ok()
                }
                None => Answer::Json(200, json!({"Err": "no such volume"})),
            },
            "/VolumeDriver.Mount" | "/VolumeDriver.Path" => match vols.get(&name) {
                Some(p) => Answer::Json(200, json!({"Mountpoint": p, "Err": ""})),
                None => Answer::Json(200, json!({"Err": "no such volume"})),
            },
            "/VolumeDriver.Get" => match vols.get(&name) {
                Some(p) => Answer::Json(
                    200,
                    json!({"Volume": {"Name": name, "Mountpoint": p, "Status": {"health": "fine"}}, "Err": ""}),
                ),
                None => Answer::Json(200, json!({"Err": "no such volume"})),
            },
            "/VolumeDriver.List" => Answer::Json(
                200,
                json!({"Volumes": vols.iter().map(|(n, p)| json!({"Name": n, "Mountpoint": p})).collect::<Vec<_>>(), "Err": ""}),
            ),
            "/VolumeDriver.Capabilities" => {
                Answer::Json(200, json!({"Capabilities": {"Scope": "global"}}))
            }
            _ => ok(),
        }
    })
}

/// The calls of `method` for volume `name`.
fn calls_of(p: &Plugin, method: &str, name: &str) -> Vec<Value> {
    p.calls()
        .into_iter()
        .filter(|(m, v)| m == method && v["Name"] == name)
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn volume_plugin_through_the_cli() {
    let dir = plugin_dir();
    let data = dir.path().join("vp-data");
    let p = Plugin::implementing(&["VolumeDriver"], volume_driver(data.clone()))
        .on_unix(&dir.path().join("run/vp.sock"));
    let d = daemon_with(dir.path(), json!({}));
    load_busybox(&d);

    // Created by the plugin, with its options; the record is berthd's.
    d.docker_ok(&[
        "volume", "create", "-d", "vp", "--opt", "size=1g", "--label", "a=b", "v1",
    ]);
    let c = calls_of(&p, "/VolumeDriver.Create", "v1");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["Opts"], json!({"size": "1g"}));
    assert_eq!(
        d.docker_ok(&[
            "volume",
            "inspect",
            "v1",
            "--format",
            "{{.Driver}} {{.Scope}} {{.Labels}}"
        ]),
        "vp global map[a:b]\n"
    );
    // The plugin's Status in inspect; its other volumes listed.
    assert_eq!(
        d.docker_ok(&["volume", "inspect", "v1", "--format", "{{json .Status}}"]),
        "{\"health\":\"fine\"}\n"
    );
    let ls = d.docker_ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    assert!(
        ls.contains("vp outside\n") && ls.contains("vp v1\n"),
        "{ls}"
    );
    assert_eq!(
        d.docker_ok(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "driver=vp",
            "--filter",
            "name=outs"
        ]),
        "outside\n"
    );

    // Mounted for the container, under the container's ID, unmounted after.
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "v1:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f",
    ]);
    assert_eq!(std::fs::read_to_string(data.join("v1/f")).unwrap(), "hi\n");
    let mounts = calls_of(&p, "/VolumeDriver.Mount", "v1");
    let unmounts = calls_of(&p, "/VolumeDriver.Unmount", "v1");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(unmounts.len(), 1, "{unmounts:?}");
    assert_eq!(mounts[0]["ID"].as_str().unwrap().len(), 64);
    assert_eq!(mounts[0]["ID"], unmounts[0]["ID"]);

    // --volume-driver makes a missing volume with the plugin.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--volume-driver",
        "vp",
        "-v",
        "v2:/d",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(calls_of(&p, "/VolumeDriver.Create", "v2").len(), 1);
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "c2",
            "--format",
            "{{range .Mounts}}{{.Driver}} {{.Source}}{{end}}"
        ]),
        format!("vp {}\n", data.join("v2").display())
    );
    assert_eq!(
        d.docker_ok(&["exec", "c2", "sh", "-c", "echo x > /d/g; cat /d/g"]),
        "x\n"
    );
    let o = d.docker(&["volume", "rm", "v2"]);
    assert!(!o.status.success(), "a volume in use was removed");
    d.docker_ok(&["rm", "-f", "c2"]);
    assert_eq!(calls_of(&p, "/VolumeDriver.Unmount", "v2").len(), 1);

    // live-restore: berthd killed while a container uses a plugin's
    // volume; the container's stop after the restart unmounts the mount
    // its start made (same ID).
    d.write_config(&json!({"live-restore": true}));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_for(Duration::from_secs(10), || d
        .docker_ok(&["info", "--format", "{{.LiveRestoreEnabled}}"])
        .trim()
        == "true"));
    d.docker_ok(&[
        "run", "-d", "--name", "c4", "-v", "v1:/d", "busybox", "sleep", "300",
    ]);
    let id4 = d.docker_ok(&["inspect", "--format", "{{.Id}}", "c4"]);
    let id4 = id4.trim().to_string();
    let mut d = d;
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit_keep();
    let d = spawn_with(d, dir.path());
    assert_eq!(
        d.docker_ok(&["exec", "c4", "sh", "-c", "echo y > /d/h; cat /d/h"]),
        "y\n"
    );
    d.docker_ok(&["stop", "-t", "0", "c4"]);
    assert!(wait_for(Duration::from_secs(10), || calls_of(
        &p,
        "/VolumeDriver.Unmount",
        "v1"
    )
    .iter()
    .any(|u| u["ID"] == id4.as_str())));
    assert!(calls_of(&p, "/VolumeDriver.Mount", "v1")
        .iter()
        .any(|m| m["ID"] == id4.as_str()));
    d.docker_ok(&["rm", "c4"]);

    // --mount with volume-driver and volume-opt.
    d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=v3,dst=/d,volume-driver=vp,volume-opt=k=v",
        "busybox",
        "true",
    ]);
    assert_eq!(
        calls_of(&p, "/VolumeDriver.Create", "v3")[0]["Opts"],
        json!({"k": "v"})
    );
    assert_eq!(
        d.docker_ok(&["info", "--format", "{{json .Plugins.Volume}}"])
            .trim(),
        r#"["local","vp"]"#
    );

    // Removed through the plugin.
    d.docker_ok(&["volume", "rm", "v1"]);
    assert_eq!(calls_of(&p, "/VolumeDriver.Remove", "v1").len(), 1);
    assert!(!data.join("v1").exists());

    // The plugin is gone: its volumes stay listed; rm fails, rm -f forgets.
    p.stop();
    let ls = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(ls.contains("v2") && ls.contains("v3"), "{ls}");
    let o = d.docker(&["volume", "rm", "v3"]);
    assert!(!o.status.success());
    d.docker_ok(&["volume", "rm", "-f", "v3"]);
    assert!(!d.docker_ok(&["volume", "ls", "-q"]).contains("v3"));

    // No such plugin: dockerd's 404.
    let o = d.docker(&["volume", "create", "-d", "nope", "x"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("error looking up volume plugin nope: plugin \"nope\" not found"),
        "{}",
        stderr(&o)
    );
    d.stop();
}

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Links the test's network plugin made, removed when the test ends
/// (also on failure).
struct Links(Arc<Mutex<Vec<String>>>);

impl Drop for Links {
    fn drop(&mut self) {
        for l in self.0.lock().unwrap().iter() {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", l])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A network plugin: a bridge per network (the gateway address on it), a
/// veth pair per endpoint, its host end on the bridge, the other end
/// handed to berthd by `Join`.
fn network_driver(links: Arc<Mutex<Vec<String>>>) -> Policy {
    let short = |id: &Value| {
        id.as_str()
            .unwrap_or("")
            .chars()
            .take(8)
            .collect::<String>()
    };
    Arc::new(move |m, v| {
        let ok = || Answer::Json(200, json!({}));
        let net = format!("tb{}", short(&v["NetworkID"]));
        let ep = short(&v["EndpointID"]);
        match m {
            "/NetworkDriver.GetCapabilities" => Answer::Json(200, json!({"Scope": "local"})),
            "/NetworkDriver.CreateNetwork" => {
                let gw = v["IPv4Data"][0]["Gateway"].as_str().unwrap_or("");
                links.lock().unwrap().push(net.clone());
                if ip(&["link", "add", &net, "type", "bridge"])
                    && ip(&["addr", "add", gw, "dev", &net])
                    && ip(&["link", "set", &net, "up"])
                {
                    ok()
                } else {
                    Answer::Json(200, json!({"Err": "cannot make the bridge"}))
                }
            }
            "/NetworkDriver.DeleteNetwork" => {
                ip(&["link", "del", &net]);
                ok()
            }
            "/NetworkDriver.CreateEndpoint" => ok(),
            "/NetworkDriver.Join" => {
                let (host, peer) = (format!("th{ep}"), format!("tc{ep}"));
                links.lock().unwrap().push(host.clone());
                if !(ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])
                    && ip(&["link", "set", &host, "master", &net, "up"]))
                {
                    return Answer::Json(200, json!({"Err": "cannot make the veth pair"}));
                }
                let gw = std::process::Command::new("ip")
                    .args(["-4", "-o", "addr", "show", "dev", &net])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let gw = gw
                    .split_whitespace()
                    .skip_while(|w| *w != "inet")
                    .nth(1)
                    .and_then(|c| c.split('/').next())
                    .unwrap_or("")
                    .to_string();
                Answer::Json(
                    200,
                    json!({"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"}, "Gateway": gw}),
                )
            }
            "/NetworkDriver.DeleteEndpoint" => {
                ip(&["link", "del", &format!("th{ep}")]);
                ok()
            }
            _ => ok(),
        }
    })
}

fn net_calls(p: &Plugin, method: &str) -> Vec<Value> {
    p.calls()
        .into_iter()
        .filter(|(m, _)| m == method)
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn network_plugin_through_the_cli() {
    let dir = plugin_dir();
    let links = Arc::new(Mutex::new(Vec::new()));
    let _cleanup = Links(links.clone());
    let p = Plugin::implementing(&["NetworkDriver"], network_driver(links))
        .on_unix(&dir.path().join("run/np.sock"));
    let d = daemon_with(dir.path(), json!({}));
    load_busybox(&d);
    let subnet = d.subnet(1);

    d.docker_ok(&[
        "network", "create", "-d", "np", "--subnet", &subnet, "--opt", "foo=bar", "pnet",
    ]);
    let c = net_calls(&p, "/NetworkDriver.CreateNetwork");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["Options"]["com.docker.network.generic"]["foo"], "bar");
    assert_eq!(c[0]["IPv4Data"][0]["Pool"], subnet.as_str());
    let net_id = c[0]["NetworkID"].as_str().unwrap().to_string();
    assert_eq!(
        d.docker_ok(&[
            "network",
            "inspect",
            "pnet",
            "--format",
            "{{.Driver}} {{.Id}}"
        ]),
        format!("np {net_id}\n")
    );

    // Two containers on it: the plugin's interfaces, berthd's addresses
    // and names.
    for n in ["na", "nb"] {
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "pnet",
            "busybox",
            "sleep",
            "300",
        ]);
    }
    let ip_b = d.docker_ok(&[
        "inspect",
        "nb",
        "--format",
        "{{.NetworkSettings.Networks.pnet.IPAddress}}",
    ]);
    let ip_b = ip_b.trim();
    assert!(d
        .docker_ok(&["exec", "nb", "ip", "-4", "addr", "show", "eth0"])
        .contains(ip_b));
    let ce = net_calls(&p, "/NetworkDriver.CreateEndpoint");
    assert!(
        ce.iter()
            .any(|v| v["Interface"]["Address"] == format!("{ip_b}/24")),
        "{ce:?}"
    );
    let joins = net_calls(&p, "/NetworkDriver.Join");
    assert_eq!(joins.len(), 2);
    assert!(joins[0]["SandboxKey"].as_str().unwrap().starts_with('/'));
    let o = d.docker(&["exec", "na", "ping", "-c", "1", "-W", "3", "nb"]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), d.log());
    let route = d.docker_ok(&["exec", "na", "ip", "route"]);
    assert!(route.starts_with("default via "), "{route}");
    assert!(d
        .docker_ok(&["info", "--format", "{{json .Plugins.Network}}"])
        .contains("\"np\""));

    // Disconnect: the interface leaves the container, the plugin is told.
    d.docker_ok(&["network", "disconnect", "pnet", "nb"]);
    assert_eq!(net_calls(&p, "/NetworkDriver.Leave").len(), 1);
    assert_eq!(net_calls(&p, "/NetworkDriver.DeleteEndpoint").len(), 1);
    let o = d.docker(&["exec", "nb", "ip", "link", "show", "eth0"]);
    assert!(!o.status.success(), "eth0 stayed in the container");
    d.docker_ok(&["rm", "-f", "na", "nb"]);
    assert_eq!(net_calls(&p, "/NetworkDriver.DeleteEndpoint").len(), 2);
    d.docker_ok(&["network", "rm", "pnet"]);
    let del = net_calls(&p, "/NetworkDriver.DeleteNetwork");
    assert_eq!(del.len(), 1);
    assert_eq!(del[0]["NetworkID"], net_id.as_str());
    assert!(!ip(&["link", "show", &format!("tb{}", &net_id[..8])]));

    let o = d.docker(&["network", "create", "-d", "nope", "x"]);
    assert!(
        stderr(&o).contains("plugin \"nope\" not found"),
        "{}",
        stderr(&o)
    );
    d.stop();
}

/// An IPAM plugin: one pool (`subnet`, or the one asked for), the gateway
/// at .1, endpoint addresses from .100 up.
fn ipam_driver(subnet: String) -> Policy {
    let next = Arc::new(Mutex::new(100u8));
    Arc::new(move |m, v| {
        let base = subnet.trim_end_matches("0/24").to_string();
        match m {
            "/IpamDriver.GetDefaultAddressSpaces" => Answer::Json(
                200,
                json!({"LocalDefaultAddressSpace": "lspace", "GlobalDefaultAddressSpace": "gspace"}),
            ),
            "/IpamDriver.RequestPool" => {
                let pool = v["Pool"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .unwrap_or(&subnet);
                Answer::Json(200, json!({"PoolID": "pool1", "Pool": pool, "Data": {}}))
            }
            "/IpamDriver.RequestAddress" => {
                if v["Options"]["RequestAddressType"] == "com.docker.network.gateway" {
                    return Answer::Json(
                        200,
                        json!({"Address": format!("{base}1/24"), "Data": {}}),
                    );
                }
                let mut n = next.lock().unwrap();
                let a = format!("{base}{}/24", *n);
                *n += 1;
                Answer::Json(200, json!({"Address": a, "Data": {}}))
            }
            "/IpamDriver.GetCapabilities" => {
                Answer::Json(200, json!({"RequiresMACAddress": false}))
            }
            _ => Answer::Json(200, json!({})),
        }
    })
}

#[test]
fn ipam_plugin_gives_the_pool_and_the_addresses() {
    let dir = plugin_dir();
    let d = Daemon::prepare();
    let subnet = d.subnet(2);
    let p = Plugin::implementing(&["IpamDriver"], ipam_driver(subnet.clone()))
        .on_unix(&dir.path().join("run/ip.sock"));
    let mut d = d;
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let d = spawn_with(d, dir.path());
    load_busybox(&d);

    d.docker_ok(&[
        "network",
        "create",
        "--ipam-driver",
        "ip",
        "--ipam-opt",
        "o=1",
        "inet",
    ]);
    let pools = net_calls(&p, "/IpamDriver.RequestPool");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["AddressSpace"], "lspace");
    assert_eq!(pools[0]["Pool"], "");
    assert_eq!(pools[0]["Options"], json!({"o": "1"}));
    let base = subnet.trim_end_matches("0/24").to_string();
    assert_eq!(
        d.docker_ok(&[
            "network", "inspect", "inet", "--format",
            "{{.IPAM.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.IPAM.Options}}",
        ]),
        format!("ip {subnet} {base}1 map[o:1]\n")
    );
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "inet",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("{base}100/24")), "{out}");
    assert!(wait_for(Duration::from_secs(10), || net_calls(
        &p,
        "/IpamDriver.ReleaseAddress"
    )
    .iter()
    .any(
        |v| v["Address"] == format!("{base}100").as_str() && v["PoolID"] == "pool1"
    )));
    d.docker_ok(&["network", "rm", "inet"]);
    let released = net_calls(&p, "/IpamDriver.ReleasePool");
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["PoolID"], "pool1");
    d.stop();
}
