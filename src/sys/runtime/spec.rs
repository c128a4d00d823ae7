//! The OCI runtime spec (config.json) of a container, with dockerd's
//! defaults: namespaces, mounts, masked and read-only paths, the default
//! capability set, the device allow-list, seccomp.

use serde_json::{json, Value};

use super::user::ResolvedUser;

/// dockerd's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// dockerd's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error("the working directory {0:?} is invalid: it must be an absolute path")]
    RelativeWorkdir(String),
    #[error("the working directory {0:?} is not allowed: it is under /proc")]
    ProcWorkdir(String),
}

impl berth_actors::HasKind for SpecError {
    fn kind(&self) -> berth_actors::ErrorKind {
        berth_actors::ErrorKind::InvalidParameter
    }
}

/// What a container's spec is made of.
pub struct SpecInput<'a> {
    /// Absolute path of the root filesystem.
    pub rootfs: &'a str,
    pub readonly_rootfs: bool,
    /// Process arguments: the entrypoint followed by the command.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: &'a str,
    pub user: &'a ResolvedUser,
    pub hostname: &'a str,
    pub terminal: bool,
    pub capabilities: &'a [String],
    pub seccomp: Option<Value>,
    pub shm_size: u64,
    pub no_new_privileges: bool,
    pub oom_score_adj: i64,
    pub cgroups_path: &'a str,
    /// `cgroup` joins a new cgroup namespace (`private` mode).
    pub cgroupns: bool,
}

/// Entrypoint and command as dockerd combines them.
pub fn args(entrypoint: &[String], cmd: &[String]) -> Result<Vec<String>, SpecError> {
    let a: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if a.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(a)
}

/// Reject working directories that are relative or under /proc (the
/// CVE-2024-21626 vector), whatever the runtime's version.
pub fn check_workdir(w: &str) -> Result<String, SpecError> {
    if w.is_empty() {
        return Ok("/".into());
    }
    if !w.starts_with('/') {
        return Err(SpecError::RelativeWorkdir(w.into()));
    }
    // Normalise lexically (`..` cannot climb above /), then look at the top.
    let mut clean: Vec<&str> = Vec::new();
    for c in w.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                clean.pop();
            }
            c => clean.push(c),
        }
    }
    if clean.first() == Some(&"proc") {
        return Err(SpecError::ProcWorkdir(w.into()));
    }
    Ok(format!("/{}", clean.join("/")))
}

pub fn build(i: &SpecInput) -> Result<Value, SpecError> {
    let cwd = check_workdir(i.workdir)?;
    let mut env = i.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    if i.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let caps = json!(i.capabilities);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "network"}),
    ];
    if i.cgroupns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let dev = |t: &str, major: Option<i64>, minor: Option<i64>, access: &str| json!({"allow": true, "type": t, "major": major, "minor": minor, "access": access});
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
        "cgroupsPath": i.cgroups_path,
        "resources": {"devices": [
            {"allow": false, "access": "rwm"},
            dev("c", None, None, "m"), dev("b", None, None, "m"),
            dev("c", Some(1), Some(3), "rwm"), dev("c", Some(1), Some(8), "rwm"), dev("c", Some(1), Some(7), "rwm"),
            dev("c", Some(5), Some(0), "rwm"), dev("c", Some(1), Some(5), "rwm"), dev("c", Some(1), Some(9), "rwm"),
            dev("c", Some(5), Some(1), "rwm"), dev("c", Some(136), None, "rwm"), dev("c", Some(5), Some(2), "rwm"),
            dev("c", Some(10), Some(200), "rwm"),
        ]},
    });
    if let Some(s) = &i.seccomp {
        linux["seccomp"] = s.clone();
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": i.terminal,
            "user": {"uid": i.user.uid, "gid": i.user.gid, "additionalGids": i.user.additional_gids},
            "args": i.args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": i.no_new_privileges,
            "oomScoreAdj": i.oom_score_adj,
        },
        "root": {"path": i.rootfs, "readonly": i.readonly_rootfs},
        "hostname": i.hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", i.shm_size)]},
        ],
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_and_workdirs() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            args(&s(&["/bin/app"]), &s(&["-x"])).unwrap(),
            s(&["/bin/app", "-x"])
        );
        assert_eq!(args(&[], &[]), Err(SpecError::NoCommand));
        assert_eq!(check_workdir("").unwrap(), "/");
        assert_eq!(check_workdir("/srv").unwrap(), "/srv");
        assert!(matches!(
            check_workdir("srv"),
            Err(SpecError::RelativeWorkdir(_))
        ));
        assert!(matches!(
            check_workdir("/proc/self/fd/7"),
            Err(SpecError::ProcWorkdir(_))
        ));
        assert!(matches!(
            check_workdir("//proc/1/cwd"),
            Err(SpecError::ProcWorkdir(_))
        ));
        assert!(matches!(
            check_workdir("/tmp/../proc/self"),
            Err(SpecError::ProcWorkdir(_))
        ));
    }
}
