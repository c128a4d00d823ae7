//! Content-addressed blobs under `<data-root>/image/blobs/sha256/<hex>`,
//! written through a temp file that is hashed, fsynced and renamed, so a
//! blob's name always matches its content.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

/// A blob being written; [`BlobWriter::commit`] names it by its digest.
pub struct BlobWriter {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    dir: PathBuf,
    done: bool,
}

impl BlobStore {
    pub fn new(image_root: &Path) -> io::Result<BlobStore> {
        let dir = image_root.join("blobs/sha256");
        let tmp = image_root.join("tmp");
        fs::create_dir_all(&dir)?;
        // Leftovers of writes interrupted by a crash.
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        Ok(BlobStore { dir, tmp })
    }

    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| self.dir.join(hex))
    }

    /// Errors name the blob and its path (they reach clients).
    pub fn open(&self, digest: &str) -> io::Result<File> {
        let p = self.path(digest).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("opening blob {digest:?}: bad digest"),
            )
        })?;
        File::open(&p).map_err(|e| at(e, "opening blob", digest, &p))
    }

    pub fn writer(&self) -> io::Result<BlobWriter> {
        let path = self.tmp.join(format!("ingest-{}", random_hex(16)));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| at(e, "creating a blob", "", &path))?;
        Ok(BlobWriter {
            file,
            path,
            hasher: Sha256::new(),
            size: 0,
            dir: self.dir.clone(),
            done: false,
        })
    }

    pub fn remove(&self, digest: &str) {
        if let Some(p) = self.path(digest) {
            let _ = fs::remove_file(p);
        }
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .write(buf)
            .map_err(|e| at(e, "writing a blob", "", &self.path))?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// fsync and rename to its digest; returns (digest, size).
    pub fn commit(mut self) -> io::Result<(String, u64)> {
        self.file
            .sync_all()
            .map_err(|e| at(e, "syncing a blob", "", &self.path))?;
        let hex = berth_actors::image::hex(&std::mem::take(&mut self.hasher).finalize());
        let to = self.dir.join(&hex);
        fs::rename(&self.path, &to).map_err(|e| at(e, "storing blob", &hex, &to))?;
        self.done = true;
        Ok((format!("sha256:{hex}"), self.size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub use crate::ids::random_hex;

/// An I/O error that names the operation, the blob and its path, keeping
/// its kind (a full disk stays `StorageFull`).
fn at(e: io::Error, op: &str, blob: &str, path: &Path) -> io::Error {
    let what = if blob.is_empty() {
        String::new()
    } else {
        format!(" {blob}")
    };
    io::Error::new(e.kind(), format!("{op}{what} ({}): {e}", path.display()))
}
