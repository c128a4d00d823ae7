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

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, unlinkat, Gid, Uid, UnlinkatFlags};

pub(crate) fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

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

/// `path` split into its parent (resolved in the root) and last name.
fn split(path: &str) -> (String, String) {
    let p = path.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() && name != "." => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name.into(),
        ),
        _ => ("/".into(), String::new()),
    }
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
    if name.is_empty() {
        let st = nix::sys::stat::fstat(dir.as_fd()).map_err(errno)?;
        return Ok((dir, "/".into(), st, None));
    }
    if path.ends_with('/') || path.ends_with("/.") {
        let fd = open_in_root(root, path, OFlag::O_PATH).map_err(errno)?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(errno)?;
        return Ok((dir, name, st, Some(fd)));
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
/// relative to its parent, as dockerd sends it.
pub fn read_archive(root: &OwnedFd, path: &str, out: impl Write) -> io::Result<()> {
    let (dir, name, st, followed) = resolve(root, path)?;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let top = if name == "/" {
        ".".to_string()
    } else {
        name.clone()
    };
    if kind == SFlag::S_IFDIR {
        let fd = if name == "/" {
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
        add_dir(&mut tar, fd, &top, &st, 0)?;
    } else if followed.is_some() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    } else {
        add_entry(&mut tar, &dir, &name, &top, &st)?;
    }
    tar.finish()
}

fn header(st: &FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn add_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &str,
    path_in_tar: &str,
    st: &FileStat,
) -> io::Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind == SFlag::S_IFREG {
        let fd = openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let f = File::from(fd);
        let mut h = header(st, tar::EntryType::Regular);
        h.set_size(st.st_size as u64);
        tar.append_data(&mut h, path_in_tar, f.take(st.st_size as u64))
    } else if kind == SFlag::S_IFLNK {
        let target = readlinkat(dir.as_fd(), name).map_err(errno)?;
        let mut h = header(st, tar::EntryType::Symlink);
        tar.append_link(&mut h, path_in_tar, Path::new(&target))
    } else {
        // Devices, fifos, sockets: not copied.
        Ok(())
    }
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    fd: OwnedFd,
    path_in_tar: &str,
    st: &FileStat,
    depth: usize,
) -> io::Result<()> {
    if depth > 256 {
        return Err(io::Error::other("directory tree too deep"));
    }
    let mut h = header(st, tar::EntryType::Directory);
    tar.append_data(&mut h, format!("{path_in_tar}/"), io::empty())?;
    let dfd = fd.try_clone()?;
    let mut d = Dir::from_fd(fd).map_err(errno)?;
    let names: Vec<CString> = d
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for n in names {
        let name = OsStr::from_bytes(n.as_bytes())
            .to_string_lossy()
            .into_owned();
        let st = fstatat(dfd.as_fd(), n.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)?;
        let child = format!("{path_in_tar}/{name}");
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
            let sub = openat(
                dfd.as_fd(),
                n.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?;
            add_dir(tar, sub, &child, &st, depth + 1)?;
        } else {
            add_entry(tar, &dfd, n.to_str().unwrap_or(&name), &child, &st)?;
        }
    }
    Ok(())
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
    /// Keep the archive's owners; else root of the container (0:0).
    pub copy_uid_gid: bool,
}

/// Extract a tar into the directory at `path` (resolved in the root).
/// Each entry is created below it by descriptor, one component at a time,
/// never through a symlink.
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
    let mut ar = tar::Archive::new(input);
    for entry in ar.entries()? {
        let mut e = entry?;
        let p = e.path()?.into_owned();
        let mut comps: Vec<&OsStr> = Vec::new();
        for c in p.components() {
            match c {
                std::path::Component::Normal(n) => comps.push(n),
                std::path::Component::CurDir => {}
                _ => {
                    return Err(ExtractError::Invalid(format!(
                        "invalid path in archive: {}",
                        p.display()
                    )))
                }
            }
        }
        let Some((last, parents)) = comps.split_last() else {
            continue;
        };
        // Walk (creating) the parents, never following a symlink.
        let mut cur = base.try_clone()?;
        for c in parents {
            let next = match openat(
                cur.as_fd(),
                *c,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(nix::errno::Errno::ENOENT) => {
                    mkdirat(cur.as_fd(), *c, Mode::from_bits_truncate(0o755)).map_err(errno)?;
                    openat(
                        cur.as_fd(),
                        *c,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(errno)?
                }
                Err(e) => {
                    return Err(ExtractError::Invalid(format!(
                        "cannot extract {}: {} is not a directory in the container ({e})",
                        p.display(),
                        Path::new(c).display()
                    )))
                }
            };
            cur = next;
        }
        let h = e.header().clone();
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
        let existing = fstatat(cur.as_fd(), *last, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing
            .map(|s| SFlag::from_bits_truncate(s.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR)
            .unwrap_or(false);
        let is_dir = h.entry_type().is_dir();
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
        if existing.is_some() && !existing_dir && !is_dir {
            unlinkat(cur.as_fd(), *last, UnlinkatFlags::NoRemoveDir).map_err(errno)?;
        }
        match h.entry_type() {
            t if t.is_dir() => {
                if !existing_dir {
                    if existing.is_some() {
                        unlinkat(cur.as_fd(), *last, UnlinkatFlags::NoRemoveDir).map_err(errno)?;
                    }
                    mkdirat(cur.as_fd(), *last, mode).map_err(errno)?;
                }
                fchmodat(cur.as_fd(), *last, mode, FchmodatFlags::NoFollowSymlink)
                    .or_else(|_| fchmodat(cur.as_fd(), *last, mode, FchmodatFlags::FollowSymlink))
                    .map_err(errno)?;
            }
            t if t.is_file() => {
                let fd = openat(
                    cur.as_fd(),
                    *last,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(errno)?;
                let mut f = File::from(fd);
                io::copy(&mut e, &mut f)?;
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(mode.bits()))?;
            }
            t if t.is_symlink() => {
                let target = h
                    .link_name()?
                    .ok_or_else(|| ExtractError::Invalid("symlink without a target".into()))?;
                nix::unistd::symlinkat(target.as_ref(), cur.as_fd(), *last).map_err(errno)?;
            }
            _ => continue,
        }
        let (uid, gid) = if opts.copy_uid_gid {
            (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32)
        } else {
            (0, 0)
        };
        fchownat(
            cur.as_fd(),
            *last,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno)?;
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
