//! Applying a layer tar to a directory, securely.
//!
//! Every path is cleaned lexically (a name that climbs out of the root with
//! `..` is refused) and then resolved one component at a time from an fd of
//! the layer root with `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)`: no
//! symlink is ever followed, inside the layer or out of it, so an entry that
//! goes through a symlinked parent is refused. Files are created with
//! `O_EXCL | O_NOFOLLOW` relative to their parent's fd, metadata is set on
//! that fd or with `AT_SYMLINK_NOFOLLOW`. Hardlink targets resolve the same
//! way. Whiteouts become overlay whiteouts (0/0 char device, opaque xattr)
//! or actual deletions (vfs). The whole decompressed stream is hashed (the
//! diffID); at most 1 MiB may follow the end-of-archive marker.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use berth_actors::{ErrorKind, HasKind};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use sha2::{Digest, Sha256};

use crate::sys::fsfd::{check_components, chmod_fd, chown_fd, open_dir, open_entry, set_times_fd};

/// How whiteout entries are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// overlayfs: `.wh.x` → char device 0/0 `x`; `.wh..wh..opq` → `trusted.overlay.opaque=y`.
    Overlay,
    /// Plain directories (vfs): delete what the whiteout names.
    Delete,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("invalid layer: {0}")]
    Invalid(String),
    #[error("applying layer: {0}")]
    Io(#[from] io::Error),
}

impl HasKind for LayerError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayerError::Invalid(_) => ErrorKind::InvalidParameter,
            LayerError::Io(_) => ErrorKind::System,
        }
    }
}

fn invalid(msg: impl Into<String>) -> LayerError {
    LayerError::Invalid(msg.into())
}

fn sys(e: Errno) -> LayerError {
    LayerError::Io(io::Error::from(e))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the whole decompressed stream.
    pub diff_id: String,
    /// Bytes of the decompressed stream.
    pub tar_size: u64,
    /// Bytes of regular file content written.
    pub size: u64,
}

const MAX_TRAILING: u64 = 1 << 20;

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Lexically clean a tar name into components below the root.
fn clean(p: &Path) -> Result<Vec<OsString>, LayerError> {
    let mut out: Vec<OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(invalid(format!("{:?} climbs out of the layer root", p)));
                }
            }
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
    Ok(out)
}

