//! changes and export: a container's filesystem seen from the host.
//!
//! Both walk trees the container can change while they run (its writable
//! layer, its mounted root), so both walk by descriptor
//! ([`crate::sys::fsfd`]): every step `O_NOFOLLOW`, a directory swapped
//! for a symlink is skipped, never followed; file content is read from
//! the descriptor of what was checked to be a regular file. The image's
//! layers are compared the same way, with overlay's rules (whiteouts,
//! opaque directories), never through a mounted view.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstat, fstatat, SFlag};
use serde_json::{json, Value};

use crate::sys::fsfd::{self, errno};

/// Mount points the runtime creates in every container: not the user's
/// changes (dockerd keeps them in its init layer).
const MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/sbin/docker-init",
    "/sbin",
    "/.dockerenv",
    "/etc/mtab",
];

fn open_root(p: &Path) -> io::Result<OwnedFd> {
    Ok(File::open(p)?.into())
}

fn too_deep() -> io::Error {
    io::Error::other(format!(
        "directory tree deeper than {} levels",
        fsfd::MAX_DEPTH
    ))
}

/// A directory of the image's layers, top first: `None` where a layer
/// has no directory there, or a layer above hides it (a whiteout, a
/// non-directory, an opaque directory).
type Lowers = Vec<Option<OwnedFd>>;

/// Whether `name` exists in the image's view of the directory `lowers`.
fn in_lowers(lowers: &Lowers, name: &OsStr) -> bool {
    for d in lowers.iter().flatten() {
        match fstatat(d.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => return !fsfd::is_whiteout(&st),
            Err(_) => continue,
        }
    }
    false
}

/// The image's view of the child directory `name` of `lowers`.
fn lower_children(lowers: &Lowers, name: &OsStr) -> Lowers {
    let mut out = Vec::with_capacity(lowers.len());
    let mut hidden = false;
    for d in lowers {
        let child = match (hidden, d) {
            (false, Some(d)) => match fstatat(d.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if fsfd::kind(&st) == SFlag::S_IFDIR => {
                    let fd = fsfd::open_dir(d.as_fd(), name).ok();
                    if fd.as_ref().is_none_or(|f| fsfd::is_opaque(f.as_fd())) {
                        hidden = true;
                    }
                    fd
                }
                // A whiteout or a file here hides the layers below.
                Ok(_) => {
                    hidden = true;
                    None
                }
                Err(_) => None,
            },
            _ => None,
        };
        out.push(child);
    }
    out
}

/// `docker diff`: walk the writable layer (overlay's upper directory)
/// against the image's layers `lowers` (top first). Whiteouts (0:0
/// character devices) are deletions; a path the image has is a change,
/// any other an addition.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Value>> {
    let up = open_root(upper)?;
    let mut low: Lowers = Vec::new();
    for l in lowers {
        low.push(Some(open_root(l)?));
    }
    let mut out = Vec::new();
    walk_changes(&up, &low, b"", &mut out, 0)?;
    out.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
    Ok(out)
}

