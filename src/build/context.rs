//! The build context: the tar the client sends (plain, gzip, bzip2, xz or
//! zstd), extracted into a directory of its own under the data root with
//! the same in-root extractor `docker cp` uses (no entry leaves the
//! directory, no symlink is followed while extracting), with its
//! `.dockerignore` and the Dockerfile read from it. The directory goes
//! when the context is dropped.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::ignore::Ignore;
use super::BuildError;
use crate::containers::archive::{extract, open_in_root, ExtractError, ExtractOptions};

pub struct Context {
    /// The extracted context (removed on drop).
    pub dir: PathBuf,
    /// The build's scratch space beside it (packed sources, downloads).
    pub work: PathBuf,
    pub ignore: Ignore,
    /// The Dockerfile's text.
    pub dockerfile: String,
    top: PathBuf,
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.top) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.top.display(), "removing a build context: {e}");
            }
        }
    }
}

/// At startup: remove the contexts of builds a stopped berthd left.
pub fn sweep(tmp_root: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp_root) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("build-") || n.starts_with("remote-") {
            tracing::info!(dir = %e.path().display(), "removing a build context left behind");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The reader of `r`'s content, whatever of the context compressions it
/// has (dockerd's `DecompressStream`: gzip, bzip2, xz, zstd, or none).
pub fn decompressed<'a, R: Read + Send + 'a>(r: R) -> std::io::Result<Box<dyn Read + Send + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf()?;
    if head.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(br)));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(br)));
    }
    Ok(crate::sys::layers::decompress(br)?.1)
}

/// The context as the docker CLI sends it with a Dockerfile from outside
/// the context (`-f /elsewhere/Dockerfile`): its last entry's data is
/// not padded to a block and the end-of-archive blocks are missing (Go's
/// tar reader takes that). This reader follows the tar's blocks and, when
/// the input ends right after an entry's data, adds the padding and the
/// end blocks; an input that ends inside a header or inside an entry's
/// data stays truncated (and fails as such).
pub struct FinishTar<R> {
    inner: R,
    /// Bytes of the current header block read so far.
    header: Vec<u8>,
    /// Data bytes of the current entry still to come, then its padding.
    data_left: u64,
    pad_left: u64,
    /// What is added at the end.
    tail: Option<std::io::Cursor<Vec<u8>>>,
}

impl<R: Read> FinishTar<R> {
    pub fn new(inner: R) -> Self {
        FinishTar {
            inner,
            header: Vec::with_capacity(512),
            data_left: 0,
            pad_left: 0,
            tail: None,
        }
    }

    fn track(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.data_left > 0 {
                let n = (self.data_left as usize).min(b.len());
                self.data_left -= n as u64;
                b = &b[n..];
            } else if self.pad_left > 0 {
                let n = (self.pad_left as usize).min(b.len());
                self.pad_left -= n as u64;
                b = &b[n..];
            } else {
                let n = (512 - self.header.len()).min(b.len());
                self.header.extend_from_slice(&b[..n]);
                b = &b[n..];
                if self.header.len() == 512 {
                    let size = tar::Header::from_byte_slice(&self.header)
                        .entry_size()
                        .unwrap_or(0);
                    let all_zero = self.header.iter().all(|x| *x == 0);
                    self.data_left = if all_zero { 0 } else { size };
                    self.pad_left = (512 - size % 512) % 512;
                    if all_zero {
                        self.pad_left = 0;
                    }
                    self.header.clear();
                }
            }
        }
    }
}

impl<R: Read> Read for FinishTar<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(t) = self.tail.as_mut() {
            return t.read(buf);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.track(&buf[..n]);
            return Ok(n);
        }
        // The end: finished only after a whole entry's data.
        if self.data_left == 0 && self.header.is_empty() {
            let mut t = vec![0u8; self.pad_left as usize];
            t.extend_from_slice(&[0u8; 1024]);
            self.pad_left = 0;
            self.tail = Some(std::io::Cursor::new(t));
            return self.read(buf);
        }
        Ok(0)
    }
}

/// Whether `head` (the first bytes of a file) is a tar archive or a
/// compressed stream `ADD` extracts.
pub fn looks_like_archive(head: &[u8]) -> bool {
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    compressed || head.get(257..262) == Some(b"ustar".as_slice())
}

