//! wait: answered when the condition holds.

use std::time::{Duration, Instant};

use ractor::RpcReplyPort;

use super::actor::ContainerState;
use super::state::Status;
use super::{ContainerMsg, Containers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition, String> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            c => Err(format!("invalid condition: \"{c}\"")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    pub status_code: i64,
    pub error: Option<String>,
}

impl WaitOutcome {
    pub fn exited(code: i32) -> WaitOutcome {
        WaitOutcome {
            status_code: code as i64,
            error: None,
        }
    }
}

impl ContainerState {
    pub(super) fn wait(&mut self, c: WaitCondition, reply: RpcReplyPort<WaitOutcome>) {
        let not_running = matches!(
            self.status(),
            Status::Created | Status::Exited | Status::Dead
        );
        if c == WaitCondition::NotRunning && not_running {
            let _ = reply.send(WaitOutcome::exited(self.rec.state.exit_code));
            return;
        }
        self.waiters.push((c, reply));
    }
}

/// How long a wait looks for its container's actor (being rebuilt)
/// before it gives up.
const NO_ACTOR_LIMIT: Duration = Duration::from_secs(10);

impl Containers {
    /// `POST /containers/{id}/wait` as a client sees it: the condition is
    /// the ContainerActor's to decide, and a wait outlives the actor. When
    /// the actor dies before answering (killed, rebuilt), the wait asks its
    /// next incarnation; the shim kept the exit, so the answer is the
    /// container's, not the actor's. A `next-exit` that finds the container
    /// stopped by then answers that exit (it happened while the actor was
    /// down). Without any actor for 10 s, the wait ends with an error.
    pub async fn wait(&self, id: &str, condition: WaitCondition) -> WaitOutcome {
        let mut condition = condition;
        let mut since = Instant::now();
        // The exit code last seen in the read model (a container removed
        // meanwhile answers with it).
        let mut last = 0;
        loop {
            let rec = self.snapshot().by_id.get(id).cloned();
            if let Some(r) = &rec {
                last = r.state.exit_code;
            }
            let Ok(actor) = Self::actor(id) else {
                match rec {
                    // Removed meanwhile: that is what a `removed` wait
                    // waits for; the others see the last exit (kept by
                    // the index when the removal came after the last look).
                    None => {
                        let code = self.snapshot().removed_exit(id).unwrap_or(last);
                        return WaitOutcome::exited(code);
                    }
                    Some(_) if since.elapsed() > NO_ACTOR_LIMIT => {
                        return WaitOutcome {
                            status_code: -1,
                            error: Some("the container's actor did not come back".into()),
                        }
                    }
                    Some(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            };
            let (tx, rx) = tokio::sync::oneshot::channel::<WaitOutcome>();
            let sent = actor.cast(ContainerMsg::Wait {
                condition,
                reply: tx.into(),
            });
            if sent.is_ok() {
                if let Ok(o) = rx.await {
                    return o;
                }
                // It took the wait and stopped before answering: the
                // time without an actor starts now.
                since = Instant::now();
            }
            // Ask the next incarnation (a cast refused by a stopping actor
            // counts as time without one).
            if condition == WaitCondition::NextExit {
                condition = WaitCondition::NotRunning;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
