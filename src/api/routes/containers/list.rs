//! `GET /containers/json` and `GET /containers/{id}/json`.

use std::sync::Arc;

use berth_actors::container::{ContainerRecord, Status};
use serde_json::json;

use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::router::{ok_json, HandlerFuture, Req};

use crate::api::render::*;
use crate::api::shared::*;

const PS_FILTERS: &[&str] = &[
    "id",
    "name",
    "label",
    "status",
    "ancestor",
    "exited",
    "before",
    "since",
    "health",
    "network",
    "volume",
    "publish",
    "expose",
    "isolation",
    "is-task",
];

pub fn list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(PS_FILTERS)?;
        for s in f.values("status") {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&s.as_str())
            {
                return Err(ApiError::invalid(format!("invalid filter 'status={s}'")));
            }
        }
        for h in f.values("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        let mut exited = Vec::new();
        for e in f.values("exited") {
            exited.push(
                e.parse::<i32>()
                    .map_err(|_| ApiError::invalid(format!("invalid filter 'exited={e}'")))?,
            );
        }
        let snap = r.ctx.containers.containers.snapshot();
        let created_of = |n: &String| -> Result<String, ApiError> {
            snap.lookup(n).map(|c| c.created.clone()).map_err(err)
        };
        let before = f.values("before").next().map(created_of).transpose()?;
        let since_f = f.values("since").next().map(created_of).transpose()?;
        let names: Vec<regex::Regex> = f
            .values("name")
            .filter_map(|v| regex::Regex::new(v).ok())
            .collect();
        let publish = port_ranges(&f, "publish")?;
        let expose = port_ranges(&f, "expose")?;
        let images = r.ctx.images.images.snapshot();
        let ancestors: Vec<String> = f
            .values("ancestor")
            .filter_map(|a| images.resolve(a).map(|i| i.record.id.clone()))
            .collect();
        let all = r.query.bool("all")
            || !f.values("status").collect::<Vec<_>>().is_empty()
            || !exited.is_empty();
        let limit: i64 = r
            .query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(-1);
        let size = r.query.bool("size");
        let mut recs: Vec<&Arc<ContainerRecord>> = snap.by_id.values().collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        for rec in recs {
            let st = rec.state.status;
            if !all && limit <= 0 && !(st.is_live() || st == Status::Restarting) {
                continue;
            }
            if f.contains("id") && !f.values("id").any(|v| rec.id.starts_with(v.as_str())) {
                continue;
            }
            // Regular expressions against the name with and without its
            // slash, as dockerd matches them (`^web$`, `^/web$`).
            if f.contains("name")
                && !names
                    .iter()
                    .any(|re| re.is_match(&rec.name) || re.is_match(rec.short_name()))
            {
                continue;
            }
            if !publish.is_empty() || !expose.is_empty() {
                let (published, exposed) = container_ports(rec);
                let hit = |want: &[(u16, u16, String)], have: &[Port]| {
                    want.iter().any(|(lo, hi, proto)| {
                        have.iter().any(|(p, pr)| p >= lo && p <= hi && pr == proto)
                    })
                };
                if (!publish.is_empty() && !hit(&publish, &published))
                    || (!expose.is_empty() && !hit(&expose, &exposed))
                {
                    continue;
                }
            }
            if !f.labels("label", &rec.labels()) {
                continue;
            }
            if f.contains("status") && !f.values("status").any(|v| v == st.as_str()) {
                continue;
            }
            let exit_ok = exited.is_empty()
                || (st == Status::Exited && exited.contains(&rec.state.exit_code));
            if !exit_ok {
                continue;
            }
            if f.contains("ancestor") && !ancestors.contains(&rec.image) {
                continue;
            }
            if before.as_ref().is_some_and(|b| rec.created >= *b)
                || since_f.as_ref().is_some_and(|s| rec.created <= *s)
            {
                continue;
            }
            let health = crate::api::render::health_status(rec);
            if f.contains("health") && !f.values("health").any(|h| h == health) {
                continue;
            }
            if f.contains("network")
                && !f.values("network").any(|n| {
                    rec.host_config.network_mode == *n
                        || rec
                            .networks
                            .iter()
                            .any(|(name, a)| name == n || a.network_id.starts_with(n.as_str()))
                })
            {
                continue;
            }
            // A volume's name, or a mount's source or destination.
            if f.contains("volume")
                && !f.values("volume").any(|v| {
                    rec.mounts
                        .iter()
                        .any(|m| m.name == *v || m.source == *v || m.destination == *v)
                })
            {
                continue;
            }
            out.push(container_summary(&r, rec, size));
            if limit > 0 && out.len() as i64 >= limit {
                break;
            }
        }
        ok_json(&out)
    })
}

/// `publish`/`expose` filter values: `80`, `80/udp`, `8000-8080[/tcp]`.
fn port_ranges(f: &Filters, key: &str) -> Result<Vec<(u16, u16, String)>, ApiError> {
    f.values(key)
        .map(|v| {
            let bad = || ApiError::invalid(format!("invalid filter '{key}={v}'"));
            let (ports, proto) = v.split_once('/').unwrap_or((v.as_str(), "tcp"));
            let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
            let (lo, hi) = (
                lo.parse::<u16>().map_err(|_| bad())?,
                hi.parse::<u16>().map_err(|_| bad())?,
            );
            if lo > hi || !matches!(proto, "tcp" | "udp" | "sctp") {
                return Err(bad());
            }
            Ok((lo, hi, proto.to_string()))
        })
        .collect()
}

/// A port and its protocol.
type Port = (u16, String);

/// The ports dockerd's list filters see: `publish` the host ports a
/// running container is bound to (as dockerd 20.10 matches them),
/// `expose` the container's exposed ports (`-p` ones included).
fn container_ports(rec: &ContainerRecord) -> (Vec<Port>, Vec<Port>) {
    let published = rec
        .state
        .endpoints
        .values()
        .filter(|_| rec.state.status.is_live())
        .flat_map(|e| e.ports.iter())
        .filter(|p| p.host_port > 0)
        .map(|p| (p.host_port, p.proto.clone()))
        .collect();
    let exposed = rec
        .config
        .exposed()
        .filter_map(|k| {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((p.parse().ok()?, proto.to_string()))
        })
        .collect();
    (published, exposed)
}

pub fn inspect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let mut v = inspect_json(&r, &rec);
        if r.query.bool("size") {
            let rw = r.ctx.containers.rw_size(&rec);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + image_size(&r, &rec));
        }
        ok_json(&v)
    })
}
