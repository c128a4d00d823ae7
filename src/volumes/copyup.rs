//! Copy-up: an empty volume mounted over a path with content in the image
//! gets that content (once: only while the volume is empty). The source is
//! opened inside the container's root with `openat2(RESOLVE_IN_ROOT)` and
//! walked by file descriptor, entries with `O_NOFOLLOW`: a symlink in the
//! image is copied as a symlink and never followed, so nothing outside the
//! container's root is read. The volume's side is written the same way
//! (it may be in use by another container meanwhile): nothing outside the
//! volume is written.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};

use crate::sys::fsfd::{self, errno};

/// Whether a directory has no entries.
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

/// Copy `rootfs`/`dest` (resolved inside `rootfs`) into `target`.
pub fn copy_up(rootfs: &Path, dest: &str, target: &Path) -> io::Result<()> {
    let root: OwnedFd = File::open(rootfs)?.into();
    let rel = dest.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let src = match openat2(root.as_fd(), rel, how) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(errno(e)),
    };
    // The volume's directory, by descriptor: another container using the
    // volume cannot redirect the copy with a symlink.
    let dst: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(target)?
        .into();
    copy_dir(&src, &dst, 0)?;
    // The target takes the source directory's owner and mode.
    let st = nix::sys::stat::fstat(src.as_fd()).map_err(errno)?;
    let _ = fsfd::chown_fd(dst.as_fd(), st.st_uid, st.st_gid);
    fsfd::chmod_fd(dst.as_fd(), st.st_mode).map_err(errno)
}

/// Copy the directory `src` into the directory `dst`, both by descriptor:
/// entries are created below `dst` with `O_EXCL | O_NOFOLLOW` (an entry
/// the copy did not create is never written through), owner and mode set
/// on the created entry's descriptor, owner first so set-id bits stay.
fn copy_dir(src: &OwnedFd, dst: &OwnedFd, depth: usize) -> io::Result<()> {
    if depth > fsfd::MAX_DEPTH {
        return Err(io::Error::other("directory tree too deep"));
    }
    for n in fsfd::names(src.as_fd())? {
        let name = OsStr::from_bytes(&n);
        let st = match fstatat(src.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(errno(e)),
        };
        let kind = fsfd::kind(&st);
        if kind == SFlag::S_IFDIR {
            match mkdirat(dst.as_fd(), name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(errno(e)),
            }
            let (Ok(from), Ok(to)) = (
                fsfd::open_dir(src.as_fd(), name),
                fsfd::open_dir(dst.as_fd(), name),
            ) else {
                continue;
            };
            copy_dir(&from, &to, depth + 1)?;
            let _ = fsfd::chown_fd(to.as_fd(), st.st_uid, st.st_gid);
            fsfd::chmod_fd(to.as_fd(), st.st_mode).map_err(errno)?;
        } else if kind == SFlag::S_IFREG {
            let Some((mut from, st)) = fsfd::open_regular(src.as_fd(), name).map_err(errno)? else {
                continue;
            };
            let mut to = fsfd::create_new(dst.as_fd(), name).map_err(errno)?;
            io::copy(&mut from, &mut to)?;
            let _ = fsfd::chown_fd(to.as_fd(), st.st_uid, st.st_gid);
            fsfd::chmod_fd(to.as_fd(), st.st_mode).map_err(errno)?;
        } else if kind == SFlag::S_IFLNK {
            let link = match readlinkat(src.as_fd(), name) {
                Ok(l) => l,
                Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(errno(e)),
            };
            nix::unistd::symlinkat(link.as_os_str(), dst.as_fd(), name).map_err(errno)?;
            if let Ok((l, lst)) = fsfd::open_entry(dst.as_fd(), name) {
                if fsfd::kind(&lst) == SFlag::S_IFLNK {
                    let _ = fsfd::chown_fd(l.as_fd(), st.st_uid, st.st_gid);
                }
            }
        }
        // Devices, sockets, fifos: not copied.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_inside_the_root_and_never_follows_links_out() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc/app/sub")).unwrap();
        std::fs::write(root.join("etc/app/conf"), "x=1").unwrap();
        std::fs::write(root.join("etc/app/sub/f"), "deep").unwrap();
        // A link to the host's /etc: copied as a link, never read.
        std::os::unix::fs::symlink("/etc", root.join("etc/app/hostetc")).unwrap();
        // A path through a link resolves inside the root.
        std::os::unix::fs::symlink("/etc/app", root.join("applink")).unwrap();
        let out = t.path().join("vol");
        std::fs::create_dir(&out).unwrap();
        copy_up(&root, "/applink", &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("conf")).unwrap(), "x=1");
        assert_eq!(std::fs::read_to_string(out.join("sub/f")).unwrap(), "deep");
        assert_eq!(
            std::fs::read_link(out.join("hostetc")).unwrap(),
            Path::new("/etc")
        );
        assert!(!out.join("hostetc").join("passwd").is_file() || out.join("hostetc").is_symlink());
        // Missing: nothing to copy.
        let out2 = t.path().join("vol2");
        std::fs::create_dir(&out2).unwrap();
        copy_up(&root, "/nonexistent", &out2).unwrap();
        assert!(is_empty(&out2));
        // An absolute link that escapes resolves inside the root instead.
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        let out3 = t.path().join("vol3");
        std::fs::create_dir(&out3).unwrap();
        copy_up(&root, "/escape/etc/app", &out3).unwrap();
        assert!(out3.join("conf").is_file());
    }
}
