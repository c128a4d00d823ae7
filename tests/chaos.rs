//! Chaos: kill actors of a running berthd (through the testing-only chaos
//! control) and check that supervision brings them back while berthd stays up.

use crate::common;

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

/// A killed EventBus loses nothing: an open `docker events` stream goes
/// on (it sees the events published while the bus was down and after),
/// and `--since` replays the history from before the kill.
#[test]
fn killed_event_bus_keeps_its_history_and_open_streams() {
    use std::io::BufRead;
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    // Killed by PID when the test ends, also on a failed assertion.
    let mut child = KillOnDrop(
        docker_cmd(d.dir.path())
            .env("DOCKER_HOST", d.docker_host())
            // From a minute back: the stream is open once it shows ev1.
            .args([
                "events",
                "--since",
                "1m",
                "--filter",
                "type=volume",
                "--format",
                "{{.Action}} {{.Actor.ID}}",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (out, seen) = (child.0.stdout.take().unwrap(), seen.clone());
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(l);
            }
        })
    };
    let has = |l: &str| seen.lock().unwrap().iter().any(|x| x == l);
    d.docker_ok(&["volume", "create", "ev1"]);
    assert!(wait_for(Duration::from_secs(5), || has("create ev1")));
    assert_eq!(kill(&d, "event-bus"), 204);
    // Right after the kill: published whether or not the bus is back.
    d.docker_ok(&["volume", "create", "ev2"]);
    assert!(
        wait_for(Duration::from_secs(5), || d
            .log()
            .contains("child restarted child=event-bus")),
        "{}",
        d.log()
    );
    d.docker_ok(&["volume", "create", "ev3"]);
    assert!(
        wait_for(Duration::from_secs(5), || has("create ev2")
            && has("create ev3")),
        "the open stream saw {:?}",
        seen.lock().unwrap()
    );
    assert!(child.0.try_wait().unwrap().is_none(), "the stream ended");
    // The CLI sends `--until 0s` in whole seconds: let this one pass.
    std::thread::sleep(Duration::from_millis(1100));
    let past = d.docker_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let creates: Vec<&str> = past.lines().filter(|l| l.starts_with("create ")).collect();
    assert_eq!(
        creates,
        ["create ev1", "create ev2", "create ev3"],
        "{past}"
    );
    drop(child);
    reader.join().unwrap();
    d.docker_ok(&["volume", "rm", "ev1", "ev2", "ev3"]);
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

