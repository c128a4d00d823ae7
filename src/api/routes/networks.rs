//! Networks: create, list, inspect, delete, connect, disconnect, prune.

use std::sync::atomic::{AtomicU32, Ordering};

use berth_actors::container::{
    ContainerError, ContainerMsg, ContainerRecord, Containers, NetworkAttachment,
};
use berth_actors::network::{NetworkError, NetworkMsg, NetworkRecord, Networks, SupervisorMsg};
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::render::*;
use crate::api::router::{ok_json, HandlerFuture, Req};

fn err(e: NetworkError) -> ApiError {
    ApiError::from_err(&e)
}

fn find(r: &Req) -> Result<std::sync::Arc<NetworkRecord>, ApiError> {
    r.ctx.networks.networks.lookup(r.param("id")).map_err(err)
}

/// The network as the API shows it; `containers` adds its endpoints.
pub fn network_json(n: &NetworkRecord, containers: bool) -> Value {
    let config: Vec<Value> = n
        .pools
        .iter()
        .map(|p| {
            let mut c = json!({"Subnet": p.subnet, "Gateway": p.gateway});
            if !p.ip_range.is_empty() {
                c["IPRange"] = json!(p.ip_range);
            }
            if !p.aux.is_empty() {
                c["AuxiliaryAddresses"] = json!(p.aux);
            }
            c
        })
        .collect();
    let mut eps = serde_json::Map::new();
    if containers {
        for e in n.endpoints.values() {
            eps.insert(
                e.container.clone(),
                json!({
                    "Name": e.name,
                    "EndpointID": e.id,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": if e.ipv6.is_empty() { String::new() } else { format!("{}/{}", e.ipv6, e.prefix6) },
                }),
            );
        }
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": n.scope(),
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {
            "Driver": if n.ipam_driver.is_empty() { "default" } else { n.ipam_driver.as_str() },
            "Options": if n.ipam_options.is_empty() { Value::Null } else { json!(n.ipam_options) },
            "Config": config,
        },
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": eps,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn matches(f: &Filters, n: &NetworkRecord) -> bool {
    f.values("name").all(|v| n.name.contains(v.as_str()))
        && (f.values("id").next().is_none() || f.values("id").any(|v| n.id.starts_with(v.as_str())))
        && (f.values("driver").next().is_none() || f.values("driver").any(|v| *v == n.driver))
        && f.values("type").all(|v| match v.as_str() {
            "custom" => !n.predefined,
            "builtin" => n.predefined,
            _ => true,
        })
        && f.values("dangling").all(|v| {
            let dangling = !n.predefined && n.endpoints.is_empty();
            (v == "true" || v == "1") == dangling
        })
        && f.labels("label", &n.labels)
        // `global`: the overlay networks of the cluster store (no swarm).
        && f.values("scope").all(|v| v == n.scope())
}

pub fn list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["name", "id", "driver", "type", "dangling", "label", "scope"])?;
        for v in f.values("type") {
            if v != "custom" && v != "builtin" {
                return Err(ApiError::invalid(format!("invalid filter: 'type'='{v}'")));
            }
        }
        let snap = r.ctx.networks.networks.snapshot();
        let out: Vec<Value> = snap
            .by_id
            .values()
            .filter(|n| matches(&f, n))
            .map(|n| network_json(n, false))
            .collect();
        ok_json(&out)
    })
}

pub fn inspect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let n = find(&r)?;
        ok_json(&network_json(&n, true))
    })
}

pub fn create(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let body = r.json_of(&crate::api::schema::NETWORK_CREATE)?;
        let cfg = r.ctx.config();
        let rec = crate::network::create::record(&body, &cfg).map_err(err)?;
        let pools = crate::network::auto_pools(&cfg);
        let rec = Networks::ask_supervisor(|reply| SupervisorMsg::Create {
            record: Box::new(rec),
            pools,
            reply,
        })
        .await
        .map_err(err)?;
        let mut resp = ok_json(&json!({"Id": rec.id, "Warning": ""}))?;
        *resp.status_mut() = StatusCode::CREATED;
        Ok(resp)
    })
}

pub fn delete(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let n = find(&r)?;
        Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
            .await
            .map_err(err)?;
        Ok(body::no_content())
    })
}

fn container(r: &Req, body: &Value) -> Result<std::sync::Arc<ContainerRecord>, ApiError> {
    let c = body["Container"].as_str().unwrap_or("");
    r.ctx
        .containers
        .containers
        .lookup(c)
        .map_err(|e| ApiError::from_err(&e))
}

