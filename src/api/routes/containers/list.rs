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
            if f.contains("name")
                && !f
                    .values("name")
                    .any(|v| rec.short_name().contains(v.trim_start_matches('/')))
            {
                continue;
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
            if f.contains("health") && !f.values("health").any(|h| h == "none") {
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
