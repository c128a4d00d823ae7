//! `docker cp`, `export` and `diff` over the view of a container's
//! filesystem its ContainerActor lent (`berth_actors::container::fs`): the
//! copies run on threads of their own and give the view back when done.

use berth_actors::container::fs::{FsLease, FsView};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::archive::{ExtractError, ExtractOptions};
use super::cp_root::{self, Bind, RootSpec};
use crate::images::io::ChannelWriter;

/// Why a copy out of a container failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The path is not in the container.
    #[error("{0}")]
    NotFound(std::io::Error),
    #[error("{0}")]
    Io(std::io::Error),
}

/// The root a copy works in and what to give back after it.
fn root_of(view: FsView) -> std::io::Result<(RootSpec, Option<FsLease>)> {
    match view {
        FsView::Live(p) => Ok((RootSpec::Live(p), None)),
        FsView::Stopped {
            rootfs,
            binds,
            lease,
        } => Ok((
            RootSpec::Stopped {
                rootfs,
                binds: binds
                    .into_iter()
                    .map(|b| Bind {
                        source: b.source,
                        destination: b.destination,
                        rw: b.rw,
                    })
                    .collect(),
            },
            Some(lease),
        )),
        FsView::Rootfs { rootfs, lease } => Ok((
            RootSpec::Stopped {
                rootfs,
                binds: vec![],
            },
            Some(lease),
        )),
        FsView::Layers { .. } => Err(std::io::Error::other("not a root filesystem")),
    }
}

/// `GET /containers/{id}/changes`: `None` when nothing changed.
pub async fn changes(view: FsView) -> std::io::Result<Vec<Value>> {
    let FsView::Layers { upper, lowers } = view else {
        return Err(std::io::Error::other("not the container's layers"));
    };
    tokio::task::spawn_blocking(move || super::changes::changes(&upper, &lowers))
        .await
        .map_err(std::io::Error::other)?
}

/// `GET /containers/{id}/export`: the tar of the root filesystem.
pub fn export(view: FsView) -> std::io::Result<mpsc::Receiver<std::io::Result<Bytes>>> {
    let (spec, lease) = root_of(view)?;
    let RootSpec::Stopped { rootfs, .. } = spec else {
        return Err(std::io::Error::other("not a root filesystem"));
    };
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let w = ChannelWriter::new(tx.clone());
        if let Err(e) = super::changes::export(&rootfs, w) {
            let _ = tx.blocking_send(Err(e));
        }
        drop(lease);
    });
    Ok(rx)
}

/// `HEAD`/`GET /containers/{id}/archive`: the stat header of `path`, and
/// (unless `head`) the tar of it.
pub async fn archive_get(
    view: FsView,
    path: String,
    head: bool,
) -> Result<(String, mpsc::Receiver<std::io::Result<Bytes>>), CopyError> {
    let (spec, lease) = root_of(view).map_err(CopyError::Io)?;
    let (stat_tx, stat_rx) = oneshot::channel::<Result<String, CopyError>>();
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    // First the stat, then the tar, on the copy's thread (a stopped
    // container's mounts exist only there).
    cp_root::spawn(spec, lease, move |root| {
        let root = match root {
            Ok(root) => root,
            Err(e) => {
                let _ = stat_tx.send(Err(CopyError::Io(std::io::Error::other(format!(
                    "preparing the container's filesystem: {e}"
                )))));
                return;
            }
        };
        let stat = super::archive::stat_header(&root, &path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CopyError::NotFound(e)
            } else {
                CopyError::Io(e)
            }
        });
        let ok = stat.is_ok();
        let _ = stat_tx.send(stat);
        if ok && !head {
            let w = ChannelWriter::new(tx.clone());
            if let Err(e) = super::archive::read_archive(&root, &path, w) {
                let _ = tx.blocking_send(Err(e));
            }
        }
    })
    .map_err(CopyError::Io)?;
    let stat = stat_rx
        .await
        .map_err(|_| CopyError::Io(std::io::Error::other("the copy stopped")))??;
    Ok((stat, rx))
}

/// `PUT /containers/{id}/archive`: extract the tar `reader` gives at `path`.
pub async fn archive_put(
    view: FsView,
    path: String,
    reader: impl std::io::Read + Send + 'static,
    opts: ExtractOptions,
) -> Result<(), ExtractError> {
    let (spec, lease) = root_of(view).map_err(ExtractError::Io)?;
    let (res_tx, res_rx) = oneshot::channel();
    cp_root::spawn(spec, lease, move |root| {
        // A compressed tar is taken as dockerd takes it (gzip, zstd).
        let (_, mut reader) = match crate::sys::layers::decompress(reader) {
            Ok(r) => r,
            Err(e) => {
                let _ = res_tx.send(Err(ExtractError::Io(e)));
                return;
            }
        };
        let r = root
            .map_err(ExtractError::Io)
            .and_then(|root| super::archive::extract(&root, &path, &mut reader, &opts));
        // What follows the archive's end (its second zero block, padding)
        // is read before the answer goes out: answering with part of the
        // upload unread cuts the client's write ("broken pipe"). Bounded.
        // (After a failure the body's pump drains the rest.)
        let (mut buf, mut left) = (vec![0u8; 64 << 10], 1usize << 20);
        while left > 0 {
            match reader.read(&mut buf[..left.min(64 << 10)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n,
            }
        }
        let _ = res_tx.send(r);
    })
    .map_err(ExtractError::Io)?;
    res_rx
        .await
        .map_err(|_| ExtractError::Io(std::io::Error::other("the copy stopped")))?
}
