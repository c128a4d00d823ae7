//! Volumes on the host: the `local` driver (directories under
//! `<data-root>/volumes`, or a mount of `type`/`device`/`o`), parsing of a
//! container's `-v`/`--mount`/`VOLUME` into mount points, copy-up.

pub mod copyup;
pub mod host;
pub mod mounts;

use std::path::Path;
use std::sync::Arc;

use berth_actors::volume::{VolumeRecord, Volumes};
use tracing::warn;

pub struct VolumeService {
    pub volumes: Volumes,
    pub host: Arc<host::VolHost>,
}

impl VolumeService {
    /// The host directory a container's mount of volume `name` binds: its
    /// mountpoint (a plugin's volume: where its plugin mounted it for
    /// this start).
    pub fn data_path(&self, name: &str) -> std::path::PathBuf {
        match self.volumes.lookup(name) {
            Ok(v) if !v.mountpoint.is_empty() => std::path::PathBuf::from(&v.mountpoint),
            _ => self.host.data(name),
        }
    }

    /// The bytes a volume holds (`UsageData.Size`, prune's reclaimed space).
    pub fn size(&self, v: &VolumeRecord) -> u64 {
        crate::sys::fsfd::tree_size(Path::new(&v.mountpoint))
    }
}

/// Every volume record (`<dir>/<name>/volume.json`); unreadable ones are
/// reported and skipped.
pub fn load_records(dir: &Path) -> Vec<VolumeRecord> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path().join("volume.json");
        let Ok(b) = std::fs::read(&p) else { continue };
        match serde_json::from_slice::<VolumeRecord>(&b) {
            Ok(r) => out.push(r),
            Err(err) => warn!(path = %p.display(), "volume record is unreadable; skipped: {err}"),
        }
    }
    out
}

/// dockerd's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    berth_actors::container::valid_name(n)
}
