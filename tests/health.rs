//! Healthchecks through the docker CLI: probes run by the shim as execs,
//! `State.Health`, `docker ps` and the `health` filter, dockerd's events
//! and limits; probes that go on while berthd is down, and a killed
//! ContainerActor that neither skips nor doubles a probe.

use crate::common;

use std::time::{Duration, Instant};

use common::containers::*;
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

fn health(d: &Daemon, name: &str) -> Value {
    let s = d.docker_ok(&["inspect", "-f", "{{json .State.Health}}", name]);
    serde_json::from_str(s.trim()).unwrap()
}

fn status_of(d: &Daemon, name: &str) -> String {
    health(d, name)["Status"].as_str().unwrap_or("").to_string()
}

fn ps_status(d: &Daemon, name: &str) -> String {
    d.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

fn ids_with(d: &Daemon, filter: &str) -> String {
    d.docker_ok(&["ps", "-a", "-q", "--no-trunc", "--filter", filter])
}

/// Create a container through the API (fields the CLI cannot send).
fn create_raw(d: &Daemon, version: &str, name: &str, body: Value) -> Response {
    let b = body.to_string();
    d.raw(
        format!(
            "POST /{version}/containers/create?name={name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        )
        .as_bytes(),
    )
}

#[test]
fn states_events_ps_and_filters_as_dockerd() {
    let d = daemon_with_busybox();
    let t0 = d.docker_ok(&["version", "-f", "{{.Server.Os}}"]);
    assert_eq!(t0.trim(), "linux");
    let since = chrono::Utc::now().timestamp().to_string();
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "hc",
            "--network",
            "none",
            "--health-cmd",
            "echo hi; exit $(cat /rc 2>/dev/null || echo 0)",
            "--health-interval",
            "300ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    // Starting until the first probe, one interval after the start.
    assert!(
        ps_status(&d, "hc").ends_with("(health: starting)"),
        "{}",
        ps_status(&d, "hc")
    );
    assert!(ids_with(&d, "health=starting").contains(&id));
    assert!(wait_inspect(
        &d,
        "hc",
        "{{.State.Health.Status}}",
        "healthy",
        Duration::from_secs(10)
    ));
    assert!(ps_status(&d, "hc").ends_with("(healthy)"));
    assert!(ids_with(&d, "health=healthy").contains(&id));
    assert!(!ids_with(&d, "health=none").contains(&id));
    let h = health(&d, "hc");
    assert_eq!(h["FailingStreak"], 0);
    let first = &h["Log"][0];
    assert_eq!(first["ExitCode"], 0);
    assert_eq!(first["Output"], "hi\n");
    assert!(first["Start"].as_str().unwrap() < first["End"].as_str().unwrap());
    // Failing probes: the streak counts, unhealthy at `retries`.
    d.docker_ok(&["exec", "hc", "sh", "-c", "echo 3 > /rc"]);
    assert!(wait_inspect(
        &d,
        "hc",
        "{{.State.Health.Status}}",
        "unhealthy",
        Duration::from_secs(10)
    ));
    assert!(ps_status(&d, "hc").ends_with("(unhealthy)"));
    assert!(ids_with(&d, "health=unhealthy").contains(&id));
    // Five more probes: the log keeps five, the streak goes on counting.
    std::thread::sleep(Duration::from_millis(2500));
    let h = health(&d, "hc");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 6, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert_eq!(log.len(), 5, "{h}");
    assert!(log.iter().all(|r| r["ExitCode"] == 3), "{h}");
    // Events as dockerd's: each probe an exec (create, start, die with
    // its exit code), the status changes as `health_status: X`.
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=hc",
        "--format",
        "{{.Action}}#{{index .Actor.Attributes \"execID\"}}#{{index .Actor.Attributes \"exitCode\"}}",
    ]);
    let lines: Vec<&str> = ev.lines().collect();
    let probe = "/bin/sh -c echo hi; exit $(cat /rc 2>/dev/null || echo 0)";
    let creates: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("exec_create: {probe}#")))
        .copied()
        .collect();
    assert!(creates.len() >= 8, "{ev}");
    let exec_id = creates[0].split('#').nth(1).unwrap();
    assert_eq!(exec_id.len(), 64, "{ev}");
    let pos = |s: &str| lines.iter().position(|l| *l == s);
    let c = pos(&format!("exec_create: {probe}#{exec_id}#")).unwrap();
    let s = pos(&format!("exec_start: {probe}#{exec_id}#")).unwrap();
    let e = pos(&format!("exec_die#{exec_id}#0")).unwrap();
    assert!(c < s && s < e, "{ev}");
    let healthy = pos("health_status: healthy##").expect("health_status: healthy");
    let unhealthy = pos("health_status: unhealthy##").expect("health_status: unhealthy");
    assert!(e < healthy && healthy < unhealthy, "{ev}");
    // One event per change, not per probe.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("health_status"))
            .count(),
        2,
        "{ev}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("exec_die#") && l.ends_with("#3")));
    // Stopped: the last health stays (inspect and the filter), the status
    // column is the exit's.
    d.docker_ok(&["stop", "-t", "1", "hc"]);
    assert_eq!(status_of(&d, "hc"), "unhealthy");
    assert!(ps_status(&d, "hc").starts_with("Exited (137)"));
    assert!(ids_with(&d, "health=unhealthy").contains(&id));
    // Started again: starting, streak 0, the last run's log kept.
    d.docker_ok(&["start", "hc"]);
    let h = health(&d, "hc");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
    // The filter's values are checked as dockerd checks them.
    let o = d.docker(&["ps", "--filter", "health=bogus"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unrecognised filter value for health: bogus")
    );
    // A container without a healthcheck: no Health, `none`.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(inspect(&d, "plain", "{{json .State.Health}}"), "null");
    let plain = inspect(&d, "plain", "{{.Id}}");
    assert!(ids_with(&d, "health=none").contains(&plain));
    assert!(!ids_with(&d, "health=none").contains(&id));
    assert!(!ps_status(&d, "plain").contains('('));
}

