//! create: a new container's writable layer, files and volumes are
//! prepared through ports while the ContainerSupervisor holds its name;
//! its actor starts once everything is there. Whatever step fails, one
//! cleanup path ([`undo`]) removes what the steps before it made: a failed
//! create leaves no record, layer, file, volume or actor.

use std::sync::Arc;

use super::model::ContainerRecord;
use super::ContainerError;
use crate::image::{ImageError, Images};
use crate::ports::ContainerHost;
use crate::volume::{VolumeMsg, VolumeRecord, VolumeSupervisorMsg, Volumes};

/// What a create made so far, so a failure undoes exactly that.
#[derive(Debug, Default)]
pub struct Made {
    /// Its image is claimed: no delete takes it meanwhile.
    claimed: bool,
    /// The writable layer and the container's directory (files, record).
    prepared: bool,
    /// Volumes it became a user of, and whether it made them (anonymous).
    volumes: Vec<(String, bool)>,
}

fn sys(what: &str, e: impl std::fmt::Display) -> ContainerError {
    ContainerError::System(format!("{what}: {e}"))
}

/// Prepare everything the container needs; on failure it is all undone.
/// `volumes`: the records of the volumes its mounts name (made if
/// missing), in mount order.
pub async fn prepare(
    host: &Arc<dyn ContainerHost>,
    rec: &ContainerRecord,
    volumes: Vec<VolumeRecord>,
) -> Result<Made, ContainerError> {
    let mut made = Made::default();
    match steps(host, rec, volumes, &mut made).await {
        Ok(()) => Ok(made),
        Err(e) => {
            undo(host, rec, made).await;
            Err(e)
        }
    }
}

async fn steps(
    host: &Arc<dyn ContainerHost>,
    rec: &ContainerRecord,
    volumes: Vec<VolumeRecord>,
    made: &mut Made,
) -> Result<(), ContainerError> {
    // The image first: a delete racing with this create either ran
    // before (the image is gone: "No such image") or waits for it.
    Images::claim(&rec.image, &rec.id)
        .await
        .map_err(|e| match e {
            ImageError::NotFound(_) => ContainerError::NoSuchImage(rec.image_name.clone()),
            e => sys("claiming its image", e),
        })?;
    made.claimed = true;
    // Marked first: a half-made layer or directory is removed too.
    made.prepared = true;
    host.prepare(rec).await.map_err(ContainerError::System)?;
    crate::failpoint::hit("container-create:prepared");
    for v in volumes {
        let (name, ours) = (v.name.clone(), v.anonymous);
        Volumes::ask_supervisor(|reply| VolumeSupervisorMsg::Create {
            record: Box::new(v),
            reply,
        })
        .await
        .map_err(|e| sys(&format!("creating volume {name}"), e))?;
        made.volumes.push((name.clone(), ours));
        let container = rec.id.clone();
        Volumes::ask(&name, |reply| VolumeMsg::Use { container, reply })
            .await
            .map_err(|e| sys(&format!("using volume {name}"), e))?;
    }
    host.save(rec).map_err(|e| sys("saving the container", e))?;
    crate::failpoint::hit("container-create:saved");
    Ok(())
}

/// Undo a create: leave the volumes (removing those it made), remove the
/// layer and the container's directory with its record.
pub async fn undo(host: &Arc<dyn ContainerHost>, rec: &ContainerRecord, made: Made) {
    for (name, ours) in made.volumes {
        let container = rec.id.clone();
        let _ = Volumes::ask(&name, |reply| VolumeMsg::Release {
            container,
            remove_anonymous: ours,
            reply,
        })
        .await;
    }
    if made.prepared {
        host.discard(rec).await;
    }
    if made.claimed {
        Images::unclaim(&rec.id);
    }
}
