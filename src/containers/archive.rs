//! `docker cp`: stat, read and write paths of a container's filesystem.
//!
//! Every path is resolved by the kernel *inside* the container's root:
//! `openat2(RESOLVE_IN_ROOT)` from a descriptor of that root (for a running
//! container `/proc/<pid>/root`, so its volumes and bind mounts are seen as
//! the container sees them; for a stopped one its mounted root filesystem).
//! Below the resolved path everything is walked by descriptor with
//! `O_NOFOLLOW`: a symlink is read or written as a symlink, never followed,
//! and a symlink in the way of an extracted entry fails the copy. Nothing of
//! the container is executed, loaded or looked up (no NSS): ownership is
//! numeric.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::sys::fsfd;
pub(crate) use crate::sys::fsfd::errno;

/// `path` (absolute or not, in the container) opened from `root` with
/// every component resolved by the kernel inside that root.
pub(crate) fn open_in_root(root: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    openat2(
        root.as_fd(),
        if rel.is_empty() { "." } else { rel },
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

/// `path` split into its parent (resolved in the root) and last name;
/// `/.` at the end names the directory itself (dockerd calls it `.`).
fn split(path: &str) -> (String, String) {
    let mut p = path;
    loop {
        let q = p.trim_end_matches('/');
        let q = q.strip_suffix("/.").unwrap_or(q);
        if q == p {
            break;
        }
        p = q;
    }
    match p.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() && name != "." => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name.into(),
        ),
        None if !p.is_empty() && p != "." => ("/".into(), p.into()),
        _ => ("/".into(), String::new()),
    }
}

/// Whether `path` asks for the content of a directory (`dir/.`), which
/// dockerd archives under the name `.`.
fn names_content(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// The entry at `path`: the directory holding it, its name, its stat,
/// and, when the last component is followed (a trailing `/` or `/.`), a
/// descriptor of the entry itself, resolved in the root like every other
/// component (never a plain `stat` or `open` of a symlink, which would
/// resolve an absolute target from the host's root).
pub fn resolve(
    root: &OwnedFd,
    path: &str,
) -> io::Result<(OwnedFd, String, FileStat, Option<OwnedFd>)> {
    let (parent, name) = split(path);
    let dir = open_in_root(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(errno)?;
    let dot = names_content(path);
    if name.is_empty() {
        let st = nix::sys::stat::fstat(dir.as_fd()).map_err(errno)?;
        return Ok((dir, if dot { "." } else { "/" }.into(), st, None));
    }
    if path.ends_with('/') || dot {
        let fd = open_in_root(root, path, OFlag::O_PATH).map_err(errno)?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(errno)?;
        return Ok((dir, if dot { ".".into() } else { name }, st, Some(fd)));
    }
    let st = fstatat(dir.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)?;
    Ok((dir, name, st, None))
}

/// dockerd's refusal of a copy into a read-only place, decided on the
/// destination path (cleaned, not resolved) before anything is written:
/// the innermost mount holding it, else the root filesystem.
pub fn read_only_refusal(
    mounts: &[berth_actors::container::MountPoint],
    readonly_rootfs: bool,
    path: &str,
) -> Option<&'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let holds = |dest: &str| {
        let d: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
        parts.starts_with(&d)
    };
    let innermost = mounts
        .iter()
        .filter(|m| holds(&m.destination))
        .max_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
    match innermost {
        Some(m) if !m.rw => Some("mounted volume is marked read-only"),
        None if readonly_rootfs => Some("container rootfs is marked read-only"),
        _ => None,
    }
}

