//! The only code that knows hyper: the FrontDoor actor, the route table,
//! version negotiation, errors, query and filters parsing, the handlers.

pub mod authz;
pub mod body;
pub mod conns;
pub mod errors;
pub mod filters;
pub mod hijack;
pub mod render;
pub mod router;
pub mod routes;
pub mod schema;
pub mod server;
pub mod shared;
pub mod target;
pub mod version;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use berth_actors::events::Events;
use berth_actors::view::ViewReader;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DaemonConfig;
use crate::facts::HostFacts;

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
    /// The cap on open client connections.
    pub conns: Arc<conns::ConnLimit>,
    /// The cluster as the membership actor sees it (with a cluster store).
    pub cluster: Option<watch::Receiver<berth_actors::cluster::ClusterInfo>>,
}

impl ApiContext {
    pub fn config(&self) -> Arc<DaemonConfig> {
        self.config.borrow().clone()
    }
}

/// The front door's shape, checked on its source: it parses, asks the
/// actors and renders; it never reaches the host (`src/sys`, except the
/// listeners it serves) nor speaks the shim protocol, and no route file
/// imports another.
#[cfg(test)]
mod shape {
    use std::path::{Path, PathBuf};

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The source outside `#[cfg(test)]` modules.
    fn code(p: &Path) -> String {
        let s = std::fs::read_to_string(p).unwrap();
        match s.find("#[cfg(test)]") {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    }

    #[test]
    fn the_front_door_only_parses_asks_and_renders() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut all = Vec::new();
        files(&root, &mut all);
        assert!(all.len() > 10);
        let mut bad = Vec::new();
        for p in &all {
            let s = code(p);
            for (i, line) in s.lines().enumerate() {
                let sys = line.contains("crate::sys") && !line.contains("crate::sys::listeners");
                let shim = line.contains("protocol::shim");
                if sys || shim {
                    bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
            // A route file may use the router, errors, renderers and
            // shared helpers, never another route file.
            let is_route = p.starts_with(root.join("routes")) && !p.ends_with("routes/mod.rs");
            if is_route {
                for line in s.lines().map(str::trim) {
                    if line.starts_with("use ")
                        && (line.contains("routes::") || line.contains("super::"))
                    {
                        bad.push(format!("{}: {}", p.display(), line));
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "the front door reaches past the actors:\n{}",
            bad.join("\n")
        );
    }
}
