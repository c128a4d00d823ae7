//! JSON renderers shared by the route files: containers (inspect, list
//! summaries, status text), their networks and mounts, volumes, images.
//! Route files import these; no route file imports another.

use std::collections::BTreeMap;

use berth_actors::container::{ContainerRecord, Status};
use berth_actors::image::ImageInfo;
use berth_actors::volume::VolumeRecord;
use serde_json::{json, Value};

use crate::api::router::Req;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

pub(crate) fn unix_of(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

fn since(t: &str) -> i64 {
    chrono::Utc::now().timestamp() - unix_of(t)
}

/// The `Status` column of `docker ps`.
pub fn status_text(rec: &ContainerRecord) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => match &s.health {
            Some(h) => format!(
                "Up {} ({})",
                human_duration(since(&s.started_at)),
                health_text(&h.status)
            ),
            None => format!("Up {}", human_duration(since(&s.started_at))),
        },
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&s.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited => {
            if s.finished_at.is_empty() {
                "Created".into()
            } else {
                format!(
                    "Exited ({}) {} ago",
                    s.exit_code,
                    human_duration(since(&s.finished_at))
                )
            }
        }
    }
}

/// dockerd's `Health.String()`: `health: starting`, or the status.
fn health_text(status: &str) -> String {
    if status == "starting" {
        "health: starting".into()
    } else {
        status.to_string()
    }
}

/// The container's health status as the `health` filter matches it.
pub fn health_status(rec: &ContainerRecord) -> &str {
    rec.state
        .health
        .as_ref()
        .map_or("none", |h| h.status.as_str())
}

/// The `Command` column as dockerd builds it: arguments with a space in
/// single quotes, the path as it is.
fn command_of(rec: &ContainerRecord) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    parts.join(" ")
}

/// `HostConfig` as stored, legacy links as dockerd shows them
/// (`/child:/parent/alias`, the child by its current name).
fn host_config_json(r: &Req, rec: &ContainerRecord) -> Value {
    let mut hc = json!(rec.host_config);
    if let Some(links) = rec.host_config.links.as_deref().filter(|l| !l.is_empty()) {
        let index = r.ctx.containers.containers.snapshot();
        let shown: Vec<String> = links
            .iter()
            .filter_map(|l| berth_actors::container::links::shown(&index, rec, l))
            .collect();
        hc["Links"] = json!(shown);
    }
    hc
}

pub fn inspect_json(r: &Req, rec: &ContainerRecord) -> Value {
    let s = &rec.state;
    let execs = r.ctx.containers.execs.table.of_container(&rec.id);
    let gd = r.ctx.images.driver.describe(&rec.layer);
    let mut v = json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.status.is_live() || s.status == Status::Restarting,
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": if s.status.is_live() { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": or_zero(&s.started_at),
            "FinishedAt": or_zero(&s.finished_at),
        },
        "Image": rec.image,
        "ResolvConfPath": rec.resolv_conf_path,
        "HostnamePath": rec.hostname_path,
        "HostsPath": rec.hosts_path,
        "LogPath": rec.shown_log_path(),
        "Name": rec.name,
        "RestartCount": rec.restart_count,
        "Driver": rec.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "HostConfig": host_config_json(r, rec),
        "GraphDriver": {"Name": rec.driver, "Data": gd},
        "Mounts": mounts_json(r, rec),
        "Config": rec.config,
        "NetworkSettings": versioned_settings(r, rec, settings(rec, true)),
    });
    if let Some(h) = &s.health {
        v["State"]["Health"] = json!(h);
    }
    v
}

/// `NetworkSettings.Networks` as older API versions show them: before
/// 1.45 the short ID is the first alias on a user-defined network (the
/// endpoint has it), before 1.44 there is no `DNSNames`.
fn versioned_settings(r: &Req, rec: &ContainerRecord, mut v: Value) -> Value {
    use crate::api::version::ApiVersion;
    if r.version >= ApiVersion(1, 45) {
        return v;
    }
    let short = rec.id.get(..12).unwrap_or(&rec.id).to_string();
    if let Some(nets) = v["Networks"].as_object_mut() {
        for (name, n) in nets.iter_mut() {
            let has_short = rec
                .state
                .endpoints
                .get(name)
                .is_some_and(|e| e.aliases.contains(&short));
            if has_short {
                let mut aliases = vec![json!(short)];
                if let Some(a) = n["Aliases"].as_array() {
                    aliases.extend(a.iter().filter(|x| **x != json!(short)).cloned());
                }
                n["Aliases"] = json!(aliases);
            }
            if r.version < ApiVersion(1, 44) {
                if let Some(o) = n.as_object_mut() {
                    o.remove("DNSNames");
                }
            }
        }
    }
    v
}

