//! The embedded DNS server of user-defined networks, as a process of its
//! own: `berth-dns` (one per berthd, in its own session) outlives berthd like
//! the shims do, so container names resolve while berthd is down or being
//! upgraded.
//!
//! berthd writes what the server needs, the *view*, to
//! `<exec-root>/dns/view.json` (atomically, on every change of the
//! networks' read model and of the served containers): for each served
//! container its namespace file and upstream resolvers, for each
//! user-defined network its endpoints. berth-dns watches the directory
//! (inotify), binds UDP and TCP 127.0.0.11:53 inside each served
//! container's namespace (on a thread that enters it), answers names,
//! aliases, short IDs and `name.network` (A, AAAA, PTR) of the asker's
//! networks from the view, and forwards anything else, from the host's
//! namespace, to the container's resolvers.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_actors::network::{NetworkIndex, Networks};
use hickory_proto::op::{Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::netns;
use crate::sys::atomic::write_atomic;

pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
pub const VIEW_FILE: &str = "view.json";
const PID_FILE: &str = "berth-dns.pid";
const VIEW_VERSION: u32 = 1;

/// A container the server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub sandbox: String,
    pub upstreams: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewEndpoint {
    pub container: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub ip: String,
    #[serde(default)]
    pub ipv6: String,
    /// The container's links (`target:alias`): names it alone resolves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewNetwork {
    pub name: String,
    pub endpoints: Vec<ViewEndpoint>,
}

/// Everything the server answers from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub version: u32,
    pub clients: BTreeMap<String, Client>,
    /// User-defined networks, by ID.
    pub networks: BTreeMap<String, ViewNetwork>,
}

impl View {
    pub fn build(index: &NetworkIndex, clients: &BTreeMap<String, Client>) -> View {
        let networks = index
            .by_id
            .values()
            .filter(|n| n.user_defined() && n.connectable())
            .map(|n| {
                let mut endpoints: Vec<ViewEndpoint> = n
                    .endpoints
                    .values()
                    .map(|e| ViewEndpoint {
                        container: e.container.clone(),
                        name: e.name.clone(),
                        aliases: e.aliases.clone(),
                        ip: e.ip.clone(),
                        ipv6: e.ipv6.clone(),
                        links: e.links.clone(),
                    })
                    .collect();
                // An overlay network's endpoints on other nodes resolve too.
                endpoints.extend(n.peers.values().map(|p| ViewEndpoint {
                    container: p.container.clone(),
                    name: p.name.clone(),
                    aliases: p.aliases.clone(),
                    ip: p.ip.clone(),
                    ipv6: String::new(),
                    links: vec![],
                }));
                (
                    n.id.clone(),
                    ViewNetwork {
                        name: n.name.clone(),
                        endpoints,
                    },
                )
            })
            .collect();
        View {
            version: VIEW_VERSION,
            clients: clients.clone(),
            networks,
        }
    }

    /// The networks `container` has an endpoint on.
    fn networks_of<'a>(&'a self, container: &'a str) -> impl Iterator<Item = &'a ViewNetwork> {
        self.networks
            .values()
            .filter(move |n| n.endpoints.iter().any(|e| e.container == container))
    }

