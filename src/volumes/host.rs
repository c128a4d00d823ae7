//! The real [`VolumeHost`]: the local driver.

use std::path::{Path, PathBuf};

use berth_actors::ports::VolumeHost;
use berth_actors::volume::VolumeRecord;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::sys::atomic::write_atomic;

pub struct VolHost {
    /// `<data-root>/volumes`
    pub root: PathBuf,
}

impl VolHost {
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir(name).join("_data")
    }
}

fn mounted(p: &Path) -> bool {
    let t = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = p.to_string_lossy();
    t.lines().any(|l| l.split(' ').nth(4) == Some(p.as_ref()))
}

impl VolumeHost for VolHost {
    fn create(&self, rec: &VolumeRecord) -> Result<(), String> {
        use std::os::unix::fs::DirBuilderExt;
        // A plugin's volume keeps only its record here.
        let dir = if berth_actors::volume::driver::is_plugin(&rec.driver) {
            self.dir(&rec.name)
        } else {
            self.data(&rec.name)
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("creating the volume's directory: {e}"))
    }

    fn mount(&self, rec: &VolumeRecord) -> Result<String, String> {
        let data = self.data(&rec.name);
        if let Some(device) = rec.options.get("device") {
            if !mounted(&data) {
                let fstype = rec
                    .options
                    .get("type")
                    .map(String::as_str)
                    .unwrap_or("none");
                let o = rec.options.get("o").cloned().unwrap_or_default();
                let mut flags = MsFlags::empty();
                let mut data_opts = Vec::new();
                for opt in o.split(',').filter(|x| !x.is_empty()) {
                    match opt {
                        "bind" => flags |= MsFlags::MS_BIND,
                        "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                        "ro" => flags |= MsFlags::MS_RDONLY,
                        "nosuid" => flags |= MsFlags::MS_NOSUID,
                        "nodev" => flags |= MsFlags::MS_NODEV,
                        "noexec" => flags |= MsFlags::MS_NOEXEC,
                        other => data_opts.push(other),
                    }
                }
                let fstype = (fstype != "none").then_some(fstype);
                let d = data_opts.join(",");
                mount(
                    Some(device.as_str()),
                    &data,
                    fstype,
                    flags,
                    (!d.is_empty()).then_some(d.as_str()),
                )
                .map_err(|e| format!("error while mounting volume '{}': {e}", rec.name))?;
            }
        }
        Ok(data.display().to_string())
    }

    fn remove(&self, rec: &VolumeRecord) -> Result<(), String> {
        let data = self.data(&rec.name);
        if mounted(&data) {
            let _ = umount2(&data, MntFlags::MNT_DETACH);
        }
        // Renamed away first: the record and the data go at once (the
        // next berthd finishes a removal it finds renamed).
        let gone = self.root.join(format!(
            "{}{}-{}",
            super::REMOVING,
            rec.name,
            crate::ids::new_id()
        ));
        match std::fs::rename(self.dir(&rec.name), &gone) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("remove {}: {e}", rec.name)),
        }
        berth_actors::failpoint::hit("volume-rm:renamed");
        std::fs::remove_dir_all(&gone).map_err(|e| format!("remove {}: {e}", rec.name))
    }

    fn unmount(&self, rec: &VolumeRecord) {
        let data = self.data(&rec.name);
        if rec.options.contains_key("device") && mounted(&data) {
            let _ = umount2(&data, MntFlags::MNT_DETACH);
        }
    }

    fn save(&self, rec: &VolumeRecord) -> std::io::Result<()> {
        let b = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        write_atomic(&self.dir(&rec.name).join("volume.json"), &b, 0o600)
    }
}
