//! Attacks a container (or a crafted request) can make on the host,
//! run for real against a berthd the test started, through the docker CLI
//! and raw HTTP. Each race uses a static helper built by the test that
//! swaps a directory and a symlink to a host path with
//! `renameat2(RENAME_EXCHANGE)` in a loop inside the container; host
//! sentinels show that nothing outside the container was changed, read
//! or named. docs/testing.md lists which race each test covers.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::containers::{busybox_full_rootfs, daemon_with_busybox};
use common::images::docker_archive;
use common::Daemon;

/// A static program exchanging two paths forever.
fn swapper(dir: &Path) -> PathBuf {
    let out = dir.join("swap");
    common::cc(
        "#define _GNU_SOURCE\n#include <fcntl.h>\n#include <stdio.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n\
         int main(int c, char **v) { if (c != 3) return 2; for (;;) syscall(SYS_renameat2, AT_FDCWD, v[1], AT_FDCWD, v[2], 2); }\n",
        &out,
        &["-static", "-O2"],
    );
    out
}

/// Start `name` running `script` with the swapper at /h/swap.
fn racer(d: &Daemon, name: &str, helper_dir: &Path, script: &str) {
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "-v",
        &format!("{}:/h:ro", helper_dir.display()),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert!(
        common::wait_for(Duration::from_secs(10), || d
            .docker(&["exec", name, "sh", "-c", "ps | grep -q '[/]h/swap'"])
            .status
            .success()),
        "the swapper did not start"
    );
}

fn put_archive(d: &Daemon, ctr: &str, path: &str, tar: &[u8]) -> common::Response {
    let mut req = format!(
        "PUT /containers/{ctr}/archive?path={path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        tar.len()
    )
    .into_bytes();
    req.extend_from_slice(tar);
    d.raw(&req)
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// `docker cp ./cfg ctr:/x/` (cfg a 0777 directory) and raw archive
/// uploads of 3,000 `cfg/` entries while /x/cfg flips between a directory
/// and a link to a host file: the host file keeps its mode and owner.
#[test]
fn cp_never_changes_host_metadata_through_a_swapped_link() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("cpchmod");
    std::fs::create_dir(&t).unwrap();
    let helper = t.join("h");
    std::fs::create_dir(&helper).unwrap();
    swapper(&helper);
    let host_file = t.join("host-secret");
    std::fs::write(&host_file, "HOST").unwrap();
    std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    racer(
        &d,
        "chm",
        &helper,
        &format!(
            "mkdir -p /x/cfg && ln -s {} /x/lnk && exec /h/swap /x/cfg /x/lnk",
            host_file.display()
        ),
    );
    let local = t.join("cfg");
    std::fs::create_dir(&local).unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut ok = 0;
    for _ in 0..60 {
        if d.docker(&["cp", local.to_str().unwrap(), "chm:/x/"])
            .status
            .success()
        {
            ok += 1;
        }
        assert_eq!(
            mode_of(&host_file),
            0o600,
            "docker cp changed a host file's mode"
        );
    }
    // The same through the API: many 0777 directory entries per request.
    let mut b = tar::Builder::new(Vec::new());
    for _ in 0..3000 {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_data(&mut h, "cfg/", std::io::empty()).unwrap();
    }
    let tarball = b.into_inner().unwrap();
    for _ in 0..15 {
        let r = put_archive(&d, "chm", "/x/", &tarball);
        if r.status == 200 {
            ok += 1;
        }
        assert_eq!(
            mode_of(&host_file),
            0o600,
            "an archive upload changed a host file's mode"
        );
    }
    assert!(ok > 0, "no copy ever succeeded: the race was not exercised");
    let m = std::fs::metadata(&host_file).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "HOST");
    d.docker_ok(&["rm", "-f", "chm"]);
    d.stop();
}

