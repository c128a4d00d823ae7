//! Connection abuse (issue 17, item 6): thousands of idle connections,
//! clients that never read a large response, and a burst of 10,000 short
//! connections leave the docker CLI served and berthd's files and memory
//! bounded.

use crate::common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::containers::load_busybox;
use common::*;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// This test process may open as many files as its hard limit allows.
fn raise_own_nofile() -> u64 {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// A berthd whose open-files limit is `nofile` (its connection cap three
/// quarters of it), with `env` set.
fn daemon(nofile: u64, env: &[(&str, &str)]) -> Daemon {
    let mut d = Daemon::prepare();
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let mut cmd = d.command();
    cmd.args(&d.extra_args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: between fork and exec only setrlimit (async-signal-safe) runs.
    unsafe {
        cmd.pre_exec(move || {
            setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile).map_err(std::io::Error::from)
        });
    }
    d.spawn(cmd)
}

fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One `/_ping` on a new connection: its time, or None if it failed.
fn ping(d: &Daemon) -> Option<Duration> {
    let t = Instant::now();
    let r = try_request(
        &d.sock,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .ok()?;
    (r.status == 200).then(|| t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn five_thousand_idle_connections_leave_the_cli_served_and_files_bounded() {
    let hard = raise_own_nofile();
    assert!(hard >= 6000, "the open-files hard limit here is {hard}");
    // A cap of 1,500 (nofile 2,000): the 5,000 idle connections exceed it.
    let d = daemon(2000, &[]);
    let pid = d.pid();
    let before = fds(pid);
    let mut idle = Vec::new();
    for _ in 0..5000 {
        // Connections past the cap are accepted by the kernel and then
        // closed by berthd; the client only notices when it reads.
        idle.push(UnixStream::connect(&d.sock).unwrap());
    }
    // Meanwhile: pings and the CLI are served.
    let mut times = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        times.push(ping(&d).expect("a ping failed beside 5,000 idle connections"));
        std::thread::sleep(Duration::from_millis(50));
    }
    d.docker_ok(&["version"]);
    d.docker_ok(&["ps"]);
    let most = fds(pid);
    let m = median(times.clone());
    println!(
        "5,000 idle connections: berthd fds {before} -> {most}, pings {} median {m:?} max {:?}",
        times.len(),
        times.iter().max().unwrap()
    );
    assert!(m < Duration::from_millis(100), "median ping {m:?}");
    assert!(most <= 1500 + 64, "berthd holds {most} files");
    // Berthd closed the idle ones it evicted: they read EOF.
    let closed = idle
        .iter()
        .filter(|s| {
            s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            match (&**s).read(&mut [0u8; 1]) {
                Ok(0) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Ok(_) => false,
            }
        })
        .count();
    assert!(closed >= 3400, "only {closed} idle connections were closed");
    drop(idle);
    assert!(
        wait_for(Duration::from_secs(10), || fds(pid) <= before + 8),
        "berthd still holds {} files (before: {before})",
        fds(pid)
    );
    d.stop();
}

#[test]
fn clients_that_never_read_are_dropped_and_memory_stays_bounded() {
    raise_own_nofile();
    let d = daemon(20000, &[("BERTH_TEST_WRITE_STALL_MS", "1000")]);
    load_busybox(&d);
    // 24 MB of log: 24,000 lines of 1,000 bytes.
    d.docker_ok(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "yes $(head -c 999 /dev/zero | tr '\\0' a) | head -n 24000",
    ]);
    let pid = d.pid();
    let (fd0, rss0) = (fds(pid), rss_kib(pid));
    let mut readers = Vec::new();
    for i in 0..60 {
        let path = if i % 10 == 0 {
            "/containers/big/export"
        } else {
            "/containers/big/logs?stdout=1"
        };
        let s = UnixStream::connect(&d.sock).unwrap();
        // A small receive buffer: berthd's writes block soon.
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &4096).unwrap();
        (&s).write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        readers.push(s);
    }
    // While they stall: pings are served; memory and files stay bounded.
    let mut most_rss = 0;
    let mut times = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        times.push(ping(&d).expect("a ping failed beside clients that never read"));
        most_rss = most_rss.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    // berthd closed them: each reads what was buffered, then EOF, far
    // short of the whole body.
    let mut cut = 0;
    for mut s in readers {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut n = 0usize;
        let mut buf = [0u8; 65536];
        let ended = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
            if n > 20_000_000 {
                break false;
            }
        };
        if ended && n < 20_000_000 {
            cut += 1;
        }
    }
    let grown = most_rss.saturating_sub(rss0);
    println!(
        "60 clients never reading (logs, export): berthd RSS +{grown} KiB at most, pings median {:?}, {cut} cut",
        median(times.clone())
    );
    assert_eq!(cut, 60, "connections berthd did not close");
    assert!(grown < 512 * 1024, "berthd grew {grown} KiB");
    assert!(median(times) < Duration::from_millis(100));
    assert!(
        wait_for(Duration::from_secs(10), || fds(pid) <= fd0 + 4),
        "berthd still holds {} files (before: {fd0})",
        fds(pid)
    );
    // A reader that keeps reading gets all of it.
    let o = d.docker(&["logs", "big"]);
    assert_eq!(o.stdout.len(), 24_000 * 1000);
    d.docker_ok(&["rm", "big"]);
    d.stop();
}

#[test]
fn a_burst_of_ten_thousand_short_connections_leaves_the_cli_served() {
    raise_own_nofile();
    let d = Daemon::start();
    let pid = d.pid();
    let before = fds(pid);
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let most_fds = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, most) = (stop.clone(), most_fds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                most.fetch_max(fds(pid) as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (sock, failed) = (d.sock.clone(), failed.clone());
            std::thread::spawn(move || {
                for _ in 0..(10_000 / 32 + 1) {
                    let ok = try_request(
                        &sock,
                        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    )
                    .is_ok_and(|r| r.status == 200);
                    if !ok {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    // The CLI and pings meanwhile.
    let mut times = Vec::new();
    let mut cli = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        times.push(ping(&d).expect("a ping failed during the burst"));
        d.docker_ok(&["ps"]);
        cli += 1;
    }
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let m = median(times.clone());
    println!(
        "10,016 short connections: {} failed, {cli} docker ps meanwhile, pings median {m:?}, berthd fds at most {}",
        failed.load(Ordering::SeqCst),
        most_fds.load(Ordering::SeqCst)
    );
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(m < Duration::from_millis(100), "median ping {m:?}");
    assert!(most_fds.load(Ordering::SeqCst) < 1000);
    assert!(wait_for(Duration::from_secs(10), || fds(pid) <= before + 4));
    d.stop();
}
