//! Registry sessions as actors: a RegistrySession per registry host
//! (registered `registry-session:<host>`) under the RegistrySupervisor
//! (registered `registry-sessions`).
//!
//! A session owns what talking to its host needs: one client per set of
//! credentials (its connection pool and its token cache, so concurrent and
//! later pulls of that host reuse them, and a token is never handed to a
//! request with other credentials). Every pull, push, login (`/auth`) and
//! `/distribution` of that host is a message to its session, which runs
//! it as an operation it owns: many operations run at once, the mailbox
//! only decides. A killed session drops its operations: a pull or push in
//! flight ends its progress stream with an error line, a login or
//! distribution request gets an error (never a hang); the supervisor starts
//! the session again, and the next operation runs on the new one.
//!
//! The HTTP side (the OCI distribution protocol, writing layers) is the
//! [`RegistryPort`] the root package implements; a fake lives in
//! [`crate::testing`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::warn;

use crate::directory::REGISTRY_SESSIONS;
use crate::ports::BoxFuture;
use crate::supervisor::ask::{ask_within, AskError, Request, RESTART_WAIT};
use crate::supervisor::keyed::{
    spawn_child, KeyedChildren, SpawnFuture, REBUILD_WINDOW, RETRY_AFTER,
};
use crate::{ErrorKind, HasKind};

#[cfg(test)]
mod tests;

/// Credentials of one operation, as the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry token (`registrytoken`).
    Bearer(String),
}

impl Credentials {
    /// The session's key for these credentials: a digest, so the secret
    /// is kept only inside the client made for them.
    fn key(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Credentials::Anonymous => h.update(b"anonymous"),
            Credentials::Basic { username, password } => {
                h.update(b"basic\0");
                h.update(username.as_bytes());
                h.update(b"\0");
                h.update(password.as_bytes());
            }
            Credentials::Bearer(t) => {
                h.update(b"bearer\0");
                h.update(t.as_bytes());
            }
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A failed registry operation: the status it answers with and dockerd's
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RegistryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RegistryError {
            kind,
            message: message.into(),
        }
    }
}

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Progress lines (JSON, each ending in `\r\n`) to the client.
pub type Progress = mpsc::Sender<Bytes>;

/// The rest of an operation once it was accepted.
pub type Job = BoxFuture<Result<(), RegistryError>>;

/// An image to push: its ID and the reference (with its tag) to push it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub image_id: String,
    pub reference: String,
}

/// One host under one set of credentials: what a session calls.
pub trait HostClient: Send + Sync + 'static {
    /// Resolve a pull (manifest, platform, config descriptor): an error
    /// here is the request's answer; the job downloads and stores the
    /// image, writing progress.
    fn pull(&self, reference: String, progress: Progress) -> BoxFuture<Result<Job, RegistryError>>;
    /// Push every target in turn, writing progress.
    fn push(&self, targets: Vec<PushTarget>, progress: Progress) -> Job;
    /// `GET /distribution/{name}/json`.
    fn distribution(&self, reference: String) -> BoxFuture<Result<Value, RegistryError>>;
    /// `POST /auth`: check the credentials (the body of the answer).
    fn login(&self) -> BoxFuture<Result<Value, RegistryError>>;
}

/// Makes the clients of the sessions.
pub trait RegistryPort: Send + Sync + 'static {
    fn client(&self, host: &str, credentials: &Credentials) -> Arc<dyn HostClient>;
}

/// The registered name of a host's session.
pub fn actor_name(host: &str) -> String {
    format!("registry-session:{host}")
}

