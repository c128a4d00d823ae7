//! kill -9 at every durable step: berthd is started with its crash points
//! enabled (`BERTH_TEST_FAILPOINTS`, see `actors/src/failpoint.rs`), a point
//! is armed, the docker CLI makes the operation that reaches it, berthd
//! dies there by SIGKILL, and the next berthd (same roots, no point armed)
//! must list every object usable or removable. Then everything is removed
//! through the CLI and nothing may be left: no file under data-root or
//! exec-root beyond an empty daemon's, no shim, proxy, mount, bridge, veth
//! or nft rule.
//!
//! Every point of `berth_actors::failpoint::POINTS` is reached by one case
//! here (a test checks the cases cover the list).

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::containers::{inspect, load_busybox};
use common::images::{docker_archive, tar_of, Entry};
use common::registry::Registry;
use common::{bridge_ports, mounts_under, wait_for, Daemon};

/// A berthd with crash points enabled through an arming file.
struct Armed {
    d: Option<Daemon>,
    arm: PathBuf,
    /// Bridges this case's networks had (gone after the cleanup).
    bridges: BTreeSet<String>,
}

impl Armed {
    fn start(live_restore: bool) -> Armed {
        let mut d = Daemon::prepare();
        d.write_config(&serde_json::json!({ "live-restore": live_restore }));
        let arm = d.dir.path().join("failpoints");
        d.extra_args = vec!["-H".into(), d.docker_host()];
        let mut cmd = d.command();
        cmd.args(&d.extra_args)
            .env(berth_actors::failpoint::ENV, &arm);
        let d = d.spawn(cmd);
        load_busybox(&d);
        Armed {
            d: Some(d),
            arm,
            bridges: BTreeSet::new(),
        }
    }

    fn d(&self) -> &Daemon {
        self.d.as_ref().unwrap()
    }

    /// Note the bridge of network `name` (for the leftover check).
    fn note_bridge(&mut self, name: &str) {
        let id = self
            .d()
            .docker_ok(&["network", "inspect", "-f", "{{.Id}}", name])
            .trim()
            .to_string();
        self.bridges.insert(format!("br-{}", &id[..12]));
    }

    /// Arm `point`, run `act` (its outcome is not looked at: berthd dies in
    /// it), see berthd killed there, and start the next berthd.
    fn crash(&mut self, point: &str, act: impl FnOnce(&Daemon)) {
        std::fs::write(&self.arm, point).unwrap();
        act(self.d());
        let mut d = self.d.take().unwrap();
        let died = wait_for(Duration::from_secs(30), || !d.alive());
        assert!(died, "berthd did not reach failpoint {point}:\n{}", d.log());
        let (code, log) = d.wait_exit_keep();
        assert_eq!(code, None, "berthd was not killed at {point}:\n{log}");
        assert!(
            log.contains("failpoint reached") && log.contains(point),
            "berthd died elsewhere than at {point}:\n{log}"
        );
        std::fs::remove_file(&self.arm).unwrap();
        let d = d.restart();
        self.d = Some(d);
    }

