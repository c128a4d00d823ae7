//! Legacy (v1) plugins as actors: a PluginActor per plugin name
//! (registered `plugin:<name>`) under the PluginSupervisor (registered
//! `plugins`).
//!
//! A plugin is a process of its own that speaks JSON over HTTP on a unix
//! socket or TCP (dockerd's plugin protocol: `POST /Plugin.Activate`, then
//! `POST /<Interface>.<Method>`). Its actor owns the facts about it: where
//! it was found, what it implements (the `Implements` list of its
//! activation), whether it answered. It activates the plugin on first use
//! (retrying while the plugin starts, for at most [`ACTIVATE_WINDOW`]) and
//! hands out a [`PluginHandle`]; calls go straight from the request to the
//! plugin through that handle, so the mailbox decides and never carries
//! bodies, and one slow call never holds another. A call bounded by
//! [`CALL_TIMEOUT`]; a plugin that stops answering makes its actor forget
//! the activation (the next use finds and activates it again). A killed
//! actor is started again by its supervisor and activates again on use.
//!
//! Finding and calling a plugin (sockets, spec files, HTTP, TLS) is the
//! [`PluginPort`] the root package implements.

pub mod authz;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde::Deserialize;
use tracing::{info, warn};

use crate::directory::PLUGINS;
use crate::ports::BoxFuture;
use crate::supervisor::ask::{ask_within, AskError, Request};
use crate::supervisor::keyed::{
    spawn_child, KeyedChildren, SpawnFuture, REBUILD_WINDOW, RETRY_AFTER,
};
use crate::{ErrorKind, HasKind};

/// How long a plugin that is not there yet (no socket, or one that refuses
/// connections) is waited for while activating it.
pub const ACTIVATE_WINDOW: Duration = Duration::from_secs(8);
/// The longest one call to a plugin may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A failed activation is the answer for this long: requests made while a
/// plugin is down fail at once instead of each waiting the whole window.
pub const FAILED_FOR: Duration = Duration::from_secs(1);
/// Connection attempts of one call to an activated plugin (it may be
/// restarting), 100 ms apart and doubling.
const CALL_ATTEMPTS: u32 = 3;

/// The activation handshake's method.
pub const ACTIVATE: &str = "Plugin.Activate";

/// A failed plugin lookup or call, with the status it answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
        }
    }
}

impl HasKind for PluginError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Why one HTTP call to a plugin failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No connection (the plugin is down or restarting): worth a retry.
    #[error("{0}")]
    Connect(String),
    /// The plugin answered with a status other than 200; `message` is its
    /// `Err` field or its body (dockerd's reading).
    #[error("{method}: {message}")]
    Status {
        method: String,
        code: u16,
        message: String,
    },
    /// Anything else on the wire (a reset, a malformed answer).
    #[error("{0}")]
    Io(String),
}

/// One plugin's endpoint: what its port found.
pub trait PluginClient: Send + Sync + 'static {
    /// Where it is (`unix:///run/docker/plugins/x.sock`, `tcp://h:p`).
    fn address(&self) -> String;
    /// `POST /<method>` with a JSON body; the body of a 200 answer.
    fn call(&self, method: &str, body: Bytes) -> BoxFuture<Result<Bytes, CallError>>;
}

/// Finds plugins: sockets and spec files, dockerd's way.
pub trait PluginPort: Send + Sync + 'static {
    /// The endpoint of plugin `name`, or why there is none (dockerd's
    /// message).
    fn locate(&self, name: &str) -> Result<Arc<dyn PluginClient>, String>;
}

/// The registered name of a plugin's actor.
pub fn actor_name(name: &str) -> String {
    format!("plugin:{name}")
}

/// An activated plugin: what its actor hands out to callers.
#[derive(Clone)]
pub struct PluginHandle {
    pub name: String,
    pub address: String,
    /// The interfaces of its activation (`authz`, `VolumeDriver`, ...).
    pub implements: Vec<String>,
    client: Arc<dyn PluginClient>,
    /// The activation it came from: a failure resets only that one.
    generation: u64,
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("implements", &self.implements)
            .finish()
    }
}

