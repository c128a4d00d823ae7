//! The ContainerSupervisor: owns the name table, spawns a ContainerActor
//! per container (in parallel at berthd start) and rebuilds any that dies
//! from its last record, adopting the running container: a restart of the
//! actor never restarts the container.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tracing::{info, warn};

use super::actor::{actor_name, publish_counts, ContainerActor, ContainerArgs};
use super::index::ContainerIndex;
use super::model::ContainerRecord;
use super::{ContainerError, ContainerMsg};
use crate::directory::CONTAINERS;
use crate::events::Events;
use crate::ports::ContainerHost;
use crate::supervisor::ask::{ask_named, ask_named_again, AskError};
use crate::supervisor::keyed::{
    records_to_restore, spawn_child, SpawnFuture, REBUILD_AFTER, REBUILD_WINDOW, RETRY_AFTER,
};
use crate::supervisor::KeyedChildren;
use crate::view::ViewPublisher;

pub struct ContainerSupervisor;

/// A supervisor of what containers serve beside their actors (the
/// ExecSupervisor, the LogSupervisor), started under the
/// ContainerSupervisor: its registry name and how to spawn it linked.
#[derive(Clone)]
pub struct Service {
    pub name: &'static str,
    pub spawn: Arc<dyn Fn(ActorCell) -> SpawnFuture + Send + Sync>,
}

/// Rebuilds of a service allowed per window before the ContainerSupervisor
/// fails (its parent restarts it, and it starts the service again).
const SERVICE_REBUILDS: usize = 10;

#[derive(Clone)]
pub struct ContainerSupervisorArgs {
    pub host: Arc<dyn ContainerHost>,
    pub index: Arc<watch::Sender<Arc<ContainerIndex>>>,
    /// The networks' read model.
    pub networks: crate::network::Networks,
    pub events: Events,
    pub view: ViewPublisher,
    /// Records read from disk at berthd start (first incarnation only).
    pub initial: Arc<std::sync::Mutex<Option<Vec<ContainerRecord>>>>,
    pub live_restore: bool,
    /// Started before the containers' actors, rebuilt when they die.
    pub services: Vec<Service>,
}

pub enum SupervisorMsg {
    /// Register a new container (reserving its name) and start its actor.
    Create {
        record: Box<ContainerRecord>,
        /// The volumes its mounts name (made if missing), in mount order.
        volumes: Vec<crate::volume::VolumeRecord>,
        reply: RpcReplyPort<Result<(), ContainerError>>,
    },
    /// Internal: a create's preparation ended.
    Prepared {
        record: Box<ContainerRecord>,
        made: Result<super::create::Made, ContainerError>,
        reply: RpcReplyPort<Result<(), ContainerError>>,
    },
    Rename {
        id: String,
        name: String,
        reply: RpcReplyPort<Result<(), ContainerError>>,
    },
    /// The container was removed: its actor stops for good.
    Forget(String),
    /// Rebuild the actor of a container.
    Rebuild(String),
    /// Start a service again (by its name).
    RebuildService(String),
    /// IDs of the containers whose actor runs.
    List(RpcReplyPort<Vec<String>>),
    /// The actor of this container did not answer a request in time.
    Unresponsive(String, &'static str),
}

impl crate::supervisor::ask::Request for SupervisorMsg {
    fn name(&self) -> &'static str {
        match self {
            SupervisorMsg::Create { .. } => "create",
            SupervisorMsg::Rename { .. } => "rename",
            SupervisorMsg::List(_) => "list",
            _ => "internal",
        }
    }
}

pub struct SupervisorState {
    args: ContainerSupervisorArgs,
    children: KeyedChildren,
    services: KeyedChildren,
    /// Names of containers being created (name → ID).
    reserved: BTreeMap<String, String>,
}

/// Handle for callers: the read model and the actors.
#[derive(Clone)]
pub struct Containers {
    pub index: watch::Receiver<Arc<ContainerIndex>>,
}

impl Containers {
    pub fn snapshot(&self) -> Arc<ContainerIndex> {
        self.index.borrow().clone()
    }

    pub fn lookup(&self, name: &str) -> Result<Arc<ContainerRecord>, ContainerError> {
        self.snapshot().lookup(name)
    }

