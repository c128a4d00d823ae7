//! Atomic file writes: temp file in the same directory, fsync, rename, fsync
//! the directory (`replace`: the same without the fsyncs, for facts rewritten
//! often). A reader sees the old content or the new, never a part.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    write_via_temp(path, data, mode, true)
}

/// Replace `path` whole for readers (temp, rename) without waiting for the
/// disk: for facts rewritten often whose last second may be lost in a
/// crash (the shims' log counters).
pub fn replace(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    write_via_temp(path, data, mode, false)
}

fn write_via_temp(path: &Path, data: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Unique per write: two tasks writing one file never share a temp.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `name` is a temp file of [`write_atomic`] / [`replace`].
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(".tmp-").is_some_and(|(_, rest)| {
            !rest.is_empty() && rest.split('-').all(|p| p.parse::<u64>().is_ok())
        })
}

/// Remove the temp files a process killed mid-write left in `dir` (not
/// below it).
pub fn sweep_temps(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if is_temp(&e.file_name().to_string_lossy()) && e.file_type().is_ok_and(|t| t.is_file()) {
            tracing::info!(file = %e.path().display(), "removing a temp file a killed write left");
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rec.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn temps_are_recognised_and_swept() {
        assert!(is_temp(".config.v2.json.tmp-123-4"));
        assert!(is_temp(".view.json.tmp-10460"));
        assert!(!is_temp("config.v2.json"));
        assert!(!is_temp(".x.tmp-"));
        assert!(!is_temp(".x.tmp-12a"));
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".rec.json.tmp-1-2"), b"half").unwrap();
        std::fs::write(d.path().join("rec.json"), b"whole").unwrap();
        sweep_temps(d.path());
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("rec.json")]);
    }
}