/// `docker export` while /0race flips between a directory and a link to a
/// host directory: no export holds the host file's bytes.
#[test]
fn export_never_reads_host_files_through_a_swapped_link() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("exp");
    std::fs::create_dir(&t).unwrap();
    let helper = t.join("h");
    std::fs::create_dir(&helper).unwrap();
    swapper(&helper);
    let host_dir = t.join("hostdir");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "HOST-SECRET-EXPORT").unwrap();
    racer(
        &d,
        "exp",
        &helper,
        &format!(
            "mkdir /0race && echo inside > /0race/f && ln -s {} /0racl && exec /h/swap /0race /0racl",
            host_dir.display()
        ),
    );
    let needle = b"HOST-SECRET-EXPORT";
    let mut saw_inside = 0;
    for _ in 0..150 {
        let o = d.docker(&["export", "exp"]);
        assert!(
            o.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !o.stdout.windows(needle.len()).any(|w| w == needle),
            "an export held a host file's bytes"
        );
        if o.stdout.windows(7).any(|w| w == b"inside\n") {
            saw_inside += 1;
        }
    }
    assert!(saw_inside > 0, "the race's directory was never exported");
    d.docker_ok(&["rm", "-f", "exp"]);
    d.stop();
}

fn diff_lines(d: &Daemon, ctr: &str) -> Vec<String> {
    d.docker_ok(&["diff", ctr])
        .lines()
        .map(str::to_string)
        .collect()
}

fn no_mount_under(root: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let r = root.display().to_string();
    !info.lines().any(|l| l.contains(&r))
}

/// `docker diff` compares the layers by descriptor: an image's link to a
/// host directory is never followed (names in the host directory never
/// show), with or without a race, and a diff of a two-layer image leaves
/// no overlay mounted.
#[test]
fn diff_never_names_host_paths_and_leaves_no_mount() {
    let d = Daemon::start();
    let t = d.dir.path().join("diff");
    std::fs::create_dir(&t).unwrap();
    let host_dir = t.join("hostdir");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("a"), "").unwrap();
    std::fs::write(host_dir.join("hostonly-name"), "").unwrap();
    // A second layer: /x -> the host directory.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "x", &host_dir).unwrap();
    let layer = b.into_inner().unwrap();
    let (archive, _) = docker_archive(&[busybox_full_rootfs(), layer], &["linky:1"], None);
    let a = t.join("linky.tar");
    std::fs::write(&a, archive).unwrap();
    d.docker_ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "dx",
        "linky:1",
        "sh",
        "-c",
        "rm /x && mkdir /x && touch /x/a /x/b && sleep 600",
    ]);
    assert!(common::wait_for(Duration::from_secs(10), || d
        .docker(&["exec", "dx", "test", "-f", "/x/b"])
        .status
        .success()));
    let lines = diff_lines(&d, "dx");
    for want in ["C /x", "A /x/a", "A /x/b"] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want} missing in {lines:?}"
        );
    }
    assert!(!lines.iter().any(|l| l.contains("hostonly")), "{lines:?}");
    // The race: /y flips between a directory and a link to the host dir.
    let helper = t.join("h");
    std::fs::create_dir(&helper).unwrap();
    swapper(&helper);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "dy",
        "-v",
        &format!("{}:/h:ro", helper.display()),
        "linky:1",
        "sh",
        "-c",
        &format!(
            "mkdir /y && touch /y/inner && ln -s {} /yl && exec /h/swap /y /yl",
            host_dir.display()
        ),
    ]);
    assert!(common::wait_for(Duration::from_secs(10), || d
        .docker(&["exec", "dy", "sh", "-c", "ps | grep -q '[/]h/swap'"])
        .status
        .success()));
    for _ in 0..150 {
        let lines = diff_lines(&d, "dy");
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("hostonly") || l.ends_with("/y/a") || l.ends_with("/yl/a")),
            "diff named a host path: {lines:?}"
        );
    }
    d.docker_ok(&["rm", "-f", "dx", "dy"]);
    assert!(
        no_mount_under(&d.data_root),
        "a mount of the data-root is left after the containers are gone"
    );
    let root = d.dir.path().to_path_buf();
    d.stop();
    assert!(
        no_mount_under(&root),
        "a mount is left after berthd stopped"
    );
}

