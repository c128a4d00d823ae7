//! Networks of a legacy network plugin (libnetwork's remote driver API,
//! `NetworkDriver.*`): the plugin makes the network and its endpoints and
//! creates each endpoint's interface in the host's namespace; berthd keeps
//! the record, gives addresses from its own IPAM, and moves the plugin's
//! interface into the container's namespace (the NetworkHost's `attach`).

use bytes::Bytes;
use serde_json::{json, Value};

use super::model::{Endpoint, NetworkRecord};
use super::NetworkError;

/// The interface a network plugin implements.
pub const INTERFACE: &str = "NetworkDriver";

/// Built-in drivers; any other name is a plugin.
pub fn is_builtin(driver: &str) -> bool {
    matches!(driver, "bridge" | "host" | "null" | "")
}

async fn call(driver: &str, method: &str, body: Value) -> Result<Value, NetworkError> {
    let h = crate::plugin::get(driver, INTERFACE).await.map_err(|e| {
        if e.message.contains("plugin not found") {
            NetworkError::PluginNotFound(driver.to_string())
        } else {
            NetworkError::System(e.message)
        }
    })?;
    let answer = h
        .call(
            &format!("{INTERFACE}.{method}"),
            Bytes::from(body.to_string()),
        )
        .await
        .map_err(|e| NetworkError::System(e.to_string()))?;
    let v: Value = if answer.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&answer).map_err(|e| {
            NetworkError::System(format!("{INTERFACE}.{method}: invalid answer: {e}"))
        })?
    };
    match v.get("Err").and_then(Value::as_str) {
        Some(e) if !e.is_empty() => Err(NetworkError::System(format!("{INTERFACE}.{method}: {e}"))),
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
