//! vfs: every layer is a full copy of its parent plus its own changes.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::{copy::copy_tree, valid_id, StorageDriver};
use crate::sys::layers::WhiteoutMode;

pub struct Vfs {
    dir: PathBuf,
}

impl Vfs {
    pub fn new(root: &Path) -> io::Result<Vfs> {
        let dir = root.join("dir");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(Vfs { dir })
    }
}

impl StorageDriver for Vfs {
    fn name(&self) -> &'static str {
        "vfs"
    }
    fn status(&self) -> Vec<[String; 2]> {
        vec![]
    }
    fn whiteouts(&self) -> WhiteoutMode {
        WhiteoutMode::Delete
    }
    fn create(&self, id: &str, parent: Option<&str>) -> io::Result<PathBuf> {
        valid_id(id)?;
        let p = self.dir.join(id);
        fs::DirBuilder::new().mode(0o755).create(&p)?;
        if let Some(parent) = parent {
            valid_id(parent)?;
            if let Err(e) = copy_tree(&self.dir.join(parent), &p) {
                let _ = fs::remove_dir_all(&p);
                return Err(e);
            }
        }
        Ok(p)
    }
    fn remove(&self, id: &str) -> io::Result<()> {
        valid_id(id)?;
        match fs::remove_dir_all(self.dir.join(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
    fn list(&self) -> io::Result<BTreeSet<String>> {
        Ok(fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
    fn mount(&self, id: &str) -> io::Result<PathBuf> {
        valid_id(id)?;
        Ok(self.dir.join(id))
    }
    fn mount_rw(&self, id: &str) -> io::Result<PathBuf> {
        // A vfs layer is a full private copy already.
        self.mount(id)
    }
    fn unmount(&self, _id: &str) -> io::Result<()> {
        Ok(())
    }
}
