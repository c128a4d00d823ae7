//! Pull, push and login against a real registry (Debian's docker-registry
//! on loopback), and pulls of crafted content from a fake registry.

use crate::common;

use std::io::Write;
use std::time::Duration;

use common::images::*;
use common::registry::*;
use common::*;

fn id_of(d: &Daemon, name: &str) -> String {
    d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// Import the busybox root as `name`, push it; returns the image ID.
fn import_and_push(d: &Daemon, name: &str) -> String {
    let p = d.dir.path().join("rootfs.tar");
    std::fs::write(&p, busybox_rootfs()).unwrap();
    d.docker_ok(&["import", p.to_str().unwrap(), name]);
    let id = id_of(d, name);
    d.docker_ok(&["push", name]);
    id
}

fn layer_dirs(d: &Daemon) -> usize {
    std::fs::read_dir(d.data_root.join("overlay2"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("diff").is_dir())
                .count()
        })
        .unwrap_or(0)
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

#[test]
fn push_rmi_pull_gives_the_same_image() {
    let reg = Registry::start(None);
    let mut d = Daemon::start();
    // Two layers, the upper gzip-compressed, with whiteouts.
    let lower = busybox_rootfs();
    let upper = tar_of(&[
        Entry::File("etc/.wh.group", b""),
        Entry::File("etc/motd", b"hello from berth\n"),
    ]);
    // The upper layer travels gzip-compressed (docker load accepts that),
    // so push and pull carry a compressed blob.
    let diff_ids = vec![sha256(&lower), sha256(&upper)];
    let (archive, id) = docker_archive(&[lower, gzip(&upper)], &["multi:1"], Some(diff_ids));
    let p = d.dir.path().join("multi.tar");
    std::fs::write(&p, archive).unwrap();
    d.docker_ok(&["load", "-i", p.to_str().unwrap()]);
    let name = format!("{}/x/busybox:1", reg.addr);
    d.docker_ok(&["tag", "multi:1", &name]);
    let out = d.docker_ok(&["push", &name]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/x/busybox]",
            reg.addr
        )),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // Pushing again: the registry has every layer.
    let again = d.docker_ok(&["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");

    d.docker_ok(&["rmi", "multi:1", &name]);
    assert_eq!(d.docker_ok(&["images", "-aq"]).trim(), "");
    assert_eq!(layer_dirs(&d), 0);
    let out = d.docker_ok(&["pull", &name]);
    assert!(
        out.contains("1: Pulling from x/busybox")
            || out.contains(&format!("1: Pulling from {}/x/busybox", reg.addr)),
        "{out}"
    );
    assert_eq!(
        out.matches("Pull complete").count(),
        2,
        "per-layer progress: {out}"
    );
    assert!(out.contains("Download complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(id_of(&d, &name), id);
    let digests = d.docker_ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &name]);
    assert!(
        digests.contains(&format!("{}/x/busybox@sha256:", reg.addr)),
        "{digests}"
    );
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("Image is up to date"), "{out}");
    // Pushing to another repository of the same registry mounts the blobs.
    let other = format!("{}/y/copy:1", reg.addr);
    d.docker_ok(&["tag", &name, &other]);
    let out = d.docker_ok(&["push", &other]);
    assert_eq!(out.matches("Mounted from x/busybox").count(), 2, "{out}");
    // The registry's view, as `docker buildx imagetools`/SDKs ask for it.
    let dist = d.get(&format!("/v1.50/distribution/{name}/json")).json();
    assert_eq!(
        dist["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(dist["Platforms"][0]["os"], "linux");
    assert!(
        digests.contains(dist["Descriptor"]["digest"].as_str().unwrap()),
        "{digests} {dist}"
    );
    // Everything survives a restart (the store is consistent on disk).
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = d.wait_exit_keep();
    let d = d.restart();
    assert_eq!(id_of(&d, &name), id);
    // Unknown tag: dockerd's message.
    let o = d.docker(&["pull", &format!("{}/x/busybox:nope", reg.addr)]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not found: manifest unknown"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.stop();
}

#[test]
fn login_push_and_pull_with_an_htpasswd_registry() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let d = Daemon::start();
    let o = d.docker(&["login", &reg.addr, "-u", "alice", "-p", "wrong"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!(
        "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
        reg.addr
    )));
    let name = format!("{}/team/busybox:1", reg.addr);
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["pull", &name])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no basic auth credentials"), "{err}");

    let out = d.docker_ok(&["login", &reg.addr, "-u", "alice", "-p", "s3cret"]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let p = d.dir.path().join("rootfs.tar");
    std::fs::write(&p, busybox_rootfs()).unwrap();
    d.docker_ok(&["import", p.to_str().unwrap(), &name]);
    let id = id_of(&d, &name);
    d.docker_ok(&["push", &name]);
    d.docker_ok(&["rmi", &name]);
    d.docker_ok(&["pull", &name]);
    assert_eq!(id_of(&d, &name), id);
    d.stop();
}

/// Serve `x/bad:slow` whose only layer blob stalls halfway, start a
/// `docker pull` of it, and wait until the download is under way. Returns
/// the pull's thread, the blob and its digest.
fn start_stalled_pull(
    f: &FakeRegistry,
    d: &Daemon,
    fill: u8,
) -> (
    std::thread::JoinHandle<std::process::Output>,
    Vec<u8>,
    String,
) {
    let big = tar_of(&[Entry::File("big", &vec![fill; 8 << 20])]);
    let blob = gzip(&big);
    serve_image(
        f,
        "slow",
        &blob,
        &sha256(&big),
        None,
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    );
    let ld = sha256(&blob);
    f.put_canned(
        &format!("/v2/x/bad/blobs/{ld}"),
        Canned {
            content_type: "application/octet-stream".into(),
            body: blob.clone(),
            headers: vec![],
            stall_after: Some(blob.len() / 2),
            resume: None,
        },
    );
    let (host, dir, addr) = (d.docker_host(), d.dir.path().to_path_buf(), f.addr.clone());
    let puller = std::thread::spawn(move || {
        docker_cmd(&dir)
            .env("DOCKER_HOST", host)
            .args(["pull", &format!("{addr}/x/bad:slow")])
            .output()
            .unwrap()
    });
    let tmp = d.data_root.join("image/overlay2/tmp");
    assert!(wait_for(Duration::from_secs(10), || std::fs::read_dir(
        &tmp
    )
    .map(|r| r.count() > 0)
    .unwrap_or(false)));
    (puller, blob, ld)
}

const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Serve an image with one layer blob (as given) from the fake registry.
fn serve_image(
    f: &FakeRegistry,
    tag: &str,
    layer_blob: &[u8],
    diff_id: &str,
    layer_size: Option<u64>,
    layer_type: &str,
) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap();
    let cd = sha256(&config);
    let ld = sha256(layer_blob);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST_V2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": cd},
        "layers": [{"mediaType": layer_type, "size": layer_size.unwrap_or(layer_blob.len() as u64), "digest": ld}],
    }))
    .unwrap();
    f.put(&format!("/v2/x/bad/manifests/{tag}"), MANIFEST_V2, manifest);
    f.put(
        &format!("/v2/x/bad/blobs/{cd}"),
        "application/octet-stream",
        config,
    );
    f.put(
        &format!("/v2/x/bad/blobs/{ld}"),
        "application/octet-stream",
        layer_blob.to_vec(),
    );
}

