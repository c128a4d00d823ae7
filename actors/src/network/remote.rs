//! Networks of a legacy network plugin (libnetwork's remote driver API,
//! `NetworkDriver.*`): the plugin makes the network and its endpoints and
//! creates each endpoint's interface in the host's namespace; berthd keeps
//! the record, gives addresses from its own IPAM, and moves the plugin's
//! interface into the container's namespace (the NetworkHost's `attach`).
//!
//! Addresses of a network with an IPAM plugin (`--ipam-driver`,
//! `IpamDriver.*`) come from that plugin: its pools at create, an
//! address per endpoint, all given back when they go.

use bytes::Bytes;
use serde_json::{json, Value};

use super::model::{Endpoint, NetworkRecord};
use super::NetworkError;

/// The interface a network plugin implements.
pub const INTERFACE: &str = "NetworkDriver";

/// The interface an IPAM plugin implements.
pub const IPAM_INTERFACE: &str = "IpamDriver";
/// The `RequestAddressType` option of a gateway's address.
const GATEWAY: &str = "com.docker.network.gateway";

/// `default` is berthd's IPAM; any other name is a plugin.
pub fn is_ipam_plugin(driver: &str) -> bool {
    !matches!(driver, "" | "default")
}

/// Built-in drivers; any other name is a plugin.
pub fn is_builtin(driver: &str) -> bool {
    matches!(driver, "bridge" | "host" | "null" | "overlay" | "")
}

async fn call(driver: &str, method: &str, body: Value) -> Result<Value, NetworkError> {
    call_of(INTERFACE, driver, method, body).await
}

async fn call_of(
    interface: &str,
    driver: &str,
    method: &str,
    body: Value,
) -> Result<Value, NetworkError> {
    let h = crate::plugin::get(driver, interface).await.map_err(|e| {
        if e.message.contains("plugin not found") {
            NetworkError::PluginNotFound(driver.to_string())
        } else {
            NetworkError::System(e.message)
        }
    })?;
    let answer = h
        .call(
            &format!("{interface}.{method}"),
            Bytes::from(body.to_string()),
        )
        .await
        .map_err(|e| NetworkError::System(e.to_string()))?;
    let v: Value = if answer.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&answer).map_err(|e| {
            NetworkError::System(format!("{interface}.{method}: invalid answer: {e}"))
        })?
    };
    match v.get("Err").and_then(Value::as_str) {
        Some(e) if !e.is_empty() => Err(NetworkError::System(format!("{interface}.{method}: {e}"))),
        _ => Ok(v),
    }
}

fn pool_data(rec: &NetworkRecord, v6: bool) -> Vec<Value> {
    rec.pools
        .iter()
        .filter(|p| p.is_v6() == v6)
        .map(|p| {
            let prefix = p.subnet.rsplit('/').next().unwrap_or("");
            json!({
                "AddressSpace": "LocalDefault",
                "Pool": p.subnet,
                "Gateway": format!("{}/{prefix}", p.gateway),
                "AuxAddresses": p.aux,
            })
        })
        .collect()
}

/// `CreateNetwork`: the driver options under `com.docker.network.generic`.
pub async fn create_network(rec: &NetworkRecord) -> Result<(), NetworkError> {
    call(
        &rec.driver,
        "CreateNetwork",
        json!({
            "NetworkID": rec.id,
            "Options": {
                "com.docker.network.enable_ipv6": rec.enable_ipv6,
                "com.docker.network.generic": rec.options,
            },
            "IPv4Data": pool_data(rec, false),
            "IPv6Data": pool_data(rec, true),
        }),
    )
    .await
    .map(|_| ())
}

pub async fn delete_network(rec: &NetworkRecord) -> Result<(), NetworkError> {
    call(&rec.driver, "DeleteNetwork", json!({"NetworkID": rec.id}))
        .await
        .map(|_| ())
}