pub fn container_summary(r: &Req, rec: &ContainerRecord, size: bool) -> Value {
    let image = if rec.image_name.is_empty() {
        rec.image.clone()
    } else {
        rec.image_name.clone()
    };
    let mut v = json!({
        "Id": rec.id,
        "Names": [rec.name],
        "Image": image,
        "ImageID": rec.image,
        "Command": command_of(rec),
        "Created": unix_of(&rec.created),
        "Ports": summary_ports(rec),
        "Labels": rec.labels(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode},
        "NetworkSettings": settings(rec, false),
        "Mounts": mounts_json(r, rec),
    });
    if size {
        let rw = r.ctx.containers.rw_size(rec);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw + image_size(r, rec));
    }
    v
}

/// The size of the container's image (the `virtual` part of `ps -s`).
pub fn image_size(r: &Req, rec: &ContainerRecord) -> u64 {
    r.ctx
        .images
        .images
        .snapshot()
        .images
        .get(&rec.image)
        .map(|i| i.size)
        .unwrap_or(0)
}

/// `NetworkSettings` of a container inspect.
pub fn settings(rec: &ContainerRecord, full: bool) -> Value {
    let s = &rec.state;
    let live = s.status.is_live();
    let mut nets = serde_json::Map::new();
    for (name, att) in &rec.networks {
        let ep = s.endpoints.get(name).filter(|_| live);
        let mut dns_names: Vec<String> = Vec::new();
        if let Some(e) = ep {
            dns_names.push(e.name.clone());
            dns_names.extend(e.aliases.iter().cloned());
        }
        nets.insert(
            name.clone(),
            json!({
                "IPAMConfig": match (att.ip.is_empty(), att.ip6.is_empty()) {
                    (true, true) => Value::Null,
                    (false, true) => json!({"IPv4Address": att.ip}),
                    (true, false) => json!({"IPv6Address": att.ip6}),
                    (false, false) => json!({"IPv4Address": att.ip, "IPv6Address": att.ip6}),
                },
                "Links": if att.links.is_empty() { Value::Null } else { json!(att.links) },
                "Aliases": if att.aliases.is_empty() { Value::Null } else { json!(att.aliases) },
                "MacAddress": ep.map(|e| e.mac.as_str()).unwrap_or(""),
                "DriverOpts": null,
                "NetworkID": att.network_id,
                "EndpointID": ep.map(|e| e.id.as_str()).unwrap_or(""),
                "Gateway": ep.map(|e| e.gateway.as_str()).unwrap_or(""),
                "IPAddress": ep.map(|e| e.ip.as_str()).unwrap_or(""),
                "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
                "IPv6Gateway": ep.map(|e| e.gateway6.as_str()).unwrap_or(""),
                "GlobalIPv6Address": ep.map(|e| e.ipv6.as_str()).unwrap_or(""),
                "GlobalIPv6PrefixLen": ep.map(|e| e.prefix6).unwrap_or(0),
                "DNSNames": if dns_names.is_empty() { Value::Null } else { json!(dns_names) },
            }),
        );
    }
    let mode = rec.host_config.network_mode.as_str();
    if mode == "host" || mode == "none" {
        nets.insert(mode.to_string(), json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "DriverOpts": null, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null}));
    }
    if !full {
        return json!({"Networks": nets});
    }
    // The default bridge's endpoint also fills the top-level fields.
    let bridge = s.endpoints.get("bridge").filter(|_| live);
    json!({
        "Bridge": "",
        "SandboxID": if live && !s.sandbox.is_empty() { sandbox_id(&rec.id) } else { String::new() },
        "SandboxKey": if live { s.sandbox.clone() } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports(rec),
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": bridge.map(|e| e.id.as_str()).unwrap_or(""),
        "Gateway": bridge.map(|e| e.gateway.as_str()).unwrap_or(""),
        "GlobalIPv6Address": bridge.map(|e| e.ipv6.as_str()).unwrap_or(""),
        "GlobalIPv6PrefixLen": bridge.map(|e| e.prefix6).unwrap_or(0),
        "IPAddress": bridge.map(|e| e.ip.as_str()).unwrap_or(""),
        "IPPrefixLen": bridge.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": bridge.map(|e| e.gateway6.as_str()).unwrap_or(""),
        "MacAddress": bridge.map(|e| e.mac.as_str()).unwrap_or(""),
        "Networks": nets,
    })
}