/// ContainerActors killed at random while containers run and clients read
/// ps, inspect and logs: every container keeps running (same pid), its
/// actor comes back adopting it, `docker ps` matches the runtime's truth,
/// and there is exactly one shim per container.
#[test]
fn killed_container_actors_never_touch_their_containers() {
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    common::containers::load_busybox(&d);
    let names = ["c0", "c1", "c2"];
    for n in names {
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            n,
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo $i; i=$((i+1)); usleep 20000; done",
        ]);
    }
    let pid = |n: &str| common::containers::inspect(&d, n, "{{.State.Pid}}");
    let pids: Vec<String> = names.iter().map(|n| pid(n)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers hammer the read side while actors die.
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (host, dir, stop) = (d.docker_host(), d.dir.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for args in [
                        vec!["ps"],
                        vec!["inspect", "c1"],
                        vec!["logs", "--tail", "2", "c2"],
                    ] {
                        let o = common::docker_cmd(&dir)
                            .env("DOCKER_HOST", &host)
                            .args(&args)
                            .output()
                            .unwrap();
                        if !o.status.success() {
                            failures.push(format!(
                                "{i} {args:?}: {}",
                                String::from_utf8_lossy(&o.stderr)
                            ));
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let mut seed = 7u64;
    for _ in 0..15 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let victim = names[(seed >> 33) as usize % names.len()];
        assert_eq!(kill(&d, &format!("container:{victim}")), 204);
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        let failures = r.join().unwrap();
        // Reads never fail: they read the snapshot, not the actors.
        assert!(failures.is_empty(), "{failures:?}");
    }
    // Every actor is back and adopted its container.
    for (n, p) in names.iter().zip(&pids) {
        assert!(common::wait_for(Duration::from_secs(5), || d
            .docker(&["exec", n, "true"])
            .status
            .success()));
        assert_eq!(&pid(n), p, "{n} was restarted");
        assert_eq!(
            common::containers::inspect(&d, n, "{{.State.Status}}"),
            "running"
        );
    }
    let ps = d.docker_ok(&["ps", "-q", "--no-trunc"]);
    let mut ps_ids: Vec<&str> = ps.lines().collect();
    ps_ids.sort();
    let runc = std::process::Command::new("runc")
        .arg("--root")
        .arg(d.exec_root.join("runtime-runc"))
        .args(["list", "-f", "json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&runc.stdout).unwrap();
    let mut running: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "running")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    running.sort();
    assert_eq!(ps_ids, running);
    assert_eq!(d.shim_pids().len(), names.len());
    // And they still obey: stop works through the rebuilt actors.
    for n in names {
        d.docker_ok(&["rm", "-f", n]);
    }
    assert!(common::wait_for(Duration::from_secs(5), || d
        .shim_pids()
        .is_empty()));
    d.stop();
}

#[test]
fn killed_network_actors_keep_addresses_traffic_and_names() {
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    common::containers::load_busybox(&d);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "chaosnet"]);
    for n in ["n0", "n1"] {
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "chaosnet",
            "busybox",
            "sleep",
            "600",
        ]);
    }
    let ips = || {
        d.docker_ok(&[
            "network",
            "inspect",
            "chaosnet",
            "-f",
            "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
        ])
    };
    let before = ips();
    for i in 0..6 {
        let victim = if i % 3 == 2 {
            "networks"
        } else {
            "network:chaosnet"
        };
        // The victim may still be coming back from the previous kill.
        assert!(
            wait_for(Duration::from_secs(5), || kill(&d, victim) == 204),
            "{victim} never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
        // Name resolution reads the snapshot: it never stops.
        let out = d.docker_ok(&["exec", "n0", "ping", "-c1", "-W2", "n1"]);
        assert!(out.contains("1 packets received"), "{out}");
    }
    // The rebuilt actor serves: a third container joins, the others kept
    // their addresses.
    assert!(wait_for(Duration::from_secs(5), || d
        .docker(&[
            "run",
            "-d",
            "--name",
            "n2",
            "--network",
            "chaosnet",
            "busybox",
            "sleep",
            "600"
        ])
        .status
        .success()));
    let after = ips();
    for part in before.split_whitespace() {
        assert!(after.contains(part), "{part} changed: {after}");
    }
    d.docker_ok(&["rm", "-f", "n0", "n1", "n2"]);
    d.docker_ok(&["network", "rm", "chaosnet"]);
    assert!(d.log().contains("network actor rebuilt"));
    d.stop();
}