/// The root of a directory, as a descriptor the in-root helpers resolve
/// paths from.
pub fn root_fd(dir: &Path) -> std::io::Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(crate::sys::fsfd::errno)
}

/// Read a file of the context (resolved inside it), `None` if missing.
fn read_in(root: &OwnedFd, path: &str, limit: u64) -> Result<Option<String>, BuildError> {
    match open_in_root(root, path, OFlag::O_RDONLY) {
        Ok(fd) => {
            let mut s = String::new();
            std::fs::File::from(fd)
                .take(limit)
                .read_to_string(&mut s)
                .map_err(|e| BuildError::Invalid(format!("reading {path}: {e}")))?;
            Ok(Some(s))
        }
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(BuildError::Invalid(format!("reading {path}: {e}"))),
    }
}

/// An empty context under `tmp_root` (removed when dropped).
fn empty(tmp_root: &Path) -> Result<Context, BuildError> {
    let top = tmp_root.join(format!("build-{}", crate::sys::blobs::random_hex(16)));
    let dir = top.join("context");
    let work = top.join("work");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&work)?;
    Ok(Context {
        dir,
        work,
        ignore: Ignore::default(),
        dockerfile: String::new(),
        top,
    })
}

/// Read the context's `.dockerignore` and the Dockerfile at `dockerfile`
/// (a path in the context; `Dockerfile` then `dockerfile` by default).
fn finish(mut ctx: Context, dockerfile: Option<&str>) -> Result<Context, BuildError> {
    let root = root_fd(&ctx.dir)?;
    if let Some(text) = read_in(&root, ".dockerignore", 1 << 20)? {
        ctx.ignore = Ignore::parse(&text)
            .map_err(|e| BuildError::Invalid(format!("failed to parse .dockerignore: {e}")))?;
    }
    let wanted = dockerfile.filter(|d| !d.is_empty());
    let names: Vec<&str> = match wanted {
        Some(d) => vec![d],
        None => vec!["Dockerfile", "dockerfile"],
    };
    for n in &names {
        if let Some(text) = read_in(&root, n, 64 << 20)? {
            ctx.dockerfile = text;
            return Ok(ctx);
        }
    }
    Err(BuildError::Invalid(format!(
        "Cannot locate specified Dockerfile: {}",
        wanted.unwrap_or("Dockerfile")
    )))
}

/// Counts what passes through.
struct Counted<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n
            .fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

/// A compressed context may expand this much (and past [`BOMB_FLOOR`])
/// before it is refused as a decompression bomb.
pub const BOMB_RATIO: u64 = 200;
/// Below this the ratio is not checked.
pub const BOMB_FLOOR: u64 = 64 << 20;

/// Stops a decompressed stream that grows past [`BOMB_RATIO`] times what
/// it was made from.
struct BombCheck<R> {
    inner: R,
    raw: std::sync::Arc<std::sync::atomic::AtomicU64>,
    out: u64,
}

impl<R: Read> Read for BombCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.out += k as u64;
        let raw = self.raw.load(std::sync::atomic::Ordering::Relaxed).max(1);
        if self.out > BOMB_FLOOR && self.out / raw > BOMB_RATIO {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the context expands to more than {} bytes from {raw} compressed (over {BOMB_RATIO} times): refused as a decompression bomb",
                    self.out
                ),
            ));
        }
        Ok(k)
    }
}

