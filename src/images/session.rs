//! RegistrySession: one actor per pull or push, supervised by the
//! SessionSupervisor (transient: a session that dies fails its request and
//! is not restarted). The session owns the work's task: killing the actor
//! aborts the work, whose guards remove what it had built.

use std::future::Future;
use std::pin::Pin;

use berth_actors::directory::REGISTRY_SESSIONS;
use berth_actors::supervisor::{SessionStart, SessionsMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::task::AbortOnDrop;

pub type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct RegistrySession;

pub struct SessionState {
    _work: AbortOnDrop,
}

impl Actor for RegistrySession {
    type Msg = ();
    type State = SessionState;
    type Arguments = Work;

    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        work: Work,
    ) -> Result<SessionState, ActorProcessingErr> {
        let h = tokio::spawn(async move {
            work.await;
            myself.stop(Some("done".into()));
        });
        Ok(SessionState {
            _work: AbortOnDrop(h),
        })
    }
}

/// Run `work` as a supervised session named `name`.
pub async fn start(name: String, work: Work) -> Result<(), String> {
    let sup = ActorRef::<SessionsMsg>::where_is(REGISTRY_SESSIONS)
        .ok_or_else(|| "registry sessions are restarting; retry".to_string())?;
    let start: SessionStart = Box::new(move |parent| {
        Box::pin(async move {
            Ok(Actor::spawn_linked(None, RegistrySession, work, parent)
                .await?
                .0
                .get_cell())
        })
    });
    // Bounded like every request to an actor: a stuck supervisor fails the
    // pull instead of hanging it.
    ractor::call_t!(
        sup,
        |reply| SessionsMsg::Spawn { name, start, reply },
        60_000
    )
    .map_err(|e| format!("the registry session supervisor did not answer: {e}"))?
    .map(|_| ())
}