    pub fn supervisor() -> Option<ActorRef<SupervisorMsg>> {
        ActorRef::where_is(CONTAINERS)
    }

    pub fn actor(id: &str) -> Result<ActorRef<ContainerMsg>, ContainerError> {
        ActorRef::where_is(actor_name(id)).ok_or(ContainerError::Unavailable)
    }

    /// Ask a container's actor; one being restarted is waited for.
    pub async fn ask<T: Send + 'static>(
        id: &str,
        msg: impl FnOnce(RpcReplyPort<Result<T, ContainerError>>) -> ContainerMsg,
    ) -> Result<T, ContainerError> {
        let report = |request| {
            if let Some(s) = Self::supervisor() {
                let _ = s.cast(SupervisorMsg::Unresponsive(id.to_string(), request));
            }
        };
        ask_named(&actor_name(id), msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => ContainerError::Unavailable,
                e => ContainerError::Timeout(e.message(&format!("the actor of container {id}"))),
            })?
    }

    /// [`Containers::ask`] for a request safe to make twice (a read, a
    /// start answered "already started", a stop answered "already
    /// stopped"): one the actor took and died with is made again for its
    /// next incarnation.
    pub async fn ask_again<T: Send + 'static>(
        id: &str,
        msg: impl Fn(RpcReplyPort<Result<T, ContainerError>>) -> ContainerMsg,
    ) -> Result<T, ContainerError> {
        let report = |request| {
            if let Some(s) = Self::supervisor() {
                let _ = s.cast(SupervisorMsg::Unresponsive(id.to_string(), request));
            }
        };
        ask_named_again(&actor_name(id), msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => ContainerError::Unavailable,
                e => ContainerError::Timeout(e.message(&format!("the actor of container {id}"))),
            })?
    }

    /// [`Containers::ask_supervisor`] for a request safe to make twice
    /// (a create: its record carries the container's ID, and a second
    /// making that finds it created answers as the first).
    pub async fn ask_supervisor_again<T: Send + 'static>(
        msg: impl Fn(RpcReplyPort<Result<T, ContainerError>>) -> SupervisorMsg,
    ) -> Result<T, ContainerError> {
        let report = |request| warn!(%request, "the container supervisor did not answer in time");
        ask_named_again(CONTAINERS, msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => ContainerError::Unavailable,
                e => ContainerError::Timeout(e.message("the container supervisor")),
            })?
    }

    pub async fn ask_supervisor<T: Send + 'static>(
        msg: impl FnOnce(RpcReplyPort<Result<T, ContainerError>>) -> SupervisorMsg,
    ) -> Result<T, ContainerError> {
        let report = |request| warn!(%request, "the container supervisor did not answer in time");
        ask_named(CONTAINERS, msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => ContainerError::Unavailable,
                e => ContainerError::Timeout(e.message("the container supervisor")),
            })?
    }
}

/// Names as dockerd accepts them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl SupervisorState {
    fn args_for(&self, record: ContainerRecord, adopt: bool, autostart: bool) -> ContainerArgs {
        ContainerArgs {
            record,
            host: self.args.host.clone(),
            index: self.args.index.clone(),
            networks: self.args.networks.clone(),
            events: self.args.events.clone(),
            view: self.args.view.clone(),
            adopt,
            autostart,
        }
    }

    fn name_taken(&self, name: &str) -> Option<String> {
        self.args
            .index
            .borrow()
            .names
            .get(name)
            .or_else(|| self.reserved.get(name))
            .cloned()
    }
}

fn spawn(cell: ActorCell, args: ContainerArgs) -> SpawnFuture {
    spawn_child(actor_name(&args.record.id), ContainerActor, args, cell)
}

fn rebuild_later(myself: &ActorRef<SupervisorMsg>, id: String, after: std::time::Duration) {
    myself.send_after(after, move || SupervisorMsg::Rebuild(id));
}