/// Extract the context `input` carries into a new directory under
/// `tmp_root`, and read its `.dockerignore` and Dockerfile.
pub fn receive(
    tmp_root: &Path,
    input: impl Read + Send,
    dockerfile: Option<&str>,
) -> Result<Context, BuildError> {
    let receiving = |e: BuildError| match e {
        BuildError::Io(e) => BuildError::Io(std::io::Error::new(
            e.kind(),
            format!("receiving the build context: {e}"),
        )),
        e => e,
    };
    let ctx = empty(tmp_root).map_err(receiving)?;
    let root = root_fd(&ctx.dir).map_err(|e| receiving(BuildError::Io(e)))?;
    let raw = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Counted {
        inner: input,
        n: raw.clone(),
    };
    let reader = decompressed(counted)
        .map_err(|e| BuildError::Invalid(format!("Error processing tar file({e}): ")))?;
    let mut reader = FinishTar::new(BombCheck {
        inner: reader,
        raw,
        out: 0,
    });
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: false,
        user: String::new(),
    };
    let extracted = extract(&root, "/", &mut reader, &opts).map_err(|e| match e {
        // The daemon's disk, not the context: a 500 naming it.
        ExtractError::Io(e) if is_full(&e) => BuildError::Io(std::io::Error::new(
            e.kind(),
            format!("receiving the build context: {e}"),
        )),
        e => BuildError::Invalid(format!("Error processing tar file({e}): ")),
    });
    // What follows the archive's end (padding) is read, bounded (after a
    // failure the body's pump drains the rest).
    if extracted.is_ok() {
        let _ = std::io::copy(&mut (&mut reader).take(1 << 20), &mut std::io::sink());
    }
    extracted?;
    finish(ctx, dockerfile)
}

/// A full disk (or quota), as the error says it (its errno, or its kind
/// once wrapped with what failed).
fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
}

/// A context that is a Dockerfile alone (a `remote` URL that serves a
/// text file, as dockerd takes it).
pub fn from_dockerfile(
    tmp_root: &Path,
    text: &[u8],
    dockerfile: Option<&str>,
) -> Result<Context, BuildError> {
    let ctx = empty(tmp_root)?;
    let name = dockerfile
        .filter(|d| !d.is_empty() && !d.contains('/'))
        .unwrap_or("Dockerfile");
    std::fs::write(ctx.dir.join(name), text)?;
    finish(ctx, Some(name))
}

/// A context cloned from a git repository (`remote` as dockerd's
/// `IsGitURL` takes it: `git://`, `git@`, `github.com/`, an http(s) URL
/// ending in `.git`), at the ref and directory of its fragment
/// (`#ref:dir`); shallow, no prompt, bounded in time.
pub fn from_git(
    tmp_root: &Path,
    remote: &str,
    dockerfile: Option<&str>,
) -> Result<Context, BuildError> {
    let ctx = empty(tmp_root)?;
    let (url, fragment) = remote.split_once('#').unwrap_or((remote, ""));
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let url = match url.strip_prefix("github.com/") {
        Some(rest) => format!("https://github.com/{rest}"),
        None => url.to_string(),
    };
    let clone = ctx.top.join("clone");
    let mut cmd = std::process::Command::new("git");
    cmd.args(["clone", "--quiet", "--depth", "1", "--recurse-submodules"]);
    if !reference.is_empty() {
        cmd.args(["--branch", reference]);
    }
    cmd.arg("--").arg(&url).arg(&clone);
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o ConnectTimeout=15",
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| BuildError::Invalid(format!("unable to run git to fetch {remote}: {e}")))?;
    let deadline = std::time::Instant::now() + GIT_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BuildError::Invalid(format!(
                "unable to prepare context: git clone of {remote} took longer than {} s",
                GIT_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(BuildError::Invalid(format!(
            "unable to prepare context: unable to 'git clone' to temporary context directory: error fetching: {}: exit status {}",
            err.trim(),
            status.code().unwrap_or(-1)
        )));
    }
    // The directory of the fragment, resolved inside the clone.
    let src = if subdir.is_empty() {
        clone.clone()
    } else {
        let fd = open_in_root(&root_fd(&clone)?, subdir, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| {
                BuildError::Invalid(format!(
                    "unable to prepare context: error setting git context, not a directory: {subdir} ({e})"
                ))
            })?;
        std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))?
    };
    std::fs::remove_dir(&ctx.dir)?;
    std::fs::rename(&src, &ctx.dir)?;
    finish(ctx, dockerfile)
}

