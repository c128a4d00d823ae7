//! The real [`NetworkHost`]: bridges and veth pairs over rtnetlink, the
//! nftables table, host port reservations, records on disk.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_actors::network::{Endpoint, NetworkRecord, Peer, PortMapping};
use berth_actors::ports::{BoxFuture, NetworkHost};
use tracing::{debug, warn};

use super::driver::{Bridge, NetworkDriver, NoNetwork, Remote};
use super::firewall::{Firewall, NetRules, PortRules};
use super::overlay::Overlay;
use super::proxy;
use crate::sys::atomic::write_atomic;

/// Ephemeral host ports (dockerd's default range).
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

pub struct NetHost {
    /// `<data-root>/network/networks`
    pub records_dir: PathBuf,
    pub exec_root: PathBuf,
    /// The userland proxy binary (`userland-proxy: true`).
    pub proxy: Option<PathBuf>,
    pub bridge: Bridge,
    /// Networks of network plugins.
    pub remote: Remote,
    /// Global networks of the cluster (VXLAN).
    pub overlay: Overlay,
    pub firewall: Box<dyn Firewall>,
    /// Published host ports: (proto, host ip, port).
    ports: Mutex<BTreeSet<(String, String, u16)>>,
    /// The host can listen on IPv6: a port published without a host
    /// address is bound on `0.0.0.0` and `::` (dockerd's behaviour).
    v6: bool,
}

impl NetHost {
    pub fn new(
        records_dir: PathBuf,
        exec_root: PathBuf,
        proxy: Option<PathBuf>,
        bridge: Bridge,
        firewall: Box<dyn Firewall>,
        overlay: Overlay,
    ) -> NetHost {
        NetHost {
            records_dir,
            exec_root,
            proxy,
            remote: Remote::new(bridge.nl.clone()),
            overlay,
            bridge,
            firewall,
            ports: Mutex::new(BTreeSet::new()),
            v6: std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok(),
        }
    }

    /// The network's driver.
    fn driver(&self, rec: &NetworkRecord) -> &dyn NetworkDriver {
        if rec.is_bridge() {
            &self.bridge
        } else if rec.is_overlay() {
            &self.overlay
        } else if rec.is_remote() {
            &self.remote
        } else {
            &NoNetwork
        }
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.records_dir.join(format!("{id}.json"))
    }

    /// Whether a reservation of the same family covers `ip:port` (the
    /// unspecified address covers its whole family).
    fn port_taken(set: &BTreeSet<(String, String, u16)>, proto: &str, ip: &str, port: u16) -> bool {
        let v6 = ip.contains(':');
        let any = if v6 { "::" } else { "0.0.0.0" };
        set.iter().any(|(p, i, n)| {
            p == proto && *n == port && i.contains(':') == v6 && (i == ip || i == any || ip == any)
        })
    }

