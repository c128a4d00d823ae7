//! The VolumeActor: one per volume, the only writer of its record.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use tracing::warn;

use super::driver;
use super::supervisor::VolumeSupervisorMsg;
use super::{VolumeError, VolumeIndex, VolumeMsg, VolumeRecord};
use crate::directory::VOLUMES;
use crate::events::Events;
use crate::ports::VolumeHost;
use crate::resave::Unsaved;

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
    /// The last save failed (a full disk): saved again after
    /// [`crate::resave::RESAVE_AFTER`] until it is.
    unsaved: Unsaved,
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

    fn save(&mut self) -> Result<(), VolumeError> {
        self.host
            .save(&self.rec)
            .map_err(|e| VolumeError::System(format!("saving the volume: {e}")))?;
        if self.unsaved.saved() {
            tracing::info!(volume = %self.rec.name, "the volume record is saved again");
        }
        self.publish();
        Ok(())
    }

    /// Save a change that has happened (a user gone, a plugin's new
    /// mountpoint): one the disk refuses is published anyway and saved
    /// again later.
    fn save_or_later(&mut self) {
        if let Err(e) = self.save() {
            if self.unsaved.failed() {
                warn!(volume = %self.rec.name, "{e}; saving again until it is saved");
            }
            self.publish();
        }
    }

    /// Ready for `user`: the local driver's directory (a `device` volume
    /// mounted once), or a plugin's `Mount` for this user (once per user;
    /// the user's ID is the mount ID, so an adopted container's unmount
    /// after a berthd restart names the mount its start made).
    async fn mount(&mut self, user: &str) -> Result<String, VolumeError> {
        if !driver::is_plugin(&self.rec.driver) {
            return self.host.mount(&self.rec).map_err(VolumeError::System);
        }
        if self.rec.active.contains(user) && !self.rec.mountpoint.is_empty() {
            return Ok(self.rec.mountpoint.clone());
        }
        let p = driver::mount(&self.rec.driver, &self.rec.name, user).await?;
        if p != self.rec.mountpoint {
            self.rec.mountpoint = p.clone();
            self.save_or_later();
        }
        Ok(p)
    }

    /// `user` is done with a plugin's volume: its `Unmount`.
    async fn unmount_plugin(&self, user: &str) {
        if !driver::is_plugin(&self.rec.driver) {
            return;
        }
        if let Err(e) = driver::unmount(&self.rec.driver, &self.rec.name, user).await {
            warn!(volume = %self.rec.name, driver = %self.rec.driver, "unmounting: {e}");
        }
    }

    fn event(&self, action: &str) {
        self.events
            .publish("volume", action, &self.rec.name, self.rec.event_attrs());
    }

    async fn remove(&mut self, force: bool) -> Result<(), VolumeError> {
        if !self.rec.users.is_empty() {
            let ids: Vec<&str> = self.rec.users.iter().map(String::as_str).collect();
            return Err(VolumeError::Conflict(format!(
                "remove {}: volume is in use - [{}]",
                self.rec.name,
                ids.join(", ")
            )));
        }
        if driver::is_plugin(&self.rec.driver) {
            match driver::remove(&self.rec.driver, &self.rec.name).await {
                Ok(()) => {}
                Err(e) if force => {
                    warn!(volume = %self.rec.name, driver = %self.rec.driver, "forgetting the volume although its plugin did not remove it: {e}")
                }
                Err(e) => return Err(e),
            }
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
            unsaved: Unsaved::default(),
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
                    // Refused by the disk: not a user (the create fails).
                    let r = st.save();
                    if r.is_err() {
                        st.rec.users.remove(&container);
                    }
                    r
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
                if st.rec.users.remove(&container) {
                    st.save_or_later();
                }
                if st.rec.active.remove(&container) {
                    st.publish();
                    st.unmount_plugin(&container).await;
                }
                if st.rec.users.is_empty() && !driver::is_plugin(&st.rec.driver) {
                    st.host.unmount(&st.rec);
                }
                // Removed before the answer: `rm -v` returns with it gone.
                let mut removed = false;
                if remove_anonymous && st.rec.anonymous && st.rec.users.is_empty() {
                    match st.remove(false).await {
                        Ok(()) => removed = true,
                        Err(e) => {
                            tracing::warn!(volume = %st.rec.name, "removing an anonymous volume: {e}")
                        }
                    }
                }
                let _ = reply.send(Ok(()));
                if removed {
                    if let Some(s) = ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES) {
                        let _ = s.send_message(VolumeSupervisorMsg::Forget(st.rec.name.clone()));
                    }
                    myself.stop(Some("removed".into()));
                }
            }
            VolumeMsg::Mount { user, event, reply } => {
                let r = st.mount(&user).await;
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
                    st.unmount_plugin(&user).await;
                }
                if st.rec.active.is_empty() && !driver::is_plugin(&st.rec.driver) {
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
            VolumeMsg::PluginView { reply } => {
                if !driver::is_plugin(&st.rec.driver) {
                    let _ = reply.send(Ok(None));
                } else {
                    let (d, n) = (st.rec.driver.clone(), st.rec.name.clone());
                    tokio::spawn(async move {
                        let _ = reply.send(driver::get(&d, &n).await.map(Some));
                    });
                }
            }
            VolumeMsg::Remove { force, reply } => {
                let r = st.remove(force).await;
                let ok = r.is_ok();
                let _ = reply.send(r);
                if ok {
                    if let Some(s) = ActorRef::<VolumeSupervisorMsg>::where_is(VOLUMES) {
                        let _ = s.send_message(VolumeSupervisorMsg::Forget(st.rec.name.clone()));
                    }
                    myself.stop(Some("removed".into()));
                }
            }
            VolumeMsg::Resave => {
                if st.unsaved.due() {
                    st.save_or_later();
                }
            }
        }
        st.unsaved.schedule(&myself, || VolumeMsg::Resave);
        Ok(())
    }
}
