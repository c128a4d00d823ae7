//! Filesystem work by descriptor, for trees a container can change while
//! berthd works in them (`docker cp` both ways, `export`, `diff`, volume
//! copy-up) and for the layer trees berthd writes.
//!
//! The rules every caller follows:
//! - a tree is walked one component at a time from a descriptor of its
//!   root, each step `openat(.., O_NOFOLLOW)`: a symlink is never followed,
//!   so a directory swapped for a link to a host path between two steps
//!   makes the step fail instead of leaving the tree;
//! - metadata (mode, owner, times, xattrs) is set on the descriptor of
//!   what was opened or created, never on a name that could be replaced;
//!   entries only reachable by an `O_PATH` descriptor (device nodes,
//!   fifos) are changed through `/proc/self/fd/N`, which names that inode
//!   and nothing else;
//! - a file's content is read from a descriptor re-opened from its
//!   `O_PATH` descriptor after checking it is a regular file, so a device
//!   node or fifo swapped in at that name is never opened (no read of a
//!   host disk, no blocking open);
//! - names and depths stay within the kernel's limits ([`PATH_MAX`],
//!   [`MAX_DEPTH`]), and a tar's header data is bounded ([`entries`]), so
//!   memory stays linear in the input and bounded.

use std::cell::Cell;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;

/// The longest path the kernel resolves (bytes, without the final NUL).
pub const PATH_MAX: usize = 4095;
/// The longest name of one component.
pub const NAME_MAX: usize = 255;
/// The deepest tree berthd walks or writes. A path of PATH_MAX bytes has
/// at most 2048 components; real trees stay far below this.
pub const MAX_DEPTH: usize = 1024;
/// Header data (GNU long names, PAX records, sparse maps) one tar member
/// may carry: Go's archive/tar allows the same 1 MiB.
pub const MAX_TAR_HEADER_DATA: u64 = 1 << 20;