impl PluginHandle {
    /// Call `method` with `body`: a few connection attempts, each call
    /// bounded by [`CALL_TIMEOUT`]. A plugin that cannot be reached or does
    /// not answer in time is reported to its actor, which activates it
    /// again on the next use.
    pub async fn call(&self, method: &str, body: Bytes) -> Result<Bytes, CallError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let r = tokio::time::timeout(CALL_TIMEOUT, self.client.call(method, body.clone()))
                .await
                .unwrap_or_else(|_| {
                    Err(CallError::Io(format!(
                        "{method}: the plugin did not answer within {}s",
                        CALL_TIMEOUT.as_secs()
                    )))
                });
            match r {
                Err(CallError::Connect(e)) if attempt < CALL_ATTEMPTS => {
                    warn!(plugin = %self.name, "{e}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e @ (CallError::Connect(_) | CallError::Io(_))) => {
                    if let Some(a) = running(&self.name) {
                        let _ = a.send_message(PluginMsg::Reset(self.generation));
                    }
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    pub fn implements(&self, interface: &str) -> bool {
        self.implements.iter().any(|i| i == interface)
    }
}

/// What `GET /plugins` and `docker info` show of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    /// Empty until it was found.
    pub address: String,
    pub implements: Vec<String>,
    pub active: bool,
    /// Why its last activation failed.
    pub error: Option<String>,
}

enum Status {
    Idle,
    Active(PluginHandle),
    Failed { error: String, at: Instant },
}

pub enum PluginMsg {
    /// The activated plugin (activated now if it is not).
    Get(RpcReplyPort<Result<PluginHandle, PluginError>>),
    /// A call of activation `n` could not reach the plugin.
    Reset(u64),
    Info(RpcReplyPort<PluginInfo>),
}

impl Request for PluginMsg {
    fn name(&self) -> &'static str {
        match self {
            PluginMsg::Get(_) => "activate",
            PluginMsg::Reset(_) => "reset",
            PluginMsg::Info(_) => "info",
        }
    }
    fn within(&self) -> Option<Duration> {
        // An activation waits for the plugin at most this long.
        Some(ACTIVATE_WINDOW + CALL_TIMEOUT + Duration::from_secs(5))
    }
}

#[derive(Deserialize)]
struct Activation {
    #[serde(rename = "Implements", default)]
    implements: Vec<String>,
}

pub struct PluginActor;

pub struct PluginState {
    name: String,
    port: Arc<dyn PluginPort>,
    status: Status,
    generation: u64,
    /// The last activation failed: the next one waits less.
    failing: bool,
}

/// What is known of every plugin that has had an actor: the read model
/// `docker info` and `GET /plugins` read without asking any actor (an
/// actor may be busy activating its plugin). A plugin that is not active
/// keeps what it implemented when it last was.
static VIEW: std::sync::LazyLock<
    std::sync::RwLock<std::collections::BTreeMap<String, PluginInfo>>,
> = std::sync::LazyLock::new(Default::default);

impl PluginState {
    fn info(&self) -> PluginInfo {
        let (address, implements, active, error) = match &self.status {
            Status::Active(h) => (h.address.clone(), h.implements.clone(), true, None),
            Status::Idle => (String::new(), vec![], false, None),
            Status::Failed { error, .. } => (String::new(), vec![], false, Some(error.clone())),
        };
        PluginInfo {
            name: self.name.clone(),
            address,
            implements,
            active,
            error,
        }
    }