/// Volume actors and their supervisor (and the container supervisor) die
/// while a container writes to a volume: the writes never stop, the
/// volume keeps its user (removal refused), its data and its record.
#[test]
fn killed_volume_actors_keep_users_and_data() {
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    common::containers::load_busybox(&d);
    d.docker_ok(&["volume", "create", "--label", "k=v", "chaosvol"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "chaosvol:/d",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i >> /d/log; i=$((i+1)); usleep 20000; done",
    ]);
    let log = d.data_root.join("volumes/chaosvol/_data/log");
    let lines = || {
        std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert!(wait_for(Duration::from_secs(5), || lines() > 0));
    let inspect = || d.docker_ok(&["volume", "inspect", "chaosvol"]);
    let before = inspect();
    for victim in [
        "volume:chaosvol",
        "volume:chaosvol",
        "volumes",
        "volume:chaosvol",
        "containers",
        "volume:chaosvol",
    ] {
        assert!(
            wait_for(Duration::from_secs(5), || kill(&d, victim) == 204),
            "{victim} never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The rebuilt actor still counts the writer: removal is refused.
    assert!(
        wait_for(Duration::from_secs(5), || {
            let o = d.docker(&["volume", "rm", "chaosvol"]);
            assert!(
                !o.status.success(),
                "the volume was removed under its writer"
            );
            String::from_utf8_lossy(&o.stderr).contains("volume is in use")
        }),
        "the volume's removal was never refused as in use"
    );
    assert_eq!(inspect(), before);
    let n = lines();
    assert!(
        wait_for(Duration::from_secs(5), || lines() > n + 5),
        "the writer stopped writing"
    );
    // Everything still obeys: the container goes, then its volume.
    d.docker_ok(&["rm", "-f", "writer"]);
    assert!(wait_for(Duration::from_secs(5), || d
        .docker(&["volume", "rm", "chaosvol"])
        .status
        .success()));
    assert!(!log.exists());
    d.stop();
}

/// `docker logs -f` of a container printing a counter at 200 lines/s (its
/// log rotating every ~280 lines) while the stream's LogStream actor is
/// killed 10 times and the log-streams supervisor once: the client's
/// output has every number exactly once, in order, and ends when the
/// container exits.
#[test]
fn killed_log_streams_resume_where_they_delivered() {
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    common::containers::load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "--log-opt",
        "max-size=20k",
        "--log-opt",
        "max-file=5",
        "busybox",
        "sh",
        "-c",
        "sleep 1; i=0; while [ $i -lt 2000 ]; do echo $i; i=$((i+1)); usleep 5000; done",
    ]);
    let mut follower = common::docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["logs", "-f", "counter"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let mut kills = 0;
    for i in 0..11 {
        std::thread::sleep(Duration::from_millis(600));
        let target = if i == 5 {
            "log-streams"
        } else {
            "logs:counter"
        };
        // Between a kill and the restart the stream may have no actor.
        if wait_for(Duration::from_secs(2), || kill(&d, target) == 204) {
            kills += 1;
        }
    }
    assert_eq!(kills, 11, "a kill was refused");
    assert_eq!(d.docker_ok(&["wait", "counter"]).trim(), "0");
    let status = follower.wait().unwrap();
    assert!(status.success(), "docker logs -f failed");
    let text = reader.join().unwrap();
    let got: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    let want: Vec<u64> = (0..2000).collect();
    if got != want {
        let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "{} lines, first difference at {first_bad:?}\nberthd log:\n{}",
            got.len(),
            d.log()
        );
    }
    d.docker_ok(&["rm", "counter"]);
    d.stop();
}

/// `docker exec -i` streaming 10 MB through `cat` while its exec actor
/// and its container's actor are killed: the output is byte-exact, the
/// exit code right, and the exec's record (answered by its restarted
/// actor) shows it.
#[test]
fn killed_exec_and_container_actors_leave_an_exec_stream_whole() {
    use std::io::{Read, Write};
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    common::containers::load_busybox(&d);
    d.docker_ok(&["run", "-d", "--name", "ex", "busybox", "sleep", "600"]);
    // Binary input, with ctrl-p ctrl-q in it: detach keys apply to a TTY
    // only, this stream must pass whole.
    let input: Vec<u8> = (0..10u32 << 20)
        .map(|i| match i % 4099 {
            7 => 0x10,
            8 => 0x11,
            _ => (i.wrapping_mul(2_654_435_761) >> 13) as u8,
        })
        .collect();
    let mut child = common::docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["exec", "-i", "ex", "sh", "-c", "cat; exit 5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.clone();
    let writer = std::thread::spawn(move || {
        // About 1.5 s of streaming, so the kills land in the middle.
        for chunk in data.chunks(64 * 1024) {
            stdin.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(9));
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    let mut exec_id = String::new();
    assert!(wait_for(Duration::from_secs(10), || {
        exec_id = common::containers::inspect(&d, "ex", "{{range .ExecIDs}}{{.}}{{end}}");
        !exec_id.is_empty()
    }));
    for i in 0..6 {
        let target = if i % 2 == 0 {
            format!("exec:{exec_id}")
        } else {
            "container:ex".to_string()
        };
        assert!(
            wait_for(Duration::from_secs(2), || kill(&d, &target) == 204),
            "killing {target}"
        );
        std::thread::sleep(Duration::from_millis(150));
    }
    writer.join().unwrap();
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    assert_eq!(status.code(), Some(5));
    assert_eq!(out.len(), input.len());
    assert!(out == input, "the output differs from the input");
    let r = d.get(&format!("/exec/{exec_id}/json")).json();
    assert_eq!(r["ExitCode"], 5);
    assert_eq!(r["Running"], false);
    d.docker_ok(&["rm", "-f", "ex"]);
    d.stop();
}

/// A `docker wait` outlives the container's actor: while the CLI waits,
/// the actor is killed three times and the ContainerSupervisor once; the
/// wait still prints the container's own exit code (it exits while its
/// actors come and go), and `docker run` (which waits with `next-exit`)
/// ends with its container's code across a kill too.
#[test]
fn a_docker_wait_outlives_killed_container_actors() {
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    common::containers::load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "waited",
        "busybox",
        "sh",
        "-c",
        "sleep 3; exit 7",
    ]);
    let waiter = common::docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["wait", "waited"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for target in [
        "container:waited",
        "container:waited",
        "containers",
        "container:waited",
    ] {
        assert_eq!(kill(&d, target), 204, "{target}");
        std::thread::sleep(Duration::from_millis(400));
    }
    let o = waiter.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "7");

    let o = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1200));
            assert_eq!(kill(&d, "container:runner"), 204);
        });
        common::docker_cmd(d.dir.path())
            .env("DOCKER_HOST", d.docker_host())
            .args([
                "run",
                "--name",
                "runner",
                "busybox",
                "sh",
                "-c",
                "sleep 3; exit 5",
            ])
            .output()
            .unwrap()
    });
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.stop();
}
