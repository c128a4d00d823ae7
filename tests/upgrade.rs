//! Upgrades with live-restore: a berthd built from an earlier revision is
//! killed with containers running; this berthd, started on the same
//! data-root and exec-root, adopts them: same PIDs, no gap in their logs,
//! published ports answer, exec and stop work, a created container starts,
//! a restart policy goes on. The earlier revision is built from this
//! repository's history (once per clone, under `target/`), or taken from
//! `BERTH_UPGRADE_FROM_BIN` (a directory with its berthd and berth-shim).

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::containers::{inspect, load_busybox, wait_inspect};
use common::{free_port, wait_for, Daemon};
use nix::sys::signal::Signal;

/// The last revision before issue 12 reshaped the actor tree (records,
/// shim protocol 1): docs/live-restore.md lists what upgrades from it.
const FROM: &str = "a552dea";

fn git(repo: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The directory with the earlier revision's binaries; `None` only when
/// this checkout has no history to build it from (a shallow clone).
fn earlier_build() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("BERTH_UPGRADE_FROM_BIN") {
        return Some(PathBuf::from(d));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    match git(repo, &["rev-parse", "--is-shallow-repository"]).as_deref() {
        Some("false") => {}
        other => {
            eprintln!(
                "NOTICE: upgrade test not run: no full git history here ({other:?}); \
                 set BERTH_UPGRADE_FROM_BIN to a build of {FROM}"
            );
            return None;
        }
    }
    assert!(
        git(repo, &["cat-file", "-e", &format!("{FROM}^{{commit}}")]).is_some(),
        "revision {FROM} is not in this repository"
    );
    let out = repo.join("target").join(format!("upgrade-from-{FROM}"));
    let bins = out.join("debug");
    if bins.join("berthd").exists() && bins.join("berth-shim").exists() {
        return Some(bins);
    }
    let src = out.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    seed_from_this_build(repo, &out);
    let archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", FROM])
        .output()
        .unwrap();
    assert!(archive.status.success(), "git archive {FROM}");
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&src)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tar.stdin
        .take()
        .unwrap()
        .write_all(&archive.stdout)
        .unwrap();
    assert!(tar.wait().unwrap().success());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--bins", "--manifest-path"])
        .arg(src.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &out)
        // Not this checkout's commit (the tree is not a git work tree).
        .env("GIT_DIR", out.join("no-git"))
        .status()
        .unwrap();
    assert!(st.success(), "building {FROM}");
    Some(bins)
}

/// Start the earlier revision's build from this checkout's compiled
/// dependencies: most have the same versions and features, so cargo
/// compiles only what differs (about 60 crates of 400 instead of all of
/// them: 1m48s instead of 4 min on the 2-core CI machine). Outputs are
/// hard-linked (rustc replaces them by rename, and a unit that differs
/// gets another file name); fingerprints and build script directories,
/// which cargo rewrites in place, are copied.
fn seed_from_this_build(repo: &Path, out: &Path) {
    let ours = repo.join("target").join("debug");
    let theirs = out.join("debug");
    if theirs.exists() || !ours.join("deps").is_dir() {
        return;
    }
    std::fs::create_dir_all(&theirs).unwrap();
    for (dir, how) in [("deps", "-al"), ("build", "-a"), (".fingerprint", "-a")] {
        let ok = Command::new("cp")
            .arg(how)
            .arg(ours.join(dir))
            .arg(&theirs)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Only a head start: the build compiles whatever is missing.
            eprintln!("NOTICE: could not seed {dir} of the earlier build");
        }
    }
}

fn http_get(port: u16) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn pid_of(d: &Daemon, name: &str) -> String {
    inspect(d, name, "{{.State.Pid}}")
}

/// The counter's log: 0, 1, 2, ... without a gap or a repeat.
fn assert_counts(log: &str) -> usize {
    let nums: Vec<u64> = log.lines().map(|l| l.trim().parse().unwrap()).collect();
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as u64, "the log has a gap or a repeat at line {i}");
    }
    nums.len()
}

#[test]
fn an_earlier_berthd_killed_with_containers_running_is_replaced_without_a_trace() {
    let Some(old) = earlier_build() else {
        return;
    };
    let mut d = Daemon::prepare();
    d.write_config(&serde_json::json!({"live-restore": true}));
    // Its own socket (never the default one), for both berthds.
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let mut cmd = d.command_with(&old.join("berthd"));
    cmd.args(&d.extra_args);
    let mut d = d.spawn(cmd);
    let exe = |d: &Daemon| std::fs::canonicalize(format!("/proc/{}/exe", d.pid())).unwrap();
    assert_eq!(
        exe(&d),
        std::fs::canonicalize(old.join("berthd")).unwrap(),
        "the earlier berthd runs"
    );
    load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i; i=$((i+1)); usleep 20000; done",
    ]);
    let port = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "sleep 3; exit 3",
    ]);
    d.docker_ok(&["create", "--name", "later", "busybox", "echo", "hi"]);
    let web_id = inspect(&d, "web", "{{.Id}}");
    assert!(
        wait_for(Duration::from_secs(5), || http_get(port)
            .contains(&web_id[..12])),
        "the earlier berthd publishes the port"
    );
    let (counter_pid, web_pid) = (pid_of(&d, "counter"), pid_of(&d, "web"));

    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    std::thread::sleep(Duration::from_secs(1));
    let d = d.restart();
    assert_eq!(
        exe(&d),
        std::fs::canonicalize(common::berthd_bin()).unwrap(),
        "this berthd runs"
    );
    // Adopted, not restarted.
    assert_eq!(pid_of(&d, "counter"), counter_pid);
    assert_eq!(pid_of(&d, "web"), web_pid);
    assert!(
        http_get(port).contains(&web_id[..12]),
        "the published port answers"
    );
    assert_eq!(
        d.docker_ok(&["exec", "counter", "echo", "exec-ok"]).trim(),
        "exec-ok"
    );
    // Its log goes on without a gap: the earlier shim wrote it all along.
    let before = assert_counts(&d.docker_ok(&["logs", "counter"]));
    assert!(wait_for(Duration::from_secs(5), || {
        assert_counts(&d.docker_ok(&["logs", "counter"])) > before + 10
    }));
    // The restart policy goes on across the upgrade.
    assert!(
        wait_inspect(
            &d,
            "flaky",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
            "exited 3 2",
            Duration::from_secs(30)
        ),
        "{}",
        inspect(
            &d,
            "flaky",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"
        )
    );
    // A container created by the earlier berthd starts on this one.
    assert_eq!(d.docker_ok(&["start", "-a", "later"]).trim(), "hi");
    d.docker_ok(&["stop", "-t", "1", "counter", "web"]);
    assert_eq!(inspect(&d, "counter", "{{.State.Status}}"), "exited");
    d.docker_ok(&["rm", "-f", "counter", "web", "flaky", "later"]);
    d.stop();
}