/// `CreateEndpoint` with the address berthd gave, then `Join`: the name of
/// the interface the plugin made in the host's namespace (`SrcName`) and
/// the gateway it asks for. A failed join deletes the endpoint again.
pub async fn create_and_join(rec: &NetworkRecord, ep: &mut Endpoint) -> Result<(), NetworkError> {
    let iface = json!({
        "Address": format!("{}/{}", ep.ip, ep.prefix),
        "AddressIPv6": if ep.ipv6.is_empty() { String::new() } else { format!("{}/{}", ep.ipv6, ep.prefix6) },
        "MacAddress": ep.mac,
    });
    let created = call(
        &rec.driver,
        "CreateEndpoint",
        json!({"NetworkID": rec.id, "EndpointID": ep.id, "Interface": iface, "Options": {}}),
    )
    .await?;
    if let Some(mac) = created["Interface"]["MacAddress"]
        .as_str()
        .filter(|m| !m.is_empty())
    {
        ep.mac = mac.to_string();
    }
    let joined = match call(
        &rec.driver,
        "Join",
        json!({"NetworkID": rec.id, "EndpointID": ep.id, "SandboxKey": ep.sandbox, "Options": {}}),
    )
    .await
    {
        Ok(j) => j,
        Err(e) => {
            let _ = delete_endpoint(rec, ep).await;
            return Err(e);
        }
    };
    let src = joined["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if src.is_empty() {
        let _ = leave_and_delete(rec, ep).await;
        return Err(NetworkError::System(format!(
            "{INTERFACE}.Join: the plugin named no interface (InterfaceName.SrcName)"
        )));
    }
    ep.host_ifname = src;
    // The plugin's gateway, or none: no default route through it.
    ep.gateway = joined["Gateway"].as_str().unwrap_or_default().to_string();
    ep.gateway6 = joined["GatewayIPv6"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok(())
}

async fn delete_endpoint(rec: &NetworkRecord, ep: &Endpoint) -> Result<(), NetworkError> {
    call(
        &rec.driver,
        "DeleteEndpoint",
        json!({"NetworkID": rec.id, "EndpointID": ep.id}),
    )
    .await
    .map(|_| ())
}

/// `Leave` then `DeleteEndpoint`; both are tried.
pub async fn leave_and_delete(rec: &NetworkRecord, ep: &Endpoint) -> Result<(), NetworkError> {
    let left = call(
        &rec.driver,
        "Leave",
        json!({"NetworkID": rec.id, "EndpointID": ep.id}),
    )
    .await;
    let deleted = delete_endpoint(rec, ep).await;
    left.and(deleted)
}

/// Whether the plugin exists and is a network driver (for `network
/// create`'s 404).
pub async fn check(driver: &str) -> Result<(), NetworkError> {
    call(driver, "GetCapabilities", json!({})).await.map(|_| ())
}

async fn ipam(driver: &str, method: &str, body: Value) -> Result<Value, NetworkError> {
    call_of(IPAM_INTERFACE, driver, method, body).await
}

/// The address part of `ip/prefix`.
fn addr_of(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

/// The network's pools from its IPAM plugin: each pool asked for (its
/// subnet, or any when none was given), its gateway (the one asked for,
/// the pool's `com.docker.network.gateway`, or an address asked for as
/// the gateway). On a failure, what was obtained is given back.
pub async fn request_pools(rec: &mut NetworkRecord) -> Result<(), NetworkError> {
    let d = rec.ipam_driver.clone();
    let spaces = ipam(&d, "GetDefaultAddressSpaces", json!({})).await?;
    let space = spaces["LocalDefaultAddressSpace"]
        .as_str()
        .unwrap_or("LocalDefault")
        .to_string();
    if rec.v4_pools().next().is_none() {
        rec.pools.insert(
            0,
            super::model::IpamPool {
                subnet: String::new(),
                ip_range: String::new(),
                gateway: String::new(),
                aux: Default::default(),
                pool_id: String::new(),
            },
        );
    }
    let opts = rec.ipam_options.clone();
    for i in 0..rec.pools.len() {
        if let Err(e) = request_pool(&d, &space, &opts, &mut rec.pools[i]).await {
            release_pools(rec).await;
            return Err(e);
        }
    }
    Ok(())
}

async fn request_pool(
    d: &str,
    space: &str,
    opts: &std::collections::BTreeMap<String, String>,
    p: &mut super::model::IpamPool,
) -> Result<(), NetworkError> {
    let v6 = p.subnet.contains(':');
    let r = ipam(
        d,
        "RequestPool",
        json!({"AddressSpace": space, "Pool": p.subnet, "SubPool": p.ip_range, "Options": opts, "V6": v6}),
    )
    .await?;
    let id = r["PoolID"].as_str().unwrap_or_default();
    let pool = r["Pool"].as_str().unwrap_or_default();
    if id.is_empty() || !pool.contains('/') {
        return Err(NetworkError::System(format!(
            "{IPAM_INTERFACE}.RequestPool: the plugin answered no PoolID or Pool ({r})"
        )));
    }
    p.pool_id = id.to_string();
    p.subnet = pool.to_string();
    let from_pool = r["Data"][GATEWAY].as_str().map(addr_of).map(str::to_string);
    p.gateway = match (p.gateway.is_empty(), from_pool) {
        (true, Some(g)) => g,
        _ => {
            let a = ipam(
                d,
                "RequestAddress",
                json!({"PoolID": id, "Address": p.gateway, "Options": {"RequestAddressType": GATEWAY}}),
            )
            .await?;
            addr_of(a["Address"].as_str().unwrap_or_default()).to_string()
        }
    };
    Ok(())
}

/// Give every pool back (gateways first); best effort.
pub async fn release_pools(rec: &NetworkRecord) {
    for p in rec.pools.iter().filter(|p| !p.pool_id.is_empty()) {
        if !p.gateway.is_empty() {
            let _ = ipam(
                &rec.ipam_driver,
                "ReleaseAddress",
                json!({"PoolID": p.pool_id, "Address": p.gateway}),
            )
            .await;
        }
        if let Err(e) = ipam(
            &rec.ipam_driver,
            "ReleasePool",
            json!({"PoolID": p.pool_id}),
        )
        .await
        {
            tracing::warn!(network = %rec.name, pool = %p.pool_id, "releasing the pool: {e}");
        }
    }
}

/// An endpoint's IPv4 address from the IPAM plugin (the one asked for,
/// or any): the address, its prefix, the pool's gateway.
pub async fn request_address(
    rec: &NetworkRecord,
    want: Option<std::net::Ipv4Addr>,
    mac: &str,
) -> Result<(std::net::Ipv4Addr, u8, String), NetworkError> {
    let p = rec
        .v4_pools()
        .next()
        .ok_or_else(|| NetworkError::System(format!("network {} has no IPv4 pool", rec.name)))?;
    let a = ipam(
        &rec.ipam_driver,
        "RequestAddress",
        json!({
            "PoolID": p.pool_id,
            "Address": want.map(|w| w.to_string()).unwrap_or_default(),
            "Options": {"com.docker.network.endpoint.macaddress": mac},
        }),
    )
    .await?;
    let cidr = a["Address"].as_str().unwrap_or_default();
    let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| {
        NetworkError::System(format!(
            "{IPAM_INTERFACE}.RequestAddress: the plugin answered no address ({a})"
        ))
    })?;
    let prefix = prefix.parse().unwrap_or_else(|_| {
        p.subnet
            .rsplit('/')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(32)
    });
    Ok((ip, prefix, p.gateway.clone()))
}

/// Give an endpoint's address back; best effort.
pub async fn release_address(rec: &NetworkRecord, ip: &str) {
    let Some(p) = rec.v4_pools().next() else {
        return;
    };
    if let Err(e) = ipam(
        &rec.ipam_driver,
        "ReleaseAddress",
        json!({"PoolID": p.pool_id, "Address": ip}),
    )
    .await
    {
        tracing::warn!(network = %rec.name, %ip, "releasing the address: {e}");
    }
}
