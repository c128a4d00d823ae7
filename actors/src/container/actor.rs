//! The ContainerActor: one per container, the only writer of its record.
//! Its start rebuilds from the record and the shim (never restarting the
//! container); every verb lives in its own file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tracing::{info, warn};

use super::index::ContainerIndex;
use super::model::ContainerRecord;
use super::restart_policy::{self, Backoff};
use super::state::Status;
use super::wait::{WaitCondition, WaitOutcome};
use super::{ContainerError, ContainerMsg, Reply};
use crate::events::Events;
use crate::ports::{ContainerHost, ShimCallError};
use crate::protocol::shim::{ExitStatus, Request, ShimStatus};
use crate::resave::Unsaved;
use crate::view::ViewPublisher;

/// Registry name of a container's actor.
pub fn actor_name(id: &str) -> String {
    format!("container:{id}")
}

pub struct ContainerActor;

pub struct ContainerArgs {
    pub record: ContainerRecord,
    pub host: Arc<dyn ContainerHost>,
    pub index: Arc<watch::Sender<Arc<ContainerIndex>>>,
    /// The networks' read model (their actors are asked by ID).
    pub networks: crate::network::Networks,
    pub events: Events,
    pub view: ViewPublisher,
    /// Adopt a running container (live-restore, actor restart); otherwise a
    /// container found running is killed (berthd started without
    /// live-restore after a crash).
    pub adopt: bool,
    /// Start the container if its restart policy says so (berthd start).
    pub autostart: bool,
}

/// How long a kill with SIGKILL waits for the exit before it answers.
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

pub struct ContainerState {
    pub(super) rec: ContainerRecord,
    pub(super) host: Arc<dyn ContainerHost>,
    pub(super) index: Arc<watch::Sender<Arc<ContainerIndex>>>,
    pub(super) networks: crate::network::Networks,
    pub(super) events: Events,
    view: ViewPublisher,
    /// Incarnation: bumped by every start, so late messages of an older
    /// incarnation (exit, timers) are ignored.
    pub(super) gen: u64,
    pub(super) waiters: Vec<(WaitCondition, ractor::RpcReplyPort<WaitOutcome>)>,
    pub(super) stopping: Vec<Reply<()>>,
    /// Kills with SIGKILL, answered at the exit (as dockerd, so a client
    /// that kills then inspects or removes sees the container stopped).
    pub(super) killing: Vec<Reply<()>>,
    pub(super) remove_after_exit: Option<Reply<()>>,
    /// The pending removal takes the anonymous volumes along (`rm -v`).
    pub(super) remove_volumes: bool,
    /// Its volumes are mounted for a run (unmounted once after it).
    pub(super) volumes_mounted: bool,
    pub(super) backoff: Backoff,
    pub(super) started: Instant,
    wait_task: Option<tokio::task::JoinHandle<()>>,
    /// Follows the shim's healthcheck (`health.rs`).
    pub(super) health_task: Option<tokio::task::JoinHandle<()>>,
    /// The last healthcheck report handled (events are its differences).
    pub(super) health_seen: Option<crate::protocol::shim::HealthReport>,
    /// The record's last save failed (a full disk): it is saved again after
    /// the next change, or [`crate::resave::RESAVE_AFTER`] at the latest.
    unsaved: Unsaved,
}

