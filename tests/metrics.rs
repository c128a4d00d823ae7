//! The metrics endpoint (`metrics-addr`) of a real berthd: dockerd's engine
//! metrics and berth's own after real work through the docker CLI, a
//! reload that moves it, a killed `metrics` actor that comes back.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::containers::*;
use common::*;

fn scrape(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The value of the first sample whose line starts with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn at_least(text: &str, series: &str, min: f64) {
    let v = value(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert!(v >= min, "{series} = {v}, want >= {min}\n{text}");
}

#[test]
fn engine_and_berth_metrics_after_real_work_and_a_reload() {
    let port = free_port();
    let d = Daemon::builder()
        .config(serde_json::json!({"metrics-addr": format!("127.0.0.1:{port}")}))
        .arg("--testing-chaos-control")
        .start();
    load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--network",
        "none",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sick",
        "--network",
        "none",
        "--health-cmd",
        "false",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    d.docker_ok(&["create", "--name", "never", "busybox", "true"]);
    d.docker_ok(&["create", "--name", "gone", "busybox", "true"]);
    d.docker_ok(&["rm", "gone"]);
    d.docker_ok(&["tag", "busybox", "metrics-tag:1"]);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "mnet"]);
    d.docker_ok(&["network", "rm", "mnet"]);
    assert!(wait_inspect(
        &d,
        "sick",
        "{{.State.Health.Status}}",
        "unhealthy",
        Duration::from_secs(10)
    ));
    // A ContainerActor killed: its supervisor's restart is counted.
    let id = d
        .docker_ok(&["inspect", "-f", "{{.Id}}", "ok"])
        .trim()
        .to_string();
    let r = d.raw(format!("POST /_berth/chaos/kill?actor=container:{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!(r.status, 204);
    assert!(wait_for(Duration::from_secs(5), || d
        .log()
        .contains("rebuilding it from its record")));
    let (status, m) = scrape(port, "/metrics").expect("the metrics endpoint answers");
    assert_eq!(status, 200);
    // dockerd's names and labels.
    assert_eq!(
        value(
            &m,
            "engine_daemon_container_states_containers{state=\"running\"}"
        ),
        Some(2.0),
        "{m}"
    );
    at_least(
        &m,
        "engine_daemon_container_states_containers{state=\"stopped\"}",
        1.0,
    );
    at_least(
        &m,
        "engine_daemon_container_actions_seconds_count{action=\"create\"}",
        4.0,
    );
    at_least(
        &m,
        "engine_daemon_container_actions_seconds_count{action=\"start\"}",
        3.0,
    );
    at_least(
        &m,
        "engine_daemon_container_actions_seconds_count{action=\"delete\"}",
        1.0,
    );
    at_least(
        &m,
        "engine_daemon_image_actions_seconds_count{action=\"tag\"}",
        1.0,
    );
    at_least(
        &m,
        "engine_daemon_network_actions_seconds_count{action=\"create\"}",
        1.0,
    );
    at_least(
        &m,
        "engine_daemon_network_actions_seconds_count{action=\"delete\"}",
        1.0,
    );
    at_least(&m, "engine_daemon_health_checks_total", 4.0);
    at_least(&m, "engine_daemon_health_checks_failed_total", 3.0);
    let total = value(&m, "engine_daemon_health_checks_total").unwrap();
    let failed = value(&m, "engine_daemon_health_checks_failed_total").unwrap();
    assert!(failed < total, "the passing probes are not failures:\n{m}");
    at_least(&m, "engine_daemon_events_total", 10.0);
    assert!(
        m.lines()
            .any(|l| l.starts_with("engine_daemon_engine_info{")
                && l.contains("daemon_id=\"")
                && l.ends_with(" 1")),
        "{m}"
    );
    at_least(&m, "engine_daemon_engine_cpus_cpus", 1.0);
    // berth's own.
    at_least(
        &m,
        "berth_api_request_duration_seconds_count{method=\"POST\",route=\"/containers/create\"}",
        4.0,
    );
    at_least(&m, "berth_actor_restarts_total{kind=\"container\"}", 1.0);
    assert_eq!(value(&m, "berth_shims_alive"), Some(2.0), "{m}");
    assert!(m.contains("berth_actor_requests_in_flight{kind=\""), "{m}");
    assert!(m.trim_end().ends_with("# EOF"), "{m}");
    assert_eq!(scrape(port, "/other").map(|r| r.0), Some(404));

    // The metrics actor killed: it is restarted and listens again.
    let r = d.raw(b"POST /_berth/chaos/kill?actor=metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 204);
    assert!(
        wait_for(Duration::from_secs(5), || d
            .log()
            .contains("child restarted child=metrics")),
        "{}",
        d.log()
    );
    assert!(wait_for(Duration::from_secs(5), || scrape(
        port, "/metrics"
    )
    .is_some_and(|(s, _)| s == 200)));
    let (_, m) = scrape(port, "/metrics").unwrap();
    at_least(&m, "berth_actor_restarts_total{kind=\"metrics\"}", 1.0);

    // A reload moves the endpoint; the old address stops answering.
    let port2 = free_port();
    d.write_config(&serde_json::json!({"metrics-addr": format!("127.0.0.1:{port2}")}));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_for(Duration::from_secs(5), || scrape(port2, "/metrics")
            .is_some()),
        "{}",
        d.log()
    );
    assert!(wait_for(Duration::from_secs(5), || scrape(
        port, "/metrics"
    )
    .is_none()));
    d.docker_ok(&["rm", "-f", "ok", "sick", "never"]);
    d.stop();
}
