//! wait: answered when the condition holds.

use ractor::RpcReplyPort;

use super::actor::ContainerState;
use super::state::Status;

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
