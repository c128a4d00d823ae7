//! The supervision failure matrix, over real ractor actors.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef, ActorStatus};

use super::*;
use crate::testing::{Flaky, FlakyControl, FlakyMsg};

fn policy(max: u32) -> RestartPolicy {
    RestartPolicy {
        max_restarts: max,
        window: Duration::from_secs(30),
        backoff_initial: Duration::ZERO,
        backoff_max: Duration::from_millis(100),
        settle: Duration::from_secs(5),
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::SeqCst))
}

async fn start(
    max: u32,
    ctl: Arc<FlakyControl>,
) -> (ActorRef<SupervisorMsg>, String, tokio::task::JoinHandle<()>) {
    let name = unique("flaky");
    let spec = ChildSpec::new(&name, policy(max), true, move || (Flaky, ctl.clone()));
    let (sup, h) = Actor::spawn(
        None,
        Supervisor,
        SupervisorArgs {
            children: vec![spec],
        },
    )
    .await
    .expect("supervisor starts");
    (sup, name, h)
}

/// Ping the registered child until it answers with a start number >= `min`.
async fn ping_until(name: &str, min: u32) -> u32 {
    for _ in 0..200 {
        if let Some(r) = ActorRef::<FlakyMsg>::where_is(name) {
            if let Ok(n) = ractor::call_t!(r, FlakyMsg::Ping, 200) {
                if n >= min {
                    return n;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("child {name} never answered with start >= {min}");
}

fn child(name: &str) -> ActorRef<FlakyMsg> {
    ActorRef::<FlakyMsg>::where_is(name).expect("child registered")
}

#[tokio::test]
async fn panic_in_handler_restarts_child() {
    let ctl = FlakyControl::new();
    let (sup, name, _h) = start(5, ctl.clone()).await;
    assert_eq!(ping_until(&name, 1).await, 1);
    child(&name).send_message(FlakyMsg::Panic).unwrap();
    assert_eq!(ping_until(&name, 2).await, 2);
    let st = ractor::call!(sup, SupervisorMsg::Children).unwrap();
    assert_eq!(st[0].restarts, 1);
    assert!(st[0].running);
    sup.stop(None);
}

#[tokio::test]
async fn error_in_handler_restarts_child() {
    let ctl = FlakyControl::new();
    let (sup, name, _h) = start(5, ctl.clone()).await;
    child(&name).send_message(FlakyMsg::Fail).unwrap();
    assert_eq!(ping_until(&name, 2).await, 2);
    sup.stop(None);
}

#[tokio::test]
async fn normal_stop_of_a_child_is_restarted() {
    let ctl = FlakyControl::new();
    let (sup, name, _h) = start(5, ctl.clone()).await;
    child(&name).send_message(FlakyMsg::Stop).unwrap();
    assert_eq!(ping_until(&name, 2).await, 2);
    sup.stop(None);
}

#[tokio::test]
async fn kill_of_a_child_is_restarted() {
    let ctl = FlakyControl::new();
    let (sup, name, _h) = start(5, ctl.clone()).await;
    child(&name).get_cell().kill();
    assert_eq!(ping_until(&name, 2).await, 2);
    sup.stop(None);
}

#[tokio::test]
async fn panic_in_pre_start_on_restart_is_retried_with_backoff() {
    let ctl = FlakyControl::new();
    let (sup, name, _h) = start(5, ctl.clone()).await;
    // The next two starts panic, the third succeeds.
    ctl.panic_starts.store(2, Ordering::SeqCst);
    child(&name).send_message(FlakyMsg::Panic).unwrap();
    assert_eq!(ping_until(&name, 4).await, 4);
    assert_eq!(ctl.starts.load(Ordering::SeqCst), 4);
    sup.stop(None);
}

#[tokio::test]
async fn error_in_pre_start_at_first_start_fails_the_supervisor() {
    let ctl = FlakyControl::new();
    ctl.fail_starts.store(1, Ordering::SeqCst);
    let name = unique("flaky");
    let c = ctl.clone();
    let spec = ChildSpec::new(&name, policy(5), true, move || (Flaky, c.clone()));
    let res = Actor::spawn(
        None,
        Supervisor,
        SupervisorArgs {
            children: vec![spec],
        },
    )
    .await;
    assert!(
        res.is_err(),
        "a child that cannot start fails the supervisor"
    );
}

#[tokio::test]
async fn repeated_crashes_escalate_to_the_parent() {
    let ctl = FlakyControl::new();
    let name = unique("flaky");
    let c = ctl.clone();
    let inner = ChildSpec::new(&name, policy(2), true, move || (Flaky, c.clone()));
    // The inner supervisor is itself a child of an outer one that never
    // gives up quickly: escalation shows as the inner supervisor restarting.
    let inner_name = unique("inner-sup");
    let outer_spec = ChildSpec::new(&inner_name, policy(5), true, move || {
        (
            Supervisor,
            SupervisorArgs {
                children: vec![inner.clone()],
            },
        )
    });
    let (outer, _h) = Actor::spawn(
        None,
        Supervisor,
        SupervisorArgs {
            children: vec![outer_spec],
        },
    )
    .await
    .unwrap();
    let first_inner = ActorRef::<SupervisorMsg>::where_is(inner_name.clone()).unwrap();
    for expected in 1..=3 {
        ping_until(&name, expected).await;
        child(&name).send_message(FlakyMsg::Panic).unwrap();
    }
    // Third crash exceeds max_restarts = 2: the inner supervisor fails ...
    for _ in 0..200 {
        if first_inner.get_status() == ActorStatus::Stopped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(first_inner.get_status(), ActorStatus::Stopped);
    // ... and the outer one restarted it, with a fresh child.
    ping_until(&name, 4).await;
    let st = ractor::call!(outer, SupervisorMsg::Children).unwrap();
    assert_eq!(st[0].restarts, 1);
    outer.stop(None);
}

#[tokio::test]
async fn escalation_at_the_root_stops_it() {
    let ctl = FlakyControl::new();
    let (sup, name, h) = start(1, ctl.clone()).await;
    ping_until(&name, 1).await;
    child(&name).send_message(FlakyMsg::Panic).unwrap();
    ping_until(&name, 2).await;
    child(&name).send_message(FlakyMsg::Panic).unwrap();
    tokio::time::timeout(Duration::from_secs(5), h)
        .await
        .expect("root supervisor ends after escalation")
        .unwrap();
    assert_eq!(sup.get_status(), ActorStatus::Stopped);
}

#[tokio::test]
async fn shutdown_stops_children_without_restarting() {
    let ctl = FlakyControl::new();
    let (sup, name, h) = start(5, ctl.clone()).await;
    ping_until(&name, 1).await;
    ractor::call!(sup, SupervisorMsg::Shutdown).unwrap();
    tokio::time::timeout(Duration::from_secs(5), h)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ctl.starts.load(Ordering::SeqCst), 1);
    assert!(ActorRef::<FlakyMsg>::where_is(name).is_none());
}

#[tokio::test]
async fn a_kill_storm_never_escalates() {
    // A limit of 2 restarts: 30 kills in a row (each right after the
    // restart) still find the child back every time, the supervisor up.
    let ctl = FlakyControl::new();
    let (sup, name, _h) = start(2, ctl.clone()).await;
    for n in 1..=30 {
        let started = ping_until(&name, n).await;
        assert_eq!(started, n);
        child(&name).get_cell().kill();
    }
    ping_until(&name, 31).await;
    assert_eq!(sup.get_status(), ActorStatus::Running);
    let st = ractor::call!(sup, SupervisorMsg::Children).unwrap();
    assert_eq!(st[0].restarts, 30);
    sup.stop(None);
}

#[tokio::test]
async fn a_child_failing_after_it_settled_is_restarted_without_escalating() {
    let ctl = FlakyControl::new();
    let name = unique("flaky");
    let c = ctl.clone();
    let quick = RestartPolicy {
        settle: Duration::from_millis(50),
        ..policy(1)
    };
    let spec = ChildSpec::new(&name, quick, true, move || (Flaky, c.clone()));
    let (sup, _h) = Actor::spawn(
        None,
        Supervisor,
        SupervisorArgs {
            children: vec![spec],
        },
    )
    .await
    .unwrap();
    for n in 1..=5 {
        ping_until(&name, n).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        child(&name).send_message(FlakyMsg::Panic).unwrap();
    }
    ping_until(&name, 6).await;
    assert_eq!(sup.get_status(), ActorStatus::Running);
    sup.stop(None);
}