#[test]
fn crafted_registry_content_is_refused_without_leftovers() {
    let f = FakeRegistry::start();
    let d = Daemon::start();
    let gzip_type = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    // Each case its own layer content, so their blobs do not collide.
    let layer = |tag: &str| {
        let t = tar_of(&[Entry::File("a", tag.as_bytes())]);
        let g = gzip(&t);
        (t, g)
    };

    // Tampered: the registry serves other bytes under the layer's digest.
    let (t, g) = layer("tampered");
    serve_image(&f, "tampered", &g, &sha256(&t), None, gzip_type);
    f.put(
        &format!("/v2/x/bad/blobs/{}", sha256(&g)),
        "application/octet-stream",
        gzip(b"other bytes entirely"),
    );
    // Wrong size in the descriptor.
    let (t, g) = layer("size");
    serve_image(
        &f,
        "size",
        &g,
        &sha256(&t),
        Some(g.len() as u64 - 5),
        gzip_type,
    );
    // Truncated gzip (digest and size of the truncated bytes are right).
    let (t, g) = layer("truncated");
    serve_image(
        &f,
        "truncated",
        &g[..g.len() / 2],
        &sha256(&t),
        None,
        gzip_type,
    );
    // Unknown layer media type.
    let (t, g) = layer("mediatype");
    serve_image(
        &f,
        "mediatype",
        &g,
        &sha256(&t),
        None,
        "application/x-unknown",
    );
    // A manifest with both manifests and layers.
    f.put("/v2/x/bad/manifests/both", MANIFEST_V2, br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","manifests":[],"layers":[]}"#.to_vec());
    // 1 GiB of zeros in a small gzip blob: 1024 members of 1 MiB.
    let mut m = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    m.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = m.finish().unwrap();
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 1024)
        .collect();
    serve_image(&f, "bomb", &bomb, &sha256(b"unknowable"), None, gzip_type);
    // A wrong diffID in the config.
    let (_, g) = layer("diffid");
    serve_image(&f, "diffid", &g, &sha256(b"not the layer"), None, gzip_type);

    for (tag, expect) in [
        ("tampered", "digest"),
        ("size", "size"),
        ("truncated", ""),
        ("mediatype", "unsupported layer media type"),
        ("both", "both manifests and layers"),
        ("bomb", "after the end of the tar archive"),
        ("diffid", "diffID"),
    ] {
        let started = std::time::Instant::now();
        let o = d.docker(&["pull", &format!("{}/x/bad:{tag}", f.addr)]);
        let err =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        assert!(!o.status.success(), "{tag} was accepted: {err}");
        assert!(err.contains(expect), "{tag}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{tag} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            d.docker_ok(&["images", "-aq"]).trim(),
            "",
            "{tag} left an image"
        );
        assert_eq!(layer_dirs(&d), 0, "{tag} left a layer");
        let blobs = std::fs::read_dir(d.data_root.join("image/overlay2/blobs/sha256"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(blobs, 0, "{tag} left a blob");
    }
    assert_eq!(d.get("/_ping").status, 200);
    d.stop();
}

#[test]
fn sigkill_in_the_middle_of_a_pull_leaves_a_consistent_store() {
    let f = FakeRegistry::start();
    let mut d = Daemon::start();
    let (puller, blob, ld) = start_stalled_pull(&f, &d, 3);
    let tmp = d.data_root.join("image/overlay2/tmp");
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = d.wait_exit_keep();
    let o = puller.join().unwrap();
    assert!(!o.status.success());
    let d = d.restart();
    assert_eq!(d.docker_ok(&["images", "-aq"]).trim(), "");
    assert_eq!(layer_dirs(&d), 0);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "partial downloads removed at start"
    );
    // The same pull can be repeated once the registry serves the blob.
    f.put(
        &format!("/v2/x/bad/blobs/{ld}"),
        "application/octet-stream",
        blob,
    );
    d.docker_ok(&["pull", &format!("{}/x/bad:slow", f.addr)]);
    d.stop();
}

#[test]
fn concurrent_pulls_of_the_same_image_both_succeed() {
    let reg = Registry::start(None);
    let d = Daemon::start();
    let name = format!("{}/x/busybox:c", reg.addr);
    let id = import_and_push(&d, &name);
    d.docker_ok(&["rmi", &name]);
    let pulls: Vec<_> = (0..3)
        .map(|_| {
            let (host, dir, name) = (d.docker_host(), d.dir.path().to_path_buf(), name.clone());
            std::thread::spawn(move || {
                docker_cmd(&dir)
                    .env("DOCKER_HOST", host)
                    .args(["pull", &name])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for t in pulls {
        let o = t.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(id_of(&d, &name), id);
    assert_eq!(layer_dirs(&d), 1, "one layer directory for the one layer");
    d.stop();
}

#[test]
fn docker_hub_names_pull_through_a_registry_mirror() {
    let reg = Registry::start(None);
    let seed = Daemon::start();
    let mirrored = format!("{}/library/busybox:latest", reg.addr);
    let id = import_and_push(&seed, &mirrored);
    seed.stop();

    let d = Daemon::builder()
        .config(serde_json::json!({"registry-mirrors": [format!("http://{}", reg.addr)]}))
        .start();
    let out = d.docker_ok(&["pull", "busybox"]);
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert_eq!(id_of(&d, "busybox"), id);
    assert!(d
        .docker_ok(&["images", "busybox", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("busybox:latest"));
    d.stop();
}

#[test]
fn manifest_lists_select_the_host_platform() {
    let f = FakeRegistry::start();
    let d = Daemon::start();
    let layer = tar_of(&[Entry::File("platform", b"amd64")]);
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}})).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST_V2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": sha256(&config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": layer.len(), "digest": sha256(&layer)}],
    }))
    .unwrap();
    let md = sha256(&manifest);
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": MANIFEST_V2, "size": 10, "digest": sha256(b"arm"), "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": MANIFEST_V2, "size": manifest.len(), "digest": md, "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }))
    .unwrap();
    f.put(
        "/v2/x/multi/manifests/1",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        list,
    );
    f.put(
        &format!("/v2/x/multi/manifests/{md}"),
        MANIFEST_V2,
        manifest,
    );
    f.put(
        &format!("/v2/x/multi/blobs/{}", sha256(&config)),
        "application/octet-stream",
        config.clone(),
    );
    f.put(
        &format!("/v2/x/multi/blobs/{}", sha256(&layer)),
        "application/octet-stream",
        layer,
    );
    let name = format!("{}/x/multi:1", f.addr);
    d.docker_ok(&["pull", &name]);
    assert_eq!(id_of(&d, &name), sha256(&config));
    d.stop();
}

