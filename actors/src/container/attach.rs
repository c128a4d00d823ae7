//! attach, exec start, resize: the decisions about a container's stdio;
//! the stdio itself (a connection to the shim) is handed to the caller.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use tokio::sync::oneshot;

use super::actor::ContainerState;
use super::state::Status;
use super::stdio::Stdio;
use super::{AttachStreams, AttachTicket, ContainerError};
use crate::exec::ExecRecord;
use crate::protocol::shim::Request;

type Waiting = (
    AttachStreams,
    oneshot::Sender<Result<Stdio, ContainerError>>,
);

/// Attaches waiting for their container's next start, by container ID.
/// Kept outside the actor (as the shim keeps the exit): an actor killed
/// between a client's attach and its start leaves them to its next
/// incarnation, which connects them before the process runs.
static WAITING: LazyLock<Mutex<HashMap<String, Vec<Waiting>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn waiting() -> std::sync::MutexGuard<'static, HashMap<String, Vec<Waiting>>> {
    WAITING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The attaches waiting for `id`'s start, taken (closed ones dropped).
pub(super) fn take_waiting(id: &str) -> Vec<Waiting> {
    let mut w = waiting().remove(id).unwrap_or_default();
    w.retain(|(_, tx)| !tx.is_closed());
    w
}

fn not_running(id: &str) -> ContainerError {
    ContainerError::Conflict(format!("Container {id} is not running"))
}

impl ContainerState {
    pub(super) async fn attach(
        &mut self,
        streams: AttachStreams,
    ) -> Result<AttachTicket, ContainerError> {
        match self.status() {
            Status::Running => Ok(AttachTicket::Now(self.open_attach(streams).await?)),
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
                let mut w = waiting();
                let list = w.entry(self.rec.id.clone()).or_default();
                list.retain(|(_, a)| !a.is_closed());
                list.push((streams, tx));
                Ok(AttachTicket::AtStart(rx))
            }
            s => Err(ContainerError::Conflict(format!(
                "You cannot attach to a container that is {}",
                s.as_str()
            ))),
        }
    }

    /// Connect an attach to the shim.
    pub(super) async fn open_attach(&self, s: AttachStreams) -> Result<Stdio, ContainerError> {
        self.host
            .open_stdio(
                &self.rec.id,
                Request::Attach {
                    stdin: s.stdin,
                    stdout: s.stdout,
                    stderr: s.stderr,
                },
            )
            .await
            .map_err(|e| ContainerError::System(e.to_string()))
    }

    /// Connect every waiting attacher before the process runs.
    pub(super) async fn connect_attachers(&mut self) {
        for (streams, tx) in take_waiting(&self.rec.id) {
            let _ = tx.send(self.open_attach(streams).await);
        }
    }

    /// The exec's start, decided now (the container runs, the process is
    /// built) and made by the returned future: awaited on a task of its
    /// own, so an actor killed meanwhile neither loses the answer nor
    /// holds the requests behind it.
    pub(super) fn exec_start(
        &mut self,
        exec: &ExecRecord,
        stdin: bool,
    ) -> Result<crate::ports::BoxFuture<Result<Stdio, ContainerError>>, ContainerError> {
        if self.status() != Status::Running {
            return Err(not_running(&self.rec.id));
        }
        let process = self.host.exec_process(&self.rec, exec)?;
        let open = self.host.open_stdio(
            &self.rec.id,
            Request::Exec {
                exec_id: exec.id.clone(),
                process,
                tty: exec.tty,
                stdin,
            },
        );
        Ok(Box::pin(async move {
            open.await.map_err(|e| {
                // dockerd's words; a command that cannot be found is the
                // client's error.
                let msg = format!("OCI runtime exec failed: {e}: unknown");
                if super::start::exit_code_for(&msg) == 127 {
                    ContainerError::Runtime(msg)
                } else {
                    ContainerError::System(msg)
                }
            })
        }))
    }

    pub(super) async fn resize(
        &mut self,
        exec_id: Option<String>,
        width: u16,
        height: u16,
    ) -> Result<(), ContainerError> {
        if !self.status().is_live() {
            return Err(not_running(&self.rec.id));
        }
        if exec_id.is_none() && !self.rec.tty() {
            // No terminal to size: dockerd accepts it and does nothing.
            return Ok(());
        }
        self.host
            .call(
                &self.rec.id,
                Request::Resize {
                    exec_id,
                    width,
                    height,
                },
            )
            .await
            .map(|_| ())
            .map_err(|e| ContainerError::System(e.to_string()))
    }
}