/// The `X-Docker-Container-Path-Stat` value: base64 of dockerd's JSON,
/// `mode` in Go's FileMode bits.
pub fn stat_header(root: &OwnedFd, path: &str) -> io::Result<String> {
    use base64::Engine;
    let (dir, name, st, _) = resolve(root, path)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let mut mode = st.st_mode & 0o777;
    let mut link = String::new();
    if kind == SFlag::S_IFDIR {
        mode |= 1 << 31;
    } else if kind == SFlag::S_IFLNK {
        mode |= 1 << 27;
        link = readlinkat(dir.as_fd(), name.as_str())
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let mtime = chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    let v = serde_json::json!({
        "name": name, "size": st.st_size, "mode": mode, "mtime": mtime, "linkTarget": link,
    });
    Ok(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

/// A tar of the entry at `path` (directories with their content), names
/// relative to its parent, as dockerd sends it; hard links stay hard
/// links. The content of kernel filesystems a running container has
/// mounted (/proc, /sys, /dev/pts, cgroups, ...) is left out: dockerd
/// archives the container's root filesystem, where those are empty.
pub fn read_archive(root: &OwnedFd, path: &str, out: impl Write) -> io::Result<()> {
    let (dir, name, st, followed) = resolve(root, path)?;
    let mut w = TarWalk {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    w.tar.follow_symlinks(false);
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let is_root = followed.is_none() && (name == "/" || name == ".");
    let top = if name == "/" {
        b".".to_vec()
    } else {
        name.as_bytes().to_vec()
    };
    if kind == SFlag::S_IFDIR {
        let fd = if is_root {
            open_in_root(root, "/", OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(errno)?
        } else if followed.is_some() {
            // Resolved in the root again, now to read it.
            open_in_root(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(errno)?
        } else {
            openat(
                dir.as_fd(),
                name.as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?
        };
        w.add_dir(fd, &top, &st, 0)?;
    } else if followed.is_some() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    } else {
        w.add_entry(&dir, OsStr::new(&name), &top, &st)?;
    }
    w.tar.finish()
}

/// Exactly `size` bytes of `f`: a file that shrinks while it is read is
/// padded with zeros, one that grows is cut, so the tar stays well-formed.
pub(crate) fn sized(f: File, size: u64) -> impl Read {
    f.take(size).chain(io::repeat(0)).take(size)
}

/// Kernel filesystems whose content is not the container's files.
fn is_kernel_fs(fd: &OwnedFd) -> bool {
    use nix::sys::statfs::{self, FsType};
    const KINDS: &[FsType] = &[
        statfs::PROC_SUPER_MAGIC,
        statfs::SYSFS_MAGIC,
        statfs::DEVPTS_SUPER_MAGIC,
        statfs::CGROUP_SUPER_MAGIC,
        statfs::CGROUP2_SUPER_MAGIC,
        statfs::SECURITYFS_MAGIC,
        statfs::DEBUGFS_MAGIC,
        statfs::TRACEFS_MAGIC,
        statfs::BPF_FS_MAGIC,
        statfs::HUGETLBFS_MAGIC,
        FsType(0x1980_0202), // mqueue
        FsType(0x6265_6570), // configfs
        FsType(0x6573_5546), // fusectl
        FsType(0x6165_676c), // pstore
    ];
    statfs::fstatfs(fd).is_ok_and(|s| KINDS.contains(&s.filesystem_type()))
}

struct TarWalk<W: Write> {
    tar: tar::Builder<W>,
    /// Files with more than one link, by (device, inode): their first name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarWalk<W> {
    fn add_entry(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        path_in_tar: &[u8],
        st: &FileStat,
    ) -> io::Result<()> {
        // Devices, fifos, sockets: not copied.
        super::changes::append_entry(
            &mut self.tar,
            dir,
            name,
            path_in_tar,
            st,
            &mut self.links,
            false,
        )
    }

    fn add_dir(
        &mut self,
        fd: OwnedFd,
        path_in_tar: &[u8],
        st: &FileStat,
        depth: usize,
    ) -> io::Result<()> {
        if depth > fsfd::MAX_DEPTH {
            return Err(io::Error::other(format!(
                "directory tree deeper than {} levels",
                fsfd::MAX_DEPTH
            )));
        }
        let mut h = fsfd::tar_header(st, tar::EntryType::Directory);
        let mut dir_name = path_in_tar.to_vec();
        dir_name.push(b'/');
        self.tar
            .append_data(&mut h, OsStr::from_bytes(&dir_name), io::empty())?;
        if is_kernel_fs(&fd) {
            return Ok(());
        }
        for n in fsfd::names(fd.as_fd())? {
            let name = OsStr::from_bytes(&n);
            let mut child = path_in_tar.to_vec();
            child.push(b'/');
            child.extend_from_slice(&n);
            let st = match fstatat(fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(errno(e)),
            };
            if fsfd::kind(&st) == SFlag::S_IFDIR {
                let sub = match fsfd::open_dir(fd.as_fd(), name) {
                    Ok(sub) => sub,
                    // Gone or swapped for a link meanwhile: never followed.
                    Err(nix::errno::Errno::ENOENT)
                    | Err(nix::errno::Errno::ELOOP)
                    | Err(nix::errno::Errno::ENOTDIR) => continue,
                    Err(e) => return Err(errno(e)),
                };
                let st = nix::sys::stat::fstat(sub.as_fd()).map_err(errno)?;
                self.add_dir(sub, &child, &st, depth + 1)?;
            } else {
                self.add_entry(&fd, name, &child, &st)?;
            }
        }
        Ok(())
    }
}

/// Why an extraction was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("Could not find the file {0} in container")]
    NotFound(String),
    #[error("extraction point is not a directory")]
    NotADirectory,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory (and back).
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID` (`docker cp -a`): everything owned by the container's
    /// configured user (`Config.User`, resolved in the container's own
    /// /etc/passwd and /etc/group) when it has one. Otherwise, as dockerd,
    /// the archive's owners are kept.
    pub copy_uid_gid: bool,
    /// The container's `Config.User`.
    pub user: String,
}

fn invalid_entry(p: &[u8], why: impl std::fmt::Display) -> ExtractError {
    ExtractError::Invalid(format!("cannot extract {}: {why}", fsfd::shown(p)))
}

/// The directory `comps` below `base`, walked by descriptor without
/// following any symlink; missing directories are created (0755) when
/// `create`.
fn walk_dirs(
    base: &OwnedFd,
    comps: &[&OsStr],
    create: bool,
    shown: &[u8],
) -> Result<OwnedFd, ExtractError> {
    let mut cur = base.try_clone()?;
    for c in comps {
        let next = match fsfd::open_dir(cur.as_fd(), c) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) if create => {
                match mkdirat(cur.as_fd(), *c, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(ExtractError::Io(errno(e))),
                }
                fsfd::open_dir(cur.as_fd(), c).map_err(|e| {
                    invalid_entry(
                        shown,
                        format_args!("{} changed during the copy ({e})", Path::new(c).display()),
                    )
                })?
            }
            Err(e) => {
                return Err(invalid_entry(
                    shown,
                    format_args!(
                        "{} is not a directory in the container ({e})",
                        Path::new(c).display()
                    ),
                ))
            }
        };
        cur = next;
    }
    Ok(cur)
}

/// Extract a tar into the directory at `path` (resolved in the root).
/// Each entry is created below it by descriptor, one component at a time,
/// never through a symlink; its owner, mode and times are set on the
/// descriptor of what was created (owner first, so set-id bits stay).
pub fn extract(
    root: &OwnedFd,
    path: &str,
    input: impl Read,
    opts: &ExtractOptions,
) -> Result<(), ExtractError> {
    let base =
        open_in_root(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| match e {
            nix::errno::Errno::ENOENT => ExtractError::NotFound(path.to_string()),
            nix::errno::Errno::ENOTDIR => ExtractError::NotADirectory,
            e => ExtractError::Io(errno(e)),
        })?;
    let owner = if opts.copy_uid_gid && !opts.user.is_empty() {
        let u = crate::sys::runtime::user::resolve_in(root, &opts.user)
            .map_err(|e| ExtractError::Invalid(e.to_string()))?;
        Some((u.uid, u.gid))
    } else {
        None
    };
    // Directories' times are set last: extracting their children changes them.
    let mut dir_times: Vec<(Vec<u8>, i64)> = Vec::new();
    fsfd::entries(
        input,
        |e| ExtractError::Invalid(format!("invalid tar archive: {e}")),
        |e| extract_one(&base, e, opts, owner, &mut dir_times),
    )
    .map_err(|e| match e {
        ExtractError::Io(e) => ExtractError::Io(io::Error::new(
            e.kind(),
            format!("copying into {path}: {e}"),
        )),
        e => e,
    })?;
    for (p, mtime) in dir_times.iter().rev() {
        let comps: Vec<&OsStr> = p
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .map(OsStr::from_bytes)
            .collect();
        if let Ok(d) = walk_dirs(&base, &comps, false, p) {
            let _ = fsfd::set_times_fd(d.as_fd(), *mtime);
        }
    }
    Ok(())
}

fn extract_one<R: Read>(
    base: &OwnedFd,
    e: &mut tar::Entry<'_, R>,
    opts: &ExtractOptions,
    owner: Option<(u32, u32)>,
    dir_times: &mut Vec<(Vec<u8>, i64)>,
) -> Result<(), ExtractError> {
    let kind = e.header().entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
    ) {
        return Ok(());
    }
    let raw = e.path_bytes().into_owned();
    let mut comps: Vec<&OsStr> = Vec::new();
    for c in Path::new(OsStr::from_bytes(&raw)).components() {
        match c {
            std::path::Component::Normal(n) => comps.push(n),
            std::path::Component::CurDir => {}
            _ => {
                return Err(ExtractError::Invalid(format!(
                    "invalid path in archive: {}",
                    fsfd::shown(&raw)
                )))
            }
        }
    }
    fsfd::check_components(&comps).map_err(ExtractError::Invalid)?;
    let Some((last, parents)) = comps.split_last() else {
        return Ok(());
    };
    let cur = walk_dirs(base, parents, true, &raw)?;
    let h = e.header().clone();
    let mode = h.mode().unwrap_or(0o644) & 0o7777;
    let mtime = h.mtime().unwrap_or(0) as i64;
    let (uid, gid) = owner.unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
    let existing = fstatat(cur.as_fd(), *last, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing.is_some_and(|s| fsfd::kind(&s) == SFlag::S_IFDIR);
    let is_dir = kind.is_dir();
    if existing.is_some() && opts.no_overwrite_dir_non_dir && existing_dir != is_dir {
        return Err(ExtractError::Invalid(format!(
            "cannot overwrite {} with {}",
            if existing_dir {
                "directory"
            } else {
                "non-directory"
            },
            if is_dir {
                "a directory"
            } else {
                "a non-directory"
            }
        )));
    }
    // Anything but a directory kept for a directory entry is replaced.
    if existing.is_some() && !(existing_dir && is_dir) {
        let flag = if existing_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        unlinkat(cur.as_fd(), *last, flag)
            .map_err(|err| invalid_entry(&raw, format_args!("cannot replace it ({err})")))?;
    }
    let changed = |err| invalid_entry(&raw, format_args!("it changed during the copy ({err})"));
    match kind {
        t if t.is_dir() => {
            if !existing_dir {
                mkdirat(cur.as_fd(), *last, Mode::from_bits_truncate(0o700)).map_err(errno)?;
            }
            // Opened without following: a directory swapped for a link to
            // a host path between the check and here fails the copy.
            let d = fsfd::open_dir(cur.as_fd(), last).map_err(changed)?;
            fsfd::chown_fd(d.as_fd(), uid, gid).map_err(errno)?;
            fsfd::chmod_fd(d.as_fd(), mode).map_err(errno)?;
            let mut p = raw.clone();
            while p.last() == Some(&b'/') {
                p.pop();
            }
            dir_times.push((p, mtime));
        }
        t if t.is_file() => {
            let mut f = fsfd::create_new(cur.as_fd(), last).map_err(changed)?;
            if let Err(err) = io::copy(e, &mut f) {
                // Never half a file (a full disk): it goes.
                drop(f);
                let _ = unlinkat(cur.as_fd(), *last, UnlinkatFlags::NoRemoveDir);
                return Err(ExtractError::Io(io::Error::new(
                    err.kind(),
                    format!("writing {}: {err}", fsfd::shown(&raw)),
                )));
            }
            fsfd::chown_fd(f.as_fd(), uid, gid).map_err(errno)?;
            fsfd::chmod_fd(f.as_fd(), mode).map_err(errno)?;
            fsfd::set_times_fd(f.as_fd(), mtime).map_err(errno)?;
        }
        t if t.is_symlink() => {
            let target = e
                .link_name_bytes()
                .ok_or_else(|| ExtractError::Invalid("symlink without a target".into()))?
                .into_owned();
            nix::unistd::symlinkat(OsStr::from_bytes(&target), cur.as_fd(), *last)
                .map_err(changed)?;
            let (l, st) = fsfd::open_entry(cur.as_fd(), last).map_err(changed)?;
            if fsfd::kind(&st) == SFlag::S_IFLNK {
                fsfd::chown_fd(l.as_fd(), uid, gid).map_err(errno)?;
                fsfd::set_link_times(cur.as_fd(), last, mtime).map_err(errno)?;
            }
        }
        t if t.is_hard_link() => {
            let target = e
                .link_name_bytes()
                .ok_or_else(|| ExtractError::Invalid("hard link without a target".into()))?
                .into_owned();
            let mut tcomps: Vec<&OsStr> = Vec::new();
            for c in Path::new(OsStr::from_bytes(&target)).components() {
                match c {
                    std::path::Component::Normal(n) => tcomps.push(n),
                    std::path::Component::CurDir | std::path::Component::RootDir => {}
                    _ => {
                        return Err(ExtractError::Invalid(format!(
                            "invalid hard link target in archive: {}",
                            fsfd::shown(&target)
                        )))
                    }
                }
            }
            fsfd::check_components(&tcomps).map_err(ExtractError::Invalid)?;
            let Some((tlast, tparents)) = tcomps.split_last() else {
                return Err(invalid_entry(&raw, "hard link to the extraction point"));
            };
            // The target is named relative to the extraction point, as the
            // archive was written, and resolved there without links.
            let tdir = walk_dirs(base, tparents, false, &target)?;
            nix::unistd::linkat(tdir.as_fd(), *tlast, cur.as_fd(), *last, AtFlags::empty())
                .map_err(|err| invalid_entry(&raw, format_args!("cannot link it ({err})")))?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let kindflag = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            nix::sys::stat::mknodat(
                cur.as_fd(),
                *last,
                kindflag,
                Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(major.into(), minor.into()),
            )
            .map_err(errno)?;
            let (node, st) = fsfd::open_entry(cur.as_fd(), last).map_err(changed)?;
            if fsfd::kind(&st) != kindflag {
                return Err(changed(nix::errno::Errno::EEXIST));
            }
            fsfd::chown_fd(node.as_fd(), uid, gid).map_err(errno)?;
            fsfd::chmod_fd(node.as_fd(), mode).map_err(errno)?;
            fsfd::set_times_fd(node.as_fd(), mtime).map_err(errno)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use berth_actors::container::MountPoint;

    use super::read_only_refusal;

    fn mount(dest: &str, rw: bool) -> MountPoint {
        MountPoint {
            kind: "volume".into(),
            destination: dest.into(),
            rw,
            ..Default::default()
        }
    }

    #[test]
    fn copies_into_read_only_places_are_refused_as_dockerd_does() {
        let m = [
            mount("/ro", false),
            mount("/ro/rw", true),
            mount("/data", true),
        ];
        let ro = Some("mounted volume is marked read-only");
        assert_eq!(read_only_refusal(&m, false, "/ro"), ro);
        assert_eq!(read_only_refusal(&m, false, "/ro/sub/"), ro);
        assert_eq!(read_only_refusal(&m, false, "/ro/rw/x"), None);
        assert_eq!(read_only_refusal(&m, false, "/data/../ro/./x"), ro);
        assert_eq!(read_only_refusal(&m, false, "/ro/../data"), None);
        assert_eq!(read_only_refusal(&m, false, "/robot"), None);
        assert_eq!(read_only_refusal(&m, false, "/tmp"), None);
        let rofs = Some("container rootfs is marked read-only");
        assert_eq!(read_only_refusal(&m, true, "/tmp"), rofs);
        assert_eq!(read_only_refusal(&m, true, "/"), rofs);
        assert_eq!(read_only_refusal(&m, true, "/data/x"), None);
        assert_eq!(read_only_refusal(&m, true, "/ro/x"), ro);
    }
}
