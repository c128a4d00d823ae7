//! Volume drivers other than `local`: legacy volume plugins, spoken to
//! through their [`crate::plugin`] handles (`VolumeDriver.*`, dockerd's
//! volume plugin protocol). A 200 answer with a non-empty `Err` is an
//! error, as dockerd reads it.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::VolumeError;
use crate::plugin::PluginHandle;

/// The interface a volume plugin implements.
pub const INTERFACE: &str = "VolumeDriver";
/// The built-in driver.
pub const LOCAL: &str = "local";

pub fn is_plugin(driver: &str) -> bool {
    driver != LOCAL && !driver.is_empty()
}

/// The plugin named `driver`: dockerd's lookup error when it is not there.
pub async fn plugin(driver: &str) -> Result<PluginHandle, VolumeError> {
    crate::plugin::get(driver, INTERFACE).await.map_err(|e| {
        if e.message.contains("plugin not found") {
            VolumeError::NotFoundPlugin(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            ))
        } else {
            VolumeError::System(format!("error looking up volume plugin {driver}: {e}"))
        }
    })
}

/// Call `VolumeDriver.<method>` of `driver`.
pub async fn call(driver: &str, method: &str, body: Value) -> Result<Value, VolumeError> {
    let h = plugin(driver).await?;
    let answer = h
        .call(
            &format!("{INTERFACE}.{method}"),
            Bytes::from(body.to_string()),
        )
        .await
        .map_err(|e| VolumeError::System(e.to_string()))?;
    let v: Value = serde_json::from_slice(&answer)
        .map_err(|e| VolumeError::System(format!("{INTERFACE}.{method}: invalid answer: {e}")))?;
    match v.get("Err").and_then(Value::as_str) {
        Some(e) if !e.is_empty() => Err(VolumeError::System(e.to_string())),
        _ => Ok(v),
    }
}

pub async fn create(
    driver: &str,
    name: &str,
    opts: &BTreeMap<String, String>,
) -> Result<(), VolumeError> {
    call(driver, "Create", json!({"Name": name, "Opts": opts}))
        .await
        .map(|_| ())
        .map_err(|e| match e {
            VolumeError::System(m) => VolumeError::System(format!("create {name}: {m}")),
            other => other,
        })
}

/// The plugin's scope for its volumes (`local` unless it says `global`;
/// a plugin without `Capabilities` is `local`, as dockerd).
pub async fn scope(driver: &str) -> String {
    match call(driver, "Capabilities", json!({})).await {
        Ok(v) => match v["Capabilities"]["Scope"].as_str() {
            Some("global") => "global".into(),
            _ => "local".into(),
        },
        Err(_) => "local".into(),
    }
}

/// Mount for `id` (a container): the host path to bind.
pub async fn mount(driver: &str, name: &str, id: &str) -> Result<String, VolumeError> {
    let v = call(driver, "Mount", json!({"Name": name, "ID": id}))
        .await
        .map_err(|e| VolumeError::System(format!("error while mounting volume '{name}': {e}")))?;
    let p = v["Mountpoint"].as_str().unwrap_or_default();
    if !p.starts_with('/') {
        return Err(VolumeError::System(format!(
            "error while mounting volume '{name}': the plugin answered no absolute Mountpoint ({p:?})"
        )));
    }
    Ok(p.to_string())
}

pub async fn unmount(driver: &str, name: &str, id: &str) -> Result<(), VolumeError> {
    call(driver, "Unmount", json!({"Name": name, "ID": id}))
        .await
        .map(|_| ())
}

pub async fn remove(driver: &str, name: &str) -> Result<(), VolumeError> {
    call(driver, "Remove", json!({"Name": name}))
        .await
        .map(|_| ())
        .map_err(|e| match e {
            VolumeError::System(m) => VolumeError::System(format!("remove {name}: {m}")),
            other => other,
        })
}

/// `VolumeDriver.Get`: the plugin's view of one volume (`Name`,
/// `Mountpoint`, `Status`, `CreatedAt`).
pub async fn get(driver: &str, name: &str) -> Result<Value, VolumeError> {
    let v = call(driver, "Get", json!({"Name": name})).await?;
    Ok(v["Volume"].clone())
}

/// `VolumeDriver.List`: the plugin's volumes.
pub async fn list(driver: &str) -> Result<Vec<Value>, VolumeError> {
    let v = call(driver, "List", json!({})).await?;
    Ok(v["Volumes"].as_array().cloned().unwrap_or_default())
}

/// The volume plugins berthd has activated.
pub async fn active_plugins() -> Vec<String> {
    crate::plugin::list()
        .await
        .into_iter()
        .filter(|p| p.active && p.implements.iter().any(|i| i == INTERFACE))
        .map(|p| p.name)
        .collect()
}
