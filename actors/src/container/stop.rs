//! stop and restart: the stop signal, then SIGKILL after the timeout.

use std::time::Duration;

use ractor::ActorRef;

use super::actor::ContainerState;
use super::kill::parse_signal;
use super::state::Status;
use super::{ContainerError, ContainerMsg, Reply};

impl ContainerState {
    pub(super) async fn stop(
        &mut self,
        myself: &ActorRef<ContainerMsg>,
        signal: Option<String>,
        timeout: Option<i64>,
        reply: Reply<()>,
    ) {
        match self.status() {
            Status::Restarting => {
                // A pending restart is cancelled.
                self.gen += 1;
                self.rec.state.status = Status::Exited;
                self.rec.state.manually_stopped = true;
                self.save();
                let _ = reply.send(Ok(()));
            }
            s if s.is_live() => {
                let sig = match parse_signal(&signal.unwrap_or_else(|| self.rec.stop_signal())) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let timeout = timeout.unwrap_or_else(|| self.rec.stop_timeout());
                self.rec.state.manually_stopped = true;
                self.save();
                self.stopping.push(reply);
                let _ = self.signal(sig, false).await;
                if timeout >= 0 {
                    let gen = self.gen;
                    myself.send_after(Duration::from_secs(timeout as u64), move || {
                        ContainerMsg::StopTimeout { gen }
                    });
                }
            }
            _ => {
                let _ = reply.send(Err(ContainerError::NotModified("stopped")));
            }
        }
    }

    pub(super) async fn restart(
        &mut self,
        myself: &ActorRef<ContainerMsg>,
        signal: Option<String>,
        timeout: Option<i64>,
        reply: Reply<()>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stop(myself, signal, timeout, tx.into()).await;
        let me = myself.clone();
        tokio::spawn(async move {
            match rx.await {
                Ok(Ok(())) | Ok(Err(ContainerError::NotModified(_))) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let _ = me.cast(ContainerMsg::Start(tx.into()));
                    let r = match rx.await {
                        // Running again already: the restart is done.
                        Ok(Err(ContainerError::NotModified(_))) => Ok(()),
                        Ok(r) => r,
                        // The actor died with the start: the reply is
                        // dropped unanswered so the restart is asked again
                        // of its next incarnation.
                        Err(_) => return drop(reply),
                    };
                    let _ = reply.send(r);
                }
                Ok(Err(e)) => {
                    let _ = reply.send(Err(e));
                }
                // The same for the stop.
                Err(_) => drop(reply),
            }
        });
    }
}
