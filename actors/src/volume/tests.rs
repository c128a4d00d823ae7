//! The VolumeSupervisor and VolumeActors over a fake host: users block
//! removal, a `device` volume is unmounted when its last running container
//! stops, and a killed actor comes back with its users and running set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use tokio::sync::watch;

use super::*;
use crate::events::Events;
use crate::ports::SystemClock;
use crate::testing::FakeVolumeHost;

fn record(name: &str) -> VolumeRecord {
    VolumeRecord {
        version: VOLUME_RECORD_VERSION,
        name: name.into(),
        driver: "local".into(),
        created: String::new(),
        labels: BTreeMap::new(),
        options: [("type", "tmpfs"), ("device", "tmpfs")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        anonymous: false,
        mountpoint: format!("/fake/{name}/_data"),
        scope: "local".into(),
        users: Default::default(),
        active: Default::default(),
    }
}

pub(crate) async fn start(host: &FakeVolumeHost) -> Volumes {
    let (tx, rx) = watch::channel(Arc::new(VolumeIndex::default()));
    let args = VolumeSupervisorArgs {
        host: Arc::new(host.clone()),
        index: Arc::new(tx),
        events: Events::new(Arc::new(SystemClock)),
        initial: Arc::new(std::sync::Mutex::new(Some(vec![]))),
    };
    // The actors find the supervisor by its registry name: one test at a
    // time.
    Actor::spawn(
        Some(crate::directory::VOLUMES.into()),
        VolumeSupervisor,
        args,
    )
    .await
    .unwrap();
    Volumes { index: rx }
}

pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) async fn stop_supervisor() {
    if let Some(s) = ractor::ActorRef::<VolumeSupervisorMsg>::where_is(crate::directory::VOLUMES) {
        s.stop(None);
    }
    for _ in 0..100 {
        if ractor::registry::where_is(crate::directory::VOLUMES).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn create(name: &str) -> Arc<VolumeRecord> {
    Volumes::ask_supervisor(|reply| VolumeSupervisorMsg::Create {
        record: Box::new(record(name)),
        reply,
    })
    .await
    .unwrap()
}

async fn use_(name: &str, c: &str) {
    let c = c.to_string();
    Volumes::ask(name, |reply| VolumeMsg::Use {
        container: c,
        reply,
    })
    .await
    .unwrap();
}

async fn release(name: &str, c: &str) {
    let c = c.to_string();
    Volumes::ask(name, |reply| VolumeMsg::Release {
        container: c,
        remove_anonymous: false,
        reply,
    })
    .await
    .unwrap();
}

fn mounted(name: &str, action: &'static str, c: &str) {
    let msg = if action == "mount" {
        let (tx, _rx) = tokio::sync::oneshot::channel();
        VolumeMsg::Mount {
            user: c.into(),
            event: Some(("/d".into(), true)),
            reply: tx.into(),
        }
    } else {
        VolumeMsg::Unmount {
            user: c.into(),
            event: true,
        }
    };
    ractor::ActorRef::<VolumeMsg>::where_is(actor_name(name))
        .unwrap()
        .send_message(msg)
        .unwrap();
}

async fn remove(name: &str) -> Result<(), VolumeError> {
    Volumes::ask(name, |reply| VolumeMsg::Remove {
        force: false,
        reply,
    })
    .await
}

/// Waits until the volume's actor answers (a rebuild after a kill).
async fn answering(name: &str) -> bool {
    for _ in 0..100 {
        let n = name.to_string();
        if Volumes::ask(&n, |reply| VolumeMsg::Use {
            container: "probe".into(),
            reply,
        })
        .await
        .is_ok()
        {
            let _ = Volumes::ask(&n, |reply| VolumeMsg::Release {
                container: "probe".into(),
                remove_anonymous: false,
                reply,
            })
            .await;
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn users_block_removal_and_the_last_running_container_unmounts() {
    let _g = SERIAL.lock().await;
    let host = FakeVolumeHost::default();
    let vols = start(&host).await;
    let v = create("uv").await;
    assert_eq!(v.users.len(), 0);
    // Creating an existing name answers that volume.
    assert_eq!(create("uv").await.name, "uv");
    assert_eq!(host.state().created, vec!["uv".to_string()]);
    use_("uv", "c1").await;
    use_("uv", "c2").await;
    let e = remove("uv").await.unwrap_err();
    assert!(e.to_string().contains("volume is in use"), "{e}");
    // Two running containers: only the last one to stop unmounts.
    mounted("uv", "mount", "c1");
    mounted("uv", "mount", "c2");
    mounted("uv", "unmount", "c1");
    use_("uv", "c1").await; // a round trip: the messages before it are handled
    assert_eq!(host.unmounts("uv"), 0);
    assert_eq!(vols.lookup("uv").unwrap().active.len(), 1);
    mounted("uv", "unmount", "c2");
    use_("uv", "c2").await;
    assert_eq!(host.unmounts("uv"), 1);
    assert!(vols.lookup("uv").unwrap().active.is_empty());
    // Both still hold it (stopped, not removed): still refused.
    assert!(remove("uv").await.is_err());
    release("uv", "c1").await;
    release("uv", "c2").await;
    remove("uv").await.unwrap();
    assert!(vols.lookup("uv").is_err());
    assert_eq!(host.state().removed, vec!["uv".to_string()]);
    stop_supervisor().await;
}

#[tokio::test]
async fn a_killed_volume_actor_keeps_its_users_and_running_set() {
    let _g = SERIAL.lock().await;
    let host = FakeVolumeHost::default();
    let vols = start(&host).await;
    create("kv").await;
    use_("kv", "c1").await;
    mounted("kv", "mount", "c1");
    use_("kv", "c1").await;
    ractor::ActorRef::<VolumeMsg>::where_is(actor_name("kv"))
        .unwrap()
        .kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(answering("kv").await, "the volume actor was not rebuilt");
    let rec = vols.lookup("kv").unwrap();
    assert!(rec.users.contains("c1"), "{rec:?}");
    assert!(rec.active.contains("c1"), "{rec:?}");
    assert!(remove("kv").await.is_err(), "removed while in use");
    // The rebuilt actor still knows c1 runs: its stop unmounts.
    mounted("kv", "unmount", "c1");
    use_("kv", "c1").await;
    assert_eq!(host.unmounts("kv"), 1);
    release("kv", "c1").await;
    remove("kv").await.unwrap();
    stop_supervisor().await;
}

#[tokio::test]
async fn users_the_disk_refused_are_not_kept_and_releases_are_saved_later() {
    let _g = SERIAL.lock().await;
    let host = FakeVolumeHost::default();
    let vols = start(&host).await;
    create("fv").await;
    use_("fv", "c1").await;
    host.state().fail_save = true;
    // A use the disk refuses fails and leaves no user behind.
    let e = Volumes::ask("fv", |reply| VolumeMsg::Use {
        container: "c2".into(),
        reply,
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("saving the volume"), "{e}");
    assert!(!vols.lookup("fv").unwrap().users.contains("c2"));
    // A release is done and shown at once; the record follows once the
    // disk takes it.
    release("fv", "c1").await;
    assert!(vols.lookup("fv").unwrap().users.is_empty());
    assert!(host.state().saved["fv"].users.contains("c1"));
    host.state().fail_save = false;
    let mut saved = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if host.state().saved["fv"].users.is_empty() {
            saved = true;
            break;
        }
    }
    assert!(saved, "the refused record was not saved again");
    remove("fv").await.unwrap();
    stop_supervisor().await;
}
