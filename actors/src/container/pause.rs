//! pause and unpause: the runtime's freezer.

use super::actor::ContainerState;
use super::state::Status;
use super::ContainerError;
use crate::protocol::shim::Request;

impl ContainerState {
    pub(super) async fn pause(&mut self, pause: bool) -> Result<(), ContainerError> {
        let (ok, req, next, action) = if pause {
            (
                self.status().can_pause(),
                Request::Pause,
                Status::Paused,
                "pause",
            )
        } else {
            (
                self.status().can_unpause(),
                Request::Resume,
                Status::Running,
                "unpause",
            )
        };
        if !ok {
            return Err(ContainerError::Conflict(if pause {
                format!("Container {} is not running", self.rec.id)
            } else {
                format!("Container {} is not paused", self.rec.id)
            }));
        }
        self.host
            .call(&self.rec.id, req)
            .await
            .map_err(|e| ContainerError::System(e.to_string()))?;
        self.rec.state.status = next;
        self.save();
        self.event(action, &[]);
        Ok(())
    }
}
