//! The container's volumes, through their VolumeActors: mounted before each
//! run (the `mount` events), unmounted after it (a `device` volume goes
//! when its last running container stops), released when the container is
//! removed (its anonymous volumes removed with `rm -v` and `--rm`).

use super::actor::ContainerState;
use super::ContainerError;
use crate::volume::{VolumeMsg, Volumes};

impl ContainerState {
    fn volume_mounts(&self) -> impl Iterator<Item = &super::MountPoint> {
        self.rec.mounts.iter().filter(|m| m.kind == "volume")
    }

    /// Before the runtime creates the container: every volume mounted.
    pub(super) async fn mount_volumes(&mut self) -> Result<(), ContainerError> {
        let mounts: Vec<_> = self.volume_mounts().cloned().collect();
        for m in mounts {
            let (user, event) = (self.rec.id.clone(), Some((m.destination.clone(), m.rw)));
            let r = Volumes::ask(&m.name, |reply| VolumeMsg::Mount { user, event, reply }).await;
            // Marked at the first mount: a failure unmounts those before it.
            self.volumes_mounted = true;
            if let Err(e) = r {
                self.unmount_volumes();
                return Err(ContainerError::System(format!(
                    "mounting volume {}: {e}",
                    m.name
                )));
            }
        }
        self.volumes_mounted = true;
        Ok(())
    }

    /// After a run (once): the `unmount` events, a `device` volume whose
    /// last running container this was is unmounted.
    pub(super) fn unmount_volumes(&mut self) {
        if !std::mem::take(&mut self.volumes_mounted) {
            return;
        }
        for m in self.volume_mounts() {
            Volumes::tell(
                &m.name,
                VolumeMsg::Unmount {
                    user: self.rec.id.clone(),
                    event: true,
                },
            );
        }
    }

    /// The container is removed: it no longer uses its volumes; with
    /// `remove_anonymous` its own anonymous volumes go (never one it got
    /// from another container with `--volumes-from`).
    pub(super) async fn release_volumes(&self, remove_anonymous: bool) {
        for m in self.volume_mounts() {
            let container = self.rec.id.clone();
            let remove_anonymous = remove_anonymous && m.from.is_empty();
            let _ = Volumes::ask(&m.name, |reply| VolumeMsg::Release {
                container,
                remove_anonymous,
                reply,
            })
            .await;
        }
    }
}
