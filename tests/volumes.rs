//! Volumes and mounts through the real docker CLI against a berthd the test
//! started: named volumes shared between containers and refused removal
//! while in use, copy-up (and nocopy), read-only binds, tmpfs sizes,
//! anonymous volumes of `-v /path` and the image's VOLUME, `--mount`, bad
//! input, live-restore.

use crate::common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::containers::{busybox_full_rootfs, daemon_with_busybox, inspect};
use common::Daemon;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn volumes(d: &Daemon) -> Vec<String> {
    d.docker_ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// busybox with `VOLUME /anon`, imported as `vbox`.
fn import_vbox(d: &Daemon) {
    let mut c = common::docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args([
            "import",
            "--change",
            "VOLUME /anon",
            "--change",
            "CMD [\"/bin/sh\"]",
            "-",
            "vbox",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(&busybox_full_rootfs())
        .unwrap();
    assert!(c.wait().unwrap().success());
}

#[test]
fn named_volumes_copy_up_binds_tmpfs_and_anonymous_volumes() {
    let d = daemon_with_busybox();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    // A named volume shared by two containers; removal refused in use.
    assert_eq!(d.docker_ok(&["volume", "create", "data"]).trim(), "data");
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo x > /d/f",
    ]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"]),
        "x\n"
    );
    d.docker_ok(&[
        "run", "-d", "--name", "user1", "-v", "data:/d", "busybox", "sleep", "600",
    ]);
    let o = d.docker(&["volume", "rm", "data"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    let r = d.raw(b"DELETE /v1.47/volumes/data HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 409);
    let mounts = inspect(
        &d,
        "user1",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
    );
    assert_eq!(mounts, "volume data /d true");
    d.docker_ok(&["rm", "-f", "user1"]);
    d.docker_ok(&["volume", "rm", "data"]);
    assert!(volumes(&d).is_empty());
    std::thread::sleep(Duration::from_millis(1100));
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    for want in ["create data", "mount data", "unmount data", "destroy data"] {
        assert!(ev.contains(want), "missing {want}: {ev}");
    }

    // Copy-up: an empty named volume over /etc gets the image's files;
    // with nocopy it stays empty.
    let out = d.docker_ok(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc"]);
    assert!(out.contains("passwd") && out.contains("group"), "{out}");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "emptyvol:/etc:nocopy",
        "busybox",
        "ls",
        "/etc",
    ]);
    // Nothing of the image's; the container's own files are mounted over
    // the volume, as dockerd does.
    assert_eq!(out.trim(), "hostname\nhosts\nresolv.conf");
    // Once: a populated volume is not copied into again.
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        "busybox",
        "rm",
        "/etc/group",
    ]);
    let out = d.docker_ok(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc"]);
    assert!(!out.contains("group"), "{out}");

    // A read-only bind mount; a missing -v source is created.
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/h:ro", host.display()),
        "busybox",
        "touch",
        "/h/x",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/h", host.display()),
        "busybox",
        "touch",
        "/h/y",
    ]);
    assert!(host.join("y").is_file());
    let fresh = d.dir.path().join("made-by-v");
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", fresh.display()),
        "busybox",
        "true",
    ]);
    assert!(fresh.is_dir());

    // A local volume with a device: mounted on first use, unmounted when
    // no container uses it.
    d.docker_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "tv",
    ]);
    let out = d.docker_ok(&["run", "--rm", "-v", "tv:/tv", "busybox", "df", "-k", "/tv"]);
    assert!(
        out.lines().last().unwrap().split_whitespace().nth(1) == Some("1024"),
        "{out}"
    );
    let data = d.data_root.join("volumes/tv/_data");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&data.display().to_string())
    };
    assert!(!mounted(), "still mounted after its last user");
    // As dockerd's local driver: unmounted when the last running container
    // stops, though a stopped container still holds the volume; the next
    // user gets a fresh tmpfs.
    d.docker_ok(&[
        "run",
        "--name",
        "tvuser",
        "-v",
        "tv:/tv",
        "busybox",
        "sh",
        "-c",
        "echo kept > /tv/f",
    ]);
    assert!(
        common::wait_for(Duration::from_secs(3), || !mounted()),
        "still mounted after its last running container stopped"
    );
    let o = d.docker(&["run", "--rm", "-v", "tv:/tv", "busybox", "cat", "/tv/f"]);
    assert!(
        !o.status.success(),
        "a stopped volume kept its tmpfs content"
    );
    // A copy into the stopped container mounts the volume through its
    // actor for the copy only.
    let f = d.dir.path().join("tvcp");
    std::fs::write(&f, "x").unwrap();
    d.docker_ok(&["cp", f.to_str().unwrap(), "tvuser:/tv/g"]);
    assert!(
        common::wait_for(Duration::from_secs(3), || !mounted()),
        "a copy into a stopped container left its volume mounted"
    );
    assert!(!d.docker(&["volume", "rm", "tv"]).status.success());
    d.docker_ok(&["rm", "tvuser"]);
    d.docker_ok(&["volume", "rm", "tv"]);
    // tmpfs sizes: --tmpfs and --mount type=tmpfs.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t:size=1m",
        "busybox",
        "df",
        "-k",
        "/t",
    ]);
    assert!(
        out.lines().last().unwrap().split_whitespace().nth(1) == Some("1024"),
        "{out}"
    );
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=2097152",
        "busybox",
        "df",
        "-k",
        "/t",
    ]);
    assert!(
        out.lines().last().unwrap().split_whitespace().nth(1) == Some("2048"),
        "{out}"
    );

    // Anonymous volumes (the image's VOLUME, -v /path) go with rm -v and
    // --rm; named ones stay.
    import_vbox(&d);
    let before = volumes(&d);
    d.docker_ok(&[
        "run", "-d", "--name", "anon1", "-v", "/extra", "-v", "keep:/k", "vbox", "sleep", "600",
    ]);
    assert_eq!(volumes(&d).len(), before.len() + 3);
    for f in ["volume=keep", "volume=/extra"] {
        let ps = d.docker_ok(&["ps", "--filter", f, "--format", "{{.Names}}"]);
        assert_eq!(ps.trim(), "anon1", "{f}");
    }
    assert_eq!(
        d.docker_ok(&["ps", "-q", "--filter", "volume=nosuch"])
            .trim(),
        ""
    );
    d.docker_ok(&["rm", "-f", "-v", "anon1"]);
    let after: Vec<String> = volumes(&d);
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert!(after.contains(&"keep".to_string()));
    d.docker_ok(&["run", "--rm", "vbox", "true"]);
    assert_eq!(volumes(&d).len(), before.len() + 1);
    // --volumes-from: the same volumes (read-only here); its rm -v leaves
    // the other container's anonymous volume alone.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "owner",
        "-v",
        "shared:/s",
        "vbox",
        "sh",
        "-c",
        "echo from-owner > /s/f; echo a > /anon/f; sleep 600",
    ]);
    assert!(common::wait_for(Duration::from_secs(5), || d
        .docker(&["exec", "owner", "test", "-f", "/anon/f"])
        .status
        .success()));
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "owner:ro",
        "busybox",
        "sh",
        "-c",
        "cat /s/f /anon/f; touch /s/x 2>&1 || true",
    ]);
    assert!(
        out.contains("from-owner") && out.contains("Read-only file system"),
        "{out}"
    );
    assert_eq!(d.docker_ok(&["exec", "owner", "cat", "/anon/f"]), "a\n");
    d.docker_ok(&["rm", "-f", "-v", "owner"]);
    d.docker_ok(&["volume", "rm", "shared"]);
    // rm without -v keeps the anonymous volume; prune takes it (and not
    // the named one).
    d.docker_ok(&["run", "-d", "--name", "anon2", "vbox", "sleep", "600"]);
    d.docker_ok(&["rm", "-f", "anon2"]);
    assert_eq!(volumes(&d).len(), before.len() + 2);
    d.docker_ok(&["volume", "prune", "-f"]);
    let left = volumes(&d);
    assert_eq!(left.len(), before.len() + 1, "{left:?}");
    assert!(left.contains(&"keep".to_string()));
    d.stop();
}

