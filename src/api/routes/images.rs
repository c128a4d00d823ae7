//! Image endpoints: list, inspect, history, tag, delete, prune, import,
//! load, save. Reads use the ImageStore's snapshot; changes go through it.

use std::sync::Arc;

use berth_actors::image::{digest_hex, DeleteItem, ImageInfo, Reference};
use berth_actors::registry::{self, Credentials, PushTarget, RegistryError};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::render::*;
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::shared::*;
use crate::api::version::ApiVersion;
use crate::images::auth::{registry_host, AuthConfig};
use crate::images::{apply_changes, load_archive, save_archive, ChannelWriter, ImageOpError};

fn op_err(e: ImageOpError) -> ApiError {
    ApiError::from_err(&e)
}

/// `*` and `?` glob, as Go's path.Match for reference filters.
fn glob(pat: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => (0..=s.len())
                .filter(|i| !s[..*i].contains(&b'/'))
                .any(|i| go(&p[1..], &s[i..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pat.as_bytes(), s.as_bytes())
}

fn created_of(ctx: &crate::api::ApiContext, name: &str) -> Result<i64, ApiError> {
    ctx.images
        .images
        .snapshot()
        .resolve(name)
        .map(|i| i.config.created_unix())
        .ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))
}

pub fn list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["dangling", "label", "reference", "before", "since", "until"])?;
        let dangling = match f.values("dangling").next().map(String::as_str) {
            None => None,
            Some("true") | Some("1") => Some(true),
            Some("false") | Some("0") => Some(false),
            Some(v) => return Err(ApiError::invalid(format!("invalid filter 'dangling={v}'"))),
        };
        let before = f
            .values("before")
            .next()
            .map(|n| created_of(&r.ctx, n))
            .transpose()?;
        let since = f
            .values("since")
            .next()
            .map(|n| created_of(&r.ctx, n))
            .transpose()?;
        let until = match f.values("until").next() {
            Some(u) => Some(
                crate::api::shared::parse_timestamp(u)
                    .map(|n| n / 1_000_000_000)
                    .or_else(|| {
                        chrono::DateTime::parse_from_rfc3339(u)
                            .ok()
                            .map(|t| t.timestamp())
                    })
                    .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={u}'")))?,
            ),
            None => None,
        };
        let snap = r.ctx.images.images.snapshot();
        let old_api = r.version < ApiVersion(1, 44);
        let mut out: Vec<(i64, Value)> = Vec::new();
        // Untagged images with children (a build's intermediate steps) are
        // listed only with `all`, as dockerd lists them.
        let all = r.query.bool("all");
        let children = snap.children();
        for info in snap.images.values() {
            if !all && info.refs.is_empty() && children.contains_key(&info.record.id) {
                continue;
            }
            let created = info.config.created_unix();
            let labels = info.config.labels();
            if dangling.is_some_and(|d| d != info.refs.is_empty())
                || !f.labels("label", &labels)
                || before.is_some_and(|b| created >= b)
                || since.is_some_and(|s| created <= s)
                || until.is_some_and(|u| created > u)
            {
                continue;
            }
            let mut summary = image_summary(info, old_api, None);
            if f.contains("reference") {
                // As dockerd: only the references that match are listed
                // (`docker images busybox` leaves out other names of the
                // same image).
                let matching: Vec<String> = info
                    .refs
                    .iter()
                    .filter(|rf| {
                        f.values("reference")
                            .any(|pat| glob(pat, &rf.familiar()) || glob(pat, &rf.familiar_repo()))
                    })
                    .map(|rf| rf.familiar())
                    .collect();
                if matching.is_empty() {
                    continue;
                }
                for key in ["RepoTags", "RepoDigests"] {
                    if let Some(list) = summary[key].as_array_mut() {
                        list.retain(|v| {
                            v.as_str().is_some_and(|s| matching.iter().any(|m| m == s))
                        });
                    }
                }
            }
            out.push((created, summary));
        }
        out.sort_by_key(|v| std::cmp::Reverse(v.0));
        ok_json(&out.into_iter().map(|(_, v)| v).collect::<Vec<_>>())
    })
}

fn find(r: &Req) -> Result<Arc<ImageInfo>, ApiError> {
    let name = r.param("name");
    r.ctx
        .images
        .images
        .snapshot()
        .resolve(name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))
}