#[test]
fn a_killed_registry_session_fails_its_pull_and_leaves_nothing() {
    let f = FakeRegistry::start();
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    let (puller, blob, ld) = start_stalled_pull(&f, &d, 5);
    let tmp = d.data_root.join("image/overlay2/tmp");
    let kill = d.raw(b"POST /_berth/chaos/kill?actor=registry-session HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(kill.status, 204);
    let o = puller.join().unwrap();
    assert!(
        !o.status.success(),
        "a killed pull must not look like a success"
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(err.contains("registry session stopped"), "{err}");
    assert!(
        wait_for(Duration::from_secs(5), || std::fs::read_dir(&tmp)
            .map(|r| r.count() == 0)
            .unwrap_or(true)),
        "partial download removed"
    );
    assert_eq!(layer_dirs(&d), 0);
    assert_eq!(d.docker_ok(&["images", "-aq"]).trim(), "");
    // The daemon is fine and the pull can be repeated.
    f.put(
        &format!("/v2/x/bad/blobs/{ld}"),
        "application/octet-stream",
        blob,
    );
    d.docker_ok(&["pull", &format!("{}/x/bad:slow", f.addr)]);
    d.stop();
}

/// Issue 12: one RegistrySession per registry host. Killing the session of
/// one host while a pull of it and a pull of another host are in flight
/// ends the first with an error line; the second finishes; the first pull
/// repeated on the restarted session succeeds.
#[test]
fn killing_one_hosts_session_fails_its_pull_and_spares_other_hosts() {
    let (f1, f2) = (FakeRegistry::start(), FakeRegistry::start());
    let d = Daemon::builder().arg("--testing-chaos-control").start();
    let (puller1, blob1, ld1) = start_stalled_pull(&f1, &d, 5);
    // Host 2: the same kind of pull, held mid-layer until `resume`.
    let big = tar_of(&[Entry::File("big", &vec![6u8; 8 << 20])]);
    let blob2 = gzip(&big);
    serve_image(
        &f2,
        "slow",
        &blob2,
        &sha256(&big),
        None,
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    );
    let resume = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    f2.put_canned(
        &format!("/v2/x/bad/blobs/{}", sha256(&blob2)),
        Canned {
            content_type: "application/octet-stream".into(),
            body: blob2.clone(),
            headers: vec![],
            stall_after: Some(blob2.len() / 2),
            resume: Some(resume.clone()),
        },
    );
    let name2 = format!("{}/x/bad:slow", f2.addr);
    let (host, dir, n2) = (d.docker_host(), d.dir.path().to_path_buf(), name2.clone());
    let puller2 = std::thread::spawn(move || {
        docker_cmd(&dir)
            .env("DOCKER_HOST", host)
            .args(["pull", &n2])
            .output()
            .unwrap()
    });
    let tmp = d.data_root.join("image/overlay2/tmp");
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_dir(&tmp)
            .map(|r| r.count() >= 2)
            .unwrap_or(false)),
        "both pulls are downloading"
    );
    let req = format!(
        "POST /_berth/chaos/kill?actor=registry-session:{} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        f1.addr
    );
    assert_eq!(d.raw(req.as_bytes()).status, 204);
    let o = puller1.join().unwrap();
    assert!(
        !o.status.success(),
        "a killed pull must not look like a success"
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(err.contains("registry session stopped"), "{err}");
    // Host 2's pull is still in flight on its own session, and finishes.
    assert!(!puller2.is_finished(), "the other host's pull was cut");
    resume.store(true, std::sync::atomic::Ordering::SeqCst);
    let o = puller2.join().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("Downloaded newer image"));
    // The same pull of host 1 succeeds on its restarted session.
    f1.put(
        &format!("/v2/x/bad/blobs/{ld1}"),
        "application/octet-stream",
        blob1,
    );
    d.docker_ok(&["pull", &format!("{}/x/bad:slow", f1.addr)]);
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(images.lines().count(), 2, "{images}");
    d.stop();
}

