//! `Flaky`: an actor whose failures are scripted, for the supervision
//! failure matrix (panic or error in `pre_start`, in a handler).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

/// Shared script and counters of a [`Flaky`] actor across its restarts.
#[derive(Debug, Default)]
pub struct FlakyControl {
    /// Number of upcoming starts whose `pre_start` panics.
    pub panic_starts: AtomicU32,
    /// Number of upcoming starts whose `pre_start` returns an error.
    pub fail_starts: AtomicU32,
    /// Starts attempted so far (successful or not).
    pub starts: AtomicU32,
}

impl FlakyControl {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

pub enum FlakyMsg {
    /// Answer with the number of the start that built this instance.
    Ping(RpcReplyPort<u32>),
    /// Panic inside the handler.
    Panic,
    /// Return an error from the handler.
    Fail,
    /// Stop normally.
    Stop,
}

pub struct Flaky;

fn take_one(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

impl Actor for Flaky {
    type Msg = FlakyMsg;
    type State = u32;
    type Arguments = Arc<FlakyControl>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        ctl: Arc<FlakyControl>,
    ) -> Result<u32, ActorProcessingErr> {
        let n = ctl.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if take_one(&ctl.panic_starts) {
            panic!("scripted panic in pre_start");
        }
        if take_one(&ctl.fail_starts) {
            return Err("scripted error in pre_start".into());
        }
        Ok(n)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: FlakyMsg,
        state: &mut u32,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FlakyMsg::Ping(reply) => {
                let _ = reply.send(*state);
            }
            FlakyMsg::Panic => panic!("scripted panic in handler"),
            FlakyMsg::Fail => return Err("scripted error in handler".into()),
            FlakyMsg::Stop => myself.stop(None),
        }
        Ok(())
    }
}
