//! Images through the real docker CLI: import, images, tag, rmi, inspect,
//! history, prune, save/load round trips, dockerd interop fixtures, and
//! archives that must be refused without leaving anything behind.

use crate::common;

use std::path::{Path, PathBuf};

use common::images::*;
use common::*;

fn write(d: &Daemon, name: &str, data: &[u8]) -> PathBuf {
    let p = d.dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn image_id(d: &Daemon, name: &str) -> String {
    d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

fn import_busybox(d: &Daemon) -> String {
    let p = write(d, "rootfs.tar", &busybox_rootfs());
    let out = d.docker_ok(&[
        "import",
        "--change",
        r#"CMD ["sh"]"#,
        p.to_str().unwrap(),
        "busybox:latest",
    ]);
    out.trim().to_string()
}

/// Layer directories of the storage driver (to check nothing is left).
fn layer_dirs(d: &Daemon) -> usize {
    ["overlay2", "vfs/dir"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(d.data_root.join(sub)).ok())
        .flat_map(|rd| rd.filter_map(|e| e.ok()))
        .filter(|e| {
            let n = e.file_name();
            n != "l" && !n.to_string_lossy().starts_with("check-")
        })
        .count()
}

#[test]
fn import_list_tag_inspect_history_rmi_prune() {
    let d = Daemon::start();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let id = import_busybox(&d);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let images = d.docker_ok(&["images"]);
    let header = images.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{images}");
    }
    assert!(
        images.contains("busybox") && images.contains(&id[7..19]),
        "{images}"
    );

    d.docker_ok(&["tag", "busybox", "example.test/me/busybox:1"]);
    let tags = d.docker_ok(&["image", "inspect", "-f", "{{json .RepoTags}}", &id[7..19]]);
    assert_eq!(
        tags.trim(),
        r#"["busybox:latest","example.test/me/busybox:1"]"#
    );
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "busybox"])
            .trim(),
        r#"["sh"]"#
    );
    assert_eq!(
        d.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}",
            "busybox"
        ])
        .trim(),
        "linux/amd64 1"
    );
    let df = d.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Size}}",
    ]);
    assert!(df.lines().any(|l| l.starts_with("Images 1 1.98")), "{df}");
    let hist = d.docker_ok(&["history", "busybox"]);
    assert!(hist.contains("Imported from -"), "{hist}");
    assert!(
        hist.lines().nth(1).unwrap().starts_with(&id[7..19]),
        "{hist}"
    );

    // Removing by ID with references in two repositories needs force.
    let o = d.docker(&["rmi", &id[7..19]]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("must be forced") && err.contains("referenced in multiple repositories"),
        "{err}"
    );
    // By reference: untag only.
    let out = d.docker_ok(&["rmi", "example.test/me/busybox:1"]);
    assert_eq!(out.trim(), "Untagged: example.test/me/busybox:1");
    let o = d.docker(&["rmi", "nosuch"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image: nosuch"));

    // Prune: a dangling image goes with the default, a tagged one with -a.
    let p = write(&d, "other.tar", &tar_of(&[Entry::File("x", b"other")]));
    let dangling = d
        .docker_ok(&["import", p.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(d
        .docker_ok(&["images", "--filter", "dangling=true", "-q"])
        .contains(&dangling[7..19]));
    let out = d.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(d.docker_ok(&["images", "-q"]).contains(&id[7..19]));
    let out = d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("untagged: busybox:latest") && out.contains(&format!("deleted: {id}")),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    assert_eq!(layer_dirs(&d), 0, "layers freed");
    // The image events, as `docker events` shows them (--until is whole seconds).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        "0s",
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    for action in ["import", "tag", "untag", "delete"] {
        assert!(ev.lines().any(|l| l == action), "{action} missing: {ev}");
    }
    d.stop();
}

#[test]
fn save_rmi_load_round_trips_the_image_id() {
    let d = Daemon::start();
    let id = import_busybox(&d);
    let tar = d.dir.path().join("x.tar");
    d.docker_ok(&["save", "busybox", "-o", tar.to_str().unwrap()]);
    let out = d.docker_ok(&["rmi", "busybox"]);
    assert!(
        out.contains("Untagged: busybox:latest") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    let out = d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    assert_eq!(image_id(&d, "busybox"), id);
    // Saving to stdout and a multi-image save work too.
    d.docker_ok(&["tag", "busybox", "second:1"]);
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["save", "busybox", "second:1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"index.json".to_string()),
        "{names:?}"
    );
    assert!(d.docker(&["save", "nosuch"]).status.code() != Some(0));
    d.stop();
}

#[test]
fn dockerd_archives_load_and_berth_archives_match() {
    // Made once by hand: berth-save.tar by `docker save` against berthd,
    // dockerd-20.10-save.tar by Debian's dockerd 20.10 after loading it.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let want = "sha256:9903818e860ff8f566248bf5247a591f70f3874cc819888c52b61a3f9c70c265";
    for f in ["dockerd-20.10-save.tar", "berth-save.tar"] {
        let d = Daemon::start();
        let out = d.docker_ok(&["load", "-i", fixtures.join(f).to_str().unwrap()]);
        assert_eq!(out.trim(), "Loaded image: berth/fixture:tiny", "{f}");
        assert_eq!(image_id(&d, "berth/fixture:tiny"), want, "{f}");
        assert_eq!(
            d.docker_ok(&[
                "image",
                "inspect",
                "-f",
                "{{.Comment}}",
                "berth/fixture:tiny"
            ])
            .trim(),
            "berth fixture"
        );
        d.stop();
    }
}

#[test]
fn multi_layer_image_with_whiteouts_loads_on_both_drivers() {
    for driver in ["overlay2", "vfs"] {
        let d = Daemon::builder()
            .arg("--storage-driver")
            .arg(driver)
            .start();
        assert_eq!(d.docker_ok(&["info", "-f", "{{.Driver}}"]).trim(), driver);
        let lower = tar_of(&[
            Entry::Dir("etc/"),
            Entry::File("etc/keep", b"k"),
            Entry::File("etc/gone", b"g"),
            Entry::Dir("opq/"),
            Entry::File("opq/old", b"o"),
        ]);
        let upper = tar_of(&[
            Entry::File("etc/.wh.gone", b""),
            Entry::Dir("opq/"),
            Entry::File("opq/.wh..wh..opq", b""),
            Entry::File("opq/new", b"n"),
        ]);
        let (archive, id) = docker_archive(&[lower, upper], &["multi:layer"], None);
        let p = write(&d, "multi.tar", &archive);
        d.docker_ok(&["load", "-i", p.to_str().unwrap()]);
        assert_eq!(image_id(&d, "multi:layer"), id);
        let gd = d.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .GraphDriver}}",
            "multi:layer",
        ]);
        if driver == "overlay2" {
            let v: serde_json::Value = serde_json::from_str(&gd).unwrap();
            let upper = v["Data"]["UpperDir"].as_str().unwrap();
            assert!(Path::new(upper).join("opq/new").exists(), "{gd}");
            assert!(
                Path::new(v["Data"]["LowerDir"].as_str().unwrap())
                    .join("etc/gone")
                    .exists(),
                "{gd}"
            );
        } else {
            assert_eq!(gd.trim(), r#"{"Data":null,"Name":"vfs"}"#);
        }
        let hist = d.docker_ok(&["history", "--format", "{{.CreatedBy}}", "multi:layer"]);
        assert_eq!(hist.trim(), "layer 1\nlayer 0");
        assert_eq!(layer_dirs(&d), 2);
        d.stop();
    }
}

/// Each bad archive: refused with a clear error; no image, no layer dir, no
/// scratch file left; the sentinel beside the data-root untouched.
#[test]
fn bad_and_malicious_archives_are_refused_cleanly() {
    let d = Daemon::start();
    let sentinel = d.dir.path().join("sentinel");
    std::fs::create_dir_all(sentinel.join("sub")).unwrap();
    std::fs::write(sentinel.join("secret"), "untouched").unwrap();
    let s = sentinel.to_str().unwrap().to_string();
    let good = tar_of(&[Entry::File("a", b"1")]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            docker_archive(
                &[tar_of(&[Entry::File("../../../sentinel/secret", b"pwned")])],
                &["bad:1"],
                None,
            )
            .0,
            "climbs out",
        ),
        (
            "symlink write-through",
            docker_archive(
                &[tar_of(&[
                    Entry::Symlink("a", &s),
                    Entry::File("a/secret", b"pwned"),
                ])],
                &["bad:2"],
                None,
            )
            .0,
            "symlink",
        ),
        (
            "hardlink outside",
            docker_archive(
                &[tar_of(&[Entry::Hardlink("h", "../../../sentinel/secret")])],
                &["bad:3"],
                None,
            )
            .0,
            "climbs out",
        ),
        (
            "chmod through symlinked parent",
            docker_archive(
                &[tar_of(&[Entry::Symlink("a", &s), Entry::Dir("a/sub/")])],
                &["bad:4"],
                None,
            )
            .0,
            "symlink",
        ),
        (
            "tampered layer",
            docker_archive(
                std::slice::from_ref(&good),
                &["bad:5"],
                Some(vec![sha256(b"something else")]),
            )
            .0,
            "diffID",
        ),
        (
            "manifest path out of the archive",
            {
                let mut b = tar::Builder::new(Vec::new());
                let m =
                    br#"[{"Config":"../../../../etc/passwd","RepoTags":["bad:6"],"Layers":[]}]"#;
                let mut h = tar::Header::new_ustar();
                h.set_size(m.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, "manifest.json", &m[..]).unwrap();
                b.into_inner().unwrap()
            },
            "invalid",
        ),
        (
            "not a tar",
            b"this is not an archive at all, just words".repeat(20),
            "invalid",
        ),
    ];
    for (what, archive, expect) in cases {
        let p = write(&d, "bad.tar", &archive);
        let o = d.docker(&["load", "-i", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what} was accepted");
        assert!(err.contains(expect), "{what}: {err}");
        assert_eq!(
            d.docker_ok(&["images", "-aq"]).trim(),
            "",
            "{what} left an image"
        );
        assert_eq!(layer_dirs(&d), 0, "{what} left a layer directory");
        let blobs = d.data_root.join("image/overlay2/blobs/sha256");
        assert_eq!(
            std::fs::read_dir(&blobs).map(|r| r.count()).unwrap_or(0),
            0,
            "{what} left a blob"
        );
        assert_eq!(
            std::fs::read_to_string(sentinel.join("secret")).unwrap(),
            "untouched",
            "{what}"
        );
        assert_eq!(std::fs::read_dir(&sentinel).unwrap().count(), 2, "{what}");
    }
    // The same attacks as `docker import` layers.
    let o = d.docker(&[
        "import",
        write(
            &d,
            "l.tar",
            &tar_of(&[Entry::Symlink("a", "/"), Entry::File("a/x", b"y")]),
        )
        .to_str()
        .unwrap(),
        "bad:imp",
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("symlink"));
    // A truncated gzip layer.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_of(&[Entry::File("big", &vec![7u8; 200_000])]))
        .unwrap();
    let gz = gz.finish().unwrap();
    let o = d.docker(&[
        "import",
        write(&d, "t.tar.gz", &gz[..gz.len() / 2]).to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(d.docker_ok(&["images", "-aq"]).trim(), "");
    assert_eq!(layer_dirs(&d), 0);
    let tmp = d
        .data_root
        .join("image")
        .join(d.docker_ok(&["info", "-f", "{{.Driver}}"]).trim())
        .join("tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "scratch space left behind"
    );
    assert_eq!(d.get("/_ping").status, 200);
    d.stop();
}

#[test]
fn sigkill_during_an_import_leaves_a_consistent_store() {
    let mut d = Daemon::start();
    let id = import_busybox(&d);
    // Start an import and stop sending halfway, then kill -9 the daemon.
    let layer = tar_of(&[Entry::File("big", &vec![1u8; 4 << 20])]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    use std::io::Write;
    write!(s, "POST /v1.50/images/create?fromSrc=-&repo=half:1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n", layer.len()).unwrap();
    s.write_all(&layer[..layer.len() / 2]).unwrap();
    assert!(wait_for(std::time::Duration::from_secs(5), || layer_dirs(
        &d
    ) == 2));
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let (code, _) = d.wait_exit_keep();
    assert_eq!(code, None, "killed by a signal");
    drop(s);
    // Restart on the same roots.
    let d = d.restart();
    assert_eq!(d.docker_ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(
        layer_dirs(&d),
        1,
        "the half-imported layer was removed at start"
    );
    assert!(d.docker(&["image", "inspect", "half:1"]).status.code() != Some(0));
    d.stop();
}

#[test]
fn an_oci_layout_without_manifest_json_loads() {
    let d = Daemon::start();
    let id = import_busybox(&d);
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["save", "busybox"])
        .output()
        .unwrap();
    assert!(o.status.success());
    // Rewrite the archive without manifest.json and repositories: a pure OCI layout.
    let mut b = tar::Builder::new(Vec::new());
    let mut ar = tar::Archive::new(&o.stdout[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        if path == "manifest.json" || path == "repositories" {
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    let oci = b.into_inner().unwrap();
    d.docker_ok(&["rmi", "busybox"]);
    let out = d.docker_ok(&["load", "-i", write(&d, "oci.tar", &oci).to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    assert_eq!(image_id(&d, "busybox"), id);
    d.stop();
}
