//! The read model: an immutable snapshot that actors publish and readers
//! (`info`, `ps`, `system df`) borrow without sending any message.

use std::sync::Arc;

use tokio::sync::watch;

/// Counts and sizes the system endpoints report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Bumped by every publish.
    pub version: u64,
    pub containers_running: u64,
    pub containers_paused: u64,
    pub containers_stopped: u64,
    pub images: u64,
    pub layers_size: u64,
}

impl Snapshot {
    pub fn containers(&self) -> u64 {
        self.containers_running + self.containers_paused + self.containers_stopped
    }
}

/// Write side of the read model.
#[derive(Debug, Clone)]
pub struct ViewPublisher {
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

/// Read side of the read model.
pub type ViewReader = watch::Receiver<Arc<Snapshot>>;

impl ViewPublisher {
    pub fn new() -> (ViewPublisher, ViewReader) {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        (ViewPublisher { tx: Arc::new(tx) }, rx)
    }

    /// Apply `f` to a copy of the current snapshot and publish the result.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        self.tx.send_modify(|cur| {
            let mut next = (**cur).clone();
            f(&mut next);
            next.version = cur.version + 1;
            *cur = Arc::new(next);
        });
    }

    pub fn reader(&self) -> ViewReader {
        self.tx.subscribe()
    }
}

/// The one entry whose key starts with `prefix` in an ID-keyed map:
/// `Ok(None)` for none, `Err(())` when more than one matches (dockerd's
/// unique-prefix lookup of containers and networks).
#[allow(clippy::result_unit_err)]
pub fn unique_prefix<'a, V>(
    map: &'a std::collections::BTreeMap<String, V>,
    prefix: &str,
) -> Result<Option<&'a V>, ()> {
    let mut hits = map
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix));
    match (hits.next(), hits.next()) {
        (Some((_, v)), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(()),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_published_snapshots() {
        let (p, r) = ViewPublisher::new();
        assert_eq!(r.borrow().version, 0);
        p.update(|s| s.images = 3);
        let snap = r.borrow().clone();
        assert_eq!((snap.version, snap.images), (1, 3));
        assert_eq!(p.reader().borrow().images, 3);
    }
}
