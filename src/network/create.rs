//! `POST /networks/create`: the request checked with dockerd's messages and
//! turned into a record (pool allocation and overlap checks happen in the
//! NetworkSupervisor, which serializes creations).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_actors::network::ipam::Cidr;
use berth_actors::network::{IpamPool, NetworkError, NetworkRecord, NETWORK_RECORD_VERSION};
use serde_json::Value;

use crate::config::DaemonConfig;

fn invalid(msg: String) -> NetworkError {
    NetworkError::Invalid(format!("invalid network config:\n{msg}"))
}

fn strings(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn ipv4(s: &str, what: &str) -> Result<Ipv4Addr, NetworkError> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        invalid(format!(
            "invalid {what} address {s}: it must be an IPv4 address"
        ))
    })
}

/// An IPv6 pool of the request (IPv6 must be enabled).
fn v6_pool(c: &Value, s: &str, enabled: bool) -> Result<IpamPool, NetworkError> {
    use berth_actors::network::ipam::Cidr6;
    if !enabled {
        return Err(invalid(format!(
            "IPv6 subnet {s} given but IPv6 is not enabled (--ipv6)"
        )));
    }
    let subnet = Cidr6::parse(s)
        .ok_or_else(|| invalid(format!("invalid subnet {s}: invalid CIDR address: {s}")))?;
    if subnet.prefix > 124 {
        return Err(invalid(format!("subnet {s} is too small: at most /124")));
    }
    let gw = c["Gateway"].as_str().unwrap_or("");
    let gateway = if gw.is_empty() {
        subnet.first_host()
    } else {
        let g: std::net::Ipv6Addr = gw
            .parse()
            .map_err(|_| invalid(format!("invalid gateway address {gw}")))?;
        if !subnet.contains(g) {
            return Err(invalid(format!(
                "no matching subnet for gateway {gw}: it is not in {s}"
            )));
        }
        g
    };
    let range = c["IPRange"].as_str().unwrap_or("");
    if !range.is_empty() {
        let r = Cidr6::parse(range).ok_or_else(|| {
            invalid(format!(
                "invalid ip-range {range}: invalid CIDR address: {range}"
            ))
        })?;
        if r.prefix < subnet.prefix || !subnet.contains(r.addr) {
            return Err(invalid(format!(
                "invalid ip-range {range}: it must be within subnet {s}"
            )));
        }
    }
    Ok(IpamPool {
        subnet: subnet.canonical(),
        ip_range: range.to_string(),
        gateway: gateway.to_string(),
        aux: BTreeMap::new(),
        pool_id: String::new(),
    })
}

