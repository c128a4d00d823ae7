//! The /dev/shm of a container with a shareable IPC namespace
//! (`--ipc shareable`): a tmpfs berthd mounts on the host under the
//! exec-root, so containers that join the namespace (`--ipc container:ID`)
//! bind-mount the same one (a mount inside another container's mount
//! namespace cannot be bind-mounted). As dockerd's `mounts/shm`. Unmounted
//! when the container's run ends.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Where container `id`'s shareable /dev/shm is mounted.
pub fn path(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("shm").join(id)
}

fn is_mount_point(p: &Path) -> bool {
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Mount container `id`'s /dev/shm tmpfs (`size` bytes) unless it is.
pub fn mount_shm(exec_root: &Path, id: &str, size: u64) -> Result<PathBuf, String> {
    let p = path(exec_root, id);
    std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
    if !is_mount_point(&p) {
        mount(
            Some("shm"),
            &p,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(format!("mode=1777,size={size}").as_str()),
        )
        .map_err(|e| format!("mounting the shareable /dev/shm: {e}"))?;
    }
    Ok(p)
}

/// The tmpfs goes with its content; the directory too (never recursively).
pub fn unmount_shm(exec_root: &Path, id: &str) {
    let p = path(exec_root, id);
    if is_mount_point(&p) {
        let _ = umount2(&p, MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir(&p);
}