fn sandbox_id(id: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("sandbox/{id}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `NetworkSettings.Ports` of a running container: every exposed or
/// published port, with its host bindings (null when not published).
fn ports(rec: &ContainerRecord) -> Value {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    if !rec.state.status.is_live() {
        return json!({});
    }
    {
        for k in rec.config.exposed() {
            let k = if k.contains('/') {
                k.clone()
            } else {
                format!("{k}/tcp")
            };
            out.insert(k, Value::Null);
        }
    }
    for ep in rec.state.endpoints.values() {
        for m in &ep.ports {
            let k = format!("{}/{}", m.container_port, m.proto);
            let entry = out.entry(k).or_insert(Value::Null);
            if entry.is_null() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": m.host_ip, "HostPort": m.host_port.to_string()}));
            }
        }
    }
    json!(out)
}

/// `Ports` of `GET /containers/json`.
pub fn summary_ports(rec: &ContainerRecord) -> Value {
    let mut out = Vec::new();
    if !rec.state.status.is_live() {
        return json!([]);
    }
    let mut published = std::collections::BTreeSet::new();
    for ep in rec.state.endpoints.values() {
        for m in &ep.ports {
            published.insert((m.container_port, m.proto.clone()));
            out.push(json!({"IP": m.host_ip, "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto}));
        }
    }
    {
        for k in rec.config.exposed() {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            let Ok(p) = p.parse::<u16>() else { continue };
            if !published.contains(&(p, proto.to_string())) {
                out.push(json!({"PrivatePort": p, "Type": proto}));
            }
        }
    }
    json!(out)
}

pub fn volume_json(v: &VolumeRecord) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": v.scope,
    })
}

/// A container's `Mounts` (inspect and list).
pub fn mounts_json(r: &Req, rec: &ContainerRecord) -> Value {
    let root = &r.ctx.volumes.host.root;
    let snap = r.ctx.volumes.volumes.snapshot();
    let volumes = &snap.by_name;
    let out: Vec<Value> = rec
        .mounts
        .iter()
        .map(|m| match m.kind.as_str() {
            "volume" => json!({
                "Type": "volume", "Name": m.name,
                "Source": volumes.get(&m.name).map(|v| std::path::PathBuf::from(&v.mountpoint))
                    .unwrap_or_else(|| root.join(&m.name).join("_data")),
                "Destination": m.destination,
                "Driver": volumes.get(&m.name).map(|v| v.driver.as_str()).unwrap_or("local"),
                "Mode": if m.mode.is_empty() { "z" } else { m.mode.as_str() },
                "RW": m.rw, "Propagation": "",
            }),
            "bind" => json!({
                "Type": "bind", "Source": m.source, "Destination": m.destination,
                "Mode": m.mode, "RW": m.rw, "Propagation": m.propagation,
            }),
            _ => json!({
                "Type": m.kind, "Source": "", "Destination": m.destination,
                "Mode": "", "RW": m.rw, "Propagation": "",
            }),
        })
        .collect();
    json!(out)
}

/// One `ImageSummary`. `shared` (for `/system/df`) gives SharedSize and
/// Containers; the list endpoint reports -1 for both, as dockerd does.
pub fn image_summary(info: &ImageInfo, old_api: bool, shared: Option<(u64, u64)>) -> Value {
    let labels = info.config.labels();
    let (shared_size, containers) = match shared {
        Some((s, c)) => (json!(s), json!(c)),
        None => (json!(-1), json!(-1)),
    };
    let mut v = json!({
        "Id": info.record.id,
        "ParentId": info.config.parent.clone().unwrap_or_default(),
        "RepoTags": tags(info),
        "RepoDigests": digests(info),
        "Created": info.config.created_unix(),
        "Size": info.size,
        "SharedSize": shared_size,
        "Labels": if labels.is_empty() { Value::Null } else { json!(labels) },
        "Containers": containers,
    });
    if old_api {
        v["VirtualSize"] = json!(info.size);
    }
    v
}

pub fn tags(info: &ImageInfo) -> Vec<String> {
    info.refs
        .iter()
        .filter(|r| r.tag.is_some())
        .map(|r| r.familiar())
        .collect()
}

pub fn digests(info: &ImageInfo) -> Vec<String> {
    info.refs
        .iter()
        .filter_map(|r| {
            r.digest
                .as_ref()
                .map(|d| format!("{}@{d}", r.familiar_repo()))
        })
        .collect()
}
