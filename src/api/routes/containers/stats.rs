//! Processes and resource use: top, stats.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{ok_json, HandlerFuture, Req};

use crate::api::shared::*;

pub fn top(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        if !rec.state.status.is_live() {
            return Err(ApiError::new(
                berth_actors::ErrorKind::Conflict,
                format!("Container {} is not running", rec.id),
            ));
        }
        let args = r.query.get("ps_args").unwrap_or("-ef").to_string();
        let pids = crate::containers::top::container_pids(&r.ctx.containers.host, &rec)
            .map_err(ApiError::system)?;
        let out = crate::containers::top::ps(&args, &pids)
            .await
            .map_err(ApiError::system)?;
        ok_json(&out)
    })
}

/// `GET /containers/{id}/stats`: every second while `stream` (default), or
/// one object (`stream=false`: two samples a second apart, so the client
/// can compute CPU use; `one-shot`: at once).
pub fn stats(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let stream = r.query.get("stream").is_none() || r.query.bool("stream");
        let one_shot = r.query.bool("one-shot");
        let cfg = r.ctx.config();
        let cgroup = crate::containers::spec::cgroups_path(&rec, &cfg);
        let ncpu = r.ctx.host.ncpu.max(1);
        let mem_total = r.ctx.host.mem_total;
        let pid = if rec.state.status.is_live() {
            rec.state.pid
        } else {
            0
        };
        let (id, name) = (rec.id.clone(), rec.name.clone());
        let live = move |ix: &berth_actors::container::Containers| {
            ix.snapshot()
                .by_id
                .get(&id)
                .is_some_and(|c| c.state.status.is_live())
        };
        let index = r.ctx.containers.containers.clone();
        let id = rec.id.clone();
        const ZERO: &str = "0001-01-01T00:00:00Z";
        if !stream {
            let first = crate::containers::stats::sample(&cgroup, ncpu, mem_total, pid);
            let first_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            if one_shot || !live(&index) {
                return ok_json(&crate::containers::stats::object(
                    &id, &name, &first, None, ZERO,
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let second = crate::containers::stats::sample(&cgroup, ncpu, mem_total, pid);
            return ok_json(&crate::containers::stats::object(
                &id,
                &name,
                &second,
                Some(&first),
                &first_at,
            ));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(2);
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut pre: Option<(Value, String)> = None;
            loop {
                let cur = crate::containers::stats::sample(&cgroup, ncpu, mem_total, pid);
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                let obj = match &pre {
                    Some((p, t)) => crate::containers::stats::object(&id, &name, &cur, Some(p), t),
                    None => crate::containers::stats::object(&id, &name, &cur, None, ZERO),
                };
                let mut line = serde_json::to_vec(&obj).unwrap_or_default();
                line.push(b'\n');
                if tx.send(Bytes::from(line)).await.is_err() || !live(&index) {
                    return;
                }
                pre = Some((cur, at));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        let mut resp = Response::new(body::channel(rx));
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static("application/json"));
        Ok(resp)
    })
}
