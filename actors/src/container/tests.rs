//! The ContainerActor over the fake host: start, stop, kill, an exit
//! while the actor is dead, adoption, restart policies. No runc; each
//! test takes milliseconds.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use serde_json::json;
use tokio::sync::watch;

use super::*;
use crate::events::Events;
use crate::ports::SystemClock;
use crate::testing::FakeContainerHost;
use crate::view::ViewPublisher;

fn memory(bytes: i64) -> crate::container::config::UpdateConfig {
    serde_json::from_value(json!({"Memory": bytes})).unwrap()
}

pub(crate) fn record(id: &str, mut host_config: serde_json::Value) -> ContainerRecord {
    // No network unless the test sets one up.
    if host_config.get("NetworkMode").is_none() {
        host_config["NetworkMode"] = json!("none");
    }
    ContainerRecord {
        version: RECORD_VERSION,
        id: id.into(),
        name: format!("/{id}"),
        created: "2026-01-01T00:00:00Z".into(),
        image: "sha256:0".into(),
        image_name: "busybox".into(),
        config: serde_json::from_value(json!({"Cmd": ["true"]})).unwrap(),
        host_config: serde_json::from_value(host_config).unwrap(),
        path: "true".into(),
        args: vec![],
        state: RunState::default(),
        restart_count: 0,
        has_been_started: false,
        driver: "fake".into(),
        layer: id.into(),
        image_layer: None,
        log_path: String::new(),
        runtime: "runc".into(),
        hostname_path: String::new(),
        hosts_path: String::new(),
        resolv_conf_path: String::new(),
        networks: Default::default(),
        mounts: vec![],
        extra: Default::default(),
    }
}

struct Rig {
    host: FakeContainerHost,
    networks: crate::network::Networks,
    index: Arc<watch::Sender<Arc<ContainerIndex>>>,
    view: ViewPublisher,
}

impl Rig {
    fn new() -> Rig {
        let (tx, _rx) = watch::channel(Arc::new(ContainerIndex::default()));
        Rig {
            host: FakeContainerHost::default(),
            networks: crate::network::Networks {
                index: watch::channel(Arc::new(crate::network::NetworkIndex::default())).1,
            },
            index: Arc::new(tx),
            view: ViewPublisher::new().0,
        }
    }

    async fn spawn(&self, rec: ContainerRecord, adopt: bool) -> ActorRef<ContainerMsg> {
        self.spawn_as(None, rec, adopt).await
    }

    /// Registered under its name, as the supervisor does (for callers that
    /// find the actor by name).
    async fn spawn_named(&self, rec: ContainerRecord) -> ActorRef<ContainerMsg> {
        self.spawn_as(Some(actor_name(&rec.id)), rec, true).await
    }

    async fn spawn_as(
        &self,
        name: Option<String>,
        rec: ContainerRecord,
        adopt: bool,
    ) -> ActorRef<ContainerMsg> {
        let args = ContainerArgs {
            record: rec,
            host: Arc::new(self.host.clone()),
            index: self.index.clone(),
            networks: self.networks.clone(),
            events: Events::new(Arc::new(SystemClock)),
            view: self.view.clone(),
            adopt,
            autostart: false,
        };
        Actor::spawn(name, ContainerActor, args).await.unwrap().0
    }

    fn state(&self, id: &str) -> RunState {
        self.index.borrow().by_id[id].state.clone()
    }

    fn record(&self, id: &str) -> Arc<ContainerRecord> {
        self.index.borrow().by_id[id].clone()
    }

