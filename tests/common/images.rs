//! Image fixtures made by the tests themselves: a busybox root filesystem
//! from Debian's busybox-static, docker-archives with chosen layers
//! (multi-layer with whiteouts, tampered, malicious).

use sha2::{Digest, Sha256};

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", berth_actors::image::hex(&Sha256::digest(b)))
}

pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Exec(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A tar with raw names (attacks included: no name validation).
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_old();
        let (name, kind, data, mode, link): (&str, tar::EntryType, &[u8], u32, Option<&str>) =
            match e {
                Entry::Dir(n) => (n, tar::EntryType::Directory, b"", 0o755, None),
                Entry::File(n, d) => (n, tar::EntryType::Regular, d, 0o644, None),
                Entry::Exec(n, d) => (n, tar::EntryType::Regular, d, 0o755, None),
                Entry::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, Some(t)),
                Entry::Hardlink(n, t) => (n, tar::EntryType::Link, b"", 0o644, Some(t)),
            };
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// bin/busybox (Debian's busybox-static) with a few applet links, etc/passwd.
pub fn busybox_rootfs() -> Vec<u8> {
    busybox_tar(
        &[
            "sh", "ls", "cat", "echo", "true", "false", "sleep", "ip", "touch", "id",
        ],
        false,
    )
}

/// bin/busybox linked as `applets`, etc/passwd and etc/group (root, nobody),
/// and /tmp when asked.
pub fn busybox_tar(applets: &[&str], tmp: bool) -> Vec<u8> {
    let bin = std::fs::read("/bin/busybox")
        .expect("busybox-static is installed (scripts/install-deps.sh)");
    let mut entries = vec![
        Entry::Dir("bin/"),
        Entry::Exec("bin/busybox", &bin),
        Entry::Dir("etc/"),
    ];
    if tmp {
        entries.push(Entry::Dir("tmp/"));
    }
    let links: Vec<String> = applets.iter().map(|a| format!("bin/{a}")).collect();
    for l in &links {
        entries.push(Entry::Symlink(l, "busybox"));
    }
    entries.push(Entry::File(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    ));
    entries.push(Entry::File("etc/group", b"root:x:0:\nnogroup:x:65534:\n"));
    tar_of(&entries)
}

/// A docker-archive (manifest.json) with the given layer tars; the config's
/// diff_ids are the layers' real digests unless `diff_ids` overrides them.
pub fn docker_archive(
    layers: &[Vec<u8>],
    tags: &[&str],
    diff_ids: Option<Vec<String>>,
) -> (Vec<u8>, String) {
    let ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| sha256(l)).collect());
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
        "history": layers.iter().enumerate().map(|(i, _)| serde_json::json!({"created": "2026-01-01T00:00:00Z", "created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let id = sha256(&config);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    let cfg_name = format!("{}.json", &id[7..]);
    add(&cfg_name, &config);
    let mut layer_names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("layer{i}/layer.tar");
        add(&n, l);
        layer_names.push(n);
    }
    let manifest =
        serde_json::json!([{"Config": cfg_name, "RepoTags": tags, "Layers": layer_names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    (b.into_inner().unwrap(), id)
}
