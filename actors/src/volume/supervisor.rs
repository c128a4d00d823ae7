//! The VolumeSupervisor: creates volumes (one writer of the name table),
//! restores a VolumeActor per volume at start and rebuilds any that dies.

use std::sync::Arc;
use tracing::warn;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tracing::info;

use super::actor::{actor_name, VolumeActor, VolumeArgs};
use super::{VolumeError, VolumeIndex, VolumeMsg, VolumeRecord};
use crate::directory::VOLUMES;
use crate::events::Events;
use crate::ports::VolumeHost;
use crate::supervisor::ask::{ask_named, ask_named_again, AskError};
use crate::supervisor::keyed::{
    records_to_restore, spawn_child, SpawnFuture, REBUILD_AFTER, RETRY_AFTER,
};
use crate::supervisor::KeyedChildren;

pub struct VolumeSupervisor;

#[derive(Clone)]
pub struct VolumeSupervisorArgs {
    pub host: Arc<dyn VolumeHost>,
    pub index: Arc<watch::Sender<Arc<VolumeIndex>>>,
    pub events: Events,
    pub initial: Arc<std::sync::Mutex<Option<Vec<VolumeRecord>>>>,
}

pub enum VolumeSupervisorMsg {
    /// Create a volume, or answer the existing one of that name (dockerd).
    Create {
        record: Box<VolumeRecord>,
        reply: RpcReplyPort<Result<Arc<VolumeRecord>, VolumeError>>,
    },
    Forget(String),
    /// The volumes of the active volume plugins that have no record here
    /// (made through another daemon): (plugin, the plugin's entry). Asked
    /// on a task of its own: the mailbox does not wait for the plugins.
    Foreign(RpcReplyPort<Result<Vec<(String, serde_json::Value)>, VolumeError>>),
    Rebuild(String),
    /// The actor of this volume did not answer a request in time.
    Unresponsive(String, &'static str),
}

impl crate::supervisor::ask::Request for VolumeSupervisorMsg {
    fn name(&self) -> &'static str {
        match self {
            VolumeSupervisorMsg::Create { .. } => "create",
            VolumeSupervisorMsg::Foreign(_) => "list plugin volumes",
            _ => "internal",
        }
    }
}

pub struct SupervisorState {
    args: VolumeSupervisorArgs,
    children: KeyedChildren,
}

#[derive(Clone)]
pub struct Volumes {
    pub index: watch::Receiver<Arc<VolumeIndex>>,
}

impl Volumes {
    pub fn snapshot(&self) -> Arc<VolumeIndex> {
        self.index.borrow().clone()
    }

    pub fn lookup(&self, name: &str) -> Result<Arc<VolumeRecord>, VolumeError> {
        self.snapshot()
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    pub async fn ask<T: Send + 'static>(
        name: &str,
        msg: impl FnOnce(RpcReplyPort<Result<T, VolumeError>>) -> VolumeMsg,
    ) -> Result<T, VolumeError> {
        let report = |request| {
            if let Some(s) = ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES) {
                let _ = s.cast(VolumeSupervisorMsg::Unresponsive(name.to_string(), request));
            }
        };
        ask_named(&actor_name(name), msg, report)
            .await
            .map_err(|e| ask_error(name, e))?
    }

    /// [`Volumes::ask`] for a request safe to make twice (a remove: the
    /// next incarnation removes what is left): one the actor took and died
    /// with is made again for its next incarnation.
    pub async fn ask_again<T: Send + 'static>(
        name: &str,
        msg: impl Fn(RpcReplyPort<Result<T, VolumeError>>) -> VolumeMsg,
    ) -> Result<T, VolumeError> {
        let report = |request| {
            if let Some(s) = ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES) {
                let _ = s.cast(VolumeSupervisorMsg::Unresponsive(name.to_string(), request));
            }
        };
        ask_named_again(&actor_name(name), msg, report)
            .await
            .map_err(|e| ask_error(name, e))?
    }

    /// Send without waiting (a volume that is gone is left alone).
    pub fn tell(name: &str, msg: VolumeMsg) {
        if let Some(a) = ActorRef::<VolumeMsg>::where_is(actor_name(name)) {
            let _ = a.send_message(msg);
        }
    }

    pub async fn ask_supervisor<T: Send + 'static>(
        msg: impl FnOnce(RpcReplyPort<Result<T, VolumeError>>) -> VolumeSupervisorMsg,
    ) -> Result<T, VolumeError> {
        let report = |request| warn!(%request, "the volume supervisor did not answer in time");
        ask_named(VOLUMES, msg, report).await.map_err(|e| match e {
            AskError::Gone => VolumeError::Unavailable,
            e => VolumeError::Timeout(e.message("the volume supervisor")),
        })?
    }
}

fn ask_error(name: &str, e: AskError) -> VolumeError {
    match e {
        AskError::Gone => VolumeError::Unavailable,
        e => VolumeError::Timeout(e.message(&format!("the actor of volume {name}"))),
    }
}

impl SupervisorState {
    fn args_for(&self, record: VolumeRecord) -> VolumeArgs {
        VolumeArgs {
            record,
            host: self.args.host.clone(),
            index: self.args.index.clone(),
            events: self.args.events.clone(),
        }
    }
}

/// A create that failed after a volume plugin made the volume: it goes
/// again at the plugin (best effort).
async fn undo_plugin(rec: &VolumeRecord) {
    if super::driver::is_plugin(&rec.driver) {
        if let Err(e) = super::driver::remove(&rec.driver, &rec.name).await {
            warn!(volume = %rec.name, "undoing the plugin's volume: {e}");
        }
    }
}

