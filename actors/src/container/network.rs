//! network connect / disconnect: the container's configured networks
//! change; a running container joins or leaves now.

use super::actor::ContainerState;
use super::model::NetworkAttachment;
use super::ContainerError;

impl ContainerState {
    pub(super) async fn connect(
        &mut self,
        network: String,
        attachment: NetworkAttachment,
    ) -> Result<(), ContainerError> {
        if self.rec.networks.contains_key(&network) {
            return Err(ContainerError::Forbidden(format!(
                "endpoint with name {} already exists in network {network}",
                self.rec.short_name()
            )));
        }
        let mode = self.rec.host_config["NetworkMode"].as_str().unwrap_or("");
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(ContainerError::Forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
            )));
        }
        self.rec.networks.insert(network.clone(), attachment);
        if self.status().is_live() && !self.rec.state.sandbox.is_empty() {
            match self.host.network_connect(&self.rec, &network).await {
                Ok(ep) => {
                    self.rec.state.endpoints.insert(network.clone(), ep);
                }
                Err(e) => {
                    self.rec.networks.remove(&network);
                    return Err(e);
                }
            }
        }
        self.save();
        Ok(())
    }

    pub(super) async fn disconnect(&mut self, network: String) -> Result<(), ContainerError> {
        if self.rec.networks.remove(&network).is_none() {
            return Err(ContainerError::Forbidden(format!(
                "container {} is not connected to network {network}",
                self.rec.id
            )));
        }
        if self.rec.state.endpoints.contains_key(&network) {
            let r = self.host.network_disconnect(&self.rec, &network).await;
            self.rec.state.endpoints.remove(&network);
            if let Err(e) = r {
                tracing::warn!(id = %self.rec.id, "disconnecting from {network}: {e}");
            }
        }
        self.save();
        Ok(())
    }

    /// The container is gone: leave its networks, drop its namespace.
    pub(super) async fn network_down(&mut self) {
        if self.rec.state.sandbox.is_empty() && self.rec.state.endpoints.is_empty() {
            return;
        }
        self.host.network_down(&self.rec).await;
        self.rec.state.sandbox.clear();
        self.rec.state.endpoints.clear();
    }
}