#[test]
fn bad_mount_input_is_refused_and_nothing_is_created() {
    let d = daemon_with_busybox();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["volume", "create", "bad/name"],
            "includes invalid characters",
        ),
        (
            vec!["volume", "create", "-d", "nosuch", "v1"],
            "plugin \"nosuch\" not found",
        ),
        (
            vec![
                "run",
                "--rm",
                "--mount",
                "type=bind,source=rel,target=/x",
                "busybox",
                "true",
            ],
            "must be absolute",
        ),
        (
            vec![
                "run",
                "--rm",
                "--mount",
                "type=bind,source=/nonexistent/berth,target=/x",
                "busybox",
                "true",
            ],
            "bind source path does not exist: /nonexistent/berth",
        ),
        (
            vec![
                "run", "--rm", "-v", "a1:/d", "-v", "b1:/d", "busybox", "true",
            ],
            "Duplicate mount point: /d",
        ),
    ];
    for (args, want) in cases {
        let o = d.docker(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // A create that fails after its layer and directory were made (a bind
    // source that cannot be created): all of it is removed, its name is free.
    let file = d.dir.path().join("plainfile");
    std::fs::write(&file, "x").unwrap();
    let layers = |d: &Daemon| {
        std::fs::read_dir(d.data_root.join("overlay2"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let before = layers(&d);
    let bad_bind = format!("{}/sub:/x", file.display());
    let o = d.docker(&[
        "create", "--name", "late", "-v", "/anon", "-v", &bad_bind, "busybox", "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("error while creating mount source path"),
        "{}",
        stderr(&o)
    );
    assert_eq!(layers(&d), before, "the writable layer was removed");
    let dirs = std::fs::read_dir(d.data_root.join("containers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(dirs, 0, "the container's directory was removed");
    d.docker_ok(&["create", "--name", "late", "busybox", "true"]);
    d.docker_ok(&["rm", "late"]);
    assert!(volumes(&d).is_empty(), "{:?}", volumes(&d));
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    let r = d.get("/v1.47/volumes/nosuch");
    assert_eq!(r.status, 404);
    d.stop();
}

#[test]
fn live_restore_keeps_volumes_mounted_and_data_intact() {
    let d = Daemon::builder()
        .config(serde_json::json!({"live-restore": true}))
        .start();
    common::containers::load_busybox(&d);
    d.docker_ok(&["volume", "create", "logs"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "logs:/l",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i >> /l/seq; i=$((i+1)); usleep 50000; done",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let ls = d.docker_ok(&["volume", "ls"]);
    let mut d = d;
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = d.wait_exit_keep();
    let data = d.data_root.join("volumes/logs/_data/seq");
    let n0 = std::fs::read_to_string(&data).unwrap().lines().count();
    std::thread::sleep(Duration::from_secs(1));
    let n1 = std::fs::read_to_string(&data).unwrap().lines().count();
    assert!(
        n1 > n0,
        "the container stopped writing while berthd was down"
    );
    let d = d.restart();
    assert_eq!(d.docker_ok(&["volume", "ls"]), ls);
    let o = d.docker(&["volume", "rm", "logs"]);
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    let seq = d.docker_ok(&["exec", "writer", "cat", "/l/seq"]);
    let nums: Vec<u64> = seq.lines().map(|l| l.parse().unwrap()).collect();
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1);
    }
    d.docker_ok(&["rm", "-f", "writer"]);
    d.docker_ok(&["volume", "rm", "logs"]);
    d.stop();
}