    /// Whether the host has the port bound by something else (an IPv6
    /// address tried as IPv6 only, as the proxy binds it).
    fn port_busy(proto: &str, ip: &str, port: u16) -> bool {
        use socket2::{Domain, Socket, Type};
        let addr: std::net::IpAddr = ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED.into());
        let addr = std::net::SocketAddr::new(addr, port);
        let ty = if proto == "udp" {
            Type::DGRAM
        } else {
            Type::STREAM
        };
        let Ok(s) = Socket::new(Domain::for_address(addr), ty, None) else {
            return true;
        };
        if addr.is_ipv6() && s.set_only_v6(true).is_err() {
            return true;
        }
        if proto != "udp" && s.set_reuse_address(true).is_err() {
            return true;
        }
        s.bind(&addr.into()).is_err()
    }

    /// Choose and reserve the host ports of an endpoint. A mapping without
    /// a host address is bound on `0.0.0.0` and, with `dual`, on `::` too,
    /// the same port on both.
    fn reserve(&self, want: &[PortMapping], dual: bool) -> Result<Vec<PortMapping>, String> {
        let mut set = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let mut got: Vec<PortMapping> = Vec::new();
        let fail = |set: &mut BTreeSet<(String, String, u16)>, got: &[PortMapping], msg: String| {
            for g in got {
                set.remove(&(g.proto.clone(), g.host_ip.clone(), g.host_port));
            }
            Err(msg)
        };
        for m in want {
            let ips: Vec<String> = match m.host_ip.as_str() {
                "" if dual => vec!["0.0.0.0".into(), "::".into()],
                "" => vec!["0.0.0.0".into()],
                ip => vec![ip.to_string()],
            };
            let candidates: Vec<u16> = if m.host_port == 0 {
                EPHEMERAL.collect()
            } else if m.host_port_end > m.host_port {
                (m.host_port..=m.host_port_end).collect()
            } else {
                vec![m.host_port]
            };
            let pick = candidates.iter().copied().find(|p| {
                ips.iter().all(|ip| {
                    !Self::port_taken(&set, &m.proto, ip, *p) && !Self::port_busy(&m.proto, ip, *p)
                })
            });
            let Some(port) = pick else {
                let shown = if m.host_port_end > m.host_port {
                    format!("{}-{}", m.host_port, m.host_port_end)
                } else {
                    m.host_port.to_string()
                };
                // The address that refused a single port (`::` when only
                // IPv6 has it bound), named as dockerd's port allocator does.
                let ip = match candidates.as_slice() {
                    [p] => ips
                        .iter()
                        .find(|ip| {
                            Self::port_taken(&set, &m.proto, ip, *p)
                                || Self::port_busy(&m.proto, ip, *p)
                        })
                        .unwrap_or(&ips[0]),
                    _ => &ips[0],
                };
                return fail(
                    &mut set,
                    &got,
                    format!("Bind for {ip}:{shown} failed: port is already allocated"),
                );
            };
            for ip in ips {
                set.insert((m.proto.clone(), ip.clone(), port));
                got.push(PortMapping {
                    proto: m.proto.clone(),
                    container_port: m.container_port,
                    host_ip: ip,
                    host_port: port,
                    host_port_end: 0,
                });
            }
        }
        Ok(got)
    }

    async fn start_proxies(&self, ports: &[PortMapping], ip: &str) -> Result<(), String> {
        let Some(bin) = &self.proxy else {
            return Ok(());
        };
        for (i, m) in ports.iter().enumerate() {
            if let Err(e) = proxy::start(bin, &self.exec_root, m, ip).await {
                self.stop_proxies(&ports[..i], ip);
                return Err(e);
            }
        }
        Ok(())
    }

    fn stop_proxies(&self, ports: &[PortMapping], ip: &str) {
        if self.proxy.is_some() {
            for m in ports {
                proxy::stop(&self.exec_root, m, ip);
            }
        }
    }

    fn unreserve(&self, ports: &[PortMapping]) {
        let mut set = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        for g in ports {
            set.remove(&(g.proto.clone(), g.host_ip.clone(), g.host_port));
        }
    }

    fn net_rules(rec: &NetworkRecord) -> Option<NetRules> {
        let subnet = rec.v4_pools().next()?.subnet.clone();
        Some(NetRules {
            bridge: rec.bridge.clone(),
            subnet,
            subnet6: rec.v6_pool().map(|p| p.subnet.clone()),
            masquerade: rec.masquerade,
            icc: rec.icc,
            internal: rec.internal,
        })
    }
}

fn key(rec: &NetworkRecord, ep: &Endpoint) -> String {
    format!("{}/{}", rec.id, ep.container)
}

/// The shared handle the NetworkActors hold.
#[derive(Clone)]
pub struct NetHostHandle(pub Arc<NetHost>);

impl NetworkHost for NetHostHandle {
    fn setup(&self, rec: &NetworkRecord) -> BoxFuture<Result<(), String>> {
        let (me, rec) = (self.0.clone(), rec.clone());
        Box::pin(async move {
            if rec.is_overlay() {
                return me.overlay.setup(&rec).await;
            }
            if !rec.is_bridge() {
                return Ok(());
            }
            me.driver(&rec).setup(&rec).await?;
            if let Some(r) = NetHost::net_rules(&rec) {
                me.firewall.set_network(&rec.id, r)?;
            }
            // Endpoints from before a restart: their ports stay reserved
            // and forwarded.
            for ep in rec.endpoints.values() {
                if ep.ports.is_empty() {
                    continue;
                }
                {
                    let mut set = me.ports.lock().unwrap_or_else(|e| e.into_inner());
                    for p in &ep.ports {
                        set.insert((p.proto.clone(), p.host_ip.clone(), p.host_port));
                    }
                }
                // Proxies that did not survive (a reboot of the host is
                // not survived by anything) are started again.
                if let Some(bin) = &me.proxy {
                    for p in &ep.ports {
                        if proxy::find(&me.exec_root, p, &ep.ip).is_empty() {
                            if let Err(e) = proxy::start(bin, &me.exec_root, p, &ep.ip).await {
                                warn!(network = %rec.name, port = p.host_port, "{e}");
                            }
                        }
                    }
                }
                me.firewall.set_ports(
                    &key(&rec, ep),
                    PortRules {
                        bridge: rec.bridge.clone(),
                        ip: ep.ip.clone(),
                        ip6: ep.ipv6.clone(),
                        ports: ep.ports.clone(),
                    },
                )?;
            }
            Ok(())
        })
    }

