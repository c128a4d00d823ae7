//! Containers through the real docker CLI against a berthd the test
//! started: run, logs, exec, TTYs, stop/kill/wait/rm, restart policies,
//! resources, bad input.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::containers::{daemon_with_busybox, inspect, under_tty, wait_inspect};
use common::docker_cmd;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_prints_output_exit_codes_env_workdir_user() {
    let d = daemon_with_busybox();
    assert_eq!(
        d.docker_ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    let o = d.docker(&["run", "--name", "three", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        inspect(&d, "three", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "busybox",
        "sh",
        "-c",
        "echo $A; pwd; id -u",
    ]);
    assert_eq!(out, "1\n/tmp\n1000\n");
    // --rm removed its containers; the exited one stays until rm.
    let all = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "three");
    // stderr is kept apart from stdout.
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    // A command that does not exist: dockerd's 127.
    let o = d.docker(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&["rm", "three"]);
    d.stop();
}

#[test]
fn detached_container_logs_ps_exec_stop() {
    let d = daemon_with_busybox();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    // logs -f --tail 5 streams: it keeps printing new lines.
    let mut child = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["logs", "-f", "--tail", "5", "web"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let nums: Vec<u64> = (0..12)
        .map(|_| lines.next().unwrap().unwrap().parse().unwrap())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{nums:?}");
    }
    // logs --tail N gives the last N lines.
    let tail = d.docker_ok(&["logs", "--tail", "3", "web"]);
    assert_eq!(tail.lines().count(), 3, "{tail}");
    // exec sees the container's pid namespace.
    let pid = d.docker_ok(&["exec", "web", "sh", "-c", "echo $$"]);
    assert!(pid.trim().parse::<u32>().unwrap() > 1);
    assert_eq!(
        d.docker_ok(&["exec", "-e", "X=y", "web", "sh", "-c", "echo $X"]),
        "y\n"
    );
    let o = d.docker(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    // stdin through exec -i.
    let mut c = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["exec", "-i", "web", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "through stdin\n");
    // top lists the loop.
    let top = d.docker_ok(&["top", "web"]);
    assert!(top.contains("sh -c"), "{top}");
    // stats from the container's cgroup: unlimited memory is the host's.
    let st = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "web",
    ]);
    let f: Vec<&str> = st.split_whitespace().collect();
    assert_eq!(f[0], "web", "{st}");
    assert!(!st.contains("EiB"), "{st}");
    assert!(f.last().unwrap().parse::<u32>().unwrap() >= 1, "{st}");
    // ps -s: the writable layer and the image under it.
    let size = d.docker_ok(&["ps", "-s", "--format", "{{.Size}}"]);
    assert!(size.contains("virtual"), "{size}");
    // pause/unpause, rename.
    d.docker_ok(&["pause", "web"]);
    assert_eq!(inspect(&d, "web", "{{.State.Status}}"), "paused");
    d.docker_ok(&["unpause", "web"]);
    d.docker_ok(&["rename", "web", "web2"]);
    assert_eq!(inspect(&d, "web2", "{{.Name}}"), "/web2");
    // update changes the memory limit of the running container.
    d.docker_ok(&["update", "--memory", "64m", "--memory-swap", "128m", "web2"]);
    assert_eq!(inspect(&d, "web2", "{{.HostConfig.Memory}}"), "67108864");
    // sh as pid 1 ignores SIGTERM: stop kills it after the timeout.
    d.docker_ok(&["stop", "-t", "1", "web2"]);
    assert_eq!(inspect(&d, "web2", "{{.State.ExitCode}}"), "137");
    d.docker_ok(&["rm", "web2"]);
    d.stop();
}

#[test]
fn stop_kill_wait_rm_and_events() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    let t = Instant::now();
    d.docker_ok(&["stop", "-t", "2", "stubborn"]);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "stop returned before the timeout"
    );
    assert_eq!(
        inspect(&d, "stubborn", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    // A second stop: nothing to do (304), the CLI still succeeds.
    d.docker_ok(&["stop", "stubborn"]);

    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; while true; do sleep 0.1; done",
    ]);
    d.docker_ok(&["kill", "-s", "USR1", "sig"]);
    assert!(common::wait_for(Duration::from_secs(5), || d
        .docker_ok(&["logs", "sig"])
        .contains("got-usr1")));
    assert_eq!(inspect(&d, "sig", "{{.State.Status}}"), "running");
    d.docker_ok(&["rm", "-f", "sig"]);
    let o = d.docker(&["inspect", "sig"]);
    assert!(!o.status.success());

    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "waiter",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    assert_eq!(d.docker_ok(&["wait", "waiter"]).trim(), "5");
    let o = d.docker(&["kill", "waiter"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    let o = d.docker(&["rm", "stubborn", "nosuch"]);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );

    std::thread::sleep(Duration::from_millis(1100));
    let ev = d.docker_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=waiter",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    for a in ["create", "start", "die"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
    d.stop();
}

