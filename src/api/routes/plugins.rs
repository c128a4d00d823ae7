//! `GET /plugins`: the legacy plugins berthd knows (those it has asked:
//! the `authorization-plugins`, every plugin a request named), in the
//! shape of the API's Plugin object. Managed plugins (`docker plugin
//! install`) are not supported: those endpoints answer 501 (`absent.rs`).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::filters::Filters;
use crate::api::router::{ok_json, HandlerFuture, Req};

/// The plugin type of an `Implements` entry, as managed plugins name it.
fn interface_type(implements: &str) -> String {
    match implements {
        "authz" => "docker.authz/1.0".into(),
        "VolumeDriver" => "docker.volumedriver/1.0".into(),
        "NetworkDriver" => "docker.networkdriver/1.0".into(),
        "IpamDriver" => "docker.ipamdriver/1.0".into(),
        "LoggingDriver" => "docker.logdriver/1.0".into(),
        other => format!("docker.{}/1.0", other.to_lowercase()),
    }
}

fn entry(p: &berth_actors::plugin::PluginInfo) -> Value {
    let id = format!("{:x}", Sha256::digest(p.name.as_bytes()));
    let description = match (&p.error, p.active) {
        (Some(e), _) => format!("legacy plugin, not reachable: {e}"),
        (None, true) => format!("legacy plugin at {}", p.address),
        (None, false) => "legacy plugin, not activated yet".to_string(),
    };
    json!({
        "Id": id,
        "Name": p.name,
        "Enabled": true,
        "Settings": {"Mounts": [], "Env": [], "Args": [], "Devices": []},
        "PluginReference": "",
        "Config": {
            "DockerVersion": "",
            "Description": description,
            "Documentation": "https://docs.docker.com/engine/extend/legacy_plugins/",
            "Interface": {
                "Types": p.implements.iter().map(|i| interface_type(i)).collect::<Vec<_>>(),
                "Socket": p.address.strip_prefix("unix://").unwrap_or(&p.address),
            },
            "Entrypoint": [],
            "WorkDir": "",
            "Network": {"Type": "host"},
            "Linux": {"Capabilities": [], "AllowAllDevices": false, "Devices": []},
            "PropagatedMount": "",
            "Mounts": [],
            "Env": [],
            "Args": {"Name": "", "Description": "", "Settable": [], "Value": []},
        },
    })
}

pub fn list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["enabled", "capability"])?;
        let mut known = berth_actors::plugin::list().await;
        for name in &r.ctx.config().authorization_plugins {
            if !known.iter().any(|p| &p.name == name) {
                known.push(berth_actors::plugin::PluginInfo {
                    name: name.clone(),
                    address: String::new(),
                    implements: vec![berth_actors::plugin::authz::INTERFACE.into()],
                    active: false,
                    error: None,
                });
            }
        }
        let enabled: Vec<&String> = f.values("enabled").collect();
        for v in &enabled {
            if v.as_str() != "true" && v.as_str() != "false" {
                return Err(crate::api::errors::ApiError::invalid(format!(
                    "Invalid filter 'enabled={v}'"
                )));
            }
        }
        let caps: Vec<String> = f.values("capability").map(|c| c.to_lowercase()).collect();
        let out: Vec<Value> = known
            .iter()
            .filter(|_| enabled.is_empty() || enabled.iter().any(|v| v.as_str() == "true"))
            .filter(|p| {
                caps.is_empty()
                    || p.implements.iter().any(|i| {
                        let t = interface_type(i);
                        let cap = t
                            .trim_start_matches("docker.")
                            .split('/')
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        caps.contains(&cap)
                    })
            })
            .map(entry)
            .collect();
        ok_json(&out)
    })
}
