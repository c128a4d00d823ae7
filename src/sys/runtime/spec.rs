//! The OCI runtime spec (config.json) of a container, with dockerd's
//! defaults: namespaces, mounts, masked and read-only paths, the default
//! capability set, the device allow-list, seccomp.

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, LinuxSeccomp, Mount, Process, Root, Spec,
    User,
};
use serde_json::Value;

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
    #[error("unknown capability: {0:?}")]
    Capability(String),
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
    pub seccomp: Option<LinuxSeccomp>,
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

/// An OCI mount.
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into())
        .set_typ(Some(typ.into()))
        .set_source(Some(source.into()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// A capability set from names (`CAP_CHOWN`); a name the OCI types do
/// not know is refused.
pub fn capability_set(names: &[String]) -> Result<Capabilities, SpecError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(Value::String(n.clone()))
                .map_err(|_| SpecError::Capability(n.clone()))
        })
        .collect()
}

/// The same set as bounding, effective and permitted.
pub fn capabilities(set: Capabilities) -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(set.clone()))
        .set_effective(Some(set.clone()))
        .set_permitted(Some(set))
        .set_inheritable(None)
        .set_ambient(None);
    c
}

/// The process user.
pub fn user(u: &ResolvedUser) -> User {
    let mut out = User::default();
    out.set_uid(u.uid)
        .set_gid(u.gid)
        .set_additional_gids(Some(u.additional_gids.clone()));
    out
}

fn namespace(t: LinuxNamespaceType) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(t);
    n
}

fn device(
    allow: bool,
    t: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut d = LinuxDeviceCgroup::default();
    d.set_allow(allow)
        .set_typ(t)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.into()));
    d
}

pub fn build(i: &SpecInput) -> Result<Spec, SpecError> {
    let cwd = check_workdir(i.workdir)?;
    let env = i.env.clone();
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid),
        namespace(LinuxNamespaceType::Ipc),
        namespace(LinuxNamespaceType::Uts),
        namespace(LinuxNamespaceType::Mount),
        namespace(LinuxNamespaceType::Network),
    ];
    if i.cgroupns {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup));
    }
    let (c, b) = (Some(LinuxDeviceType::C), Some(LinuxDeviceType::B));
    let devices = vec![
        device(false, None, None, None, "rwm"),
        device(true, c, None, None, "m"),
        device(true, b, None, None, "m"),
        device(true, c, Some(1), Some(3), "rwm"),
        device(true, c, Some(1), Some(8), "rwm"),
        device(true, c, Some(1), Some(7), "rwm"),
        device(true, c, Some(5), Some(0), "rwm"),
        device(true, c, Some(1), Some(5), "rwm"),
        device(true, c, Some(1), Some(9), "rwm"),
        device(true, c, Some(5), Some(1), "rwm"),
        device(true, c, Some(136), None, "rwm"),
        device(true, c, Some(5), Some(2), "rwm"),
        device(true, c, Some(10), Some(200), "rwm"),
    ];
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(devices));
    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces))
        .set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()))
        .set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()))
        .set_cgroups_path(Some(i.cgroups_path.into()))
        .set_resources(Some(resources))
        .set_seccomp(i.seccomp.clone())
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_devices(None)
        .set_sysctl(None)
        .set_rootfs_propagation(None)
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_personality(None);
    let mut process = Process::default();
    process
        .set_terminal(Some(i.terminal))
        .set_user(user(i.user))
        .set_args(Some(i.args.clone()))
        .set_env(Some(env))
        .set_cwd(cwd.into())
        .set_capabilities(Some(capabilities(capability_set(i.capabilities)?)))
        .set_no_new_privileges(Some(i.no_new_privileges))
        .set_oom_score_adj(Some(i.oom_score_adj as i32))
        .set_rlimits(None)
        .set_apparmor_profile(None)
        .set_selinux_label(None);
    let mut root = Root::default();
    root.set_path(i.rootfs.into())
        .set_readonly(Some(i.readonly_rootfs));
    let shm = format!("size={}", i.shm_size);
    let mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        ),
    ];
    let mut spec = Spec::default();
    spec.set_version("1.0.2".into())
        .set_process(Some(process))
        .set_root(Some(root))
        .set_hostname(Some(i.hostname.into()))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux))
        .set_hooks(None)
        .set_annotations(None);
    Ok(spec)
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
