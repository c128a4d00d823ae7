//! Registry sessions: one per host, shared by concurrent operations, one
//! client per credentials; a killed session ends its operations with an
//! error line, comes back, and leaves other hosts alone.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::Actor;

use super::*;
use crate::testing::FakeRegistry;

async fn lines_until_end(mut rx: mpsc::Receiver<Bytes>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(b) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the stream ended")
    {
        out.push(String::from_utf8_lossy(&b).trim_end().to_string());
    }
    out
}

async fn wait_ops(host: &str, n: usize) {
    for _ in 0..200 {
        if operations(host).await.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{host}: {:?} operations, want {n}", operations(host).await);
}

#[tokio::test]
async fn sessions_per_host_survive_kills_without_hanging_anyone() {
    let fake = FakeRegistry::default();
    let port: Arc<dyn RegistryPort> = Arc::new(fake.clone());
    let (sup, _) = Actor::spawn(
        Some(REGISTRY_SESSIONS.to_string()),
        RegistrySupervisor,
        port,
    )
    .await
    .unwrap();
    let (a, b) = ("a.example:5000", "b.example:5000");

    // A manifest that is not there is the request's answer.
    let (tx, _rx) = mpsc::channel(16);
    let e = pull(
        a,
        "a.example:5000/missing:1".into(),
        Credentials::Anonymous,
        tx,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);

    // Two pulls of host a share its session and its anonymous client.
    let (ta1, ra1) = mpsc::channel(16);
    let (ta2, ra2) = mpsc::channel(16);
    let (tb, rb) = mpsc::channel(16);
    pull(a, "a.example:5000/x:1".into(), Credentials::Anonymous, ta1)
        .await
        .unwrap();
    pull(a, "a.example:5000/y:1".into(), Credentials::Anonymous, ta2)
        .await
        .unwrap();
    pull(b, "b.example:5000/z:1".into(), Credentials::Anonymous, tb)
        .await
        .unwrap();
    wait_ops(a, 2).await;
    wait_ops(b, 1).await;
    let made = |h: &str| {
        fake.clients
            .lock()
            .unwrap()
            .iter()
            .filter(|(x, _)| x == h)
            .count()
    };
    assert_eq!(made(a), 1, "one client per host and credentials");
    let mut hs = hosts().await;
    hs.sort();
    assert_eq!(hs, vec![a.to_string(), b.to_string()]);

    // Kill a's session while both of its pulls wait: each stream ends with
    // the error line, b's pull is untouched.
    let old = ractor::registry::where_is(actor_name(a)).unwrap();
    old.kill();
    for rx in [ra1, ra2] {
        let lines = lines_until_end(rx).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("Pulling"), "{lines:?}");
        assert!(lines[1].contains(STOPPED), "{lines:?}");
    }
    assert_eq!(operations(b).await.len(), 1);

    // a's session comes back (a new actor) and the same pull succeeds.
    let mut back = None;
    for _ in 0..200 {
        if let Some(c) = ractor::registry::where_is(actor_name(a)) {
            if c.get_id() != old.get_id() {
                back = Some(c);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back.is_some(), "the session was restarted");
    fake.open(a);
    let (ta3, ra3) = mpsc::channel(16);
    pull(a, "a.example:5000/x:1".into(), Credentials::Anonymous, ta3)
        .await
        .unwrap();
    let lines = lines_until_end(ra3).await;
    assert!(lines.last().unwrap().contains("Pulled"), "{lines:?}");
    wait_ops(a, 0).await;

    // b finishes when its registry lets it.
    fake.open(b);
    let lines = lines_until_end(rb).await;
    assert!(lines.last().unwrap().contains("Pulled"), "{lines:?}");
    assert_eq!(fake.finished.load(Ordering::SeqCst), 2);

    // Other credentials get their own client; login and distribution answer.
    let bad = Credentials::Basic {
        username: "bob".into(),
        password: "nope".into(),
    };
    let good = Credentials::Basic {
        username: "bob".into(),
        password: "pw".into(),
    };
    assert_eq!(
        login(a, bad).await.unwrap_err().kind,
        ErrorKind::Unauthorized
    );
    assert_eq!(
        login(a, good.clone()).await.unwrap()["Status"],
        "Login Succeeded"
    );
    assert_eq!(login(a, good).await.unwrap()["Status"], "Login Succeeded");
    // anonymous (twice: before and after the kill), bad, good.
    assert_eq!(made(a), 4);
    let d = distribution(b, "b.example:5000/z:1".into(), Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(d["host"], b);

    // A push streams its progress and ends.
    let (tp, rp) = mpsc::channel(16);
    push(
        b,
        vec![PushTarget {
            image_id: "sha256:1".into(),
            reference: "b.example:5000/z:1".into(),
        }],
        Credentials::Anonymous,
        tp,
    )
    .await
    .unwrap();
    let lines = lines_until_end(rp).await;
    assert_eq!(lines.len(), 1);

    // A killed supervisor: the sessions go with it; a new one starts them
    // again on first use.
    sup.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let port: Arc<dyn RegistryPort> = Arc::new(fake.clone());
    let (sup2, _) = Actor::spawn(
        Some(REGISTRY_SESSIONS.to_string()),
        RegistrySupervisor,
        port,
    )
    .await
    .unwrap();
    let (t, r) = mpsc::channel(16);
    pull(b, "b.example:5000/z:1".into(), Credentials::Anonymous, t)
        .await
        .unwrap();
    assert!(lines_until_end(r).await.last().unwrap().contains("Pulled"));
    sup2.stop(None);
}
