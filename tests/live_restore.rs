//! live-restore: berthd killed (SIGKILL) or stopped while containers run;
//! the containers keep running, their output keeps reaching their logs,
//! their exits are never lost, and the next berthd adopts them.

use crate::common;

use std::time::Duration;

use common::containers::{inspect, load_busybox, wait_inspect};
use common::{wait_for, Daemon};
use nix::sys::signal::Signal;

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie is dead (PID 1 reaps orphans late on this host).
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
}

fn pid_of(d: &Daemon, name: &str) -> i32 {
    inspect(d, name, "{{.State.Pid}}").parse().unwrap()
}

#[test]
fn sigkill_of_berthd_loses_nothing() {
    let mut d = Daemon::builder().arg("--live-restore").start();
    load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "seq",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i; i=$((i+1)); usleep 10000; done",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ex42",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 42",
    ]);
    // 50 MB of output while nobody but the shim listens.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "sleep 1; yes 0123456789012345678901234567890123456789 | head -c 50000000; echo; echo END",
    ]);
    let seq_pid = pid_of(&d, "seq");
    let big_pid = pid_of(&d, "big");
    let before = d.docker_ok(&["logs", "seq"]).lines().count();
    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    // The big writer finishes while berthd is down: it never blocks.
    assert!(
        wait_for(Duration::from_secs(60), || !alive(big_pid)),
        "the container blocked on its output"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(alive(seq_pid));
    let d = d.restart();
    assert_eq!(pid_of(&d, "seq"), seq_pid);
    assert_eq!(inspect(&d, "seq", "{{.State.Status}}"), "running");
    assert_eq!(
        inspect(&d, "ex42", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 42"
    );
    assert_eq!(
        inspect(&d, "big", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert_eq!(d.docker_ok(&["logs", "--tail", "1", "big"]), "END\n");
    // The sequence has no gap, and the downtime's lines are there.
    let logs = d.docker_ok(&["logs", "seq"]);
    let nums: Vec<u64> = logs.lines().map(|l| l.parse().unwrap()).collect();
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as u64, "gap in the log at line {i}");
    }
    assert!(
        nums.len() > before + 200,
        "{} lines before, {} after",
        before,
        nums.len()
    );
    // The adopted container works as before.
    assert_eq!(
        d.docker_ok(&["exec", "seq", "echo", "adopted"]),
        "adopted\n"
    );
    d.docker_ok(&["stop", "-t", "1", "seq"]);
    assert_eq!(inspect(&d, "seq", "{{.State.Status}}"), "exited");
    d.docker_ok(&["rm", "seq", "ex42", "big"]);
    assert!(
        wait_for(Duration::from_secs(5), || d.shim_pids().is_empty()),
        "shims left: {:?}",
        d.shim_pids()
    );
    d.stop();
}

#[test]
fn exits_without_shim_get_255_and_restart_policies_apply_on_start() {
    let mut d = Daemon::builder().arg("--live-restore").start();
    load_busybox(&d);
    d.docker_ok(&["run", "-d", "--name", "lost", "busybox", "sleep", "1000"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["run", "-d", "--name", "paused", "busybox", "sleep", "1000"]);
    d.docker_ok(&["pause", "paused"]);
    let lost = pid_of(&d, "lost");
    let always = pid_of(&d, "always");
    let paused = pid_of(&d, "paused");
    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    // Take shim and process away: nothing can report these exits.
    for p in d.shim_pids() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
    }
    for p in [lost, always] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
    }
    assert!(wait_for(Duration::from_secs(10), || !alive(lost) && !alive(always)));
    let d = d.restart();
    assert_eq!(
        inspect(&d, "lost", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );
    assert_ne!(
        inspect(&d, "lost", "{{.State.FinishedAt}}"),
        "0001-01-01T00:00:00Z"
    );
    // A container whose shim is gone cannot be managed: berthd records it
    // as exited (255) and takes its frozen process down, leaving nothing.
    assert_eq!(
        inspect(&d, "paused", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );
    assert!(wait_for(Duration::from_secs(5), || !alive(paused)));
    // always: started again by berthd's start (a new process).
    assert!(
        wait_inspect(
            &d,
            "always",
            "{{.State.Status}}",
            "running",
            Duration::from_secs(10)
        ),
        "{}",
        d.log()
    );
    assert_ne!(pid_of(&d, "always"), always);
    d.docker_ok(&["rm", "-f", "lost", "always", "paused"]);
    d.stop();
}

#[test]
fn without_live_restore_sigterm_stops_containers() {
    let d = Daemon::start();
    load_busybox(&d);
    d.docker_ok(&["run", "-d", "--name", "ca", "busybox", "sleep", "1000"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pids = [pid_of(&d, "ca"), pid_of(&d, "cb")];
    let exec_root = d.exec_root.clone();
    let d = {
        let mut d = d;
        d.signal(Signal::SIGTERM);
        let (code, log) = d.wait_exit_keep();
        assert_eq!(code, Some(0), "{log}");
        d
    };
    for p in pids {
        assert!(
            wait_for(Duration::from_secs(5), || !alive(p)),
            "container {p} still runs"
        );
    }
    assert!(
        wait_for(Duration::from_secs(5), || d.shim_pids().is_empty()),
        "shims left: {:?}",
        d.shim_pids()
    );
    let _ = exec_root;
    // On the next start, the `always` container comes back; `a` stays down.
    let d = d.restart();
    assert!(wait_inspect(
        &d,
        "cb",
        "{{.State.Status}}",
        "running",
        Duration::from_secs(10)
    ));
    assert_eq!(inspect(&d, "ca", "{{.State.Status}}"), "exited");
    d.docker_ok(&["rm", "-f", "ca", "cb"]);
    d.stop();
}

/// A record that cannot be read comes back as a dead container that says
/// why, and `docker rm` removes it with its directory and layer; a
/// directory without any record (a create berthd did not live to finish)
/// is removed at start.
#[test]
fn a_tampered_record_is_reported_and_removable() {
    let d = Daemon::start();
    load_busybox(&d);
    d.docker_ok(&["create", "--name", "good", "busybox", "true"]);
    d.docker_ok(&["create", "--name", "bad", "busybox", "true"]);
    d.docker_ok(&["create", "--name", "half", "busybox", "true"]);
    let bad = inspect(&d, "bad", "{{.Id}}");
    let half = inspect(&d, "half", "{{.Id}}");
    // The storage driver's directories of layers (overlay2 here).
    let layers = |d: &Daemon| -> Vec<String> {
        std::fs::read_dir(d.data_root.join("overlay2"))
            .or_else(|_| std::fs::read_dir(d.data_root.join("vfs").join("dir")))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        layers(&d).iter().any(|l| l.starts_with(&bad)),
        "{:?}",
        layers(&d)
    );
    let mut d = d;
    d.signal(Signal::SIGTERM);
    d.wait_exit_keep();
    let dir = d.data_root.join("containers");
    std::fs::write(
        dir.join(&bad).join("config.v2.json"),
        b"{\"version\": 1, \"id\": tampered",
    )
    .unwrap();
    std::fs::remove_file(dir.join(&half).join("config.v2.json")).unwrap();
    let d = d.restart();
    assert!(
        d.log().contains("unreadable; listed as dead"),
        "{}",
        d.log()
    );
    let mut listed: Vec<String> = d
        .docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"])
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    let stand_in = format!("unreadable-{}", &bad[..12]);
    assert_eq!(
        listed,
        vec!["good created".to_string(), format!("{stand_in} dead")]
    );
    let why = inspect(&d, &bad, "{{.State.Error}}");
    assert!(
        why.contains(&format!("{bad}/config.v2.json is unreadable")),
        "{why}"
    );
    // The half-made one is gone, directory and layer.
    assert!(!dir.join(&half).exists());
    assert!(!layers(&d).iter().any(|l| l.starts_with(&half)));
    // The tampered one goes with `docker rm`.
    d.docker_ok(&["rm", &bad]);
    assert!(!dir.join(&bad).exists());
    assert!(!layers(&d).iter().any(|l| l.starts_with(&bad)));
    d.docker_ok(&["start", "-a", "good"]);
    d.docker_ok(&["rm", "good"]);
    d.stop();
}

/// Containers killed by a signal while berthd is down: their exit codes
/// after the restart are 128 + the signal, as dockerd reports them.
#[test]
fn a_container_killed_by_a_signal_while_berthd_is_down() {
    let mut d = Daemon::builder().arg("--live-restore").start();
    load_busybox(&d);
    d.docker_ok(&["run", "-d", "--name", "k9", "busybox", "sleep", "300"]);
    // A namespace's init gets only the signals it handles: SIGTERM goes
    // to `--init`'s tini, which passes it to `sleep` and exits as it did.
    d.docker_ok(&[
        "run", "-d", "--init", "--name", "k15", "busybox", "sleep", "300",
    ]);
    let (p9, p15) = (pid_of(&d, "k9"), pid_of(&d, "k15"));
    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p9), Signal::SIGKILL).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p15), Signal::SIGTERM).unwrap();
    assert!(wait_for(Duration::from_secs(10), || !alive(p9) && !alive(p15)));
    let d = d.restart();
    assert_eq!(
        inspect(
            &d,
            "k9",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}"
        ),
        "exited 137 false"
    );
    assert_eq!(
        inspect(&d, "k15", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 143"
    );
    d.docker_ok(&["rm", "k9", "k15"]);
    d.stop();
}

