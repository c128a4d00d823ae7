//! Containers on the berthd side: create (record from the API body), the
//! real host adapter (storage, OCI bundle, shim), logs, exec.

pub mod archive;
pub mod changes;
pub mod copy;
pub mod cp_root;
pub mod create;
pub mod etc_files;
pub mod etc_values;
pub mod exec;
pub mod health;
pub mod host;
pub mod logs;
pub mod names;
pub mod shim_client;
pub mod shm;
pub mod spec;
pub mod stats;
pub mod subpath;
pub mod top;

use std::sync::Arc;

use berth_actors::container::Containers;
use tokio::sync::watch;

use crate::config::DaemonConfig;
use crate::facts::HostFacts;
use crate::images::ImageService;

pub struct ContainerService {
    pub containers: Containers,
    pub images: Arc<ImageService>,
    pub host: Arc<host::Host>,
    pub config: watch::Receiver<Arc<DaemonConfig>>,
    pub facts: HostFacts,
    pub execs: exec::Execs,
    /// Open log streams (their LogStream actors resume from these).
    pub logs: berth_actors::logs::LogSessions,
}

impl ContainerService {
    /// The bytes of a container's writable layer (`SizeRw`).
    pub fn rw_size(&self, rec: &berth_actors::container::ContainerRecord) -> u64 {
        crate::sys::fsfd::tree_size(&self.host.driver_diff(&rec.layer))
    }
}
