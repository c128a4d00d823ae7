//! The shim is a child subreaper: the container's init and every exec
//! process are re-parented to it. One task reaps every child on SIGCHLD and
//! hands exit statuses to whoever waits for that pid. Nothing else in the
//! shim may call `waitpid`, so children are spawned with `Command::spawn`
//! and awaited here, never with `Command::output`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

enum Slot {
    Waiting(oneshot::Sender<i32>),
    Exited(i32),
}

#[derive(Clone, Default)]
pub struct Reaper {
    slots: Arc<Mutex<HashMap<i32, Slot>>>,
}

/// Exit code as a shell reports it: the code, or 128 + the signal.
fn code_of(ws: WaitStatus) -> Option<(i32, i32)> {
    match ws {
        WaitStatus::Exited(p, c) => Some((p.as_raw(), c)),
        WaitStatus::Signaled(p, s, _) => Some((p.as_raw(), 128 + s as i32)),
        _ => None,
    }
}

impl Reaper {
    /// Start reaping. Must be called before the first child is spawned.
    pub fn start(&self) -> std::io::Result<()> {
        let mut sig = signal(SignalKind::child())?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.reap();
                if sig.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok(())
    }

    fn reap(&self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(ws) => {
                    if let Some((pid, code)) = code_of(ws) {
                        self.exited(pid, code);
                    }
                }
            }
        }
    }

    fn exited(&self, pid: i32, code: i32) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.remove(&pid) {
            Some(Slot::Waiting(tx)) => {
                let _ = tx.send(code);
            }
            // An orphan nobody claimed yet (or ever): keep its status for a
            // claim that may come (an exec whose pid file is read late).
            _ => {
                slots.insert(pid, Slot::Exited(code));
            }
        }
    }

    /// Wait for `pid` to exit; its exit code.
    pub async fn wait(&self, pid: i32) -> i32 {
        let rx = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Slot::Exited(code)) = slots.remove(&pid) {
                return code;
            }
            let (tx, rx) = oneshot::channel();
            slots.insert(pid, Slot::Waiting(tx));
            rx
        };
        // Reap now too: the child may have exited before the slot existed
        // and after the last SIGCHLD was handled.
        self.reap();
        rx.await.unwrap_or(255)
    }
}
