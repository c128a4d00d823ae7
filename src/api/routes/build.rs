//! `POST /build`: the query decoded into build options, the context
//! received and the Dockerfile checked (errors so far are the request's
//! status, as dockerd's), then the build runs in a task of its own that
//! writes the progress stream; a client that goes away cancels it.

use std::collections::BTreeMap;

use base64::Engine;
use hyper::header::HeaderValue;
use hyper::Response;
use serde_json::{json, Map, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};
use crate::api::shared::{body_reader, used_images};
use crate::build::session::{self, Builder};
use crate::build::{BuildError, BuildOptions, Source};
use crate::images::auth::AuthConfig;

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::invalid(m)
}

fn json_query<T: serde::de::DeserializeOwned + Default>(r: &Req, key: &str) -> Result<T, ApiError> {
    match r.query.get(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_str(v).map_err(|e| bad(format!("invalid {key}: {e}"))),
    }
}

fn int_query(r: &Req, key: &str) -> Result<Option<i64>, ApiError> {
    match r.query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("invalid value for {key}: {v}"))),
    }
}

/// The request's options, as dockerd's `newImageBuildOptions` reads them.
fn options(r: &Req, experimental: bool) -> Result<BuildOptions, ApiError> {
    let mut o = BuildOptions {
        quiet: r.query.bool("q"),
        nocache: r.query.bool("nocache"),
        pull: r.query.bool("pull"),
        // `rm` is on unless the request says otherwise.
        rm: r.query.get("rm").is_none() || r.query.bool("rm"),
        forcerm: r.query.bool("forcerm"),
        target: r.query.get("target").map(String::from),
        squash: r.query.bool("squash"),
        ..Default::default()
    };
    for t in r.query.all("t").into_iter().filter(|t| !t.is_empty()) {
        let reference = berth_actors::image::Reference::parse(t)
            .map_err(|e| bad(format!("invalid tag {t:?}: {e}")))?;
        if reference.digest.is_some() {
            return Err(bad(format!(
                "invalid tag {t:?}: a tag cannot have a digest"
            )));
        }
        o.tags.push(reference.with_default_tag());
    }
    if r.query.bool("squash") && !experimental {
        return Err(bad("squash is only supported with experimental mode"));
    }
    match r.query.get("version").unwrap_or("1") {
        "" | "1" => {}
        "2" => {
            return Err(ApiError::from_err(&BuildError::NotImplemented(
                "BuildKit is not supported by berthd: use the builder of API version 1 (DOCKER_BUILDKIT=0)".into(),
            )))
        }
        v => return Err(bad(format!("unsupported builder version {v:?}"))),
    }
    match r.query.get("isolation").unwrap_or("") {
        "" | "default" | "process" => {}
        i => return Err(bad(format!("Isolation '{i}' is not supported on linux"))),
    }
    if let Some(p) = r.query.get("platform").filter(|p| !p.is_empty()) {
        session::check_request_platform(p).map_err(|e| ApiError::from_err(&e))?;
    }
    o.build_args = json_query(r, "buildargs")?;
    o.labels = json_query(r, "labels")?;
    o.cache_from = json_query(r, "cachefrom")?;
    let mut hc = Map::new();
    // `default` (or none): the daemon's default network, as `docker run`.
    if let Some(m) = r
        .query
        .get("networkmode")
        .filter(|m| !m.is_empty() && *m != "default")
    {
        hc.insert("NetworkMode".into(), json!(m));
    }
    for (key, field) in [
        ("shmsize", "ShmSize"),
        ("cpushares", "CpuShares"),
        ("memory", "Memory"),
        ("memswap", "MemorySwap"),
        ("cpuquota", "CpuQuota"),
        ("cpuperiod", "CpuPeriod"),
    ] {
        if let Some(v) = int_query(r, key)? {
            hc.insert(field.into(), json!(v));
        }
    }
    for (key, field) in [
        ("cpusetcpus", "CpusetCpus"),
        ("cpusetmems", "CpusetMems"),
        ("cgroupparent", "CgroupParent"),
    ] {
        if let Some(v) = r.query.get(key).filter(|v| !v.is_empty()) {
            hc.insert(field.into(), json!(v));
        }
    }
    let hosts: Vec<String> = r
        .query
        .all("extrahosts")
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect();
    if !hosts.is_empty() {
        hc.insert("ExtraHosts".into(), json!(hosts));
    }
    let ulimits: Vec<Value> = json_query(r, "ulimits")?;
    if !ulimits.is_empty() {
        hc.insert("Ulimits".into(), json!(ulimits));
    }
    o.host_config = hc;
    if let Some(h) = r
        .headers
        .get("X-Registry-Config")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    {
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(h.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h.trim()))
            .map_err(|e| bad(format!("invalid X-Registry-Config header: {e}")))?;
        let map: BTreeMap<String, Value> = serde_json::from_slice(&raw).unwrap_or_default();
        for (host, v) in map {
            if let Ok(a) = serde_json::from_value::<AuthConfig>(v) {
                o.registry_auth.insert(host, a);
            }
        }
    }
    Ok(o)
}

