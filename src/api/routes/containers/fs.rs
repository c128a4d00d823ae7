//! The container's filesystem: changes (diff), export, archive (cp).

use std::sync::Arc;

use berth_actors::container::ContainerRecord;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::containers::cp_root::{Bind, RootSpec};

use crate::api::shared::*;

pub fn changes(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let driver = r.ctx.images.driver.clone();
        let upper = r.ctx.containers.host.driver_diff(&rec.layer);
        if upper.as_os_str().is_empty() {
            return Err(ApiError::new(
                berth_actors::ErrorKind::NotImplemented,
                format!(
                    "changes are not available with the {} storage driver",
                    driver.name()
                ),
            ));
        }
        // The image's layers, compared by descriptor (never a mounted view).
        let lowers: Vec<std::path::PathBuf> = driver
            .describe(&rec.layer)
            .and_then(|m| m.get("LowerDir").cloned())
            .map(|l| {
                l.split(':')
                    .filter(|s| !s.is_empty())
                    .map(std::path::PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let v = tokio::task::spawn_blocking(move || {
            crate::containers::changes::changes(&upper, &lowers)
        })
        .await
        .map_err(|e| ApiError::system(e.to_string()))?
        .map_err(|e| ApiError::system(format!("reading the container's changes: {e}")))?;
        ok_json(&if v.is_empty() { Value::Null } else { json!(v) })
    })
}

pub fn export(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let driver = r.ctx.images.driver.clone();
        let root = driver
            .borrow_rw(&rec.layer)
            .map_err(|e| ApiError::system(format!("mounting the container's filesystem: {e}")))?;
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let layer = rec.layer.clone();
        tokio::task::spawn_blocking(move || {
            let w = crate::images::io::ChannelWriter::new(tx.clone());
            if let Err(e) = crate::containers::changes::export(&root, w) {
                let _ = tx.blocking_send(Err(e));
            }
            let _ = driver.give_back_rw(&layer);
        });
        let mut resp = Response::new(body::channel_result(rx));
        resp.headers_mut().insert(
            "Content-Type",
            HeaderValue::from_static("application/x-tar"),
        );
        Ok(resp)
    })
}

/// The container's root for `docker cp`: `/proc/<pid>/root` while it runs
/// (its mounts as it sees them), else its mounted root filesystem with its
/// volumes and bind mounts laid over it; and whether to unmount the root
/// filesystem afterwards.
fn archive_root(r: &Req, rec: &ContainerRecord) -> Result<(RootSpec, bool), ApiError> {
    if rec.state.status.is_live() && rec.state.pid > 0 {
        return Ok((
            RootSpec::Live(format!("/proc/{}/root", rec.state.pid).into()),
            false,
        ));
    }
    let mut binds = Vec::new();
    for m in &rec.mounts {
        let source = match m.kind.as_str() {
            "bind" => m.source.clone(),
            "volume" => {
                use berth_actors::ports::VolumeHost;
                let vol = r
                    .ctx
                    .volumes
                    .volumes
                    .lookup(&m.name)
                    .map_err(|e| ApiError::from_err(&e))?;
                r.ctx
                    .volumes
                    .host
                    .mount(&vol)
                    .map_err(|e| ApiError::system(format!("mounting volume {}: {e}", m.name)))?
            }
            // A stopped container's tmpfs holds nothing.
            _ => continue,
        };
        binds.push(Bind {
            source: source.into(),
            destination: m.destination.clone(),
            rw: m.rw,
        });
    }
    let rootfs = r
        .ctx
        .images
        .driver
        .borrow_rw(&rec.layer)
        .map_err(|e| ApiError::system(format!("mounting the container's filesystem: {e}")))?;
    Ok((RootSpec::Stopped { rootfs, binds }, true))
}

/// Once the copy's thread is done, give the stopped container's root
/// filesystem back (unmounted from the host's mount namespace unless its
/// container mounted it meanwhile).
fn unmount_after(
    finished: std::io::Result<tokio::sync::oneshot::Receiver<()>>,
    root: Option<(Arc<dyn crate::sys::storage::StorageDriver>, String)>,
) -> Result<(), ApiError> {
    let undo = move || {
        if let Some((driver, layer)) = root {
            let _ = driver.give_back_rw(&layer);
        }
    };
    match finished {
        Ok(finished) => {
            tokio::spawn(async move {
                let _ = finished.await;
                let _ = tokio::task::spawn_blocking(undo).await;
            });
            Ok(())
        }
        Err(e) => {
            undo();
            Err(ApiError::system(e.to_string()))
        }
    }
}