pub fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The file type bits of a stat.
pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// An overlay whiteout: a 0/0 character device.
pub fn is_whiteout(st: &FileStat) -> bool {
    kind(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// The directory `name` of `dir`, never through a symlink.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// A new regular file `name` in `dir` (mode 0600 until its owner and
/// mode are set on the returned file): never an existing entry, never
/// through a symlink.
pub fn create_new(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<File> {
    openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map(File::from)
}

/// A tar header of `kind` carrying the owner, mode and mtime of `st`
/// (size 0: the caller sets it for content).
pub fn tar_header(st: &FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// An `O_PATH` descriptor of the entry `name` of `dir` itself (a symlink
/// stays a symlink), and its stat.
pub fn open_entry(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<(OwnedFd, FileStat)> {
    let fd = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(fd.as_fd())?;
    Ok((fd, st))
}

fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // A decimal number never contains a NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Open again, with `flags`, the inode an `O_PATH` descriptor holds.
pub fn reopen(fd: BorrowedFd<'_>, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        proc_path(fd).as_c_str(),
        flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
}

/// The regular file `name` of `dir`, opened for reading, with the stat of
/// what was opened; `None` when the name is (now) anything else.
pub fn open_regular(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<Option<(File, FileStat)>> {
    let (p, st) = open_entry(dir, name)?;
    if kind(&st) != SFlag::S_IFREG {
        return Ok(None);
    }
    let fd = reopen(p.as_fd(), OFlag::O_RDONLY)?;
    let st = fstat(fd.as_fd())?;
    if kind(&st) != SFlag::S_IFREG {
        return Ok(None);
    }
    Ok(Some((File::from(fd), st)))
}

/// Owner of what `fd` holds (any descriptor, `O_PATH` included; a symlink
/// opened with `O_NOFOLLOW` is changed itself).
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> nix::Result<()> {
    nix::unistd::fchownat(
        fd,
        "",
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// Mode of what `fd` holds: `fchmod` on an open file or directory, the
/// inode behind `/proc/self/fd/N` for an `O_PATH` descriptor. Never for a
/// symlink (Linux has no symlink modes).
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> nix::Result<()> {
    let m = Mode::from_bits_truncate(mode & 0o7777);
    match nix::sys::stat::fchmod(fd, m) {
        Err(Errno::EBADF) => nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            proc_path(fd).as_c_str(),
            m,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        ),
        r => r,
    }
}

/// Access and modification time of what `fd` holds (not a symlink).
pub fn set_times_fd(fd: BorrowedFd<'_>, mtime: i64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    match nix::sys::stat::futimens(fd, &t, &t) {
        Err(Errno::EBADF) => nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            proc_path(fd).as_c_str(),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        ),
        r => r,
    }
}

/// Times of the symlink `name` of `dir` itself.
pub fn set_link_times(dir: BorrowedFd<'_>, name: &OsStr, mtime: i64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        dir,
        name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}

/// Set an extended attribute on an open (not `O_PATH`) descriptor.
pub fn set_xattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in xattr name"))?;
    // SAFETY: fd is a valid open descriptor; cname is NUL-terminated; value
    // points to value.len() readable bytes.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An extended attribute of an open (not `O_PATH`) descriptor; `None`
/// when it has none of that name.
pub fn get_xattr(fd: BorrowedFd<'_>, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    // SAFETY: fd is a valid descriptor; name is NUL-terminated; buf is a
    // writable buffer of buf.len() bytes.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// Whether an overlay directory is opaque (hides everything below it).
pub fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    get_xattr(dir, c"trusted.overlay.opaque").is_some_and(|v| v == b"y")
}

/// The names in directory `dir` (without `.` and `..`), sorted.
pub fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = dir.try_clone_to_owned()?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(errno)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.map_err(errno)?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    out.sort();
    Ok(out)
}

/// Bytes of the regular files below `root` (a container's writable
/// layer, a volume): walked by descriptor, so a directory the container
/// swaps for a link to `/` is never entered; unreadable parts count 0,
/// trees deeper than [`MAX_DEPTH`] are not descended further.
pub fn tree_size(root: &std::path::Path) -> u64 {
    fn walk(dir: &OwnedFd, depth: usize) -> u64 {
        let Ok(list) = names(dir.as_fd()) else {
            return 0;
        };
        let mut total = 0;
        for n in list {
            let name = OsStr::from_bytes(&n);
            let Ok(st) = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            match kind(&st) {
                SFlag::S_IFDIR if depth < MAX_DEPTH => {
                    if let Ok(sub) = open_dir(dir.as_fd(), name) {
                        total += walk(&sub, depth + 1);
                    }
                }
                SFlag::S_IFDIR => {}
                _ => total += st.st_size.max(0) as u64,
            }
        }
        total
    }
    match File::open(root) {
        Ok(f) => walk(&OwnedFd::from(f), 0),
        Err(_) => 0,
    }
}

/// A path shown in an error: at most 80 bytes of it.
pub fn shown(p: &[u8]) -> String {
    if p.len() <= 80 {
        String::from_utf8_lossy(p).into_owned()
    } else {
        format!("{}...", String::from_utf8_lossy(&p[..80]))
    }
}

/// Refuse a path of `comps` the kernel could not name: a component longer
/// than NAME_MAX, a whole longer than PATH_MAX, deeper than MAX_DEPTH.
pub fn check_components<C: AsRef<OsStr>>(comps: &[C]) -> Result<(), String> {
    let bytes: usize = comps.iter().map(|c| c.as_ref().len() + 1).sum();
    let show = || {
        let mut s = Vec::new();
        for c in comps.iter().take(40) {
            s.extend_from_slice(c.as_ref().as_bytes());
            s.push(b'/');
        }
        shown(&s)
    };
    if comps.len() > MAX_DEPTH {
        return Err(format!(
            "path {} is {} levels deep, more than the {MAX_DEPTH} allowed",
            show(),
            comps.len()
        ));
    }
    if bytes > PATH_MAX + 1 {
        return Err(format!(
            "path {} is {} bytes long, more than the kernel's {PATH_MAX}",
            show(),
            bytes.saturating_sub(1)
        ));
    }
    if let Some(c) = comps.iter().find(|c| c.as_ref().len() > NAME_MAX) {
        return Err(format!(
            "name {} is longer than {NAME_MAX} bytes",
            shown(c.as_ref().as_bytes())
        ));
    }
    Ok(())
}

/// Bytes read from a tar stream while the tar reader parses the headers
/// of one member: counted and bounded, so a GNU long name or PAX record
/// of a gigabyte (a few KB once compressed) is refused instead of held
/// in memory.
#[derive(Default)]
struct Budget {
    in_headers: Cell<bool>,
    used: Cell<u64>,
}

pub struct Bounded<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.budget.in_headers.get() {
            let used = self.budget.used.get() + n as u64;
            self.budget.used.set(used);
            if used > MAX_TAR_HEADER_DATA + 64 * 1024 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "tar header data of one member exceeds {} bytes",
                        MAX_TAR_HEADER_DATA
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// Each member of the tar `input`, in order, with the header data of each
/// bounded (see [`Bounded`]). What `each` leaves unread of a member is
/// drained before the next header is read. `tar_err` turns a malformed
/// archive into the caller's error.
pub fn entries<R: Read, E>(
    input: R,
    tar_err: impl Fn(io::Error) -> E,
    mut each: impl FnMut(&mut tar::Entry<'_, Bounded<R>>) -> Result<(), E>,
) -> Result<R, E> {
    let budget = Rc::new(Budget::default());
    let mut ar = tar::Archive::new(Bounded {
        inner: input,
        budget: budget.clone(),
    });
    {
        let mut it = ar.entries().map_err(&tar_err)?;
        loop {
            budget.in_headers.set(true);
            budget.used.set(0);
            let next = it.next();
            budget.in_headers.set(false);
            let Some(entry) = next else { break };
            let mut e = entry.map_err(&tar_err)?;
            each(&mut e)?;
            io::copy(&mut e, &mut io::sink()).map_err(&tar_err)?;
        }
    }
    Ok(ar.into_inner().inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_name_tar(name_len: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let name = "a/".repeat(name_len / 2) + "f";
        b.append_data(&mut h, name, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn header_data_is_bounded_and_members_are_drained() {
        // A long name within the budget is read; the member's data need
        // not be read by the callback.
        let ok = long_name_tar(8000);
        let mut seen = 0;
        entries(
            &ok[..],
            |e| e.to_string(),
            |e| {
                seen += e.path_bytes().len();
                Ok(())
            },
        )
        .unwrap();
        assert!(seen > 8000);
        // Two MiB of long name: refused, not held.
        let big = long_name_tar(2 << 20);
        let err = entries(&big[..], |e| e.to_string(), |_| Ok(())).unwrap_err();
        assert!(err.contains("header data"), "{err}");
    }

    #[test]
    fn component_limits() {
        let deep: Vec<&str> = vec!["a"; MAX_DEPTH + 1];
        assert!(check_components(&deep).unwrap_err().contains("levels deep"));
        let long: Vec<String> = vec!["b".repeat(200); 30];
        assert!(check_components(&long).unwrap_err().contains("bytes long"));
        assert!(check_components(&["c".repeat(256)])
            .unwrap_err()
            .contains("longer than 255"));
        let fine: Vec<String> = vec!["d".repeat(255); 15];
        check_components(&fine).unwrap();
    }

    #[test]
    fn regular_files_only_and_metadata_by_descriptor() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        nix::unistd::mkfifo(&t.path().join("p"), Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        let d = File::open(t.path()).unwrap();
        let (mut f, st) = open_regular(d.as_fd(), OsStr::new("f")).unwrap().unwrap();
        assert_eq!(st.st_size, 1);
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "x");
        // A fifo is never opened (the open would block), a link never followed.
        assert!(open_regular(d.as_fd(), OsStr::new("p")).unwrap().is_none());
        assert!(open_regular(d.as_fd(), OsStr::new("l")).unwrap().is_none());
        // chmod through an O_PATH descriptor changes the fifo itself.
        let (p, _) = open_entry(d.as_fd(), OsStr::new("p")).unwrap();
        chmod_fd(p.as_fd(), 0o640).unwrap();
        set_times_fd(p.as_fd(), 1000).unwrap();
        let m = std::fs::symlink_metadata(t.path().join("p")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.mtime(), 1000);
        // chown of a symlink's descriptor changes the link, not its target.
        let (l, _) = open_entry(d.as_fd(), OsStr::new("l")).unwrap();
        chown_fd(l.as_fd(), 4321, 4321).unwrap();
        assert_eq!(
            std::fs::symlink_metadata(t.path().join("l")).unwrap().uid(),
            4321
        );
        assert_eq!(std::fs::metadata(t.path().join("f")).unwrap().uid(), 0);
    }

    #[test]
    fn tree_size_never_follows_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("big"), vec![0u8; 100_000]).unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), "12345").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("l")).unwrap();
        let link_len = outside.as_os_str().len() as u64;
        assert_eq!(tree_size(&root), 5 + link_len);
        assert_eq!(tree_size(&t.path().join("missing")), 0);
    }
}
