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

/// A volume removal renames the volume's directory to this prefix first,
/// so the volume (record and data) is gone at once; the data goes after.
pub const REMOVING: &str = ".removing-";

/// Every volume record (`<dir>/<name>/volume.json`). As dockerd's local
/// driver lists every directory under its root, a directory holding
/// `_data` without a readable record (a create killed before its record
/// was saved, a tampered record) is listed as a local volume, with a
/// warning; removals a berthd did not live to finish are finished.
pub fn load_records(dir: &Path) -> Vec<VolumeRecord> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(REMOVING) {
            warn!(dir = %e.path().display(), "finishing a volume removal");
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                warn!(dir = %e.path().display(), "removing it: {err}");
            }
            continue;
        }
        let p = e.path().join("volume.json");
        let why = match std::fs::read(&p) {
            Ok(b) => match serde_json::from_slice::<VolumeRecord>(&b) {
                Ok(r) => {
                    out.push(r);
                    continue;
                }
                Err(err) => format!("its record {} is unreadable: {err}", p.display()),
            },
            Err(err) => format!("its record {} cannot be read: {err}", p.display()),
        };
        let data = e.path().join("_data");
        if !valid_name(&name) || !data.is_dir() {
            continue;
        }
        warn!(volume = %name, "{why}; listed as a local volume");
        let created = std::fs::metadata(&data)
            .and_then(|m| m.modified())
            .map(chrono::DateTime::<chrono::Utc>::from)
            .unwrap_or_else(|_| chrono::Utc::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        out.push(VolumeRecord {
            version: berth_actors::volume::VOLUME_RECORD_VERSION,
            name,
            driver: berth_actors::volume::driver::LOCAL.into(),
            created,
            labels: Default::default(),
            options: Default::default(),
            anonymous: false,
            mountpoint: data.display().to_string(),
            scope: "local".into(),
            users: Default::default(),
            active: Default::default(),
        });
    }
    out
}

/// dockerd's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    berth_actors::container::valid_name(n)
}
