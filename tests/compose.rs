//! Debian's docker-compose (1.29, through the Docker SDK for Python 5)
//! against a berthd: a three-service project with a user network, a named
//! volume, a published port, depends_on, links, environment and restart
//! policies; up, ps, logs, exec, restart, down -v. The same file gives the
//! same results on Debian's dockerd (see docs/api-compat.md).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::containers::*;
use common::*;

fn http_get(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn compose_project_up_ps_logs_exec_restart_down() {
    let d = daemon_with_busybox();
    let port = free_port();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose/three-services.yml");
    let compose = |args: &[&str]| -> Output {
        Command::new("docker-compose")
            .args(["--no-ansi", "-f"])
            .arg(&file)
            .args(["-p", "bcp"])
            .args(args)
            .env("DOCKER_HOST", d.docker_host())
            .env("PORT", port.to_string())
            .env("SUBNET", d.subnet(2))
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .output()
            .expect("docker-compose")
    };
    let ok = |args: &[&str]| -> String {
        let o = compose(args);
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}\n{}\nberthd log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            d.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(&["up", "-d"]);
    let ps = ok(&["ps"]);
    for svc in ["bcp_db_1", "bcp_web_1", "bcp_worker_1"] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(svc))
            .unwrap_or_else(|| panic!("{ps}"));
        assert!(line.contains(" Up "), "{ps}");
    }
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    // The published port, the environment, and the link alias (the web
    // page names the database by its link alias).
    let page = http_get(port);
    assert!(page.contains("hello from web via database"), "{page}");
    // The worker reaches db by its link alias (resolved for it alone by
    // the embedded DNS) and web by its service name.
    assert!(
        wait_for(Duration::from_secs(20), || {
            let logs = ok(&["logs", "--no-color", "worker"]);
            logs.contains("dbdata") && logs.contains("hello from web via database")
        }),
        "{}",
        ok(&["logs", "--no-color"])
    );
    let links = inspect(
        &d,
        "bcp_worker_1",
        "{{json .NetworkSettings.Networks.bcp_back.Links}}",
    );
    assert!(links.contains("bcp_db_1:database"), "{links}");
    assert_eq!(
        inspect(&d, "bcp_worker_1", "{{json .HostConfig.Links}}"),
        "null"
    );
    // The worker logs through the local driver (`logging:`), which
    // `docker-compose logs` read above.
    assert_eq!(
        inspect(&d, "bcp_worker_1", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"local","Config":{"max-file":"2","max-size":"1m"}}"#
    );
    // The named volume holds db's data.
    let out = ok(&["exec", "-T", "db", "cat", "/data/x"]);
    assert_eq!(out, "dbdata\n");
    assert_eq!(
        inspect(&d, "bcp_db_1", "{{range .Mounts}}{{.Name}}{{end}}"),
        "bcp_dbvol"
    );
    assert_eq!(
        inspect(&d, "bcp_db_1", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let started = inspect(&d, "bcp_web_1", "{{.State.StartedAt}}");
    ok(&["restart"]);
    assert_ne!(inspect(&d, "bcp_web_1", "{{.State.StartedAt}}"), started);
    let ps = ok(&["ps"]);
    assert_eq!(ps.lines().filter(|l| l.contains(" Up ")).count(), 3, "{ps}");
    assert!(
        wait_for(Duration::from_secs(10), || http_get(port)
            .contains("hello from web")),
        "web after restart"
    );
    ok(&["down", "-v"]);
    // Nothing of the project is left: containers, network, volume.
    let left = d.docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.project=bcp",
    ]);
    assert_eq!(left.trim(), "");
    let nets = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("bcp_back"), "{nets}");
    let vols = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains("bcp_dbvol"), "{vols}");
    d.stop();
}