    /// Addresses of a container name, alias or short ID (optionally
    /// suffixed with the network's name) on the asker's networks.
    pub fn lookup(&self, asker: &str, qname: &str) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for net in self.networks_of(asker) {
            let suffix = format!(".{}", net.name.to_ascii_lowercase());
            let name = qname.strip_suffix(&suffix).unwrap_or(qname);
            // A link's alias names its target, for the linking container.
            let linked = net
                .endpoints
                .iter()
                .filter(|e| e.container == asker)
                .flat_map(|e| e.links.iter())
                .find_map(|l| {
                    let (target, alias) = berth_actors::container::parse_link(l).ok()?;
                    alias.eq_ignore_ascii_case(name).then_some(target)
                });
            let name = linked.as_deref().unwrap_or(name);
            for ep in &net.endpoints {
                let hit = ep.name.eq_ignore_ascii_case(name)
                    || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                    || (name.len() == 12 && ep.container.starts_with(name));
                if !hit {
                    continue;
                }
                if let Ok(ip) = ep.ip.parse::<Ipv4Addr>() {
                    if !v4.contains(&ip) {
                        v4.push(ip);
                    }
                }
                if let Ok(ip) = ep.ipv6.parse::<Ipv6Addr>() {
                    if !v6.contains(&ip) {
                        v6.push(ip);
                    }
                }
            }
        }
        (v4, v6)
    }

    /// `d.c.b.a.in-addr.arpa` of an endpoint on the asker's networks.
    pub fn reverse(&self, asker: &str, qname: &str) -> Option<Vec<String>> {
        let rev = qname.strip_suffix(".in-addr.arpa")?;
        let mut o: Vec<&str> = rev.split('.').collect();
        o.reverse();
        let ip: Ipv4Addr = o.join(".").parse().ok()?;
        let ip = ip.to_string();
        let names: Vec<String> = self
            .networks_of(asker)
            .flat_map(|n| {
                n.endpoints
                    .iter()
                    .filter(|e| e.ip == ip)
                    .map(|e| format!("{}.{}", e.name, n.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        (!names.is_empty()).then_some(names)
    }
}

// ---------------------------------------------------------------- berthd side

/// berthd's side: the served containers, the view file, the server process.
pub struct Dns {
    pub dir: PathBuf,
    pub networks: Networks,
    clients: Mutex<BTreeMap<String, Client>>,
    /// Nothing is written before the running containers were adopted (a
    /// restarted berthd must not make the server drop them meanwhile).
    ready: std::sync::atomic::AtomicBool,
    /// Serializes writes of the view.
    write: Mutex<()>,
}

impl Dns {
    pub fn new(dir: PathBuf, networks: Networks) -> Arc<Dns> {
        Arc::new(Dns {
            dir,
            networks,
            clients: Mutex::new(BTreeMap::new()),
            ready: std::sync::atomic::AtomicBool::new(false),
            write: Mutex::new(()),
        })
    }

    /// Serve the container whose namespace is `sandbox`.
    pub fn start(&self, container: &str, sandbox: &Path, upstreams: Vec<SocketAddr>) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                container.to_string(),
                Client {
                    sandbox: sandbox.display().to_string(),
                    upstreams,
                },
            );
        self.publish();
    }

    pub fn stop(&self, container: &str) {
        let removed = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container)
            .is_some();
        if removed {
            self.publish();
        }
    }

    /// Wait (up to `limit`) until the server has bound 127.0.0.11:53 in
    /// the namespace, so the container's first lookup is answered.
    pub fn wait_served(&self, sandbox: &Path, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            // The namespace's UDP table (read from a thread inside it):
            // 127.0.0.11:53 is "0B00007F:0035".
            let taken = netns::run_in(sandbox, || {
                std::fs::read_to_string("/proc/thread-self/net/udp")
                    .map(|t| t.contains("0B00007F:0035"))
                    .unwrap_or(false)
            })
            .unwrap_or(false);
            if taken {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The running containers were adopted: write the view from now on.
    pub fn set_ready(&self) {
        self.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        self.publish();
    }

    /// Write the view (atomically) for the server.
    pub fn publish(&self) {
        if !self.ready.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let _g = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let view = View::build(&self.networks.snapshot(), &clients);
        match serde_json::to_vec(&view) {
            Ok(b) => {
                if let Err(e) = write_atomic(&self.dir.join(VIEW_FILE), &b, 0o600) {
                    warn!("writing the DNS view: {e}");
                }
            }
            Err(e) => warn!("encoding the DNS view: {e}"),
        }
    }

    /// Rewrite the view whenever the networks' read model changes.
    pub fn follow(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        let mut rx = self.networks.index.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                me.publish();
            }
        })
    }

    /// The server's PID if it runs (its PID file names a live berth-dns
    /// working in our directory).
    pub fn server_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join(PID_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        (cwd == self.dir && !zombie).then_some(pid)
    }

    /// Start berth-dns unless it runs (it survives berthd: a restarted
    /// berthd keeps the one that serves).
    pub fn ensure_server(&self, bin: &Path) -> Result<(), String> {
        if self.server_pid().is_some() {
            return Ok(());
        }
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("berth-dns.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(&self.dir)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log);
        // SAFETY: only setsid between fork and exec (async-signal-safe).
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        // Reaped by a thread: berth-dns normally outlives berthd.
        std::thread::spawn(move || {
            let mut c = child;
            let _ = c.wait();
        });
        for _ in 0..100 {
            if self.server_pid().is_some() {
                info!("embedded DNS server started");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("berth-dns did not start".into())
    }

    /// Stop the server (berthd stops without live-restore).
    pub fn stop_server(&self) {
        if let Some(pid) = self.server_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
        let _ = std::fs::remove_file(self.dir.join(VIEW_FILE));
    }
}

/// The berth-dns binary: next to berthd, else on PATH.
pub fn binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-dns")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth-dns"))
}

