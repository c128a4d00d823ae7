//! Exec sessions as actors: an ExecActor per exec instance (registered
//! `exec:<id>`) under the ExecSupervisor (registered `execs`).
//!
//! An exec's facts (its command, whether it was started, its pid and exit
//! code) are an [`ExecRecord`] in the shared [`ExecTable`], which outlives
//! the actors, as dockerd keeps execs in memory. The ExecActor is the one
//! writer of its record: it decides the start (once only), and records
//! the process's pid and exit. Its bytes (stdin, output) never pass
//! through it: the connection pumps them between the client and the shim.
//! A killed ExecActor is started again by its supervisor over the same
//! record: it comes back with the exit code, and the exec's process (a
//! child of the shim) never notices.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde_json::{json, Value};
use tracing::warn;

use crate::directory::EXECS;
use crate::supervisor::ask::{ask_named_again, ask_within, AskError, Request, RESTART_WAIT};
use crate::supervisor::keyed::{
    spawn_child, KeyedChildren, SpawnFuture, REBUILD_AFTER, REBUILD_WINDOW, RETRY_AFTER,
};
use crate::{ErrorKind, HasKind};

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub privileged: bool,
    pub detach_keys: String,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

impl ExecRecord {
    /// `GET /exec/{id}/json`.
    pub fn inspect(&self) -> Value {
        json!({
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd.first(),
                "arguments": self.cmd.get(1..).unwrap_or_default(),
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": false,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "Pid": self.pid,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("No such exec instance: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the exec's actor is restarting; retry")]
    Unavailable,
    #[error("{0}")]
    Timeout(String),
}

impl HasKind for ExecError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExecError::NotFound(_) => ErrorKind::NotFound,
            ExecError::Conflict(_) => ErrorKind::Conflict,
            ExecError::Unavailable | ExecError::Timeout(_) => ErrorKind::Unavailable,
        }
    }
}

/// Every exec instance berthd knows, shared by the actors' incarnations.
#[derive(Clone, Default)]
pub struct ExecTable {
    inner: Arc<Mutex<BTreeMap<String, ExecRecord>>>,
}

impl ExecTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ExecRecord>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<ExecRecord> {
        self.lock().get(id).cloned()
    }

    /// The exec IDs of a container.
    pub fn of_container(&self, cid: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| e.container_id == cid)
            .map(|e| e.id.clone())
            .collect()
    }

    fn all_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// The registered name of an exec's actor.
pub fn actor_name(id: &str) -> String {
    format!("exec:{id}")
}

pub enum ExecMsg {
    Inspect(RpcReplyPort<ExecRecord>),
    /// The decision to start: granted once (the record as it was).
    Start(RpcReplyPort<Result<ExecRecord, ExecError>>),
    /// The process runs with this pid.
    Running {
        pid: i32,
        reply: RpcReplyPort<()>,
    },
    /// The process ended (`code` -1: unknown) or could not start.
    Exited {
        code: i32,
        reply: RpcReplyPort<()>,
    },
}

impl Request for ExecMsg {
    fn name(&self) -> &'static str {
        match self {
            ExecMsg::Inspect(_) => "inspect",
            ExecMsg::Start(_) => "start",
            ExecMsg::Running { .. } => "running",
            ExecMsg::Exited { .. } => "exited",
        }
    }
}

pub struct ExecActor;

pub struct ExecActorState {
    id: String,
    table: ExecTable,
}

impl ExecActorState {
    fn with<T>(&self, f: impl FnOnce(&mut ExecRecord) -> T) -> Option<T> {
        self.table.lock().get_mut(&self.id).map(f)
    }
}

impl Actor for ExecActor {
    type Msg = ExecMsg;
    type State = ExecActorState;
    type Arguments = (String, ExecTable);

    async fn pre_start(
        &self,
        _myself: ActorRef<ExecMsg>,
        (id, table): (String, ExecTable),
    ) -> Result<ExecActorState, ActorProcessingErr> {
        Ok(ExecActorState { id, table })
    }