pub fn inspect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let info = find(&r)?;
        let c = &info.config;
        let mut v = json!({
            "Id": info.record.id,
            "RepoTags": tags(&info),
            "RepoDigests": digests(&info),
            "Parent": c.parent.clone().unwrap_or_default(),
            "Comment": c.comment.clone().unwrap_or_default(),
            "Created": c.created.clone().unwrap_or_default(),
            "DockerVersion": c.docker_version.clone().unwrap_or_default(),
            "Author": c.author.clone().unwrap_or_default(),
            "Config": c.config.clone().unwrap_or(Value::Null),
            "Architecture": c.architecture,
            "Os": c.os,
            "Size": info.size,
            "GraphDriver": {"Name": r.ctx.images.driver.name(), "Data": graph_data(&r, &info)},
            "RootFS": {"Type": "layers", "Layers": c.rootfs.diff_ids},
            "Metadata": {"LastTagTime": info.record.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())},
        });
        if let Some(var) = &c.variant {
            v["Variant"] = json!(var);
        }
        if r.version < ApiVersion(1, 45) {
            v["Container"] = json!(c.container.clone().unwrap_or_default());
            v["ContainerConfig"] = c
                .container_config
                .clone()
                .unwrap_or_else(crate::images::changes_empty_config);
        }
        if r.version < ApiVersion(1, 44) {
            v["VirtualSize"] = json!(info.size);
        }
        ok_json(&v)
    })
}

/// The driver's view of the image's top layer (overlay2: its directories).
fn graph_data(r: &Req, info: &ImageInfo) -> Value {
    let snap = r.ctx.images.images.snapshot();
    info.record
        .layers
        .last()
        .and_then(|c| snap.layers.get(c))
        .and_then(|l| r.ctx.images.driver.describe(&l.cache_id))
        .map(|m| json!(m))
        .unwrap_or(Value::Null)
}

pub fn history(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let info = find(&r)?;
        let snap = r.ctx.images.images.snapshot();
        let sizes: Vec<u64> = info
            .record
            .layers
            .iter()
            .map(|c| snap.layers.get(c).map(|l| l.size).unwrap_or(0))
            .collect();
        let mut rows = Vec::new();
        let mut layer = 0usize;
        // A config without history has none to show (dockerd answers `[]`).
        for h in &info.config.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            let created = h
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|t| t.timestamp())
                .unwrap_or(0);
            rows.push(json!({
                "Id": "<missing>", "Created": created, "CreatedBy": h.created_by.clone().unwrap_or_default(),
                "Tags": Value::Null, "Size": size, "Comment": h.comment.clone().unwrap_or_default(),
            }));
        }
        rows.reverse();
        // The IDs down the parent chain, as dockerd fills them in: each
        // row's image is the parent of the one above (until one is
        // missing).
        let mut cur = Some(info.clone());
        for row in rows.iter_mut() {
            let Some(img) = cur.take() else { break };
            row["Id"] = json!(img.record.id);
            let t = tags(&img);
            row["Tags"] = if t.is_empty() { Value::Null } else { json!(t) };
            cur = img
                .config
                .parent
                .as_deref()
                .filter(|p| !p.is_empty())
                .and_then(|p| snap.images.get(p).cloned());
        }
        ok_json(&rows)
    })
}

pub fn tag(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let repo = r.query.get("repo").unwrap_or_default();
        let mut reference = Reference::parse(repo).map_err(|e| ApiError::from_err(&e))?;
        if reference.digest.is_some() {
            return Err(ApiError::invalid(
                "refusing to create a tag with a digest reference",
            ));
        }
        if let Some(t) = r.query.get("tag").filter(|t| !t.is_empty()) {
            reference = Reference::parse(&format!("{}:{t}", reference.repo))
                .map_err(|e| ApiError::from_err(&e))?;
        }
        let reference = reference.with_default_tag();
        r.ctx
            .images
            .images
            .tag(r.param("name").to_string(), reference)
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = StatusCode::CREATED;
        Ok(resp)
    })
}

fn items_json(items: &[DeleteItem]) -> Vec<Value> {
    items
        .iter()
        .map(|i| match i {
            DeleteItem::Untagged(s) => json!({"Untagged": s}),
            DeleteItem::Deleted(s) => json!({"Deleted": s}),
        })
        .collect()
}

pub fn delete(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let svc = r.ctx.images.clone();
        let (items, released) = svc
            .images
            .delete(
                r.param("name").to_string(),
                r.query.bool("force"),
                !r.query.bool("noprune"),
            )
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        // Freed before the reply, as dockerd: a client that lists the
        // storage right after sees it gone.
        let _ = tokio::task::spawn_blocking(move || svc.release(&released)).await;
        ok_json(&items_json(&items))
    })
}

