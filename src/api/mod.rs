//! The only code that knows hyper: the FrontDoor actor, the route table,
//! version negotiation, errors, query and filters parsing, the handlers.

pub mod body;
pub mod errors;
pub mod filters;
pub mod hijack;
pub mod render;
pub mod router;
pub mod routes;
pub mod schema;
pub mod server;
pub mod shared;
pub mod version;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use berth_actors::events::Events;
use berth_actors::view::ViewReader;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DaemonConfig;
use crate::sys::host::HostFacts;

/// Everything the handlers read. Shared by every FrontDoor incarnation, so
/// a restart of the actor loses no state.
pub struct ApiContext {
    /// The live configuration (replaced on SIGHUP reload).
    pub config: watch::Receiver<Arc<DaemonConfig>>,
    /// Startup warnings: configuration, listeners, host.
    pub warnings: Vec<String>,
    pub host: HostFacts,
    pub engine_id: String,
    /// Images: the store's snapshot and handle, the storage driver, blobs.
    pub images: Arc<crate::images::ImageService>,
    /// Containers: the read model, the host adapter, execs.
    pub containers: Arc<crate::containers::ContainerService>,
    /// Networks: the read model, the host side, the DNS servers.
    pub networks: Arc<crate::network::NetworkService>,
    /// Volumes: the read model and the local driver.
    pub volumes: Arc<crate::volumes::VolumeService>,
    pub view: ViewReader,
    pub events: Events,
    pub routes: Vec<router::Route>,
    /// Cancelled when berthd shuts down: connections drain, streams end.
    pub shutdown: CancellationToken,
    /// Tracks every connection task, for the shutdown drain.
    pub connections: TaskTracker,
    /// Open `/events` streams (`docker info` NEventsListener).
    pub event_listeners: AtomicUsize,
}

impl ApiContext {
    pub fn config(&self) -> Arc<DaemonConfig> {
        self.config.borrow().clone()
    }
}
