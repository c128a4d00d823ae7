//! An in-memory [`RecordStore`] for actor tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::ports::RecordStore;

#[derive(Default)]
pub struct MemRecords {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemRecords {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RecordStore for MemRecords {
    fn put(&self, key: &str, data: &[u8]) -> std::io::Result<()> {
        self.lock().insert(key.to_string(), data.to_vec());
        Ok(())
    }

    fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.lock().get(key).cloned())
    }

    fn delete(&self, key: &str) -> std::io::Result<()> {
        self.lock().remove(key);
        Ok(())
    }

    fn list(&self, dir: &str) -> std::io::Result<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Ok(self
            .lock()
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }
}
