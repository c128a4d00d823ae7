//! The VolumeSupervisor: creates volumes (one writer of the name table),
//! restores a VolumeActor per volume at start and rebuilds any that dies.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::actor::{actor_name, VolumeActor, VolumeArgs};
use super::{VolumeError, VolumeIndex, VolumeMsg, VolumeRecord};
use crate::directory::VOLUMES;
use crate::events::Events;
use crate::ports::VolumeHost;

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
    Rebuild(String),
}

pub struct SupervisorState {
    args: VolumeSupervisorArgs,
    actors: HashMap<ractor::ActorId, String>,
    forgotten: HashSet<String>,
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
        let a =
            ActorRef::<VolumeMsg>::where_is(actor_name(name)).ok_or(VolumeError::Unavailable)?;
        match a.call(msg, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => Err(VolumeError::Unavailable),
        }
    }

    pub async fn ask_supervisor<T: Send + 'static>(
        msg: impl FnOnce(RpcReplyPort<Result<T, VolumeError>>) -> VolumeSupervisorMsg,
    ) -> Result<T, VolumeError> {
        let s =
            ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES).ok_or(VolumeError::Unavailable)?;
        match s.call(msg, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => Err(VolumeError::Unavailable),
        }
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

async fn spawn(cell: ActorCell, args: VolumeArgs) -> Result<(ractor::ActorId, String), String> {
    let name = args.record.name.clone();
    let (a, _) = Actor::spawn_linked(Some(actor_name(&name)), VolumeActor, args, cell)
        .await
        .map_err(|e| format!("volume {name}: {e}"))?;
    Ok((a.get_id(), name))
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
            actors: HashMap::new(),
            forgotten: HashSet::new(),
        };
        let records: Vec<VolumeRecord> = match st
            .args
            .initial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(r) => r,
            None => st
                .args
                .index
                .borrow()
                .by_name
                .values()
                .map(|r| (**r).clone())
                .collect(),
        };
        st.args.index.send_replace(Arc::new(VolumeIndex {
            by_name: records
                .iter()
                .map(|r| (r.name.clone(), Arc::new(r.clone())))
                .collect(),
        }));
        let mut tasks = Vec::new();
        for r in records {
            tasks.push(tokio::spawn(spawn(myself.get_cell(), st.args_for(r))));
        }
        let n = tasks.len();
        for t in tasks {
            match t.await {
                Ok(Ok((aid, name))) => {
                    st.actors.insert(aid, name);
                }
                Ok(Err(e)) => error!("restoring: {e}"),
                Err(e) => error!("restoring: {e}"),
            }
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
            VolumeSupervisorMsg::Create { record, reply } => {
                let existing = st.args.index.borrow().by_name.get(&record.name).cloned();
                if let Some(v) = existing {
                    let r = if v.driver == record.driver {
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
                if let Err(e) = st.args.host.create(&record) {
                    let _ = reply.send(Err(VolumeError::System(e)));
                    return Ok(());
                }
                if let Err(e) = st.args.host.save(&record) {
                    let _ = st.args.host.remove(&record);
                    let _ = reply.send(Err(VolumeError::System(format!("saving the volume: {e}"))));
                    return Ok(());
                }
                let rec = Arc::new((*record).clone());
                st.args.index.send_modify(|ix| {
                    let mut next = (**ix).clone();
                    next.by_name.insert(rec.name.clone(), rec.clone());
                    *ix = Arc::new(next);
                });
                match spawn(myself.get_cell(), st.args_for(*record)).await {
                    Ok((aid, name)) => {
                        st.actors.insert(aid, name);
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
            VolumeSupervisorMsg::Forget(name) => {
                st.forgotten.insert(name);
            }
            VolumeSupervisorMsg::Rebuild(name) => {
                let rec = st.args.index.borrow().by_name.get(&name).cloned();
                if let (Some(rec), false) = (rec, st.forgotten.contains(&name)) {
                    match spawn(myself.get_cell(), st.args_for((*rec).clone())).await {
                        Ok((aid, name)) => {
                            st.actors.insert(aid, name);
                        }
                        Err(e) => {
                            error!("rebuilding: {e}");
                            myself.send_after(Duration::from_millis(200), move || {
                                VolumeSupervisorMsg::Rebuild(name)
                            });
                        }
                    }
                }
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
        let cell = match &ev {
            SupervisionEvent::ActorTerminated(c, _, _) => c.clone(),
            SupervisionEvent::ActorFailed(c, _) => c.clone(),
            _ => return Ok(()),
        };
        let Some(name) = st.actors.remove(&cell.get_id()) else {
            return Ok(());
        };
        if st.forgotten.remove(&name) || !st.args.index.borrow().by_name.contains_key(&name) {
            return Ok(());
        }
        warn!(%name, "volume actor stopped; rebuilding it from its record");
        myself.send_after(Duration::from_millis(20), move || {
            VolumeSupervisorMsg::Rebuild(name)
        });
        Ok(())
    }
}
