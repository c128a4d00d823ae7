//! The root `docker cp` works in, with the container's volumes and bind
//! mounts where the container sees them.
//!
//! A running container: `/proc/<pid>/root` (its own mount namespace). A
//! stopped one has no namespace left, so one is made for the copy, as
//! dockerd mounts a stopped container's volumes for `cp`: a dedicated
//! thread unshares its mount namespace (never a tokio worker, never a pool
//! thread: the thread exits when the copy is done and its namespace, with
//! every mount made in it, goes with it; the host's mount table is never
//! touched), marks it a slave of the host's, and bind-mounts each volume
//! and bind source onto its destination, resolved *inside* the root with
//! `openat2(RESOLVE_IN_ROOT)` and mounted through the descriptor (a symlink
//! the container planted cannot send a mount outside its root). The copy
//! runs on that thread, from a root descriptor opened in that namespace.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};

use super::archive::errno;

/// One mount laid over a stopped container's root for the copy.
#[derive(Debug, Clone)]
pub struct Bind {
    /// Host path: a volume's data directory or a bind source.
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    pub rw: bool,
}

pub enum RootSpec {
    /// A running container's root as it sees it (`/proc/<pid>/root`).
    Live(PathBuf),
    /// A stopped container: its mounted root filesystem and its mounts.
    Stopped { rootfs: PathBuf, binds: Vec<Bind> },
}

/// Runs `f` on a thread of its own with a descriptor of the root `spec`
/// describes (or why it could not be made). `keep` (the lease of the root
/// filesystem and volumes) is dropped once the thread is done, on a thread
/// of the host's mount namespace (the copy's thread has a namespace of its
/// own: an unmount there would leave the host's mount in place).
pub fn spawn<K: Send + 'static>(
    spec: RootSpec,
    keep: K,
    f: impl FnOnce(io::Result<OwnedFd>) + Send + 'static,
) -> io::Result<()> {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = finished.await;
        let _ = tokio::task::spawn_blocking(move || drop(keep)).await;
    });
    std::thread::Builder::new()
        .name("berth-cp".into())
        .spawn(move || {
            let root = match spec {
                RootSpec::Live(p) => File::open(p).map(OwnedFd::from),
                RootSpec::Stopped { rootfs, binds } => enter(&rootfs, binds),
            };
            f(root);
            let _ = done.send(());
        })?;
    Ok(())
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/thread-self/fd/{}", fd.as_raw_fd())
}

/// Only on the thread `spawn` made: a private mount namespace with the
/// binds over `rootfs`; the root descriptor opened in it.
fn enter(rootfs: &Path, mut binds: Vec<Bind>) -> io::Result<OwnedFd> {
    // CLONE_FS with it: this thread's root and cwd move to the new
    // namespace's copies; the other threads of berthd keep theirs.
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).map_err(errno)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(errno)?;
    let root: OwnedFd = File::open(rootfs)?.into();
    // Parents before children: /data before /data/sub.
    binds.sort_by_key(|b| b.destination.split('/').filter(|c| !c.is_empty()).count());
    for b in &binds {
        // O_PATH: a socket or a FIFO source is never opened for I/O.
        let src = nix::fcntl::open(&b.source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| {
                io::Error::new(
                    errno(e).kind(),
                    format!("mount source {}: {e}", b.source.display()),
                )
            })?;
        let st = nix::sys::stat::fstat(src.as_fd()).map_err(errno)?;
        let dir = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
        let dst = make_in_root(&root, &b.destination, dir)?;
        mount(
            Some(fd_path(&src).as_str()),
            fd_path(&dst).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(errno)?;
        if !b.rw {
            // The mount now on top of the destination, resolved again.
            let top = open_in_root(&root, &b.destination, OFlag::O_PATH)?;
            mount(
                None::<&str>,
                fd_path(&top).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(errno)?;
        }
    }
    Ok(root)
}

fn open_in_root(root: &OwnedFd, path: &str, flags: OFlag) -> io::Result<OwnedFd> {
    super::archive::open_in_root(root, path, flags).map_err(errno)
}

/// The mount point at `path` inside the root, created (directories, and a
/// file for a file source) where missing, as the runtime does at start.
/// Walked one component at a time by descriptor, never following a
/// symlink by the kernel: a symlink's target is read and walked the same
/// way, an absolute one from the container's root, `..` never above it.
fn make_in_root(root: &OwnedFd, path: &str, dir: bool) -> io::Result<OwnedFd> {
    let comps = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    let mut todo: VecDeque<String> = comps(path).into();
    // The directories walked below the root.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().unwrap_or(root);
        let last = todo.is_empty();
        match fstatat(cur.as_fd(), c.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st)
                if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
                    == SFlag::S_IFLNK =>
            {
                links += 1;
                if links > 40 {
                    return Err(errno(Errno::ELOOP));
                }
                let target = readlinkat(cur.as_fd(), c.as_str()).map_err(errno)?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    stack.clear();
                }
                for x in comps(&target).into_iter().rev() {
                    todo.push_front(x);
                }
                continue;
            }
            Ok(_) => {}
            Err(Errno::ENOENT) if last && !dir => {
                openat(
                    cur.as_fd(),
                    c.as_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map_err(errno)?;
            }
            Err(Errno::ENOENT) => {
                mkdirat(cur.as_fd(), c.as_str(), Mode::from_bits_truncate(0o755)).map_err(errno)?;
            }
            Err(e) => return Err(errno(e)),
        }
        let fd = openat(
            cur.as_fd(),
            c.as_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        stack.push(fd);
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => root.try_clone(),
    }
}
