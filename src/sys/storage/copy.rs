//! Copy a layer directory with everything: ownership, modes, times,
//! xattrs, devices, symlinks and hardlinks. Sources are berth's own layer
//! directories; symlinks are copied, never followed.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (cstr(src)?, cstr(dst)?);
    let mut names = vec![0u8; 4096];
    // SAFETY: s is NUL-terminated; names is a writable buffer of its length.
    let n = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Ok(());
    }
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut val = vec![0u8; 65536];
        // SAFETY: pointers are valid for the given lengths.
        let len = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: pointers are valid for the given lengths.
        unsafe {
            libc::lsetxattr(
                d.as_ptr(),
                cname.as_ptr(),
                val.as_ptr().cast(),
                len as usize,
                0,
            )
        };
    }
    Ok(())
}

fn copy_meta(src_meta: &fs::Metadata, dst: &Path, is_link: bool) -> io::Result<()> {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        dst,
        Some(nix::unistd::Uid::from_raw(src_meta.uid())),
        Some(nix::unistd::Gid::from_raw(src_meta.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if !is_link {
        fs::set_permissions(dst, fs::Permissions::from_mode(src_meta.mode() & 0o7777))?;
    }
    let at = TimeSpec::new(src_meta.atime(), src_meta.atime_nsec());
    let mt = TimeSpec::new(src_meta.mtime(), src_meta.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &at,
        &mt,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// Copy the contents of `src` into the existing directory `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut inodes: HashMap<(u64, u64), std::path::PathBuf> = HashMap::new();
    copy_dir(src, dst, &mut inodes)?;
    let m = fs::symlink_metadata(src)?;
    copy_xattrs(src, dst)?;
    copy_meta(&m, dst, false)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    inodes: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    for ent in fs::read_dir(src)? {
        let ent = ent?;
        let s = ent.path();
        let d = dst.join(ent.file_name());
        let m = fs::symlink_metadata(&s)?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&d)?;
            copy_dir(&s, &d, inodes)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = inodes.get(&(m.dev(), m.ino())) {
                    fs::hard_link(first, &d)?;
                    continue;
                }
                inodes.insert((m.dev(), m.ino()), d.clone());
            }
            fs::copy(&s, &d)?;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else if ft.is_fifo() {
                SFlag::S_IFIFO
            } else {
                continue; // sockets are not layer content
            };
            nix::sys::stat::mknod(
                &d,
                kind,
                Mode::from_bits_truncate(m.mode() & 0o7777),
                m.rdev(),
            )?;
        }
        copy_xattrs(&s, &d)?;
        copy_meta(&m, &d, ft.is_symlink())?;
    }
    Ok(())
}
