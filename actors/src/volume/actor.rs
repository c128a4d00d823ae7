//! The VolumeActor: one per volume, the only writer of its record.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use super::supervisor::VolumeSupervisorMsg;
use super::{VolumeError, VolumeIndex, VolumeMsg, VolumeRecord};
use crate::directory::VOLUMES;
use crate::events::Events;
use crate::ports::VolumeHost;

pub fn actor_name(name: &str) -> String {
    format!("volume:{name}")
}

pub struct VolumeActor;

pub struct VolumeArgs {
    pub record: VolumeRecord,
    pub host: Arc<dyn VolumeHost>,
    pub index: Arc<watch::Sender<Arc<VolumeIndex>>>,
    pub events: Events,
}

pub struct VolumeState {
    rec: VolumeRecord,
    host: Arc<dyn VolumeHost>,
    index: Arc<watch::Sender<Arc<VolumeIndex>>>,
    events: Events,
}

impl VolumeState {
    fn publish(&self) {
        let rec = Arc::new(self.rec.clone());
        self.index.send_modify(|ix| {
            let mut next = (**ix).clone();
            next.by_name.insert(rec.name.clone(), rec);
            *ix = Arc::new(next);
        });
    }

    fn save(&self) -> Result<(), VolumeError> {
        self.host
            .save(&self.rec)
            .map_err(|e| VolumeError::System(format!("saving the volume: {e}")))?;
        self.publish();
        Ok(())
    }

    fn event(&self, action: &str) {
        self.events
            .publish("volume", action, &self.rec.name, self.rec.event_attrs());
    }

    fn remove(&mut self) -> Result<(), VolumeError> {
        if !self.rec.users.is_empty() {
            let ids: Vec<&str> = self.rec.users.iter().map(String::as_str).collect();
            return Err(VolumeError::Conflict(format!(
                "remove {}: volume is in use - [{}]",
                self.rec.name,
                ids.join(", ")
            )));
        }
        self.host.remove(&self.rec).map_err(VolumeError::System)?;
        let name = self.rec.name.clone();
        self.index.send_modify(|ix| {
            let mut next = (**ix).clone();
            next.by_name.remove(&name);
            *ix = Arc::new(next);
        });
        self.event("destroy");
        Ok(())
    }
}

impl Actor for VolumeActor {
    type Msg = VolumeMsg;
    type State = VolumeState;
    type Arguments = VolumeArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<VolumeMsg>,
        a: VolumeArgs,
    ) -> Result<VolumeState, ActorProcessingErr> {
        let st = VolumeState {
            rec: a.record,
            host: a.host,
            index: a.index,
            events: a.events,
        };
        st.publish();
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<VolumeMsg>,
        msg: VolumeMsg,
        st: &mut VolumeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            VolumeMsg::Use { container, reply } => {
                let r = if st.rec.users.insert(container.clone()) {
                    st.save()
                } else {
                    Ok(())
                };
                let _ = reply.send(r);
            }
            VolumeMsg::Release {
                container,
                remove_anonymous,
                reply,
            } => {
                let r = if st.rec.users.remove(&container) {
                    st.save()
                } else {
                    Ok(())
                };
                if st.rec.users.is_empty() {
                    st.host.unmount(&st.rec);
                }
                // Removed before the answer: `rm -v` returns with it gone.
                let mut removed = false;
                if remove_anonymous && st.rec.anonymous && st.rec.users.is_empty() {
                    match st.remove() {
                        Ok(()) => removed = true,
                        Err(e) => {
                            tracing::warn!(volume = %st.rec.name, "removing an anonymous volume: {e}")
                        }
                    }
                }
                let _ = reply.send(r);
                if removed {
                    if let Some(s) = ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES) {
                        let _ = s.send_message(VolumeSupervisorMsg::Forget(st.rec.name.clone()));
                    }
                    myself.stop(Some("removed".into()));
                }
            }
            VolumeMsg::Mount { user, event, reply } => {
                let r = st.host.mount(&st.rec).map_err(VolumeError::System);
                if r.is_ok() {
                    if st.rec.active.insert(user.clone()) {
                        st.publish();
                    }
                    if let Some((destination, rw)) = event {
                        let mut attrs = st.rec.event_attrs();
                        attrs.insert("container".into(), user);
                        attrs.insert("destination".into(), destination);
                        attrs.insert("read/write".into(), rw.to_string());
                        attrs.insert("propagation".into(), String::new());
                        st.events.publish("volume", "mount", &st.rec.name, attrs);
                    }
                }
                let _ = reply.send(r);
            }
            VolumeMsg::Unmount { user, event } => {
                if st.rec.active.remove(&user) {
                    st.publish();
                }
                if st.rec.active.is_empty() {
                    // The last running container stopped: a `device`
                    // volume is unmounted (its next user mounts it again).
                    st.host.unmount(&st.rec);
                }
                if event {
                    let mut attrs = st.rec.event_attrs();
                    attrs.insert("container".into(), user);
                    st.events.publish("volume", "unmount", &st.rec.name, attrs);
                }
            }
            VolumeMsg::Remove { reply } => {
                let r = st.remove();
                let ok = r.is_ok();
                let _ = reply.send(r);
                if ok {
                    if let Some(s) = ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES) {
                        let _ = s.send_message(VolumeSupervisorMsg::Forget(st.rec.name.clone()));
                    }
                    myself.stop(Some("removed".into()));
                }
            }
        }
        Ok(())
    }
}
