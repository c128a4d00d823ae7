//! attach: where a client finds the container's output.

use tokio::sync::oneshot;

use super::actor::ContainerState;
use super::state::Status;
use super::{AttachTicket, ContainerError};

impl ContainerState {
    pub(super) fn attach(&mut self) -> Result<AttachTicket, ContainerError> {
        match self.status() {
            Status::Running => Ok(AttachTicket::Now),
            // dockerd's conflicts.
            Status::Paused => Err(ContainerError::Conflict(format!(
                "container {} is paused, unpause the container before attach",
                self.rec.id
            ))),
            Status::Restarting => Err(ContainerError::Conflict(
                "cannot attach to a restarting container, wait until it is running".into(),
            )),
            Status::Created | Status::Exited => {
                // Attaching to a stopped container (`docker start -a`, the
                // CLI's `run`) gets its output from the next start.
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
