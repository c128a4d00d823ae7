//! Network drivers: what a network is on the host. `bridge` (a Linux
//! bridge, veth pairs into the containers' namespaces, over rtnetlink);
//! `host` and `null` have nothing to set up (their containers use the
//! host's namespace or one with only loopback).

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::pin::Pin;

use berth_actors::network::ipam::{Cidr, Cidr6};
use berth_actors::network::{Endpoint, NetworkRecord};
use rtnetlink::Handle;
use tracing::warn;

use super::{link, netns};

pub type DriverFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait NetworkDriver: Send + Sync {
    /// Make the host match the network; idempotent, keeps what exists.
    fn setup<'a>(&'a self, rec: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>>;
    /// Remove the network from the host.
    fn teardown<'a>(&'a self, rec: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>>;
    /// Plumb an endpoint into its sandbox.
    fn attach<'a>(
        &'a self,
        rec: &'a NetworkRecord,
        ep: &'a Endpoint,
    ) -> DriverFuture<'a, Result<(), String>>;
    /// Undo `attach` (best effort).
    fn detach<'a>(&'a self, rec: &'a NetworkRecord, ep: &'a Endpoint) -> DriverFuture<'a, ()>;
}

/// `host` and `null`: nothing on the host belongs to the network.
pub struct NoNetwork;

impl NetworkDriver for NoNetwork {
    fn setup<'a>(&'a self, _: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn teardown<'a>(&'a self, _: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn attach<'a>(
        &'a self,
        rec: &'a NetworkRecord,
        _: &'a Endpoint,
    ) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async move {
            Err(format!(
                "containers cannot be connected to the {} network",
                rec.name
            ))
        })
    }
    fn detach<'a>(&'a self, _: &'a NetworkRecord, _: &'a Endpoint) -> DriverFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The bridge driver.
pub struct Bridge {
    pub nl: Handle,
    /// One netlink conversation at a time: the kernel refuses a second
    /// dump on a socket while one runs (EBUSY).
    nl_lock: tokio::sync::Mutex<()>,
    /// `ip-forward`: IPv6 forwarding is turned on with the first IPv6 bridge.
    pub ip_forward: bool,
    /// Without the userland proxy, published ports answer on 127.0.0.1
    /// through the bridge (`route_localnet`).
    pub route_localnet: bool,
}

impl Bridge {
    pub fn new(nl: Handle, ip_forward: bool, route_localnet: bool) -> Bridge {
        Bridge {
            nl,
            nl_lock: tokio::sync::Mutex::new(()),
            ip_forward,
            route_localnet,
        }
    }

    /// Delete an interface (a bridge berthd made) by name.
    pub async fn delete_link(&self, name: &str) -> Result<(), String> {
        let _g = self.nl_lock.lock().await;
        link::delete(&self.nl, name).await
    }
}

impl NetworkDriver for Bridge {
    fn setup<'a>(&'a self, rec: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let pool = rec
                .v4_pools()
                .next()
                .ok_or_else(|| format!("network {} has no subnet", rec.name))?;
            let c =
                Cidr::parse(&pool.subnet).ok_or_else(|| format!("bad subnet {}", pool.subnet))?;
            let gw: Ipv4Addr = pool
                .gateway
                .parse()
                .map_err(|_| format!("bad gateway {}", pool.gateway))?;
            {
                let _g = self.nl_lock.lock().await;
                let idx = link::ensure_bridge(&self.nl, &rec.bridge, gw, c.prefix, rec.mtu).await?;
                // Ports no endpoint names: a connect whose actor was killed
                // between plumbing and saving the endpoint.
                let keep: Vec<String> = rec
                    .endpoints
                    .values()
                    .map(|e| e.host_ifname.clone())
                    .collect();
                for port in link::ports_of(&self.nl, idx).await {
                    if port.starts_with("vb") && !keep.contains(&port) {
                        warn!(network = %rec.name, %port, "removing a veth no endpoint names");
                        let _ = link::delete(&self.nl, &port).await;
                    }
                }
                if let Some(p6) = rec.v6_pool() {
                    let c6 = Cidr6::parse(&p6.subnet)
                        .ok_or_else(|| format!("bad subnet {}", p6.subnet))?;
                    let gw6: std::net::Ipv6Addr = p6
                        .gateway
                        .parse()
                        .map_err(|_| format!("bad gateway {}", p6.gateway))?;
                    link::add_v6(&self.nl, idx, gw6, c6.prefix).await?;
                    if self.ip_forward {
                        let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1");
                    }
                }
            }
            if self.route_localnet {
                let _ = std::fs::write(
                    format!("/proc/sys/net/ipv4/conf/{}/route_localnet", rec.bridge),
                    "1",
                );
            }
            if !rec.icc {
                // Traffic between ports of a bridge reaches the inet forward
                // hook only through br_netfilter.
                let p = "/proc/sys/net/bridge/bridge-nf-call-iptables";
                if std::fs::write(p, "1").is_err() {
                    warn!(network = %rec.name, "icc is off but br_netfilter is not loaded: containers of the bridge can still reach each other");
                }
            }
            Ok(())
        })
    }

    fn teardown<'a>(&'a self, rec: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(self.delete_link(&rec.bridge))
    }

    fn attach<'a>(
        &'a self,
        rec: &'a NetworkRecord,
        ep: &'a Endpoint,
    ) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let r = self.plumb(rec, ep).await;
            if r.is_err() {
                let _ = self.delete_link(&ep.host_ifname).await;
            }
            r
        })
    }

    fn detach<'a>(&'a self, rec: &'a NetworkRecord, ep: &'a Endpoint) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.delete_link(&ep.host_ifname).await {
                warn!(network = %rec.name, "{e}");
            }
        })
    }
}

