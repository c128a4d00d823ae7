//! Exec actors: the start is granted once, the exit is kept, and a killed
//! actor (or supervisor) comes back over the same record.

use std::time::Duration;

use ractor::Actor;

use super::*;

fn rec(id: &str, cid: &str) -> ExecRecord {
    ExecRecord {
        id: id.into(),
        container_id: cid.into(),
        cmd: vec!["true".into()],
        ..Default::default()
    }
}

/// Both tests register `execs`.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn start_once_exit_kept_across_kills() {
    let _serial = SERIAL.lock().await;
    let execs = Execs::default();
    let (sup, _) = Actor::spawn(Some(EXECS.to_string()), ExecSupervisor, execs.table.clone())
        .await
        .unwrap();
    let id = execs.create(rec("e1", "c1")).await.unwrap();
    assert_eq!(id, "e1");
    assert!(!execs.start("e1").await.unwrap().started);
    assert!(matches!(
        execs.start("e1").await,
        Err(ExecError::Conflict(_))
    ));
    execs.running("e1", 4242).await.unwrap();
    // Killed while its process runs: back with its facts.
    ractor::registry::where_is(actor_name("e1")).unwrap().kill();
    let r = execs.inspect("e1").await.unwrap();
    assert_eq!((r.running, r.pid), (true, 4242));
    // The exit recorded while the actor is being restarted is not lost.
    ractor::registry::where_is(actor_name("e1")).unwrap().kill();
    execs.exited("e1", 7).await.unwrap();
    assert_eq!(execs.inspect("e1").await.unwrap().exit_code, Some(7));
    // The supervisor dies: a new one brings every exec back.
    sup.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (sup2, _) = Actor::spawn(Some(EXECS.to_string()), ExecSupervisor, execs.table.clone())
        .await
        .unwrap();
    let r = execs.inspect("e1").await.unwrap();
    assert_eq!((r.running, r.exit_code), (false, Some(7)));
    // Its container is removed: the exec is gone.
    execs.forget_container("c1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        execs.inspect("e1").await,
        Err(ExecError::NotFound(_))
    ));
    assert!(ractor::registry::where_is(actor_name("e1")).is_none());
    sup2.stop(None);
}

/// The ExecSupervisor is a service of the ContainerSupervisor: started
/// with it, rebuilt by it when killed (its execs come back over their
/// records), stopped with it.
#[tokio::test]
async fn the_container_supervisor_keeps_its_exec_service() {
    use std::sync::Arc;

    use crate::container::{ContainerIndex, ContainerSupervisor, ContainerSupervisorArgs, Service};
    use crate::events::Events;
    use crate::ports::SystemClock;
    use crate::supervisor::keyed::spawn_child;

    let _containers = crate::volume::tests::SERIAL.lock().await;
    let _serial = SERIAL.lock().await;
    let execs = Execs::default();
    let table = execs.table.clone();
    let args = ContainerSupervisorArgs {
        host: Arc::new(crate::testing::FakeContainerHost::default()),
        index: Arc::new(tokio::sync::watch::channel(Arc::new(ContainerIndex::default())).0),
        networks: crate::network::Networks {
            index: tokio::sync::watch::channel(Arc::new(crate::network::NetworkIndex::default())).1,
        },
        events: Events::new(Arc::new(SystemClock)),
        view: crate::view::ViewPublisher::new().0,
        initial: Arc::new(std::sync::Mutex::new(Some(vec![]))),
        live_restore: true,
        services: vec![Service {
            name: EXECS,
            spawn: Arc::new(move |parent| {
                spawn_child(EXECS.to_string(), ExecSupervisor, table.clone(), parent)
            }),
        }],
    };
    let (sup, handle) = Actor::spawn(
        Some(crate::directory::CONTAINERS.into()),
        ContainerSupervisor,
        args,
    )
    .await
    .unwrap();
    // Up as soon as the ContainerSupervisor is.
    execs.create(rec("e2", "c2")).await.unwrap();
    execs.exited("e2", 3).await.unwrap();
    for _ in 0..3 {
        let first = ractor::registry::where_is(EXECS).unwrap();
        first.kill();
        let mut back = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            back = ractor::registry::where_is(EXECS).filter(|a| a.get_id() != first.get_id());
            if back.is_some() {
                break;
            }
        }
        assert!(back.is_some(), "the exec service was rebuilt");
        assert_eq!(execs.inspect("e2").await.unwrap().exit_code, Some(3));
    }
    sup.stop(None);
    handle.await.unwrap();
    for _ in 0..100 {
        if ractor::registry::where_is(EXECS).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        ractor::registry::where_is(EXECS).is_none(),
        "stopped with its supervisor"
    );
}
