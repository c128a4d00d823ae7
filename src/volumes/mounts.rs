//! A container's mounts from its create request: `HostConfig.Binds` (`-v`),
//! `HostConfig.Mounts` (`--mount`), `HostConfig.Tmpfs` is left to the spec,
//! and `Config.Volumes` (`-v /path` and the image's VOLUME: anonymous
//! volumes). Checked with dockerd's messages before anything is created.

use std::collections::{BTreeMap, BTreeSet};

use berth_actors::container::config::Mount;
use berth_actors::container::{Config, ContainerError, HostConfig, MountPoint};

fn invalid(m: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(m.into())
}

const PROPAGATIONS: &[&str] = &[
    "shared", "slave", "private", "rshared", "rslave", "rprivate",
];

/// The mount points, without creating anything (but a missing bind
/// source asked for with `BindOptions.CreateMountpoint`). `recursive_ro`:
/// read-only mounts are read-only below their submounts too (API 1.44's
/// default; older clients keep the mount itself read-only only).
pub fn parse(
    hc: &HostConfig,
    config: &Config,
    recursive_ro: bool,
) -> Result<Vec<MountPoint>, ContainerError> {
    let mut out: Vec<MountPoint> = Vec::new();
    for b in hc.binds() {
        let mut m = parse_bind(b)?;
        if !m.rw && recursive_ro {
            m.ro_recursive = "try".into();
        }
        out.push(m);
    }
    for m in hc.mounts() {
        out.push(parse_mount(m, recursive_ro)?);
    }
    let mut seen = BTreeSet::new();
    for m in &out {
        if !seen.insert(m.destination.clone()) {
            return Err(invalid(format!("Duplicate mount point: {}", m.destination)));
        }
    }
    // Anonymous volumes for `Config.Volumes` not covered by a mount.
    if let Some(v) = &config.volumes {
        for dest in v.keys() {
            let d = clean(dest);
            if !d.starts_with('/') {
                return Err(invalid(format!(
                    "invalid volume specification: '{dest}': mount path must be absolute"
                )));
            }
            if seen.insert(d.clone()) {
                out.push(MountPoint {
                    kind: "volume".into(),
                    destination: d,
                    rw: true,
                    copy: true,
                    ..Default::default()
                });
            }
        }
    }
    Ok(out)
}

