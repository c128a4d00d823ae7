//! A container's OCI spec from its record: dockerd's defaults (in
//! `sys::runtime::spec`) plus the container's options.

use std::path::Path;

use berth_actors::container::ContainerRecord;
use serde_json::{json, Value};

use crate::config::DaemonConfig;
use crate::facts::HostFacts;
use crate::sys::runtime::{seccomp, spec, user, DEFAULT_CAPABILITIES};

/// Where the init binary appears in the container (dockerd's path).
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

/// Every capability runc knows on this kernel (for `--privileged`, `ALL`).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities berthd itself may grant: its bounding set (root here
/// may lack some, e.g. CAP_SYS_RESOURCE), for `--privileged` and `ALL`.
pub fn host_capabilities() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| bnd & (1u64 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn normalize_cap(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u == "ALL" || u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// The strings of a JSON array (anything else: none).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The capability set after `--cap-add`/`--cap-drop`; unknown names fail.
pub fn capabilities(hc: &Value) -> Result<Vec<String>, String> {
    if hc["Privileged"].as_bool().unwrap_or(false) {
        return Ok(host_capabilities());
    }
    let add: Vec<String> = strings(&hc["CapAdd"])
        .iter()
        .map(|c| normalize_cap(c))
        .collect();
    let drop: Vec<String> = strings(&hc["CapDrop"])
        .iter()
        .map(|c| normalize_cap(c))
        .collect();
    for c in add.iter().chain(&drop) {
        if c != "ALL" && !ALL_CAPABILITIES.contains(&c.as_str()) {
            return Err(format!("unknown capability: \"{c}\""));
        }
    }
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        return Ok(host_capabilities());
    }
    for c in add {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// `--security-opt` values: (no-new-privileges, seccomp option).
fn security_opts(hc: &Value) -> Result<(bool, Option<String>), String> {
    let mut nnp = false;
    let mut seccomp = None;
    for o in strings(&hc["SecurityOpt"]) {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match k {
            "no-new-privileges" => {
                nnp = match v {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(format!("invalid --security-opt 2: {o:?}")),
                }
            }
            "seccomp" => seccomp = Some(v.to_string()),
            "apparmor" | "label" => {}
            _ => return Err(format!("invalid --security-opt 1: {o:?}")),
        }
    }
    Ok((nnp, seccomp))
}

/// Check the options a spec needs, at create time (400 on bad input).
pub fn validate(hc: &Value) -> Result<(), String> {
    capabilities(hc)?;
    security_opts(hc)?;
    Ok(())
}

pub struct SpecContext<'a> {
    pub cfg: &'a DaemonConfig,
    pub host: &'a HostFacts,
    pub rootfs: &'a Path,
    pub container_dir: &'a Path,
    /// `<data-root>/volumes`
    pub volumes_root: &'a Path,
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => "amd64",
    }
}

pub fn cgroups_path(rec: &ContainerRecord, cfg: &DaemonConfig) -> String {
    let parent = rec.host_config["CgroupParent"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| (!cfg.cgroup_parent.is_empty()).then(|| cfg.cgroup_parent.clone()))
        .unwrap_or_else(|| "/docker".into());
    let parent = if parent.starts_with('/') {
        parent
    } else {
        format!("/{parent}")
    };
    format!("{}/{}", parent.trim_end_matches('/'), rec.id)
}

pub fn build(rec: &ContainerRecord, c: &SpecContext) -> Result<Value, String> {
    let hc = &rec.host_config;
    let cfg = &rec.config;
    let privileged = hc["Privileged"].as_bool().unwrap_or(false);
    let caps = capabilities(hc)?;
    let (nnp_opt, seccomp_opt) = security_opts(hc)?;
    let user =
        user::resolve(c.rootfs, cfg["User"].as_str().unwrap_or("")).map_err(|e| e.to_string())?;
    let seccomp_value = if privileged {
        None
    } else {
        let profile: Option<String> = match seccomp_opt.as_deref() {
            Some("unconfined") => None,
            Some(p) if !p.is_empty() && p != "builtin" => Some(p.to_string()),
            _ => match c.cfg.seccomp_profile.as_str() {
                "unconfined" => None,
                "" | "builtin" => Some(seccomp::DEFAULT_PROFILE.to_string()),
                path => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| format!("reading seccomp profile {path}: {e}"))?,
                ),
            },
        };
        match profile {
            None => None,
            Some(p) => Some(seccomp::translate(
                &p,
                &seccomp::Target {
                    goarch: goarch(),
                    capabilities: &caps,
                    kernel: seccomp::kernel_version(&c.host.kernel_version),
                },
            )?),
        }
    };
    let shm = hc["ShmSize"]
        .as_u64()
        .filter(|s| *s > 0)
        .unwrap_or_else(|| c.cfg.default_shm_bytes());
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let init = hc["Init"].as_bool().unwrap_or(c.cfg.init);
    if init {
        let mut a = vec![INIT_IN_CONTAINER.to_string(), "--".to_string()];
        a.extend(args);
        args = a;
    }
    let cgns = {
        let m = hc["CgroupnsMode"].as_str().unwrap_or("");
        let m = if m.is_empty() {
            c.cfg.default_cgroupns_mode.as_str()
        } else {
            m
        };
        m == "private"
    };
    let cgroups = cgroups_path(rec, c.cfg);
    let rootfs = c.rootfs.display().to_string();
    let hostname = cfg["Hostname"].as_str().unwrap_or("").to_string();
    let mut s = spec::build(&spec::SpecInput {
        rootfs: &rootfs,
        readonly_rootfs: hc["ReadonlyRootfs"].as_bool().unwrap_or(false),
        args,
        env: strings(&cfg["Env"]),
        workdir: cfg["WorkingDir"].as_str().unwrap_or(""),
        user: &user,
        hostname: &hostname,
        terminal: rec.tty(),
        capabilities: &caps,
        seccomp: seccomp_value,
        shm_size: shm,
        no_new_privileges: nnp_opt || c.cfg.no_new_privileges,
        oom_score_adj: hc["OomScoreAdj"].as_i64().unwrap_or(0),
        cgroups_path: &cgroups,
        cgroupns: cgns,
    })
    .map_err(|e| e.to_string())?;
    // The container's own /etc files, bind-mounted like dockerd's.
    let ro = hc["ReadonlyRootfs"].as_bool().unwrap_or(false);
    let mut mounts = s["mounts"].as_array().cloned().unwrap_or_default();
    for (dest, file) in [
        ("/etc/resolv.conf", "resolv.conf"),
        ("/etc/hostname", "hostname"),
        ("/etc/hosts", "hosts"),
    ] {
        let mut opts = vec!["rbind", "rprivate"];
        if ro {
            opts.push("ro");
        }
        mounts.push(json!({"destination": dest, "type": "bind", "source": c.container_dir.join(file), "options": opts}));
    }
    if init {
        let init_path = if c.cfg.init_path.is_empty() {
            "docker-init"
        } else {
            c.cfg.init_path.as_str()
        };
        let found =
            which(init_path).ok_or_else(|| format!("docker-init binary not found: {init_path}"))?;
        mounts.push(json!({"destination": INIT_IN_CONTAINER, "type": "bind", "source": found, "options": ["bind", "ro"]}));
    }
    if let Some(t) = hc["Tmpfs"].as_object() {
        for (dest, opts) in t {
            let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            o.extend(
                opts.as_str()
                    .unwrap_or("")
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string),
            );
            mounts.push(
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}),
            );
        }
    }
    // Volumes, bind mounts, --mount tmpfs: parents before children.
    let mut user: Vec<&berth_actors::container::MountPoint> = rec.mounts.iter().collect();
    user.sort_by_key(|m| m.destination.matches('/').count());
    for m in user {
        let rw = if m.rw { "rw" } else { "ro" };
        match m.kind.as_str() {
            "volume" => {
                let src = c.volumes_root.join(&m.name).join("_data");
                mounts.retain(|x| x["destination"] != json!(m.destination));
                mounts.push(json!({"destination": m.destination, "type": "bind", "source": src, "options": ["rbind", rw, "rprivate"]}));
            }
            "bind" => {
                let prop = if m.propagation.is_empty() {
                    "rprivate"
                } else {
                    m.propagation.as_str()
                };
                mounts.retain(|x| x["destination"] != json!(m.destination));
                mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": ["rbind", rw, prop]}));
            }
            "tmpfs" => {
                let mut o: Vec<String> =
                    vec!["nosuid".into(), "nodev".into(), "noexec".into(), rw.into()];
                o.extend(
                    m.tmpfs
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string),
                );
                mounts.retain(|x| x["destination"] != json!(m.destination));
                mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
            _ => {}
        }
    }
    s["mounts"] = Value::from(mounts);
    if privileged {
        let linux = &mut s["linux"];
        linux["maskedPaths"] = json!([]);
        linux["readonlyPaths"] = json!([]);
        linux["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
        if let Some(ms) = s["mounts"].as_array_mut() {
            for m in ms.iter_mut() {
                if m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup" {
                    if let Some(o) = m["options"].as_array_mut() {
                        o.retain(|x| x != "ro");
                        o.push(json!("rw"));
                    }
                }
            }
        }
    }
    if hc["NetworkMode"].as_str() == Some("host") {
        if let Some(ns) = s["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
    } else if !rec.state.sandbox.is_empty() {
        // The namespace berthd prepared (bridge networks) or another
        // container's (`--network container:`).
        if let Some(ns) = s["linux"]["namespaces"].as_array_mut() {
            for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                n["path"] = json!(rec.state.sandbox);
            }
        }
    }
    s["linux"]["resources"] = merge_resources(s["linux"]["resources"].take(), hc);
    let rl = rlimits(hc, c.cfg);
    if !rl.is_empty() {
        s["process"]["rlimits"] = Value::from(rl);
    }
    Ok(s)
}

