//! `docker commit` through the real CLI against a berthd the test
//! started: the container's changes (files, deletions, a directory
//! replaced, hard links) become a layer over its image, with the commit's
//! config, author, comment and history; the runtime's own files stay out;
//! a running container is paused meanwhile and runs on; dockerd's errors.

use crate::common;

use std::io::Read;

use common::containers::{daemon_with_busybox, inspect};

/// The entry names of the top layer of `image`, from `docker save`.
fn top_layer_names(d: &common::Daemon, image: &str) -> Vec<String> {
    let o = d.docker(&["save", image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files: std::collections::HashMap<String, Vec<u8>> = Default::default();
    let mut ar = tar::Archive::new(&o.stdout[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(p, b);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    let top = layers.last().unwrap().as_str().unwrap();
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(&files[top][..]);
    for e in ar.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    names
}

#[test]
fn commit_makes_a_layer_of_the_changes_with_its_config() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run", "--name", "c1", "busybox", "sh", "-c",
        "echo hi > /hello && ln /hello /hello2 && rm /bin/ls && mkdir -p /data/old && echo o > /data/old/f",
    ]);
    let id = d
        .docker_ok(&[
            "commit",
            "-m",
            "first commit",
            "-a",
            "Ann <ann@example.com>",
            "--change",
            r#"CMD ["cat", "/hello"]"#,
            "--change",
            "ENV X=1",
            "c1",
            "snap:v1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.docker_ok(&["run", "--rm", "snap:v1"]), "hi\n");
    let o = d.docker_ok(&[
        "run", "--rm", "snap:v1", "sh", "-c",
        "test -e /bin/ls && echo ls-there; echo X=$X; stat -c %i /hello /hello2 | uniq | wc -l; cat /data/old/f",
    ]);
    assert_eq!(o, "X=1\n1\no\n");
    // The image's record of the commit.
    assert_eq!(
        inspect(&d, "snap:v1", "{{.Author}}|{{.Comment}}"),
        "Ann <ann@example.com>|first commit"
    );
    let c1 = inspect(&d, "c1", "{{.Id}}");
    let old = d.get("/v1.44/images/snap:v1/json").json();
    assert_eq!(old["Container"], c1.as_str());
    assert_eq!(old["ContainerConfig"]["Cmd"][2], "echo hi > /hello && ln /hello /hello2 && rm /bin/ls && mkdir -p /data/old && echo o > /data/old/f");
    assert_eq!(
        inspect(&d, "snap:v1", "{{.Parent}}"),
        inspect(&d, "busybox", "{{.Id}}")
    );
    assert_eq!(
        inspect(&d, "snap:v1", "{{json .Config.Cmd}}"),
        r#"["cat","/hello"]"#
    );
    assert!(inspect(&d, "snap:v1", "{{json .Config.Env}}").contains("X=1"));
    let busybox_layers = inspect(&d, "busybox", "{{len .RootFS.Layers}}");
    let snap_layers = inspect(&d, "snap:v1", "{{len .RootFS.Layers}}");
    assert_eq!(
        snap_layers.parse::<u32>().unwrap(),
        busybox_layers.parse::<u32>().unwrap() + 1
    );
    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "snap:v1",
    ]);
    assert!(
        hist.lines().next().unwrap().ends_with("|first commit"),
        "{hist}"
    );
    assert!(
        hist.lines().next().unwrap().contains("echo hi > /hello"),
        "{hist}"
    );
    // The layer: the changes, a whiteout for /bin/ls, nothing the runtime made.
    let names = top_layer_names(&d, "snap:v1");
    for want in ["hello", "hello2", "bin/.wh.ls", "data/old/f"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    for never in [
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/mtab",
        ".dockerenv",
        "proc/",
        "sys/",
        "dev/",
    ] {
        assert!(
            !names.iter().any(|n| n == never),
            "{never} in the layer: {names:?}"
        );
    }

    // A directory removed and made again hides the image's content.
    d.docker_ok(&[
        "run",
        "--name",
        "c2",
        "snap:v1",
        "sh",
        "-c",
        "rm -rf /data && mkdir /data && echo n > /data/new",
    ]);
    d.docker_ok(&["commit", "c2", "snap:v2"]);
    // (snap:v1 has no ls: it was removed there.)
    assert_eq!(
        d.docker_ok(&["run", "--rm", "snap:v2", "sh", "-c", "echo /data/*"]),
        "/data/new\n"
    );

    // Nothing changed: no new layer, an empty history entry.
    d.docker_ok(&["create", "--name", "c3", "busybox", "true"]);
    d.docker_ok(&["commit", "c3", "snap:same"]);
    assert_eq!(
        inspect(&d, "snap:same", "{{len .RootFS.Layers}}"),
        busybox_layers
    );
    let sizes = d.docker_ok(&["history", "--format", "{{.Size}}", "snap:same"]);
    assert_eq!(sizes.lines().next(), Some("0B"), "{sizes}");

    // A running container is paused for the commit and runs on.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c4",
        "busybox",
        "sh",
        "-c",
        "echo live > /live; exec sleep 600",
    ]);
    assert!(common::wait_for(std::time::Duration::from_secs(5), || d
        .docker(&["exec", "c4", "test", "-f", "/live"])
        .status
        .success()));
    d.docker_ok(&["commit", "c4", "snap:live"]);
    assert_eq!(inspect(&d, "c4", "{{.State.Status}}"), "running");
    d.docker_ok(&["commit", "--pause=false", "c4", "snap:live2"]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "snap:live2", "cat", "/live"]),
        "live\n"
    );
    // (`--until 0s` is the CLI's current second: let it pass.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ev = d.docker_ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "--filter",
        "event=commit",
        "--format",
        "{{.Actor.Attributes.imageRef}}",
    ]);
    assert!(ev.contains("snap:live2"), "{ev}");

    // dockerd's errors.
    let o = d.docker(&["commit", "nosuch", "x:1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such container: nosuch"));
    let r = d.raw(b"POST /v1.41/commit?container=c1&repo=Bad..Name HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.text());
    d.docker_ok(&["rm", "-f", "c1", "c2", "c3", "c4"]);
    d.stop();
}