    /// Publish this plugin's state to the read model.
    fn publish(&self) {
        let mut i = self.info();
        let mut view = VIEW.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = view.get(&self.name) {
            if i.implements.is_empty() {
                i.implements = old.implements.clone();
            }
            if i.address.is_empty() {
                i.address = old.address.clone();
            }
        }
        view.insert(self.name.clone(), i);
    }
}

/// Find and activate `name`: retried with a doubling delay while the
/// plugin is not there or refuses connections, for at most `window`.
async fn activate(
    port: &dyn PluginPort,
    name: &str,
    window: Duration,
) -> Result<(Arc<dyn PluginClient>, Vec<String>), String> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let (e, retry): (String, bool) = match port.locate(name) {
            Err(e) => (e, true),
            Ok(client) => {
                let call = tokio::time::timeout(CALL_TIMEOUT, client.call(ACTIVATE, Bytes::new()));
                match call.await {
                    Err(_) => (
                        format!(
                            "{ACTIVATE}: the plugin did not answer within {}s",
                            CALL_TIMEOUT.as_secs()
                        ),
                        false,
                    ),
                    Ok(Err(CallError::Connect(e))) => (e, true),
                    Ok(Err(e)) => (e.to_string(), false),
                    Ok(Ok(b)) => match serde_json::from_slice::<Activation>(&b) {
                        Ok(a) => return Ok((client, a.implements)),
                        Err(e) => (format!("{ACTIVATE}: invalid answer: {e}"), false),
                    },
                }
            }
        };
        if !retry || start.elapsed() + delay > window {
            return Err(e);
        }
        warn!(plugin = %name, "unable to locate or reach the plugin, retrying in {delay:?}: {e}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

impl Actor for PluginActor {
    type Msg = PluginMsg;
    type State = PluginState;
    type Arguments = (String, Arc<dyn PluginPort>);

    async fn pre_start(
        &self,
        _myself: ActorRef<PluginMsg>,
        (name, port): (String, Arc<dyn PluginPort>),
    ) -> Result<PluginState, ActorProcessingErr> {
        let st = PluginState {
            name,
            port,
            status: Status::Idle,
            generation: 0,
            failing: false,
        };
        st.publish();
        Ok(st)
    }

    async fn handle(
        &self,
        _myself: ActorRef<PluginMsg>,
        msg: PluginMsg,
        st: &mut PluginState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PluginMsg::Get(reply) => {
                if let Status::Failed { at, .. } = &st.status {
                    if at.elapsed() >= FAILED_FOR {
                        st.status = Status::Idle;
                    }
                }
                let r = match &st.status {
                    Status::Active(h) => Ok(h.clone()),
                    Status::Failed { error, .. } => Err(error.clone()),
                    Status::Idle => {
                        // A plugin that was just found down is given a
                        // short wait: every request would pay it.
                        let window = if st.failing {
                            FAILED_FOR
                        } else {
                            ACTIVATE_WINDOW
                        };
                        match activate(st.port.as_ref(), &st.name, window).await {
                            Ok((client, implements)) => {
                                st.generation += 1;
                                let h = PluginHandle {
                                    name: st.name.clone(),
                                    address: client.address(),
                                    implements,
                                    client,
                                    generation: st.generation,
                                };
                                info!(plugin = %st.name, address = %h.address, implements = ?h.implements, "plugin activated");
                                st.status = Status::Active(h.clone());
                                st.failing = false;
                                Ok(h)
                            }
                            Err(e) => {
                                warn!(plugin = %st.name, "plugin activation failed: {e}");
                                st.status = Status::Failed {
                                    error: e.clone(),
                                    at: Instant::now(),
                                };
                                st.failing = true;
                                Err(e)
                            }
                        }
                    }
                };
                st.publish();
                let _ = reply.send(r.map_err(|e| PluginError::new(ErrorKind::System, e)));
            }
            PluginMsg::Reset(n) => {
                if matches!(&st.status, Status::Active(h) if h.generation == n) {
                    info!(plugin = %st.name, "plugin unreachable; it is activated again on its next use");
                    st.status = Status::Idle;
                    // It was up: waiting the whole window for it again
                    // would hold every request that needs it.
                    st.failing = true;
                    st.publish();
                }
            }
            PluginMsg::Info(reply) => {
                let _ = reply.send(st.info());
            }
        }
        Ok(())
    }
}

pub enum PluginSupervisorMsg {
    /// The actor of a plugin (started on first use).
    Plugin {
        name: String,
        reply: RpcReplyPort<Result<ActorRef<PluginMsg>, String>>,
    },
    /// The plugins with an actor.
    Names(RpcReplyPort<Vec<String>>),
    /// Start (again) the actor of a plugin.
    Respawn(String),
}

impl Request for PluginSupervisorMsg {
    fn name(&self) -> &'static str {
        match self {
            PluginSupervisorMsg::Plugin { .. } => "plugin",
            PluginSupervisorMsg::Names(_) => "names",
            PluginSupervisorMsg::Respawn(_) => "respawn",
        }
    }
}

pub struct PluginSupervisor;

pub struct PluginSupervisorState {
    port: Arc<dyn PluginPort>,
    children: KeyedChildren,
}

fn spawn_plugin(
    st: &PluginSupervisorState,
    myself: &ActorRef<PluginSupervisorMsg>,
    name: &str,
) -> SpawnFuture {
    spawn_child(
        actor_name(name),
        PluginActor,
        (name.to_string(), st.port.clone()),
        myself.get_cell(),
    )
}

fn running(name: &str) -> Option<ActorRef<PluginMsg>> {
    ActorRef::<PluginMsg>::where_is(actor_name(name))
}

impl Actor for PluginSupervisor {
    type Msg = PluginSupervisorMsg;
    type State = PluginSupervisorState;
    type Arguments = Arc<dyn PluginPort>;