fn spawn(cell: ActorCell, args: VolumeArgs) -> SpawnFuture {
    spawn_child(actor_name(&args.record.name), VolumeActor, args, cell)
}

fn rebuild_later(myself: &ActorRef<VolumeSupervisorMsg>, name: String, after: std::time::Duration) {
    myself.send_after(after, move || VolumeSupervisorMsg::Rebuild(name));
}

impl Actor for VolumeSupervisor {
    type Msg = VolumeSupervisorMsg;
    type State = SupervisorState;
    type Arguments = VolumeSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<VolumeSupervisorMsg>,
        args: VolumeSupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut st = SupervisorState {
            args,
            children: KeyedChildren::new("volume"),
        };
        let index = st.args.index.clone();
        let (records, _) = records_to_restore(
            "volume",
            &st.args.initial,
            || {
                index
                    .borrow()
                    .by_name
                    .keys()
                    .map(|n| actor_name(n))
                    .collect()
            },
            || {
                index
                    .borrow()
                    .by_name
                    .values()
                    .map(|r| (**r).clone())
                    .collect()
            },
        )
        .await;
        st.args.index.send_replace(Arc::new(VolumeIndex {
            by_name: records
                .iter()
                .map(|r| (r.name.clone(), Arc::new(r.clone())))
                .collect(),
        }));
        let spawns: Vec<_> = records
            .into_iter()
            .map(|r| (r.name.clone(), spawn(myself.get_cell(), st.args_for(r))))
            .collect();
        let n = spawns.len();
        for name in st.children.restore(spawns).await {
            rebuild_later(&myself, name, RETRY_AFTER);
        }
        if n > 0 {
            info!(volumes = n, "volumes restored");
        }
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<VolumeSupervisorMsg>,
        msg: VolumeSupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            VolumeSupervisorMsg::Create { mut record, reply } => {
                let existing = st.args.index.borrow().by_name.get(&record.name).cloned();
                if let Some(v) = existing {
                    // No driver named: whichever made it.
                    let r = if v.driver == record.driver || record.driver.is_empty() {
                        Ok(v)
                    } else {
                        Err(VolumeError::Conflict(format!(
                            "create {}: volume name must be unique",
                            record.name
                        )))
                    };
                    let _ = reply.send(r);
                    return Ok(());
                }
                if record.driver.is_empty() {
                    record.driver = super::driver::LOCAL.into();
                }
                if super::driver::is_plugin(&record.driver) {
                    // The plugin makes it first; its record is ours.
                    if let Err(e) =
                        super::driver::create(&record.driver, &record.name, &record.options).await
                    {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                    record.scope = super::driver::scope(&record.driver).await;
                    record.mountpoint.clear();
                }
                if let Err(e) = st.args.host.create(&record) {
                    undo_plugin(&record).await;
                    let _ = reply.send(Err(VolumeError::System(e)));
                    return Ok(());
                }
                crate::failpoint::hit("volume-create:dir");
                if let Err(e) = st.args.host.save(&record) {
                    let _ = st.args.host.remove(&record);
                    undo_plugin(&record).await;
                    let _ = reply.send(Err(VolumeError::System(format!("saving the volume: {e}"))));
                    return Ok(());
                }
                crate::failpoint::hit("volume-create:saved");
                let rec = Arc::new((*record).clone());
                st.args.index.send_modify(|ix| {
                    let mut next = (**ix).clone();
                    next.by_name.insert(rec.name.clone(), rec.clone());
                    *ix = Arc::new(next);
                });
                match st
                    .children
                    .start(&rec.name, spawn(myself.get_cell(), st.args_for(*record)))
                    .await
                {
                    Ok(()) => {
                        st.args
                            .events
                            .publish("volume", "create", &rec.name, rec.event_attrs());
                        let _ = reply.send(Ok(rec));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(VolumeError::System(e)));
                    }
                }
            }
            VolumeSupervisorMsg::Forget(name) => st.children.forget(&name),
            VolumeSupervisorMsg::Foreign(reply) => {
                let index = st.args.index.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for p in super::driver::active_plugins().await {
                        match super::driver::list(&p).await {
                            Ok(vols) => {
                                let known = index.borrow().clone();
                                out.extend(vols.into_iter().filter_map(|v| {
                                    let name = v["Name"].as_str()?;
                                    (!known.by_name.contains_key(name)).then(|| (p.clone(), v))
                                }))
                            }
                            Err(e) => warn!(plugin = %p, "listing its volumes: {e}"),
                        }
                    }
                    let _ = reply.send(Ok(out));
                });
            }
            VolumeSupervisorMsg::Unresponsive(name, request) => {
                warn!(volume = %name, %request, "the volume's actor did not answer in time");
            }
            VolumeSupervisorMsg::Rebuild(name) => {
                let rec = st.args.index.borrow().by_name.get(&name).cloned();
                let a = rec.map(|rec| spawn(myself.get_cell(), st.args_for((*rec).clone())));
                st.children
                    .rebuild(name, a, |name| rebuild_later(&myself, name, RETRY_AFTER))
                    .await;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<VolumeSupervisorMsg>,
        ev: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let index = &st.args.index;
        if let Some(name) = st
            .children
            .exited(&ev, |name| index.borrow().by_name.contains_key(name))
        {
            rebuild_later(&myself, name, REBUILD_AFTER);
        }
        Ok(())
    }
}
