//! Networks on the host: the bridge driver over rtnetlink, network
//! namespaces, the nftables firewall, port publishing and the embedded DNS
//! server. The NetworkActors (actors crate) own IPAM and endpoints and
//! drive this through [`host::NetHost`].

pub mod create;
pub mod dns;
pub mod driver;
pub mod firewall;
pub mod host;
pub mod link;
pub mod netns;
pub mod overlay;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_actors::network::ipam::Cidr;
use berth_actors::network::{AutoPool, IpamPool, NetworkRecord, Networks, NETWORK_RECORD_VERSION};
use tracing::warn;

use crate::config::DaemonConfig;

/// The default bridge's interface when `bridge` is not set (dockerd's is
/// docker0; berth keeps clear of a dockerd on the same host).
pub const DEFAULT_BRIDGE: &str = "berth0";

/// Whether `exec_root` is the default one, as given or resolved
/// (`/var/run/berth` is `/run/berth` on Debian; berthd resolves its roots
/// after creating them, so the default exists whenever this is asked).
fn is_default_exec_root(exec_root: &Path) -> bool {
    let default = Path::new(crate::config::DEFAULT_EXEC_ROOT);
    exec_root == default || std::fs::canonicalize(default).is_ok_and(|d| d == exec_root)
}

fn exec_root_hash(exec_root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(exec_root.to_string_lossy().as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The default bridge's interface: `berth0` for the default exec-root,
/// `bt-<hash>` for any other (so berthds side by side never share one).
pub fn default_bridge_name(exec_root: &Path) -> String {
    if is_default_exec_root(exec_root) {
        return DEFAULT_BRIDGE.into();
    }
    format!("bt-{}", exec_root_hash(exec_root))
}

pub struct NetworkService {
    pub networks: Networks,
    pub host: Arc<host::NetHost>,
    pub dns: Arc<dns::Dns>,
    pub netns_dir: PathBuf,
}

impl NetworkService {
    /// The namespace file of a container.
    pub fn sandbox_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }
}

/// The nftables table of this berthd: `berth` for the default exec-root,
/// `berth-<hash>` for any other (so test daemons never share one).
pub fn table_name(exec_root: &Path) -> String {
    if is_default_exec_root(exec_root) {
        return "berth".into();
    }
    format!("berth-{}", exec_root_hash(exec_root))
}

/// dockerd's default address pools.
pub fn auto_pools(cfg: &DaemonConfig) -> Vec<AutoPool> {
    if !cfg.default_address_pools.is_empty() {
        return cfg
            .default_address_pools
            .iter()
            .map(|p| AutoPool {
                base: p.base.clone(),
                size: p.size.clamp(0, 32) as u8,
            })
            .collect();
    }
    let mut v: Vec<AutoPool> = (17..=31)
        .map(|b| AutoPool {
            base: format!("172.{b}.0.0/16"),
            size: 16,
        })
        .collect();
    v.push(AutoPool {
        base: "192.168.0.0/16".into(),
        size: 20,
    });
    v
}

/// The label an unreadable record's stand-in carries: the file and why.
pub const UNREADABLE_LABEL: &str = "berth.unreadable-record";

/// Every network record. An unreadable one (tampered, cut) is reported
/// and stands as a `null`-driver network `unreadable-<id12>` whose label
/// [`UNREADABLE_LABEL`] names the file and the error: listed, and removed
/// (with its file) by `docker network rm`.
pub fn load_records(dir: &Path) -> Vec<NetworkRecord> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let why = match std::fs::read(&p).map(|b| serde_json::from_slice::<NetworkRecord>(&b)) {
            Ok(Ok(r)) => {
                out.push(r);
                continue;
            }
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        let id = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !crate::ids::is_full_id(&id) {
            warn!(path = %p.display(), "network record is unreadable and not named by a network ID; skipped: {why}");
            continue;
        }
        warn!(path = %p.display(), "network record is unreadable: {why}; listed as unreadable-{}", &id[..12]);
        let mut labels = BTreeMap::new();
        labels.insert(
            UNREADABLE_LABEL.to_string(),
            format!("{}: {why}", p.display()),
        );
        let mut r = predefined(&format!("unreadable-{}", &id[..12]), "null");
        r.id = id;
        r.labels = labels;
        r.predefined = false;
        out.push(r);
    }
    out
}

fn predefined(name: &str, driver: &str) -> NetworkRecord {
    NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        id: crate::ids::new_id(),
        name: name.into(),
        driver: driver.into(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        internal: false,
        attachable: false,
        enable_ipv6: false,
        ipam_driver: "default".into(),
        ipam_options: Default::default(),
        pools: vec![],
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        bridge: String::new(),
        icc: true,
        masquerade: true,
        mtu: 0,
        predefined: true,
        endpoints: BTreeMap::new(),
        peers: Default::default(),
    }
}