pub fn prune(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["dangling", "label", "label!", "until"])?;
        let dangling_only = !matches!(
            f.values("dangling").next().map(String::as_str),
            Some("false") | Some("0")
        );
        let until = f
            .values("until")
            .next()
            .and_then(|u| crate::api::shared::parse_timestamp(u).map(|n| n / 1_000_000_000));
        // The store leaves out the images containers use, deciding under
        // its mailbox (a create claims its image there first).
        let select = Box::new(move |i: &berth_actors::image::ImageInfo| {
            (!dangling_only || i.refs.is_empty())
                && f.labels("label", &i.config.labels())
                && (!f.contains("label!") || !f.labels("label!", &i.config.labels()))
                && until.is_none_or(|u| i.config.created_unix() < u)
        });
        let svc = r.ctx.images.clone();
        let res = svc
            .images
            .prune(select)
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        let released = res.released.clone();
        // Freed before the reply, as dockerd: a client that lists the
        // storage right after sees it gone.
        let _ = tokio::task::spawn_blocking(move || svc.release(&released)).await;
        let items = items_json(&res.items);
        ok_json(&json!({
            "ImagesDeleted": if items.is_empty() { Value::Null } else { json!(items) },
            "SpaceReclaimed": res.space_reclaimed,
        }))
    })
}

fn json_lines(lines: &[Value]) -> Response<Body> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&serde_json::to_vec(l).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
    }
    let mut resp = Response::new(body::full(out));
    resp.headers_mut()
        .insert("Content-Type", HeaderValue::from_static("application/json"));
    resp
}

use crate::api::body::Body;

/// `POST /images/create`: `fromSrc=-` imports the body; pulls come later.
pub fn create(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        if let Some(img) = r.query.get("fromImage").filter(|s| !s.is_empty()) {
            return pull(&r, img).await;
        }
        match r.query.get("fromSrc") {
            Some("-") => {}
            Some("") | None => return Err(ApiError::invalid("fromImage or fromSrc is required")),
            Some(_) => {
                return Err(ApiError::invalid(
                    "importing from a URL is not supported; send the archive in the request body",
                ))
            }
        }
        let refs = repo_tag(&r)?;
        let container_config = apply_changes(&change_lines(&r)).map_err(ApiError::invalid)?;
        let message = r.query.get("message").unwrap_or_default().to_string();
        let reader = body_reader(&mut r)?;
        let svc = r.ctx.images.clone();
        let res = svc
            .import(
                reader,
                refs.clone(),
                container_config,
                message,
                &r.ctx.host.architecture,
            )
            .await
            .map_err(op_err)?;
        svc.event(
            "import",
            &res.id,
            refs.first()
                .map(|r| r.familiar())
                .as_deref()
                .unwrap_or(&res.id),
        );
        Ok(json_lines(&[json!({"status": res.id})]))
    })
}

fn credentials(r: &Req) -> Result<Credentials, ApiError> {
    let h = r
        .headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok());
    Ok(AuthConfig::from_header(h)
        .map_err(ApiError::invalid)?
        .credentials())
}

fn reg_err(e: RegistryError) -> ApiError {
    ApiError::from_err(&e)
}

/// A registry operation's progress stream: `start` hands the sending end
/// to the host's RegistrySession; once it accepted the operation, the
/// lines stream as the answer.
async fn progress_stream<F>(
    start: impl FnOnce(registry::Progress) -> F,
) -> Result<Response<Body>, ApiError>
where
    F: std::future::Future<Output = Result<(), RegistryError>>,
{
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    start(tx).await.map_err(reg_err)?;
    let mut resp = Response::new(body::channel(rx));
    resp.headers_mut()
        .insert("Content-Type", HeaderValue::from_static("application/json"));
    Ok(resp)
}

async fn pull(r: &Req, from: &str) -> Result<Response<Body>, ApiError> {
    let mut reference = Reference::parse(from).map_err(|e| ApiError::from_err(&e))?;
    if let Some(t) = r.query.get("tag").filter(|t| !t.is_empty()) {
        reference = if t.starts_with("sha256:") {
            Reference::parse(&format!("{}@{t}", reference.repo))
        } else {
            Reference::parse(&format!("{}:{t}", reference.repo))
        }
        .map_err(|e| ApiError::from_err(&e))?;
    }
    let reference = reference.with_default_tag();
    let creds = credentials(r)?;
    let host = reference.domain().to_string();
    progress_stream(|tx| registry::pull(&host, reference.to_string(), creds, tx)).await
}

/// `GET /distribution/{name}/json`: what the registry has for a reference.
pub fn distribution(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let reference = Reference::parse(r.param("name"))
            .map_err(|e| ApiError::from_err(&e))?
            .with_default_tag();
        let creds = credentials(&r)?;
        let v = registry::distribution(reference.domain(), reference.to_string(), creds)
            .await
            .map_err(reg_err)?;
        ok_json(&v)
    })
}

