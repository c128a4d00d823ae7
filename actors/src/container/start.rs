//! start: create the container through its shim, let attachers connect,
//! then run it.

use std::time::Instant;

use ractor::ActorRef;
use tracing::warn;

use super::actor::{now, ContainerState};
use super::state::Status;
use super::{ContainerError, ContainerMsg};
use crate::protocol::shim::Request;

/// dockerd's exit codes for a command that cannot be run.
pub(super) fn exit_code_for(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        128
    }
}

impl ContainerState {
    pub(super) async fn start(
        &mut self,
        myself: &ActorRef<ContainerMsg>,
    ) -> Result<(), ContainerError> {
        let r = self.try_start(myself).await;
        if r.is_err() && matches!(self.status(), Status::Created | Status::Exited) {
            // Attached clients end; an auto-remove container goes (dockerd).
            drop(super::attach::take_waiting(&self.rec.id));
            if self.rec.auto_remove() {
                let _ = self.destroy(myself).await;
            }
        }
        r
    }

    async fn try_start(&mut self, myself: &ActorRef<ContainerMsg>) -> Result<(), ContainerError> {
        match self.status() {
            Status::Running | Status::Paused => return Ok(()),
            s if !s.can_start() => {
                return Err(ContainerError::Conflict(format!(
                    "cannot start container {}: it is {}",
                    self.rec.id,
                    s.as_str()
                )))
            }
            _ => {}
        }
        self.join_donors()?;
        if let Err(e) = self.network_up().await {
            self.network_down().await;
            self.failed_start(e.to_string());
            return Err(e);
        }
        if let Err(e) = self.mount_volumes().await {
            self.network_down().await;
            self.failed_start(e.to_string());
            return Err(e);
        }
        crate::failpoint::hit("container-start:network");
        let started = match self.host.create(&self.rec).await {
            Ok(s) => s,
            Err(e) => {
                self.unmount_volumes();
                self.network_down().await;
                return Err(self.failed_start(e));
            }
        };
        crate::failpoint::hit("container-start:created");
        self.gen += 1;
        // Attachers connect to the shim before the process runs.
        self.connect_attachers().await;
        if let Err(e) = self.host.call(&self.rec.id, Request::Start).await {
            let _ = self
                .host
                .call(
                    &self.rec.id,
                    Request::Kill {
                        signal: 9,
                        all: true,
                    },
                )
                .await;
            if let Ok(r) = self.host.call(&self.rec.id, Request::Wait).await {
                let _ = r;
            }
            let _ = self.host.call(&self.rec.id, Request::AckExit).await;
            self.host.release(&self.rec);
            self.unmount_volumes();
            self.network_down().await;
            return Err(self.failed_start(e.to_string()));
        }
        crate::failpoint::hit("container-start:started");
        let s = &mut self.rec.state;
        s.status = Status::Running;
        s.pid = started.pid;
        s.shim_pid = started.shim_pid;
        s.started_at = now();
        s.error.clear();
        s.manually_stopped = false;
        s.exit_code = 0;
        s.oom_killed = false;
        self.rec.has_been_started = true;
        self.started = Instant::now();
        self.reset_health();
        self.save();
        crate::failpoint::hit("container-start:saved");
        self.event("start", &[]);
        self.watch_exit(myself);
        self.watch_health(myself);
        Ok(())
    }

    /// The containers whose IPC or PID namespace this one joins
    /// (`container:ID` modes): running now, and for IPC shareable.
    fn join_donors(&mut self) -> Result<(), ContainerError> {
        self.rec.state.ipc_donor_pid = 0;
        self.rec.state.pid_donor_pid = 0;
        let index = self.index.borrow().clone();
        let running = |id: &str| {
            index
                .lookup(id)
                .ok()
                .filter(|d| d.state.status.is_live() && d.state.pid > 0)
        };
        let hc = &self.rec.host_config;
        if let Some(id) = hc.ipc_mode.strip_prefix("container:") {
            let why =
                |m: &str| ContainerError::System(format!("can't join IPC of container {id}: {m}"));
            let d = running(id).ok_or_else(|| why(&format!("container {id} is not running")))?;
            if d.host_config.ipc_mode != "shareable" {
                return Err(why(
                    "non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                ));
            }
            self.rec.state.ipc_donor_pid = d.state.pid;
        }
        if let Some(id) = self.rec.host_config.pid_mode.strip_prefix("container:") {
            let d = running(id)
                .ok_or_else(|| ContainerError::System(format!("container {id} is not running")))?;
            self.rec.state.pid_donor_pid = d.state.pid;
        }
        Ok(())
    }

    fn failed_start(&mut self, e: String) -> ContainerError {
        warn!(id = %self.rec.id, "start failed: {e}");
        let code = exit_code_for(&e);
        self.rec.state.exit_code = code;
        self.rec.state.error = e.clone();
        if self.status() == Status::Restarting {
            self.rec.state.status = Status::Exited;
        }
        self.save();
        // dockerd starts the logger before the task: its error is its own.
        let msg = if e.starts_with("failed to initialize logging driver:") {
            e
        } else {
            format!("failed to create task for container: {e}: unknown")
        };
        if code == 128 {
            ContainerError::System(msg)
        } else {
            ContainerError::Runtime(msg)
        }
    }
}
