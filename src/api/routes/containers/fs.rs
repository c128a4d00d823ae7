//! The container's filesystem: changes (diff), export, archive (cp). The
//! container's actor lends the view (its running root, or its stopped root
//! filesystem with volumes mounted through their actors); the copy runs on
//! it and gives it back.

use berth_actors::container::fs::{FsView, FsWant};
use berth_actors::container::{ContainerMsg, ContainerRecord, Containers};
use hyper::header::HeaderValue;
use hyper::Response;
use serde_json::{json, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::containers::archive::ExtractError;
use crate::containers::copy::{self, CopyError};

use crate::api::shared::*;

async fn view(rec: &ContainerRecord, want: FsWant) -> Result<FsView, ApiError> {
    Containers::ask_again(&rec.id, |reply| ContainerMsg::Filesystem { want, reply })
        .await
        .map_err(err)
}

fn tar(rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>) -> Response<body::Body> {
    let mut resp = Response::new(body::channel_result(rx));
    resp.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("application/x-tar"),
    );
    resp
}

pub fn changes(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let v = copy::changes(view(&rec, FsWant::Layers).await?)
            .await
            .map_err(|e| ApiError::system(format!("reading the container's changes: {e}")))?;
        ok_json(&if v.is_empty() { Value::Null } else { json!(v) })
    })
}

pub fn export(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let rx = copy::export(view(&rec, FsWant::Rootfs).await?)
            .map_err(|e| ApiError::system(e.to_string()))?;
        Ok(tar(rx))
    })
}

fn not_found(rec: &ContainerRecord, path: &str) -> ApiError {
    ApiError::not_found(format!(
        "Could not find the file {path} in container {}",
        rec.short_name()
    ))
}

/// `HEAD` and `GET /containers/{id}/archive?path=`: the stat header, and for
/// GET the tar of the path.
pub fn archive_get(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let path = r.query.get("path").unwrap_or("").to_string();
        if path.is_empty() {
            return Err(ApiError::invalid("path is required"));
        }
        let head = r.method == hyper::Method::HEAD;
        let v = view(&rec, FsWant::Copy).await?;
        let (stat, rx) = match copy::archive_get(v, path.clone(), head).await {
            Ok(x) => x,
            Err(CopyError::NotFound(_)) => return Err(not_found(&rec, &path)),
            Err(CopyError::Io(e)) => return Err(ApiError::system(e.to_string())),
        };
        let mut resp = if head {
            let mut r = Response::new(body::empty());
            r.headers_mut().insert(
                "Content-Type",
                HeaderValue::from_static("application/x-tar"),
            );
            r
        } else {
            tar(rx)
        };
        if let Ok(v) = HeaderValue::from_str(&stat) {
            resp.headers_mut().insert("X-Docker-Container-Path-Stat", v);
        }
        Ok(resp)
    })
}

/// `PUT /containers/{id}/archive?path=`: extract the body's tar there.
pub fn archive_put(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let res = archive_put_to(&mut r).await;
        // Refused before the tar was read: drain it so the client, still
        // sending, reads the refusal.
        let refused = res.is_err();
        if let (true, Some(incoming)) = (refused, r.incoming.take()) {
            crate::images::io::drain_body(incoming.into_body(), 64 << 20).await;
        }
        res
    })
}

async fn archive_put_to(r: &mut Req) -> Result<Response<body::Body>, ApiError> {
    let rec = find(r)?;
    let path = r.query.get("path").unwrap_or("").to_string();
    if path.is_empty() {
        return Err(ApiError::invalid("path is required"));
    }
    let opts = crate::containers::archive::ExtractOptions {
        no_overwrite_dir_non_dir: r.query.bool("noOverwriteDirNonDir"),
        copy_uid_gid: r.query.bool("copyUIDGID"),
        user: rec.config.user.clone(),
    };
    let ro_rootfs = rec.host_config.readonly_rootfs;
    if let Some(m) = crate::containers::archive::read_only_refusal(&rec.mounts, ro_rootfs, &path) {
        // dockerd answers these as a system error (500).
        return Err(ApiError::system(m));
    }
    let reader = body_reader(r)?;
    let v = view(&rec, FsWant::Copy).await?;
    match copy::archive_put(v, path, reader, opts).await {
        Ok(()) => Ok(Response::new(body::empty())),
        Err(ExtractError::NotFound(p)) => Err(not_found(&rec, &p)),
        Err(ExtractError::NotADirectory) => {
            Err(ApiError::invalid("extraction point is not a directory"))
        }
        Err(ExtractError::Invalid(m)) => Err(ApiError::invalid(m)),
        Err(ExtractError::Io(e)) => Err(ApiError::system(e.to_string())),
    }
}