/// The predefined networks (`bridge`, `host`, `none`) added to the records
/// and the default bridge brought in line with the configuration
/// (`bridge`, `bip`, `fixed-cidr`, `mtu`, `icc`, `ip-masq`).
pub fn with_predefined(
    mut recs: Vec<NetworkRecord>,
    cfg: &DaemonConfig,
    named_bridge: Option<(std::net::Ipv4Addr, u8)>,
) -> Result<Vec<NetworkRecord>, String> {
    for (name, driver) in [("host", "host"), ("none", "null")] {
        if !recs.iter().any(|r| r.name == name) {
            recs.push(predefined(name, driver));
        }
    }
    if cfg.bridge == "none" {
        // dockerd's `bridge: none`: no default bridge at all; containers
        // left on it get only their loopback.
        recs.retain(|r| r.name != "bridge");
        return Ok(recs);
    }
    let pos = match recs.iter().position(|r| r.name == "bridge") {
        Some(p) => p,
        None => {
            recs.push(predefined("bridge", "bridge"));
            recs.len() - 1
        }
    };
    let others: Vec<Cidr> = recs
        .iter()
        .filter(|r| r.name != "bridge")
        .flat_map(|r| r.pools.iter().filter_map(|p| Cidr::parse(&p.subnet)))
        .collect();
    let b = &mut recs[pos];
    b.bridge = if cfg.bridge.is_empty() {
        default_bridge_name(Path::new(&cfg.exec_root))
    } else {
        cfg.bridge.clone()
    };
    b.icc = cfg.icc;
    b.masquerade = cfg.ip_masq;
    b.mtu = if cfg.mtu > 0 { cfg.mtu as u32 } else { 0 };
    let mut opts = BTreeMap::new();
    opts.insert(
        "com.docker.network.bridge.default_bridge".into(),
        "true".into(),
    );
    opts.insert(
        "com.docker.network.bridge.enable_icc".into(),
        cfg.icc.to_string(),
    );
    opts.insert(
        "com.docker.network.bridge.enable_ip_masquerade".into(),
        cfg.ip_masq.to_string(),
    );
    opts.insert(
        "com.docker.network.bridge.host_binding_ipv4".into(),
        if cfg.ip.is_empty() {
            "0.0.0.0".into()
        } else {
            cfg.ip.clone()
        },
    );
    opts.insert("com.docker.network.bridge.name".into(), b.bridge.clone());
    opts.insert("com.docker.network.driver.mtu".into(), cfg.mtu.to_string());
    b.options = opts;
    let want: Option<IpamPool> = if !cfg.bridge.is_empty() {
        // `bridge` names a bridge the operator made: its address decides.
        let (ip, prefix) = named_bridge.ok_or_else(|| {
            format!(
                "bridge device with non default name {} must be created manually (with an IPv4 address)",
                cfg.bridge
            )
        })?;
        let c = Cidr { addr: ip, prefix };
        Some(IpamPool {
            subnet: c.canonical(),
            ip_range: cfg.fixed_cidr.clone(),
            gateway: ip.to_string(),
            aux: BTreeMap::new(),
            pool_id: String::new(),
        })
    } else if !cfg.bip.is_empty() {
        let c = Cidr::parse(&cfg.bip).ok_or_else(|| format!("invalid bip {}", cfg.bip))?;
        Some(IpamPool {
            subnet: c.canonical(),
            ip_range: cfg.fixed_cidr.clone(),
            gateway: c.addr.to_string(),
            aux: BTreeMap::new(),
            pool_id: String::new(),
        })
    } else if let Some(p) = b.pools.first() {
        let mut p = p.clone();
        p.ip_range = cfg.fixed_cidr.clone();
        Some(p)
    } else {
        None
    };
    let pool = match want {
        Some(p) => p,
        None => {
            let mut used = others;
            used.extend(host::host_routes().iter().filter_map(|r| Cidr::parse(r)));
            let c = auto_pools(cfg)
                .iter()
                .filter_map(|p| {
                    Cidr::parse(&p.base).map(|c| Cidr {
                        addr: c.addr,
                        prefix: p.size.max(c.prefix),
                    })
                })
                .find(|c| !used.iter().any(|u| u.overlaps(c)))
                .ok_or("no address pool is free for the default bridge; set bip")?;
            IpamPool {
                subnet: c.canonical(),
                ip_range: cfg.fixed_cidr.clone(),
                gateway: c.first_host().to_string(),
                aux: BTreeMap::new(),
                pool_id: String::new(),
            }
        }
    };
    if !cfg.default_gateway.is_empty() {
        b.options.insert(
            "com.docker.network.bridge.default_gateway".into(),
            cfg.default_gateway.clone(),
        );
    }
    b.pools = vec![pool];
    // `ipv6` with `fixed-cidr-v6`: the default bridge is dual-stack.
    b.enable_ipv6 = cfg.ipv6;
    if cfg.ipv6 {
        use berth_actors::network::ipam::Cidr6;
        let c = Cidr6::parse(&cfg.fixed_cidr_v6).ok_or_else(|| {
            "ipv6 needs fixed-cidr-v6 (the default bridge's IPv6 subnet)".to_string()
        })?;
        b.pools.push(IpamPool {
            subnet: c.canonical(),
            ip_range: String::new(),
            gateway: c.first_host().to_string(),
            aux: BTreeMap::new(),
            pool_id: String::new(),
        });
    }
    Ok(recs)
}