    async fn pre_start(
        &self,
        _myself: ActorRef<PluginSupervisorMsg>,
        port: Arc<dyn PluginPort>,
    ) -> Result<PluginSupervisorState, ActorProcessingErr> {
        // A restarted supervisor starts plugin actors again on first use:
        // an activation is cheap and the plugins keep their own state.
        Ok(PluginSupervisorState {
            port,
            children: KeyedChildren::with_limit("plugin", 100, REBUILD_WINDOW),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PluginSupervisorMsg>,
        msg: PluginSupervisorMsg,
        st: &mut PluginSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PluginSupervisorMsg::Plugin { name, reply } => {
                let r = match running(&name) {
                    Some(a) if st.children.has(&a.get_id()) => Ok(a),
                    Some(_) => Err("the plugin's actor is restarting; retry".to_string()),
                    None => {
                        let spawn = spawn_plugin(st, &myself, &name);
                        match st.children.start(&name, spawn).await {
                            Ok(()) => running(&name)
                                .ok_or_else(|| "the plugin's actor stopped".to_string()),
                            Err(e) => Err(e),
                        }
                    }
                };
                let _ = reply.send(r);
            }
            PluginSupervisorMsg::Names(reply) => {
                let _ = reply.send(st.children.keys());
            }
            PluginSupervisorMsg::Respawn(name) => {
                let spawn = Some(spawn_plugin(st, &myself, &name));
                let me = myself.clone();
                st.children
                    .rebuild(name, spawn, move |name| {
                        me.send_after(RETRY_AFTER, move || PluginSupervisorMsg::Respawn(name));
                    })
                    .await;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PluginSupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut PluginSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(name) = st.children.exited(&evt, |_| true) {
            myself.send_message(PluginSupervisorMsg::Respawn(name))?;
        }
        Ok(())
    }
}

fn unavailable(e: AskError, who: &str) -> PluginError {
    PluginError::new(ErrorKind::Unavailable, e.message(who))
}

fn report(actor: String) -> impl FnOnce(&'static str) {
    move |request| warn!(%actor, request, "plugin actor did not answer in time")
}

/// The actor of plugin `name`.
async fn actor(name: &str) -> Result<ActorRef<PluginMsg>, PluginError> {
    if let Some(a) = running(name) {
        return Ok(a);
    }
    let sup = ActorRef::<PluginSupervisorMsg>::where_is(PLUGINS).ok_or_else(|| {
        PluginError::new(
            ErrorKind::Unavailable,
            "the plugin supervisor is restarting; retry",
        )
    })?;
    let mut last = String::new();
    // A plugin actor being restarted answers after a few tries.
    for _ in 0..50 {
        match ask_within(
            &sup,
            |reply| PluginSupervisorMsg::Plugin {
                name: name.to_string(),
                reply,
            },
            report(PLUGINS.into()),
        )
        .await
        {
            Ok(Ok(a)) => return Ok(a),
            Ok(Err(e)) => last = e,
            Err(e) => return Err(unavailable(e, "the plugin supervisor")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(PluginError::new(ErrorKind::Unavailable, last))
}

/// The activated plugin `name`, which must implement `interface`.
pub async fn get(name: &str, interface: &str) -> Result<PluginHandle, PluginError> {
    let mut tries = 0;
    let h = loop {
        let a = actor(name).await?;
        match ask_within(&a, PluginMsg::Get, report(actor_name(name))).await {
            Ok(r) => break r?,
            // Killed while asked: its next incarnation answers.
            Err(AskError::Gone) if tries < 3 => tries += 1,
            Err(e) => return Err(unavailable(e, &actor_name(name))),
        }
    };
    if !h.implements(interface) {
        return Err(PluginError::new(
            ErrorKind::System,
            format!("plugin {name:?} does not implement {interface}: Plugin does not implement the requested driver"),
        ));
    }
    Ok(h)
}

/// Every plugin that has had an actor, by name (the read model: no actor
/// is asked).
pub async fn list() -> Vec<PluginInfo> {
    VIEW.read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect()
}

/// Find and activate `name` once, without an actor (berthd's start checks
/// its `authorization-plugins` before the API serves): the plugin must
/// answer within [`ACTIVATE_WINDOW`] and implement `interface`.
pub async fn probe(port: &dyn PluginPort, name: &str, interface: &str) -> Result<(), String> {
    let (_, implements) = activate(port, name, ACTIVATE_WINDOW).await?;
    if !implements.iter().any(|i| i == interface) {
        return Err(format!(
            "plugin {name:?} does not implement {interface}: Plugin does not implement the requested driver"
        ));
    }
    Ok(())
}