/// Check a create request and build the record.
pub fn record(body: &Value, cfg: &DaemonConfig) -> Result<NetworkRecord, NetworkError> {
    let name = body["Name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(NetworkError::Invalid("network name is required".into()));
    }
    // As dockerd: any name that is not blank (`my net` too). A `/` would
    // make it unreachable through `/networks/{id}`; control characters
    // would break the listings.
    if name.trim().is_empty() {
        return Err(NetworkError::Invalid(format!("invalid name: {name}")));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(NetworkError::Invalid(format!(
            "invalid network name {name:?}: '/' and control characters are not allowed"
        )));
    }
    if ["bridge", "host", "none"].contains(&name.as_str()) {
        return Err(NetworkError::Forbidden(format!(
            "{name} is a pre-defined network and cannot be created"
        )));
    }
    let driver = match body["Driver"].as_str().unwrap_or("") {
        "" | "bridge" => "bridge".to_string(),
        d @ ("host" | "null") => {
            return Err(NetworkError::Forbidden(format!(
                "only one instance of \"{d}\" network is allowed"
            )))
        }
        // A network plugin's (the supervisor asks it).
        d => d.to_string(),
    };
    let ipv6 = body["EnableIPv6"].as_bool() == Some(true);
    let ipam_driver = match body["IPAM"]["Driver"].as_str().unwrap_or("") {
        "" => "default",
        d => d,
    };
    // An IPAM plugin gives the gateway unless one is asked for.
    let plugin_ipam = berth_actors::network::remote::is_ipam_plugin(ipam_driver);
    let mut pools = Vec::new();
    for c in body["IPAM"]["Config"].as_array().into_iter().flatten() {
        let s = c["Subnet"].as_str().unwrap_or("");
        if s.is_empty() {
            continue;
        }
        if s.contains(':') {
            pools.push(v6_pool(c, s, ipv6)?);
            continue;
        }
        let subnet = Cidr::parse(s)
            .ok_or_else(|| invalid(format!("invalid subnet {s}: invalid CIDR address: {s}")))?;
        if subnet.prefix > 30 {
            return Err(invalid(format!("subnet {s} is too small: at most /30")));
        }
        let range = c["IPRange"].as_str().unwrap_or("");
        if !range.is_empty() {
            let r = Cidr::parse(range).ok_or_else(|| {
                invalid(format!(
                    "invalid ip-range {range}: invalid CIDR address: {range}"
                ))
            })?;
            if r.prefix < subnet.prefix || !subnet.contains(r.addr) {
                return Err(invalid(format!(
                    "invalid ip-range {range}: it must be within subnet {s}"
                )));
            }
        }
        let gw = c["Gateway"].as_str().unwrap_or("");
        let gateway = if gw.is_empty() && plugin_ipam {
            String::new()
        } else if gw.is_empty() {
            subnet.first_host().to_string()
        } else {
            let g = ipv4(gw, "gateway")?;
            if !subnet.contains(g) {
                return Err(invalid(format!(
                    "no matching subnet for gateway {gw}: it is not in {s}"
                )));
            }
            g.to_string()
        };
        let mut aux = BTreeMap::new();
        for (k, v) in strings(&c["AuxiliaryAddresses"]) {
            let a = ipv4(&v, "auxiliary")?;
            if !subnet.contains(a) {
                return Err(invalid(format!(
                    "auxiliary address {k}={v} is not in subnet {s}"
                )));
            }
            aux.insert(k, v);
        }
        pools.push(IpamPool {
            subnet: subnet.canonical(),
            ip_range: range.to_string(),
            gateway,
            aux,
            pool_id: String::new(),
        });
    }
    if pools.iter().filter(|p| p.is_v6()).count() > 1 {
        return Err(invalid(
            "only one IPv6 subnet is supported per network".into(),
        ));
    }
    for (i, a) in pools.iter().enumerate() {
        for b in &pools[i + 1..] {
            if let (Some(x), Some(y)) = (Cidr::parse(&a.subnet), Cidr::parse(&b.subnet)) {
                if x.overlaps(&y) {
                    return Err(invalid(format!(
                        "subnets {} and {} overlap",
                        a.subnet, b.subnet
                    )));
                }
            }
        }
    }
    let options = strings(&body["Options"]);
    let id = crate::ids::new_id();
    let bridge = options
        .get("com.docker.network.bridge.name")
        .cloned()
        .unwrap_or_else(|| format!("br-{}", &id[..12]));
    if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
        return Err(NetworkError::Invalid(format!(
            "invalid bridge name \"{bridge}\": at most 15 characters, no '/' or space"
        )));
    }
    let flag = |k: &str, d: bool| options.get(k).map(|v| v == "true").unwrap_or(d);
    let mtu = match options.get("com.docker.network.driver.mtu") {
        Some(m) => m
            .parse::<u32>()
            .ok()
            .filter(|m| (68..=65535).contains(m))
            .ok_or_else(|| NetworkError::Invalid(format!("invalid MTU {m}")))?,
        // An overlay's frames travel inside the underlay's, less the
        // VXLAN header (dockerd's overlay driver: 1450 on a 1500 underlay).
        None if driver == "overlay" => {
            let underlay = if cfg.mtu > 0 { cfg.mtu as u32 } else { 1500 };
            underlay.saturating_sub(berth_actors::cluster::VXLAN_OVERHEAD)
        }
        None if cfg.mtu > 0 => cfg.mtu as u32,
        None => 0,
    };
    Ok(NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        id,
        name,
        driver,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        internal: body["Internal"].as_bool().unwrap_or(false),
        attachable: body["Attachable"].as_bool().unwrap_or(false),
        enable_ipv6: ipv6,
        ipam_driver: ipam_driver.to_string(),
        ipam_options: strings(&body["IPAM"]["Options"]),
        pools,
        icc: flag("com.docker.network.bridge.enable_icc", true),
        masquerade: flag(
            "com.docker.network.bridge.enable_ip_masquerade",
            cfg.ip_masq,
        ),
        options,
        labels: strings(&body["Labels"]),
        bridge,
        mtu,
        predefined: false,
        endpoints: BTreeMap::new(),
        peers: Default::default(),
    })
}
