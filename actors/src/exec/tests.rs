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

#[tokio::test]
async fn start_once_exit_kept_across_kills() {
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