fn archive_err(rec: &ContainerRecord, path: &str, e: std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ApiError::not_found(format!(
            "Could not find the file {path} in container {}",
            rec.short_name()
        ))
    } else {
        ApiError::system(e.to_string())
    }
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
        let (spec, unmount) = archive_root(&r, &rec)?;
        let head = r.method == hyper::Method::HEAD;
        let driver = r.ctx.images.driver.clone();
        let layer = rec.layer.clone();
        // The copy runs on a thread of its own (a stopped container's
        // mounts exist only there): first the stat, then the tar.
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel::<Result<String, ApiError>>();
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let p2 = path.clone();
        let rec2 = rec.clone();
        let finished = crate::containers::cp_root::spawn(spec, move |root| {
            let root = match root {
                Ok(root) => root,
                Err(e) => {
                    let _ = stat_tx.send(Err(ApiError::system(format!(
                        "preparing the container's filesystem: {e}"
                    ))));
                    return;
                }
            };
            let stat = crate::containers::archive::stat_header(&root, &p2)
                .map_err(|e| archive_err(&rec2, &p2, e));
            let ok = stat.is_ok();
            let _ = stat_tx.send(stat);
            if ok && !head {
                let w = crate::images::io::ChannelWriter::new(tx.clone());
                if let Err(e) = crate::containers::archive::read_archive(&root, &p2, w) {
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
        unmount_after(finished, unmount.then_some((driver, layer)))?;
        let stat = stat_rx
            .await
            .map_err(|_| ApiError::system("the copy stopped"))??;
        let mut resp = if head {
            Response::new(body::empty())
        } else {
            Response::new(body::channel_result(rx))
        };
        resp.headers_mut().insert(
            "Content-Type",
            HeaderValue::from_static("application/x-tar"),
        );
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
    {
        let rec = find(r)?;
        let path = r.query.get("path").unwrap_or("").to_string();
        if path.is_empty() {
            return Err(ApiError::invalid("path is required"));
        }
        let opts = crate::containers::archive::ExtractOptions {
            no_overwrite_dir_non_dir: r.query.bool("noOverwriteDirNonDir"),
            copy_uid_gid: r.query.bool("copyUIDGID"),
        };
        let ro_rootfs = rec.host_config["ReadonlyRootfs"].as_bool() == Some(true);
        if let Some(m) =
            crate::containers::archive::read_only_refusal(&rec.mounts, ro_rootfs, &path)
        {
            // dockerd answers these as a system error (500).
            return Err(ApiError::system(m));
        }
        let reader = body_reader(r)?;
        let (spec, unmount) = archive_root(r, &rec)?;
        let driver = r.ctx.images.driver.clone();
        let layer = rec.layer.clone();
        let p2 = path.clone();
        let (res_tx, res_rx) = tokio::sync::oneshot::channel();
        let finished = crate::containers::cp_root::spawn(spec, move |root| {
            let r = root
                .map_err(crate::containers::archive::ExtractError::Io)
                .and_then(|root| crate::containers::archive::extract(&root, &p2, reader, &opts));
            let _ = res_tx.send(r);
        });
        unmount_after(finished, unmount.then_some((driver, layer)))?;
        let res = res_rx
            .await
            .map_err(|_| ApiError::system("the copy stopped"))?;
        use crate::containers::archive::ExtractError as X;
        match res {
            Ok(()) => Ok(Response::new(body::empty())),
            Err(X::NotFound(p)) => Err(ApiError::not_found(format!(
                "Could not find the file {p} in container {}",
                rec.short_name()
            ))),
            Err(X::NotADirectory) => Err(ApiError::invalid("extraction point is not a directory")),
            Err(X::Invalid(m)) => Err(ApiError::invalid(m)),
            Err(X::Io(e)) => Err(ApiError::system(e.to_string())),
        }
    }
}
