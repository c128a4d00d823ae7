//! A one-for-one supervisor over a fixed list of children.
//!
//! Children are started in order in `pre_start` (a child that cannot start
//! fails the supervisor: berthd does not come up half-built). A child that
//! is killed, or fails or stops after it ran a while, is restarted at once;
//! one whose restart fails or that goes down right after starting is
//! restarted after the backoff its [`RestartPolicy`] gives, and past the
//! policy's limit the supervisor fails itself, which its own parent sees as
//! a child failure (escalation).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use tracing::{error, info, warn};

use super::strategy::{counts, Decision, RestartPolicy, RestartTracker, KILLED};

type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;
type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// How to start (and restart) one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// Name of the child; also its registry name when `register` is set.
    pub name: String,
    pub policy: RestartPolicy,
    start: StartFn,
}

impl ChildSpec {
    /// A child of actor type `A`; `make` builds a fresh handler and arguments
    /// for every (re)start. With `register` the child is registered under
    /// `name` so other parts can find it with `ractor::registry::where_is`.
    pub fn new<A, F>(name: &str, policy: RestartPolicy, register: bool, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let reg_name = name.to_string();
        let start: StartFn = Arc::new(move |sup: ActorCell| {
            let make = make.clone();
            let reg = if register {
                Some(reg_name.clone())
            } else {
                None
            };
            Box::pin(async move {
                let (handler, args) = make();
                let (r, _h) = Actor::spawn_linked(reg, handler, args, sup).await?;
                Ok(r.get_cell())
            })
        });
        ChildSpec {
            name: name.to_string(),
            policy,
            start,
        }
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A supervisor's view of one child, for status reads and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildStatus {
    pub name: String,
    pub running: bool,
    pub restarts: u64,
}

pub struct SupervisorArgs {
    pub children: Vec<ChildSpec>,
}

pub enum SupervisorMsg {
    /// Start the named child again (sent to itself after a backoff).
    Restart(String),
    /// Report every child's status.
    Children(RpcReplyPort<Vec<ChildStatus>>),
    /// Stop the children in reverse start order, then the supervisor.
    Shutdown(RpcReplyPort<()>),
}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    /// When the current incarnation started.
    started: Instant,
    tracker: RestartTracker,
    restarts: u64,
}

pub struct SupervisorState {
    children: Vec<Child>,
    stopping: bool,
}

/// The one-for-one supervisor actor.
pub struct Supervisor;

impl Supervisor {
    /// A child went down: decide, restart now, later, or escalate.
    async fn child_down(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        idx: usize,
        why: String,
        counted: bool,
    ) -> Result<(), ActorProcessingErr> {
        let child = &mut state.children[idx];
        child.cell = None;
        let name = child.spec.name.clone();
        match child.tracker.on_exit(Instant::now(), counted) {
            Decision::Escalate => {
                let p = child.tracker.policy();
                error!(child = %name, %why, "child exceeded {} restarts in {:?}; escalating", p.max_restarts, p.window);
                Err(format!(
                    "child {name} exceeded {} restarts in {:?}: {why}",
                    p.max_restarts, p.window
                )
                .into())
            }
            Decision::Restart { after } if after.is_zero() => {
                warn!(child = %name, %why, "child down; restarting");
                self.restart(myself, state, idx).await
            }
            Decision::Restart { after } => {
                warn!(child = %name, %why, "child down; restarting in {:?}", after);
                myself.send_after(after, move || SupervisorMsg::Restart(name));
                Ok(())
            }
        }
    }

    async fn restart(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        idx: usize,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping || state.children[idx].cell.is_some() {
            return Ok(());
        }
        let spec = state.children[idx].spec.clone();
        match (spec.start)(myself.get_cell()).await {
            Ok(cell) => {
                let child = &mut state.children[idx];
                child.cell = Some(cell);
                child.started = Instant::now();
                child.restarts += 1;
                crate::metrics::restarted(&spec.name);
                info!(child = %spec.name, restarts = child.restarts, "child restarted");
                Ok(())
            }
            Err(e) => {
                // A failed start counts as one more failure of the child.
                Box::pin(self.child_down(myself, state, idx, format!("restart failed: {e}"), true))
                    .await
            }
        }
    }

    fn find(state: &SupervisorState, cell: &ActorCell) -> Option<usize> {
        let id = cell.get_id();
        state
            .children
            .iter()
            .position(|c| c.cell.as_ref().map(|c| c.get_id()) == Some(id))
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut children = Vec::with_capacity(args.children.len());
        for spec in args.children {
            let cell = (spec.start)(myself.get_cell())
                .await
                .map_err(|e| format!("starting {}: {e}", spec.name))?;
            children.push(Child {
                tracker: RestartTracker::new(spec.policy),
                spec,
                cell: Some(cell),
                started: Instant::now(),
                restarts: 0,
            });
        }
        Ok(SupervisorState {
            children,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Restart(name) => {
                if let Some(idx) = state.children.iter().position(|c| c.spec.name == name) {
                    self.restart(&myself, state, idx).await?;
                }
            }
            SupervisorMsg::Children(reply) => {
                let list = state
                    .children
                    .iter()
                    .map(|c| ChildStatus {
                        name: c.spec.name.clone(),
                        running: c.cell.is_some(),
                        restarts: c.restarts,
                    })
                    .collect();
                let _ = reply.send(list);
            }
            SupervisorMsg::Shutdown(reply) => {
                state.stopping = true;
                for child in state.children.iter_mut().rev() {
                    if let Some(cell) = child.cell.take() {
                        let _ = cell
                            .stop_and_wait(
                                Some("shutdown".into()),
                                Some(std::time::Duration::from_secs(5)),
                            )
                            .await;
                    }
                }
                let _ = reply.send(());
                myself.stop(Some("shutdown".into()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping {
            return Ok(());
        }
        let (cell, why, killed) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}"), false),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let killed = reason.as_deref() == Some(KILLED);
                (
                    cell,
                    format!("stopped: {}", reason.unwrap_or_else(|| "no reason".into())),
                    killed,
                )
            }
            _ => return Ok(()),
        };
        match Self::find(state, &cell) {
            Some(idx) => {
                let c = &state.children[idx];
                let counted = counts(killed, c.started.elapsed(), c.spec.policy.settle);
                self.child_down(&myself, state, idx, why, counted).await
            }
            None => Ok(()),
        }
    }
}