    async fn handle(
        &self,
        myself: ActorRef<ExecMsg>,
        msg: ExecMsg,
        st: &mut ExecActorState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(rec) = st.table.get(&st.id) else {
            // Forgotten with its container.
            myself.stop(None);
            return Ok(());
        };
        match msg {
            ExecMsg::Inspect(reply) => {
                let _ = reply.send(rec);
            }
            ExecMsg::Start(reply) => {
                if rec.started {
                    let _ = reply.send(Err(ExecError::Conflict(format!(
                        "Error: Exec command {} is already running",
                        rec.id
                    ))));
                } else {
                    st.with(|r| r.started = true);
                    let _ = reply.send(Ok(rec));
                }
            }
            ExecMsg::Running { pid, reply } => {
                st.with(|r| {
                    r.running = true;
                    r.pid = pid;
                });
                let _ = reply.send(());
            }
            ExecMsg::Exited { code, reply } => {
                st.with(|r| {
                    r.running = false;
                    r.exit_code = Some(code);
                });
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

pub enum ExecSupervisorMsg {
    Create {
        record: Box<ExecRecord>,
        reply: RpcReplyPort<Result<String, ExecError>>,
    },
    /// The container is gone: its execs go too.
    Forget(String),
    /// Start (again) the actor of an exec.
    Respawn(String),
}

impl Request for ExecSupervisorMsg {
    fn name(&self) -> &'static str {
        match self {
            ExecSupervisorMsg::Create { .. } => "create",
            ExecSupervisorMsg::Forget(_) => "forget",
            ExecSupervisorMsg::Respawn(_) => "respawn",
        }
    }
}

pub struct ExecSupervisor;

pub struct ExecSupervisorState {
    table: ExecTable,
    /// One actor per exec, rebuilt over its record when it dies (a
    /// flapping one is left down; its record stays).
    children: KeyedChildren,
}

fn spawn_exec(
    st: &ExecSupervisorState,
    myself: &ActorRef<ExecSupervisorMsg>,
    id: &str,
) -> SpawnFuture {
    spawn_child(
        actor_name(id),
        ExecActor,
        (id.to_string(), st.table.clone()),
        myself.get_cell(),
    )
}

impl Actor for ExecSupervisor {
    type Msg = ExecSupervisorMsg;
    type State = ExecSupervisorState;
    type Arguments = ExecTable;

    async fn pre_start(
        &self,
        myself: ActorRef<ExecSupervisorMsg>,
        table: ExecTable,
    ) -> Result<ExecSupervisorState, ActorProcessingErr> {
        // A restarted supervisor: every exec gets its actor back (the old
        // incarnation's names may be registered a moment longer).
        for id in table.all_ids() {
            myself.send_after(REBUILD_AFTER, move || ExecSupervisorMsg::Respawn(id));
        }
        Ok(ExecSupervisorState {
            table,
            children: KeyedChildren::with_limit("exec", 100, REBUILD_WINDOW),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ExecSupervisorMsg>,
        msg: ExecSupervisorMsg,
        st: &mut ExecSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ExecSupervisorMsg::Create { record, reply } => {
                let id = record.id.clone();
                st.table.lock().insert(id.clone(), *record);
                let spawn = spawn_exec(st, &myself, &id);
                let r = st.children.start(&id, spawn).await;
                if r.is_err() {
                    st.table.lock().remove(&id);
                }
                let _ = reply.send(r.map(|_| id).map_err(|e| {
                    warn!("starting an exec actor: {e}");
                    ExecError::Unavailable
                }));
            }
            ExecSupervisorMsg::Forget(cid) => {
                let ids = st.table.of_container(&cid);
                st.table.lock().retain(|_, e| e.container_id != cid);
                for id in ids {
                    st.children.forget(&id);
                    if let Some(a) = ractor::registry::where_is(actor_name(&id)) {
                        a.stop(None);
                    }
                }
            }
            ExecSupervisorMsg::Respawn(id) => {
                let spawn = st.table.get(&id).map(|_| spawn_exec(st, &myself, &id));
                let me = myself.clone();
                st.children
                    .rebuild(id, spawn, move |id| {
                        me.send_after(RETRY_AFTER, move || ExecSupervisorMsg::Respawn(id));
                    })
                    .await;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ExecSupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut ExecSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // A forgotten exec stopped for good; any other comes back.
        let table = st.table.clone();
        if let Some(id) = st.children.exited(&evt, |id| table.get(id).is_some()) {
            // At once: the facts it serves from are outside it.
            myself.send_message(ExecSupervisorMsg::Respawn(id))?;
        }
        Ok(())
    }
}

/// Handle for callers: the table and the actors.
#[derive(Clone, Default)]
pub struct Execs {
    pub table: ExecTable,
}

fn ask_err(e: AskError, who: &str) -> ExecError {
    match e {
        AskError::Gone => ExecError::Unavailable,
        e => ExecError::Timeout(e.message(who)),
    }
}

impl Execs {
    /// Register an exec (its record built and checked by the caller).
    pub async fn create(&self, record: ExecRecord) -> Result<String, ExecError> {
        // Made again if the supervisor dies with it: an exec made twice
        // leaves one never started, forgotten with its container.
        ask_named_again(
            EXECS,
            |reply| ExecSupervisorMsg::Create {
                record: Box::new(record.clone()),
                reply,
            },
            |request| warn!(%request, "the exec supervisor did not answer in time"),
        )
        .await
        .map_err(|e| ask_err(e, "the exec supervisor"))?
    }

    /// Ask an exec's actor; while it is being restarted (after a kill) the
    /// request is retried for up to [`RESTART_WAIT`] (exec requests are
    /// made again from the exec's record, so a retry is safe).
    pub async fn ask<T: Send + 'static>(
        &self,
        id: &str,
        build: impl Fn(RpcReplyPort<T>) -> ExecMsg,
    ) -> Result<T, ExecError> {
        let deadline = tokio::time::Instant::now() + RESTART_WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.table.get(id).is_none() {
                return Err(ExecError::NotFound(id.to_string()));
            }
            if let Some(a) = ActorRef::<ExecMsg>::where_is(actor_name(id)) {
                let who = format!("the actor of exec {id}");
                let report = |request| warn!(exec = %id, %request, "the exec's actor did not answer in time");
                match ask_within(&a, &build, report).await {
                    Ok(v) => return Ok(v),
                    Err(AskError::Gone) => {}
                    Err(e) => return Err(ask_err(e, &who)),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(ExecError::Unavailable)
    }

    pub async fn inspect(&self, id: &str) -> Result<ExecRecord, ExecError> {
        self.ask(id, ExecMsg::Inspect).await
    }

    pub async fn start(&self, id: &str) -> Result<ExecRecord, ExecError> {
        self.ask(id, ExecMsg::Start).await?
    }

    pub async fn running(&self, id: &str, pid: i32) -> Result<(), ExecError> {
        self.ask(id, |reply| ExecMsg::Running { pid, reply }).await
    }

    pub async fn exited(&self, id: &str, code: i32) -> Result<(), ExecError> {
        self.ask(id, |reply| ExecMsg::Exited { code, reply }).await
    }

    /// The container is gone: its execs too.
    pub fn forget_container(&self, cid: &str) {
        if let Some(s) = ActorRef::<ExecSupervisorMsg>::where_is(EXECS) {
            let _ = s.cast(ExecSupervisorMsg::Forget(cid.to_string()));
        }
    }
}
