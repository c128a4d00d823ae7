//! Legacy plugins on the host: finding them (dockerd's v1 plugin registry:
//! sockets in `/run/docker/plugins`, spec files in `/etc/docker/plugins`
//! and `/usr/lib/docker/plugins`) and calling them (JSON over HTTP/1.1 on
//! a unix socket, TCP or TCP with TLS).
//!
//! The env vars `BERTH_PLUGIN_SOCKETS` (one directory) and
//! `BERTH_PLUGIN_SPECS` (directories separated by `:`) of berthd replace
//! the default directories; the tests use them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_actors::plugin::{CallError, PluginClient, PluginPort};
use berth_actors::ports::BoxFuture;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

pub const SOCKETS_DIR: &str = "/run/docker/plugins";
pub const SPEC_DIRS: &[&str] = &["/etc/docker/plugins", "/usr/lib/docker/plugins"];
/// The media type dockerd's plugin client accepts.
pub const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";
/// The largest answer read from a plugin.
const MAX_ANSWER: usize = 64 << 20;

/// Where plugins are looked for.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub sockets: PathBuf,
    pub specs: Vec<PathBuf>,
}

impl Discovery {
    /// dockerd's directories, or the ones berthd's environment names.
    pub fn from_env() -> Self {
        let sockets = std::env::var("BERTH_PLUGIN_SOCKETS")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| SOCKETS_DIR.to_string());
        let specs = match std::env::var("BERTH_PLUGIN_SPECS") {
            Ok(s) if !s.is_empty() => s.split(':').map(PathBuf::from).collect(),
            _ => SPEC_DIRS.iter().map(PathBuf::from).collect(),
        };
        Discovery {
            sockets: PathBuf::from(sockets),
            specs,
        }
    }
}

/// `base/name.ext` and `base/name/name.ext`, dockerd's two places.
fn paths(base: &Path, name: &str, ext: &str) -> [PathBuf; 2] {
    [
        base.join(format!("{name}{ext}")),
        base.join(name).join(format!("{name}{ext}")),
    ]
}

/// A `.json` spec file.
#[derive(Debug, Default, Deserialize)]
struct JsonSpec {
    #[serde(rename = "Name", default)]
    _name: String,
    #[serde(rename = "Addr", default)]
    addr: String,
    #[serde(rename = "TLSConfig", default)]
    tls: Option<TlsSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct TlsSpec {
    #[serde(rename = "InsecureSkipVerify", default)]
    insecure_skip_verify: bool,
    #[serde(rename = "CAFile", default)]
    ca_file: String,
    #[serde(rename = "CertFile", default)]
    cert_file: String,
    #[serde(rename = "KeyFile", default)]
    key_file: String,
}

/// Where and how to reach one plugin.
#[derive(Clone)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { host, port, tls } => {
                let s = if tls.is_some() { "https" } else { "tcp" };
                write!(f, "{s}://{host}:{port}")
            }
        }
    }
}

fn not_found(name: &str) -> String {
    format!("could not find plugin {name} in v1 plugin registry: plugin not found")
}

/// A plugin name is one path component.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// A URL of a spec file (`unix:///p`, `tcp://h:p`, `http://h:p`,
/// `https://h:p`) with the TLS of a `.json` spec.
fn endpoint_of(url: &str, tls: Option<&TlsSpec>) -> Result<Endpoint, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url}: Unknown protocol"));
    };
    match scheme {
        "unix" => {
            if rest.is_empty() {
                return Err(format!("{url}: missing socket path"));
            }
            Ok(Endpoint::Unix(PathBuf::from(rest)))
        }
        "tcp" | "http" | "https" => {
            let hostport = rest.trim_end_matches('/');
            let (host, port) = match crate::logdrivers::net::split_host_port(hostport)? {
                Some((h, p)) => (
                    h,
                    p.parse::<u16>()
                        .map_err(|_| format!("{url}: invalid port {p:?}"))?,
                ),
                None => return Err(format!("{url}: missing port in address")),
            };
            let tls = match (scheme, tls) {
                (_, Some(t)) => {
                    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
                    let ca = opt(&t.ca_file);
                    // dockerd: no CA file means the server is not verified.
                    let skip = t.insecure_skip_verify || ca.is_none();
                    Some(crate::logdrivers::net::tls_config(
                        ca.as_deref(),
                        opt(&t.cert_file).as_deref(),
                        opt(&t.key_file).as_deref(),
                        skip,
                    )?)
                }
                ("https", None) => {
                    Some(crate::logdrivers::net::tls_config(None, None, None, false)?)
                }
                _ => None,
            };
            Ok(Endpoint::Tcp { host, port, tls })
        }
        other => Err(format!("{url}: Unknown protocol {other:?}")),
    }
}

