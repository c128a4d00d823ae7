//! Network namespaces as files: `<exec-root>/netns/<container id>`, a bind
//! mount of the namespace, so it outlives berthd and the runtime joins it by
//! path. Work inside a namespace runs on a dedicated thread that enters it
//! and then ends: a tokio worker never changes namespace.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// The directory holding the namespace files.
pub fn dir(exec_root: &Path) -> PathBuf {
    exec_root.join("netns")
}

/// Make the directory a shared mount point (as `ip netns` does), so an
/// unmount reaches the copies in containers' mount namespaces.
pub fn prepare_dir(d: &Path) -> io::Result<()> {
    std::fs::create_dir_all(d)?;
    let canon = std::fs::canonicalize(d)?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let target = canon.to_string_lossy();
    let mounted = mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_ref()));
    if !mounted {
        mount(
            Some(&canon),
            &canon,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(io::Error::from)?;
    }
    mount(
        None::<&str>,
        &canon,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Unmount the directory (when no namespace is left in it).
pub fn release_dir(d: &Path) {
    let empty = std::fs::read_dir(d)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true);
    if empty {
        let _ = umount2(d, MntFlags::MNT_DETACH);
    }
}

/// Create a new network namespace bound at `path`.
pub fn create(path: &Path) -> io::Result<()> {
    File::create(path)?;
    let p = path.to_path_buf();
    let r = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?;
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Whether `path` is a bound namespace (survives a berthd restart).
pub fn exists(path: &Path) -> bool {
    let Ok(m) = std::fs::metadata("/proc/self/ns/net") else {
        return false;
    };
    // An nsfs file has the namespace filesystem's device.
    std::fs::metadata(path)
        .map(|p| {
            use std::os::unix::fs::MetadataExt;
            p.dev() == m.dev()
        })
        .unwrap_or(false)
}

/// Unbind and remove a namespace file; the namespace goes with its last user.
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Run `f` on a new thread inside the namespace at `path`.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let ns = File::open(path)?;
    std::thread::spawn(move || -> io::Result<T> {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}