pub fn merge_resources(mut r: Value, hc: &Value) -> Value {
    let num = |k: &str| hc[k].as_i64().unwrap_or(0);
    let mem = num("Memory");
    let swap = num("MemorySwap");
    let mut memory = serde_json::Map::new();
    if mem > 0 {
        memory.insert("limit".into(), mem.into());
        let sw = match swap {
            0 => mem * 2,
            -1 => -1,
            s => s,
        };
        memory.insert("swap".into(), sw.into());
    }
    if num("MemoryReservation") > 0 {
        memory.insert("reservation".into(), num("MemoryReservation").into());
    }
    if hc["OomKillDisable"].as_bool().unwrap_or(false) {
        memory.insert("disableOOMKiller".into(), true.into());
    }
    if !memory.is_empty() {
        r["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if num("CpuShares") > 0 {
        cpu.insert("shares".into(), num("CpuShares").into());
    }
    if num("NanoCpus") > 0 {
        let period = 100_000i64;
        cpu.insert("period".into(), period.into());
        cpu.insert(
            "quota".into(),
            (num("NanoCpus") * period / 1_000_000_000).into(),
        );
    } else {
        if num("CpuPeriod") > 0 {
            cpu.insert("period".into(), num("CpuPeriod").into());
        }
        if num("CpuQuota") > 0 {
            cpu.insert("quota".into(), num("CpuQuota").into());
        }
    }
    for (k, o) in [("CpusetCpus", "cpus"), ("CpusetMems", "mems")] {
        if let Some(v) = hc[k].as_str().filter(|v| !v.is_empty()) {
            cpu.insert(o.into(), v.into());
        }
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = hc["PidsLimit"].as_i64().filter(|p| *p != 0) {
        r["pids"] = json!({"limit": p});
    }
    if let Some(w) = hc["BlkioWeight"].as_u64().filter(|w| *w > 0) {
        r["blockIO"] = json!({"weight": w});
    }
    r
}

/// `default-ulimits` overridden per name by `--ulimit`. None by default:
/// the container inherits the shim's limits (never above them: root here
/// may lack CAP_SYS_RESOURCE).
fn rlimits(hc: &Value, cfg: &DaemonConfig) -> Vec<Value> {
    let mut m: std::collections::BTreeMap<String, (i64, i64)> = cfg
        .default_ulimits
        .iter()
        .map(|(k, u)| (k.clone(), (u.hard, u.soft)))
        .collect();
    if let Some(a) = hc["Ulimits"].as_array() {
        for u in a {
            if let Some(n) = u["Name"].as_str() {
                m.insert(
                    n.to_string(),
                    (
                        u["Hard"].as_i64().unwrap_or(0),
                        u["Soft"].as_i64().unwrap_or(0),
                    ),
                );
            }
        }
    }
    m.into_iter()
        .map(|(n, (h, s))| json!({"type": format!("RLIMIT_{}", n.to_ascii_uppercase()), "hard": h as u64, "soft": s as u64}))
        .collect()
}

/// A binary by absolute path or on PATH.
pub fn which(bin: &str) -> Option<std::path::PathBuf> {
    if bin.contains('/') {
        return Path::new(bin).exists().then(|| bin.into());
    }
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .iter()
            .map(|d| Path::new(d).join(bin))
            .find(|p| p.is_file())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_arithmetic() {
        let c = capabilities(&json!({"CapAdd": ["sys_admin"], "CapDrop": ["CHOWN", "cap_kill"]}))
            .unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
        assert_eq!(
            capabilities(&json!({"CapDrop": ["ALL"], "CapAdd": ["NET_RAW"]})).unwrap(),
            vec!["CAP_NET_RAW"]
        );
        assert_eq!(
            capabilities(&json!({"Privileged": true})).unwrap(),
            host_capabilities()
        );
        assert!(host_capabilities().contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(capabilities(&json!({"CapAdd": ["CAP_NOPE"]}))
            .unwrap_err()
            .contains("CAP_NOPE"));
    }

    #[test]
    fn resources() {
        let r = merge_resources(
            json!({}),
            &json!({"Memory": 33554432, "NanoCpus": 1500000000i64, "PidsLimit": 10, "CpuShares": 512}),
        );
        assert_eq!(r["memory"]["limit"], 33554432);
        assert_eq!(r["memory"]["swap"], 67108864);
        assert_eq!(r["cpu"]["quota"], 150000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 10);
    }
}