// ---------------------------------------------------------- berth-dns side

type Shared = Arc<RwLock<Arc<View>>>;

/// berth-dns: serve from `dir` until SIGTERM.
pub async fn serve(dir: PathBuf) -> Result<(), String> {
    std::fs::write(dir.join(PID_FILE), std::process::id().to_string())
        .map_err(|e| format!("writing the pid file: {e}"))?;
    let view: Shared = Arc::new(RwLock::new(Arc::new(View::default())));
    let mut servers: HashMap<String, (String, Server<Asker>)> = HashMap::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    // inotify on the directory: the view is renamed into place.
    let d = dir.clone();
    std::thread::spawn(move || {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let Ok(ino) = Inotify::init(InitFlags::IN_CLOEXEC) else {
            return;
        };
        if ino
            .add_watch(
                &d,
                AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE,
            )
            .is_err()
        {
            return;
        }
        while let Ok(evs) = ino.read_events() {
            if evs
                .iter()
                .any(|e| e.name.as_deref() == Some(std::ffi::OsStr::new(VIEW_FILE)))
            {
                let _ = tx.try_send(());
            }
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        reload(&dir, &view, &mut servers);
        tokio::select! {
            _ = rx.recv() => {}
            // A missed event (or a namespace that was not ready) is
            // caught up within two seconds.
            _ = tick.tick() => {}
            _ = term.recv() => break,
        }
    }
    let _ = std::fs::remove_file(dir.join(PID_FILE));
    Ok(())
}

fn reload(dir: &Path, shared: &Shared, servers: &mut HashMap<String, (String, Server<Asker>)>) {
    let Ok(bytes) = std::fs::read(dir.join(VIEW_FILE)) else {
        return;
    };
    let view: View = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            warn!("unreadable DNS view: {e}");
            return;
        }
    };
    // Stop what is gone or moved (a dropped server aborts its tasks),
    // start what is new.
    servers.retain(|id, (sandbox, _)| view.clients.get(id).is_some_and(|c| c.sandbox == *sandbox));
    let view = Arc::new(view);
    *shared.write().unwrap_or_else(|e| e.into_inner()) = view.clone();
    for (id, c) in &view.clients {
        if servers.contains_key(id) {
            continue;
        }
        match bind(id, c, shared) {
            Ok(server) => {
                debug!(container = %id, "serving");
                servers.insert(id.clone(), (c.sandbox.clone(), server));
            }
            Err(e) => debug!(container = %id, "not served yet: {e}"),
        }
    }
}

/// Bind 127.0.0.11:53 (UDP and TCP) inside a container's namespace and
/// serve them with a hickory-server `Server` answering as that container.
fn bind(id: &str, c: &Client, shared: &Shared) -> Result<Server<Asker>, String> {
    let (udp, tcp) = netns::run_in(Path::new(&c.sandbox), || -> std::io::Result<_> {
        let u = std::net::UdpSocket::bind((DNS_ADDR, 53))?;
        let t = std::net::TcpListener::bind((DNS_ADDR, 53))?;
        u.set_nonblocking(true)?;
        t.set_nonblocking(true)?;
        Ok((u, t))
    })
    .map_err(|e| format!("entering the container's namespace: {e}"))?
    .map_err(|e| format!("binding: {e}"))?;
    let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| e.to_string())?;
    let mut server = Server::new(Asker {
        container: id.to_string(),
        upstreams: c.upstreams.clone(),
        view: shared.clone(),
    });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
    Ok(server)
}

/// A TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 16;

/// The server of one container: answers from the view as that container
/// (its networks only), forwards the rest to its resolvers.
struct Asker {
    container: String,
    upstreams: Vec<SocketAddr>,
    view: Shared,
}

/// Records of a local answer, or the upstream's reply, or nothing.
enum Answer {
    Local(Vec<Record>),
    Upstream(Message),
    Fail(ResponseCode),
}

impl Asker {
    fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Names of the asker's networks (A, AAAA, PTR); `None` when the view
    /// does not know the name (it is forwarded).
    fn local(&self, name: &Name, qtype: RecordType) -> Option<Vec<Record>> {
        local_records(&self.view(), &self.container, name, qtype)
    }

