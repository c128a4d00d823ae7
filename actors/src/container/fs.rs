//! The container's filesystem for `docker cp`, `export` and `diff`: the
//! actor decides which view a copy gets (the running container's own root,
//! or the stopped container's root filesystem with its volumes mounted
//! through their VolumeActors) and lends it; the copy itself runs beside
//! the actor, and dropping the lease gives everything back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::actor::ContainerState;
use super::ContainerError;
use crate::ports::ContainerHost;
use crate::volume::{VolumeMsg, Volumes};

/// What the caller is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsWant {
    /// Copy into or out of the container (`docker cp`): its filesystem as
    /// the container sees it, volumes and bind mounts included.
    Copy,
    /// The root filesystem alone (`docker export`).
    Rootfs,
    /// The writable layer and the image's layers (`docker diff`).
    Layers,
}

/// A bind or volume laid over a stopped container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsBind {
    pub source: PathBuf,
    pub destination: String,
    pub rw: bool,
}

pub enum FsView {
    /// The running container's root (`/proc/<pid>/root`: its mounts as it
    /// sees them).
    Live(PathBuf),
    /// The stopped container's root filesystem, with its volumes and bind
    /// mounts to lay over it; held until the lease is dropped.
    Stopped {
        rootfs: PathBuf,
        binds: Vec<FsBind>,
        lease: FsLease,
    },
    /// The root filesystem alone; held until the lease is dropped.
    Rootfs { rootfs: PathBuf, lease: FsLease },
    /// The writable layer (`upper`) and the image's layers, top first.
    Layers {
        upper: PathBuf,
        lowers: Vec<PathBuf>,
    },
}

/// A borrowed root filesystem and the volumes mounted for a copy: given
/// back when dropped (after the copy, also when it failed).
pub struct FsLease {
    host: Arc<dyn ContainerHost>,
    layer: Option<String>,
    volumes: Vec<String>,
    user: String,
}

impl Drop for FsLease {
    fn drop(&mut self) {
        if let Some(l) = self.layer.take() {
            self.host.give_back_root(&l);
        }
        for v in self.volumes.drain(..) {
            Volumes::tell(
                &v,
                VolumeMsg::Unmount {
                    user: self.user.clone(),
                    event: false,
                },
            );
        }
    }
}

static LEASES: AtomicU64 = AtomicU64::new(0);

impl ContainerState {
    pub(super) async fn filesystem(&mut self, want: FsWant) -> Result<FsView, ContainerError> {
        let sys = |what: &str, e: String| ContainerError::System(format!("{what}: {e}"));
        if want == FsWant::Layers {
            let (upper, lowers) = self
                .host
                .layer_dirs(&self.rec)
                .map_err(ContainerError::NotImplemented)?;
            return Ok(FsView::Layers { upper, lowers });
        }
        let live = self.status().is_live() && self.rec.state.pid > 0;
        if want == FsWant::Copy && live {
            return Ok(FsView::Live(
                format!("/proc/{}/root", self.rec.state.pid).into(),
            ));
        }
        let mut lease = FsLease {
            host: self.host.clone(),
            layer: None,
            volumes: Vec::new(),
            user: format!(
                "cp:{}:{}",
                self.rec.id,
                LEASES.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let mut binds = Vec::new();
        if want == FsWant::Copy {
            for m in &self.rec.mounts {
                let source = match m.kind.as_str() {
                    "bind" => PathBuf::from(&m.source),
                    "volume" => {
                        let user = lease.user.clone();
                        let path = Volumes::ask(&m.name, |reply| VolumeMsg::Mount {
                            user,
                            event: None,
                            reply,
                        })
                        .await
                        .map_err(|e| sys(&format!("mounting volume {}", m.name), e.to_string()))?;
                        lease.volumes.push(m.name.clone());
                        PathBuf::from(path)
                    }
                    // A stopped container's tmpfs holds nothing.
                    _ => continue,
                };
                binds.push(FsBind {
                    source,
                    destination: m.destination.clone(),
                    rw: m.rw,
                });
            }
        }
        let rootfs = self
            .host
            .borrow_root(&self.rec)
            .map_err(|e| sys("mounting the container's filesystem", e))?;
        lease.layer = Some(self.rec.layer.clone());
        Ok(match want {
            FsWant::Copy => FsView::Stopped {
                rootfs,
                binds,
                lease,
            },
            _ => FsView::Rootfs { rootfs, lease },
        })
    }
}