    /// Every listed object can be removed through the CLI; then nothing is
    /// left on the host.
    fn everything_removable_and_nothing_left(mut self, point: &str) {
        let d = self.d.take().unwrap();
        let ids = d.docker_ok(&["ps", "-aq"]);
        for id in ids.split_whitespace() {
            let o = d.docker(&["rm", "-f", id]);
            assert!(
                o.status.success(),
                "{point}: container {id} cannot be removed: {}\n{}",
                String::from_utf8_lossy(&o.stderr),
                d.log()
            );
        }
        for n in d
            .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
            .split_whitespace()
            .filter(|n| !["bridge", "host", "none"].contains(n))
        {
            let o = d.docker(&["network", "rm", n]);
            assert!(
                o.status.success(),
                "{point}: network {n} cannot be removed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for v in d.docker_ok(&["volume", "ls", "-q"]).split_whitespace() {
            let o = d.docker(&["volume", "rm", v]);
            assert!(
                o.status.success(),
                "{point}: volume {v} cannot be removed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // Children before parents: passes until none is left.
        let mut errors = Vec::new();
        for _ in 0..5 {
            let images: BTreeSet<String> = d
                .docker_ok(&["images", "-aq"])
                .split_whitespace()
                .map(str::to_string)
                .collect();
            errors.clear();
            for i in &images {
                let o = d.docker(&["rmi", "-f", i]);
                if !o.status.success() {
                    errors.push(format!("{i}: {}", String::from_utf8_lossy(&o.stderr)));
                }
            }
            if images.is_empty() {
                break;
            }
        }
        for (what, args) in [
            ("containers", &["ps", "-aq"][..]),
            ("images", &["images", "-aq"][..]),
            ("volumes", &["volume", "ls", "-q"][..]),
        ] {
            let left = d.docker_ok(args);
            assert!(
                left.trim().is_empty(),
                "{point}: {what} still listed: {left} ({errors:?})"
            );
        }
        let mut left = Vec::new();
        if !wait_for(Duration::from_secs(10), || {
            d.shim_pids().is_empty() && d.proxy_pids().is_empty()
        }) {
            left.push(format!(
                "shims {:?}, proxies {:?}",
                d.shim_pids(),
                d.proxy_pids()
            ));
        }
        let table = berth::network::table_name(&d.exec_root);
        let nft = Command::new("nft")
            .args(["list", "table", "inet", &table])
            .output()
            .unwrap();
        let nft = String::from_utf8_lossy(&nft.stdout).into_owned();
        if nft
            .lines()
            .any(|l| l.contains("dnat") && !l.contains("ct status dnat"))
        {
            left.push(format!("a published port's rule:\n{nft}"));
        }
        let default_bridge = berth::network::default_bridge_name(&d.exec_root);
        let ports = bridge_ports(&default_bridge);
        if !ports.is_empty() {
            left.push(format!("veths on {default_bridge}: {ports:?}"));
        }
        for b in &self.bridges {
            if Path::new(&format!("/sys/class/net/{b}")).exists() {
                left.push(format!("bridge {b}"));
            }
            if nft.contains(b.as_str()) {
                left.push(format!("nft rules for {b}"));
            }
        }
        let predefined = predefined_records(&d);
        let view = std::fs::read_to_string(d.exec_root.join("dns/view.json")).unwrap_or_default();
        if view.contains("\"ip") || view.contains("10.") {
            left.push(format!("DNS entries: {view}"));
        }
        let dir = d.dir.path().to_path_buf();
        let d_roots = (d.data_root.clone(), d.exec_root.clone());
        let log = d.log();
        d.stop();
        // Files once berthd stopped (nothing is being written).
        left.extend(unnamed_files(&d_roots, &predefined));
        let mounts = mounts_under(&dir);
        if !mounts.is_empty() {
            left.push(format!("mounts {mounts:?}"));
        }
        assert!(
            left.is_empty(),
            "{point}: left behind after removing everything:\n  {}\nberthd's log:\n{log}",
            left.join("\n  ")
        );
    }
}

/// Files and directories of data-root and exec-root beyond an empty
/// daemon's (its skeleton, engine ID, predefined networks, DNS files).
fn unnamed_files(roots: &(PathBuf, PathBuf), predefined: &BTreeSet<String>) -> Vec<String> {
    let skeleton: BTreeSet<&str> = [
        "containers",
        "engine-id",
        "image",
        "image/overlay2",
        "image/overlay2/blobs",
        "image/overlay2/blobs/sha256",
        "image/overlay2/configs",
        "image/overlay2/configs/sha256",
        "image/overlay2/images",
        "image/overlay2/layers",
        "image/overlay2/repositories.json",
        "image/overlay2/tmp",
        "network",
        "network/networks",
        "overlay2",
        "overlay2/l",
        "tmp",
        "volumes",
    ]
    .into_iter()
    .collect();
    let exec_skeleton: BTreeSet<&str> = [
        "containers",
        "dns",
        "dns/berth-dns.log",
        "dns/berth-dns.pid",
        "dns/view.json",
        "netns",
        "runtime-runc",
    ]
    .into_iter()
    .collect();
    let mut left = Vec::new();
    for (root, allowed) in [(&roots.0, &skeleton), (&roots.1, &exec_skeleton)] {
        for p in walk(root) {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if !allowed.contains(rel.as_str()) && !predefined.contains(&rel) {
                left.push(p.display().to_string());
            }
        }
    }
    left
}

/// The records of the predefined networks (an empty daemon's).
fn predefined_records(d: &Daemon) -> BTreeSet<String> {
    ["bridge", "host", "none"]
        .iter()
        .map(|n| {
            format!(
                "network/networks/{}.json",
                d.docker_ok(&["network", "inspect", "-f", "{{.Id}}", n])
                    .trim()
            )
        })
        .collect()
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn state(d: &Daemon, name: &str) -> String {
    inspect(d, name, "{{.State.Status}}")
}

/// Whether `name` is listed (any state).
fn listed(d: &Daemon, name: &str) -> bool {
    d.docker(&["inspect", "--type", "container", name])
        .status
        .success()
}

/// The test network, on this daemon's own subnet (tests run side by side:
/// two daemons picking one default pool at once would clash).
fn create_fpn(d: &Daemon) {
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "fpn"]);
}

/// A container on `net` reaches `name` by its name.
fn pings_by_name(d: &Daemon, net: &str, name: &str) {
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        net,
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        name,
    ]);
    assert!(
        o.status.success(),
        "ping {name} on {net}: {}{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
}

/// A running container answers an exec.
fn exec_works(d: &Daemon, name: &str) {
    let out = d.docker_ok(&["exec", name, "echo", "alive"]);
    assert_eq!(out.trim(), "alive");
}

/// The container starts (if it does not run) and runs.
fn runs_after_start(d: &Daemon, name: &str) {
    if state(d, name) != "running" {
        d.docker_ok(&["start", name]);
    }
    exec_works(d, name);
}

/// A small image other than busybox (for load and commit points).
fn other_archive() -> Vec<u8> {
    let layer = tar_of(&[
        Entry::Dir("etc/"),
        Entry::File("etc/other", b"other image\n"),
    ]);
    docker_archive(&[layer], &["other:1"], None).0
}

fn load(d: &Daemon, archive: &[u8]) -> std::process::Output {
    let path = d.dir.path().join("load.tar");
    std::fs::write(&path, archive).unwrap();
    d.docker(&["load", "-q", "-i", path.to_str().unwrap()])
}

// ---- containers ---------------------------------------------------------

#[test]
fn container_create_and_rename() {
    // Killed before the record: no container; the name is free.
    let mut a = Armed::start(false);
    a.crash("container-create:prepared", |d| {
        d.docker(&["create", "--name", "fpc", "-v", "/anon", "busybox", "true"]);
    });
    assert!(!listed(a.d(), "fpc"));
    a.d()
        .docker_ok(&["create", "--name", "fpc", "busybox", "true"]);
    a.everything_removable_and_nothing_left("container-create:prepared");

    // Killed after the record: listed, starts.
    let mut a = Armed::start(false);
    a.crash("container-create:saved", |d| {
        d.docker(&["create", "--name", "fpc", "busybox", "sh", "-c", "exit 4"]);
    });
    assert_eq!(state(a.d(), "fpc"), "created");
    let o = a.d().docker(&["start", "-a", "fpc"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    a.everything_removable_and_nothing_left("container-create:saved");

    for point in ["container-rename:before", "container-rename:saved"] {
        let mut a = Armed::start(false);
        a.d()
            .docker_ok(&["create", "--name", "fpc", "busybox", "true"]);
        a.crash(point, |d| {
            d.docker(&["rename", "fpc", "fpc2"]);
        });
        // Under one of its names, never both, never none.
        let (old, new) = (listed(a.d(), "fpc"), listed(a.d(), "fpc2"));
        assert!(old != new, "{point}: listed as fpc: {old}, as fpc2: {new}");
        if point == "container-rename:saved" {
            assert!(new, "{point}: the saved name is lost");
            a.d()
                .docker_ok(&["create", "--name", "fpc", "busybox", "true"]);
        }
        let o = a
            .d()
            .docker(&["start", "-a", if new { "fpc2" } else { "fpc" }]);
        assert!(o.status.success(), "{point}: {o:?}");
        a.everything_removable_and_nothing_left(point);
    }
}

#[test]
fn container_start() {
    for live_restore in [true, false] {
        for point in [
            "container-start:network",
            "container-start:created",
            "container-start:started",
            "container-start:saved",
        ] {
            let mut a = Armed::start(live_restore);
            create_fpn(a.d());
            a.note_bridge("fpn");
            a.d().docker_ok(&[
                "create",
                "--name",
                "fpc",
                "--network",
                "fpn",
                "-p",
                "80",
                "busybox",
                "sleep",
                "600",
            ]);
            a.crash(point, |d| {
                d.docker(&["start", "fpc"]);
            });
            let s = state(a.d(), "fpc");
            // With live-restore a start whose process exists is finished
            // (or adopted); without, the container is not running.
            if live_restore && point != "container-start:network" {
                assert_eq!(s, "running", "{point} (live-restore): {s}");
            } else if !live_restore {
                assert_ne!(s, "running", "{point}: {s}");
            }
            runs_after_start(a.d(), "fpc");
            // Its published port and name resolution work.
            let port = inspect(
                a.d(),
                "fpc",
                "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
            );
            assert!(port.parse::<u16>().is_ok(), "{point}: port {port:?}");
            pings_by_name(a.d(), "fpn", "fpc");
            a.everything_removable_and_nothing_left(point);
        }
    }
}

#[test]
fn container_exit_and_rm() {
    for live_restore in [true, false] {
        for point in ["container-exit:read", "container-exit:saved"] {
            let mut a = Armed::start(live_restore);
            a.d().docker_ok(&[
                "run",
                "-d",
                "--name",
                "fpc",
                "busybox",
                "sh",
                "-c",
                "sleep 2; exit 7",
            ]);
            a.crash(point, |d| {
                d.docker(&["wait", "fpc"]);
            });
            let code = wait_for(Duration::from_secs(10), || state(a.d(), "fpc") == "exited");
            assert!(code, "{point}: {}", state(a.d(), "fpc"));
            assert_eq!(inspect(a.d(), "fpc", "{{.State.ExitCode}}"), "7", "{point}");
            let o = a.d().docker(&["start", "-a", "fpc"]);
            assert_eq!(o.status.code(), Some(7), "{point}: {o:?}");
            a.everything_removable_and_nothing_left(point);
        }
    }
    // rm -f of a running container: killed after `Removing` was saved,
    // after its network and runtime state went, after its layer went,
    // after everything but its volumes' release.
    for point in [
        "container-rm:removing",
        "container-rm:released",
        "container-rm:layer-removed",
        "container-rm:removed",
    ] {
        let mut a = Armed::start(true);
        a.d().docker_ok(&["volume", "create", "named"]);
        a.d().docker_ok(&[
            "run", "-d", "--name", "fpc", "-p", "80", "-v", "named:/n", "-v", "/anon", "busybox",
            "sleep", "600",
        ]);
        a.crash(point, |d| {
            d.docker(&["rm", "-f", "-v", "fpc"]);
        });
        if listed(a.d(), "fpc") {
            let s = state(a.d(), "fpc");
            assert!(
                ["dead", "exited", "running"].contains(&s.as_str()),
                "{point}: {s}"
            );
            a.d().docker_ok(&["rm", "-f", "-v", "fpc"]);
        }
        // The named volume is free for another container.
        a.d()
            .docker_ok(&["run", "--rm", "-v", "named:/n", "busybox", "true"]);
        a.everything_removable_and_nothing_left(point);
    }
}

// ---- images -------------------------------------------------------------

#[test]
fn image_load_commit_and_build() {
    let other = other_archive();
    for point in [
        "load:blobs",
        "image-commit:layers",
        "image-commit:config",
        "image-commit:image",
    ] {
        let mut a = Armed::start(false);
        a.crash(point, |d| {
            load(d, &other);
        });
        // Listed whole or not at all; loading it again works.
        let o = load(a.d(), &other);
        assert!(o.status.success(), "{point}: {o:?}");
        assert!(a.d().docker_ok(&["images", "-q", "other:1"]).trim().len() >= 12);
        a.everything_removable_and_nothing_left(point);
    }

    let mut a = Armed::start(false);
    a.d().docker_ok(&[
        "run",
        "-d",
        "--name",
        "fpc",
        "busybox",
        "sh",
        "-c",
        "echo x > /f; sleep 600",
    ]);
    a.crash("commit:layer", |d| {
        d.docker(&["commit", "fpc", "cimg"]);
    });
    assert!(!a
        .d()
        .docker(&["inspect", "--type", "image", "cimg"])
        .status
        .success());
    a.d().docker_ok(&["commit", "fpc", "cimg"]);
    assert_eq!(
        a.d()
            .docker_ok(&["run", "--rm", "cimg", "cat", "/f"])
            .trim(),
        "x"
    );
    a.everything_removable_and_nothing_left("commit:layer");

    let mut a = Armed::start(false);
    let ctx = a.d().dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n",
    )
    .unwrap();
    let ctx_s = ctx.to_str().unwrap().to_string();
    a.crash("build:step", |d| {
        d.docker(&["build", "-q", "-t", "bimg", &ctx_s]);
    });
    a.d().docker_ok(&["build", "-q", "-t", "bimg", &ctx_s]);
    assert_eq!(
        a.d()
            .docker_ok(&["run", "--rm", "bimg", "cat", "/one", "/two"]),
        "one\ntwo\n"
    );
    a.everything_removable_and_nothing_left("build:step");
}

#[test]
fn image_pull_and_push() {
    let reg = Registry::start(None);
    let remote = format!("{}/fp/busybox:1", reg.addr);

    let mut a = Armed::start(false);
    a.d().docker_ok(&["tag", "busybox", &remote]);
    a.crash("push:layers", |d| {
        d.docker(&["push", &remote]);
    });
    a.d().docker_ok(&["push", &remote]);
    a.everything_removable_and_nothing_left("push:layers");

    let mut a = Armed::start(false);
    a.d().docker_ok(&["rmi", "busybox"]);
    a.crash("pull:blobs", |d| {
        d.docker(&["pull", "-q", &remote]);
    });
    a.d().docker_ok(&["pull", "-q", &remote]);
    a.d().docker_ok(&["run", "--rm", &remote, "true"]);
    a.everything_removable_and_nothing_left("pull:blobs");
}

// ---- networks -----------------------------------------------------------

#[test]
fn network_create_connect_disconnect_rm() {
    for point in ["network-create:saved", "network-create:bridge"] {
        let mut a = Armed::start(false);
        a.crash(point, |d| {
            d.docker(&["network", "create", "--subnet", &d.subnet(1), "fpn"]);
        });
        // The record was saved before the bridge: the network is listed
        // and works.
        a.note_bridge("fpn");
        a.d().docker_ok(&[
            "run",
            "-d",
            "--name",
            "fpc",
            "--network",
            "fpn",
            "busybox",
            "sleep",
            "600",
        ]);
        pings_by_name(a.d(), "fpn", "fpc");
        a.everything_removable_and_nothing_left(point);
    }

    for point in ["network-connect:endpoint", "network-connect:saved"] {
        let mut a = Armed::start(true);
        create_fpn(a.d());
        a.note_bridge("fpn");
        a.d()
            .docker_ok(&["run", "-d", "--name", "fpc", "busybox", "sleep", "600"]);
        a.crash(point, |d| {
            d.docker(&["network", "connect", "fpn", "fpc"]);
        });
        assert_eq!(state(a.d(), "fpc"), "running", "{point}");
        // Connected or not; connecting (again) gives a working endpoint.
        let o = a.d().docker(&["network", "connect", "fpn", "fpc"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("already exists"),
            "{point}: {err}"
        );
        pings_by_name(a.d(), "fpn", "fpc");
        a.d().docker_ok(&["network", "disconnect", "fpn", "fpc"]);
        a.everything_removable_and_nothing_left(point);
    }

    for point in ["network-disconnect:removed", "network-disconnect:saved"] {
        let mut a = Armed::start(true);
        create_fpn(a.d());
        a.note_bridge("fpn");
        a.d().docker_ok(&[
            "run",
            "-d",
            "--name",
            "fpc",
            "--network",
            "fpn",
            "busybox",
            "sleep",
            "600",
        ]);
        a.d().docker_ok(&["network", "connect", "bridge", "fpc"]);
        a.crash(point, |d| {
            d.docker(&["network", "disconnect", "fpn", "fpc"]);
        });
        assert_eq!(state(a.d(), "fpc"), "running", "{point}");
        let o = a.d().docker(&["network", "disconnect", "fpn", "fpc"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("is not connected"),
            "{point}: {err}"
        );
        // Gone from the network: it can be removed once c is.
        exec_works(a.d(), "fpc");
        a.d().docker_ok(&["rm", "-f", "fpc"]);
        a.d().docker_ok(&["network", "rm", "fpn"]);
        a.everything_removable_and_nothing_left(point);
    }

    let mut a = Armed::start(false);
    create_fpn(a.d());
    a.note_bridge("fpn");
    a.crash("network-rm:bridge", |d| {
        d.docker(&["network", "rm", "fpn"]);
    });
    a.everything_removable_and_nothing_left("network-rm:bridge");
}

// ---- volumes ------------------------------------------------------------

#[test]
fn volume_create_and_rm() {
    for point in ["volume-create:dir", "volume-create:saved"] {
        let mut a = Armed::start(false);
        a.crash(point, |d| {
            d.docker(&["volume", "create", "fpv"]);
        });
        // Listed (a directory without its record is a local volume, as
        // dockerd's local driver lists it) and usable.
        assert_eq!(
            a.d().docker_ok(&["volume", "ls", "-q"]).trim(),
            "fpv",
            "{point}"
        );
        a.d()
            .docker_ok(&["run", "--rm", "-v", "fpv:/v", "busybox", "touch", "/v/f"]);
        a.everything_removable_and_nothing_left(point);
    }

    let mut a = Armed::start(false);
    a.d().docker_ok(&["volume", "create", "fpv"]);
    a.d()
        .docker_ok(&["run", "--rm", "-v", "fpv:/v", "busybox", "touch", "/v/f"]);
    a.crash("volume-rm:renamed", |d| {
        d.docker(&["volume", "rm", "fpv"]);
    });
    assert_eq!(a.d().docker_ok(&["volume", "ls", "-q"]).trim(), "");
    a.d().docker_ok(&["volume", "create", "fpv"]);
    assert_eq!(
        a.d()
            .docker_ok(&["run", "--rm", "-v", "fpv:/v", "busybox", "ls", "/v"])
            .trim(),
        ""
    );
    a.everything_removable_and_nothing_left("volume-rm:renamed");
}

/// Tampered network and volume records (berthd killed, the files
/// overwritten): listed (`unreadable-<id12>`, a `null` network whose label
/// names the file and the error; the volume as a local one), removable, and
/// the network's bridge gone.
#[test]
fn tampered_network_and_volume_records_are_listed_and_removable() {
    let mut a = Armed::start(false);
    create_fpn(a.d());
    a.note_bridge("fpn");
    a.d().docker_ok(&["volume", "create", "fpv"]);
    let id = a
        .d()
        .docker_ok(&["network", "inspect", "-f", "{{.Id}}", "fpn"])
        .trim()
        .to_string();
    let bridge = format!("br-{}", &id[..12]);
    assert!(Path::new("/sys/class/net").join(&bridge).exists());
    let mut d = a.d.take().unwrap();
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit_keep();
    std::fs::write(
        d.data_root.join(format!("network/networks/{id}.json")),
        b"{\"version\": 1, \"id\": tampered",
    )
    .unwrap();
    std::fs::write(d.data_root.join("volumes/fpv/volume.json"), b"\x00garbage").unwrap();
    a.d = Some(d.restart());

    let name = format!("unreadable-{}", &id[..12]);
    let label = a.d().docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Labels \"berth.unreadable-record\"}}",
        &name,
    ]);
    assert!(label.contains(&format!("{id}.json")), "{label}");
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "the unreadable network's bridge stays"
    );
    assert_eq!(a.d().docker_ok(&["volume", "ls", "-q"]).trim(), "fpv");
    a.d().docker_ok(&["network", "rm", &name]);
    a.everything_removable_and_nothing_left("tampered records");
}

/// Every crash point is reached by a case of this file.
#[test]
fn every_point_has_a_case() {
    let me = std::fs::read_to_string(file!()).unwrap();
    let missing: Vec<_> = berth_actors::failpoint::POINTS
        .iter()
        .filter(|p| !me.contains(&format!("\"{p}\"")))
        .collect();
    assert!(missing.is_empty(), "points without a case: {missing:?}");
}
