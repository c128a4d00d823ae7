//! update: change the restart policy and resource limits.

use serde_json::Value;

use super::actor::ContainerState;
use super::restart_policy;
use super::ContainerError;

/// HostConfig fields `docker update` may change.
pub const UPDATABLE: &[&str] = &[
    "RestartPolicy",
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
    "KernelMemory",
];

impl ContainerState {
    pub(super) async fn update(&mut self, patch: Value) -> Result<Vec<String>, ContainerError> {
        let Some(obj) = patch.as_object() else {
            return Err(ContainerError::Invalid(
                "update: a JSON object is required".into(),
            ));
        };
        if let Some(p) = obj.get("RestartPolicy") {
            let name = p["Name"].as_str().unwrap_or("");
            let max = p["MaximumRetryCount"].as_i64().unwrap_or(0);
            restart_policy::validate(name, max).map_err(ContainerError::Invalid)?;
            if self.rec.auto_remove() && !matches!(name, "" | "no") {
                return Err(ContainerError::Invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
        }
        let mut hc = self.rec.host_config.clone();
        for (k, v) in obj {
            if !UPDATABLE.contains(&k.as_str()) {
                continue;
            }
            // Zero values leave a setting as it is (the CLI sends them all).
            let zero = v.is_null() || v == &Value::from(0) || v == &Value::from("");
            if zero {
                continue;
            }
            if k == "RestartPolicy" && v["Name"].as_str().unwrap_or("").is_empty() {
                continue;
            }
            hc[k] = v.clone();
        }
        // The runtime first (dockerd): a refused update changes nothing.
        if self.status().is_live() {
            let mut next = self.rec.clone();
            next.host_config = hc.clone();
            self.host.apply_resources(&next).await.map_err(|e| {
                ContainerError::System(format!("Cannot update container {}: {e}", self.rec.id))
            })?;
        }
        self.rec.host_config = hc;
        self.save();
        self.event("update", &[]);
        Ok(Vec::new())
    }
}
