//! A chaos soak with numbers (issue 17, item 8): a mixed load through the
//! docker CLI while random actors are killed every 200 ms and berthd
//! itself is killed with SIGKILL every minute (live-restore on), then an
//! account of what was lost.
//!
//! `BERTH_SOAK_SECS` sets the length (default 60 s, the CI version; the
//! full soak is `BERTH_SOAK_SECS=600 cargo test --test integration soak:: -- --nocapture`)
//! and `BERTH_SOAK_KILL9_SECS` the period of the SIGKILLs (default: half
//! the length, at most 60 s). The report is printed; the test asserts:
//! berthd never exits on its own, no container, exit code or log line is
//! lost, no request hangs, requests outside a SIGKILL window fail at most
//! 0.5% of the time (the goal, and what runs here show, is none), and
//! nothing is left after the cleanup.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::containers::load_busybox;
use common::registry::Registry;
use common::*;

/// A request slower than this hung.
const HUNG: Duration = Duration::from_secs(60);
/// The counter containers.
const COUNTERS: usize = 10;
/// Requests that started within this long after berthd answered again
/// still count to the SIGKILL window (clients reconnecting).
const GRACE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Tally {
    ok: u64,
    /// Failed outside a SIGKILL window, with the first few messages.
    failed: u64,
    failed_in_window: u64,
    hung: u64,
    samples: Vec<String>,
}