#[test]
fn token_registries_log_in_and_pull_with_a_bearer_token() {
    let f = FakeRegistry::start_with(Some(TokenAuth {
        user: "bob".into(),
        pass: "pw".into(),
        token: "t0k3n".into(),
    }));
    let d = Daemon::start();
    let layer = tar_of(&[Entry::File("tok", b"en")]);
    serve_image(
        &f,
        "1",
        &layer,
        &sha256(&layer),
        None,
        "application/vnd.docker.image.rootfs.diff.tar",
    );
    let o = d.docker(&["login", &f.addr, "-u", "bob", "-p", "wrong"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("401 Unauthorized"));
    let name = format!("{}/x/bad:1", f.addr);
    let o = docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .args(["pull", &name])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "pulled without credentials");
    let out = d.docker_ok(&["login", &f.addr, "-u", "bob", "-p", "pw"]);
    assert!(out.contains("Login Succeeded"), "{out}");
    d.docker_ok(&["pull", &name]);
    assert_eq!(d.docker_ok(&["images", "-q"]).lines().count(), 1);
    d.stop();
}

/// Issue 17's reported sequence, kept: another daemon pushed `X:latest`
/// (gzip layers) to the registry; berthd loads an image of 5 layers (one
/// of 32 MiB of random data) tagged `X:latest`, pushes it over the other's
/// tag, removes it and pulls it: the same image comes back, every time.
#[test]
fn pull_after_our_push_over_another_daemons_tag_and_rmi() {
    use std::io::Read;
    let reg = Registry::start(None);
    let other = Daemon::start();
    let d = Daemon::start();
    let x = format!("{}/seq/x:latest", reg.addr);
    import_and_push(&other, &x);
    let mut big = vec![0u8; 32 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut big)
        .unwrap();
    let names: Vec<String> = (0..5).map(|i| format!("layer{i}")).collect();
    let layers: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let data: &[u8] = if i == 2 { &big } else { n.as_bytes() };
            tar_of(&[Entry::File(n, data)])
        })
        .collect();
    let (archive, id) = docker_archive(&layers, &[x.as_str()], None);
    let p = d.dir.path().join("five.tar");
    std::fs::write(&p, archive).unwrap();
    for round in 0..3 {
        d.docker_ok(&["load", "-q", "-i", p.to_str().unwrap()]);
        assert_eq!(id_of(&d, &x), id);
        d.docker_ok(&["push", &x]);
        d.docker_ok(&["rmi", &x]);
        let o = d.docker(&["pull", &x]);
        assert!(
            o.status.success(),
            "round {round}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            d.log()
        );
        assert_eq!(id_of(&d, &x), id, "round {round}");
        d.docker_ok(&["rmi", &x]);
    }
    other.stop();
    d.stop();
}