/// berthd's peak resident memory (KiB).
fn peak_kib(d: &Daemon) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One member whose name is `depth` directories deep (a GNU long name).
fn deep_tar(depth: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("{}f", "a/".repeat(depth)), &b"x"[..])
        .unwrap();
    b.into_inner().unwrap()
}

/// A tiny tar whose one path is 9,000 directories deep, and one whose
/// long name is 4 MiB, through import, load and cp: each refused with a
/// clear error, berthd's memory stays small, and it keeps serving.
#[test]
fn deep_and_huge_names_are_refused_with_bounded_memory() {
    let d = daemon_with_busybox();
    let t = d.dir.path().join("deep");
    std::fs::create_dir(&t).unwrap();
    let deep = deep_tar(9000);
    assert!(deep.len() < 40_000, "{}", deep.len());
    let p = t.join("deep.tar");
    std::fs::write(&p, &deep).unwrap();
    let before = peak_kib(&d);
    let o = d.docker(&["import", p.to_str().unwrap(), "deep:1"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("levels deep"), "{err}");
    // A 4 MiB GNU long name (a few KB gzipped): refused, not held.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    b.append_data(&mut h, "b".repeat(4 << 20), std::io::empty())
        .unwrap();
    let huge = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &huge).unwrap();
    let huge_gz = gz.finish().unwrap();
    let hp = t.join("huge.tar.gz");
    std::fs::write(&hp, &huge_gz).unwrap();
    let o = d.docker(&["import", hp.to_str().unwrap(), "huge:1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("header data"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // docker load of an archive whose layer is the deep tar.
    let (archive, _) = docker_archive(std::slice::from_ref(&deep), &["deeploaded:1"], None);
    let ap = t.join("deep-image.tar");
    std::fs::write(&ap, archive).unwrap();
    let o = d.docker(&["load", "-i", ap.to_str().unwrap()]);
    assert!(!o.status.success());
    // docker cp of the deep tar into a container.
    d.docker_ok(&["run", "-d", "--name", "cpd", "busybox", "sleep", "600"]);
    let r = put_archive(&d, "cpd", "/tmp", &deep);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("levels deep"), "{}", r.text());
    let r = put_archive(&d, "cpd", "/tmp", &huge);
    assert_eq!(r.status, 400, "{}", r.text());
    let grown = peak_kib(&d).saturating_sub(before);
    assert!(grown < 128 * 1024, "berthd's peak RSS grew by {grown} KiB");
    assert!(d.docker_ok(&["images", "-q", "deep:1"]).trim().is_empty());
    assert_eq!(d.docker_ok(&["exec", "cpd", "ls", "/tmp"]).trim(), "");
    d.docker_ok(&["rm", "-f", "cpd"]);
    d.stop();
}

fn create(d: &Daemon, body: &serde_json::Value) -> common::Response {
    let b = body.to_string();
    d.raw(
        format!(
            "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        )
        .as_bytes(),
    )
}

/// Wrong JSON types are refused with 400 and Go's message (they used to
/// read as "unset": `"User": 1000` ran as root); what dockerd accepts in
/// another form works as dockerd reads it.
#[test]
fn wrong_json_types_fail_closed() {
    let d = daemon_with_busybox();
    let pre = "invalid JSON: json: cannot unmarshal";
    for (body, msg) in [
        (serde_json::json!({"Image": "busybox", "User": 1000}),
         format!("{pre} number into Go struct field CreateRequest.User of type string")),
        (serde_json::json!({"Image": "busybox", "HostConfig": {"ReadonlyRootfs": "true"}}),
         format!("{pre} string into Go struct field HostConfig.HostConfig.ReadonlyRootfs of type bool")),
        (serde_json::json!({"Image": "busybox", "HostConfig": {"Memory": "104857600"}}),
         format!("{pre} string into Go struct field HostConfig.HostConfig.Memory of type int64")),
        (serde_json::json!({"Image": "busybox", "HostConfig": {"PidsLimit": "50"}}),
         format!("{pre} string into Go struct field HostConfig.HostConfig.PidsLimit of type int64")),
        (serde_json::json!({"Image": "busybox", "HostConfig": {"SecurityOpt": "no-new-privileges"}}),
         format!("{pre} string into Go struct field HostConfig.HostConfig.SecurityOpt of type []string")),
        (serde_json::json!({"Image": "busybox", "HostConfig": {"Privileged": 0}}),
         format!("{pre} number into Go struct field HostConfig.HostConfig.Privileged of type bool")),
    ] {
        let r = create(&d, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["message"], msg, "{body}");
    }
    // A `null` body (found by the create_body fuzz target): dockerd's
    // message, not a decoding error.
    for body in [
        serde_json::Value::Null,
        serde_json::json!({}),
        serde_json::json!({"HostConfig": {"Memory": 0}}),
        // Keys that name no Config field are ignored, as Go's decoder does.
        serde_json::json!({"Foo": 1, "hostconfig": {}}),
    ] {
        let r = create(&d, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(
            r.json()["message"],
            "Config cannot be empty in order to create a container",
            "{body}"
        );
    }
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create left a container"
    );
    // dockerd reads "CapDrop": "ALL" as ["ALL"], and field names in any case.
    let r = create(
        &d,
        &serde_json::json!({"image": "busybox", "user": "1000", "cmd": ["sh", "-c", "id -u; grep CapEff /proc/self/status"],
                            "hostconfig": {"CapDrop": "ALL", "memory": 104857600}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    d.docker_ok(&["start", &id]);
    assert_eq!(d.docker_ok(&["wait", &id]).trim(), "0");
    let out = d.docker_ok(&["logs", &id]);
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.CapDrop}} {{.Config.User}}",
            &id
        ])
        .trim(),
        "104857600 [ALL] 1000"
    );
    d.docker_ok(&["rm", "-f", &id]);
    d.stop();
}

