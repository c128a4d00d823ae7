//! Shutdown: streams end cleanly, in-flight requests drain, sd_notify
//! READY/STOPPING, and a third interrupt forces exit.

use crate::common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

#[test]
fn sigterm_ends_event_streams_and_cleans_up() {
    let d = Daemon::start();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // An open-ended events stream (no until).
    s.write_all(b"GET /v1.50/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        rest
    });
    std::thread::sleep(Duration::from_millis(100));
    d.stop();
    let rest = reader.join().unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.ends_with("0\r\n\r\n"),
        "the stream ended with the last chunk: {text:?}"
    );
}

#[test]
fn sd_notify_ready_then_stopping() {
    let d = Daemon::prepare();
    let notify_path = d.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut cmd = d.command();
    cmd.args(["-H", &d.docker_host()])
        .env("NOTIFY_SOCKET", &notify_path);
    let d = d.spawn(cmd);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    d.stop();
    let n = notify.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
}

#[test]
fn third_interrupt_forces_exit() {
    let d = Daemon::start();
    // A request that never completes keeps the drain waiting.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    d.signal(Signal::SIGINT);
    assert!(wait_for(Duration::from_secs(5), || d
        .log()
        .contains("shutting down")));
    let started = Instant::now();
    d.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(50));
    d.signal(Signal::SIGINT);
    let (code, log) = d.wait_exit();
    assert_eq!(code, Some(130), "{log}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(log.contains("3 interrupts received"), "{log}");
    drop(s);
}

#[test]
fn drain_of_a_stuck_request_is_bounded() {
    let d = Daemon::start();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    d.stop();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "{took:?}"
    );
    drop(s);
}