fn show(comps: &[OsString]) -> String {
    comps
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A set of paths stored as a tree of names: memory linear in the names
/// added (a set of whole paths would hold every ancestor of a deep path
/// again, quadratic in its depth).
#[derive(Default)]
struct PathSet {
    nodes: HashMap<(u32, OsString), u32>,
    members: HashSet<u32>,
}

impl PathSet {
    const ROOT: u32 = 0;

    fn node(&self, comps: &[OsString]) -> Option<u32> {
        let mut cur = Self::ROOT;
        for c in comps {
            cur = *self.nodes.get(&(cur, c.clone()))?;
        }
        Some(cur)
    }

    fn insert(&mut self, comps: &[OsString]) {
        let mut cur = Self::ROOT;
        for c in comps {
            let next = self.nodes.len() as u32 + 1;
            cur = *self.nodes.entry((cur, c.clone())).or_insert(next);
        }
        self.members.insert(cur);
    }

    fn contains(&self, comps: &[OsString]) -> bool {
        self.node(comps).is_some_and(|n| self.members.contains(&n))
    }
}

struct Applier {
    root: OwnedFd,
    mode: WhiteoutMode,
    /// Paths this layer created (vfs opaque directories keep these).
    created: PathSet,
    dir_times: Vec<(Vec<OsString>, i64)>,
    cache: Option<(Vec<OsString>, OwnedFd)>,
    size: u64,
}

impl Applier {
    /// An O_PATH fd of directory `comps`, walking one component at a time
    /// without following any symlink; missing directories are created
    /// (0755, root-owned) when `create`.
    fn dir(&mut self, comps: &[OsString], create: bool) -> Result<OwnedFd, LayerError> {
        if let Some((c, fd)) = &self.cache {
            if c.as_slice() == comps {
                return Ok(fd.try_clone()?);
            }
        }
        let mut cur = self.root.try_clone()?;
        for (i, comp) in comps.iter().enumerate() {
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(
                    ResolveFlag::RESOLVE_NO_SYMLINKS
                        | ResolveFlag::RESOLVE_NO_MAGICLINKS
                        | ResolveFlag::RESOLVE_BENEATH,
                );
            let next = match openat2(cur.as_fd(), comp.as_os_str(), how) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(
                        cur.as_fd(),
                        comp.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys(e)),
                    }
                    self.created.insert(&comps[..=i]);
                    openat2(cur.as_fd(), comp.as_os_str(), how)
                        .map_err(|e| self.walk_error(e, &comps[..=i]))?
                }
                Err(e) => return Err(self.walk_error(e, &comps[..=i])),
            };
            cur = next;
        }
        self.cache = Some((comps.to_vec(), cur.try_clone()?));
        Ok(cur)
    }

    fn walk_error(&self, e: Errno, at: &[OsString]) -> LayerError {
        match e {
            Errno::ELOOP | Errno::EXDEV => invalid(format!(
                "{} is a symlink; layer entries may not go through symlinks",
                show(at)
            )),
            Errno::ENOTDIR => invalid(format!("{} is not a directory", show(at))),
            Errno::ENOENT => invalid(format!("{} does not exist", show(at))),
            e => sys(e),
        }
    }

    fn lstat(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
    ) -> Result<Option<nix::sys::stat::FileStat>, LayerError> {
        match fstatat(parent.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(sys(e)),
        }
    }

    /// Remove `name` under `parent` (recursively, never following symlinks).
    fn remove(&mut self, parent: &OwnedFd, name: &OsStr) -> Result<(), LayerError> {
        self.cache = None;
        let Some(st) = self.lstat(parent, name)? else {
            return Ok(());
        };
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
            let dfd = openat(
                parent.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys)?;
            self.clear_dir(&dfd, &|_| false)?;
            unlinkat(parent.as_fd(), name, UnlinkatFlags::RemoveDir).map_err(sys)?;
        } else {
            unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir).map_err(sys)?;
        }
        Ok(())
    }

    /// Remove every child of the directory `dfd` for which `keep` is false.
    fn clear_dir(
        &mut self,
        dfd: &OwnedFd,
        keep: &dyn Fn(&OsStr) -> bool,
    ) -> Result<(), LayerError> {
        let mut names = Vec::new();
        {
            let mut d = nix::dir::Dir::from_fd(dfd.try_clone()?).map_err(sys)?;
            for ent in d.iter() {
                let ent = ent.map_err(sys)?;
                let n = OsStr::from_bytes(ent.file_name().to_bytes()).to_os_string();
                if n != "." && n != ".." && !keep(&n) {
                    names.push(n);
                }
            }
        }
        for n in names {
            self.remove(dfd, &n)?;
        }
        Ok(())
    }

    /// Make room for a new entry `name`: keep an existing directory when the
    /// new entry is one too, remove anything else.
    fn replace(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        new_is_dir: bool,
    ) -> Result<bool, LayerError> {
        match self.lstat(parent, name)? {
            None => Ok(false),
            Some(st) => {
                let is_dir =
                    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
                if is_dir && new_is_dir {
                    Ok(true)
                } else {
                    self.remove(parent, name)?;
                    Ok(false)
                }
            }
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = e
            .path()
            .map_err(|err| invalid(format!("bad entry name: {err}")))?
            .into_owned();
        let comps = clean(&raw_path)?;
        check_components(&comps).map_err(invalid)?;
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself ("./")
        };
        let name = name.clone();
        let nb = name.as_bytes();
        if let Some(target) = nb.strip_prefix(b".wh.") {
            let pfd = self.dir(parent, true)?;
            if target == b".wh..opq" {
                match self.mode {
                    WhiteoutMode::Overlay => {
                        let d = openat(
                            pfd.as_fd(),
                            ".",
                            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(sys)?;
                        set_xattr(d.as_fd(), "trusted.overlay.opaque", b"y")?;
                    }
                    WhiteoutMode::Delete => {
                        let d = openat(
                            pfd.as_fd(),
                            ".",
                            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(sys)?;
                        let created = std::mem::take(&mut self.created);
                        let r = self.clear_dir(&d, &|n| {
                            let mut p = parent.to_vec();
                            p.push(n.to_os_string());
                            created.contains(&p)
                        });
                        self.created = created;
                        r?;
                    }
                }
                return Ok(());
            }
            if target.starts_with(b".wh.") {
                return Ok(()); // aufs metadata (.wh..wh.plnk, ...)
            }
            let victim = OsStr::from_bytes(target);
            if victim.is_empty() || victim == "." || victim == ".." {
                return Err(invalid(format!("bad whiteout {raw_path:?}")));
            }
            self.remove(&pfd, victim)?;
            if self.mode == WhiteoutMode::Overlay {
                mknodat(pfd.as_fd(), victim, SFlag::S_IFCHR, Mode::empty(), 0).map_err(sys)?;
            }
            return Ok(());
        }

        let pfd = self.dir(parent, true)?;
        let h = e.header().clone();
        // Blank numeric fields read as 0, as Go's archive/tar reads them.
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0) & 0o7777);
        let uid = u32::try_from(h.uid().unwrap_or(0))
            .map_err(|_| invalid(format!("{raw_path:?}: uid out of range")))?;
        let gid = u32::try_from(h.gid().unwrap_or(0))
            .map_err(|_| invalid(format!("{raw_path:?}: gid out of range")))?;
        let mtime = h.mtime().unwrap_or(0) as i64;
        let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        let xattrs = xattrs_of(e)?;
        match kind {
            tar::EntryType::Directory => {
                let existed = self.replace(&pfd, &name, true)?;
                if !existed {
                    mkdirat(
                        pfd.as_fd(),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(sys)?;
                }
                let d = open_dir(pfd.as_fd(), &name).map_err(sys)?;
                own_and_mode(d.as_fd(), uid, gid, mode)?;
                for (k, v) in &xattrs {
                    set_xattr(d.as_fd(), k, v)?;
                }
                self.dir_times.push((comps.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                self.replace(&pfd, &name, false)?;
                let mut f = crate::sys::fsfd::create_new(pfd.as_fd(), &name).map_err(sys)?;
                self.size += io::copy(e, &mut f)?;
                fchown(f.as_fd(), uid, gid).map_err(sys)?;
                fchmod(f.as_fd(), mode).map_err(sys)?;
                for (k, v) in &xattrs {
                    set_xattr(f.as_fd(), k, v)?;
                }
                let t = TimeSpec::new(mtime, 0);
                nix::sys::stat::futimens(f.as_fd(), &t, &t).map_err(sys)?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|err| invalid(format!("{raw_path:?}: bad link name: {err}")))?
                    .ok_or_else(|| invalid(format!("{raw_path:?}: symlink without target")))?
                    .into_owned();
                self.replace(&pfd, &name, false)?;
                symlinkat(target.as_os_str(), pfd.as_fd(), name.as_os_str()).map_err(sys)?;
                fchownat(
                    pfd.as_fd(),
                    name.as_os_str(),
                    uid,
                    gid,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(sys)?;
                set_mtime(&pfd, &name, mtime)?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(|err| invalid(format!("{raw_path:?}: bad link name: {err}")))?
                    .ok_or_else(|| invalid(format!("{raw_path:?}: hardlink without target")))?
                    .into_owned();
                let tcomps = clean(&target)?;
                check_components(&tcomps).map_err(invalid)?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(invalid(format!("{raw_path:?}: hardlink to the root")));
                };
                let tfd = self.dir(tparent, false)?;
                match self.lstat(&tfd, tname)? {
                    None => {
                        return Err(invalid(format!(
                            "{raw_path:?}: hardlink target {} does not exist",
                            show(&tcomps)
                        )))
                    }
                    Some(st)
                        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
                            == SFlag::S_IFDIR =>
                    {
                        return Err(invalid(format!("{raw_path:?}: hardlink to a directory")))
                    }
                    Some(_) => {}
                }
                if tcomps == comps {
                    return Ok(());
                }
                self.replace(&pfd, &name, false)?;
                let tfd = self.dir(tparent, false)?;
                let pfd = self.dir(parent, false)?;
                linkat(
                    tfd.as_fd(),
                    tname.as_os_str(),
                    pfd.as_fd(),
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(sys)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kindflag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                self.replace(&pfd, &name, false)?;
                mknodat(
                    pfd.as_fd(),
                    name.as_os_str(),
                    kindflag,
                    mode,
                    nix::sys::stat::makedev(major.into(), minor.into()),
                )
                .map_err(sys)?;
                let (node, _) = open_entry(pfd.as_fd(), &name).map_err(sys)?;
                own_and_mode(node.as_fd(), uid, gid, mode)?;
                set_times_fd(node.as_fd(), mtime).map_err(sys)?;
            }
            other => {
                return Err(invalid(format!(
                    "{raw_path:?}: unsupported tar entry type {other:?}"
                )))
            }
        }
        self.created.insert(&comps);
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<(), LayerError> {
        // Deepest first is not needed: setting a directory's times does not
        // change its parent's.
        let times = std::mem::take(&mut self.dir_times);
        for (comps, mtime) in times {
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let Ok(pfd) = self.dir(parent, false) else {
                continue;
            };
            let t = TimeSpec::new(mtime, 0);
            match utimensat(
                pfd.as_fd(),
                name.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(sys(e)),
            }
        }
        Ok(())
    }
}

/// Set atime and mtime of `name` under `pfd`, never following a symlink.
fn set_mtime(pfd: &OwnedFd, name: &OsStr, mtime: i64) -> Result<(), LayerError> {
    let t = TimeSpec::new(mtime, 0);
    utimensat(pfd.as_fd(), name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(sys)
}

/// chown then chmod (so set-id bits survive) what `fd` holds: an entry
/// this layer just created, never a name that could have been replaced.
fn own_and_mode(
    fd: BorrowedFd<'_>,
    uid: Option<Uid>,
    gid: Option<Gid>,
    mode: Mode,
) -> Result<(), LayerError> {
    chown_fd(
        fd,
        uid.map(|u| u.as_raw()).unwrap_or(0),
        gid.map(|g| g.as_raw()).unwrap_or(0),
    )
    .map_err(sys)?;
    chmod_fd(fd, mode.bits()).map_err(sys)
}

fn xattrs_of<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>, LayerError> {
    let mut out = Vec::new();
    if let Some(exts) = e
        .pax_extensions()
        .map_err(|err| invalid(format!("bad PAX header: {err}")))?
    {
        for ext in exts {
            let ext = ext.map_err(|err| invalid(format!("bad PAX header: {err}")))?;
            if let Ok(k) = ext.key() {
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn set_xattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> Result<(), LayerError> {
    match crate::sys::fsfd::set_xattr(fd, name, value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            Err(invalid(format!("bad xattr name {name:?}")))
        }
        // Filesystems without xattr support, or security.* we may not set.
        Err(err)
            if matches!(err.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM))
                && !name.starts_with("trusted.overlay") =>
        {
            tracing::debug!(%name, "xattr not applied: {err}");
            Ok(())
        }
        Err(err) => Err(LayerError::Io(err)),
    }
}

/// Apply the (decompressed) layer tar `input` to the directory `root`.
pub fn apply_layer(
    root: &Path,
    input: impl Read,
    mode: WhiteoutMode,
) -> Result<ApplyStats, LayerError> {
    let root_file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)?;
    // SAFETY: into_raw_fd transfers ownership of a valid fd.
    let root_fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(root_file)) };
    let mut hr = HashingReader {
        inner: input,
        hasher: Sha256::new(),
        count: 0,
    };
    let mut ap = Applier {
        root: root_fd,
        mode,
        created: PathSet::default(),
        dir_times: Vec::new(),
        cache: None,
        size: 0,
    };
    crate::sys::fsfd::entries(
        &mut hr,
        |e| invalid(format!("corrupt tar archive: {e}")),
        |e| ap.entry(e),
    )?;
    ap.finish_dir_times()?;
    let trailing = io::copy(&mut (&mut hr).take(MAX_TRAILING + 1), &mut io::sink())
        .map_err(|e| invalid(format!("corrupt layer stream: {e}")))?;
    if trailing > MAX_TRAILING {
        return Err(invalid(
            "more than 1 MiB of data after the end of the tar archive",
        ));
    }
    Ok(ApplyStats {
        diff_id: format!("sha256:{}", berth_actors::image::hex(&hr.hasher.finalize())),
        tar_size: hr.count,
        size: ap.size,
    })
}