/// Line breaks in values written to /etc files are refused (they would
/// add hosts or nameservers of the caller's choosing).
#[test]
fn etc_file_values_cannot_inject_lines() {
    let d = daemon_with_busybox();
    for (body, msg) in [
        (
            serde_json::json!({"Image": "busybox", "Hostname": "a\nb"}),
            "invalid hostname format",
        ),
        (
            serde_json::json!({"Image": "busybox", "HostConfig": {"ExtraHosts": ["h:1.2.3.4\n6.6.6.6 evil"]}}),
            "invalid IP address in add-host",
        ),
        (
            serde_json::json!({"Image": "busybox", "HostConfig": {"ExtraHosts": ["h\n6.6.6.6 evil:1.2.3.4"]}}),
            "bad format for add-host",
        ),
        (
            serde_json::json!({"Image": "busybox", "HostConfig": {"Dns": ["1.1.1.1\nnameserver 6.6.6.6"]}}),
            "IP address is not correctly formatted",
        ),
        (
            serde_json::json!({"Image": "busybox", "HostConfig": {"DnsSearch": ["a.com\nnameserver 6.6.6.6"]}}),
            "is not a valid domain",
        ),
        (
            serde_json::json!({"Image": "busybox", "HostConfig": {"DnsOptions": ["ndots:1\nnameserver 6.6.6.6"]}}),
            "invalid DNS option",
        ),
    ] {
        let r = create(&d, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let m = r.json()["message"].as_str().unwrap().to_string();
        assert!(m.contains(msg), "{body}: {m}");
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    // Good values still land, one per line.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--add-host",
        "db:10.1.2.3",
        "--dns",
        "10.9.9.9",
        "--dns-search",
        "corp.example",
        "busybox",
        "sh",
        "-c",
        "grep db /etc/hosts; cat /etc/resolv.conf",
    ]);
    assert!(out.contains("10.1.2.3\tdb"), "{out}");
    assert!(out.contains("nameserver 10.9.9.9"), "{out}");
    assert!(out.contains("search corp.example"), "{out}");
    assert!(!out.contains("6.6.6.6"));
    d.stop();
}

