//! data-root and exec-root: created root-owned with restrictive modes and
//! repaired at startup if someone loosened them.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use tracing::warn;

use super::StartupError;

pub fn ensure_private_dir(path: &Path, mode: u32) -> Result<(), StartupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| StartupError::io("creating directory", path, e))?;
    let meta = fs::metadata(path).map_err(|e| StartupError::io("inspecting directory", path, e))?;
    if !meta.is_dir() {
        return Err(StartupError::io(
            "not a directory:",
            path,
            std::io::Error::from(std::io::ErrorKind::NotADirectory),
        ));
    }
    let current = meta.permissions().mode() & 0o7777;
    if current != mode {
        warn!(path = %path.display(), "repairing mode {:o} to {:o}", current, mode);
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| StartupError::io("setting mode of", path, e))?;
    }
    use std::os::unix::fs::MetadataExt;
    if (meta.uid() != 0 || meta.gid() != 0) && nix::unistd::geteuid().is_root() {
        warn!(path = %path.display(), "repairing owner to root");
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(0)),
            Some(nix::unistd::Gid::from_raw(0)),
        )
        .map_err(|e| StartupError::io("changing owner of", path, e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_repairs_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b");
        ensure_private_dir(&p, 0o710).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o710
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&p, 0o710).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o710
        );
    }
}
