//! berthd in a cluster (`cluster-store`, `cluster-advertise`): the checked
//! settings, this node's identity and the store, for the ClusterMembership
//! actor (`berth_actors::cluster`) and the overlay driver.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use berth_actors::cluster::{Cluster, ClusterInfo, Node};
use tokio::sync::watch;

use crate::config::DaemonConfig;
use crate::sys::etcd::{EtcdStore, StoreSettings};

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
    let store = EtcdStore::new(settings, Path::new(&cfg.data_root).join("cluster"));
    let me = Node {
        // The engine ID without dockerd's colons: a key component.
        id: engine_id.replace(':', ""),
        name: hostname.to_string(),
        addr: format!("{vtep}:{port}"),
    };
    let (tx, rx) = watch::channel(ClusterInfo::default());
    Ok(Some(Joined {
        cluster: Cluster {
            store: Arc::new(store),
            me,
            info: rx,
        },
        info: Arc::new(tx),
        vtep,
    }))
}
