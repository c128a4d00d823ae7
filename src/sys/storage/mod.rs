//! Storage drivers behind one trait: overlay2 (default where the kernel
//! has overlayfs) and vfs (plain copies, works everywhere).

mod copy;
mod overlay2;
mod vfs;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use overlay2::Overlay2;
pub use vfs::Vfs;

use super::layers::WhiteoutMode;

pub trait StorageDriver: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// `docker info` status lines.
    fn status(&self) -> Vec<[String; 2]>;
    /// How layer tars must write whiteouts for this driver.
    fn whiteouts(&self) -> WhiteoutMode;
    /// Create layer `id` above `parent`; returns the directory the layer's
    /// tar is applied into.
    fn create(&self, id: &str, parent: Option<&str>) -> io::Result<PathBuf>;
    fn remove(&self, id: &str) -> io::Result<()>;
    /// Layer IDs present on disk.
    fn list(&self) -> io::Result<BTreeSet<String>>;
    /// A read-only view of layer `id` with everything below it.
    fn mount(&self, id: &str) -> io::Result<PathBuf>;
    /// A writable view of layer `id` (made by `create` above an image's top
    /// layer): writes land in `id` only, the layers below stay untouched.
    /// This is a container's root filesystem.
    fn mount_rw(&self, id: &str) -> io::Result<PathBuf>;
    fn unmount(&self, id: &str) -> io::Result<()>;
    /// The writable view of layer `id` for a moment (`docker cp` into a
    /// stopped container, `docker export`): mounted if it is not, and
    /// given back with [`StorageDriver::give_back_rw`]. A view mounted by
    /// someone else (a container's start, before berthd restarted) or
    /// mounted by its container in between is never unmounted by the
    /// borrower.
    fn borrow_rw(&self, id: &str) -> io::Result<PathBuf> {
        self.mount_rw(id)
    }
    fn give_back_rw(&self, _id: &str) -> io::Result<()> {
        Ok(())
    }
    /// `GraphDriver.Data` of `docker inspect` for layer `id` (None: null).
    /// At startup: unmount what a previous run left mounted, except the
    /// layers in `keep` (the root filesystems of containers that may still
    /// run, adopted by live-restore).
    fn reconcile_mounts(&self, _keep: &std::collections::BTreeSet<String>) {}
    fn describe(&self, _id: &str) -> Option<std::collections::BTreeMap<String, String>> {
        None
    }
}

fn valid_id(id: &str) -> io::Result<()> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad layer id {id:?}"),
        ));
    }
    Ok(())
}

/// Pick the driver: the configured one, else overlay2 when a test mount
/// works on the data-root, else vfs.
pub fn open(
    configured: &str,
    data_root: &Path,
    opts: &[String],
) -> Result<Arc<dyn StorageDriver>, String> {
    if let Some(o) = opts.first() {
        return Err(format!(
            "storage-opts {o:?}: no storage option is supported yet"
        ));
    }
    match configured {
        "vfs" => Vfs::new(&data_root.join("vfs"))
            .map(|d| Arc::new(d) as _)
            .map_err(|e| format!("vfs: {e}")),
        "overlay2" | "overlay" => Overlay2::new(&data_root.join("overlay2"))
            .map(|d| Arc::new(d) as _)
            .map_err(|e| format!("error initializing graphdriver: overlay2: {e}")),
        "" => match Overlay2::new(&data_root.join("overlay2")) {
            Ok(d) => Ok(Arc::new(d)),
            Err(e) => {
                tracing::warn!("overlay2 unavailable ({e}); using vfs");
                Vfs::new(&data_root.join("vfs"))
                    .map(|d| Arc::new(d) as _)
                    .map_err(|e| format!("vfs: {e}"))
            }
        },
        other => Err(format!("driver not supported: {other}")),
    }
}
