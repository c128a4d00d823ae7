//! LogStream actors over the fake log: killed while they stream, the
//! client still gets every entry once, in order.

use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use tokio::sync::watch;

use super::*;
use crate::container::ContainerIndex;
use crate::testing::FakeLogFiles;

async fn supervisor(files: FakeLogFiles, sessions: LogSessions) -> ActorRef<LogSupervisorMsg> {
    let (_tx, index) = watch::channel(Arc::new(ContainerIndex::default()));
    let args = LogSupervisorArgs {
        files: Arc::new(files),
        index,
        sessions,
    };
    Actor::spawn(None, LogSupervisor, args).await.unwrap().0
}

async fn open(sup: &ActorRef<LogSupervisorMsg>, c: &str) -> (u64, mpsc::Receiver<Bytes>) {
    ractor::call!(sup, |reply| LogSupervisorMsg::Open {
        container: c.into(),
        path: "/fake".into(),
        opts: LogOptions {
            stdout: true,
            ..Default::default()
        },
        reply
    })
    .unwrap()
    .unwrap()
}

fn expected(n: u64) -> String {
    (0..n).map(|i| format!("{i}\n")).collect()
}

#[tokio::test]
async fn killed_streams_deliver_every_entry_once() {
    let files = FakeLogFiles {
        total: Arc::new(std::sync::Mutex::new(20_000)),
        per_chunk: 7,
    };
    let sessions = LogSessions::default();
    let sup = supervisor(files, sessions.clone()).await;
    let (id, mut rx) = open(&sup, "c1").await;
    let mut got = Vec::new();
    let mut kills = 0;
    while let Some(b) = rx.recv().await {
        got.extend_from_slice(&b);
        // A slow client, and a kill every 40 chunks.
        let now = got.len() % 40 == 0 || (kills < 30 && b.len() % 3 == 0);
        if now && kill_streams_of(&sessions, "c1") > 0 {
            kills += 1;
        }
        tokio::task::yield_now().await;
    }
    assert!(kills >= 5, "only {kills} kills");
    assert_eq!(String::from_utf8(got).unwrap(), expected(20_000));
    // The session is gone once its last actor ended.
    for _ in 0..100 {
        if sessions.get(id).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sessions.get(id).is_none());
    sup.stop(None);
}

#[tokio::test]
async fn a_restarted_supervisor_resumes_open_streams() {
    let files = FakeLogFiles {
        total: Arc::new(std::sync::Mutex::new(5_000)),
        per_chunk: 3,
    };
    let sessions = LogSessions::default();
    let sup = supervisor(files.clone(), sessions.clone()).await;
    let (_, mut rx) = open(&sup, "c2").await;
    let mut got = Vec::new();
    // Read a little, then kill the supervisor (its children die with it)
    // and start a new incarnation over the same sessions.
    for _ in 0..10 {
        got.extend_from_slice(&rx.recv().await.unwrap());
    }
    sup.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sup2 = supervisor(files, sessions.clone()).await;
    while let Some(b) = rx.recv().await {
        got.extend_from_slice(&b);
    }
    assert_eq!(String::from_utf8(got).unwrap(), expected(5_000));
    sup2.stop(None);
}