fn clean(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

/// `-v SRC:DEST[:OPTS]` or `-v DEST`.
fn parse_bind(spec: &str) -> Result<MountPoint, ContainerError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || invalid(format!("invalid volume specification: '{spec}'"));
    let (src, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if dest.is_empty() || !dest.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{dest}' mount path must be absolute"
        )));
    }
    if dest == "/" {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )));
    }
    let mut m = MountPoint {
        destination: clean(dest),
        rw: true,
        mode: mode.to_string(),
        copy: true,
        ..Default::default()
    };
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.rw = false,
            "rw" => m.rw = true,
            "z" | "Z" => {}
            "nocopy" => m.copy = false,
            p if PROPAGATIONS.contains(&p) => m.propagation = p.to_string(),
            _ => return Err(invalid(format!("invalid mode: {o}"))),
        }
    }
    if src.starts_with('/') {
        m.kind = "bind".into();
        m.source = clean(src);
        if m.propagation.is_empty() {
            m.propagation = "rprivate".into();
        }
        // `-v` creates a missing bind source (dockerd).
        m.copy = false;
    } else {
        m.kind = "volume".into();
        if !src.is_empty() && !super::valid_name(src) {
            return Err(invalid(format!(
                "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        m.name = src.to_string();
    }
    Ok(m)
}

/// `--mount type=...,source=...,target=...`.
fn parse_mount(v: &Mount, recursive_ro: bool) -> Result<MountPoint, ContainerError> {
    let kind = v.kind.as_str();
    let target = v.target.as_str();
    let source = v.source.as_str();
    let cfg = |m: &str| invalid(format!("invalid mount config for type \"{kind}\": {m}"));
    let extra = |f: &str| cfg(&format!("field {f} must not be specified"));
    match kind {
        "bind" if v.volume_options.is_some() => return Err(extra("VolumeOptions")),
        "bind" if v.tmpfs_options.is_some() => return Err(extra("TmpfsOptions")),
        "volume" if v.bind_options.is_some() => return Err(extra("BindOptions")),
        "volume" if v.tmpfs_options.is_some() => return Err(extra("TmpfsOptions")),
        "tmpfs" if v.bind_options.is_some() => return Err(extra("BindOptions")),
        "tmpfs" if v.volume_options.is_some() => return Err(extra("VolumeOptions")),
        _ => {}
    }
    if target.is_empty() {
        return Err(cfg("field Target must not be empty"));
    }
    if !target.starts_with('/') {
        return Err(cfg(&format!(
            "invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let ro = v.read_only;
    let mut m = MountPoint {
        kind: kind.to_string(),
        destination: clean(target),
        rw: !ro,
        ..Default::default()
    };
    match kind {
        "bind" => {
            if source.is_empty() {
                return Err(cfg("field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(cfg(&format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            let bo = v.bind_options.clone().unwrap_or_default();
            if !std::path::Path::new(source).exists() {
                if !bo.create_mountpoint {
                    return Err(cfg(&format!("bind source path does not exist: {source}")));
                }
                // `CreateMountpoint`: made as `-v` makes a missing source.
                std::fs::create_dir_all(source).map_err(|e| {
                    cfg(&format!("failed to create bind source path {source}: {e}"))
                })?;
            }
            m.source = clean(source);
            m.non_recursive = bo.non_recursive;
            if (bo.read_only_non_recursive || bo.read_only_force_recursive) && !ro {
                return Err(cfg("must also set ReadOnly"));
            }
            if bo.read_only_non_recursive && bo.read_only_force_recursive {
                return Err(invalid(
                    "mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive",
                ));
            }
            if ro && !bo.read_only_non_recursive {
                if bo.read_only_force_recursive {
                    m.ro_recursive = "force".into();
                } else if recursive_ro {
                    m.ro_recursive = "try".into();
                }
            }
            let p = bo.propagation.as_str();
            if !p.is_empty() && !PROPAGATIONS.contains(&p) {
                return Err(cfg(&format!("invalid propagation mode: {p}")));
            }
            m.propagation = if p.is_empty() {
                "rprivate".into()
            } else {
                p.into()
            };
        }
        "volume" => {
            if !source.is_empty() && !super::valid_name(source) {
                return Err(cfg(&format!("invalid volume name: {source}")));
            }
            m.name = source.to_string();
            m.copy = !v.volume_options.as_ref().is_some_and(|o| o.no_copy);
            let sub = v
                .volume_options
                .as_ref()
                .map(|o| o.subpath.as_str())
                .unwrap_or("");
            if !sub.is_empty() {
                if source.is_empty() {
                    return Err(cfg("must not set Subpath when using anonymous volumes"));
                }
                // Relative, and never above the volume (Go's filepath.IsLocal).
                let mut depth = 0i32;
                for c in sub.split('/') {
                    match c {
                        "" | "." => {}
                        ".." => depth -= 1,
                        _ => depth += 1,
                    }
                    if depth < 0 {
                        break;
                    }
                }
                if sub.starts_with('/') || depth < 0 || sub.contains('\0') {
                    return Err(cfg("subpath must be a relative path within the volume"));
                }
                m.subpath = sub.to_string();
            }
            if ro && source.is_empty() {
                return Err(cfg(
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            if ro && recursive_ro {
                m.ro_recursive = "try".into();
            }
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(cfg("field Source must not be specified"));
            }
            let mut o = Vec::new();
            let t = v.tmpfs_options.clone().unwrap_or_default();
            if t.size_bytes > 0 {
                o.push(format!("size={}", t.size_bytes));
            }
            if t.mode > 0 {
                o.push(format!("mode={:o}", t.mode));
            }
            m.tmpfs = o.join(",");
        }
        "" => {
            return Err(invalid(
                "invalid mount config: must use either propagation mode or type",
            ))
        }
        other => {
            return Err(invalid(format!(
                "invalid mount config for type \"{other}\": mount type unknown"
            )))
        }
    }
    Ok(m)
}

/// Labels, driver options and driver name of a `--mount` volume.
type VolumeOptions = (BTreeMap<String, String>, BTreeMap<String, String>, String);

/// Volume labels and driver options of `--mount` volumes, by target.
pub fn volume_options(hc: &HostConfig) -> BTreeMap<String, VolumeOptions> {
    hc.mounts()
        .iter()
        .filter(|m| m.kind == "volume")
        .map(|m| {
            let o = m.volume_options.clone().unwrap_or_default();
            let (name, driver) = o
                .driver_config
                .map(|d| (d.name, d.options.unwrap_or_default()))
                .unwrap_or_default();
            (
                clean(&m.target),
                (o.labels.unwrap_or_default(), driver, name),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(hc: &Value, cfg: &Value) -> Result<Vec<MountPoint>, ContainerError> {
        super::parse(
            &serde_json::from_value(hc.clone()).unwrap(),
            &serde_json::from_value(cfg.clone()).unwrap(),
            true,
        )
    }

    #[test]
    fn binds_mounts_and_volumes() {
        let hc = json!({"Binds": ["data:/d:ro,nocopy", "/tmp/x:/h"], "Mounts": [
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576}}
        ]});
        let m = parse(&hc, &json!({"Volumes": {"/anon": {}, "/d": {}}})).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(
            (m[0].kind.as_str(), m[0].name.as_str(), m[0].rw, m[0].copy),
            ("volume", "data", false, false)
        );
        assert_eq!(
            (m[1].kind.as_str(), m[1].source.as_str()),
            ("bind", "/tmp/x")
        );
        assert_eq!(m[2].tmpfs, "size=1048576");
        assert_eq!(
            (m[3].destination.as_str(), m[3].name.as_str()),
            ("/anon", "")
        );
        let dup = json!({"Binds": ["a1:/d", "b1:/d"]});
        assert!(parse(&dup, &json!({}))
            .unwrap_err()
            .to_string()
            .contains("Duplicate mount point: /d"));
        let rel = json!({"Mounts": [{"Type": "bind", "Source": "rel", "Target": "/x"}]});
        assert!(parse(&rel, &json!({}))
            .unwrap_err()
            .to_string()
            .contains("must be absolute"));
        let missing =
            json!({"Mounts": [{"Type": "bind", "Source": "/nonexistent/berth", "Target": "/x"}]});
        assert!(parse(&missing, &json!({}))
            .unwrap_err()
            .to_string()
            .contains("bind source path does not exist"));
        assert!(parse(&json!({"Binds": ["./x:/y"]}), &json!({})).is_err());
    }
}