    async fn answer(&self, request: &Request) -> Answer {
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            return Answer::Fail(ResponseCode::FormErr);
        }
        let Ok(info) = request.request_info() else {
            return Answer::Fail(ResponseCode::FormErr);
        };
        let name = Name::from(info.query.name().clone());
        if let Some(records) = self.local(&name, info.query.query_type()) {
            return Answer::Local(records);
        }
        match self.forward(request.as_slice()).await {
            Some(m) => Answer::Upstream(m),
            None => Answer::Fail(ResponseCode::ServFail),
        }
    }

    /// The query as the client sent it, to each resolver in turn (from
    /// berth-dns's own namespace, the host's).
    async fn forward(&self, q: &[u8]) -> Option<Message> {
        for up in &self.upstreams {
            let bind: SocketAddr = if up.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(s) = tokio::net::UdpSocket::bind(bind).await else {
                continue;
            };
            if s.send_to(q, up).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            match tokio::time::timeout(FORWARD_TIMEOUT, s.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) if from == *up => match Message::from_vec(&buf[..n]) {
                    Ok(m) => return Some(m),
                    Err(e) => debug!(upstream = %up, "unreadable answer: {e}"),
                },
                _ => debug!(upstream = %up, "no answer from the resolver"),
            }
        }
        None
    }
}

#[async_trait::async_trait]
impl RequestHandler for Asker {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let mut md = Metadata::response_from_request(&request.metadata);
        md.recursion_available = true;
        let builder = MessageResponseBuilder::from_message_request(request);
        let answer = self.answer(request).await;
        let sent = match &answer {
            Answer::Local(records) => {
                md.authoritative = true;
                let none: [&Record; 0] = [];
                let msg = builder.build(md, records.iter(), none, none, none);
                response.send_response(msg).await
            }
            Answer::Upstream(m) => {
                md.response_code = m.metadata.response_code;
                md.authoritative = m.metadata.authoritative;
                md.authentic_data = m.metadata.authentic_data;
                let none: [&Record; 0] = [];
                let msg = builder.build(
                    md,
                    m.answers.iter(),
                    m.authorities.iter(),
                    none,
                    m.additionals.iter(),
                );
                response.send_response(msg).await
            }
            Answer::Fail(code) => {
                response
                    .send_response(builder.error_msg(&request.metadata, *code))
                    .await
            }
        };
        sent.unwrap_or_else(|e| {
            debug!("sending the answer: {e}");
            let mut md = Metadata::response_from_request(&request.metadata);
            md.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata: md,
                counts: Default::default(),
            })
        })
    }
}

