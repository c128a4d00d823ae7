//! `COPY` and `ADD`: the sources packed into a tar (with the checksum the
//! build cache keys the step on), then extracted into a new layer over the
//! step's parent at the destination.
//!
//! Sources are read from the build context (or, with `--from`, from an
//! image's root filesystem) resolved *inside* that root: a source that is
//! a symlink is followed only within it (`openat2(RESOLVE_IN_ROOT)`), so a
//! context symlink to `/etc/shadow` names the context's own `etc/shadow`;
//! `..` never leaves it (refused as dockerd refuses it); below a source
//! directory, symlinks are copied as symlinks, never followed. The
//! destination is created and written by the in-root extractor `docker
//! cp` uses.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};

use super::context::{decompressed, looks_like_archive, root_fd};
use super::ignore::{clean, compile, Ignore};
use super::BuildError;
use crate::containers::archive::{extract, open_in_root, ExtractError, ExtractOptions};
use crate::sys::fsfd;

/// Where the sources are read from.
pub struct Sources<'a> {
    pub root: &'a Path,
    /// The context's `.dockerignore` (none for an image's files).
    pub ignore: Option<&'a Ignore>,
    /// `COPY` or `ADD`, for the messages.
    pub what: &'a str,
    /// Keep the sources' owners (`--from` without `--chown`); else
    /// everything is `owner` (root by default).
    pub keep_owners: bool,
    pub owner: (u32, u32),
    pub chmod: Option<u32>,
    /// Extract local archives (`ADD`).
    pub extract_archives: bool,
    /// More that the checksum covers (a `--chown` by name, `--chmod`).
    pub extra: &'a str,
}

/// The packed sources.
pub struct Packed {
    pub tar: PathBuf,
    /// `file:<sha256>`, `dir:<sha256>` or `multi:<sha256>`, as dockerd
    /// names a step's sources in its history.
    pub checksum: String,
    /// One regular file (the destination may name the file itself).
    pub single_file: bool,
    /// More than one source.
    pub multi: bool,
}

fn fail(what: &str, m: impl std::fmt::Display) -> BuildError {
    BuildError::Invalid(format!("{what} failed: {m}"))
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The context paths `pattern` names (component by component: `*` never
/// crosses a `/`, as Go's `filepath.Match`).
fn glob(root: &Path, pattern: &str) -> Result<Vec<String>, BuildError> {
    let mut found = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if !is_glob(comp) {
            for f in found {
                let p = if f.is_empty() {
                    comp.to_string()
                } else {
                    format!("{f}/{comp}")
                };
                if std::fs::symlink_metadata(root.join(&p)).is_ok() {
                    next.push(p);
                }
            }
        } else {
            let re = compile(comp).map_err(|e| BuildError::Invalid(e.0))?;
            for f in found {
                let dir = root.join(&f);
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| re.is_match(n))
                    .collect();
                names.sort();
                for n in names {
                    next.push(if f.is_empty() { n } else { format!("{f}/{n}") });
                }
            }
        }
        found = next;
    }
    Ok(found.into_iter().filter(|f| !f.is_empty()).collect())
}

