//! Chaos: kill actors of a running berthd (through the testing-only chaos
//! control) and check that supervision brings them back while berthd stays up.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn kill(d: &Daemon, actor: &str) -> u16 {
    d.raw(format!("POST /_berth/chaos/kill?actor={actor} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        .status
}

#[test]
fn chaos_control_does_not_exist_without_the_flag() {
    let d = Daemon::start();
    assert_eq!(kill(&d, "front-door"), 404);
    d.stop();
}

#[test]
fn killed_front_door_is_restarted_and_serves_within_a_second() {
    let mut d = Daemon::builder().arg("--testing-chaos-control").start();
    let sock = d.sock.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    // Longest stretch without a successful /_ping, measured by the poller.
    let worst_gap = Arc::new(Mutex::new(Duration::ZERO));
    let poller = {
        let (stop, ok, worst_gap) = (stop.clone(), ok.clone(), worst_gap.clone());
        std::thread::spawn(move || {
            let mut last_ok = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                let r = try_request(
                    &sock,
                    b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                if matches!(r, Ok(ref r) if r.status == 200) {
                    let gap = last_ok.elapsed();
                    let mut w = worst_gap.lock().unwrap();
                    if gap > *w {
                        *w = gap;
                    }
                    last_ok = Instant::now();
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    assert!(wait_for(Duration::from_secs(5), || ok
        .load(Ordering::SeqCst)
        > 10));
    for _ in 0..3 {
        assert_eq!(kill(&d, "front-door"), 204);
        let before = ok.load(Ordering::SeqCst);
        assert!(
            wait_for(Duration::from_secs(1), || ok.load(Ordering::SeqCst)
                > before + 5),
            "front door did not serve again within a second:\n{}",
            d.log()
        );
    }
    // The event bus too: `docker events` works again after its restart.
    assert_eq!(kill(&d, "event-bus"), 204);
    assert!(
        wait_for(Duration::from_secs(2), || d
            .log()
            .contains("child restarted child=event-bus")),
        "{}",
        d.log()
    );
    assert!(wait_for(Duration::from_secs(2), || d
        .docker(&["events", "--since", "1m", "--until", "0s"])
        .status
        .success()));
    stop.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    let gap = *worst_gap.lock().unwrap();
    assert!(
        gap < Duration::from_secs(1),
        "worst gap between successful pings: {gap:?}"
    );
    assert!(d.alive(), "berthd exited");
    let log = d.log();
    assert_eq!(log.matches("child restarted").count(), 4, "{log}");
    d.docker_ok(&["version"]);
    d.stop();
}

#[test]
fn killed_image_store_rebuilds_from_its_records() {
    use common::images::*;
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    let p = d.dir.path().join("l.tar");
    std::fs::write(&p, tar_of(&[Entry::File("f", b"x")])).unwrap();
    let id = d
        .docker_ok(&["import", p.to_str().unwrap(), "kept:1"])
        .trim()
        .to_string();
    assert_eq!(kill(&d, "image-store"), 204);
    assert!(
        wait_for(Duration::from_secs(2), || d
            .log()
            .contains("child restarted child=image-store")),
        "{}",
        d.log()
    );
    assert_eq!(d.docker_ok(&["images", "-q", "--no-trunc"]).trim(), id);
    std::fs::write(&p, tar_of(&[Entry::File("g", b"y")])).unwrap();
    d.docker_ok(&["import", p.to_str().unwrap(), "after:1"]);
    assert_eq!(d.docker_ok(&["images", "-q"]).lines().count(), 2);
    d.stop();
}
