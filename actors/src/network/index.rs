//! The networks' read model: every record (with its endpoints) as one
//! immutable snapshot. `network ls`/`inspect` and the embedded DNS server
//! read it without a message.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::NetworkRecord;
use super::NetworkError;

#[derive(Debug, Clone, Default)]
pub struct NetworkIndex {
    pub by_id: BTreeMap<String, Arc<NetworkRecord>>,
}

impl NetworkIndex {
    /// Full ID, then exact name, then unique ID prefix (dockerd's order).
    pub fn lookup(&self, s: &str) -> Result<Arc<NetworkRecord>, NetworkError> {
        if s.is_empty() {
            return Err(NetworkError::NotFound(s.into()));
        }
        if let Some(r) = self.by_id.get(s) {
            return Ok(r.clone());
        }
        if let Some(r) = self.by_id.values().find(|r| r.name == s) {
            return Ok(r.clone());
        }
        match crate::view::unique_prefix(&self.by_id, s) {
            Ok(Some(r)) => Ok(r.clone()),
            Err(()) => Err(NetworkError::Invalid(format!(
                "network {s} is ambiguous (more than one network matches)"
            ))),
            Ok(None) => Err(NetworkError::NotFound(s.into())),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<NetworkRecord>> {
        self.by_id.values().find(|r| r.name == name).cloned()
    }

    /// The networks a container has an endpoint on.
    pub fn of_container<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Arc<NetworkRecord>> {
        self.by_id
            .values()
            .filter(move |r| r.endpoints.contains_key(id))
    }
}