/// The path an `O_PATH` descriptor names.
fn fd_path(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Writes the tar and the checksum of what it holds (names, types, modes,
/// owners, link targets and contents; not the times, as dockerd's).
struct Packer<'a> {
    tar: tar::Builder<File>,
    sum: Sha256,
    src: Sources<'a>,
    /// Hard links already written: (device, inode) → name.
    links: HashMap<(u64, u64), String>,
}

impl Packer<'_> {
    fn header(&self, m: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let mut mode = m.mode() & 0o7777;
        if let Some(c) = self.src.chmod {
            mode = c;
        }
        h.set_mode(mode);
        let (uid, gid) = if self.src.keep_owners {
            (m.uid(), m.gid())
        } else {
            self.src.owner
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(m.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    fn note(&mut self, name: &str, h: &tar::Header, link: &[u8]) {
        let line = format!(
            "{name}\0{:?}\0{:o}\0{}\0{}\0{}\0",
            h.entry_type(),
            h.mode().unwrap_or(0),
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            h.size().unwrap_or(0)
        );
        self.sum.update(line.as_bytes());
        self.sum.update(link);
        self.sum.update([0u8]);
    }

    /// One filesystem entry at `path`, named `name` in the tar.
    fn entry(&mut self, path: &Path, name: &str) -> Result<(), BuildError> {
        let m = std::fs::symlink_metadata(path)?;
        let ft = m.file_type();
        if ft.is_dir() {
            let mut h = self.header(&m, tar::EntryType::Directory);
            self.note(name, &h, b"");
            self.tar
                .append_data(&mut h, format!("{name}/"), std::io::empty())?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path)?;
            let mut h = self.header(&m, tar::EntryType::Symlink);
            self.note(name, &h, target.as_os_str().as_bytes());
            self.tar.append_link(&mut h, name, &target)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())).cloned() {
                    let mut h = self.header(&m, tar::EntryType::Link);
                    self.note(name, &h, first.as_bytes());
                    self.tar.append_link(&mut h, name, &first)?;
                    return Ok(());
                }
                self.links.insert((m.dev(), m.ino()), name.to_string());
            }
            let mut h = self.header(&m, tar::EntryType::Regular);
            h.set_size(m.len());
            self.note(name, &h, b"");
            let f = File::open(path)?;
            let hashing = HashingReader {
                inner: f.take(m.len()),
                sum: &mut self.sum,
            };
            self.tar.append_data(&mut h, name, hashing)?;
        } else {
            // Devices, fifos and sockets of a context are left out (the CLI
            // does not send them either).
            tracing::debug!(path = %path.display(), "special file left out of a COPY");
        }
        Ok(())
    }

    /// A directory's content below `prefix`, in name order; `rel` is its
    /// path in the context (for `.dockerignore`).
    fn walk(&mut self, dir: &Path, prefix: &str, rel: &str) -> Result<(), BuildError> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let s = n.to_string_lossy().into_owned();
            let crel = if rel.is_empty() {
                s.clone()
            } else {
                format!("{rel}/{s}")
            };
            let cname = if prefix.is_empty() {
                s.clone()
            } else {
                format!("{prefix}/{s}")
            };
            let path = dir.join(&n);
            let excluded = self.src.ignore.is_some_and(|i| i.excludes(&crel));
            let m = std::fs::symlink_metadata(&path)?;
            if !excluded {
                self.entry(&path, &cname)?;
            }
            if m.file_type().is_dir() {
                self.walk(&path, &cname, &crel)?;
            }
        }
        Ok(())
    }

    /// A local archive's entries (`ADD`), as they are in it.
    fn archive(&mut self, path: &Path) -> Result<(), BuildError> {
        let what = self.src.what.to_string();
        let mut r = decompressed(File::open(path)?)?;
        let mut a = tar::Archive::new(&mut r);
        for e in a.entries().map_err(|e| fail(&what, e))? {
            let mut e = e.map_err(|e| fail(&what, e))?;
            let raw = e.path_bytes().into_owned();
            let name = clean(&String::from_utf8_lossy(&raw));
            if name == "." || name.starts_with("..") || name.starts_with('/') {
                if name == "." {
                    continue;
                }
                return Err(fail(&what, format!("invalid path in archive: {name}")));
            }
            let mut h = e.header().clone();
            if let Some(c) = self.src.chmod {
                h.set_mode(c);
            }
            let link = e
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            self.note(&name, &h, &link);
            match h.entry_type() {
                t if t.is_symlink() || t.is_hard_link() => {
                    let target = PathBuf::from(OsStr::from_bytes(&link));
                    self.tar.append_link(&mut h, &name, &target)?;
                }
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
                _ => {
                    let hashing = HashingReader {
                        inner: &mut e,
                        sum: &mut self.sum,
                    };
                    self.tar.append_data(&mut h, &name, hashing)?;
                }
            }
        }
        Ok(())
    }
}

struct HashingReader<'a, R> {
    inner: R,
    sum: &'a mut Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }
}