#[test]
fn timeouts_failed_execs_output_cap_start_period_and_limits() {
    let d = daemon_with_busybox();
    let run = |name: &str, args: &[&str]| {
        let mut a = vec!["run", "-d", "--name", name, "--network", "none"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "sleep", "1000"]);
        d.docker_ok(&a);
    };
    // A probe past its timeout is killed: -1 and dockerd's words.
    run(
        "slow",
        &[
            "--health-cmd",
            "sleep 30",
            "--health-timeout",
            "500ms",
            "--health-interval",
            "300ms",
        ],
    );
    // The output is capped at 4096 bytes, `...` after.
    run(
        "loud",
        &[
            "--health-cmd",
            "head -c 10000 /dev/zero | tr '\\0' a",
            "--health-interval",
            "300ms",
        ],
    );
    // Failures inside the start period do not count while starting.
    run(
        "warm",
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "300ms",
            "--health-retries",
            "1",
            "--health-start-period",
            "60s",
            "--health-start-interval",
            "300ms",
        ],
    );
    // An exec-form probe whose binary does not exist: the runtime's error.
    let r = create_raw(
        &d,
        "v1.41",
        "gone",
        serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "1000"],
            "HostConfig": {"NetworkMode": "none"},
            "Healthcheck": {"Test": ["CMD", "nosuch"], "Interval": 300_000_000}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    d.docker_ok(&["start", "gone"]);
    // NONE: no healthcheck at all.
    run("none", &["--no-healthcheck"]);
    assert!(wait_for(Duration::from_secs(15), || {
        health(&d, "slow")["FailingStreak"].as_i64() >= Some(2)
            && health(&d, "loud")["Log"]
                .as_array()
                .is_some_and(|l| !l.is_empty())
            && health(&d, "warm")["Log"]
                .as_array()
                .is_some_and(|l| l.len() >= 2)
            && health(&d, "gone")["Log"]
                .as_array()
                .is_some_and(|l| !l.is_empty())
    }));
    let slow = health(&d, "slow");
    assert_eq!(slow["Log"][0]["ExitCode"], -1, "{slow}");
    assert_eq!(
        slow["Log"][0]["Output"], "Health check exceeded timeout (500ms)",
        "{slow}"
    );
    // The killed probe is gone from the container.
    let top = d.docker_ok(&["top", "slow"]);
    assert!(
        top.lines().filter(|l| l.contains("sleep 30")).count() <= 1,
        "{top}"
    );
    let loud = health(&d, "loud");
    let out = loud["Log"][0]["Output"].as_str().unwrap();
    assert_eq!(out.len(), 4096 + 3);
    assert!(out.ends_with("aaa..."));
    assert_eq!(loud["Status"], "healthy");
    let warm = health(&d, "warm");
    assert_eq!(warm["Status"], "starting", "{warm}");
    assert_eq!(warm["FailingStreak"], 0, "{warm}");
    assert!(warm["Log"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["ExitCode"] == 1));
    let gone = health(&d, "gone");
    assert_eq!(gone["Log"][0]["ExitCode"], -1);
    let msg = gone["Log"][0]["Output"].as_str().unwrap();
    assert!(
        msg.starts_with("OCI runtime exec failed: ")
            && msg.contains("nosuch")
            && msg.ends_with(": unknown"),
        "{msg}"
    );
    assert_eq!(inspect(&d, "none", "{{json .State.Health}}"), "null");
    assert_eq!(
        inspect(&d, "none", "{{json .Config.Healthcheck.Test}}"),
        "[\"NONE\"]"
    );
    // dockerd's limits and messages.
    for (field, v) in [("Interval", 100), ("Timeout", 5), ("StartPeriod", 999_999)] {
        let r = create_raw(
            &d,
            "v1.41",
            "",
            serde_json::json!({"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], field: v}}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.json()["message"],
            format!("{field} in Healthcheck cannot be less than 1ms")
        );
    }
    let r = create_raw(
        &d,
        "v1.44",
        "",
        serde_json::json!({"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 10}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "StartInterval in Healthcheck cannot be less than 1ms"
    );
    // Before 1.44 StartInterval is not the client's to set: ignored.
    let r = create_raw(
        &d,
        "v1.43",
        "old",
        serde_json::json!({"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 10}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        inspect(&d, "old", "{{.Config.Healthcheck.StartInterval}}"),
        "0s"
    );
    let r = create_raw(
        &d,
        "v1.41",
        "",
        serde_json::json!({"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], "Retries": -1}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Retries in Healthcheck cannot be negative"
    );
}

#[test]
fn an_image_healthcheck_runs_and_a_paused_container_is_not_probed() {
    let d = daemon_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=300ms --retries=1 CMD [\"sh\", \"-c\", \"echo $((1+1)) >> /probes\"]\n",
    )
    .unwrap();
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "withhc"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--network",
        "none",
        "withhc",
        "sleep",
        "1000",
    ]);
    assert!(wait_inspect(
        &d,
        "img",
        "{{.State.Health.Status}}",
        "healthy",
        Duration::from_secs(10)
    ));
    assert_eq!(
        inspect(&d, "img", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","sh","-c","echo $((1+1)) >> /probes"]"#
    );
    // Paused: no probe runs (the frozen container could not answer).
    d.docker_ok(&["pause", "img"]);
    let count = |d: &Daemon| {
        d.docker_ok(&["exec", "img", "wc", "-l", "/probes"])
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    let n0 = health(&d, "img")["Log"].as_array().unwrap().last().unwrap()["End"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    let n1 = health(&d, "img")["Log"].as_array().unwrap().last().unwrap()["End"].clone();
    assert_eq!(n0, n1, "a probe ran in a paused container");
    assert!(ps_status(&d, "img").ends_with("(Paused)"));
    d.docker_ok(&["unpause", "img"]);
    let before = count(&d);
    assert!(wait_for(Duration::from_secs(5), || count(&d) > before));
    assert_eq!(status_of(&d, "img"), "healthy");
}

/// The uptime in each line of `/probes` (one line per probe).
fn probe_times(d: &Daemon, name: &str) -> Vec<f64> {
    d.docker_ok(&["exec", name, "cat", "/probes"])
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn probes_go_on_while_berthd_is_down_and_killed_actors_skip_or_double_none() {
    let mut d = Daemon::builder()
        .arg("--live-restore")
        .arg("--testing-chaos-control")
        .start();
    load_busybox(&d);
    // Healthy for its first four probes, unhealthy after.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "lr",
        "--network",
        "none",
        "--health-cmd",
        "cat /proc/uptime >> /probes; test $(wc -l < /probes) -lt 5",
        "--health-interval",
        "500ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(wait_inspect(
        &d,
        "lr",
        "{{.State.Health.Status}}",
        "healthy",
        Duration::from_secs(10)
    ));
    let killed_at = chrono::Utc::now();
    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    std::thread::sleep(Duration::from_secs(4));
    let mut d = d.restart();
    // At once, no probe awaited: the state the shim reached meanwhile.
    let h = health(&d, "lr");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap()["Start"]
        .as_str()
        .unwrap()
        .to_string();
    let last = chrono::DateTime::parse_from_rfc3339(&last).unwrap();
    assert!(last > killed_at, "no probe while berthd was down: {h}");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 3, "{h}");
    // Kill the container's actor, again and again, while probes run.
    let id = inspect(&d, "lr", "{{.Id}}");
    let t = Instant::now();
    for _ in 0..5 {
        let r = d.raw(
            format!(
                "POST /_berth/chaos/kill?actor=container:{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 204);
        std::thread::sleep(Duration::from_millis(730));
    }
    assert!(t.elapsed() > Duration::from_secs(3));
    // Once more, a SIGKILL of berthd.
    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    std::thread::sleep(Duration::from_millis(1200));
    let d = d.restart();
    std::thread::sleep(Duration::from_millis(1200));
    let times = probe_times(&d, "lr");
    assert!(times.len() >= 15, "{times:?}");
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // One schedule, the shim's: never two probes within an interval (a
    // doubled probe), never a gap of two intervals (a skipped one); the
    // uptime has 10 ms steps and a probe takes some time of its own.
    let min = gaps.iter().cloned().fold(f64::MAX, f64::min);
    let max = gaps.iter().cloned().fold(0.0, f64::max);
    assert!(min >= 0.49, "a probe was doubled: {gaps:?}");
    assert!(max < 1.5, "a probe was skipped: {gaps:?}");
    assert_eq!(status_of(&d, "lr"), "unhealthy");
    d.docker_ok(&["rm", "-f", "lr"]);
}
