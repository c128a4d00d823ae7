//! The containers' read model: every record and the name table, published
//! as one immutable snapshot. `ps`, `inspect` and name lookups read it
//! without a message.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::model::ContainerRecord;
use super::ContainerError;

#[derive(Debug, Clone, Default)]
pub struct ContainerIndex {
    pub by_id: BTreeMap<String, Arc<ContainerRecord>>,
    /// Short name to ID.
    pub names: BTreeMap<String, String>,
    /// The exit codes of the last containers removed (newest last), for a
    /// `wait` whose container was removed while it asked no actor.
    pub removed: VecDeque<(String, i32)>,
}

/// Removed containers whose exit code the index keeps.
const REMOVED_KEPT: usize = 1024;

impl ContainerIndex {
    /// Record that `id` was removed, with its last exit code.
    pub fn note_removed(&mut self, id: &str, exit_code: i32) {
        if self.removed.len() >= REMOVED_KEPT {
            self.removed.pop_front();
        }
        self.removed.push_back((id.to_string(), exit_code));
    }

    /// The exit code of `id` if it was removed lately.
    pub fn removed_exit(&self, id: &str) -> Option<i32> {
        self.removed
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, c)| *c)
    }
}

impl ContainerIndex {
    /// Full ID, then exact name, then unique ID prefix (dockerd's order).
    pub fn lookup(&self, s: &str) -> Result<Arc<ContainerRecord>, ContainerError> {
        if s.is_empty() {
            return Err(ContainerError::NotFound(s.into()));
        }
        if let Some(r) = self.by_id.get(s) {
            return Ok(r.clone());
        }
        let name = s.trim_start_matches('/');
        if let Some(r) = self.names.get(name).and_then(|id| self.by_id.get(id)) {
            return Ok(r.clone());
        }
        match crate::view::unique_prefix(&self.by_id, s) {
            Ok(Some(r)) => Ok(r.clone()),
            Err(()) => Err(ContainerError::Invalid(format!(
                "multiple IDs found with provided prefix: {s}"
            ))),
            Ok(None) => Err(ContainerError::NotFound(s.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> Arc<ContainerRecord> {
        let v = serde_json::json!({
            "version": 1, "id": id, "name": format!("/{name}"), "created": "", "image": "",
            "image_name": "", "config": {}, "host_config": {}, "path": "", "args": [],
            "state": {"status": "created"}, "driver": "vfs", "layer": id, "log_path": "", "runtime": "runc"
        });
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn lookup_order() {
        let mut ix = ContainerIndex::default();
        for (id, n) in [("abc123", "web"), ("abd456", "abc123x"), ("fff", "abc")] {
            ix.by_id.insert(id.into(), rec(id, n));
            ix.names.insert(n.into(), id.into());
        }
        assert_eq!(ix.lookup("abc123").unwrap().id, "abc123");
        assert_eq!(ix.lookup("web").unwrap().id, "abc123");
        assert_eq!(ix.lookup("/web").unwrap().id, "abc123");
        // An exact name wins over an ID prefix.
        assert_eq!(ix.lookup("abc").unwrap().id, "fff");
        assert_eq!(ix.lookup("abd").unwrap().id, "abd456");
        assert!(matches!(ix.lookup("ab"), Err(ContainerError::Invalid(_))));
        assert!(matches!(ix.lookup("zz"), Err(ContainerError::NotFound(_))));
        assert!(matches!(ix.lookup(""), Err(ContainerError::NotFound(_))));
    }
}
