//! Volumes: a VolumeActor per volume under the VolumeSupervisor. The actor
//! owns the volume's record (options, labels, the containers using it) and
//! drives the host (`local` driver: a directory under the data-root, or a
//! mount of `type`/`device`/`o`) through [`crate::ports::VolumeHost`].

mod actor;
pub mod driver;
mod supervisor;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, BTreeSet};

use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};

pub use actor::{actor_name, VolumeActor, VolumeArgs};
pub use supervisor::{VolumeSupervisor, VolumeSupervisorArgs, VolumeSupervisorMsg, Volumes};

use crate::{ErrorKind, HasKind};

pub const VOLUME_RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub version: u32,
    pub name: String,
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `type`, `device`, `o` of the local driver.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME).
    #[serde(default)]
    pub anonymous: bool,
    /// The host directory containers see (a plugin's volume: where its
    /// plugin last mounted it; empty before).
    pub mountpoint: String,
    /// `local` or `global` (a plugin's `Capabilities`).
    #[serde(default = "local_scope")]
    pub scope: String,
    /// Containers (created or running) that name the volume.
    #[serde(default)]
    pub users: BTreeSet<String>,
    /// Running containers that have it mounted (in memory: recounted from
    /// the containers at berthd start). A `device` volume is unmounted when
    /// the last of them stops, as dockerd's local driver does.
    #[serde(skip)]
    pub active: BTreeSet<String>,
}

fn local_scope() -> String {
    "local".into()
}

impl VolumeRecord {
    pub fn event_attrs(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("driver".into(), self.driver.clone());
        m
    }
}

/// The volumes' read model.
#[derive(Debug, Clone, Default)]
pub struct VolumeIndex {
    pub by_name: BTreeMap<String, std::sync::Arc<VolumeRecord>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// A volume plugin that cannot be found (dockerd's message).
    #[error("{0}")]
    NotFoundPlugin(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    System(String),
    #[error("the volume's actor is restarting; retry")]
    Unavailable,
    /// An actor did not answer in time (the message names it and the request).
    #[error("{0}")]
    Timeout(String),
}

impl HasKind for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::NotFound(_) | VolumeError::NotFoundPlugin(_) => ErrorKind::NotFound,
            VolumeError::Conflict(_) => ErrorKind::Conflict,
            VolumeError::Invalid(_) => ErrorKind::InvalidParameter,
            VolumeError::System(_) => ErrorKind::System,
            VolumeError::Unavailable | VolumeError::Timeout(_) => ErrorKind::Unavailable,
        }
    }
}

impl crate::supervisor::ask::Request for VolumeMsg {
    fn name(&self) -> &'static str {
        match self {
            VolumeMsg::Use { .. } => "use",
            VolumeMsg::Release { .. } => "release",
            VolumeMsg::Mount { .. } => "mount",
            VolumeMsg::Unmount { .. } => "unmount",
            VolumeMsg::Remove { .. } => "remove",
            VolumeMsg::PluginView { .. } => "plugin view",
            VolumeMsg::Resave => "resave",
        }
    }
}

pub enum VolumeMsg {
    /// A container names the volume (create).
    Use {
        container: String,
        reply: RpcReplyPort<Result<(), VolumeError>>,
    },
    /// The container is gone; with `remove_anonymous`, an anonymous
    /// volume nobody else uses goes with it (`rm -v`, `--rm`).
    Release {
        container: String,
        remove_anonymous: bool,
        reply: RpcReplyPort<Result<(), VolumeError>>,
    },
    /// Mount the volume for `user`: a container about to run (`event`: its
    /// destination and mode, for the `mount` event) or a copy into or out of
    /// a stopped container (no event). The host path.
    Mount {
        user: String,
        event: Option<(String, bool)>,
        reply: RpcReplyPort<Result<String, VolumeError>>,
    },
    /// `user` is done with the volume (a `device` volume is unmounted when
    /// its last user leaves); `event`: the `unmount` event.
    Unmount { user: String, event: bool },
    /// Delete the volume: refused while containers use it (409). With
    /// `force`, a plugin's volume whose plugin is gone or refuses is
    /// forgotten anyway (dockerd's `-f`).
    Remove {
        force: bool,
        reply: RpcReplyPort<Result<(), VolumeError>>,
    },
    /// A plugin's volume as its plugin sees it (`VolumeDriver.Get`: its
    /// `Status`, its `Mountpoint`); `None` for a local volume. Asked on a
    /// task of its own: the mailbox does not wait for the plugin.
    PluginView {
        reply: RpcReplyPort<Result<Option<serde_json::Value>, VolumeError>>,
    },
    /// The record the disk refused last is saved again (sent by the actor
    /// to itself).
    Resave,
}
