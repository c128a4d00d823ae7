//! update: change the restart policy and resource limits.

use super::actor::ContainerState;
use super::config::UpdateConfig;
use super::restart_policy;
use super::ContainerError;

impl ContainerState {
    pub(super) async fn update(
        &mut self,
        patch: UpdateConfig,
    ) -> Result<Vec<String>, ContainerError> {
        if let Some(p) = &patch.restart_policy {
            let name = p.name.as_str();
            restart_policy::validate(name, p.maximum_retry_count)
                .map_err(ContainerError::Invalid)?;
            if self.rec.auto_remove() && !matches!(name, "" | "no") {
                return Err(ContainerError::Invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
        }
        let mut hc = self.rec.host_config.clone();
        // Zero values leave a setting as it is (the CLI sends them all).
        hc.resources.apply_update(&patch.resources);
        if let Some(p) = patch.restart_policy.filter(|p| !p.name.is_empty()) {
            hc.restart_policy = p;
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
