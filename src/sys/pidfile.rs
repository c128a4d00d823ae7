//! The pid file: refuse to start while a live berthd holds it.

use std::fs;
use std::path::{Path, PathBuf};

use super::atomic::write_atomic;
use super::StartupError;

/// Held for the daemon's life; removed on drop if it still names us.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// A process is alive if /proc has it and it is not a zombie (PID 1 here
/// reaps orphans late, so a zombie in a pid file counts as dead).
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

impl PidFile {
    pub fn acquire(path: &Path) -> Result<PidFile, StartupError> {
        if let Ok(text) = fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if pid != std::process::id() as i32 && process_alive(pid) {
                    return Err(StartupError::AlreadyRunning {
                        path: path.display().to_string(),
                        pid,
                    });
                }
            }
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| StartupError::io("creating directory", parent, e))?;
        }
        write_atomic(path, format!("{}", std::process::id()).as_bytes(), 0o644)
            .map_err(|e| StartupError::io("writing pid file", path, e))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(text) = fs::read_to_string(&self.path) {
            if text.trim() == std::process::id().to_string() {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_live_holder_and_replaces_a_dead_one() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.pid");
        // PID 1 is always alive.
        fs::write(&p, "1").unwrap();
        assert!(matches!(
            PidFile::acquire(&p),
            Err(StartupError::AlreadyRunning { pid: 1, .. })
        ));
        // A pid that cannot exist is stale.
        fs::write(&p, "999999999").unwrap();
        let held = PidFile::acquire(&p).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            std::process::id().to_string()
        );
        drop(held);
        assert!(!p.exists());
    }
}