struct Soak {
    sock: PathBuf,
    dir: PathBuf,
    stop: AtomicBool,
    /// Periods when berthd was down (from the SIGKILL to the first answer
    /// after the restart, plus GRACE); the last one may be open.
    windows: Mutex<Vec<(Instant, Option<Instant>)>>,
    tallies: Mutex<BTreeMap<&'static str, Tally>>,
    /// Containers run to exit with their exit code and lines.
    finished: Mutex<Vec<String>>,
    seq: AtomicU64,
    kills: AtomicU64,
    /// The busybox image in the loopback registry.
    remote: String,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Soak {
    fn docker(&self, args: &[&str]) -> Option<Out> {
        let mut child = docker_cmd(&self.dir)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        let started = Instant::now();
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if started.elapsed() > HUNG {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let o = child.wait_with_output().expect("docker output");
        Some(Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        })
    }

    fn in_window(&self, from: Instant, to: Instant) -> bool {
        self.windows.lock().unwrap().iter().any(|(a, b)| {
            let b = b.map(|b| b + GRACE);
            to >= *a && b.is_none_or(|b| from <= b)
        })
    }

    /// Run one operation and count it under `kind`: `check` says whether
    /// the output is the expected one (an error names what differs).
    fn op(
        &self,
        kind: &'static str,
        args: &[&str],
        check: impl FnOnce(&Out) -> Result<(), String>,
    ) -> bool {
        let from = Instant::now();
        let out = self.docker(args);
        let to = Instant::now();
        let mut t = self.tallies.lock().unwrap();
        let t = t.entry(kind).or_default();
        let Some(out) = out else {
            t.hung += 1;
            t.samples.push(format!("{kind}: {args:?} hung"));
            return false;
        };
        match check(&out) {
            Ok(()) => {
                t.ok += 1;
                true
            }
            Err(why) => {
                let window = self.in_window(from, to);
                if window {
                    t.failed_in_window += 1;
                } else {
                    t.failed += 1;
                }
                if t.samples.len() < 6 {
                    t.samples.push(format!(
                        "{kind}{}: {args:?}: {why}: {}",
                        if window { " (SIGKILL window)" } else { "" },
                        out.stderr.trim()
                    ));
                }
                false
            }
        }
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }
}

fn success(o: &Out) -> Result<(), String> {
    if o.code == Some(0) {
        Ok(())
    } else {
        Err(format!("exit {:?}", o.code))
    }
}

fn lines(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

fn secs(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn kill_actor(sock: &Path, actor: &str) {
    let _ = try_request(
        sock,
        format!("POST /_berth/chaos/kill?actor={actor} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}

/// Mount points under `dir`.
#[test]
fn chaos_soak_loses_nothing() {
    let total = Duration::from_secs(secs("BERTH_SOAK_SECS", 60));
    let kill9 = Duration::from_secs(secs(
        "BERTH_SOAK_KILL9_SECS",
        (total.as_secs() / 2).clamp(1, 60),
    ));
    let reg = Registry::start(None);
    let mut d = Daemon::builder()
        .arg("--testing-chaos-control")
        .config(serde_json::json!({"live-restore": true}))
        .start();
    load_busybox(&d);
    let remote = format!("{}/soak/busybox:latest", reg.addr);
    d.docker_ok(&["tag", "busybox", &remote]);
    d.docker_ok(&["push", &remote]);
    let (net, net2) = ("soak", "soak2");
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), net]);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(2), net2]);
    let bridge = format!(
        "br-{}",
        &d.docker_ok(&["network", "inspect", "-f", "{{.Id}}", net])[..12]
    );
    for i in 0..COUNTERS {
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            &format!("ctr-{i}"),
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo $i; i=$((i+1)); usleep 20000; done",
        ]);
    }
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ss",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do usleep 50000; done",
    ]);

    let s = Arc::new(Soak {
        sock: d.sock.clone(),
        dir: d.dir.path().to_path_buf(),
        stop: AtomicBool::new(false),
        windows: Mutex::new(Vec::new()),
        tallies: Mutex::new(BTreeMap::new()),
        finished: Mutex::new(Vec::new()),
        seq: AtomicU64::new(0),
        kills: AtomicU64::new(0),
        remote: remote.clone(),
    });
    let mut workers = Vec::new();
    type Work = fn(&Soak);
    let work: Vec<(&str, Work)> = vec![
        ("run --rm", |s| {
            s.op(
                "run --rm (attach)",
                &[
                    "run",
                    "--rm",
                    "--network",
                    "soak",
                    "busybox",
                    "sh",
                    "-c",
                    "echo ok; exit 3",
                ],
                |o| match (o.code, o.stdout.as_str()) {
                    (Some(3), "ok\n") => Ok(()),
                    (c, out) => Err(format!("exit {c:?}, output {out:?}")),
                },
            );
        }),
        ("run -d + wait", |s| {
            let name = format!("t-{}", s.next());
            if s.op(
                "run -d",
                &[
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "busybox",
                    "sh",
                    "-c",
                    "seq 1 20; exit 5",
                ],
                success,
            ) {
                s.finished.lock().unwrap().push(name.clone());
                s.op("wait", &["wait", &name], |o| {
                    if o.stdout.trim() == "5" {
                        Ok(())
                    } else {
                        Err(format!("printed {:?}", o.stdout))
                    }
                });
                s.op("logs -f", &["logs", "-f", &name], |o| {
                    if o.stdout == lines(20) {
                        Ok(())
                    } else {
                        Err(format!("printed {:?}", o.stdout))
                    }
                });
            }
        }),
        ("exec", |s| {
            let n = s.next();
            let c = format!("ctr-{}", n % COUNTERS as u64);
            let want = format!("x{n}\n");
            s.op("exec", &["exec", &c, "echo", &format!("x{n}")], |o| {
                if o.code == Some(0) && o.stdout == want {
                    Ok(())
                } else {
                    Err(format!("exit {:?}, output {:?}", o.code, o.stdout))
                }
            });
        }),
        ("stop/start", |s| {
            s.op("stop", &["stop", "-t", "5", "ss"], success);
            s.op("start", &["start", "ss"], success);
        }),
        ("network connect", |s| {
            let c = format!("ctr-{}", s.next() % COUNTERS as u64);
            let connected = s.op(
                "network connect",
                &["network", "connect", "soak2", &c],
                success,
            );
            if !connected
                || !s.op(
                    "network disconnect",
                    &["network", "disconnect", "soak2", &c],
                    success,
                )
            {
                // As a user would after a failed connect or disconnect:
                // make sure it is not connected (not counted; again if
                // berthd was down).
                for _ in 0..20 {
                    match s.docker(&["network", "disconnect", "soak2", &c]) {
                        Some(o) if o.code == Some(0) || o.stderr.contains("is not connected") => {
                            break
                        }
                        _ => std::thread::sleep(Duration::from_millis(500)),
                    }
                }
            }
        }),
        ("volume", |s| {
            let v = format!("v-{}", s.next());
            if s.op("volume create", &["volume", "create", &v], success) {
                s.op("volume rm", &["volume", "rm", &v], success);
            }
        }),
        ("pull/ps", |s| {
            s.op("pull", &["pull", "-q", &s.remote], success);
            s.op("ps", &["ps", "-a", "-q"], success);
        }),
    ];
    for (name, f) in work {
        let s = s.clone();
        workers.push(
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    while s.running() {
                        f(&s);
                    }
                })
                .unwrap(),
        );
    }
    let killer = {
        let s = s.clone();
        std::thread::spawn(move || {
            let targets = [
                "front-door",
                "event-bus",
                "containers",
                "networks",
                "volumes",
                "image-store",
                "execs",
                "log-streams",
                "network:soak",
                "network:soak2",
                "container:ss",
            ];
            let mut seed = 0x9e3779b97f4a7c15u64;
            while s.running() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % (targets.len() as u64 + COUNTERS as u64)) as usize;
                let target = match targets.get(i) {
                    Some(t) => t.to_string(),
                    None => format!("container:ctr-{}", i - targets.len()),
                };
                kill_actor(&s.sock, &target);
                s.kills.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // berthd: SIGKILLed every `kill9`, started again at once; any other
    // exit is berthd ending on its own.
    let started = Instant::now();
    let mut next_kill9 = started + kill9;
    let mut exits_on_its_own = Vec::new();
    let mut kill9s = 0;
    // The logs of the berthd processes before the current one.
    let mut earlier_logs = String::new();
    while started.elapsed() < total {
        std::thread::sleep(Duration::from_millis(50));
        if !d.alive() {
            let (code, log) = d.wait_exit_keep();
            exits_on_its_own.push(format!("exit {code:?}: {}", tail(&log)));
            earlier_logs.push_str(&log);
            s.windows.lock().unwrap().push((Instant::now(), None));
            d = d.restart();
            ready(&d);
            s.windows.lock().unwrap().last_mut().unwrap().1 = Some(Instant::now());
            continue;
        }
        if Instant::now() >= next_kill9 && started.elapsed() + Duration::from_secs(5) < total {
            s.windows.lock().unwrap().push((Instant::now(), None));
            d.signal(nix::sys::signal::Signal::SIGKILL);
            earlier_logs.push_str(&d.wait_exit_keep().1);
            d = d.restart();
            ready(&d);
            s.windows.lock().unwrap().last_mut().unwrap().1 = Some(Instant::now());
            kill9s += 1;
            next_kill9 = Instant::now() + kill9;
        }
    }
    s.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    killer.join().unwrap();
    // Let the last restarts settle before the account.
    std::thread::sleep(Duration::from_secs(1));

    // Containers lost: every counter container and `ss` still running.
    let mut lost = Vec::new();
    for name in (0..COUNTERS)
        .map(|i| format!("ctr-{i}"))
        .chain(["ss".into()])
    {
        let o = d.docker(&["inspect", "-f", "{{.State.Status}}", &name]);
        let st = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if st != "running" {
            lost.push(format!(
                "{name}: {st:?} {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
    }
    // Exit codes and lines of every container run to its end.
    let finished = s.finished.lock().unwrap().clone();
    let mut codes_lost = Vec::new();
    let mut lines_lost = Vec::new();
    for name in &finished {
        let ok = wait_for(Duration::from_secs(10), || {
            inspect_or_empty(&d, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 5"
        });
        if !ok {
            codes_lost.push(format!(
                "{name}: {:?}",
                inspect_or_empty(&d, name, "{{.State.Status}} {{.State.ExitCode}}")
            ));
        }
        let o = d.docker(&["logs", name]);
        if String::from_utf8_lossy(&o.stdout) != lines(20) {
            lines_lost.push(format!("{name}: {:?}", String::from_utf8_lossy(&o.stdout)));
        }
    }
    // The counters: every number once, in order, from 0.
    let mut counted = 0u64;
    for i in 0..COUNTERS {
        let name = format!("ctr-{i}");
        let o = d.docker(&["logs", &name]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut want = 0u64;
        for l in text.lines() {
            if l != want.to_string() {
                lines_lost.push(format!("{name}: line {want} is {l:?}"));
                break;
            }
            want += 1;
        }
        counted += want;
    }
    // The soak bridge holds exactly the counters' ports (no veth of a
    // removed container left on it).
    let ports = bridge_ports(&bridge);
    // The ports no counter owns: which container's (by the endpoint IDs the
    // network names), for the report.
    let net_id = d
        .docker_ok(&["network", "inspect", "-f", "{{.Id}}", net])
        .trim()
        .to_string();
    let mut owners = BTreeMap::new();
    for i in 0..COUNTERS {
        let id = inspect_or_empty(&d, &format!("ctr-{i}"), "{{.Id}}");
        owners.insert(
            berth_actors::network::host_ifname(&net_id, &id),
            format!("ctr-{i}"),
        );
    }
    let stray: Vec<String> = ports
        .iter()
        .filter(|p| !owners.contains_key(*p))
        .cloned()
        .collect();

    let tallies = s.tallies.lock().unwrap();
    let mut report = format!(
        "soak: {:?}, {} actor kills, {kill9s} SIGKILLs of berthd, {} containers run to their end, {counted} counter lines\n",
        total,
        s.kills.load(Ordering::SeqCst),
        finished.len()
    );
    report.push_str("kind                    ok  failed  failed(SIGKILL window)  hung\n");
    let (mut failed, mut hung, mut total) = (0, 0, 0);
    for (k, t) in tallies.iter() {
        total += t.ok + t.failed + t.failed_in_window + t.hung;
        report.push_str(&format!(
            "{k:<22}{:>5}{:>8}{:>24}{:>6}\n",
            t.ok, t.failed, t.failed_in_window, t.hung
        ));
        failed += t.failed;
        hung += t.hung;
    }
    for t in tallies.values() {
        for m in &t.samples {
            report.push_str(&format!("  {m}\n"));
        }
    }
    report.push_str(&format!(
        "berthd exits on its own: {}; containers lost: {}; exit codes lost: {}; log lines lost: {}; bridge ports: {} (want {COUNTERS})\n",
        exits_on_its_own.len(),
        lost.len(),
        codes_lost.len(),
        lines_lost.len(),
        ports.len()
    ));
    if !stray.is_empty() {
        let eps = d.docker_ok(&["network", "inspect", "-f", "{{json .Containers}}", net]);
        report.push_str(&format!(
            "  ports of no counter on {bridge}: {stray:?}; the network's endpoints: {eps}\n"
        ));
    }
    for l in exits_on_its_own
        .iter()
        .chain(&lost)
        .chain(&codes_lost)
        .chain(&lines_lost)
    {
        report.push_str(&format!("  {l}\n"));
    }
    // What berthd logged about the containers that lost something.
    let log = earlier_logs.clone() + &d.log();
    for l in codes_lost.iter().chain(&lines_lost) {
        let name = l.split(':').next().unwrap_or_default();
        let id = inspect_or_empty(&d, name, "{{.Id}}");
        if id.is_empty() {
            continue;
        }
        report.push_str(&format!("  berthd log of {name} ({id}):\n"));
        for line in log.lines().filter(|x| x.contains(&id[..12])).take(40) {
            report.push_str(&format!("    {line}\n"));
        }
    }
    drop(tallies);
    println!("{report}");

    // Cleanup, then leftovers.
    let all = d.docker_ok(&["ps", "-aq"]);
    let ids: Vec<&str> = all.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        d.docker_ok(&args);
    }
    // A network that keeps an endpoint after every container is gone is a
    // leak: reported with what berthd logged about the endpoints' owners.
    let mut net_leftovers = Vec::new();
    for n in [net, net2] {
        let o = d.docker(&["network", "rm", n]);
        if o.status.success() {
            continue;
        }
        let eps = inspect_or_empty(&d, n, "{{json .Containers}}");
        net_leftovers.push(format!(
            "network {n} not removed: {} endpoints {eps}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
        let log = earlier_logs.clone() + &d.log();
        let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&eps)
            .ok()
            .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
            .unwrap_or_default();
        for id in ids {
            println!("berthd log of {id}:");
            for line in log.lines().filter(|x| x.contains(&id[..12.min(id.len())])) {
                println!("    {line}");
            }
        }
    }
    // berthd drops an endpoint whose container is gone when its network
    // is removed; one dropped means a removal did not leave its network:
    // shown (with what berthd logged about that container) for the reader.
    let log = earlier_logs.clone() + &d.log();
    for line in log
        .lines()
        .filter(|l| l.contains("the endpoint of a container that no longer exists"))
    {
        println!("stale endpoint: {line}");
        if let Some(id) = line.split("container=").nth(1).and_then(|r| r.get(..12)) {
            for l in log.lines().filter(|l| l.contains(id)).take(60) {
                println!("    {l}");
            }
        }
    }
    d.docker_ok(&["volume", "prune", "-af"]);
    let table = berth::network::table_name(&d.exec_root);
    let data_dir = d.dir.path().to_path_buf();
    let containers_dir = d.data_root.join("containers");
    // What the removals left; a process or directory being torn down is
    // given 10 s (a real leak stays).
    let running_leftovers = |d: &Daemon| {
        let mut l = Vec::new();
        let shims = d.shim_pids();
        if !shims.is_empty() {
            l.push(format!("shims {shims:?}"));
        }
        let proxies = d.proxy_pids();
        if !proxies.is_empty() {
            l.push(format!("proxies {proxies:?}"));
        }
        let shim_dirs: Vec<_> = std::fs::read_dir(d.exec_root.join("containers"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if !shim_dirs.is_empty() {
            l.push(format!("shim dirs {shim_dirs:?}"));
        }
        let dirs: Vec<_> = std::fs::read_dir(&containers_dir)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if !dirs.is_empty() {
            l.push(format!("container dirs {dirs:?}"));
        }
        l
    };
    let mut leftovers = running_leftovers(&d);
    if !leftovers.is_empty()
        && wait_for(Duration::from_secs(10), || running_leftovers(&d).is_empty())
    {
        leftovers.clear();
    } else if !leftovers.is_empty() {
        leftovers = running_leftovers(&d);
    }
    leftovers.extend(net_leftovers);
    let nft = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    let nft = String::from_utf8_lossy(&nft.stdout).into_owned();
    let d_log = d.log();
    d.stop();
    let mounts = mounts_under(&data_dir);
    if !mounts.is_empty() {
        leftovers.push(format!("mounts {mounts:?}"));
    }
    if Path::new(&format!("/sys/class/net/{bridge}")).exists() {
        leftovers.push(format!("bridge {bridge}"));
    }
    for p in &stray {
        if Path::new(&format!("/sys/class/net/{p}")).exists() {
            leftovers.push(format!("veth {p}"));
        }
    }
    if nft.contains(&bridge) {
        leftovers.push(format!("nft rules for {bridge}"));
    }
    let ok = exits_on_its_own.is_empty()
        && lost.is_empty()
        && codes_lost.is_empty()
        && lines_lost.is_empty()
        && hung == 0
        // The goal is none; a rare one (a request an actor took and died
        // with that is not safe to make twice) is tolerated up to 0.5%.
        && failed * 200 <= total
        && ports.len() == COUNTERS
        && leftovers.is_empty()
        && finished.len() > 5
        && counted > 1000;
    let mut verdict = format!(
        "failed outside SIGKILL windows {failed} of {total} (at most 1 in 200), hung {hung}, \
         exits on its own {}, containers lost {}, exit codes lost {}, log lines lost {}, \
         bridge ports {} (want {COUNTERS}), finished {} (want > 5), counted {counted} \
         (want > 1000), leftovers {leftovers:?}",
        exits_on_its_own.len(),
        lost.len(),
        codes_lost.len(),
        lines_lost.len(),
        ports.len(),
        finished.len(),
    );
    if !ok {
        // berthd's logs (every process of the run) for the reader.
        let p = std::env::temp_dir().join(format!("berth-soak-{}.log", std::process::id()));
        let _ = std::fs::write(&p, earlier_logs + &d_log);
        verdict.push_str(&format!("; berthd's logs: {}", p.display()));
    }
    println!("leftovers after cleanup: {}", leftovers.len());
    assert!(ok, "{verdict}");
}

fn inspect_or_empty(d: &Daemon, name: &str, fmt: &str) -> String {
    let o = d.docker(&["inspect", "-f", fmt, name]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn ready(d: &Daemon) {
    assert!(
        wait_for(Duration::from_secs(30), || try_request(
            &d.sock,
            b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .is_ok_and(|r| r.status == 200)),
        "berthd did not come back:\n{}",
        tail(&d.log())
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