impl Discovery {
    /// Find plugin `name`: a socket first, then a spec file.
    pub fn find(&self, name: &str) -> Result<Endpoint, String> {
        if !valid_name(name) {
            return Err(format!("invalid plugin name {name:?}"));
        }
        for p in paths(&self.sockets, name, ".sock") {
            if is_socket(&p) {
                return Ok(Endpoint::Unix(p));
            }
        }
        for dir in &self.specs {
            for ext in [".spec", ".json"] {
                for p in paths(dir, name, ext) {
                    let Ok(text) = std::fs::read_to_string(&p) else {
                        continue;
                    };
                    let e = if ext == ".json" {
                        let spec: JsonSpec = serde_json::from_str(&text)
                            .map_err(|e| format!("{}: {e}", p.display()))?;
                        endpoint_of(&spec.addr, spec.tls.as_ref())
                    } else {
                        endpoint_of(&text, None)
                    };
                    return e.map_err(|e| format!("plugin {name} ({}): {e}", p.display()));
                }
            }
        }
        Err(not_found(name))
    }
}

/// Finds plugins for the actors.
pub struct HostPlugins {
    pub discovery: Discovery,
}

impl PluginPort for HostPlugins {
    fn locate(&self, name: &str) -> Result<Arc<dyn PluginClient>, String> {
        let endpoint = self.discovery.find(name)?;
        Ok(Arc::new(HttpPlugin::new(endpoint)))
    }
}

/// Idle keep-alive connections kept per plugin.
const MAX_IDLE: usize = 16;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A plugin spoken to over HTTP/1.1, with keep-alive connections reused
/// (as dockerd's plugin client does): a call takes an idle connection or
/// opens one, and gives it back once the answer was read.
pub struct HttpPlugin {
    pub endpoint: Endpoint,
    idle: Arc<std::sync::Mutex<Vec<Sender>>>,
}

impl HttpPlugin {
    pub fn new(endpoint: Endpoint) -> HttpPlugin {
        HttpPlugin {
            endpoint,
            idle: Arc::new(std::sync::Mutex::new(Vec::new())),
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn give_back(&self, s: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !s.is_closed() && idle.len() < MAX_IDLE {
            idle.push(s);
        }
    }

    async fn open(&self, method: &str, url: &str) -> Result<Sender, CallError> {
        let io = self.connect(method).await?;
        let (send, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
                .await
                .map_err(|e| CallError::Io(format!("Post {url:?}: {e}")))?;
        // Runs as long as the connection is in use or idle.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl HttpPlugin {
    /// Go's URL of the call, for its error messages.
    fn url(&self, method: &str) -> String {
        match &self.endpoint {
            Endpoint::Unix(p) => format!(
                "http://{}/{method}",
                p.display().to_string().replace('/', "%2F")
            ),
            Endpoint::Tcp { host, port, tls } => {
                let s = if tls.is_some() { "https" } else { "http" };
                format!("{s}://{host}:{port}/{method}")
            }
        }
    }

    async fn connect(&self, method: &str) -> Result<Box<dyn Io>, CallError> {
        let dial = |net: &str, addr: &str, e: &std::io::Error| {
            CallError::Connect(format!(
                "Post {:?}: {}",
                self.url(method),
                crate::logdrivers::net::dial_error(net, addr, e)
            ))
        };
        match &self.endpoint {
            Endpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| dial("unix", &p.display().to_string(), &e))?;
                Ok(Box::new(s))
            }
            Endpoint::Tcp { host, port, tls } => {
                let addr = format!("{host}:{port}");
                let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| dial("tcp", &addr, &e))?;
                let _ = s.set_nodelay(true);
                let Some(cfg) = tls else {
                    return Ok(Box::new(s));
                };
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| CallError::Io(format!("{addr}: {e}")))?;
                let t = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, s)
                    .await
                    .map_err(|e| CallError::Io(format!("Post {:?}: tls: {e}", self.url(method))))?;
                Ok(Box::new(t))
            }
        }
    }
}

/// The `Err` of a plugin's error answer.
#[derive(Deserialize)]
struct ErrAnswer {
    #[serde(rename = "Err", default)]
    err: String,
}

impl PluginClient for HttpPlugin {
    fn address(&self) -> String {
        format!("{:?}", self.endpoint)
    }