fn walk_changes(
    dir: &OwnedFd,
    lowers: &Lowers,
    prefix: &[u8],
    out: &mut Vec<Value>,
    depth: usize,
) -> io::Result<()> {
    if depth > fsfd::MAX_DEPTH {
        return Err(too_deep());
    }
    for n in fsfd::names(dir.as_fd())? {
        let name = OsStr::from_bytes(&n);
        let st = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(errno(e)),
        };
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&n);
        let kind = if fsfd::is_whiteout(&st) {
            2
        } else if in_lowers(lowers, name) {
            0
        } else {
            1
        };
        let shown = String::from_utf8_lossy(&path).into_owned();
        let sub = if fsfd::kind(&st) == SFlag::S_IFDIR {
            match fsfd::open_dir(dir.as_fd(), name) {
                Ok(d) => Some(d),
                // Swapped for a link or removed meanwhile: never followed.
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(errno(e)),
            }
        } else {
            None
        };
        if kind == 1 && shown == "/etc/mtab" && fsfd::kind(&st) == SFlag::S_IFLNK {
            // dockerd's init layer link, made at start (host.rs).
            let target = nix::fcntl::readlinkat(dir.as_fd(), name).ok();
            if target.is_some_and(|t| t.as_os_str() == "/proc/mounts") {
                continue;
            }
        }
        if kind == 1 && MOUNT_POINTS.contains(&shown.as_str()) {
            let empty = match &sub {
                Some(d) => fsfd::names(d.as_fd())?.is_empty(),
                None => st.st_size == 0,
            };
            if empty {
                continue;
            }
        }
        let at = out.len();
        out.push(json!({"Path": shown, "Kind": kind}));
        if let Some(d) = sub {
            let below = if fsfd::is_opaque(d.as_fd()) {
                Vec::new()
            } else {
                lower_children(lowers, name)
            };
            walk_changes(&d, &below, &path, out, depth + 1)?;
            // A directory in the upper layer only because the runtime made
            // its mount points there (/etc for /etc/hosts): dockerd has
            // them in its init layer and reports nothing.
            if kind != 2 && out.len() == at + 1 {
                let names = fsfd::names(d.as_fd())?;
                let only_mount_points = !names.is_empty()
                    && names.iter().all(|c| {
                        let p = format!("{shown}/{}", String::from_utf8_lossy(c));
                        MOUNT_POINTS.contains(&p.as_str())
                    });
                if only_mount_points {
                    out.truncate(at);
                }
            }
        }
    }
    Ok(())
}

/// `docker commit`: the container's writable layer (overlay2's upper
/// directory) as a layer tar: its files as they are, overlay whiteouts as
/// `.wh.NAME` entries, opaque directories with `.wh..wh..opq`; hard links
/// stay hard links. The runtime's mount points (and /etc/mtab's link) are
/// left out, as dockerd's init layer keeps them out of a commit. Walked
/// by descriptor, never following a symlink.
pub fn layer_diff<W: Write>(upper: &Path, out: W) -> io::Result<W> {
    let mut b = tar::Builder::new(out);
    let fd = open_root(upper)?;
    let mut links = HashMap::new();
    walk(&mut b, &fd, b"", &mut links, 0, true)?;
    b.into_inner()
}

/// Whether `shown` (`/etc/hosts`) at `st` in `dir` is the runtime's, not
/// the container's: an empty mount point or the init layer's mtab link.
fn runtime_made(dir: &OwnedFd, name: &OsStr, shown: &str, st: &nix::sys::stat::FileStat) -> bool {
    let kind = fsfd::kind(st);
    if shown == "/etc/mtab" && kind == SFlag::S_IFLNK {
        return nix::fcntl::readlinkat(dir.as_fd(), name)
            .is_ok_and(|t| t.as_os_str() == "/proc/mounts");
    }
    if !MOUNT_POINTS.contains(&shown) {
        return false;
    }
    match kind {
        SFlag::S_IFREG => st.st_size == 0,
        SFlag::S_IFDIR => fsfd::open_dir(dir.as_fd(), name)
            .ok()
            .and_then(|d| fsfd::names(d.as_fd()).ok())
            .is_some_and(|n| n.is_empty()),
        _ => false,
    }
}

