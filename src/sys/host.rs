//! Facts about the host that `docker info` and `docker version` report,
//! read once at startup (they do not change while berthd runs).

use std::fs;
use std::path::Path;
use std::process::Command;

pub use crate::facts::{ComponentVersion, HostFacts};

fn read_trim(p: &str) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn os_release() -> (String, String) {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    (
        get("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
        get("VERSION_ID").unwrap_or_default(),
    )
}

fn mem_total() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Run `<bin> --version` and pick the version and commit lines.
pub fn component_version(bin: &str) -> Option<ComponentVersion> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = ComponentVersion::default();
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.split_once(" version ").map(|(_, r)| r) {
            let mut parts = rest.split_whitespace();
            v.version = parts.next().unwrap_or_default().to_string();
            // tini prints "tini version 0.19.0 - git.de40ad0"
            if let Some(g) = rest.split("git.").nth(1) {
                v.commit = g.trim().to_string();
            }
        } else if let Some(c) = l.strip_prefix("commit:") {
            v.commit = c.trim().to_string();
        }
    }
    if v.version.is_empty() {
        return None;
    }
    Some(v)
}

impl HostFacts {
    /// Probe the host; `runtime` and `init` are the binaries to ask.
    pub fn probe(runtime: &str, init: &str) -> HostFacts {
        let uts = nix::sys::utsname::uname().ok();
        let (os, os_version) = os_release();
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let v1 = |c: &str, f: &str| Path::new(&format!("/sys/fs/cgroup/{c}/{f}")).exists();
        let v2_has = |c: &str| {
            read_trim("/sys/fs/cgroup/cgroup.controllers")
                .is_some_and(|s| s.split_whitespace().any(|x| x == c))
        };
        let flag = |p: &str| read_trim(p).map(|s| s == "1");
        HostFacts {
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            kernel_version: uts
                .as_ref()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            architecture: uts
                .as_ref()
                .map(|u| u.machine().to_string_lossy().into_owned())
                .unwrap_or_else(|| std::env::consts::ARCH.into()),
            operating_system: os,
            os_version,
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total: mem_total(),
            cgroup_version: if v2 { "2".into() } else { "1".into() },
            memory_limit: if v2 {
                v2_has("memory")
            } else {
                v1("memory", "memory.limit_in_bytes")
            },
            swap_limit: if v2 {
                v2_has("memory")
            } else {
                v1("memory", "memory.memsw.limit_in_bytes")
            },
            cpu_cfs: if v2 {
                v2_has("cpu")
            } else {
                v1("cpu", "cpu.cfs_quota_us")
            },
            cpu_shares: if v2 {
                v2_has("cpu")
            } else {
                v1("cpu", "cpu.shares")
            },
            cpuset: if v2 {
                v2_has("cpuset")
            } else {
                v1("cpuset", "cpuset.cpus")
            },
            pids_limit: if v2 {
                v2_has("pids")
            } else {
                v1("pids", "pids.max") || Path::new("/sys/fs/cgroup/pids").exists()
            },
            oom_kill_disable: !v2 && v1("memory", "memory.oom_control"),
            ipv4_forwarding: flag("/proc/sys/net/ipv4/ip_forward").unwrap_or(false),
            bridge_nf_iptables: flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            bridge_nf_ip6tables: flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            runc: component_version(runtime),
            init: component_version(init),
        }
    }

    /// The warnings dockerd derives from these facts.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.memory_limit {
            w.push("WARNING: No memory limit support".into());
        }
        if !self.swap_limit {
            w.push("WARNING: No swap limit support".into());
        }
        if !self.ipv4_forwarding {
            w.push("WARNING: IPv4 forwarding is disabled".into());
        }
        if self.bridge_nf_iptables == Some(false) {
            w.push("WARNING: bridge-nf-call-iptables is disabled".into());
        }
        if self.bridge_nf_ip6tables == Some(false) {
            w.push("WARNING: bridge-nf-call-ip6tables is disabled".into());
        }
        w
    }
}

/// The filesystem a path lives on, named as dockerd names it.
pub fn backing_filesystem(path: &Path) -> String {
    match nix::sys::statfs::statfs(path) {
        Ok(s) => {
            let magic = s.filesystem_type().0;
            match magic {
                0xEF53 => "extfs".into(),
                0x58465342 => "xfs".into(),
                0x9123683E => "btrfs".into(),
                0x01021994 => "tmpfs".into(),
                0x794c7630 => "overlayfs".into(),
                0x2FC12FC1 => "zfs".into(),
                other => format!("<unknown 0x{other:x}>"),
            }
        }
        Err(_) => "<unknown>".into(),
    }
}

/// The persistent engine ID (`docker info` ID): created once in the data-root.
pub fn engine_id(data_root: &Path) -> std::io::Result<String> {
    let path = data_root.join("engine-id");
    if let Ok(s) = fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let mut b: [u8; 16] = crate::ids::random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    super::atomic::write_atomic(&path, id.as_bytes(), 0o600)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_id_is_persistent() {
        let d = tempfile::tempdir().unwrap();
        let a = engine_id(d.path()).unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(engine_id(d.path()).unwrap(), a);
    }

    #[test]
    fn probe_reads_true_values() {
        let f = HostFacts::probe("/nonexistent-runtime", "/nonexistent-init");
        assert!(f.ncpu >= 1);
        assert!(f.mem_total > 0);
        assert!(!f.kernel_version.is_empty());
        assert!(f.runc.is_none());
    }
}
