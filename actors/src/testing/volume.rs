//! A fake [`VolumeHost`]: records what the volume actors asked of the host.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::ports::VolumeHost;
use crate::volume::VolumeRecord;

#[derive(Default)]
pub struct FakeVolState {
    /// Volumes whose directory exists, by name.
    pub created: Vec<String>,
    /// `mount` and `unmount` calls, in order: ("mount"|"unmount", name).
    pub calls: Vec<(&'static str, String)>,
    pub removed: Vec<String>,
    /// Saved records.
    pub saved: BTreeMap<String, VolumeRecord>,
    /// Saves fail (a full disk) while set.
    pub fail_save: bool,
}

#[derive(Clone, Default)]
pub struct FakeVolumeHost(pub Arc<Mutex<FakeVolState>>);

impl FakeVolumeHost {
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeVolState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times `name` was unmounted.
    pub fn unmounts(&self, name: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|(c, n)| *c == "unmount" && n == name)
            .count()
    }
}

impl VolumeHost for FakeVolumeHost {
    fn create(&self, rec: &VolumeRecord) -> Result<(), String> {
        self.state().created.push(rec.name.clone());
        Ok(())
    }
    fn mount(&self, rec: &VolumeRecord) -> Result<String, String> {
        self.state().calls.push(("mount", rec.name.clone()));
        Ok(rec.mountpoint.clone())
    }
    fn remove(&self, rec: &VolumeRecord) -> Result<(), String> {
        self.state().removed.push(rec.name.clone());
        Ok(())
    }
    fn unmount(&self, rec: &VolumeRecord) {
        self.state().calls.push(("unmount", rec.name.clone()));
    }
    fn save(&self, rec: &VolumeRecord) -> std::io::Result<()> {
        if self.state().fail_save {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.state().saved.insert(rec.name.clone(), rec.clone());
        Ok(())
    }
}