/// A service with `build:`: compose builds it through the builder API
/// (context, Dockerfile, args, target), runs it, and builds it again
/// from the cache.
#[test]
fn compose_builds_a_service_and_runs_it() {
    let d = daemon_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile.web"),
        "FROM busybox AS base\nARG GREETING=hi\nRUN echo \"$GREETING from the build\" > /greeting\nFROM base AS final\nCOPY page.txt /page.txt\nCMD [\"sh\", \"-c\", \"cat /greeting /page.txt; sleep 600\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("app/page.txt"), "the page\n").unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        "version: \"2.4\"\nservices:\n  web:\n    build:\n      context: ./app\n      dockerfile: Dockerfile.web\n      args:\n        GREETING: hello\n      target: final\n    image: bcb-web:1\n    stop_grace_period: 1s\n",
    )
    .unwrap();
    let compose = |args: &[&str]| -> String {
        let o = Command::new("docker-compose")
            .args(["--no-ansi", "-p", "bcb"])
            .args(args)
            .current_dir(dir.path())
            .env("DOCKER_HOST", d.docker_host())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .output()
            .expect("docker-compose");
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}\n{}\nberthd log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            d.log()
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let out = compose(&["build"]);
    assert!(out.contains("Successfully tagged bcb-web:1"), "{out}");
    compose(&["up", "-d"]);
    assert!(
        wait_for(Duration::from_secs(20), || {
            compose(&["logs", "web"]).contains("the page")
        }),
        "{}",
        compose(&["logs", "web"])
    );
    let logs = compose(&["logs", "web"]);
    assert!(logs.contains("hello from the build"), "{logs}");
    let again = compose(&["build"]);
    assert!(again.contains("Using cache"), "{again}");
    assert!(!again.contains("Running in"), "{again}");
    compose(&["down"]);
}

/// `depends_on: condition: service_healthy` waits for the healthcheck
/// berthd runs; an unhealthy dependency stops the `up`.
#[test]
fn compose_waits_for_a_healthy_dependency() {
    let d = daemon_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        r#"version: "2.4"
services:
  db:
    image: busybox:latest
    command: sh -c 'sleep 2; touch /ready; exec sleep 1000'
    network_mode: none
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 300ms
      retries: 30
  app:
    image: busybox:latest
    command: sleep 1000
    network_mode: none
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
  sick:
    image: busybox:latest
    command: sleep 1000
    network_mode: none
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "false"]
      interval: 300ms
      retries: 2
  blocked:
    image: busybox:latest
    command: sleep 1000
    network_mode: none
    depends_on:
      sick:
        condition: service_healthy
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| -> Output {
        Command::new("docker-compose")
            .args(["--no-ansi", "-p", "bch"])
            .args(args)
            .current_dir(dir.path())
            .env("DOCKER_HOST", d.docker_host())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .output()
            .expect("docker-compose")
    };
    let o = compose(&["up", "-d", "app"]);
    assert!(
        o.status.success(),
        "{}\n{}\nberthd log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    // The app started only once the db was healthy.
    let db_healthy_at = d.docker_ok(&[
        "inspect",
        "-f",
        "{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{json .End}} {{end}}{{end}}",
        "bch_db_1",
    ]);
    let first_ok = db_healthy_at
        .split_whitespace()
        .next()
        .expect("a passing probe");
    let app_started = d.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", "bch_app_1"]);
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s.trim().trim_matches('"'))
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
    };
    assert!(t(&app_started) > t(first_ok), "{app_started} {first_ok}");
    // A dependency that never becomes healthy: compose gives up, and the
    // dependent container is never started.
    let o = compose(&["up", "-d", "blocked"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("is unhealthy"), "{err}");
    let started = d.docker(&["inspect", "-f", "{{.State.StartedAt}}", "bch_blocked_1"]);
    let s = String::from_utf8_lossy(&started.stdout);
    assert!(
        !started.status.success() || s.trim().starts_with("0001-01-01"),
        "{s}"
    );
    let o = compose(&["down", "-t", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