/// Pack `sources` (as the Dockerfile gives them) into `out`.
pub fn pack(src: Sources<'_>, sources: &[String], out: &Path) -> Result<Packed, BuildError> {
    let what = src.what.to_string();
    let root = root_fd(src.root)?;
    // The sources, cleaned and expanded, each checked to stay inside.
    let mut names: Vec<String> = Vec::new();
    for s in sources {
        let c = clean(s.trim_start_matches('/'));
        if c == ".." || c.starts_with("../") {
            return Err(fail(
                &what,
                format!("forbidden path outside the build context: {s} ()"),
            ));
        }
        if is_glob(&c) {
            let found: Vec<String> = glob(src.root, &c)?
                .into_iter()
                .filter(|f| src.ignore.is_none_or(|i| !i.excludes(f)))
                .collect();
            names.extend(found);
        } else {
            let excluded = c != "." && src.ignore.is_some_and(|i| i.excludes(&c));
            let present = open_in_root(&root, &c, OFlag::O_PATH).is_ok();
            if excluded || !present {
                return Err(fail(
                    &what,
                    format!("file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"),
                ));
            }
            names.push(c);
        }
    }
    if names.is_empty() {
        return Err(fail(&what, "no source files were specified"));
    }
    let multi = names.len() > 1;
    let src_root = src.root.to_path_buf();
    let extract_archives = src.extract_archives;
    let mut p = Packer {
        tar: tar::Builder::new(File::create(out)?),
        sum: Sha256::new(),
        src,
        links: HashMap::new(),
    };
    p.tar.follow_symlinks(false);
    p.sum.update(p.src.extra.as_bytes());
    p.sum.update([0u8]);
    let mut kind = "file";
    for n in &names {
        // Resolved in the root: a symlink source is followed inside it.
        let fd = open_in_root(&root, n, OFlag::O_PATH).map_err(|e| {
            fail(
                &what,
                format!(
                    "file not found in build context or excluded by .dockerignore: stat {n}: {e}"
                ),
            )
        })?;
        let real = fd_path(&fd)?;
        let rel = real
            .strip_prefix(&src_root)
            .map_err(|_| {
                fail(
                    &what,
                    format!("forbidden path outside the build context: {n} ()"),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let m = std::fs::symlink_metadata(&real)?;
        let base = Path::new(n)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into());
        if m.is_dir() {
            kind = "dir";
            p.walk(&real, "", &rel)?;
        } else if extract_archives && m.is_file() && is_archive(&real)? {
            kind = "dir";
            p.archive(&real)?;
        } else {
            p.entry(&real, &base)?;
        }
    }
    p.tar.finish()?;
    let mut f = p.tar.into_inner()?;
    f.flush()?;
    f.sync_all()?;
    let hex = format!("{:x}", p.sum.finalize());
    let kind = if multi { "multi" } else { kind };
    Ok(Packed {
        tar: out.to_path_buf(),
        checksum: format!("{kind}:{hex}"),
        single_file: kind == "file",
        multi,
    })
}

fn is_archive(p: &Path) -> Result<bool, BuildError> {
    let mut head = [0u8; 512];
    let mut f = File::open(p)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(looks_like_archive(&head[..n]))
}

/// The directory `path` in the root, made (mode 0755, owned by `owner`)
/// where it is missing; each component resolved inside the root.
pub fn ensure_dir(root: &OwnedFd, path: &str, owner: (u32, u32)) -> Result<(), BuildError> {
    let mut cur = String::from("/");
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let next = if cur == "/" {
            format!("/{comp}")
        } else {
            format!("{cur}/{comp}")
        };
        match open_in_root(root, &next, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(_) => {}
            Err(nix::errno::Errno::ENOENT) => {
                let parent = open_in_root(root, &cur, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(fsfd::errno)?;
                match nix::sys::stat::mkdirat(parent.as_fd(), comp, Mode::from_bits_truncate(0o755))
                {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(fsfd::errno(e).into()),
                }
                let d = fsfd::open_dir(parent.as_fd(), OsStr::new(comp)).map_err(fsfd::errno)?;
                fsfd::chown_fd(d.as_fd(), owner.0, owner.1).map_err(fsfd::errno)?;
                fsfd::chmod_fd(d.as_fd(), 0o755).map_err(fsfd::errno)?;
            }
            Err(e) => {
                return Err(BuildError::Invalid(format!(
                    "mkdir {next}: {}",
                    fsfd::errno(e)
                )))
            }
        }
        cur = next;
    }
    Ok(())
}

fn extract_err(what: &str, e: ExtractError) -> BuildError {
    match e {
        ExtractError::Io(e) => BuildError::Io(e),
        e => fail(what, e),
    }
}

/// Extract `packed` at `dest` (absolute, cleaned; `dir` when the
/// Dockerfile says it is a directory) in the root filesystem `rootfs`.
/// Directories made for it belong to `owner`; `named` (a `--chown` by
/// name) gives everything to that user, resolved in the root's own
/// /etc/passwd and /etc/group.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    rootfs: &Path,
    packed: &Packed,
    dest: &str,
    dir: bool,
    owner: (u32, u32),
    named: Option<&str>,
    what: &str,
    work: &Path,
) -> Result<(), BuildError> {
    let root = root_fd(rootfs)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: named.is_some(),
        user: named.unwrap_or_default().to_string(),
    };
    let existing_dir = open_in_root(&root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok();
    if dir || !packed.single_file || existing_dir {
        ensure_dir(&root, dest, owner)?;
        let f = File::open(&packed.tar)?;
        return extract(&root, dest, f, &opts).map_err(|e| extract_err(what, e));
    }
    // One file named by the destination: its entry renamed.
    let (parent, name) = match dest.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => ("/", dest),
    };
    ensure_dir(&root, parent, owner)?;
    let renamed = work.join("renamed.tar");
    {
        let mut a = tar::Archive::new(File::open(&packed.tar)?);
        let mut b = tar::Builder::new(File::create(&renamed)?);
        for e in a.entries()? {
            let mut e = e?;
            let mut h = e.header().clone();
            b.append_data(&mut h, name, &mut e)?;
        }
        b.finish()?;
    }
    let r = extract(&root, parent, File::open(&renamed)?, &opts).map_err(|e| extract_err(what, e));
    let _ = std::fs::remove_file(&renamed);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_path: &Path) -> Vec<(String, u64, u64)> {
        let mut a = tar::Archive::new(File::open(tar_path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                    e.header().mode().unwrap() as u64,
                )
            })
            .collect()
    }

    fn src<'a>(root: &'a Path, ignore: Option<&'a Ignore>) -> Sources<'a> {
        Sources {
            root,
            ignore,
            what: "COPY",
            keep_owners: false,
            owner: (0, 0),
            chmod: None,
            extract_archives: false,
            extra: "",
        }
    }

    #[test]
    fn sources_stay_in_the_context() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d/e")).unwrap();
        std::fs::write(ctx.join("a.txt"), "a").unwrap();
        std::fs::write(ctx.join("b.log"), "b").unwrap();
        std::fs::write(ctx.join("d/e/f"), "f").unwrap();
        std::fs::write(t.path().join("secret"), "host").unwrap();
        std::os::unix::fs::symlink("/secret", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("d/rel")).unwrap();
        let out = t.path().join("p.tar");
        // A symlink source is resolved inside the context: /secret there
        // does not exist.
        let e = pack(src(&ctx, None), &["abs".into()], &out).err().unwrap();
        assert!(e.to_string().contains("file not found"), "{e}");
        let e = pack(src(&ctx, None), &["../secret".into()], &out)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "COPY failed: forbidden path outside the build context: ../secret ()"
        );
        // A directory's content, its symlinks kept as symlinks.
        let p = pack(src(&ctx, None), &["d".into()], &out).unwrap();
        assert!(p.checksum.starts_with("dir:"));
        let n: Vec<String> = names(&out).into_iter().map(|x| x.0).collect();
        assert_eq!(n, vec!["e/", "e/f", "rel"]);
        // Wildcards, with the ignore file applied.
        let ig = Ignore::parse("*.log\n").unwrap();
        let p = pack(src(&ctx, Some(&ig)), &["*.*".into()], &out).unwrap();
        assert!(p.single_file, "only a.txt is left");
        assert_eq!(names(&out)[0].0, "a.txt");
        let e = pack(src(&ctx, Some(&ig)), &["b.log".into()], &out)
            .err()
            .unwrap();
        assert!(e.to_string().contains("excluded by .dockerignore"));
        // The checksum follows the content, not the times.
        let c1 = pack(src(&ctx, None), &["a.txt".into()], &out)
            .unwrap()
            .checksum;
        let f = File::options().write(true).open(ctx.join("a.txt")).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let c2 = pack(src(&ctx, None), &["a.txt".into()], &out)
            .unwrap()
            .checksum;
        assert_eq!(c1, c2);
        std::fs::write(ctx.join("a.txt"), "changed").unwrap();
        let c3 = pack(src(&ctx, None), &["a.txt".into()], &out)
            .unwrap()
            .checksum;
        assert_ne!(c1, c3);
        // Owners and modes as asked.
        let mut s = src(&ctx, None);
        s.owner = (1000, 1000);
        s.chmod = Some(0o640);
        pack(s, &["a.txt".into()], &out).unwrap();
        assert_eq!(names(&out)[0], ("a.txt".into(), 1000, 0o640));
    }
}
