//! Copy-up: an empty volume mounted over a path with content in the image
//! gets that content (once: only while the volume is empty). The source is
//! opened inside the container's root with `openat2(RESOLVE_IN_ROOT)` and
//! walked by file descriptor, entries with `O_NOFOLLOW`: a symlink in the
//! image is copied as a symlink and never followed, so nothing outside the
//! container's root is read.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

fn io(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

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
        Err(e) => return Err(io(e)),
    };
    // The target takes the source directory's mode and owner.
    let st = nix::sys::stat::fstat(src.as_fd()).map_err(io)?;
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(st.st_mode & 0o7777))?;
    let _ = std::os::unix::fs::chown(target, Some(st.st_uid), Some(st.st_gid));
    copy_dir(src, target, 0)
}

fn copy_dir(src: OwnedFd, target: &Path, depth: usize) -> io::Result<()> {
    if depth > 256 {
        return Err(io::Error::other("directory tree too deep"));
    }
    let mut dir = Dir::from_fd(src).map_err(io)?;
    let fd = dir.as_fd().try_clone_to_owned()?;
    let names: Vec<(std::ffi::CString, Option<Type>)> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_owned(), e.file_type()))
        .filter(|(n, _)| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for (name, _) in names {
        let st = fstatat(fd.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
        let os = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.as_bytes());
        let out = target.join(os);
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let mode = st.st_mode & 0o7777;
        if kind == SFlag::S_IFDIR {
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(&out)
                .or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            let sub = openat(
                fd.as_fd(),
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io)?;
            copy_dir(sub, &out, depth + 1)?;
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode))?;
        } else if kind == SFlag::S_IFREG {
            let f = openat(
                fd.as_fd(),
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io)?;
            let mut from = File::from(f);
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&out)?;
            io::copy(&mut from, &mut to)?;
            to.set_permissions(std::fs::Permissions::from_mode(mode))?;
        } else if kind == SFlag::S_IFLNK {
            let link = readlinkat(fd.as_fd(), name.as_c_str()).map_err(io)?;
            std::os::unix::fs::symlink(link, &out)?;
        } else {
            // Devices, sockets, fifos: not copied.
            continue;
        }
        let _ = std::os::unix::fs::lchown(&out, Some(st.st_uid), Some(st.st_gid));
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