/// `exec -w` through links: the directory is resolved inside
/// the container's root, never the host's (a link to /etc is the
/// container's /etc; a relative link climbing out stays at its root).
#[test]
fn working_directories_through_links_stay_inside() {
    let d = Daemon::start();
    common::containers::load_busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "links",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc /abs && ln -s ../../../../../etc /rel && echo inside > /etc/berth-marker && sleep 300",
    ]);
    assert!(common::wait_for(Duration::from_secs(10), || d
        .docker(&["exec", "links", "cat", "/etc/berth-marker"])
        .status
        .success()));
    assert!(!Path::new("/etc/berth-marker").exists());
    for dir in ["/abs", "/rel"] {
        assert_eq!(
            d.docker_ok(&["exec", "-w", dir, "links", "cat", "berth-marker"]),
            "inside\n",
            "exec -w {dir}"
        );
    }
    assert!(!Path::new("/etc/berth-marker").exists());
    d.docker_ok(&["rm", "-f", "links"]);
    d.stop();
}

/// User and group IDs beyond what the kernel takes, from the CLI and from
/// an image's config: a clear error at start, nothing left running,
/// berthd up; the largest valid ID works.
#[test]
fn absurd_uids_and_gids_fail_clearly() {
    let d = daemon_with_busybox();
    for (user, want) in [
        ("4294967296", "unable to find user 4294967296"),
        ("2147483648", "uids and gids must be in range 0-2147483647"),
        ("1:4294967296", "unable to find group 4294967296"),
        ("-1", "unable to find user -1"),
    ] {
        let o = d.docker(&["run", "--rm", "-u", user, "busybox", "id"]);
        assert!(!o.status.success(), "-u {user} ran");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "-u {user}: {err}");
    }
    d.docker_ok(&["create", "--name", "base", "busybox", "true"]);
    d.docker_ok(&["commit", "--change", "USER 4294967296", "base", "absurd:1"]);
    let o = d.docker(&["run", "--rm", "absurd:1", "id"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unable to find user 4294967296"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-u", "2147483647", "busybox", "id", "-u"]),
        "2147483647\n"
    );
    assert_eq!(d.docker_ok(&["ps", "-q"]), "");
    d.docker_ok(&["rm", "base"]);
    d.stop();
}

/// Every directory berthd made under its data-root and exec-root (image
/// and container content, volume data and mounts aside) is writable by
/// root only, and the roots are 0710 and 0700.
#[test]
fn berthds_own_directories_are_not_writable_by_others() {
    let d = daemon_with_busybox();
    d.docker_ok(&["volume", "create", "vol"]);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "walknet"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "walk",
        "--network",
        "walknet",
        "-v",
        "vol:/v",
        "-p",
        "80",
        "--log-driver",
        "local",
        "busybox",
        "sleep",
        "300",
    ]);
    d.docker_ok(&["run", "--name", "done", "busybox", "true"]);
    // Content: what images, containers and volumes hold is theirs.
    let content = [
        "diff", "merged", "work", "_data", "rootfs", "layers", "blobs",
    ];
    let mut bad = Vec::new();
    let mut walked = 0;
    let mut stack = vec![d.data_root.clone(), d.real_exec_root()];
    while let Some(dir) = stack.pop() {
        walked += 1;
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if meta.mode() & 0o022 != 0 {
            bad.push(format!("{} {:o}", dir.display(), meta.mode() & 0o7777));
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let name = e.file_name().to_string_lossy().into_owned();
            if is_dir && !content.contains(&name.as_str()) {
                stack.push(p);
            }
        }
    }
    assert!(bad.is_empty(), "group- or world-writable: {bad:#?}");
    assert!(walked > 20, "only {walked} directories walked");
    assert_eq!(mode_of(&d.data_root), 0o710);
    assert_eq!(mode_of(&d.real_exec_root()), 0o700);
    d.docker_ok(&["rm", "-f", "walk", "done"]);
    d.docker_ok(&["network", "rm", "walknet"]);
    d.stop();
}