#[test]
fn restart_policy_on_failure_restarts_exactly_twice() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "rp",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    assert!(wait_inspect(
        &d,
        "rp",
        "{{.RestartCount}} {{.State.Status}}",
        "2 exited",
        Duration::from_secs(20)
    ));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        inspect(&d, "rp", "{{.RestartCount}} {{.State.Status}}"),
        "2 exited"
    );
    assert_eq!(d.docker_ok(&["logs", "rp"]).matches("run").count(), 3);
    // always: docker stop cancels it.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "alw",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 0",
    ]);
    assert!(common::wait_for(Duration::from_secs(20), || inspect(
        &d,
        "alw",
        "{{.RestartCount}}"
    )
    .parse::<u32>()
    .unwrap_or(0)
        >= 2));
    d.docker_ok(&["stop", "alw"]);
    let n = inspect(&d, "alw", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        inspect(&d, "alw", "{{.RestartCount}} {{.State.Status}}"),
        format!("{n} exited")
    );
    d.stop();
}

#[test]
fn memory_limit_oom_and_pids_limit() {
    let d = daemon_with_busybox();
    let o = d.docker(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert_eq!(inspect(&d, "oom", "{{.State.OOMKilled}}"), "true");
    let o = d.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 30); do sleep 10 & done; echo forked-all",
    ]);
    assert!(!stdout(&o).contains("forked-all"));
    assert!(
        stderr(&o).contains("can't fork") || stdout(&o).contains("can't fork"),
        "{}",
        stderr(&o)
    );
    // --cpus and --cpu-shares reach the cgroup.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cpu",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "busybox",
        "sleep",
        "100",
    ]);
    let id = inspect(&d, "cpu", "{{.Id}}");
    let quota = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/docker/{id}/cpu.cfs_quota_us"))
        .unwrap();
    assert_eq!(quota.trim(), "50000");
    d.docker_ok(&["rm", "-f", "cpu"]);
    d.stop();
}

