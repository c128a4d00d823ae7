//! `docker cp` through the real CLI against a berthd the test started:
//! both ways, running and stopped containers, through a volume, ownership
//! with `-a`; and attacks: symlinks to `/` and to host paths in the
//! container, a container swapping a directory and a symlink while copies
//! run. A host sentinel checks that nothing outside the container is read
//! or written.

use crate::common;

use std::time::Duration;

use common::containers::daemon_with_busybox;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn cp_both_ways_through_volumes_and_with_ownership() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("cp");
    std::fs::create_dir(&t).unwrap();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "cpvol:/data",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /srv/dir/sub && echo inner > /srv/dir/sub/f && echo vol > /data/v && sleep 600",
    ]);
    assert!(common::wait_for(Duration::from_secs(5), || d
        .docker(&["exec", "box", "test", "-f", "/data/v"])
        .status
        .success()));
    // Out: a directory tree, a file in a volume.
    d.docker_ok(&["cp", "box:/srv/dir", t.join("dir").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(t.join("dir/sub/f")).unwrap(),
        "inner\n"
    );
    d.docker_ok(&["cp", "box:/data/v", t.join("v").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(t.join("v")).unwrap(), "vol\n");
    // In: a file, a directory, into the volume (seen on the host's side).
    std::fs::write(t.join("up.txt"), "hello").unwrap();
    std::fs::create_dir_all(t.join("tree/deep")).unwrap();
    std::fs::write(t.join("tree/deep/x"), "x").unwrap();
    d.docker_ok(&["cp", t.join("up.txt").to_str().unwrap(), "box:/srv/"]);
    assert_eq!(d.docker_ok(&["exec", "box", "cat", "/srv/up.txt"]), "hello");
    d.docker_ok(&["cp", t.join("tree").to_str().unwrap(), "box:/srv/tree"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/srv/tree/deep/x"]),
        "x"
    );
    d.docker_ok(&["cp", t.join("up.txt").to_str().unwrap(), "box:/data/in-vol"]);
    let host_side = d.data_root.join("volumes/cpvol/_data/in-vol");
    assert_eq!(std::fs::read_to_string(host_side).unwrap(), "hello");
    // Ownership: the archive's kept, with -a or without (as dockerd: the
    // CLI sends the host's owners; -a only matters with a Config.User).
    let owned = t.join("owned");
    std::fs::write(&owned, "o").unwrap();
    std::os::unix::fs::chown(&owned, Some(1234), Some(4321)).unwrap();
    d.docker_ok(&["cp", "-a", owned.to_str().unwrap(), "box:/srv/owned-a"]);
    d.docker_ok(&["cp", owned.to_str().unwrap(), "box:/srv/owned-root"]);
    let ls = d.docker_ok(&[
        "exec",
        "box",
        "stat",
        "-c",
        "%n %u %g",
        "/srv/owned-a",
        "/srv/owned-root",
    ]);
    assert!(ls.contains("/srv/owned-a 1234 4321"), "{ls}");
    assert!(ls.contains("/srv/owned-root 1234 4321"), "{ls}");
    d.docker_ok(&[
        "cp",
        "-a",
        "box:/srv/owned-a",
        t.join("back").to_str().unwrap(),
    ]);
    // A stopped container: both ways.
    d.docker_ok(&["stop", "-t", "0", "box"]);
    d.docker_ok(&[
        "cp",
        "box:/srv/up.txt",
        t.join("stopped-out").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(t.join("stopped-out")).unwrap(),
        "hello"
    );
    d.docker_ok(&[
        "cp",
        t.join("up.txt").to_str().unwrap(),
        "box:/srv/while-stopped",
    ]);
    d.docker_ok(&["start", "box"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/srv/while-stopped"]),
        "hello"
    );
    // Missing paths: dockerd's 404.
    let o = d.docker(&["cp", "box:/nonexistent", t.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("Could not find the file /nonexistent in container box"),
        "{}",
        stderr(&o)
    );
    let r = d.raw(b"HEAD /v1.47/containers/box/archive?path=/srv/up.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.header("X-Docker-Container-Path-Stat").is_some());
    d.docker_ok(&["rm", "-f", "box"]);
    d.stop();
}

#[test]
fn cp_never_leaves_the_container_root() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("cp");
    std::fs::create_dir(&t).unwrap();
    // A host sentinel the container's symlinks name.
    let sentinel = d.dir.path().join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    std::fs::write(sentinel.join("secret"), "HOST-SECRET").unwrap();
    let s = sentinel.display().to_string();
    d.docker_ok(&[
        "run", "-d", "--name", "evil", "busybox", "sh", "-c",
        &format!(
            "ln -s / /a; mkdir -p $(dirname {s}); ln -s / /hostlike; echo CONTAINER-SHADOW > /etc/shadow; \
             mkdir -p /race; while true; do rm -rf /race/d; mkdir -p /race/d; echo inside > /race/d/f; \
             rm -rf /race/d; ln -s {s} /race/d; done"
        ),
    ]);
    assert!(common::wait_for(Duration::from_secs(5), || d
        .docker(&["exec", "evil", "test", "-d", "/race"])
        .status
        .success()));
    std::fs::write(t.join("f"), "payload").unwrap();
    // /a -> /: the copy lands inside the container.
    let name = format!("berth-cp-{}", std::process::id());
    d.docker_ok(&[
        "cp",
        t.join("f").to_str().unwrap(),
        &format!("evil:/a/{name}"),
    ]);
    assert!(
        !std::path::Path::new(&format!("/{name}")).exists(),
        "a host file was written"
    );
    assert_eq!(
        d.docker_ok(&["exec", "evil", "cat", &format!("/{name}")]),
        "payload"
    );
    // Reading through the link reads the container's file.
    d.docker_ok(&[
        "cp",
        "evil:/a/etc/shadow",
        t.join("shadow").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(t.join("shadow")).unwrap(),
        "CONTAINER-SHADOW\n"
    );
    // A host-like absolute path through a link: resolved in the container.
    let o = d.docker(&[
        "cp",
        &format!("evil:/hostlike{s}/secret"),
        t.join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "read {s}/secret through a link");
    // The race: 500 copies in and 500 out while /race/d flips between a
    // directory and a link to the sentinel.
    for i in 0..500 {
        let _ = d.docker(&[
            "cp",
            t.join("f").to_str().unwrap(),
            &format!("evil:/race/d/in{i}"),
        ]);
        let out = t.join(format!("out{i}"));
        if d.docker(&["cp", "evil:/race/d/", out.to_str().unwrap()])
            .status
            .success()
        {
            for e in walk(&out) {
                let b = std::fs::read(&e).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&b).contains("HOST-SECRET"),
                    "read the host: {}",
                    e.display()
                );
            }
        }
    }
    let left: Vec<String> = std::fs::read_dir(&sentinel)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["secret".to_string()],
        "the host sentinel changed"
    );
    assert_eq!(
        std::fs::read_to_string(sentinel.join("secret")).unwrap(),
        "HOST-SECRET"
    );
    d.docker_ok(&["rm", "-f", "evil"]);
    d.stop();
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(m) = std::fs::symlink_metadata(p) {
        if m.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                out.extend(walk(&e.path()));
            }
        } else if m.is_file() {
            out.push(p.to_path_buf());
        }
    }
    out
}

/// An image's own NSS module (a library that writes a marker on the host
/// when loaded) and nsswitch.conf: `docker cp` and `docker exec -u name`
/// must never load it (berthd reads passwd itself, by descriptor).
#[test]
fn cp_and_exec_user_never_load_the_containers_nss() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("nss");
    std::fs::create_dir(&t).unwrap();
    let marker = t.join("LOADED");
    let so = t.join("libnss_files.so.2");
    common::cc(
        &format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void m(void) {{ FILE *f = fopen(\"{}\", \"w\"); if (f) {{ fputs(\"loaded\", f); fclose(f); }} }}\n",
            marker.display()
        ),
        &so,
        &["-shared", "-fPIC"],
    );
    std::fs::write(t.join("nsswitch.conf"), "passwd: files\ngroup: files\n").unwrap();
    d.docker_ok(&["run", "-d", "--name", "nss", "busybox", "sh", "-c",
        "mkdir -p /lib/x86_64-linux-gnu /lib64 /usr/lib; echo 'nssuser:x:1234:1234::/:/bin/sh' >> /etc/passwd; echo 'nssgroup:x:1234:' >> /etc/group; sleep 600"]);
    assert!(common::wait_for(Duration::from_secs(5), || d
        .docker(&["exec", "nss", "grep", "-q", "nssuser", "/etc/passwd"])
        .status
        .success()));
    for dir in ["/lib/x86_64-linux-gnu/", "/lib64/", "/usr/lib/"] {
        d.docker_ok(&["cp", so.to_str().unwrap(), &format!("nss:{dir}")]);
    }
    d.docker_ok(&["cp", t.join("nsswitch.conf").to_str().unwrap(), "nss:/etc/"]);
    // exec by user name, cp both ways (with -a: numeric ownership).
    assert_eq!(
        d.docker_ok(&["exec", "-u", "nssuser", "nss", "id", "-u"])
            .trim(),
        "1234"
    );
    assert_eq!(
        d.docker_ok(&["exec", "-u", "nssuser:nssgroup", "nss", "id", "-g"])
            .trim(),
        "1234"
    );
    d.docker_ok(&[
        "cp",
        "-a",
        "nss:/etc/passwd",
        t.join("passwd").to_str().unwrap(),
    ]);
    d.docker_ok(&[
        "cp",
        "-a",
        t.join("passwd").to_str().unwrap(),
        "nss:/tmp/passwd",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !marker.exists(),
        "the container's NSS library was loaded on the host"
    );
    d.docker_ok(&["rm", "-f", "nss"]);
    d.stop();
}

/// No mount of the daemon's data-root is left on the host (a stopped
/// container's root is unmounted once its copy is done).
fn no_mount_under(root: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let r = root.display().to_string();
    !info.lines().any(|l| l.contains(&r))
}

#[test]
fn cp_of_a_stopped_container_sees_its_volumes_and_binds_in_its_root() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("parked");
    std::fs::create_dir(&t).unwrap();
    let hostdir = t.join("hostdir");
    let rodir = t.join("rodir");
    std::fs::create_dir(&hostdir).unwrap();
    std::fs::create_dir(&rodir).unwrap();
    std::fs::write(hostdir.join("hostfile"), "from-host").unwrap();
    std::fs::write(t.join("up.txt"), "hello").unwrap();
    let up = t.join("up.txt").display().to_string();
    // A FIFO bind source: mounted, never opened (an open would block).
    let fifo = t.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Never started: its volume and binds exist only in its record.
    d.docker_ok(&[
        "create",
        "--name",
        "parked",
        "-v",
        &format!("{}:/run/fifo", fifo.display()),
        "-v",
        "parkvol:/data",
        "-v",
        &format!("{}:/h", hostdir.display()),
        "-v",
        &format!("{}:/ro:ro", rodir.display()),
        "busybox",
        "true",
    ]);
    d.docker_ok(&["cp", &up, "parked:/data/up"]);
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("volumes/parkvol/_data/up")).unwrap(),
        "hello"
    );
    d.docker_ok(&["cp", "parked:/h/hostfile", t.join("out").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(t.join("out")).unwrap(), "from-host");
    d.docker_ok(&["cp", &up, "parked:/h/in"]);
    assert_eq!(
        std::fs::read_to_string(hostdir.join("in")).unwrap(),
        "hello"
    );
    // A read-only bind stays read-only (dockerd's message).
    let o = d.docker(&["cp", &up, "parked:/ro/x"]);
    assert!(!o.status.success(), "copy into a :ro bind succeeded");
    assert!(
        stderr(&o).contains("mounted volume is marked read-only"),
        "{}",
        stderr(&o)
    );
    assert!(!rodir.join("x").exists());
    // A --read-only container: its root refuses, its volume takes the copy.
    d.docker_ok(&[
        "create",
        "--name",
        "rofs",
        "--read-only",
        "-v",
        "rofsvol:/w",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["cp", &up, "rofs:/x"]);
    assert!(
        stderr(&o).contains("container rootfs is marked read-only"),
        "{}",
        stderr(&o)
    );
    d.docker_ok(&["cp", &up, "rofs:/w/x"]);
    assert!(d.data_root.join("volumes/rofsvol/_data/x").exists());
    // The volume's content is what the next container sees.
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", "parkvol:/d", "busybox", "cat", "/d/up"]),
        "hello"
    );
    // A container that ran and exited: what it wrote to its volume.
    d.docker_ok(&[
        "run",
        "--name",
        "ran",
        "-v",
        "ranvol:/v",
        "busybox",
        "sh",
        "-c",
        "echo in-vol > /v/x",
    ]);
    d.docker_ok(&["cp", "ran:/v/x", t.join("x").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(t.join("x")).unwrap(), "in-vol\n");
    // An image whose /x is a symlink to a host directory: the volume at
    // /x/data is mounted inside the container's root, the host directory
    // is never touched.
    let sentinel = t.join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    let img = t.join("img");
    std::fs::create_dir(&img).unwrap();
    std::os::unix::fs::symlink(&sentinel, img.join("x")).unwrap();
    let tar = t.join("img.tar");
    assert!(std::process::Command::new("tar")
        .arg("-C")
        .arg(&img)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    d.docker_ok(&["import", tar.to_str().unwrap(), "trapimg"]);
    d.docker_ok(&[
        "create",
        "--name",
        "trap",
        "-v",
        "trapvol:/x/data",
        "trapimg",
        "/none",
    ]);
    d.docker_ok(&["cp", &up, "trap:/x/data/f"]);
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("volumes/trapvol/_data/f")).unwrap(),
        "hello"
    );
    assert_eq!(
        std::fs::read_dir(&sentinel).unwrap().count(),
        0,
        "the host directory the symlink names was written"
    );
    // Every copy's mounts are gone from the host.
    assert!(
        common::wait_for(Duration::from_secs(5), || no_mount_under(&d.data_root)),
        "a stopped container's root is still mounted"
    );
    for c in ["parked", "ran", "trap", "rofs"] {
        d.docker_ok(&["rm", c]);
    }
    d.stop();
}

/// What dockerd does that a naive walk gets wrong: `dir/.` copies the
/// directory's content, a running container's `/` leaves out /proc and
/// /sys content (dockerd archives the root filesystem), hard links stay
/// hard links both ways, set-id bits and owners survive, names that are
/// not UTF-8 pass, `-a` with `--user` gives the files to that user.
#[test]
fn cp_keeps_links_modes_odd_names_and_dot_paths() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let d = daemon_with_busybox();
    let t = d.dir.path().join("cp");
    let src = t.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), "hi\n").unwrap();
    std::fs::hard_link(src.join("a"), src.join("sub/b")).unwrap();
    std::fs::write(src.join("suid"), "x").unwrap();
    std::os::unix::fs::chown(src.join("suid"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(
        src.join("suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"n\xe9");
    std::fs::write(src.join(odd), "latin1").unwrap();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-u",
        "1000:1001",
        "busybox",
        "sleep",
        "600",
    ]);
    d.docker_ok(&["cp", src.to_str().unwrap(), "box:/tmp/t"]);
    let ls = d.docker_ok(&[
        "exec",
        "box",
        "stat",
        "-c",
        "%n %i %h %u %g %a",
        "/tmp/t/a",
        "/tmp/t/sub/b",
        "/tmp/t/suid",
    ]);
    let rows: Vec<Vec<&str>> = ls.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 3, "{ls}");
    assert_eq!(rows[0][1], rows[1][1], "one inode for both names: {ls}");
    assert_eq!(rows[0][2], "2", "{ls}");
    assert_eq!(&rows[2][3..], ["1000", "1000", "4755"], "{ls}");
    let names = d.docker_ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "for f in /tmp/t/n*; do echo \"$f\"; done | od -An -tx1",
    ]);
    assert!(
        names.contains("6e e9"),
        "the non-UTF-8 name arrived: {names}"
    );
    // Back out: hard links, set-id, the odd name.
    let out = t.join("out");
    std::fs::create_dir(&out).unwrap();
    d.docker_ok(&["cp", "box:/tmp/t", out.to_str().unwrap()]);
    let a = std::fs::metadata(out.join("t/a")).unwrap();
    let b = std::fs::metadata(out.join("t/sub/b")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    let suid = std::fs::metadata(out.join("t/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    assert_eq!(std::fs::read(out.join("t").join(odd)).unwrap(), b"latin1");
    // dir/. : the content, named `.` in the stat and the archive.
    let etc = t.join("etc");
    std::fs::create_dir(&etc).unwrap();
    d.docker_ok(&["cp", "box:/etc/.", etc.to_str().unwrap()]);
    assert!(etc.join("passwd").is_file() && etc.join("hostname").is_file());
    assert!(!etc.join("bin").exists() && !etc.join("etc").exists());
    let r = d.raw(b"HEAD /v1.47/containers/box/archive?path=/etc/. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let stat = r
        .header("X-Docker-Container-Path-Stat")
        .unwrap()
        .to_string();
    let stat = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(stat)
            .unwrap()
    };
    let stat = String::from_utf8(stat).unwrap();
    assert!(stat.contains("\"name\":\".\""), "{stat}");
    // The running container's whole root: complete, /proc and /sys empty,
    // /etc/mtab the init layer's link.
    let o = d.docker(&["cp", "box:/", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let mut names = Vec::new();
    let mut mtab = None;
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "etc/mtab" {
            mtab = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
        }
        names.push(p);
    }
    assert!(names.iter().any(|n| n == "proc/") && names.iter().any(|n| n == "sys/"));
    assert!(!names
        .iter()
        .any(|n| n.starts_with("proc/1") || n.starts_with("sys/kernel")));
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert_eq!(mtab.as_deref(), Some("/proc/mounts"));
    assert_eq!(
        d.docker_ok(&["diff", "box"])
            .lines()
            .filter(|l| l.contains("mtab"))
            .count(),
        0
    );
    // -a with a Config.User: owned by that user and group.
    let plain = t.join("plain");
    std::fs::write(&plain, "p").unwrap();
    d.docker_ok(&["cp", "-a", plain.to_str().unwrap(), "box:/tmp/plain"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "stat", "-c", "%u %g", "/tmp/plain"])
            .trim(),
        "1000 1001"
    );
    d.docker_ok(&["rm", "-f", "box"]);
    d.stop();
}