    async fn until(&self, what: &str, f: impl Fn(&Rig) -> bool) {
        for _ in 0..500 {
            if f(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

async fn ask<T: Send + 'static>(
    a: &ActorRef<ContainerMsg>,
    f: impl FnOnce(ractor::RpcReplyPort<Result<T, ContainerError>>) -> ContainerMsg,
) -> Result<T, ContainerError> {
    ractor::call!(a, f).unwrap()
}

#[tokio::test]
async fn start_then_stop_records_the_signal_exit() {
    // A real NetworkSupervisor (over a fake host): the container joins its
    // network through the NetworkActor at start and leaves it at exit.
    let _serial = crate::network::tests::SERIAL.lock().await;
    let nh = crate::testing::FakeNetworkHost::default();
    let (networks, nsup) = crate::network::tests::start(&nh).await;
    crate::network::tests::create(crate::network::tests::record("br1", Some("10.9.8.0/24")))
        .await
        .unwrap();
    let mut rig = Rig::new();
    rig.networks = networks.clone();
    let a = rig
        .spawn(record("c1", json!({"NetworkMode": "br1"})), true)
        .await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    let st = rig.state("c1");
    assert_eq!(st.status, Status::Running);
    assert_eq!(Some(st.pid), rig.host.pid("c1"));
    assert_eq!(rig.host.lock().network_ups, 1);
    assert_eq!(st.sandbox, "/fake/netns/c1");
    let ep = &st.endpoints["br1"];
    assert!(ep.ip.starts_with("10.9.8."), "{ep:?}");
    assert!(networks.lookup("br1").unwrap().endpoints.contains_key("c1"));
    // Starting again is a no-op the actor answers with 304.
    assert_eq!(
        ask(&a, ContainerMsg::Start).await.unwrap_err(),
        ContainerError::NotModified("started")
    );
    assert_eq!(rig.host.starts("c1"), 1);
    ask(&a, |reply| ContainerMsg::Stop {
        signal: None,
        timeout: Some(10),
        reply,
    })
    .await
    .unwrap();
    let st = rig.state("c1");
    assert_eq!((st.status, st.exit_code, st.pid), (Status::Exited, 143, 0));
    assert!(st.manually_stopped);
    assert_eq!(rig.host.lock().network_downs, 1);
    assert!(
        !networks.lookup("br1").unwrap().endpoints.contains_key("c1"),
        "left its network"
    );
    assert!(st.endpoints.is_empty() && st.sandbox.is_empty());
    assert!(rig.host.lock().released.contains(&"c1".to_string()));
    // The saved record is the published one.
    assert_eq!(rig.host.lock().saved["c1"].state, st);
    // A second stop: "already stopped".
    let again = ask(&a, |reply| ContainerMsg::Stop {
        signal: None,
        timeout: Some(10),
        reply,
    })
    .await;
    assert!(matches!(again, Err(ContainerError::NotModified("stopped"))));
    a.stop(None);
    nsup.stop(None);
    for _ in 0..100 {
        if ractor::registry::where_is(crate::directory::NETWORKS).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn stop_kills_a_process_that_ignores_the_signal_after_the_timeout() {
    let rig = Rig::new();
    rig.host.lock().ignore.insert(15);
    let a = rig.spawn(record("c2", json!({})), true).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    ask(&a, |reply| ContainerMsg::Stop {
        signal: None,
        timeout: Some(0),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(rig.state("c2").exit_code, 137);
    let kills = rig
        .host
        .lock()
        .calls
        .iter()
        .filter(|(_, c)| *c == "kill")
        .count();
    assert_eq!(kills, 2, "SIGTERM, then SIGKILL");
    a.stop(None);
}

#[tokio::test]
async fn kill_and_a_process_exit_are_recorded() {
    let rig = Rig::new();
    let a = rig.spawn(record("c3", json!({})), true).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    ask(&a, |reply| ContainerMsg::Kill {
        signal: "KILL".into(),
        reply,
    })
    .await
    .unwrap();
    // SIGKILL is answered once the exit is recorded, as dockerd answers.
    assert_eq!(rig.state("c3").status, Status::Exited);
    assert_eq!(rig.state("c3").exit_code, 137);
    // Started again, the process exits by itself.
    ask(&a, ContainerMsg::Start).await.unwrap();
    rig.host.exit("c3", 3);
    rig.until("the exit", |r| r.state("c3").status == Status::Exited)
        .await;
    assert_eq!(rig.state("c3").exit_code, 3);
    assert!(!rig.state("c3").manually_stopped);
    a.stop(None);
}

#[tokio::test]
async fn an_exit_while_the_actor_is_dead_is_read_back_and_a_live_container_is_adopted() {
    let rig = Rig::new();
    let a = rig.spawn(record("c4", json!({})), true).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    let pid = rig.state("c4").pid;
    // The actor dies; the container keeps running; a new actor adopts it.
    a.kill();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rec = (*rig.record("c4")).clone();
    let b = rig.spawn(rec, true).await;
    let st = rig.state("c4");
    assert_eq!((st.status, st.pid), (Status::Running, pid));
    assert_eq!(rig.host.starts("c4"), 1, "never restarted");
    // The actor dies again; meanwhile the process exits 42 and the shim
    // goes, leaving its exit file.
    b.kill();
    tokio::time::sleep(Duration::from_millis(20)).await;
    rig.host.exit("c4", 42);
    rig.host.kill_shim("c4");
    let rec = (*rig.record("c4")).clone();
    let c = rig.spawn(rec, true).await;
    let st = rig.state("c4");
    assert_eq!((st.status, st.exit_code), (Status::Exited, 42));
    // A shim that died without an exit file: 255.
    ask(&c, ContainerMsg::Start).await.unwrap();
    c.kill();
    tokio::time::sleep(Duration::from_millis(20)).await;
    rig.host.kill_shim("c4");
    rig.host.lock().exit_files.remove("c4");
    let d = rig.spawn((*rig.record("c4")).clone(), true).await;
    assert_eq!(rig.state("c4").exit_code, 255);
    d.stop(None);
}

/// A wait outlives the actor: killed twice while a `next-exit` wait is
/// pending, the actor is rebuilt each time, and the wait answers the
/// container's exit code (the second exit happens while no actor runs).
#[tokio::test]
async fn a_wait_outlives_its_actor() {
    let rig = Rig::new();
    let a = rig.spawn_named(record("w1", json!({}))).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    let containers = crate::container::Containers {
        index: rig.index.subscribe(),
    };
    let waiting = tokio::spawn(async move {
        containers
            .wait("w1", crate::container::WaitCondition::NextExit)
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.kill();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = rig.spawn_named((*rig.record("w1")).clone()).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!waiting.is_finished(), "still running: still waiting");
    b.kill();
    tokio::time::sleep(Duration::from_millis(20)).await;
    rig.host.exit("w1", 9);
    let c = rig.spawn_named((*rig.record("w1")).clone()).await;
    let o = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait ends")
        .unwrap();
    assert_eq!(o, crate::container::WaitOutcome::exited(9));
    c.stop(None);
}

#[tokio::test]
async fn without_live_restore_a_container_found_running_is_killed() {
    let rig = Rig::new();
    let a = rig.spawn(record("c5", json!({})), true).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    a.kill();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = rig.spawn((*rig.record("c5")).clone(), false).await;
    rig.until("the kill of the found container", |r| {
        r.state("c5").status == Status::Exited
    })
    .await;
    assert_eq!(rig.state("c5").exit_code, 137);
    b.stop(None);
}

#[tokio::test]
async fn on_failure_restarts_exactly_max_times() {
    let rig = Rig::new();
    let hc = json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}});
    let a = rig.spawn(record("c6", hc), true).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    for run in 1..=3 {
        rig.until("the run", |r| {
            r.host.starts("c6") == run && r.state("c6").status == Status::Running
        })
        .await;
        rig.host.exit("c6", 1);
    }
    rig.until("the last exit", |r| {
        r.state("c6").status == Status::Exited && r.record("c6").restart_count == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.host.starts("c6"), 3);
    assert_eq!(rig.state("c6").exit_code, 1);
    // A clean exit is not restarted, and stop cancels nothing more.
    a.stop(None);
}

#[tokio::test]
async fn always_is_cancelled_by_stop() {
    let rig = Rig::new();
    let hc = json!({"RestartPolicy": {"Name": "always"}});
    let a = rig.spawn(record("c7", hc), true).await;
    ask(&a, ContainerMsg::Start).await.unwrap();
    rig.host.exit("c7", 0);
    rig.until("the restart", |r| r.host.starts("c7") == 2).await;
    ask(&a, |reply| ContainerMsg::Stop {
        signal: None,
        timeout: Some(1),
        reply,
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.host.starts("c7"), 2);
    assert_eq!(rig.state("c7").status, Status::Exited);
    a.stop(None);
}

#[tokio::test]
async fn update_changes_the_runtime_and_the_record_together() {
    let rig = Rig::new();
    let a = rig.spawn(record("c8", json!({})), true).await;
    // Stopped: only the record.
    ask(&a, |r| ContainerMsg::Update(Box::new(memory(67108864)), r))
        .await
        .unwrap();
    assert_eq!(rig.record("c8").host_config.resources.memory, 67108864);
    assert!(rig.host.lock().resources.is_empty());
    // Running: the runtime, then the record.
    ask(&a, ContainerMsg::Start).await.unwrap();
    ask(&a, |r| ContainerMsg::Update(Box::new(memory(134217728)), r))
        .await
        .unwrap();
    assert_eq!(rig.host.lock().resources["c8"], 134217728);
    assert_eq!(rig.record("c8").host_config.resources.memory, 134217728);
    // A refused update changes nothing.
    rig.host.lock().fail_update = Some("cgroup says no".into());
    let e = ask(&a, |r| ContainerMsg::Update(Box::new(memory(268435456)), r))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Cannot update container c8: cgroup says no"),
        "{e}"
    );
    assert_eq!(rig.record("c8").host_config.resources.memory, 134217728);
    assert_eq!(
        rig.host.lock().saved["c8"].host_config.resources.memory,
        134217728
    );
    a.stop(None);
}

#[tokio::test]
async fn an_attach_before_start_is_connected_before_the_process_runs() {
    let rig = Rig::new();
    let a = rig.spawn(record("c9", json!({})), false).await;
    let streams = AttachStreams {
        stdin: true,
        stdout: true,
        stderr: true,
    };
    // Created: the stdio comes with the start.
    let ticket = ask(&a, |reply| ContainerMsg::Attach { streams, reply })
        .await
        .unwrap();
    let AttachTicket::AtStart(later) = ticket else {
        panic!("a created container attaches at its start");
    };
    // Not running: exec and resize are refused by the actor.
    let exec = crate::exec::ExecRecord {
        id: "e1".into(),
        container_id: "c9".into(),
        cmd: vec!["true".into()],
        ..Default::default()
    };
    let e = ask(&a, |reply| ContainerMsg::ExecStart {
        exec: Box::new(exec.clone()),
        stdin: false,
        reply,
    })
    .await
    .err()
    .unwrap();
    assert_eq!(e.to_string(), "Container c9 is not running");
    let e = ask(&a, |reply| ContainerMsg::Resize {
        exec_id: None,
        width: 80,
        height: 24,
        reply,
    })
    .await
    .unwrap_err();
    assert!(matches!(e, ContainerError::Conflict(_)), "{e:?}");
    ask(&a, ContainerMsg::Start).await.unwrap();
    let stdio = later.await.unwrap().unwrap();
    assert_eq!(stdio.pid, Some(4242));
    let calls: Vec<&str> = rig
        .host
        .lock()
        .calls
        .iter()
        .filter(|(id, _)| id == "c9")
        .map(|(_, c)| *c)
        .collect();
    let at = |c: &str| calls.iter().position(|x| *x == c).unwrap();
    assert!(at("attach") < at("start"), "{calls:?}");
    // Running: attach now, exec and resize are passed to the shim.
    let ticket = ask(&a, |reply| ContainerMsg::Attach { streams, reply })
        .await
        .unwrap();
    assert!(matches!(ticket, AttachTicket::Now(_)));
    let s = ask(&a, |reply| ContainerMsg::ExecStart {
        exec: Box::new(exec),
        stdin: true,
        reply,
    })
    .await
    .unwrap();
    assert_eq!(s.pid, Some(4242));
    ask(&a, |reply| ContainerMsg::Resize {
        exec_id: Some("e1".into()),
        width: 80,
        height: 24,
        reply,
    })
    .await
    .unwrap();
    let kinds: Vec<&str> = rig.host.lock().stdio.iter().map(|(_, k, _)| *k).collect();
    assert_eq!(kinds, vec!["attach", "attach", "exec"]);
    a.stop(None);
}

#[tokio::test]
async fn a_copy_gets_the_live_root_or_a_lease_of_the_stopped_root_filesystem() {
    use super::fs::{FsView, FsWant};
    let rig = Rig::new();
    let a = rig.spawn(record("c10", json!({})), false).await;
    // Stopped: the root filesystem is lent and given back with the lease.
    let v = ask(&a, |reply| ContainerMsg::Filesystem {
        want: FsWant::Copy,
        reply,
    })
    .await
    .unwrap();
    let FsView::Stopped { rootfs, binds, .. } = &v else {
        panic!("a stopped container's copy works on its root filesystem");
    };
    assert!(rootfs.ends_with("merged") && binds.is_empty());
    assert_eq!(rig.host.lock().borrowed, vec!["c10".to_string()]);
    drop(v);
    assert!(rig.host.lock().borrowed.is_empty(), "given back");
    // Running: its own root, nothing lent.
    ask(&a, ContainerMsg::Start).await.unwrap();
    let v = ask(&a, |reply| ContainerMsg::Filesystem {
        want: FsWant::Copy,
        reply,
    })
    .await
    .unwrap();
    let pid = rig.host.pid("c10").unwrap();
    assert!(
        matches!(&v, FsView::Live(p) if p.as_path() == std::path::Path::new(&format!("/proc/{pid}/root")))
    );
    assert!(rig.host.lock().borrowed.is_empty());
    // An export always works on the root filesystem alone.
    let v = ask(&a, |reply| ContainerMsg::Filesystem {
        want: FsWant::Rootfs,
        reply,
    })
    .await
    .unwrap();
    assert!(matches!(v, FsView::Rootfs { .. }));
    drop(v);
    assert!(rig.host.lock().borrowed.is_empty());
    a.stop(None);
}

#[tokio::test]
async fn top_and_stats_follow_the_actors_status() {
    let rig = Rig::new();
    let a = rig.spawn(record("c11", json!({})), false).await;
    let e = ask(&a, |reply| ContainerMsg::Top {
        ps_args: "-ef".into(),
        reply,
    })
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "Container c11 is not running");
    let (sample, live) = ask(&a, ContainerMsg::Stats).await.unwrap();
    assert_eq!((sample["pid"].as_i64(), live), (Some(0), false));
    ask(&a, ContainerMsg::Start).await.unwrap();
    let (sample, live) = ask(&a, ContainerMsg::Stats).await.unwrap();
    let pid = rig.host.pid("c11").unwrap() as i64;
    assert_eq!((sample["pid"].as_i64(), live), (Some(pid), true));
    let top = ask(&a, |reply| ContainerMsg::Top {
        ps_args: "aux".into(),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(top["Titles"][0], "aux");
    a.stop(None);
}

async fn ask_sup(
    f: impl FnOnce(ractor::RpcReplyPort<Result<(), ContainerError>>) -> SupervisorMsg,
) -> Result<(), ContainerError> {
    Containers::ask_supervisor(f).await
}

fn volume(name: &str, anonymous: bool, driver: &str) -> crate::volume::VolumeRecord {
    crate::volume::VolumeRecord {
        version: crate::volume::VOLUME_RECORD_VERSION,
        name: name.into(),
        driver: driver.into(),
        created: String::new(),
        labels: Default::default(),
        options: Default::default(),
        anonymous,
        mountpoint: format!("/fake/{name}/_data"),
        scope: "local".into(),
        users: Default::default(),
        active: Default::default(),
    }
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_behind() {
    let _serial = crate::volume::tests::SERIAL.lock().await;
    let _images_serial = crate::image::tests::SERIAL.lock().await;
    let (images, image_users, image) = crate::image::tests::start().await;
    let record = |id: &str, hc| {
        let mut r = record(id, hc);
        r.image = image.clone();
        r
    };
    let vh = crate::testing::FakeVolumeHost::default();
    let vols = crate::volume::tests::start(&vh).await;
    let rig = Rig::new();
    let args = ContainerSupervisorArgs {
        host: Arc::new(rig.host.clone()),
        index: rig.index.clone(),
        networks: rig.networks.clone(),
        events: Events::new(Arc::new(SystemClock)),
        view: rig.view.clone(),
        initial: Arc::new(std::sync::Mutex::new(Some(vec![]))),
        live_restore: true,
        services: vec![],
    };
    let (sup, _) = Actor::spawn(
        Some(crate::directory::CONTAINERS.into()),
        ContainerSupervisor,
        args,
    )
    .await
    .unwrap();
    // A volume of another driver holds the name the create wants.
    crate::volume::Volumes::ask_supervisor(|reply| crate::volume::VolumeSupervisorMsg::Create {
        record: Box::new(volume("taken", false, "local")),
        reply,
    })
    .await
    .unwrap();
    let nothing_left = |id: &str| {
        let h = rig.host.lock();
        assert!(!h.prepared.contains(id), "layer and directory removed");
        assert!(!h.saved.contains_key(id), "no record");
        drop(h);
        assert!(!rig.index.borrow().by_id.contains_key(id), "not listed");
        assert!(
            ractor::registry::where_is(actor_name(id)).is_none(),
            "no actor"
        );
    };
    // 1. The second volume is refused after the first (anonymous) one was
    //    made and used: both steps are undone.
    let e = ask_sup(|reply| SupervisorMsg::Create {
        record: Box::new(record("f1", json!({}))),
        volumes: vec![
            volume("anon1", true, "local"),
            volume("taken", false, "other"),
        ],
        reply,
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("volume name must be unique"), "{e}");
    nothing_left("f1");
    assert!(
        vols.lookup("anon1").is_err(),
        "the anonymous volume it made is gone"
    );
    assert!(vols.lookup("taken").unwrap().users.is_empty());
    // 2. The storage fails halfway: what it made is removed.
    rig.host.lock().fail_prepare = Some("no space left on device".into());
    let e = ask_sup(|reply| SupervisorMsg::Create {
        record: Box::new(record("f2", json!({}))),
        volumes: vec![volume("anon2", true, "local")],
        reply,
    })
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "no space left on device");
    nothing_left("f2");
    assert!(vols.lookup("anon2").is_err(), "no volume was made");
    rig.host.lock().fail_prepare = None;
    // 3. The name of a failed create is free; a good create has it all.
    let e = ask_sup(|reply| SupervisorMsg::Create {
        record: Box::new(record("f2", json!({}))),
        volumes: vec![
            volume("anon3", true, "local"),
            volume("taken", false, "local"),
        ],
        reply,
    })
    .await;
    e.unwrap();
    assert!(rig.host.lock().prepared.contains("f2"));
    assert!(rig.host.lock().saved.contains_key("f2"));
    assert!(rig.index.borrow().by_id.contains_key("f2"));
    assert!(vols.lookup("anon3").unwrap().users.contains("f2"));
    assert!(vols.lookup("taken").unwrap().users.contains("f2"));
    // Made again (its answer lost): the same container, nothing new.
    ask_sup(|reply| SupervisorMsg::Create {
        record: Box::new(record("f2", json!({}))),
        volumes: vec![],
        reply,
    })
    .await
    .unwrap();
    assert_eq!(rig.index.borrow().by_id.len(), 1);
    // Its name is taken now for another container.
    let mut other = record("f2-other", json!({}));
    other.name = "/f2".into();
    let e = ask_sup(|reply| SupervisorMsg::Create {
        record: Box::new(other),
        volumes: vec![],
        reply,
    })
    .await
    .unwrap_err();
    assert!(matches!(e, ContainerError::Conflict(_)), "{e:?}");
    // No claim is left behind by the failed creates nor by the good one
    // (its record speaks for it): with no container listed, the image goes.
    assert!(image_users.lock().unwrap().is_empty());
    images.delete("t:1".into(), false, true).await.unwrap();
    // A create after that is refused with the image's name.
    let e = ask_sup(|reply| SupervisorMsg::Create {
        record: Box::new(record("f3", json!({}))),
        volumes: vec![],
        reply,
    })
    .await
    .unwrap_err();
    assert_eq!(e, ContainerError::NoSuchImage("busybox".into()));
    nothing_left("f3");
    sup.stop(None);
    crate::volume::tests::stop_supervisor().await;
    crate::image::tests::stop().await;
}
