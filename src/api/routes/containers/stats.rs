//! Processes and resource use: top, stats (each a question to the
//! container's actor).

use std::time::Duration;

use berth_actors::container::{ContainerMsg, Containers};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::containers::stats::object;

use crate::api::shared::*;

pub fn top(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let ps_args = r.query.get("ps_args").unwrap_or("-ef").to_string();
        let out = Containers::ask(&rec.id, |reply| ContainerMsg::Top { ps_args, reply })
            .await
            .map_err(err)?;
        ok_json(&out)
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `GET /containers/{id}/stats`: every second while `stream` (default), or
/// one object (`stream=false`: two samples a second apart, so the client
/// can compute CPU use; `one-shot`: at once).
pub fn stats(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let stream = r.query.get("stream").is_none() || r.query.bool("stream");
        let one_shot = r.query.bool("one-shot");
        let (id, name) = (rec.id.clone(), rec.name.clone());
        const ZERO: &str = "0001-01-01T00:00:00Z";
        let id2 = id.clone();
        let sample = move || {
            let id = id2.clone();
            async move { Containers::ask_again(&id, ContainerMsg::Stats).await }
        };
        if !stream {
            let (first, live) = sample().await.map_err(err)?;
            let first_at = now();
            if one_shot || !live {
                return ok_json(&object(&id, &name, &first, None, ZERO));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (second, _) = sample().await.map_err(err)?;
            return ok_json(&object(&id, &name, &second, Some(&first), &first_at));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(2);
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut pre: Option<(Value, String)> = None;
            loop {
                // The container went away: the stream ends.
                let Ok((cur, live)) = sample().await else {
                    return;
                };
                let at = now();
                let obj = match &pre {
                    Some((p, t)) => object(&id, &name, &cur, Some(p), t),
                    None => object(&id, &name, &cur, None, ZERO),
                };
                let mut line = serde_json::to_vec(&obj).unwrap_or_default();
                line.push(b'\n');
                if tx.send(Bytes::from(line)).await.is_err() || !live {
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
