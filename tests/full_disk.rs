//! A full disk: berthd's data-root and exec-root on two small ext4
//! filesystems (loop devices the test makes, no reserved blocks), the
//! data-root filled to the last block. load, pull, create, `cp` into a
//! container, commit and build fail with a clear `no space left on device`
//! that names what failed; nothing half-written is visible; berthd stays
//! up; a container writing its log keeps running and the lines its shim
//! could not write are counted in the metrics (the log file holds whole
//! records only). Once space is freed, everything works again.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::containers::{busybox_archive, inspect};
use common::images::{docker_archive, tar_of, Entry};
use common::registry::Registry;
use common::{free_port, wait_for, Daemon};

/// An ext4 filesystem in a file, loop-mounted; unmounted (and its loop
/// device freed) when dropped.
struct Disk {
    mnt: PathBuf,
}

impl Disk {
    fn new(dir: &Path, name: &str, mib: u64) -> Disk {
        let img = dir.join(format!("{name}.img"));
        let mnt = dir.join(name);
        std::fs::create_dir_all(&mnt).unwrap();
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(mib << 20).unwrap();
        let ok = |c: &mut Command| {
            let o = c.output().unwrap();
            assert!(o.status.success(), "{c:?}: {o:?}");
        };
        ok(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&img));
        ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt));
        Disk { mnt }
    }

    fn avail(&self) -> u64 {
        nix::sys::statvfs::statvfs(&self.mnt)
            .map(|s| s.blocks_available() * s.fragment_size())
            .unwrap()
    }

    /// Take every free block but `leave` bytes.
    fn fill(&self, leave: u64) {
        // Each filler file has its own name: filling again (after failures
        // freed what they wrote) adds to what is there.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = || {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.mnt.join(format!("filler-{n}"))
        };
        // Room for the extent tree of the filler itself.
        let want = self.avail().saturating_sub(leave + (1 << 20));
        if want > 0 {
            let o = Command::new("fallocate")
                .args(["-l", &want.to_string()])
                .arg(name())
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
        }
        if leave == 0 {
            // The last blocks, one small file at a time.
            for _ in 0..10_000 {
                let p = name();
                if std::fs::write(&p, vec![0u8; 4096]).is_err() {
                    let _ = std::fs::remove_file(&p);
                    break;
                }
            }
        }
    }

    fn free(&self) {
        for e in std::fs::read_dir(&self.mnt).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("filler") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // What a failed test's berthd left mounted on it first (container
        // roots, the namespace directory), then the filesystem itself.
        common::unmount_under(&self.mnt);
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).output();
    }
}