/// berthd stopped gracefully (SIGTERM) with live-restore while a container
/// writes: the container keeps running and no line is lost or doubled.
#[test]
fn a_graceful_stop_with_live_restore_loses_no_line() {
    let mut d = Daemon::builder().arg("--live-restore").start();
    load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i; i=$((i+1)); usleep 2000; done",
    ]);
    let pid = pid_of(&d, "writer");
    std::thread::sleep(Duration::from_millis(500));
    d.signal(Signal::SIGTERM);
    let (code, log) = d.wait_exit_keep();
    assert_eq!(code, Some(0), "{log}");
    assert!(alive(pid), "the container stopped with berthd");
    std::thread::sleep(Duration::from_secs(2));
    let d = d.restart();
    assert_eq!(pid_of(&d, "writer"), pid);
    d.docker_ok(&["stop", "-t", "1", "writer"]);
    let logs = d.docker_ok(&["logs", "writer"]);
    let nums: Vec<u64> = logs.lines().map(|l| l.parse().unwrap()).collect();
    assert!(nums.len() > 500, "{} lines", nums.len());
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as u64, "gap or double in the log at line {i}");
    }
    d.docker_ok(&["rm", "writer"]);
    d.stop();
}

/// A shim that dies after writing its container's exit file (berthd down):
/// the next berthd reads the exit code from the file, not 255.
#[test]
fn a_shim_that_dies_after_writing_the_exit_file() {
    let mut d = Daemon::builder().arg("--live-restore").start();
    load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ex7",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    let id = inspect(&d, "ex7", "{{.Id}}");
    d.signal(Signal::SIGKILL);
    d.wait_exit_keep();
    let exit_file = d
        .real_exec_root()
        .join("containers")
        .join(&id)
        .join("exit.json");
    assert!(
        wait_for(Duration::from_secs(10), || exit_file.exists()),
        "no exit file at {}",
        exit_file.display()
    );
    let shims = d.shim_pids();
    assert!(!shims.is_empty());
    for p in shims {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
    }
    let d = d.restart();
    assert_eq!(
        inspect(&d, "ex7", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    d.docker_ok(&["rm", "ex7"]);
    d.stop();
}