/// Image content shared by operations in flight at once is never freed
/// under them (issue 17's pull and load ENOENT): one client loads an
/// image and removes it, another pulls an image with the same layers (and
/// config) and removes it, a third loads, saves and removes it, over and over
/// at the same time. Before, an rmi or a failed load's cleanup removed
/// blobs another load or pull had just stored ("opening blob ...: no such
/// file or directory"). Every command succeeds, the last image saves whole,
/// and once every image is removed no layer, blob or record is left.
#[test]
fn loads_pulls_saves_and_rmis_of_shared_content_at_once_all_succeed() {
    use std::io::Read;
    let reg = Registry::start(None);
    let d = Daemon::start();
    let mut big = vec![0u8; 16 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut big)
        .unwrap();
    let layers: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let name = format!("shared{i}");
            let data: &[u8] = if i == 1 { &big } else { name.as_bytes() };
            tar_of(&[Entry::File(&name, data)])
        })
        .collect();
    let pulled = format!("{}/race/p:1", reg.addr);
    let (archive, id) = docker_archive(&layers, &["race-l:1", "race-s:1"], None);
    let p = d.dir.path().join("shared.tar");
    std::fs::write(&p, archive).unwrap();
    // The pulled image: the same content, pushed once.
    d.docker_ok(&["load", "-q", "-i", p.to_str().unwrap()]);
    d.docker_ok(&["tag", "race-l:1", &pulled]);
    d.docker_ok(&["push", &pulled]);
    d.docker_ok(&["rmi", "race-l:1", "race-s:1", &pulled]);
    let rounds = 6;
    let failures = std::sync::Mutex::new(Vec::new());
    let run = |args: &[&str]| {
        let o = d.docker(args);
        if !o.status.success() {
            failures.lock().unwrap().push(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
    };
    let path = p.to_str().unwrap();
    let saved_each = d.dir.path().join("saved-each.tar");
    let saved_each = saved_each.to_str().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..rounds {
                run(&["load", "-q", "-i", path]);
                run(&["rmi", "race-l:1"]);
            }
        });
        s.spawn(|| {
            for _ in 0..rounds {
                run(&["pull", "-q", &pulled]);
                run(&["rmi", &pulled]);
            }
        });
        s.spawn(|| {
            for _ in 0..rounds {
                run(&["load", "-q", "-i", path]);
                run(&["save", "-o", saved_each, "race-s:1"]);
                run(&["rmi", "race-s:1"]);
            }
        });
    });
    let failures = failures.into_inner().unwrap();
    // The load tags both names: what the threads left tagged goes too.
    for name in ["race-l:1", "race-s:1", pulled.as_str()] {
        let _ = d.docker(&["rmi", name]);
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        d.log()
    );
    // The content is whole: loaded again, saved, the same image.
    d.docker_ok(&["load", "-q", "-i", path]);
    assert_eq!(id_of(&d, "race-s:1"), id);
    let saved = d.dir.path().join("saved.tar");
    d.docker_ok(&["save", "-o", saved.to_str().unwrap(), "race-s:1"]);
    d.docker_ok(&["rmi", "race-l:1", "race-s:1"]);
    let image_root = d.data_root.join("image/overlay2");
    let left = |dir: std::path::PathBuf| -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(left(image_root.join("blobs/sha256")), Vec::<String>::new());
    assert_eq!(left(image_root.join("layers")), Vec::<String>::new());
    let dirs: Vec<String> = left(d.data_root.join("overlay2"))
        .into_iter()
        .filter(|n| n != "l")
        .collect();
    assert_eq!(dirs, Vec::<String>::new());
    d.stop();
}