/// `POST /images/{name}/push?tag=`: one tag, or every tag of the repository.
pub fn push(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let repo = Reference::parse(r.param("name")).map_err(|e| ApiError::from_err(&e))?;
        let snap = r.ctx.images.images.snapshot();
        let targets: Vec<PushTarget> = match r
            .query
            .get("tag")
            .filter(|t| !t.is_empty())
            .or(repo.tag.as_deref())
        {
            Some(t) => {
                let reference = Reference::parse(&format!("{}:{t}", repo.repo))
                    .map_err(|e| ApiError::from_err(&e))?;
                let id = snap.refs.get(&reference).ok_or_else(|| {
                    ApiError::not_found(format!(
                        "An image does not exist locally with the tag: {}",
                        reference.familiar()
                    ))
                })?;
                vec![PushTarget {
                    image_id: id.clone(),
                    reference: reference.to_string(),
                }]
            }
            None => snap
                .refs
                .iter()
                .filter(|(rf, _)| rf.repo == repo.repo && rf.tag.is_some())
                .map(|(rf, id)| PushTarget {
                    image_id: id.clone(),
                    reference: rf.to_string(),
                })
                .collect(),
        };
        if targets.is_empty() {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                repo.familiar_repo()
            )));
        }
        let creds = credentials(&r)?;
        let host = repo.domain().to_string();
        progress_stream(|tx| registry::push(&host, targets, creds, tx)).await
    })
}

/// `POST /auth`: check credentials against the registry's `/v2/`.
pub fn auth(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let a: AuthConfig = r.json()?;
        let host = registry_host(&a.serveraddress);
        let v = registry::login(&host, a.credentials())
            .await
            .map_err(reg_err)?;
        ok_json(&v)
    })
}

pub fn load(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        // A failed load stops reading; the rest of the body is drained
        // (`pump_body`) so the client reads the error.
        let reader = body_reader(&mut r)?;
        let svc = r.ctx.images.clone();
        let rt = tokio::runtime::Handle::current();
        let loaded = tokio::task::spawn_blocking(move || load_archive(&svc, reader, &rt))
            .await
            .map_err(|e| ApiError::system(e.to_string()))?;
        // As dockerd: a load that fails is a 200 whose stream ends with the
        // error (SDKs raise their load error from that line).
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                let m = op_err(e).message;
                tracing::warn!("docker load failed: {m}");
                return Ok(json_lines(&[
                    json!({"errorDetail": {"message": m}, "error": m}),
                ]));
            }
        };
        let mut lines = Vec::new();
        for img in loaded {
            if img.tags.is_empty() {
                lines.push(json!({"stream": format!("Loaded image ID: {}\n", img.id)}));
            }
            for t in img.tags {
                lines.push(json!({"stream": format!("Loaded image: {t}\n")}));
            }
        }
        Ok(json_lines(&lines))
    })
}

/// `GET /images/{name}/get` and `GET /images/get?names=...`.
pub fn save(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let names: Vec<String> = if r.param("name").is_empty() {
            r.query.all("names").into_iter().map(String::from).collect()
        } else {
            vec![r.param("name").to_string()]
        };
        if names.is_empty() {
            return Err(ApiError::invalid("no image names given"));
        }
        let snap = r.ctx.images.images.snapshot();
        let mut items: Vec<(Arc<ImageInfo>, Vec<Reference>)> = Vec::new();
        for n in &names {
            let info = snap
                .resolve(n)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("No such image: {n}")))?;
            let refs: Vec<Reference> = snap.is_reference(n).into_iter().collect();
            match items
                .iter_mut()
                .find(|(i, _)| i.record.id == info.record.id)
            {
                Some((_, rs)) => rs.extend(refs),
                None => items.push((info, refs)),
            }
        }
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let svc = r.ctx.images.clone();
        let ids: Vec<String> = items.iter().map(|(i, _)| i.record.id.clone()).collect();
        tokio::task::spawn_blocking(move || {
            let err_tx = tx.clone();
            match save_archive(&svc, &items, ChannelWriter::new(tx)) {
                Ok(()) => {
                    for id in &ids {
                        svc.event("save", id, digest_hex(id));
                    }
                }
                Err(e) => {
                    tracing::warn!("docker save failed: {e}");
                    let _ = err_tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        });
        let mut resp = Response::new(body::channel_result(rx));
        resp.headers_mut().insert(
            "Content-Type",
            HeaderValue::from_static("application/x-tar"),
        );
        Ok(resp)
    })
}