impl Bridge {
    /// The veth pair (peer created inside the namespace), then address,
    /// MAC, up and routes on a thread inside the namespace.
    async fn plumb(&self, rec: &NetworkRecord, ep: &Endpoint) -> Result<(), String> {
        let ns = std::fs::File::open(&ep.sandbox)
            .map_err(|e| format!("opening the container's namespace: {e}"))?;
        {
            let _g = self.nl_lock.lock().await;
            let bridge = link::index_of(&self.nl, &rec.bridge)
                .await?
                .ok_or_else(|| {
                    format!(
                        "the bridge {} of network {} is missing",
                        rec.bridge, rec.name
                    )
                })?;
            link::create_veth(&self.nl, &ep.host_ifname, &ep.ifname, &ns, bridge, rec.mtu).await?;
        }
        // The first network gives the default route: via the bridge, or
        // the default bridge's `default-gateway`.
        let gw: Option<Ipv4Addr> = if ep.ifname == "eth0" && !rec.internal {
            rec.options
                .get("com.docker.network.bridge.default_gateway")
                .and_then(|g| g.parse().ok())
                .or_else(|| ep.gateway.parse().ok())
        } else {
            None
        };
        configure(ep, gw).await
    }
}

/// Inside the endpoint's sandbox (on a thread there): its interface's MAC,
/// addresses and up, and with `gw` the default routes (IPv4, and IPv6 via
/// the endpoint's IPv6 gateway).
async fn configure(ep: &Endpoint, gw: Option<Ipv4Addr>) -> Result<(), String> {
    let ip: Ipv4Addr = ep
        .ip
        .parse()
        .map_err(|_| format!("bad address {}", ep.ip))?;
    let (ifname, mac, prefix) = (ep.ifname.clone(), link::parse_mac(&ep.mac), ep.prefix);
    let v6 = ep.ipv6.parse().ok().map(|ip6| link::V6 {
        ip: ip6,
        prefix: ep.prefix6,
        gateway: if gw.is_some() {
            ep.gateway6.parse().ok()
        } else {
            None
        },
    });
    let sandbox = PathBuf::from(&ep.sandbox);
    tokio::task::spawn_blocking(move || {
        netns::run_in(&sandbox, move || {
            link::configure_inside(Some(&ifname), mac, ip, prefix, gw, v6)
        })
        .map_err(|e| format!("entering the container's namespace: {e}"))?
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A network plugin's network: the plugin made the endpoint's interface in
/// the host's namespace (its `Join` named it); it is moved into the
/// container's namespace under the endpoint's name (`eth0`...), given the
/// endpoint's MAC and address, and the plugin's gateway as the default
/// route of the first network.
pub struct Remote {
    pub nl: Handle,
    nl_lock: tokio::sync::Mutex<()>,
}

impl Remote {
    pub fn new(nl: Handle) -> Remote {
        Remote {
            nl,
            nl_lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl NetworkDriver for Remote {
    fn setup<'a>(&'a self, _: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn teardown<'a>(&'a self, _: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn attach<'a>(
        &'a self,
        rec: &'a NetworkRecord,
        ep: &'a Endpoint,
    ) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let ns = std::fs::File::open(&ep.sandbox)
                .map_err(|e| format!("opening the container's namespace: {e}"))?;
            {
                let _g = self.nl_lock.lock().await;
                link::move_into(&self.nl, &ep.host_ifname, &ns, &ep.ifname)
                    .await
                    .map_err(|e| format!("network {} (plugin {}): {e}", rec.name, rec.driver))?;
            }
            let gw: Option<Ipv4Addr> = if ep.ifname == "eth0" && !rec.internal {
                ep.gateway.parse().ok()
            } else {
                None
            };
            configure(ep, gw).await
        })
    }

    /// The interface goes with the endpoint: deleted inside the container
    /// (its veth peer with it); the plugin's `DeleteEndpoint` follows.
    fn detach<'a>(&'a self, rec: &'a NetworkRecord, ep: &'a Endpoint) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            let sandbox = PathBuf::from(&ep.sandbox);
            if !netns::exists(&sandbox) {
                return;
            }
            let ifname = ep.ifname.clone();
            let r = tokio::task::spawn_blocking(move || {
                netns::run_in(&sandbox, move || link::delete_inside(&ifname))
                    .map_err(|e| e.to_string())?
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            if let Err(e) = r {
                warn!(network = %rec.name, "removing {} from the container: {e}", ep.ifname);
            }
        })
    }
}
