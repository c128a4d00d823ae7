//! berthd in a cluster (`cluster-store`, `cluster-advertise`): the checked
//! settings, this node's identity and the store, for the ClusterMembership
//! actor (`berth_actors::cluster`) and the overlay driver.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use std::path::PathBuf;

use berth_actors::cluster::{Cluster, ClusterInfo, Node, LEASE_TTL};
use tokio::sync::watch;

use crate::config::DaemonConfig;

/// `cluster-store` and `cluster-store-opts`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreSettings {
    /// `host:port` of each etcd member.
    pub endpoints: Vec<String>,
    pub tls: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The lease TTL in seconds (`discovery.ttl`).
    pub ttl: i64,
}

impl StoreSettings {
    /// `etcd://h:p[,h:p]` or `etcd+tls://...`, with `kv.cacertfile`,
    /// `kv.certfile`, `kv.keyfile` and `discovery.ttl` options.
    pub fn parse(
        url: &str,
        opts: &std::collections::BTreeMap<String, String>,
    ) -> Result<StoreSettings, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("etcd+tls://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("etcd://") {
            (false, r)
        } else {
            let scheme = url.split("://").next().unwrap_or(url);
            return Err(format!(
                "unsupported cluster store {scheme:?}: berth supports etcd (etcd://host:port[,host:port] or etcd+tls://...)"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let mut endpoints = Vec::new();
        for e in rest.split(',') {
            let (h, p) = e
                .rsplit_once(':')
                .ok_or_else(|| format!("{e:?} is not host:port"))?;
            if h.is_empty() || p.parse::<u16>().is_err() {
                return Err(format!("{e:?} is not host:port"));
            }
            endpoints.push(e.to_string());
        }
        let mut s = StoreSettings {
            endpoints,
            tls,
            ttl: LEASE_TTL,
            ..Default::default()
        };
        for (k, v) in opts {
            match k.as_str() {
                "kv.cacertfile" => s.ca = Some(PathBuf::from(v)),
                "kv.certfile" => s.cert = Some(PathBuf::from(v)),
                "kv.keyfile" => s.key = Some(PathBuf::from(v)),
                "discovery.ttl" => {
                    s.ttl = v
                        .trim_end_matches('s')
                        .parse::<i64>()
                        .ok()
                        .filter(|t| (5..=3600).contains(t))
                        .ok_or_else(|| format!("discovery.ttl {v:?}: seconds between 5 and 3600"))?
                }
                "discovery.heartbeat" => {}
                _ => return Err(format!("unknown cluster-store-opts key {k:?}")),
            }
        }
        if s.cert.is_some() != s.key.is_some() {
            return Err("kv.certfile and kv.keyfile go together".into());
        }
        if !s.tls && (s.ca.is_some() || s.cert.is_some()) {
            return Err("kv.* certificate options need an etcd+tls:// store".into());
        }
        Ok(s)
    }

    pub fn describe(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "etcd+tls" } else { "etcd" },
            self.endpoints.join(",")
        )
    }
}

/// `cluster-advertise`: `<ip or interface>:<port>`, checked.
pub fn parse_advertise(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not <ip or interface>:<port>"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{s:?}: bad port"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || bare.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(format!(
            "{s:?}: an IPv4 address or an interface name is needed (the VXLAN underlay is IPv4)"
        ));
    }
    Ok((host.to_string(), port))
}

/// The configuration's cluster part, checked (without touching the host).
pub fn check(cfg: &DaemonConfig) -> Result<Option<StoreSettings>, (&'static str, String, String)> {
    if cfg.cluster_store.is_empty() {
        if !cfg.cluster_advertise.is_empty() {
            return Err((
                "cluster-advertise",
                cfg.cluster_advertise.clone(),
                "needs cluster-store".into(),
            ));
        }
        if !cfg.cluster_store_opts.is_empty() {
            return Err((
                "cluster-store-opts",
                format!("{:?}", cfg.cluster_store_opts),
                "needs cluster-store".into(),
            ));
        }
        return Ok(None);
    }
    let s = StoreSettings::parse(&cfg.cluster_store, &cfg.cluster_store_opts)
        .map_err(|e| ("cluster-store", cfg.cluster_store.clone(), e))?;
    if cfg.cluster_advertise.is_empty() {
        return Err((
            "cluster-advertise",
            String::new(),
            "is required with cluster-store (<ip or interface>:<port>)".into(),
        ));
    }
    parse_advertise(&cfg.cluster_advertise)
        .map_err(|e| ("cluster-advertise", cfg.cluster_advertise.clone(), e))?;
    Ok(Some(s))
}

/// The node's advertised address: an interface name is resolved to its
/// first IPv4 address.
pub async fn resolve_advertise(s: &str) -> Result<(Ipv4Addr, u16), String> {
    let (host, port) = parse_advertise(s)?;
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((ip, port));
    }
    let nl = crate::network::link::connect().map_err(|e| format!("netlink: {e}"))?;
    match crate::network::link::ipv4_of(&nl, &host).await? {
        Some((ip, _)) => Ok((ip, port)),
        None => Err(format!(
            "cluster-advertise {s:?}: interface {host} has no IPv4 address"
        )),
    }
}

/// What berthd starts with in a cluster.
pub struct Joined {
    pub cluster: Cluster,
    pub info: Arc<watch::Sender<ClusterInfo>>,
    pub vtep: Ipv4Addr,
}

pub async fn open(
    cfg: &DaemonConfig,
    engine_id: &str,
    hostname: &str,
) -> Result<Option<Joined>, String> {
    let Some(settings) = check(cfg).map_err(|(k, v, e)| format!("{k} {v:?}: {e}"))? else {
        return Ok(None);
    };
    let (vtep, port) = resolve_advertise(&cfg.cluster_advertise).await?;
    let store = make_store(settings, Path::new(&cfg.data_root).join("cluster"))?;
    let me = Node {
        // The engine ID without dockerd's colons: a key component.
        id: engine_id.replace(':', ""),
        name: hostname.to_string(),
        addr: format!("{vtep}:{port}"),
    };
    let (tx, rx) = watch::channel(ClusterInfo::default());
    Ok(Some(Joined {
        cluster: Cluster {
            store,
            me,
            info: rx,
        },
        info: Arc::new(tx),
        vtep,
    }))
}

#[cfg(feature = "cluster")]
fn make_store(
    s: StoreSettings,
    dir: PathBuf,
) -> Result<Arc<dyn berth_actors::cluster::ClusterStore>, String> {
    Ok(Arc::new(crate::sys::etcd::EtcdStore::new(s, dir)))
}

/// A berthd built without the `cluster` feature (the fuzz targets) has no
/// etcd client.
#[cfg(not(feature = "cluster"))]
fn make_store(
    _: StoreSettings,
    _: PathBuf,
) -> Result<Arc<dyn berth_actors::cluster::ClusterStore>, String> {
    Err("this berthd was built without cluster support (the `cluster` feature)".into())
}