    fn teardown(&self, rec: &NetworkRecord) -> BoxFuture<Result<(), String>> {
        let (me, rec) = (self.0.clone(), rec.clone());
        Box::pin(async move {
            if rec.is_overlay() {
                return me.overlay.teardown(&rec).await;
            }
            if !rec.is_bridge() {
                return Ok(());
            }
            if let Err(e) = me.firewall.remove_network(&rec.id) {
                warn!(network = %rec.name, "{e}");
            }
            me.driver(&rec).teardown(&rec).await
        })
    }

    fn attach(
        &self,
        rec: &NetworkRecord,
        ep: &Endpoint,
    ) -> BoxFuture<Result<Vec<PortMapping>, String>> {
        let (me, rec, ep) = (self.0.clone(), rec.clone(), ep.clone());
        Box::pin(async move {
            // An IPv6 host address needs the proxy or an IPv6 container
            // address (the kernel cannot translate between families).
            if me.proxy.is_none() && ep.ipv6.is_empty() {
                if let Some(m) = ep.ports.iter().find(|m| m.host_ip.contains(':')) {
                    return Err(format!(
                        "cannot publish {}:{} to a container without an IPv6 address when userland-proxy is off",
                        m.host_ip, m.host_port
                    ));
                }
            }
            // `::` too when something can carry it: the proxy, or the
            // kernel to the container's own IPv6 address.
            let dual = me.v6 && (me.proxy.is_some() || !ep.ipv6.is_empty());
            let ports = me.reserve(&ep.ports, dual)?;
            let driver = me.driver(&rec);
            if let Err(e) = driver.attach(&rec, &ep).await {
                me.unreserve(&ports);
                return Err(e);
            }
            if let Err(e) = me.start_proxies(&ports, &ep.ip).await {
                me.unreserve(&ports);
                driver.detach(&rec, &ep).await;
                return Err(e);
            }
            if !ports.is_empty() {
                let r = me.firewall.set_ports(
                    &key(&rec, &ep),
                    PortRules {
                        bridge: rec.bridge.clone(),
                        ip: ep.ip.clone(),
                        ip6: ep.ipv6.clone(),
                        ports: ports.clone(),
                    },
                );
                if let Err(e) = r {
                    me.stop_proxies(&ports, &ep.ip);
                    me.unreserve(&ports);
                    let _ = me.firewall.remove_ports(&key(&rec, &ep));
                    driver.detach(&rec, &ep).await;
                    return Err(e);
                }
            }
            debug!(network = %rec.name, container = %ep.container, ip = %ep.ip, "endpoint attached");
            Ok(ports)
        })
    }

    fn detach(&self, rec: &NetworkRecord, ep: &Endpoint) -> BoxFuture<()> {
        let (me, rec, ep) = (self.0.clone(), rec.clone(), ep.clone());
        Box::pin(async move {
            if let Err(e) = me.firewall.remove_ports(&key(&rec, &ep)) {
                warn!(network = %rec.name, "{e}");
            }
            me.stop_proxies(&ep.ports, &ep.ip);
            me.unreserve(&ep.ports);
            me.driver(&rec).detach(&rec, &ep).await;
        })
    }

    fn peer_add(&self, rec: &NetworkRecord, peer: &Peer) -> BoxFuture<Result<(), String>> {
        let (me, rec, peer) = (self.0.clone(), rec.clone(), peer.clone());
        Box::pin(async move { me.overlay.peer_add(&rec, &peer).await })
    }

    fn peer_del(&self, rec: &NetworkRecord, peer: &Peer) -> BoxFuture<()> {
        let (me, rec, peer) = (self.0.clone(), rec.clone(), peer.clone());
        Box::pin(async move { me.overlay.peer_del(&rec, &peer).await })
    }

    fn save(&self, rec: &NetworkRecord) -> std::io::Result<()> {
        let b = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        write_atomic(&self.0.record_path(&rec.id), &b, 0o600)
    }

    fn delete(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.0.record_path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn host_routes(&self) -> Vec<String> {
        host_routes()
    }

    fn restored(&self) {
        if let Err(e) = self.0.firewall.ready() {
            warn!("writing the firewall: {e}");
        }
    }
}

/// The host's IPv4 routes (not the default route) from /proc/net/route.
pub fn host_routes() -> Vec<String> {
    let Ok(t) = std::fs::read_to_string("/proc/net/route") else {
        return vec![];
    };
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            let prefix = u32::from_be(mask).count_ones();
            Some(format!("{}/{prefix}", Ipv4Addr::from(dest.to_le_bytes())))
        })
        .collect()
}