/// The context of a build from where `source` says, under `tmp_root`.
pub async fn acquire(
    tmp_root: &Path,
    source: super::Source,
    dockerfile: Option<String>,
) -> Result<Context, BuildError> {
    let tmp = tmp_root.to_path_buf();
    std::fs::create_dir_all(&tmp).map_err(|e| {
        BuildError::Io(std::io::Error::new(
            e.kind(),
            format!(
                "receiving the build context: creating {}: {e}",
                tmp.display()
            ),
        ))
    })?;
    let joined = |e: tokio::task::JoinError| BuildError::Io(std::io::Error::other(e.to_string()));
    match source {
        // Refused before the whole upload was read: the rest is drained
        // (`pump_body`), so the client reads the error.
        super::Source::Body(reader) => {
            tokio::task::spawn_blocking(move || receive(&tmp, reader, dockerfile.as_deref()))
                .await
                .map_err(joined)?
        }
        super::Source::Remote(remote) if is_git_url(&remote) => {
            tokio::task::spawn_blocking(move || from_git(&tmp, &remote, dockerfile.as_deref()))
                .await
                .map_err(joined)?
        }
        super::Source::Remote(url) if url.starts_with("http://") || url.starts_with("https://") => {
            let file = tmp.join(format!("remote-{}", crate::sys::blobs::random_hex(8)));
            super::fetch::to_file(&url, &file, std::time::Duration::from_secs(300))
                .await
                .map_err(|e| {
                    BuildError::Invalid(format!(
                        "unable to prepare context: unable to download remote context {url}: {e}"
                    ))
                })?;
            tokio::task::spawn_blocking(move || {
                let r = (|| {
                    let mut head = Vec::with_capacity(512);
                    std::fs::File::open(&file)?
                        .take(512)
                        .read_to_end(&mut head)?;
                    if looks_like_archive(&head) {
                        receive(&tmp, std::fs::File::open(&file)?, dockerfile.as_deref())
                    } else {
                        let text = std::fs::read(&file)?;
                        from_dockerfile(&tmp, &text, dockerfile.as_deref())
                    }
                })();
                let _ = std::fs::remove_file(&file);
                r
            })
            .await
            .map_err(joined)?
        }
        super::Source::Remote(other) => Err(BuildError::Invalid(format!(
            "unable to prepare context: remote {other:?} is not a git repository or an http(s) URL"
        ))),
    }
}

const GIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Whether `remote` names a git repository (dockerd's `urlutil.IsGitURL`).
pub fn is_git_url(remote: &str) -> bool {
    let http = remote.starts_with("http://") || remote.starts_with("https://");
    let path = remote.split('#').next().unwrap_or(remote);
    remote.starts_with("git://")
        || remote.starts_with("git@")
        || remote.starts_with("github.com/")
        || (http && path.ends_with(".git"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (n, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, n, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn every_compression_and_the_dockerfile() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tar_of(&[("Dockerfile", b"FROM scratch\n"), ("a/b", b"x")]);
        let mut bz = Vec::new();
        std::io::copy(
            &mut bzip2::read::BzEncoder::new(&raw[..], bzip2::Compression::fast()),
            &mut bz,
        )
        .unwrap();
        let mut xz = Vec::new();
        std::io::copy(&mut liblzma::read::XzEncoder::new(&raw[..], 1), &mut xz).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        for input in [raw.clone(), bz, xz, gz] {
            let c = receive(tmp.path(), &input[..], None).unwrap();
            assert_eq!(c.dockerfile, "FROM scratch\n");
            assert_eq!(std::fs::read(c.dir.join("a/b")).unwrap(), b"x");
            let top = c.top.clone();
            drop(c);
            assert!(!top.exists(), "the context goes with the build");
        }
        let e = receive(tmp.path(), &raw[..], Some("nope")).err().unwrap();
        assert_eq!(e.to_string(), "Cannot locate specified Dockerfile: nope");
        let e = receive(tmp.path(), &b"not a tar at all"[..], None)
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("Error processing tar file"),
            "{e}"
        );
    }

    #[test]
    fn a_dockerfile_path_never_leaves_the_context() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("outside"), "FROM evil\n").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "Dockerfile", "../../../outside")
            .unwrap();
        let raw = b.into_inner().unwrap();
        let e = receive(tmp.path(), &raw[..], None).err().unwrap();
        assert!(e.to_string().contains("Cannot locate"), "{e}");
        let e = receive(tmp.path(), &raw[..], Some("../../outside"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("Cannot locate"), "{e}");
    }
}