/// The line that ends a progress stream with an error.
pub fn error_line(message: &str) -> Bytes {
    let message = crate::os_error::as_go(message);
    let mut b = serde_json::to_vec(&json!({"errorDetail": {"message": message}, "error": message}))
        .unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

/// What a session was stopped in the middle of: the stream's last line.
pub const STOPPED: &str = "the registry session stopped before the operation finished";

/// How long a request may wait for a session to accept an operation (a
/// pull's manifest resolution is part of it: the registry's own timeouts
/// end it well before).
const WITHIN: Duration = Duration::from_secs(300);

pub enum SessionMsg {
    /// Resolve and start a pull; answered once resolved.
    Pull {
        reference: String,
        credentials: Credentials,
        progress: Progress,
        reply: RpcReplyPort<Result<(), RegistryError>>,
    },
    /// Start a push; answered at once.
    Push {
        targets: Vec<PushTarget>,
        credentials: Credentials,
        progress: Progress,
        reply: RpcReplyPort<Result<(), RegistryError>>,
    },
    Distribution {
        reference: String,
        credentials: Credentials,
        reply: RpcReplyPort<Result<Value, RegistryError>>,
    },
    Login {
        credentials: Credentials,
        reply: RpcReplyPort<Result<Value, RegistryError>>,
    },
    /// The operations running, by name.
    Operations(RpcReplyPort<Vec<String>>),
    /// An operation ended.
    Done(u64),
}

impl Request for SessionMsg {
    fn name(&self) -> &'static str {
        match self {
            SessionMsg::Pull { .. } => "pull",
            SessionMsg::Push { .. } => "push",
            SessionMsg::Distribution { .. } => "distribution",
            SessionMsg::Login { .. } => "login",
            SessionMsg::Operations(_) => "operations",
            SessionMsg::Done(_) => "done",
        }
    }
    fn within(&self) -> Option<Duration> {
        Some(WITHIN)
    }
}

/// Aborts its task when dropped: a killed session's state takes its
/// operations with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ends a progress stream with an error line if the operation is dropped
/// before it finished (its session was killed): the client never mistakes
/// a cut stream for success.
struct Unfinished(Option<Progress>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            warn!("{STOPPED}");
            let _ = p.try_send(error_line(STOPPED));
        }
    }
}

pub struct RegistrySession;

pub struct SessionState {
    host: String,
    port: Arc<dyn RegistryPort>,
    /// One client per credentials (by digest).
    clients: BTreeMap<String, Arc<dyn HostClient>>,
    /// Running operations: their names and tasks.
    ops: BTreeMap<u64, (String, AbortOnDrop)>,
    next: u64,
}

impl SessionState {
    fn client(&mut self, c: &Credentials) -> Arc<dyn HostClient> {
        let (host, port) = (&self.host, &self.port);
        self.clients
            .entry(c.key())
            .or_insert_with(|| port.client(host, c))
            .clone()
    }

    fn run(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        what: String,
        op: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let n = self.next;
        self.next += 1;
        let me = myself.clone();
        let h = tokio::spawn(async move {
            op.await;
            let _ = me.send_message(SessionMsg::Done(n));
        });
        self.ops.insert(n, (what, AbortOnDrop(h)));
    }
}

/// Finish a streamed operation: its error (if any) as the last line.
async fn finish(job: Job, progress: Progress, mut guard: Unfinished) {
    if let Err(e) = job.await {
        warn!("registry operation failed: {}", e.message);
        let _ = progress.send(error_line(&e.message)).await;
    }
    guard.0 = None;
}

impl Actor for RegistrySession {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = (String, Arc<dyn RegistryPort>);

