//! remove: delete the container, killing it first with force.

use ractor::ActorRef;

use super::actor::ContainerState;
use super::state::Status;
use super::supervisor::{Containers, SupervisorMsg};
use super::wait::WaitOutcome;
use super::{ContainerError, ContainerMsg, Reply};

impl ContainerState {
    pub(super) async fn remove(
        &mut self,
        myself: &ActorRef<ContainerMsg>,
        force: bool,
        reply: Reply<()>,
    ) {
        let s = self.status();
        if s == Status::Removing {
            let _ = reply.send(Err(ContainerError::Conflict(format!(
                "removal of container {} is already in progress",
                self.rec.id
            ))));
            return;
        }
        if s.is_live() || s == Status::Restarting {
            if !force {
                let _ = reply.send(Err(ContainerError::Conflict(format!(
                    "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
                    s.as_str(),
                    self.rec.id
                ))));
                return;
            }
            if s == Status::Restarting {
                self.gen += 1;
            } else {
                self.rec.state.manually_stopped = true;
                self.remove_after_exit = Some(reply);
                self.rec.state.status = Status::Removing;
                self.save();
                crate::failpoint::hit("container-rm:removing");
                if self.signal(9, true).await.is_err() {
                    // The shim may be gone already: its exit settles it.
                }
                return;
            }
        }
        let r = self.destroy(myself).await;
        let _ = reply.send(r);
    }

    /// Remove the container's storage and record, answer the waiters, stop.
    pub(super) async fn destroy(
        &mut self,
        myself: &ActorRef<ContainerMsg>,
    ) -> Result<(), ContainerError> {
        self.rec.state.status = Status::Removing;
        self.publish();
        // Endpoints a start or stop that did not finish may have left.
        self.network_down().await;
        // `rm -v` and `--rm` take the anonymous volumes along.
        let volumes = self.remove_volumes || self.rec.auto_remove();
        crate::failpoint::hit("container-rm:released");
        if let Err(e) = self.host.destroy(&self.rec).await {
            self.rec.state.status = Status::Dead;
            self.rec.state.error = e.clone();
            self.save();
            return Err(ContainerError::System(format!(
                "unable to remove filesystem for {}: {e}",
                self.rec.id
            )));
        }
        crate::failpoint::hit("container-rm:removed");
        self.release_volumes(volumes).await;
        drop(super::attach::take_waiting(&self.rec.id));
        self.unpublish();
        self.event("destroy", &[]);
        let outcome = WaitOutcome::exited(self.rec.state.exit_code);
        self.answer_waiters(|_| true, &outcome);
        if let Some(sup) = Containers::supervisor() {
            let _ = sup.cast(SupervisorMsg::Forget(self.rec.id.clone()));
        }
        myself.stop(None);
        Ok(())
    }
}
