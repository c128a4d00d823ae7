//! attach: where a client finds the container's output.

use tokio::sync::oneshot;

use super::actor::ContainerState;
use super::state::Status;
use super::{AttachTicket, ContainerError};

impl ContainerState {
    pub(super) fn attach(&mut self) -> Result<AttachTicket, ContainerError> {
        match self.status() {
            Status::Running | Status::Paused => Ok(AttachTicket::Now),
            Status::Created | Status::Exited | Status::Restarting => {
                // dockerd lets clients attach to a stopped container: they
                // get its output from the next start.
                let (tx, rx) = oneshot::channel();
                self.attachers.retain(|a| !a.is_closed());
                self.attachers.push(tx);
                Ok(AttachTicket::AtStart(rx))
            }
            s => Err(ContainerError::Conflict(format!(
                "You cannot attach to a container that is {}",
                s.as_str()
            ))),
        }
    }
}