fn scrape(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn dropped_lines(port: u16) -> f64 {
    scrape(port)
        .lines()
        .filter(|l| l.starts_with("berth_log_lines_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A failed CLI call whose error says the disk is full and names `what`.
fn fails_full(d: &Daemon, args: &[&str], what: &[&str]) -> String {
    let o = d.docker(args);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !o.status.success() || out.contains("errorDetail") || out.contains("no space"),
        "{args:?} succeeded on a full disk: {out}"
    );
    assert!(
        out.contains("no space left on device"),
        "{args:?}: not a clear full-disk error: {out}\nberthd's log:\n{}",
        d.log()
    );
    for w in what {
        assert!(
            out.contains(w),
            "{args:?}: the error does not name {w:?}: {out}"
        );
    }
    out
}

#[test]
fn a_full_disk_fails_cleanly_and_everything_works_after() {
    // Dropped last: the filesystems are unmounted before their directory goes.
    let disks = tempfile::Builder::new()
        .prefix("berth-disks-")
        .tempdir()
        .unwrap();
    let data_disk = Disk::new(disks.path(), "datafs", 160);
    let exec_disk = Disk::new(disks.path(), "execfs", 32);
    let mut d = Daemon::prepare();
    d.data_root = data_disk.mnt.join("data");
    d.exec_root = exec_disk.mnt.join("exec");
    let port = free_port();
    d.write_config(&serde_json::json!({"metrics-addr": format!("127.0.0.1:{port}")}));
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let mut cmd = d.command();
    cmd.args(&d.extra_args);
    let d = d.spawn(cmd);

    // Set up while there is room: busybox, an image in a registry, a
    // container to copy into, one to commit, one writing its log.
    let archive = d.dir.path().join("busybox.tar");
    std::fs::write(&archive, busybox_archive()).unwrap();
    d.docker_ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    let reg = Registry::start(None);
    let remote = format!("{}/full/other:1", reg.addr);
    let mut random = vec![0u8; 3 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    let other = docker_archive(
        &[tar_of(&[Entry::File("blob", &random)])],
        &["other:1"],
        None,
    )
    .0;
    let other_tar = d.dir.path().join("other.tar");
    std::fs::write(&other_tar, &other).unwrap();
    d.docker_ok(&["load", "-q", "-i", other_tar.to_str().unwrap()]);
    d.docker_ok(&["tag", "other:1", &remote]);
    d.docker_ok(&["push", &remote]);
    d.docker_ok(&["rmi", "other:1", &remote]);
    d.docker_ok(&["run", "-d", "--name", "cpto", "busybox", "sleep", "600"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "tocommit",
        "busybox",
        "sh",
        "-c",
        "echo x > /x; sleep 600",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); usleep 5000; done",
    ]);
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("big"), &random).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY big /big\n").unwrap();
    let big = ctx.join("big");
    let ctx_s = ctx.to_str().unwrap().to_string();
    assert!(wait_for(Duration::from_secs(10), || {
        d.docker_ok(&["logs", "writer"]).lines().count() > 50
    }));

    let entries = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let layers_dir = d.data_root.join("overlay2");
    let staging = [
        d.data_root.join("image/overlay2/tmp"),
        d.data_root.join("tmp"),
        d.data_root.join("image/overlay2/blobs/sha256"),
    ];
    let layers_before = entries(&layers_dir);
    let staged_before: Vec<_> = staging.iter().map(|p| entries(p)).collect();
    data_disk.fill(0);
    let images_before = d.docker_ok(&["images", "-aq"]);
    let containers_before = d.docker_ok(&["ps", "-aq"]);

    fails_full(&d, &["load", "-i", other_tar.to_str().unwrap()], &["load"]);
    fails_full(&d, &["pull", &remote], &["sha256:"]);
    fails_full(
        &d,
        &["create", "--name", "late", "busybox", "true"],
        &["creat"],
    );
    fails_full(
        &d,
        &["cp", big.to_str().unwrap(), "cpto:/big"],
        &["copying into /", "big"],
    );
    fails_full(&d, &["commit", "tocommit", "committed"], &["tocommit"]);
    fails_full(
        &d,
        &["build", "-q", "-t", "built", &ctx_s],
        &["build context"],
    );

    // Nothing half-made is listed; nothing half-written is visible.
    assert_eq!(d.docker_ok(&["images", "-aq"]), images_before);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), containers_before);
    let o = d.docker(&[
        "cp",
        "cpto:/big",
        d.dir.path().join("out").to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "a partial /big is visible in cpto");

    // A stop while the disk is full: its record cannot be saved yet. (The
    // failures above freed what they had written: filled again first.)
    data_disk.fill(0);
    d.docker_ok(&["stop", "-t", "1", "cpto"]);
    let cpto_record = d
        .data_root
        .join("containers")
        .join(inspect(&d, "cpto", "{{.Id}}"))
        .join("config.v2.json");

    // The writer runs on; its lost lines are counted.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inspect(&d, "writer", "{{.State.Status}}"), "running");
    assert!(
        wait_for(Duration::from_secs(10), || dropped_lines(port) > 0.0),
        "no dropped log line counted:\n{}",
        scrape(port)
    );
    let r = d.get("/_ping");
    assert_eq!(r.status, 200);

    // A valid layer holding one file (3 MiB) larger than the free space.
    data_disk.free();
    data_disk.fill(1 << 20);
    fails_full(&d, &["load", "-i", other_tar.to_str().unwrap()], &["load"]);
    assert_eq!(d.docker_ok(&["images", "-aq"]), images_before);
    // No layer, blob, staged file or build context left by the failures
    // (the committed container's layer is its own, listed before).
    assert_eq!(entries(&layers_dir), layers_before, "layers left");
    for (p, before) in staging.iter().zip(&staged_before) {
        assert_eq!(&entries(p), before, "left in {}", p.display());
    }

    // Space again: everything works, and the stopped container's record
    // is saved (within the actor's 5 s retry).
    data_disk.free();
    assert!(
        wait_for(Duration::from_secs(15), || {
            std::fs::read_to_string(&cpto_record).is_ok_and(|r| r.contains("\"exited\""))
        }),
        "the record of the container stopped on a full disk was not saved again"
    );
    assert!(
        d.log().contains("the container record is saved again"),
        "no record save failed and was retried:\n{}",
        d.log()
    );
    d.docker_ok(&["load", "-q", "-i", other_tar.to_str().unwrap()]);
    d.docker_ok(&["rmi", "other:1"]);
    d.docker_ok(&["pull", "-q", &remote]);
    d.docker_ok(&["image", "inspect", &remote]);
    d.docker_ok(&["create", "--name", "late", "busybox", "true"]);
    d.docker_ok(&["cp", big.to_str().unwrap(), "cpto:/big"]);
    d.docker_ok(&["commit", "tocommit", "committed"]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "committed", "cat", "/x"]),
        "x\n"
    );
    d.docker_ok(&["build", "-q", "-t", "built", &ctx_s]);
    // The writer's log: whole lines only, and new ones after the gap.
    let before = d.docker_ok(&["logs", "writer"]).lines().count();
    assert!(wait_for(Duration::from_secs(10), || {
        d.docker_ok(&["logs", "writer"]).lines().count() > before + 50
    }));
    let logs = d.docker_ok(&["logs", "writer"]);
    for l in logs.lines() {
        assert!(
            l.strip_prefix("line ")
                .is_some_and(|n| n.parse::<u64>().is_ok()),
            "a broken log line: {l:?}"
        );
    }
    let log = d.log();
    assert!(
        log.contains("no space left on device") || log.contains("No space left on device"),
        "berthd logged no full-disk failure:\n{log}"
    );
    d.docker_ok(&["rm", "-f", "writer", "tocommit", "cpto", "late"]);
    assert!(
        d.log()
            .contains("log entries of this container were dropped"),
        "no warning about the dropped lines:\n{}",
        d.log()
    );
    d.stop();
    drop(exec_disk);
    drop(data_disk);
}