#[test]
fn tty_run_exec_attach_and_detach() {
    let d = daemon_with_busybox();
    let (out, code) = under_tty(
        &d,
        "docker run -it --name t1 busybox sh",
        &[("echo hi-from-tty\\n", 1500), ("exit 3\\n", 500)],
    );
    assert!(out.contains("hi-from-tty"), "{out}");
    assert_eq!(code, 3, "{out}");
    d.docker_ok(&["run", "-d", "-it", "--name", "t2", "busybox", "sh"]);
    let (out, _) = under_tty(
        &d,
        "docker exec -it t2 sh",
        &[("stty size; tty\\n", 1500), ("exit\\n", 500)],
    );
    assert!(out.contains("40 120"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    // attach, type, detach with ctrl-p ctrl-q: the container keeps running.
    let (out, _) = under_tty(
        &d,
        "docker attach t2",
        &[("echo $((40+2))\\n", 1500), ("\\020\\021", 800)],
    );
    assert!(out.contains("42"), "{out}");
    assert_eq!(inspect(&d, "t2", "{{.State.Status}}"), "running");
    // And again.
    let (out, _) = under_tty(
        &d,
        "docker attach t2",
        &[("echo again$((1+1))\\n", 1500), ("\\020\\021", 800)],
    );
    assert!(out.contains("again2"), "{out}");
    assert_eq!(inspect(&d, "t2", "{{.State.Status}}"), "running");
    // run -it, detach, attach again, exit.
    let (out, _) = under_tty(
        &d,
        "docker run -it --name t3 busybox sh",
        &[("echo first$((2+2))\\n", 1500), ("\\020\\021", 800)],
    );
    assert!(out.contains("first4"), "{out}");
    assert_eq!(inspect(&d, "t3", "{{.State.Status}}"), "running");
    let (out, _) = under_tty(
        &d,
        "docker attach t3",
        &[("echo second$((3+3))\\n", 1500), ("exit 4\\n", 500)],
    );
    assert!(out.contains("second6"), "{out}");
    assert!(wait_inspect(
        &d,
        "t3",
        "{{.State.Status}} {{.State.ExitCode}}",
        "exited 4",
        Duration::from_secs(5)
    ));
    // start -a attaches before the start: nothing is missed.
    d.docker_ok(&["create", "--name", "sa", "busybox", "echo", "from-start-a"]);
    assert_eq!(d.docker_ok(&["start", "-a", "sa"]), "from-start-a\n");
    // restart: a new process, running again.
    let before = inspect(&d, "t2", "{{.State.Pid}}");
    d.docker_ok(&["restart", "-t", "1", "t2"]);
    assert_eq!(inspect(&d, "t2", "{{.State.Status}}"), "running");
    assert_ne!(inspect(&d, "t2", "{{.State.Pid}}"), before);
    d.docker_ok(&["pause", "t2"]);
    let o = d.docker(&["attach", "t2"]);
    assert!(stderr(&o).contains("paused"), "{}", stderr(&o));
    d.docker_ok(&["rm", "-f", "t2"]);
    d.stop();
}

#[test]
fn bad_input_gets_clear_errors_and_berthd_stays_up() {
    let d = daemon_with_busybox();
    let o = d.docker(&["create", "--name", "bad name", "busybox", "true"]);
    assert!(
        stderr(&o).contains("Invalid container name"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["run", "--runtime", "nosuch", "busybox", "true"]);
    assert!(
        stderr(&o).contains("Unknown runtime specified nosuch"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["run", "--cpus", "-1", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Range of CPUs"), "{}", stderr(&o));
    let o = d.docker(&["run", "--memory", "1k", "busybox", "true"]);
    assert!(
        stderr(&o).contains("Minimum memory limit"),
        "{}",
        stderr(&o)
    );
    // Unknown image through the API (the CLI would try a registry).
    let body = r#"{"Image":"nosuchimage:1"}"#;
    let r = d.raw(format!("POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: nosuchimage:1");
    // An image whose WORKDIR is under /proc (CVE-2024-21626) is refused.
    let tar = d.dir.path().join("bb.tar");
    std::fs::write(&tar, common::containers::busybox_full_rootfs()).unwrap();
    d.docker_ok(&[
        "import",
        "--change",
        "WORKDIR /proc/self/fd/5",
        tar.to_str().unwrap(),
        "evil:1",
    ]);
    let o = d.docker(&["run", "evil:1", "true"]);
    assert!(stderr(&o).contains("under /proc"), "{}", stderr(&o));
    // Name conflicts are 409 with dockerd's message.
    d.docker_ok(&["create", "--name", "taken", "busybox", "true"]);
    let o = d.docker(&["create", "--name", "taken", "busybox", "true"]);
    assert!(
        stderr(&o).contains("is already in use by container"),
        "{}",
        stderr(&o)
    );
    // An ambiguous ID prefix is refused, a unique one works.
    assert_eq!(d.docker_ok(&["ps", "-a", "-q"]).lines().count(), 1);
    d.docker_ok(&["version"]);
    d.stop();
}

#[test]
fn security_options_init_ulimits_and_readonly_rootfs() {
    let d = daemon_with_busybox();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        d.docker_ok(&a)
    };
    // The default profile filters syscalls; unconfined does not.
    assert_eq!(
        run(&["busybox", "grep", "Seccomp:", "/proc/self/status"])
            .split_whitespace()
            .last(),
        Some("2")
    );
    assert_eq!(
        run(&[
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "grep",
            "Seccomp:",
            "/proc/self/status"
        ])
        .split_whitespace()
        .last(),
        Some("0")
    );
    assert_eq!(
        run(&[
            "--security-opt",
            "no-new-privileges",
            "busybox",
            "grep",
            "NoNewPrivs",
            "/proc/self/status"
        ])
        .split_whitespace()
        .last(),
        Some("1")
    );
    // dockerd's default capability set, and --cap-drop ALL.
    assert_eq!(
        run(&["busybox", "grep", "CapBnd", "/proc/self/status"])
            .split_whitespace()
            .last(),
        Some("00000000a80425fb")
    );
    assert_eq!(
        run(&[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_RAW",
            "busybox",
            "grep",
            "CapBnd",
            "/proc/self/status"
        ])
        .split_whitespace()
        .last(),
        Some("0000000000002000")
    );
    // --privileged gets what berthd has.
    let bnd = run(&[
        "--privileged",
        "busybox",
        "grep",
        "CapBnd",
        "/proc/self/status",
    ]);
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own = own.lines().find(|l| l.starts_with("CapBnd")).unwrap();
    assert_eq!(bnd.split_whitespace().last(), own.split_whitespace().last());
    // --init runs tini as pid 1.
    let ps = run(&["--init", "busybox", "ps", "-o", "pid,comm"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "docker-init"]),
        "{ps}"
    );
    // --ulimit within the inherited limits.
    assert_eq!(
        run(&[
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn"
        ]),
        "512\n1024\n"
    );
    // --read-only.
    let o = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // --stop-signal reaches the record.
    d.docker_ok(&[
        "create",
        "--name",
        "ss",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "3",
        "-l",
        "k=v",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            &d,
            "ss",
            "{{.Config.StopSignal}} {{.Config.StopTimeout}} {{.Config.Labels.k}}"
        ),
        "SIGUSR1 3 v"
    );
    d.stop();
}

#[test]
fn log_rotation_follow_diff_export_and_image_in_use() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "rot",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; for i in $(seq 1 300); do echo line-$i; usleep 2000; done",
    ]);
    // Follow keeps working across rotations: every line, in order.
    let all = d.docker_ok(&["logs", "-f", "rot"]);
    let want: Vec<String> = (1..=300).map(|i| format!("line-{i}")).collect();
    assert_eq!(all.lines().collect::<Vec<_>>(), want);
    let id = inspect(&d, "rot", "{{.Id}}");
    let dir = d.data_root.join("containers").join(&id);
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .collect();
    assert_eq!(logs.len(), 3, "max-file keeps three files");
    for l in &logs {
        assert!(l.metadata().unwrap().len() <= 2048);
    }
    let o = d.docker(&["run", "--log-opt", "max-size=abc", "busybox", "true"]);
    assert!(
        stderr(&o).contains("failed to initialize logging driver: invalid size: 'abc'"),
        "{}",
        stderr(&o)
    );

    d.docker_ok(&[
        "run",
        "--name",
        "chg",
        "busybox",
        "sh",
        "-c",
        "echo x > /etc/newfile; rm /bin/vi",
    ]);
    let diff = d.docker_ok(&["diff", "chg"]);
    for l in ["A /etc/newfile", "D /bin/vi", "C /etc"] {
        assert!(diff.lines().any(|x| x == l), "{diff}");
    }
    assert!(!diff.contains("/proc"), "{diff}");
    let tar = d.dir.path().join("export.tar");
    d.docker_ok(&["export", "-o", tar.to_str().unwrap(), "chg"]);
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"etc/newfile".to_string()));
    assert!(!names.contains(&"bin/vi".to_string()));

    // An image that containers use cannot be removed, nor pruned.
    let o = d.docker(&["rmi", "busybox"]);
    assert!(
        stderr(&o).contains("(must force) - container"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&["image", "prune", "-a", "-f"]);
    d.docker_ok(&["image", "inspect", "busybox"]);
    let df = d.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Containers 2"), "{df}");
    // `label!` keeps the containers that carry the label.
    d.docker_ok(&[
        "create", "--name", "keepme", "--label", "keep=1", "busybox", "true",
    ]);
    d.docker_ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(
        d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(),
        "keepme"
    );
    d.docker_ok(&["container", "prune", "-f"]);
    assert_eq!(d.docker_ok(&["ps", "-a", "-q"]), "");
    d.docker_ok(&["rmi", "busybox"]);
    d.stop();
}

/// Without a TTY, stdin is copied as is (dockerd): ctrl-p ctrl-q in binary
/// input to `run -i` (attach) and `exec -i` never detach.
#[test]
fn binary_stdin_without_a_tty_is_never_cut_by_detach_keys() {
    use std::io::Write;
    let d = daemon_with_busybox();
    let mut input = vec![b'a'; 100_000];
    for i in (0..input.len()).step_by(1000) {
        input[i] = 0x10;
        input[i + 1] = 0x11;
    }
    let feed = |args: &[&str]| -> String {
        let mut c = docker_cmd(d.dir.path())
            .env("DOCKER_HOST", d.docker_host())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(&input).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{args:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(
        feed(&["run", "-i", "--rm", "busybox", "wc", "-c"]),
        "100000"
    );
    d.docker_ok(&["run", "-d", "--name", "bin", "busybox", "sleep", "600"]);
    assert_eq!(feed(&["exec", "-i", "bin", "wc", "-c"]), "100000");
    d.docker_ok(&["rm", "-f", "bin"]);
    d.stop();
}

/// `GET /containers/{id}/logs` as an SDK reads it: one stdcopy frame per
/// log entry (dockerd's framing), even for lines written together and for
/// consecutive entries of one stream.
#[test]
fn logs_come_as_one_frame_per_entry() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "framed",
        "busybox",
        "sh",
        "-c",
        "printf 'hello\\nworld\\n'; echo oops >&2; echo again",
    ]);
    let r = d.get("/containers/framed/logs?stdout=1&stderr=1");
    assert_eq!(r.status, 200);
    let mut frames = Vec::new();
    let mut rest = &r.body[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        frames.push((
            rest[0],
            String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
        ));
        rest = &rest[8 + len..];
    }
    assert!(rest.is_empty(), "a partial frame: {rest:?}");
    let out: Vec<&str> = frames
        .iter()
        .filter(|(k, _)| *k == 1)
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(out, ["hello\n", "world\n", "again\n"], "{frames:?}");
    assert!(frames.contains(&(2, "oops\n".to_string())), "{frames:?}");
    d.stop();
}