    async fn pre_start(
        &self,
        _myself: ActorRef<SessionMsg>,
        (host, port): (String, Arc<dyn RegistryPort>),
    ) -> Result<SessionState, ActorProcessingErr> {
        Ok(SessionState {
            host,
            port,
            clients: BTreeMap::new(),
            ops: BTreeMap::new(),
            next: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Pull {
                reference,
                credentials,
                progress,
                reply,
            } => {
                let client = st.client(&credentials);
                let what = format!("pull {reference}");
                st.run(&myself, what, async move {
                    let guard = Unfinished(Some(progress.clone()));
                    match client.pull(reference, progress.clone()).await {
                        Err(e) => {
                            let mut guard = guard;
                            guard.0 = None;
                            let _ = reply.send(Err(e));
                        }
                        Ok(job) => {
                            let _ = reply.send(Ok(()));
                            finish(job, progress, guard).await;
                        }
                    }
                });
            }
            SessionMsg::Push {
                targets,
                credentials,
                progress,
                reply,
            } => {
                let client = st.client(&credentials);
                let what = format!(
                    "push {}",
                    targets
                        .iter()
                        .map(|t| t.reference.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                st.run(&myself, what, async move {
                    let guard = Unfinished(Some(progress.clone()));
                    let job = client.push(targets, progress.clone());
                    let _ = reply.send(Ok(()));
                    finish(job, progress, guard).await;
                });
            }
            SessionMsg::Distribution {
                reference,
                credentials,
                reply,
            } => {
                let client = st.client(&credentials);
                st.run(&myself, format!("distribution {reference}"), async move {
                    let _ = reply.send(client.distribution(reference).await);
                });
            }
            SessionMsg::Login { credentials, reply } => {
                let client = st.client(&credentials);
                st.run(&myself, "login".into(), async move {
                    let _ = reply.send(client.login().await);
                });
            }
            SessionMsg::Operations(reply) => {
                let _ = reply.send(st.ops.values().map(|(w, _)| w.clone()).collect());
            }
            SessionMsg::Done(n) => {
                st.ops.remove(&n);
            }
        }
        Ok(())
    }
}

pub enum RegistrySupervisorMsg {
    /// The session of a host (started on first use).
    Session {
        host: String,
        reply: RpcReplyPort<Result<ActorRef<SessionMsg>, RegistryError>>,
    },
    /// The hosts with a session.
    Hosts(RpcReplyPort<Vec<String>>),
    /// Start (again) the session of a host.
    Respawn(String),
}

impl Request for RegistrySupervisorMsg {
    fn name(&self) -> &'static str {
        match self {
            RegistrySupervisorMsg::Session { .. } => "session",
            RegistrySupervisorMsg::Hosts(_) => "hosts",
            RegistrySupervisorMsg::Respawn(_) => "respawn",
        }
    }
}

pub struct RegistrySupervisor;

pub struct RegistrySupervisorState {
    port: Arc<dyn RegistryPort>,
    /// One session per host; a killed one comes back (a flapping one is
    /// left down and started again on its host's next operation).
    children: KeyedChildren,
}

fn spawn_session(
    st: &RegistrySupervisorState,
    myself: &ActorRef<RegistrySupervisorMsg>,
    host: &str,
) -> SpawnFuture {
    spawn_child(
        actor_name(host),
        RegistrySession,
        (host.to_string(), st.port.clone()),
        myself.get_cell(),
    )
}

fn running(host: &str) -> Option<ActorRef<SessionMsg>> {
    ActorRef::<SessionMsg>::where_is(actor_name(host))
}

impl Actor for RegistrySupervisor {
    type Msg = RegistrySupervisorMsg;
    type State = RegistrySupervisorState;
    type Arguments = Arc<dyn RegistryPort>;

    async fn pre_start(
        &self,
        _myself: ActorRef<RegistrySupervisorMsg>,
        port: Arc<dyn RegistryPort>,
    ) -> Result<RegistrySupervisorState, ActorProcessingErr> {
        // A restarted supervisor starts sessions again on first use: they
        // hold nothing a later operation needs.
        Ok(RegistrySupervisorState {
            port,
            children: KeyedChildren::with_limit("registry session", 100, REBUILD_WINDOW),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RegistrySupervisorMsg>,
        msg: RegistrySupervisorMsg,
        st: &mut RegistrySupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegistrySupervisorMsg::Session { host, reply } => {
                let r = match running(&host) {
                    Some(a) if st.children.has(&a.get_id()) => Ok(a),
                    // A killed session whose name is not released yet.
                    Some(_) => Err("the registry session is restarting; retry".to_string()),
                    None => {
                        let spawn = spawn_session(st, &myself, &host);
                        match st.children.start(&host, spawn).await {
                            Ok(()) => running(&host)
                                .ok_or_else(|| "the registry session stopped".to_string()),
                            Err(e) => Err(e),
                        }
                    }
                };
                let _ = reply.send(r.map_err(|e| {
                    warn!(%host, "starting a registry session: {e}");
                    RegistryError::new(ErrorKind::Unavailable, e)
                }));
            }
            RegistrySupervisorMsg::Hosts(reply) => {
                let _ = reply.send(st.children.keys());
            }
            RegistrySupervisorMsg::Respawn(host) => {
                let spawn = Some(spawn_session(st, &myself, &host));
                let me = myself.clone();
                st.children
                    .rebuild(host, spawn, move |host| {
                        me.send_after(RETRY_AFTER, move || RegistrySupervisorMsg::Respawn(host));
                    })
                    .await;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RegistrySupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut RegistrySupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(host) = st.children.exited(&evt, |_| true) {
            // At once: the facts it serves from are outside it.
            myself.send_message(RegistrySupervisorMsg::Respawn(host))?;
        }
        Ok(())
    }
}

fn ask_err(e: AskError, who: &str) -> RegistryError {
    RegistryError::new(ErrorKind::Unavailable, e.message(who))
}

fn report(actor: String) -> impl FnOnce(&'static str) {
    move |request| warn!(%actor, request, "registry actor did not answer in time")
}

/// The session of `host`.
pub async fn session(host: &str) -> Result<ActorRef<SessionMsg>, RegistryError> {
    let mut last = None;
    // A session (or their supervisor) being restarted is waited for.
    let deadline = tokio::time::Instant::now() + RESTART_WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(a) = running(host) {
            return Ok(a);
        }
        let Some(sup) = ActorRef::<RegistrySupervisorMsg>::where_is(REGISTRY_SESSIONS) else {
            last = Some(RegistryError::new(
                ErrorKind::Unavailable,
                "the registry sessions are restarting; retry",
            ));
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        match ask_within(
            &sup,
            |reply| RegistrySupervisorMsg::Session {
                host: host.to_string(),
                reply,
            },
            report(REGISTRY_SESSIONS.into()),
        )
        .await
        {
            Ok(Ok(a)) => return Ok(a),
            Ok(Err(e)) => last = Some(e),
            Err(AskError::Gone) => {}
            Err(e) => return Err(ask_err(e, "the registry session supervisor")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last.unwrap_or_else(|| RegistryError::new(ErrorKind::Unavailable, "no registry session")))
}

/// Ask the session of `host`: an answer, or an error if the session did
/// not give one (it was killed: the operation is not retried, it may have
/// had effects).
async fn ask<T: Send + 'static>(
    host: &str,
    build: impl FnOnce(RpcReplyPort<Result<T, RegistryError>>) -> SessionMsg,
) -> Result<T, RegistryError> {
    let s = session(host).await?;
    match ask_within(&s, build, report(actor_name(host))).await {
        Ok(r) => r,
        Err(AskError::Gone) => Err(RegistryError::new(ErrorKind::Unavailable, STOPPED)),
        Err(e) => Err(ask_err(e, &actor_name(host))),
    }
}

/// Pull `reference` (normalized, with its tag or digest) from `host`:
/// `Ok` once resolved; the rest streams into `progress`.
pub async fn pull(
    host: &str,
    reference: String,
    credentials: Credentials,
    progress: Progress,
) -> Result<(), RegistryError> {
    ask(host, |reply| SessionMsg::Pull {
        reference,
        credentials,
        progress,
        reply,
    })
    .await
}

/// Push `targets` to `host`; progress streams into `progress`.
pub async fn push(
    host: &str,
    targets: Vec<PushTarget>,
    credentials: Credentials,
    progress: Progress,
) -> Result<(), RegistryError> {
    ask(host, |reply| SessionMsg::Push {
        targets,
        credentials,
        progress,
        reply,
    })
    .await
}

pub async fn distribution(
    host: &str,
    reference: String,
    credentials: Credentials,
) -> Result<Value, RegistryError> {
    ask(host, |reply| SessionMsg::Distribution {
        reference,
        credentials,
        reply,
    })
    .await
}

pub async fn login(host: &str, credentials: Credentials) -> Result<Value, RegistryError> {
    ask(host, |reply| SessionMsg::Login { credentials, reply }).await
}

/// The operations running in the session of `host` (none if it has none).
pub async fn operations(host: &str) -> Vec<String> {
    let Some(s) = running(host) else {
        return vec![];
    };
    ask_within(&s, SessionMsg::Operations, report(actor_name(host)))
        .await
        .unwrap_or_default()
}

/// The hosts that have a session.
pub async fn hosts() -> Vec<String> {
    let Some(sup) = ActorRef::<RegistrySupervisorMsg>::where_is(REGISTRY_SESSIONS) else {
        return vec![];
    };
    ask_within(
        &sup,
        RegistrySupervisorMsg::Hosts,
        report(REGISTRY_SESSIONS.into()),
    )
    .await
    .unwrap_or_default()
}