/// A layer blob gone from the store (removed behind berthd's back) fails
/// the push with an error naming the layer, the operation and the path,
/// never a bare "No such file or directory"; berthd stays up.
#[test]
fn a_missing_layer_blob_fails_the_push_naming_it() {
    let reg = Registry::start(None);
    let d = Daemon::start();
    let layer = tar_of(&[Entry::File("only", b"one layer\n")]);
    let (archive, _) = docker_archive(std::slice::from_ref(&layer), &["lonely:1"], None);
    let p = d.dir.path().join("lonely.tar");
    std::fs::write(&p, archive).unwrap();
    d.docker_ok(&["load", "-q", "-i", p.to_str().unwrap()]);
    let digest = sha256(&layer);
    let hex = digest.trim_start_matches("sha256:");
    let blob = d.data_root.join("image/overlay2/blobs/sha256").join(hex);
    std::fs::remove_file(&blob).unwrap();
    let name = format!("{}/x/lonely:1", reg.addr);
    d.docker_ok(&["tag", "lonely:1", &name]);
    let o = d.docker(&["push", &name]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    for part in [
        format!("pushing layer {digest}"),
        blob.display().to_string(),
        "no such file or directory".to_string(),
    ] {
        assert!(err.contains(&part), "{part:?} not in: {err}");
    }
    assert!(d.log().contains(hex), "not logged:\n{}", d.log());
    d.docker_ok(&["version"]);
    d.stop();
}