/// The tar of the tree below `dir`: a root filesystem as it is (`diff`
/// false: export), or an overlay upper directory as a layer (`diff`: the
/// runtime's files left out, whiteouts and opaque directories converted).
fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &OwnedFd,
    prefix: &[u8],
    links: &mut HashMap<(u64, u64), Vec<u8>>,
    depth: usize,
    diff: bool,
) -> io::Result<()> {
    if depth > fsfd::MAX_DEPTH {
        return Err(too_deep());
    }
    for n in fsfd::names(dir.as_fd())? {
        let name = OsStr::from_bytes(&n);
        let mut rel = prefix.to_vec();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&n);
        let shown = format!("/{}", String::from_utf8_lossy(&rel));
        let st = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(errno(e)),
        };
        if diff && runtime_made(dir, name, &shown, &st) {
            continue;
        }
        let kind = fsfd::kind(&st);
        if diff && fsfd::is_whiteout(&st) {
            let mut wh = prefix.to_vec();
            if !wh.is_empty() {
                wh.push(b'/');
            }
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(&n);
            let mut h = fsfd::tar_header(&st, tar::EntryType::Regular);
            h.set_mode(0o600);
            b.append_data(&mut h, OsStr::from_bytes(&wh), io::empty())?;
        } else if kind == SFlag::S_IFDIR {
            let sub = match fsfd::open_dir(dir.as_fd(), name) {
                Ok(d) => d,
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(errno(e)),
            };
            let opaque = diff && fsfd::is_opaque(sub.as_fd());
            // A directory made only to hold the runtime's mount points
            // (/etc for /etc/hosts) is not the container's change.
            let names = if diff {
                fsfd::names(sub.as_fd())?
            } else {
                vec![]
            };
            if diff
                && !opaque
                && !names.is_empty()
                && names.iter().all(|c| {
                    let p = format!("{shown}/{}", String::from_utf8_lossy(c));
                    fstatat(
                        sub.as_fd(),
                        OsStr::from_bytes(c),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .is_ok_and(|st| runtime_made(&sub, OsStr::from_bytes(c), &p, &st))
                })
            {
                continue;
            }
            let st = fstat(sub.as_fd()).map_err(errno)?;
            let mut h = fsfd::tar_header(&st, tar::EntryType::Directory);
            let mut dname = rel.clone();
            dname.push(b'/');
            b.append_data(&mut h, OsStr::from_bytes(&dname), io::empty())?;
            if opaque {
                let mut opq = rel.clone();
                opq.extend_from_slice(b"/.wh..wh..opq");
                let mut h = fsfd::tar_header(&st, tar::EntryType::Regular);
                h.set_mode(0o600);
                b.append_data(&mut h, OsStr::from_bytes(&opq), io::empty())?;
            }
            walk(b, &sub, &rel, links, depth + 1, diff)?;
        } else {
            append_entry(b, dir, name, &rel, &st, links, true)?;
        }
    }
    Ok(())
}

/// `docker export`: the container's whole filesystem (its mounted root)
/// as a tar stream; hard links stay hard links.
pub fn export<W: Write>(root: &Path, out: W) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    let fd = open_root(root)?;
    let mut links = HashMap::new();
    walk(&mut b, &fd, b"", &mut links, 0, false)?;
    b.into_inner()?.flush()
}