pub fn connect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let n = find(&r)?;
        let body = r.json_of(&crate::api::schema::NETWORK_CONNECT)?;
        let c = container(&r, &body)?;
        if !n.connectable() {
            return Err(ApiError::new(
                berth_actors::ErrorKind::Forbidden,
                format!(
                    "container cannot be disconnected from host network or connected to {} network",
                    n.name
                ),
            ));
        }
        let ec = &body["EndpointConfig"];
        let aliases = crate::containers::spec::strings(&ec["Aliases"]);
        let ip = ec["IPAMConfig"]["IPv4Address"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let ip6 = ec["IPAMConfig"]["IPv6Address"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !ip6.is_empty() && ip6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ApiError::invalid(format!("invalid IPv6 address: {ip6}")));
        }
        if !n.user_defined() && (!aliases.is_empty() || !ip.is_empty()) {
            return Err(ApiError::invalid(if ip.is_empty() {
                "network-scoped aliases are only supported for user-defined networks"
            } else {
                "user specified IP address is supported on user defined networks only"
            }));
        }
        if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(ApiError::invalid(format!("invalid IPv4 address: {ip}")));
        }
        let links = crate::containers::spec::strings(&ec["Links"]);
        if !links.is_empty() && !n.user_defined() {
            return Err(ApiError::invalid(
                "links are only supported for user-defined networks",
            ));
        }
        for l in &links {
            berth_actors::container::parse_link(l).map_err(ApiError::invalid)?;
        }
        let mac = match ec["MacAddress"].as_str().unwrap_or("") {
            "" => String::new(),
            m => berth_actors::container::parse_mac(m).map_err(ApiError::invalid)?,
        };
        let attachment = NetworkAttachment {
            network_id: n.id.clone(),
            aliases,
            ip,
            ip6,
            links,
            mac,
        };
        let network = n.name.clone();
        // Made again if the container's actor dies with it; a second
        // making that finds the first one done answers as the first.
        let made = AtomicU32::new(0);
        let r = Containers::ask_again(&c.id, |reply| {
            made.fetch_add(1, Ordering::Relaxed);
            ContainerMsg::Connect {
                network: network.clone(),
                attachment: attachment.clone(),
                reply,
            }
        })
        .await;
        match r {
            Err(ContainerError::Forbidden(_))
                if made.load(Ordering::Relaxed) > 1 && !c.networks.contains_key(&network) => {}
            r => r.map_err(|e| ApiError::from_err(&e))?,
        }
        Ok(body::empty_ok())
    })
}

pub fn disconnect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let n = find(&r)?;
        let body = r.json_of(&crate::api::schema::NETWORK_DISCONNECT)?;
        let force = body["Force"].as_bool().unwrap_or(false);
        let c = match container(&r, &body) {
            Ok(c) => c,
            Err(e) if force => {
                // A container that is gone: drop its endpoint by ID.
                let id = body["Container"].as_str().unwrap_or("").to_string();
                if n.endpoints.contains_key(&id) {
                    Networks::ask_again(&n.id, |reply| NetworkMsg::Disconnect {
                        container: id.clone(),
                        reply,
                    })
                    .await
                    .map_err(err)?;
                    return Ok(body::empty_ok());
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let network = n.name.clone();
        let made = AtomicU32::new(0);
        let r = Containers::ask_again(&c.id, |reply| {
            made.fetch_add(1, Ordering::Relaxed);
            ContainerMsg::Disconnect {
                network: network.clone(),
                reply,
            }
        })
        .await;
        match r {
            Err(ContainerError::Forbidden(_))
                if made.load(Ordering::Relaxed) > 1 && c.networks.contains_key(&network) => {}
            r => r.map_err(|e| ApiError::from_err(&e))?,
        }
        Ok(body::empty_ok())
    })
}

pub fn prune(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["label", "label!", "until"])?;
        let until = match f.values("until").next() {
            Some(u) => Some(
                super::parse_timestamp(u)
                    .map(|n| n / 1_000_000_000)
                    .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={u}'")))?,
            ),
            None => None,
        };
        let snap = r.ctx.networks.networks.snapshot();
        // Networks a container is configured for stay (dockerd keeps
        // networks with containers, running or not).
        let cs = r.ctx.containers.containers.snapshot();
        let used: std::collections::BTreeSet<&str> = cs
            .by_id
            .values()
            .flat_map(|c| c.networks.values().map(|a| a.network_id.as_str()))
            .collect();
        let mut deleted = Vec::new();
        for n in snap.by_id.values() {
            // A global network is the cluster's: one node's prune leaves it.
            if n.predefined
                || n.is_overlay()
                || !n.endpoints.is_empty()
                || used.contains(n.id.as_str())
            {
                continue;
            }
            // `label!`: kept when every one of them matches (moby's rule).
            if !f.labels("label", &n.labels)
                || (f.contains("label!") && f.labels("label!", &n.labels))
                || until.is_some_and(|u| unix_of(&n.created) >= u)
            {
                continue;
            }
            if Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
                .await
                .is_ok()
            {
                deleted.push(n.name.clone());
            }
        }
        ok_json(&json!({"NetworksDeleted": deleted}))
    })
}
