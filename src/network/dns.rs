//! The embedded DNS server of user-defined networks: a UDP and a TCP socket
//! on 127.0.0.11:53 inside each such container's network namespace (held by
//! berthd, opened on a thread in the namespace). It answers the names,
//! aliases and short IDs of the containers on the asking container's
//! networks (A, PTR; AAAA is empty) from the networks' read model, and
//! forwards anything else, from berthd's namespace, to the container's
//! resolvers (`--dns`, `dns`, else the host's).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_actors::network::Networks;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tracing::debug;

use super::netns;

pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Dns {
    pub networks: Networks,
    servers: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

struct Server {
    container: String,
    upstreams: Vec<SocketAddr>,
    networks: Networks,
}

impl Dns {
    pub fn new(networks: Networks) -> Arc<Dns> {
        Arc::new(Dns {
            networks,
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// Serve the container whose namespace is `sandbox` (replacing a
    /// server it had).
    pub fn start(
        &self,
        container: &str,
        sandbox: &Path,
        upstreams: Vec<SocketAddr>,
    ) -> Result<(), String> {
        self.stop(container);
        let (udp, tcp) = netns::run_in(sandbox, || -> std::io::Result<_> {
            let u = std::net::UdpSocket::bind((DNS_ADDR, 53))?;
            let t = std::net::TcpListener::bind((DNS_ADDR, 53))?;
            u.set_nonblocking(true)?;
            t.set_nonblocking(true)?;
            Ok((u, t))
        })
        .map_err(|e| format!("entering the container's namespace: {e}"))?
        .map_err(|e| format!("binding the embedded DNS server: {e}"))?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| e.to_string())?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| e.to_string())?;
        let srv = Arc::new(Server {
            container: container.to_string(),
            upstreams,
            networks: self.networks.clone(),
        });
        let s1 = srv.clone();
        let udp_task = tokio::spawn(async move {
            let udp = Arc::new(udp);
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                let q = buf[..n].to_vec();
                let (s, u) = (s1.clone(), udp.clone());
                tokio::spawn(async move {
                    if let Some(r) = s.answer(&q).await {
                        let _ = u.send_to(&r, peer).await;
                    }
                });
            }
        });
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = tcp.accept().await else {
                    return;
                };
                let s = srv.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok(len) = c.read_u16().await else { return };
                        let mut q = vec![0u8; len as usize];
                        if c.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        let Some(r) = s.answer(&q).await else { return };
                        if c.write_u16(r.len() as u16).await.is_err()
                            || c.write_all(&r).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_string(), vec![udp_task, tcp_task]);
        Ok(())
    }

    pub fn stop(&self, container: &str) {
        if let Some(tasks) = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container)
        {
            for t in tasks {
                t.abort();
            }
        }
    }
}

impl Server {
    /// The answer to one query, or `None` for garbage.
    async fn answer(&self, q: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(q).ok()?;
        if req.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        if req.metadata.op_code != OpCode::Query || req.queries.len() != 1 {
            resp.metadata.response_code = ResponseCode::FormErr;
            return resp.to_vec().ok();
        }
        let query = req.queries[0].clone();
        resp.add_query(query.clone());
        let qname = query.name().to_ascii().to_ascii_lowercase();
        let qname = qname.trim_end_matches('.');
        match query.query_type() {
            RecordType::A | RecordType::AAAA => {
                let (v4, v6) = self.lookup(qname);
                if !v4.is_empty() || !v6.is_empty() {
                    resp.metadata.authoritative = true;
                    if query.query_type() == RecordType::A {
                        for ip in v4 {
                            resp.add_answer(Record::from_rdata(
                                query.name().clone(),
                                TTL,
                                RData::A(A(ip)),
                            ));
                        }
                    } else {
                        for ip in v6 {
                            resp.add_answer(Record::from_rdata(
                                query.name().clone(),
                                TTL,
                                RData::AAAA(AAAA(ip)),
                            ));
                        }
                    }
                    return resp.to_vec().ok();
                }
            }
            RecordType::PTR => {
                if let Some(names) = self.reverse(qname) {
                    resp.metadata.authoritative = true;
                    for n in names {
                        if let Ok(name) = Name::from_str(&format!("{n}.")) {
                            resp.add_answer(Record::from_rdata(
                                query.name().clone(),
                                TTL,
                                RData::PTR(PTR(name)),
                            ));
                        }
                    }
                    return resp.to_vec().ok();
                }
            }
            _ => {}
        }
        match self.forward(q).await {
            Some(r) => Some(r),
            None => {
                resp.metadata.response_code = ResponseCode::ServFail;
                resp.to_vec().ok()
            }
        }
    }

    /// Addresses of a container name, alias or short ID (optionally
    /// suffixed with the network's name) on the asker's networks.
    fn lookup(&self, qname: &str) -> (Vec<Ipv4Addr>, Vec<std::net::Ipv6Addr>) {
        let snap = self.networks.snapshot();
        let mut out = Vec::new();
        let mut out6 = Vec::new();
        for net in snap
            .of_container(&self.container)
            .filter(|n| n.user_defined())
        {
            let suffix = format!(".{}", net.name.to_ascii_lowercase());
            let name = qname.strip_suffix(&suffix).unwrap_or(qname);
            for ep in net.endpoints.values() {
                let hit = ep.name.eq_ignore_ascii_case(name)
                    || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                    || (name.len() == 12 && ep.container.starts_with(name));
                if hit {
                    if let Ok(ip) = ep.ip.parse::<Ipv4Addr>() {
                        if !out.contains(&ip) {
                            out.push(ip);
                        }
                    }
                    if let Ok(ip) = ep.ipv6.parse::<std::net::Ipv6Addr>() {
                        if !out6.contains(&ip) {
                            out6.push(ip);
                        }
                    }
                }
            }
        }
        (out, out6)
    }

    /// `d.c.b.a.in-addr.arpa` of an endpoint on the asker's networks.
    fn reverse(&self, qname: &str) -> Option<Vec<String>> {
        let rev = qname.strip_suffix(".in-addr.arpa")?;
        let mut o: Vec<&str> = rev.split('.').collect();
        o.reverse();
        let ip: Ipv4Addr = o.join(".").parse().ok()?;
        let ip = ip.to_string();
        let snap = self.networks.snapshot();
        let names: Vec<String> = snap
            .of_container(&self.container)
            .filter(|n| n.user_defined())
            .flat_map(|n| {
                n.endpoints
                    .values()
                    .filter(|e| e.ip == ip)
                    .map(|e| format!("{}.{}", e.name, n.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        (!names.is_empty()).then_some(names)
    }

    async fn forward(&self, q: &[u8]) -> Option<Vec<u8>> {
        for up in &self.upstreams {
            let bind: SocketAddr = if up.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(s) = tokio::net::UdpSocket::bind(bind).await else {
                continue;
            };
            if s.send_to(q, up).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            match tokio::time::timeout(FORWARD_TIMEOUT, s.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) if from == *up => return Some(buf[..n].to_vec()),
                _ => debug!(upstream = %up, "no answer from the resolver"),
            }
        }
        None
    }
}