impl Drop for ContainerState {
    fn drop(&mut self) {
        for t in [self.wait_task.take(), self.health_task.take()]
            .into_iter()
            .flatten()
        {
            t.abort();
        }
    }
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ContainerState {
    /// Persist the record, then publish it.
    pub(super) fn save(&mut self) {
        match self.host.save(&self.rec) {
            Err(e) => {
                if self.unsaved.failed() {
                    warn!(id = %self.rec.id, "saving the container record: {e}; saving again until it is saved");
                }
            }
            Ok(()) => {
                if self.unsaved.saved() {
                    info!(id = %self.rec.id, "the container record is saved again");
                }
            }
        }
        self.publish();
    }

    pub(super) fn publish(&self) {
        let rec = Arc::new(self.rec.clone());
        self.index.send_modify(|ix| {
            let mut next = (**ix).clone();
            next.by_id.insert(rec.id.clone(), rec);
            *ix = Arc::new(next);
        });
        publish_counts(&self.index, &self.view);
    }

    /// Drop the record and its name from the read model.
    pub(super) fn unpublish(&self) {
        let (id, name) = (self.rec.id.clone(), self.rec.short_name().to_string());
        let code = self.rec.state.exit_code;
        self.index.send_modify(|ix| {
            let mut next = (**ix).clone();
            next.by_id.remove(&id);
            next.note_removed(&id, code);
            if next.names.get(&name) == Some(&id) {
                next.names.remove(&name);
            }
            *ix = Arc::new(next);
        });
        publish_counts(&self.index, &self.view);
    }

    pub(super) fn event(&self, action: &str, extra: &[(&str, String)]) {
        let mut attrs = self.rec.event_attrs();
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events
            .publish("container", action, &self.rec.id, attrs);
    }

    pub(super) fn status(&self) -> Status {
        self.rec.state.status
    }

    /// Follow the shim until it reports the exit of incarnation `gen`.
    pub(super) fn watch_exit(&mut self, myself: &ActorRef<ContainerMsg>) {
        if let Some(t) = self.wait_task.take() {
            t.abort();
        }
        let (host, id, gen, me) = (
            self.host.clone(),
            self.rec.id.clone(),
            self.gen,
            myself.clone(),
        );
        self.wait_task = Some(tokio::spawn(async move {
            let exit = loop {
                match host.call(&id, Request::Wait).await {
                    Ok(r) => {
                        if let Some(e) = r.exit {
                            break e;
                        }
                    }
                    Err(ShimCallError::Gone(_)) => break lost_exit(&*host, &id),
                    Err(ShimCallError::Failed(e)) => {
                        warn!(%id, "waiting for the container: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            let _ = me.cast(ContainerMsg::Exited { gen, exit });
        }));
    }

    /// The container exited: record it, tell the waiters, apply the policy.
    pub(super) async fn on_exit(&mut self, myself: &ActorRef<ContainerMsg>, exit: ExitStatus) {
        if !self.status().is_live() && self.status() != Status::Removing {
            return;
        }
        self.wait_task = None;
        crate::failpoint::hit("container-exit:read");
        let s = &mut self.rec.state;
        s.status = Status::Exited;
        s.exit_code = exit.code;
        s.finished_at = exit.exited_at.clone();
        s.oom_killed = exit.oom_killed;
        s.pid = 0;
        s.shim_pid = 0;
        // Saved before the shim is told it may go (and take its exit file
        // along): an actor killed in between finds the exit in the record.
        self.save();
        crate::failpoint::hit("container-exit:saved");
        let _ = self.host.call(&self.rec.id, Request::AckExit).await;
        self.host.release(&self.rec);
        self.unmount_volumes();
        self.network_down().await;
        if exit.oom_killed {
            self.event("oom", &[]);
        }
        self.event("die", &[("exitCode", exit.code.to_string())]);
        if !self.stopping.is_empty() {
            self.event("stop", &[]);
        }
        let outcome = WaitOutcome::exited(exit.code);
        if let Some(reply) = self.remove_after_exit.take() {
            let r = self.destroy(myself).await;
            self.answer_exit(&outcome);
            let _ = reply.send(r);
            return;
        }
        let (policy, max) = self.rec.restart_policy();
        let restart = restart_policy::should_restart(
            &policy,
            max,
            self.rec.restart_count,
            exit.code,
            self.rec.state.manually_stopped,
        );
        if restart {
            let delay = self.backoff.next(self.started.elapsed());
            self.rec.state.status = Status::Restarting;
            self.save();
            self.answer_exit(&outcome);
            let gen = self.gen;
            myself.send_after(delay, move || ContainerMsg::RestartNow { gen });
            return;
        }
        self.save();
        self.answer_exit(&outcome);
        if self.rec.auto_remove() {
            let _ = self.destroy(myself).await;
        }
    }

    /// After the exit is recorded (so a client that reads the container
    /// next sees it stopped): answer stops, SIGKILLs and exit waits.
    fn answer_exit(&mut self, outcome: &WaitOutcome) {
        for r in self.stopping.drain(..).chain(self.killing.drain(..)) {
            let _ = r.send(Ok(()));
        }
        self.answer_waiters(|c| c != WaitCondition::Removed, outcome);
    }

    pub(super) fn answer_waiters(
        &mut self,
        pick: impl Fn(WaitCondition) -> bool,
        outcome: &WaitOutcome,
    ) {
        let (now, later): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(|(c, _)| pick(*c));
        self.waiters = later;
        for (_, r) in now {
            let _ = r.send(outcome.clone());
        }
    }
}

/// No answer from the shim: the exit file if it wrote one, else 255 now.
fn lost_exit(host: &dyn ContainerHost, id: &str) -> ExitStatus {
    host.exit_file(id).unwrap_or_else(|| {
        warn!(%id, "the container's shim is gone without an exit file; recording exit code 255");
        ExitStatus {
            code: 255,
            exited_at: now(),
            oom_killed: false,
        }
    })
}

/// Recount the containers per status for `info` and `system df`.
pub(super) fn publish_counts(index: &watch::Sender<Arc<ContainerIndex>>, view: &ViewPublisher) {
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    for r in index.borrow().by_id.values() {
        match r.state.status {
            Status::Running | Status::Restarting => running += 1,
            Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    view.update(|s| {
        s.containers_running = running;
        s.containers_paused = paused;
        s.containers_stopped = stopped;
    });
}

impl Actor for ContainerActor {
    type Msg = ContainerMsg;
    type State = ContainerState;
    type Arguments = ContainerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ContainerMsg>,
        a: ContainerArgs,
    ) -> Result<ContainerState, ActorProcessingErr> {
        let volumes_mounted = a.record.state.status.is_live();
        let mut st = ContainerState {
            rec: a.record,
            host: a.host,
            index: a.index,
            networks: a.networks,
            events: a.events,
            view: a.view,
            gen: 1,
            waiters: Vec::new(),
            stopping: Vec::new(),
            killing: Vec::new(),
            remove_after_exit: None,
            remove_volumes: false,
            // A container that was running when the record was written had
            // its volumes mounted (berthd recounts them at start).
            volumes_mounted,
            backoff: Backoff::default(),
            started: Instant::now(),
            wait_task: None,
            health_task: None,
            health_seen: None,
            unsaved: Unsaved::default(),
        };
        restore(&myself, &mut st, a.adopt, a.autostart).await;
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<ContainerMsg>,
        msg: ContainerMsg,
        st: &mut ContainerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ContainerMsg::StartOnce { seen, reply } if seen != st.rec.state.started_at => {
                let _ = reply.send(Err(ContainerError::NotModified("started")));
            }
            ContainerMsg::Start(reply) | ContainerMsg::StartOnce { reply, .. } => {
                // A client's start of a running container: 304, as dockerd.
                let r = if st.status().is_live() {
                    Err(ContainerError::NotModified("started"))
                } else {
                    st.start(&myself).await
                };
                let _ = reply.send(r);
            }
            ContainerMsg::Stop {
                signal,
                timeout,
                reply,
            } => st.stop(&myself, signal, timeout, reply).await,
            ContainerMsg::Restart {
                signal,
                timeout,
                reply,
            } => st.restart(&myself, signal, timeout, reply).await,
            ContainerMsg::Kill { signal, reply } => match st.kill(&signal).await {
                Ok(true) => {
                    st.killing.push(reply);
                    myself.send_after(KILL_WAIT, || ContainerMsg::KillTimeout);
                }
                Ok(false) => {
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ContainerMsg::Remove {
                force,
                volumes,
                reply,
            } => {
                st.remove_volumes = volumes;
                st.remove(&myself, force, reply).await
            }
            ContainerMsg::Wait { condition, reply } => st.wait(condition, reply),
            ContainerMsg::Attach { streams, reply } => {
                let r = st.attach(streams).await;
                let _ = reply.send(r);
            }
            ContainerMsg::ExecStart { exec, stdin, reply } => match st.exec_start(&exec, stdin) {
                Ok(open) => {
                    tokio::spawn(async move {
                        let _ = reply.send(open.await);
                    });
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ContainerMsg::Stats(reply) => {
                let live = st.status().is_live();
                let pid = if live { st.rec.state.pid } else { 0 };
                let sample = st.host.stats_sample(&st.rec, pid).await;
                let _ = reply.send(Ok((sample, live)));
            }
            ContainerMsg::Top { ps_args, reply } => {
                let r = if st.status().is_live() {
                    st.host
                        .top(&st.rec, &ps_args)
                        .await
                        .map_err(ContainerError::System)
                } else {
                    Err(ContainerError::Conflict(format!(
                        "Container {} is not running",
                        st.rec.id
                    )))
                };
                let _ = reply.send(r);
            }
            ContainerMsg::Filesystem { want, reply } => {
                let r = st.filesystem(want).await;
                let _ = reply.send(r);
            }
            ContainerMsg::Resize {
                exec_id,
                width,
                height,
                reply,
            } => {
                let r = st.resize(exec_id, width, height).await;
                let _ = reply.send(r);
            }
            ContainerMsg::Pause(reply) => {
                let r = st.pause(true).await;
                let _ = reply.send(r);
            }
            ContainerMsg::Unpause(reply) => {
                let r = st.pause(false).await;
                let _ = reply.send(r);
            }
            ContainerMsg::SetName(name, reply) => {
                crate::failpoint::hit("container-rename:before");
                let old = std::mem::replace(&mut st.rec.name, format!("/{name}"));
                st.save();
                crate::failpoint::hit("container-rename:saved");
                st.event("rename", &[("oldName", old)]);
                let _ = reply.send(Ok(()));
            }
            ContainerMsg::LinkedChildStarted(child) => {
                let index = st.index.borrow().clone();
                if let Some(hosts) = super::links::hosts_after_move(&index, &st.rec, &child) {
                    if hosts != st.rec.state.link_hosts {
                        st.rec.state.link_hosts = hosts;
                        let primary = super::network::primary_network(&st.rec);
                        let ip = st.rec.state.endpoints.get(&primary).map(|e| e.ip.clone());
                        // resolv.conf is written again: as it is now.
                        let snap = st.networks.snapshot();
                        let embedded = st
                            .rec
                            .state
                            .endpoints
                            .keys()
                            .any(|n| snap.by_name(n).is_some_and(|r| r.user_defined()));
                        st.host.write_net_files(&st.rec, ip.as_deref(), embedded);
                        st.save();
                    }
                }
            }
            ContainerMsg::Unlink(alias, reply) => {
                if let Some(links) = st.rec.host_config.links.as_mut() {
                    links.retain(|l| super::model::parse_link(l).map_or(true, |(_, a)| a != alias));
                }
                if st
                    .rec
                    .host_config
                    .links
                    .as_ref()
                    .is_some_and(|l| l.is_empty())
                {
                    st.rec.host_config.links = None;
                }
                st.save();
                let _ = reply.send(Ok(()));
            }
            ContainerMsg::Update(patch, reply) => {
                let r = st.update(*patch).await;
                let _ = reply.send(r);
            }
            ContainerMsg::Connect {
                network,
                attachment,
                reply,
            } => {
                let r = st.connect(network, attachment).await;
                if r.is_ok() {
                    st.publish();
                }
                let _ = reply.send(r);
            }
            ContainerMsg::Disconnect { network, reply } => {
                let r = st.disconnect(network).await;
                if r.is_ok() {
                    st.publish();
                }
                let _ = reply.send(r);
            }
            ContainerMsg::Exited { gen, exit } => {
                if gen == st.gen {
                    st.on_exit(&myself, exit).await;
                }
            }
            ContainerMsg::Health { gen, report } => {
                if gen == st.gen {
                    st.on_health(report);
                }
            }
            ContainerMsg::RestartNow { gen } => {
                if gen == st.gen && st.status() == Status::Restarting {
                    st.rec.restart_count += 1;
                    if let Err(e) = st.start(&myself).await {
                        warn!(id = %st.rec.id, "restart policy: start failed: {e}");
                        st.rec.state.status = Status::Exited;
                        st.rec.state.error = e.to_string();
                        st.save();
                    } else {
                        st.event("restart", &[]);
                    }
                }
            }
            ContainerMsg::KillTimeout => {
                if !st.killing.is_empty() {
                    warn!(id = %st.rec.id, "no exit {KILL_WAIT:?} after SIGKILL");
                    for r in st.killing.drain(..) {
                        let _ = r.send(Ok(()));
                    }
                }
            }
            ContainerMsg::StopTimeout { gen } => {
                if gen == st.gen && st.status().is_live() && !st.stopping.is_empty() {
                    info!(id = %st.rec.id, "stop timeout: killing the container");
                    let _ = st.signal(9, true).await;
                }
            }
            ContainerMsg::Resave => {
                if st.unsaved.due() {
                    st.save();
                }
            }
        }
        st.unsaved.schedule(&myself, || ContainerMsg::Resave);
        Ok(())
    }
}

/// Rebuild from the record and the shim: never restart a container that
/// still runs; record the exit of one that ended meanwhile.
async fn restore(
    myself: &ActorRef<ContainerMsg>,
    st: &mut ContainerState,
    adopt: bool,
    autostart: bool,
) {
    let id = st.rec.id.clone();
    let removing = st.status() == Status::Removing;
    match st.status() {
        Status::Running | Status::Paused | Status::Removing => {
            match st.host.call(&id, Request::State).await {
                Ok(r) if r.exit.is_none() && r.status != Some(ShimStatus::Exited) => {
                    if let Some(p) = r.pid {
                        st.rec.state.pid = p;
                    }
                    st.rec.state.status = if r.status == Some(ShimStatus::Paused) {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                    st.publish();
                    st.watch_exit(myself);
                    st.watch_health(myself);
                    if !adopt {
                        warn!(%id, "live-restore is off: killing the container berthd found running");
                        let _ = st.signal(9, true).await;
                        // Recorded exited before the actor serves (as
                        // dockerd's restore): no client sees it running.
                        let waited = tokio::time::timeout(
                            Duration::from_secs(10),
                            st.host.call(&id, Request::Wait),
                        )
                        .await;
                        if let Ok(Ok(crate::protocol::shim::Response {
                            exit: Some(exit), ..
                        })) = waited
                        {
                            st.on_exit(myself, exit).await;
                        }
                    }
                    return;
                }
                Ok(r) => {
                    let exit = r.exit.unwrap_or_else(|| lost_exit(&*st.host, &id));
                    st.on_exit(myself, exit).await;
                }
                Err(_) => {
                    let exit = lost_exit(&*st.host, &id);
                    st.on_exit(myself, exit).await;
                }
            }
            // A removal that did not finish: the container is dead and can
            // be removed (dockerd's rule); a `--rm` one is removed now.
            if removing && st.status() == Status::Exited {
                st.rec.state.status = Status::Dead;
                st.save();
            }
        }
        Status::Restarting => {
            st.publish();
            let gen = st.gen;
            myself.send_after(Duration::from_millis(100), move || {
                ContainerMsg::RestartNow { gen }
            });
        }
        _ => {
            st.publish();
            if let Ok(r) = st.host.call(&id, Request::State).await {
                unrecorded_shim(myself, st, r, adopt).await;
                if st.status().is_live() {
                    return;
                }
            }
            // Endpoints a start that did not get as far as its shim left.
            if st.networks.snapshot().of_container(&id).next().is_some() {
                warn!(%id, "leaving the networks a start that did not finish joined");
                st.network_down().await;
                st.save();
            }
        }
    }
    if st.rec.auto_remove() && matches!(st.status(), Status::Exited | Status::Dead) {
        // A `--rm` container whose removal did not happen (berthd or its
        // actor stopped between the exit and the removal).
        info!(%id, "removing the exited --rm container");
        let _ = st.destroy(myself).await;
        return;
    }
    if autostart && st.status() == Status::Exited {
        let (policy, _) = st.rec.restart_policy();
        let up = match policy.as_str() {
            "always" => true,
            "unless-stopped" => !st.rec.state.manually_stopped,
            _ => false,
        };
        if up {
            if let Err(e) = st.start(myself).await {
                warn!(%id, "starting per restart policy: {e}");
            }
        }
    }
}

/// A shim answers for a container whose record says it does not run: a
/// start or an exit the actor's last incarnation did not finish (it was
/// killed between the shim's step and the record's save). A running
/// process is adopted (the start happened, with its networks and volumes);
/// one created but not started is undone; an exit is recorded now.
async fn unrecorded_shim(
    myself: &ActorRef<ContainerMsg>,
    st: &mut ContainerState,
    r: crate::protocol::shim::Response,
    adopt: bool,
) {
    let id = st.rec.id.clone();
    st.volumes_mounted = !st.rec.mounts.is_empty();
    let snap = st.networks.snapshot();
    for net in snap.of_container(&id) {
        if let Some(ep) = net.endpoints.get(&id) {
            st.rec.state.sandbox = ep.sandbox.clone();
            st.rec.state.endpoints.insert(net.name.clone(), ep.clone());
        }
    }
    // A created container the client asked to start: the start is
    // finished (its attaches, connected to the shim, see the output).
    let mut r = r;
    if adopt && r.status == Some(ShimStatus::Created) && r.exit.is_none() {
        warn!(%id, "finishing a start that did not finish");
        // Attaches still waiting connect before the process runs.
        st.connect_attachers().await;
        if let Err(e) = st.host.call(&id, Request::Start).await {
            if !e.to_string().contains("exec.fifo") {
                warn!(%id, "finishing the start: {e}");
            }
        }
        if let Ok(now) = st.host.call(&id, Request::State).await {
            r = now;
        }
    }
    match (r.status, r.exit) {
        (Some(ShimStatus::Running | ShimStatus::Paused), None) if adopt => {
            warn!(%id, "adopting the container its shim runs (a start that was not recorded)");
            let s = &mut st.rec.state;
            s.status = if r.status == Some(ShimStatus::Paused) {
                Status::Paused
            } else {
                Status::Running
            };
            s.pid = r.pid.unwrap_or(0);
            s.started_at = now();
            s.error.clear();
            s.manually_stopped = false;
            s.exit_code = 0;
            st.rec.has_been_started = true;
            st.gen += 1;
            st.save();
            st.event("start", &[]);
            st.watch_exit(myself);
            st.watch_health(myself);
        }
        (_, Some(exit)) => {
            warn!(%id, "recording an exit its shim kept (the last one was not finished)");
            if st.rec.state.finished_at != exit.exited_at {
                // A start that ran and ended unrecorded.
                st.rec.state.started_at = now();
                st.rec.has_been_started = true;
            }
            st.rec.state.status = Status::Running;
            st.on_exit(myself, exit).await;
        }
        _ => {
            warn!(%id, "undoing a start that did not finish");
            let _ = st
                .host
                .call(
                    &id,
                    Request::Kill {
                        signal: 9,
                        all: true,
                    },
                )
                .await;
            let _ = st.host.call(&id, Request::Wait).await;
            let _ = st.host.call(&id, Request::AckExit).await;
            st.host.release(&st.rec);
            st.unmount_volumes();
            st.network_down().await;
            st.save();
        }
    }
}
