//! `POST /build`: the query decoded into build options, the context
//! received and the Dockerfile checked (errors so far are the request's
//! status, as dockerd's), then the build runs in a task of its own that
//! writes the progress stream; a client that goes away cancels it.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};
use crate::api::shared::body_reader;
use crate::build::progress::Progress;
use crate::build::session::{self, Builder};
use crate::build::{context, BuildError, BuildOptions};
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
    if r.query.bool("squash") {
        return Err(ApiError::from_err(&BuildError::NotImplemented(
            "berthd does not squash builds".into(),
        )));
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

struct RemoveFile(std::path::PathBuf);

impl Drop for RemoveFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn read_full(f: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Download a `remote` context into a file under `tmp` (bounded waits:
/// 15 s to connect, 5 minutes in all).
async fn fetch_remote(url: &str, tmp: &std::path::Path) -> Result<std::path::PathBuf, BuildError> {
    let fail = |m: String| BuildError::Invalid(format!("unable to prepare context: {m}"));
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(format!("unable to download remote context {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "unable to download remote context {url}: status {}",
            resp.status()
        )));
    }
    let path = tmp.join(format!("remote-{}", crate::sys::blobs::random_hex(8)));
    let mut f = tokio::fs::File::create(&path).await?;
    use tokio::io::AsyncWriteExt;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => f.write_all(&c).await?,
            Ok(None) => break,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(fail(format!("reading remote context {url}: {e}")));
            }
        }
    }
    f.flush().await?;
    Ok(path)
}

pub fn build(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let cfg = r.ctx.config.borrow().clone();
        let opts = options(&r, cfg.experimental)?;
        let dockerfile = r.query.get("dockerfile").map(String::from);
        let tmp = std::path::Path::new(&cfg.data_root).join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| ApiError::system(e.to_string()))?;
        let remote = r
            .query
            .get("remote")
            .filter(|v| !v.is_empty() && *v != "context")
            .map(String::from);
        let ctx = match remote {
            None => {
                let reader = body_reader(&mut r)?;
                tokio::task::spawn_blocking(move || {
                    context::receive(&tmp, reader, dockerfile.as_deref())
                })
                .await
            }
            Some(remote) if context::is_git_url(&remote) => {
                tokio::task::spawn_blocking(move || {
                    context::from_git(&tmp, &remote, dockerfile.as_deref())
                })
                .await
            }
            Some(remote) if remote.starts_with("http://") || remote.starts_with("https://") => {
                let file = fetch_remote(&remote, &tmp)
                    .await
                    .map_err(|e| ApiError::from_err(&e))?;
                tokio::task::spawn_blocking(move || {
                    let _cleanup = RemoveFile(file.clone());
                    let mut head = [0u8; 512];
                    let mut f = std::fs::File::open(&file)?;
                    let n = read_full(&mut f, &mut head)?;
                    if context::looks_like_archive(&head[..n]) {
                        context::receive(&tmp, std::fs::File::open(&file)?, dockerfile.as_deref())
                    } else {
                        let text = std::fs::read(&file)?;
                        context::from_dockerfile(&tmp, &text, dockerfile.as_deref())
                    }
                })
                .await
            }
            Some(remote) => {
                return Err(bad(format!(
                    "unable to prepare context: remote {remote:?} is not a git repository or an http(s) URL"
                )))
            }
        }
        .map_err(|e| ApiError::system(e.to_string()))?
        .map_err(|e| ApiError::from_err(&e))?;
        let plan = session::plan(&ctx.dockerfile, &opts).map_err(|e| ApiError::from_err(&e))?;
        let builder = Builder {
            images: r.ctx.images.clone(),
            containers: r.ctx.containers.clone(),
        };
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut progress = Progress::new(tx, opts.quiet);
            let res = tokio::select! {
                r = session::build(&builder, plan, &ctx, &opts, &mut progress) => r,
                _ = shutdown.cancelled() => Err(BuildError::Cancelled),
            };
            match res {
                Ok(id) => tracing::info!(%id, "image built"),
                Err(BuildError::Cancelled) => tracing::info!("build cancelled"),
                Err(e) => progress.error(&e).await,
            }
            // The context goes once the build is done.
            let _ = tokio::task::spawn_blocking(move || drop(ctx)).await;
        });
        let mut resp = Response::new(body::channel(rx));
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static("application/json"));
        Ok(resp)
    })
}

/// The images containers use (never build cache).
fn used_images(r: &Req) -> std::collections::BTreeSet<String> {
    r.ctx
        .containers
        .containers
        .snapshot()
        .by_id
        .values()
        .map(|c| c.image.clone())
        .collect()
}

/// `GET /system/df`'s build cache: its entries and their total size.
pub fn cache_entries(r: &Req) -> Vec<crate::build::cache::Record> {
    let snap = r.ctx.images.images.snapshot();
    crate::build::cache::records(&snap, &used_images(r))
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
        let records = cache_entries(&r);
        let total: u64 = records.iter().map(|c| c.size).sum();
        let mut chosen: Vec<&crate::build::cache::Record> = records
            .iter()
            .filter(|c| all || !c.shared)
            .filter(|c| {
                until.is_none_or(|u| {
                    chrono::DateTime::parse_from_rfc3339(&c.created).is_ok_and(|t| t < u)
                })
            })
            .filter(|c| {
                ids.is_empty()
                    || ids.iter().any(|i| {
                        c.id.trim_start_matches("sha256:")
                            .starts_with(i.trim_start_matches("sha256:"))
                    })
            })
            .collect();
        if keep > 0 {
            // Oldest first, until what is left fits.
            let mut left = total;
            chosen.retain(|c| {
                if left <= keep {
                    return false;
                }
                left = left.saturating_sub(c.size);
                true
            });
        }
        let picked: std::collections::BTreeSet<String> =
            chosen.iter().map(|c| c.id.clone()).collect();
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