/// Names of `asker`'s networks (A, AAAA, PTR); `None` when the view
/// does not know the name (it is forwarded).
pub fn local_records(
    view: &View,
    asker: &str,
    name: &Name,
    qtype: RecordType,
) -> Option<Vec<Record>> {
    let qname = name.to_ascii().to_ascii_lowercase();
    let qname = qname.trim_end_matches('.');
    match qtype {
        RecordType::A | RecordType::AAAA => {
            let (v4, v6) = view.lookup(asker, qname);
            if v4.is_empty() && v6.is_empty() {
                return None;
            }
            Some(if qtype == RecordType::A {
                v4.into_iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(ip))))
                    .collect()
            } else {
                v6.into_iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::AAAA(AAAA(ip))))
                    .collect()
            })
        }
        RecordType::PTR => view.reverse(asker, qname).map(|names| {
            names
                .into_iter()
                .filter_map(|n| Name::from_str(&format!("{n}.")).ok())
                .map(|n| Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(n))))
                .collect()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_scoped_to_the_askers_networks() {
        let ep = |c: &str, n: &str, ip: &str| ViewEndpoint {
            container: format!("{c:0<64}"),
            name: n.into(),
            aliases: vec![format!("{n}-alias")],
            ip: ip.into(),
            ipv6: String::new(),
            links: vec![],
        };
        let mut v = View::default();
        v.networks.insert(
            "n1".into(),
            ViewNetwork {
                name: "front".into(),
                endpoints: vec![ep("a", "web", "10.0.0.2"), ep("b", "db", "10.0.0.3")],
            },
        );
        v.networks.insert(
            "n2".into(),
            ViewNetwork {
                name: "back".into(),
                endpoints: vec![ep("c", "secret", "10.1.0.2")],
            },
        );
        let a = format!("{:0<64}", "a");
        assert_eq!(
            v.lookup(&a, "db").0,
            vec!["10.0.0.3".parse::<Ipv4Addr>().unwrap()]
        );
        assert_eq!(v.lookup(&a, "db-alias.front").0.len(), 1);
        assert_eq!(v.lookup(&a, &format!("{:0<12}", "b")).0.len(), 1);
        assert!(
            v.lookup(&a, "secret").0.is_empty(),
            "another network's name"
        );
        assert_eq!(
            v.reverse(&a, "3.0.0.10.in-addr.arpa"),
            Some(vec!["db.front".to_string()])
        );
        // A link's alias resolves for the linking container only, in
        // dockerd's stored form too.
        let front = v.networks.get_mut("n1").unwrap();
        front.endpoints[0].links = vec!["db:database".into(), "/db:/web/store".into()];
        assert_eq!(v.lookup(&a, "database").0.len(), 1);
        assert_eq!(v.lookup(&a, "store.front").0.len(), 1);
        let b = format!("{:0<64}", "b");
        assert!(
            v.lookup(&b, "database").0.is_empty(),
            "another container's link"
        );
    }

    fn query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = id;
        m.metadata.recursion_desired = true;
        m.add_query(hickory_proto::op::Query::query(
            Name::from_str(name).unwrap(),
            qtype,
        ));
        m.to_vec().unwrap()
    }

    /// The hickory-server side over real sockets (in this namespace): a
    /// name of the asker's network is answered from the view over UDP and
    /// over TCP (several queries on one connection), another network's
    /// name and an outside name are forwarded to the container's resolver
    /// (a test one here), whose answer and NXDOMAIN come back as they were.
    #[tokio::test]
    async fn answers_over_udp_and_tcp_and_forwards_the_rest() {
        // The resolver: 192.0.2.7 for `outside.test.`, NXDOMAIN otherwise.
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = up.recv_from(&mut buf).await {
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.add_query(q.queries[0].clone());
                if q.queries[0].name().to_ascii() == "outside.test." {
                    r.add_answer(Record::from_rdata(
                        q.queries[0].name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
                    ));
                } else {
                    r.metadata.response_code = ResponseCode::NXDomain;
                }
                let _ = up.send_to(&r.to_vec().unwrap(), peer).await;
            }
        });
        let asker = format!("{:0<64}", "a");
        let mut v = View::default();
        for (id, net, name, ip) in [
            ("n1", "front", "web", "10.0.0.2"),
            ("n1", "front", "me", "10.0.0.9"),
            ("n2", "back", "secret", "10.1.0.2"),
        ] {
            let container = if name == "me" {
                asker.clone()
            } else {
                format!("{name:0<64}")
            };
            v.networks
                .entry(id.into())
                .or_insert_with(|| ViewNetwork {
                    name: net.into(),
                    endpoints: vec![],
                })
                .endpoints
                .push(ViewEndpoint {
                    container,
                    name: name.into(),
                    aliases: vec![],
                    ip: ip.into(),
                    ipv6: String::new(),
                    links: vec![],
                });
        }
        let shared: Shared = Arc::new(RwLock::new(Arc::new(v)));
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (ua, ta) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let mut server = Server::new(Asker {
            container: asker,
            upstreams: vec![up_addr],
            view: shared,
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);

        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ask = async |name: &str, qtype| {
            c.send_to(&query(name, qtype, 7), ua).await.unwrap();
            let mut buf = [0u8; 4096];
            let (n, _) = c.recv_from(&mut buf).await.unwrap();
            Message::from_vec(&buf[..n]).unwrap()
        };
        let r = ask("web.", RecordType::A).await;
        assert_eq!(r.metadata.id, 7);
        assert!(r.metadata.authoritative && r.metadata.recursion_available);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(&r.answers[0].data, &RData::A(A(Ipv4Addr::new(10, 0, 0, 2))));
        let r = ask("2.0.0.10.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(r.answers[0].data.to_string(), "web.front.");
        let r = ask("outside.test.", RecordType::A).await;
        assert!(!r.metadata.authoritative);
        assert_eq!(
            &r.answers[0].data,
            &RData::A(A(Ipv4Addr::new(192, 0, 2, 7)))
        );
        let r = ask("secret.", RecordType::A).await;
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::NXDomain,
            "not the asker's network"
        );
        assert!(r.answers.is_empty());

        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut t = tokio::net::TcpStream::connect(ta).await.unwrap();
        for id in 1..=3u16 {
            let q = query("web.front.", RecordType::A, id);
            t.write_u16(q.len() as u16).await.unwrap();
            t.write_all(&q).await.unwrap();
            let n = t.read_u16().await.unwrap();
            let mut buf = vec![0u8; n as usize];
            t.read_exact(&mut buf).await.unwrap();
            let r = Message::from_vec(&buf).unwrap();
            assert_eq!((r.metadata.id, r.answers.len()), (id, 1));
        }
        drop(server);
    }
}