pub fn build(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let cfg = r.ctx.config.borrow().clone();
        let opts = options(&r, cfg.experimental)?;
        let dockerfile = r.query.get("dockerfile").map(String::from);
        let source = match r
            .query
            .get("remote")
            .filter(|v| !v.is_empty() && *v != "context")
        {
            Some(remote) => Source::Remote(remote.to_string()),
            None => Source::Body(Box::new(body_reader(&mut r)?)),
        };
        let builder = Builder {
            images: r.ctx.images.clone(),
            containers: r.ctx.containers.clone(),
            tmp_root: std::path::Path::new(&cfg.data_root).join("tmp"),
            shutdown: r.ctx.shutdown.clone(),
        };
        // The context received and the Dockerfile checked (errors: this
        // request's status), then the build streams.
        let rx = crate::build::start(builder, opts, source, dockerfile)
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        let mut resp = Response::new(body::channel(rx));
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static("application/json"));
        Ok(resp)
    })
}

/// `POST /build/prune` (`docker builder prune`): the build's steps no
/// tagged image stands on (all of them with `all`), those older than the
/// `until` filter, the oldest first down to `keep-storage` bytes.
pub fn prune(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = crate::api::filters::Filters::parse(r.query.get("filters"))?;
        f.validate(&[
            "until",
            "unused-for",
            "id",
            "parent",
            "type",
            "description",
            "inuse",
            "shared",
            "private",
        ])?;
        let all = r.query.bool("all");
        let keep: u64 = match r
            .query
            .get("keep-storage")
            .or_else(|| r.query.get("reserved-space"))
            .filter(|v| !v.is_empty())
        {
            None => 0,
            Some(v) => v
                .parse()
                .map_err(|_| bad(format!("invalid keep-storage value: {v}")))?,
        };
        let until = match f.values("until").chain(f.values("unused-for")).next() {
            None => None,
            Some(u) => {
                let ns = crate::build::session::duration(u).map_err(|e| ApiError::from_err(&e))?;
                Some(chrono::Utc::now() - chrono::Duration::nanoseconds(ns))
            }
        };
        let ids: Vec<String> = f.values("id").cloned().collect();
        let records =
            crate::build::cache::records(&r.ctx.images.images.snapshot(), &used_images(&r));
        let picked = crate::build::cache::select(
            &records,
            &crate::build::cache::PruneSpec {
                all,
                until,
                ids,
                keep,
            },
        );
        if picked.is_empty() {
            return crate::api::router::ok_json(
                &json!({"CachesDeleted": null, "SpaceReclaimed": 0}),
            );
        }
        let svc = r.ctx.images.clone();
        let sel = picked.clone();
        let res = svc
            .images
            .prune_cache(Box::new(move |i| sel.contains(&i.record.id)))
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        let released = res.released.clone();
        let s = svc.clone();
        let _ = tokio::task::spawn_blocking(move || s.release(&released)).await;
        let deleted: Vec<String> = picked
            .iter()
            .filter(|id| {
                res.items
                    .iter()
                    .any(|it| matches!(it, berth_actors::image::DeleteItem::Deleted(d) if d == *id))
            })
            .map(|id| crate::build::progress::short(id))
            .collect();
        crate::api::router::ok_json(&json!({
            "CachesDeleted": deleted,
            "SpaceReclaimed": res.space_reclaimed,
        }))
    })
}
