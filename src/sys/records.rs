//! The file-backed [`RecordStore`]: one directory, atomic writes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_actors::ports::RecordStore;

use super::atomic::write_atomic;

#[derive(Debug, Clone)]
pub struct FsRecordStore {
    root: PathBuf,
}

impl FsRecordStore {
    pub fn new(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(FsRecordStore {
            root: root.to_path_buf(),
        })
    }

    /// Keys are relative paths made by the store itself; refuse anything else.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad record key {key:?}"),
            ));
        }
        Ok(self.root.join(key))
    }
}

impl RecordStore for FsRecordStore {
    fn put(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let p = self.path(key)?;
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        write_atomic(&p, data, 0o600)
    }

    fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        match fs::read_dir(self.path(dir)?) {
            Ok(rd) => Ok(rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(e),
        }
    }
}