    fn call(&self, method: &str, body: Bytes) -> BoxFuture<Result<Bytes, CallError>> {
        let method = method.to_string();
        let me = HttpPlugin {
            endpoint: self.endpoint.clone(),
            idle: self.idle.clone(),
        };
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "plugin".to_string(),
            Endpoint::Tcp { host, port, .. } => format!("{host}:{port}"),
        };
        let url = self.url(&method);
        Box::pin(async move {
            let wire = |e: hyper::Error| CallError::Io(format!("Post {url:?}: {e}"));
            let request = || {
                hyper::Request::post(format!("/{method}"))
                    .header(hyper::header::HOST, host.as_str())
                    .header(hyper::header::ACCEPT, MEDIA_TYPE)
                    .header(hyper::header::CONTENT_TYPE, MEDIA_TYPE)
                    .body(Full::new(body.clone()))
                    .map_err(|e| CallError::Io(e.to_string()))
            };
            // An idle connection the plugin closed meanwhile fails at once:
            // the call goes again on a new one.
            let (send, resp) = match me.take_idle() {
                Some(mut s) => match async {
                    let req = request()?;
                    s.ready().await.map_err(wire)?;
                    s.send_request(req).await.map_err(wire)
                }
                .await
                {
                    Ok(r) => (s, r),
                    Err(_) => {
                        let mut s = me.open(&method, &url).await?;
                        let r = s.send_request(request()?).await.map_err(wire)?;
                        (s, r)
                    }
                },
                None => {
                    let mut s = me.open(&method, &url).await?;
                    let r = s.send_request(request()?).await.map_err(wire)?;
                    (s, r)
                }
            };
            let status = resp.status();
            let answer = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CallError::Io(format!("Post {url:?}: reading the answer: {e}")))?
                .to_bytes();
            // Ready again once hyper saw the answer end (a `Connection:
            // close` answer leaves it closed: not kept).
            me.give_back(send);
            if status != hyper::StatusCode::OK {
                let message = match serde_json::from_slice::<ErrAnswer>(&answer) {
                    Ok(a) if !a.err.is_empty() => a.err,
                    _ => String::from_utf8_lossy(&answer).trim().to_string(),
                };
                return Err(CallError::Status {
                    method,
                    code: status.as_u16(),
                    message,
                });
            }
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_order_and_spec_forms() {
        let d = tempfile::tempdir().unwrap();
        let socks = d.path().join("run");
        let etc = d.path().join("etc");
        let lib = d.path().join("lib");
        for p in [&socks, &etc, &lib] {
            std::fs::create_dir_all(p).unwrap();
        }
        let disc = Discovery {
            sockets: socks.clone(),
            specs: vec![etc.clone(), lib.clone()],
        };
        assert_eq!(
            disc.find("p").unwrap_err(),
            "could not find plugin p in v1 plugin registry: plugin not found"
        );
        for bad in ["", "..", "a/b", "../../etc/x"] {
            assert!(disc
                .find(bad)
                .unwrap_err()
                .starts_with("invalid plugin name"));
        }
        std::fs::write(lib.join("p.spec"), "tcp://127.0.0.1:9000\n").unwrap();
        assert_eq!(
            format!("{:?}", disc.find("p").unwrap()),
            "tcp://127.0.0.1:9000"
        );
        std::fs::create_dir_all(etc.join("p")).unwrap();
        std::fs::write(
            etc.join("p").join("p.json"),
            r#"{"Name":"p","Addr":"tcp://127.0.0.1:9001","TLSConfig":{"InsecureSkipVerify":true}}"#,
        )
        .unwrap();
        assert_eq!(
            format!("{:?}", disc.find("p").unwrap()),
            "https://127.0.0.1:9001"
        );
        std::fs::write(etc.join("p.spec"), "127.0.0.1:9002").unwrap();
        assert!(disc.find("p").unwrap_err().ends_with("Unknown protocol"));
        std::fs::write(etc.join("p.spec"), "unix:///x/p.sock").unwrap();
        assert_eq!(format!("{:?}", disc.find("p").unwrap()), "unix:///x/p.sock");
        // A socket wins over every spec; a plain file named .sock does not.
        std::fs::write(socks.join("p.sock"), "").unwrap();
        assert_eq!(format!("{:?}", disc.find("p").unwrap()), "unix:///x/p.sock");
        std::fs::remove_file(socks.join("p.sock")).unwrap();
        std::fs::create_dir_all(socks.join("p")).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(socks.join("p").join("p.sock")).unwrap();
        assert_eq!(
            format!("{:?}", disc.find("p").unwrap()),
            format!("unix://{}", socks.join("p").join("p.sock").display())
        );
    }

    /// A plugin on a unix socket that keeps connections open (or closes
    /// each after `serve_one` answers): the number of connections it took.
    async fn keepalive_plugin(
        sock: &Path,
        close_after_each: bool,
    ) -> Arc<std::sync::atomic::AtomicUsize> {
        let l = tokio::net::UnixListener::bind(sock).unwrap();
        let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = conns.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"{\"Allow\":true}"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(!close_after_each)
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        conns
    }

    #[tokio::test]
    async fn connections_are_kept_alive_and_a_closed_one_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        for close in [false, true] {
            let sock = d.path().join(format!("p{close}.sock"));
            let conns = keepalive_plugin(&sock, close).await;
            let p = HttpPlugin::new(Endpoint::Unix(sock));
            for _ in 0..5 {
                let b = p
                    .call("AuthZPlugin.AuthZReq", Bytes::from_static(b"{}"))
                    .await;
                assert_eq!(b.unwrap(), Bytes::from_static(b"{\"Allow\":true}"));
            }
            let n = conns.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(n, if close { 5 } else { 1 }, "close={close}");
        }
    }
}
