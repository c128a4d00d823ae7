//! `VolumeOptions.Subpath`: a part of a volume mounted into a container.
//!
//! The subpath is resolved by the kernel *inside* the volume
//! (`openat2(RESOLVE_IN_ROOT)`: a symlink the container planted in the
//! volume resolves within it, `..` never climbs out), and the object found
//! is bind-mounted through its descriptor onto a staging point under the
//! exec-root. The runtime mounts that staging point into the container, so
//! a component swapped for a symlink between the check and the runtime's
//! mount changes nothing: what was resolved is what is mounted (moby's
//! safepath does the same). Once the runtime has made the container's
//! mounts, the staging mounts go (the container keeps its copy).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_actors::container::ContainerRecord;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The staging mounts of one start, unmounted when dropped.
#[derive(Default)]
pub struct Staged {
    /// The staging point of each subpath mount, by destination.
    pub by_destination: BTreeMap<String, PathBuf>,
    dir: Option<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        for p in self.by_destination.values() {
            unstage(p);
        }
        if let Some(d) = &self.dir {
            // Never recursive: only empty mount points are removed.
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn unstage(p: &Path) {
    let _ = umount2(p, MntFlags::MNT_DETACH);
    // The mount point itself, never what was mounted on it.
    if std::fs::remove_dir(p).is_err() {
        let _ = std::fs::remove_file(p);
    }
}

/// The directory of `id`'s staging points.
fn dir_of(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("subpaths").join(id)
}

/// Stage every subpath mount of `rec` (`volume_path`: a volume's host
/// directory).
pub fn stage(
    rec: &ContainerRecord,
    volume_path: &dyn Fn(&str) -> PathBuf,
    exec_root: &Path,
) -> Result<Staged, String> {
    let mut staged = Staged::default();
    let wanted: Vec<_> = rec
        .mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.subpath.is_empty())
        .collect();
    if wanted.is_empty() {
        return Ok(staged);
    }
    let dir = dir_of(exec_root, &rec.id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    staged.dir = Some(dir.clone());
    for (i, m) in wanted.iter().enumerate() {
        let data = volume_path(&m.name);
        let shown = data.join(&m.subpath);
        let not_accessible = |e: nix::errno::Errno| {
            format!(
                "cannot access path {}: {}",
                shown.display(),
                e.desc().to_lowercase()
            )
        };
        let vol: OwnedFd = nix::fcntl::open(
            &data,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(not_accessible)?;
        let target = openat2(
            vol.as_fd(),
            m.subpath.as_str(),
            OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
        )
        .map_err(not_accessible)?;
        let st = nix::sys::stat::fstat(target.as_fd()).map_err(not_accessible)?;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let point = dir.join(i.to_string());
        let made = if is_dir {
            std::fs::create_dir(&point)
        } else {
            std::fs::File::create(&point).map(|_| ())
        };
        made.map_err(|e| format!("creating {}: {e}", point.display()))?;
        staged
            .by_destination
            .insert(m.destination.clone(), point.clone());
        // Through the descriptor: exactly the object resolved above.
        let src = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(
            Some(src.as_str()),
            &point,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("mounting subpath {}: {e}", shown.display()))?;
        mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("mounting subpath {}: {e}", shown.display()))?;
    }
    Ok(staged)
}

/// At startup: staging points a previous run left (killed between the
/// mount and the runtime's create) are unmounted and removed.
pub fn sweep(exec_root: &Path) {
    let Ok(ids) = std::fs::read_dir(exec_root.join("subpaths")) else {
        return;
    };
    for id in ids.flatten() {
        if let Ok(points) = std::fs::read_dir(id.path()) {
            for p in points.flatten() {
                unstage(&p.path());
            }
        }
        let _ = std::fs::remove_dir(id.path());
    }
}
