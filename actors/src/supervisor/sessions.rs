//! A supervisor of transient sessions (registry pulls and pushes): children
//! are started on request, never restarted (a failed session fails its
//! request), and listed for status and chaos tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use tracing::{debug, warn};

type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;
/// Starts one session linked to the given supervisor cell.
pub type SessionStart = Box<dyn FnOnce(ActorCell) -> StartFuture + Send>;

pub enum SessionsMsg {
    Spawn {
        name: String,
        start: SessionStart,
        reply: RpcReplyPort<Result<ActorCell, String>>,
    },
    /// Names of the running sessions.
    List(RpcReplyPort<Vec<String>>),
}

pub struct SessionSupervisor;

#[derive(Default)]
pub struct SessionsState {
    running: BTreeMap<ractor::ActorId, String>,
}

impl Actor for SessionSupervisor {
    type Msg = SessionsMsg;
    type State = SessionsState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SessionsState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionsMsg::Spawn { name, start, reply } => {
                let r = start(myself.get_cell()).await.map_err(|e| e.to_string());
                if let Ok(cell) = &r {
                    st.running.insert(cell.get_id(), name);
                }
                let _ = reply.send(r);
            }
            SessionsMsg::List(reply) => {
                let _ = reply.send(st.running.values().cloned().collect());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(n) = st.running.remove(&cell.get_id()) {
                    debug!(session = %n, "session ended");
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(n) = st.running.remove(&cell.get_id()) {
                    warn!(session = %n, "session failed: {err}");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Flaky, FlakyControl, FlakyMsg};

    #[tokio::test]
    async fn sessions_are_listed_and_never_restarted() {
        let (sup, _h) = Actor::spawn(None, SessionSupervisor, ()).await.unwrap();
        let ctl = FlakyControl::new();
        let c2 = ctl.clone();
        let start: SessionStart = Box::new(move |parent| {
            Box::pin(async move {
                Ok(Actor::spawn_linked(None, Flaky, c2, parent)
                    .await?
                    .0
                    .get_cell())
            })
        });
        let cell = ractor::call!(sup, |reply| SessionsMsg::Spawn {
            name: "pull-1".into(),
            start,
            reply
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            ractor::call!(sup, SessionsMsg::List).unwrap(),
            vec!["pull-1".to_string()]
        );
        cell.send_message(FlakyMsg::Panic).unwrap();
        for _ in 0..100 {
            if ractor::call!(sup, SessionsMsg::List).unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(ractor::call!(sup, SessionsMsg::List).unwrap().is_empty());
        assert_eq!(
            ctl.starts.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "not restarted"
        );
        sup.stop(None);
    }
}
