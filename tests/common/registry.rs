//! Registries for tests: Debian's docker-registry on a free loopback port
//! (optionally htpasswd-protected), and a fake one serving crafted content.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{free_port, wait_for};

/// A real registry (Debian's `docker-registry`), stopped on drop.
pub struct Registry {
    pub addr: String,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils)");
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/install-deps.sh)");
        let ok = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(ok, "registry did not come up on {addr}");
        Registry {
            addr,
            _dir: dir,
            child,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response of the fake registry.
#[derive(Clone)]
pub struct Canned {
    pub content_type: String,
    pub body: Vec<u8>,
    /// Extra headers (e.g. Docker-Content-Digest).
    pub headers: Vec<(String, String)>,
    /// Send only this many body bytes, then stall (for kill-mid-pull tests).
    pub stall_after: Option<usize>,
    /// While stalled: once this is set, send the rest.
    pub resume: Option<Arc<AtomicBool>>,
}

/// A minimal HTTP registry serving canned paths; unknown paths are 404.
pub struct FakeRegistry {
    pub addr: String,
    stop: Arc<AtomicBool>,
    pub routes: Arc<Mutex<HashMap<String, Canned>>>,
}

/// Token auth for the fake registry: `/token` hands `token` to clients that
/// present `user:pass` (basic); every other path wants `Bearer token`.
#[derive(Clone)]
pub struct TokenAuth {
    pub user: String,
    pub pass: String,
    pub token: String,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        Self::start_with(None)
    }

    pub fn start_with(auth: Option<TokenAuth>) -> FakeRegistry {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let routes: Arc<Mutex<HashMap<String, Canned>>> = Arc::new(Mutex::new(HashMap::new()));
        let (s2, r2, addr2) = (stop.clone(), routes.clone(), addr.clone());
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((sock, _)) => {
                        let (r3, s3, a3, addr3) =
                            (r2.clone(), s2.clone(), auth.clone(), addr2.clone());
                        std::thread::spawn(move || serve(sock, r3, s3, a3, addr3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeRegistry { addr, stop, routes }
    }

    pub fn put(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.routes.lock().unwrap().insert(
            path.to_string(),
            Canned {
                content_type: content_type.into(),
                body,
                headers: vec![],
                stall_after: None,
                resume: None,
            },
        );
    }

    pub fn put_canned(&self, path: &str, c: Canned) {
        self.routes.lock().unwrap().insert(path.to_string(), c);
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    sock: std::net::TcpStream,
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    stop: Arc<AtomicBool>,
    auth: Option<TokenAuth>,
    addr: String,
) {
    let _ = sock.set_nonblocking(false);
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    let mut w = sock;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let mut authorization = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = v.trim().to_string();
                }
            }
        }
        if let Some(a) = &auth {
            use base64::Engine;
            if path == "/token" {
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", a.user, a.pass))
                );
                let (status, body) = if authorization == want {
                    (
                        "200 OK",
                        format!(r#"{{"token":"{0}","access_token":"{0}"}}"#, a.token),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#
                            .to_string(),
                    )
                };
                let _ = write!(w, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                continue;
            }
            if authorization != format!("Bearer {}", a.token) {
                let body =
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                let _ = write!(
                    w,
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"fake\"\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
        }
        let canned = if path == "/v2/" || path == "/v2" {
            Some(Canned {
                content_type: "application/json".into(),
                body: b"{}".to_vec(),
                headers: vec![],
                stall_after: None,
                resume: None,
            })
        } else {
            routes.lock().unwrap().get(&path).cloned()
        };
        let Some(c) = canned else {
            let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
            let _ = write!(w, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = w.write_all(body);
            continue;
        };
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            c.content_type,
            c.body.len()
        );
        for (k, v) in &c.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = w.write_all(head.as_bytes());
        if method != "HEAD" {
            match c.stall_after {
                Some(n) => {
                    let _ = w.write_all(&c.body[..n.min(c.body.len())]);
                    let _ = w.flush();
                    while !stop.load(Ordering::SeqCst) {
                        if c.resume.as_ref().is_some_and(|r| r.load(Ordering::SeqCst)) {
                            let _ = w.write_all(&c.body[n.min(c.body.len())..]);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
                None => {
                    let _ = w.write_all(&c.body);
                }
            }
        }
    }
}