/// One entry that is not a directory: a file (a hard link to its first
/// name when `links` saw its inode), a symlink, and with `devices` a
/// device or a fifo (recorded from the stat, never opened); sockets are
/// left out. A file that changed kind meanwhile is skipped.
pub(crate) fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &OsStr,
    rel: &[u8],
    st: &nix::sys::stat::FileStat,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
    devices: bool,
) -> io::Result<()> {
    let kind = fsfd::kind(st);
    if kind == SFlag::S_IFREG {
        let Some((f, st)) = fsfd::open_regular(dir.as_fd(), name).map_err(errno)? else {
            return Ok(());
        };
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = links.get(&key) {
                let mut h = fsfd::tar_header(&st, tar::EntryType::Link);
                b.append_link(&mut h, OsStr::from_bytes(rel), OsStr::from_bytes(first))?;
                return Ok(());
            }
            links.insert(key, rel.to_vec());
        }
        let size = st.st_size.max(0) as u64;
        let mut h = fsfd::tar_header(&st, tar::EntryType::Regular);
        h.set_size(size);
        b.append_data(
            &mut h,
            OsStr::from_bytes(rel),
            super::archive::sized(f, size),
        )?;
    } else if kind == SFlag::S_IFLNK {
        let target = match nix::fcntl::readlinkat(dir.as_fd(), name) {
            Ok(t) => t,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(errno(e)),
        };
        let mut h = fsfd::tar_header(st, tar::EntryType::Symlink);
        b.append_link(&mut h, OsStr::from_bytes(rel), Path::new(&target))?;
    } else if devices
        && (kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK || kind == SFlag::S_IFIFO)
    {
        // Recorded from the stat, never opened.
        let mut h = fsfd::tar_header(
            st,
            if kind == SFlag::S_IFCHR {
                tar::EntryType::Char
            } else if kind == SFlag::S_IFBLK {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            },
        );
        h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
        h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
        b.append_data(&mut h, OsStr::from_bytes(rel), io::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_upper_and_lower() {
        let t = tempfile::tempdir().unwrap();
        let (up, low) = (t.path().join("up"), t.path().join("low"));
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::write(low.join("etc/passwd"), "x").unwrap();
        std::fs::write(up.join("etc/passwd"), "y").unwrap();
        std::fs::write(up.join("etc/new"), "z").unwrap();
        nix::sys::stat::mknod(
            &up.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let c = changes(&up, std::slice::from_ref(&low)).unwrap();
        let pairs: Vec<(String, i64)> = c
            .iter()
            .map(|v| {
                (
                    v["Path"].as_str().unwrap().to_string(),
                    v["Kind"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("/etc".into(), 0),
                ("/etc/new".into(), 1),
                ("/etc/passwd".into(), 0),
                ("/gone".into(), 2)
            ]
        );
        // A fresh container: /etc in the upper layer holds only the
        // runtime's empty mount points, so nothing is reported.
        let fresh = t.path().join("fresh");
        std::fs::create_dir_all(fresh.join("etc")).unwrap();
        for f in ["hosts", "hostname", "resolv.conf"] {
            std::fs::write(fresh.join("etc").join(f), "").unwrap();
        }
        assert!(changes(&fresh, std::slice::from_ref(&low))
            .unwrap()
            .is_empty());
        std::fs::write(fresh.join("etc/mine"), "m").unwrap();
        assert_eq!(
            changes(&fresh, std::slice::from_ref(&low)).unwrap().len(),
            2
        );
        let mut tarball = Vec::new();
        export(&up, &mut tarball).unwrap();
        let mut a = tar::Archive::new(&tarball[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"etc/new".to_string()), "{names:?}");
    }

    #[test]
    fn lower_links_are_never_followed_and_overlay_rules_apply() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("a"), "host").unwrap();
        let (up, l1, l2) = (
            t.path().join("up"),
            t.path().join("l1"),
            t.path().join("l2"),
        );
        for d in [&up, &l1, &l2] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The image: /x -> the host directory (which has `a`); /gone/f in
        // the bottom layer, whited out by the top one; /keep/f below an
        // opaque /keep of the top layer.
        std::os::unix::fs::symlink(&host, l1.join("x")).unwrap();
        std::fs::create_dir_all(l2.join("gone")).unwrap();
        std::fs::write(l2.join("gone/f"), "").unwrap();
        nix::sys::stat::mknod(
            &l1.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::create_dir_all(l2.join("keep")).unwrap();
        std::fs::write(l2.join("keep/f"), "").unwrap();
        std::fs::create_dir_all(l1.join("keep")).unwrap();
        let opaque = crate::sys::fsfd::set_xattr(
            File::open(l1.join("keep")).unwrap().as_fd(),
            "trusted.overlay.opaque",
            b"y",
        )
        .is_ok();
        // The container: rm /x; mkdir /x; touch /x/a /x/b; and files where
        // the image has none (whited out, hidden by the opaque dir).
        std::fs::create_dir_all(up.join("x")).unwrap();
        std::fs::write(up.join("x/a"), "").unwrap();
        std::fs::write(up.join("x/b"), "").unwrap();
        std::fs::create_dir_all(up.join("gone")).unwrap();
        std::fs::write(up.join("gone/f"), "").unwrap();
        std::fs::create_dir_all(up.join("keep")).unwrap();
        std::fs::write(up.join("keep/f"), "").unwrap();
        let c = changes(&up, &[l1.clone(), l2.clone()]).unwrap();
        let got: Vec<(String, i64)> = c
            .iter()
            .map(|v| {
                (
                    v["Path"].as_str().unwrap().into(),
                    v["Kind"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut want: Vec<(String, i64)> = vec![
            ("/gone".into(), 1),
            ("/gone/f".into(), 1),
            ("/keep".into(), 0),
            ("/x".into(), 0),
            ("/x/a".into(), 1),
            ("/x/b".into(), 1),
        ];
        if opaque {
            want.push(("/keep/f".into(), 1));
        } else {
            want.push(("/keep/f".into(), 0));
        }
        want.sort();
        assert_eq!(got, want);
    }
}