impl Actor for ContainerSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = ContainerSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: ContainerSupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut st = SupervisorState {
            args,
            children: KeyedChildren::new("container"),
            services: KeyedChildren::with_limit("service", SERVICE_REBUILDS, REBUILD_WINDOW),
            reserved: BTreeMap::new(),
        };
        // Services first: exec and log requests are served as soon as the
        // front door opens. A name still held by the previous incarnation's
        // service is retried.
        let spawns = st
            .args
            .services
            .iter()
            .map(|s| (s.name.to_string(), (s.spawn)(myself.get_cell())))
            .collect();
        for name in st.services.restore(spawns).await {
            myself.send_after(RETRY_AFTER, move || SupervisorMsg::RebuildService(name));
        }
        // First start: records from disk. A restart of this supervisor:
        // the records in the read model (the actors died with it).
        // (A removal in flight unpublishes its record before it is gone.)
        let index = st.args.index.clone();
        let (records, first) = records_to_restore(
            "container",
            &st.args.initial,
            || {
                index
                    .borrow()
                    .by_id
                    .keys()
                    .map(|id| actor_name(id))
                    .collect()
            },
            || {
                index
                    .borrow()
                    .by_id
                    .values()
                    .map(|r| (**r).clone())
                    .collect()
            },
        )
        .await;
        let mut names = BTreeMap::new();
        let mut by_id = BTreeMap::new();
        for r in records {
            if let Some(other) = names.insert(r.short_name().to_string(), r.id.clone()) {
                warn!(id = %r.id, other = %other, "two containers share the name {}; keeping both records", r.name);
            }
            by_id.insert(r.id.clone(), Arc::new(r));
        }
        let removed = st.args.index.borrow().removed.clone();
        st.args.index.send_replace(Arc::new(ContainerIndex {
            by_id: by_id.clone(),
            names,
            removed,
        }));
        publish_counts(&st.args.index, &st.args.view);
        let started = Instant::now();
        let adopt = st.args.live_restore || !first;
        let spawns: Vec<_> = by_id
            .values()
            .map(|r| {
                let a = st.args_for((**r).clone(), adopt, first);
                (r.id.clone(), spawn(myself.get_cell(), a))
            })
            .collect();
        let n = spawns.len();
        for id in st.children.restore(spawns).await {
            rebuild_later(&myself, id, RETRY_AFTER);
        }
        if n > 0 {
            info!(
                containers = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "containers restored"
            );
        }
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Create {
                record,
                volumes,
                reply,
            } => {
                let name = record.short_name().to_string();
                // Made again after the first making's answer was lost with
                // this supervisor's last incarnation: that container is it.
                if st.args.index.borrow().by_id.contains_key(&record.id) {
                    let _ = reply.send(Ok(()));
                    return Ok(());
                }
                if let Some(other) = st.name_taken(&name) {
                    let _ = reply.send(Err(ContainerError::Conflict(format!(
                        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    ))));
                    return Ok(());
                }
                // The name is held while the storage, files and volumes are
                // prepared beside the mailbox.
                st.reserved.insert(name, record.id.clone());
                let (host, me) = (st.args.host.clone(), myself.clone());
                tokio::spawn(async move {
                    let made = super::create::prepare(&host, &record, volumes).await;
                    let msg = SupervisorMsg::Prepared {
                        record,
                        made,
                        reply,
                    };
                    // The supervisor died meanwhile: nothing is left behind,
                    // and the reply is dropped unanswered so the request is
                    // made again to the next incarnation (a create is safe
                    // to make twice).
                    if let Err(ractor::MessagingErr::SendErr(SupervisorMsg::Prepared {
                        record,
                        made,
                        reply,
                    })) = me.send_message(msg)
                    {
                        if let Ok(made) = made {
                            super::create::undo(&host, &record, made).await;
                        }
                        drop(reply);
                    }
                });
            }
            SupervisorMsg::Prepared {
                record,
                made,
                reply,
            } => {
                let name = record.short_name().to_string();
                st.reserved.remove(&name);
                let made = match made {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                };
                let id = record.id.clone();
                st.args.index.send_modify(|ix| {
                    let mut next = (**ix).clone();
                    next.names.insert(name.clone(), id.clone());
                    next.by_id.insert(id.clone(), Arc::new((*record).clone()));
                    *ix = Arc::new(next);
                });
                let a = st.args_for((*record).clone(), true, false);
                match st.children.start(&id, spawn(myself.get_cell(), a)).await {
                    Ok(()) => {
                        // Listed now: the record holds its image from here.
                        crate::image::Images::unclaim(&id);
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        // The same cleanup as a failed preparation.
                        st.args.index.send_modify(|ix| {
                            let mut next = (**ix).clone();
                            next.names.remove(&name);
                            next.by_id.remove(&id);
                            *ix = Arc::new(next);
                        });
                        let host = st.args.host.clone();
                        tokio::spawn(async move {
                            super::create::undo(&host, &record, made).await;
                            let _ = reply.send(Err(ContainerError::System(e)));
                        });
                    }
                }
            }
            SupervisorMsg::Rename { id, name, reply } => {
                if !valid_name(&name) {
                    let _ = reply.send(Err(ContainerError::Invalid(format!(
                        "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    ))));
                    return Ok(());
                }
                let old = st
                    .args
                    .index
                    .borrow()
                    .by_id
                    .get(&id)
                    .map(|r| r.short_name().to_string());
                let Some(old) = old else {
                    let _ = reply.send(Err(ContainerError::NotFound(id)));
                    return Ok(());
                };
                if old == name {
                    let _ = reply.send(Err(ContainerError::Invalid(
                        "Renaming a container with the same name as its current name".into(),
                    )));
                    return Ok(());
                }
                if let Some(other) = st.name_taken(&name) {
                    let _ = reply.send(Err(ContainerError::Conflict(format!(
                        "Error when allocating new name: Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    ))));
                    return Ok(());
                }
                st.args.index.send_modify(|ix| {
                    let mut next = (**ix).clone();
                    next.names.remove(&old);
                    next.names.insert(name.clone(), id.clone());
                    *ix = Arc::new(next);
                });
                let r = Containers::ask(&id, |r| ContainerMsg::SetName(name.clone(), r)).await;
                if r.is_err() {
                    // Undo the reservation.
                    st.args.index.send_modify(|ix| {
                        let mut next = (**ix).clone();
                        next.names.remove(&name);
                        next.names.insert(old.clone(), id.clone());
                        *ix = Arc::new(next);
                    });
                }
                let _ = reply.send(r);
            }
            SupervisorMsg::Forget(id) => st.children.forget(&id),
            SupervisorMsg::Unresponsive(id, request) => {
                warn!(container = %id, %request, "the container's actor did not answer in time");
            }
            SupervisorMsg::Rebuild(id) => {
                let rec = st.args.index.borrow().by_id.get(&id).cloned();
                let a = rec
                    .map(|rec| spawn(myself.get_cell(), st.args_for((*rec).clone(), true, false)));
                st.children
                    .rebuild(id, a, |id| rebuild_later(&myself, id, RETRY_AFTER))
                    .await;
            }
            SupervisorMsg::RebuildService(name) => {
                let spawn = st
                    .args
                    .services
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| (s.spawn)(myself.get_cell()));
                let me = myself.clone();
                st.services
                    .rebuild(name, spawn, move |name| {
                        me.send_after(RETRY_AFTER, move || SupervisorMsg::RebuildService(name));
                    })
                    .await;
            }
            SupervisorMsg::List(reply) => {
                let _ = reply.send(st.children.keys());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        ev: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let index = &st.args.index;
        if let Some(id) = st
            .children
            .exited(&ev, |id| index.borrow().by_id.contains_key(id))
        {
            rebuild_later(&myself, id, REBUILD_AFTER);
        }
        let service = match &ev {
            SupervisionEvent::ActorTerminated(c, ..) | SupervisionEvent::ActorFailed(c, _) => {
                st.services.key_of(&c.get_id())
            }
            _ => None,
        };
        if let Some(name) = service {
            // At once: a service's facts (exec records, log sessions) are
            // outside it. One that keeps failing fails this supervisor.
            match st.services.exited(&ev, |_| true) {
                Some(name) => myself.send_message(SupervisorMsg::RebuildService(name))?,
                None => return Err(format!("the {name} service keeps failing").into()),
            }
        }
        Ok(())
    }
}
