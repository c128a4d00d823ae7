//! A container's OCI spec from its record: dockerd's defaults (in
//! `sys::runtime::spec`) plus the container's options.

use std::path::{Path, PathBuf};

use berth_actors::container::{ContainerRecord, HostConfig};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxNamespaceType, LinuxPids,
    LinuxResources, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};
use serde_json::{json, Value};

use crate::config::DaemonConfig;
use crate::facts::HostFacts;
use crate::sys::runtime::{devices, seccomp, spec, user, DEFAULT_CAPABILITIES};

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
pub fn capabilities(hc: &HostConfig) -> Result<Vec<String>, String> {
    if hc.privileged {
        return Ok(host_capabilities());
    }
    let norm = |l: &Option<Vec<String>>| -> Vec<String> {
        l.iter().flatten().map(|c| normalize_cap(c)).collect()
    };
    let add = norm(&hc.cap_add);
    let drop = norm(&hc.cap_drop);
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
fn security_opts(hc: &HostConfig) -> Result<(bool, Option<String>), String> {
    let mut nnp = false;
    let mut seccomp = None;
    for o in hc.security_opt() {
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
pub fn validate(hc: &HostConfig) -> Result<(), String> {
    capabilities(hc)?;
    security_opts(hc)?;
    Ok(())
}

pub struct SpecContext<'a> {
    pub cfg: &'a DaemonConfig,
    pub host: &'a HostFacts,
    pub rootfs: &'a Path,
    pub container_dir: &'a Path,
    /// The host directory of a volume (its mountpoint).
    pub volume_path: &'a dyn Fn(&str) -> PathBuf,
    /// Volume subpaths resolved and bind-mounted by berthd for this start,
    /// by destination (`subpath.rs`).
    pub staged: &'a std::collections::BTreeMap<String, PathBuf>,
    /// The host tmpfs mounted at /dev/shm: the container's own (shareable
    /// IPC) or its donor's (`container:ID`).
    pub shm: Option<&'a Path>,
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
    let parent = Some(rec.host_config.resources.cgroup_parent.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| (!cfg.cgroup_parent.is_empty()).then(|| cfg.cgroup_parent.clone()))
        .unwrap_or_else(|| "/docker".into());
    let parent = if parent.starts_with('/') {
        parent
    } else {
        format!("/{parent}")
    };
    format!("{}/{}", parent.trim_end_matches('/'), rec.id)
}

pub fn build(rec: &ContainerRecord, c: &SpecContext) -> Result<Spec, String> {
    let hc = &rec.host_config;
    let cfg = &rec.config;
    let privileged = hc.privileged;
    let caps = capabilities(hc)?;
    let (nnp_opt, seccomp_opt) = security_opts(hc)?;
    let mut user = user::resolve(c.rootfs, &cfg.user).map_err(|e| e.to_string())?;
    for g in user::resolve_groups(c.rootfs, hc.group_add()).map_err(|e| e.to_string())? {
        if !user.additional_gids.contains(&g) {
            user.additional_gids.push(g);
        }
    }
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
            Some(p) => Some(seccomp::to_oci(seccomp::translate(
                &p,
                &seccomp::Target {
                    goarch: goarch(),
                    capabilities: &caps,
                    kernel: seccomp::kernel_version(&c.host.kernel_version),
                },
            )?)?),
        }
    };
    let shm = Some(hc.shm_size)
        .filter(|s| *s > 0)
        .map(|s| s as u64)
        .unwrap_or_else(|| c.cfg.default_shm_bytes());
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let init = hc.init.unwrap_or(c.cfg.init);
    if init {
        let mut a = vec![INIT_IN_CONTAINER.to_string(), "--".to_string()];
        a.extend(args);
        args = a;
    }
    let cgns = {
        let m = hc.cgroupns_mode.as_str();
        let m = if m.is_empty() {
            c.cfg.default_cgroupns_mode.as_str()
        } else {
            m
        };
        m == "private"
    };
    let cgroups = cgroups_path(rec, c.cfg);
    let rootfs = c.rootfs.display().to_string();
    let hostname = cfg.hostname.clone();
    let mut s = spec::build(&spec::SpecInput {
        rootfs: &rootfs,
        readonly_rootfs: hc.readonly_rootfs,
        args,
        env: process_env(&hostname, rec.tty(), &rec.state.link_env, cfg.env(), &[]),
        workdir: &cfg.working_dir,
        user: &user,
        hostname: &hostname,
        terminal: rec.tty(),
        capabilities: &caps,
        seccomp: seccomp_value,
        shm_size: shm,
        no_new_privileges: nnp_opt || c.cfg.no_new_privileges,
        oom_score_adj: hc.oom_score_adj,
        cgroups_path: &cgroups,
        cgroupns: cgns,
    })
    .map_err(|e| e.to_string())?;
    // The container's own /etc files, bind-mounted like dockerd's.
    let ro = hc.readonly_rootfs;
    let mut mounts = s.mounts().clone().unwrap_or_default();
    match hc.ipc_mode.as_str() {
        // No /dev/shm at all (dockerd's `none`), or the host's.
        "none" => mounts.retain(|m| m.destination() != Path::new("/dev/shm")),
        // A shareable IPC's /dev/shm lives on the host, so containers
        // joining it (`container:ID`) mount the same one (`shm.rs`).
        _ if c.shm.is_some() => {
            let shm = c.shm.map(|p| p.display().to_string()).unwrap_or_default();
            mounts.retain(|m| m.destination() != Path::new("/dev/shm"));
            mounts.push(spec::mount(
                "/dev/shm",
                "bind",
                &shm,
                &["rbind", "rprivate"],
            ));
        }
        "host" => {
            mounts.retain(|m| m.destination() != Path::new("/dev/shm"));
            mounts.push(spec::mount(
                "/dev/shm",
                "bind",
                "/dev/shm",
                &["rbind", "rprivate"],
            ));
        }
        _ => {}
    }
    let path_of = |p: &Path| p.display().to_string();
    if init {
        let init_path = if c.cfg.init_path.is_empty() {
            "docker-init"
        } else {
            c.cfg.init_path.as_str()
        };
        let found =
            which(init_path).ok_or_else(|| format!("docker-init binary not found: {init_path}"))?;
        mounts.push(spec::mount(
            INIT_IN_CONTAINER,
            "bind",
            &path_of(&found),
            &["bind", "ro"],
        ));
    }
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
        o.extend(opts.split(',').filter(|x| !x.is_empty()));
        mounts.push(spec::mount(dest, "tmpfs", "tmpfs", &o));
    }
    // Volumes, bind mounts, --mount tmpfs: parents before children.
    let mut user: Vec<&berth_actors::container::MountPoint> = rec.mounts.iter().collect();
    user.sort_by_key(|m| m.destination.matches('/').count());
    let runtime_path = c
        .cfg
        .all_runtimes()
        .get(&rec.runtime)
        .map(|r| r.path.clone())
        .unwrap_or_default();
    for m in user {
        let rw = if m.rw { "rw" } else { "ro" };
        // Read-only below submounts too, where asked and possible.
        let rro = match m.ro_recursive.as_str() {
            _ if m.rw => None,
            "try" => crate::sys::runtime::supports_recursive_ro(&runtime_path).then_some("rro"),
            "force" => {
                if !crate::sys::runtime::supports_recursive_ro(&runtime_path) {
                    return Err(format!(
                        "recursive read-only mount of {} is not supported by the kernel or the runtime ({})",
                        m.destination, rec.runtime
                    ));
                }
                Some("rro")
            }
            _ => None,
        };
        let bind = if m.non_recursive { "bind" } else { "rbind" };
        let made = match m.kind.as_str() {
            "volume" => {
                let src = match c.staged.get(&m.destination) {
                    // A subpath, mounted where berthd resolved it.
                    Some(p) => path_of(p),
                    None => path_of(&(c.volume_path)(&m.name)),
                };
                let mut o = vec![bind, rw, "rprivate"];
                o.extend(rro);
                spec::mount(&m.destination, "bind", &src, &o)
            }
            "bind" => {
                let prop = if m.propagation.is_empty() {
                    "rprivate"
                } else {
                    m.propagation.as_str()
                };
                let mut o = vec![bind, rw, prop];
                o.extend(rro);
                spec::mount(&m.destination, "bind", &m.source, &o)
            }
            "tmpfs" => {
                let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec", rw];
                o.extend(m.tmpfs.split(',').filter(|x| !x.is_empty()));
                spec::mount(&m.destination, "tmpfs", "tmpfs", &o)
            }
            _ => continue,
        };
        mounts.retain(|x| x.destination() != Path::new(&m.destination));
        mounts.push(made);
    }
    // The container's own /etc files, bind-mounted like dockerd's: after
    // the user's mounts (a volume on /etc does not hide them), unless the
    // user mounted that very path. And /.dockerenv, which tools test for.
    for (dest, file, always_ro) in [
        ("/etc/resolv.conf", "resolv.conf", false),
        ("/etc/hostname", "hostname", false),
        ("/etc/hosts", "hosts", false),
        ("/.dockerenv", ".dockerenv", true),
    ] {
        if rec.mounts.iter().any(|m| m.destination == dest) {
            continue;
        }
        let mut opts = vec!["rbind", "rprivate"];
        if ro || always_ro {
            opts.push("ro");
        }
        let src = c.container_dir.join(file);
        if file == ".dockerenv" && !src.exists() {
            // Containers created before berthd made it at create.
            if std::fs::File::create(&src).is_err() {
                continue;
            }
        }
        mounts.push(spec::mount(dest, "bind", &path_of(&src), &opts));
    }
    if privileged {
        for m in mounts.iter_mut() {
            let d = m.destination();
            if d == Path::new("/sys") || d == Path::new("/sys/fs/cgroup") {
                let mut o = m.options().clone().unwrap_or_default();
                o.retain(|x| x != "ro");
                o.push("rw".into());
                m.set_options(Some(o));
            }
        }
    }
    s.set_mounts(Some(mounts));
    let mut linux = s.linux().clone().unwrap_or_default();
    let mut resources = linux.resources().clone().unwrap_or_default();
    // The record's lists (dockerd's defaults, filled at create, or the
    // client's); none for a privileged container.
    if let Some(m) = &hc.masked_paths {
        linux.set_masked_paths(Some(m.clone()));
    }
    if let Some(r) = &hc.readonly_paths {
        linux.set_readonly_paths(Some(r.clone()));
    }
    // `--device`: the nodes, and the cgroup rule that lets them be used.
    let mut devices = linux.devices().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    for m in hc.resources.devices.iter().flatten() {
        let access = if m.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            m.cgroup_permissions.as_str()
        };
        for d in devices::gather(&m.path_on_host, &m.path_in_container)? {
            let mut rule = LinuxDeviceCgroup::default();
            rule.set_allow(true)
                .set_typ(Some(d.typ()))
                .set_major(Some(d.major()))
                .set_minor(Some(d.minor()))
                .set_access(Some(access.into()));
            rules.push(rule);
            devices.retain(|x| x.path() != d.path());
            devices.push(d);
        }
    }
    linux.set_devices((!devices.is_empty()).then_some(devices));
    resources.set_devices(Some(rules));
    // Sysctls as given: runc refuses one the container's namespaces do not
    // cover when it starts (as with dockerd).
    if let Some(s) = hc.sysctls.as_ref().filter(|s| !s.is_empty()) {
        linux.set_sysctl(Some(
            s.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ));
    }
    if privileged {
        linux
            .set_masked_paths(Some(vec![]))
            .set_readonly_paths(Some(vec![]));
        let mut all = LinuxDeviceCgroup::default();
        all.set_allow(true).set_access(Some("rwm".into()));
        resources.set_devices(Some(vec![all]));
    }
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    if hc.ipc_mode == "host" {
        // The host's IPC namespace and its /dev/shm, as dockerd does.
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Ipc);
    }
    if hc.pid_mode == "host" {
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Pid);
    }
    // Another container's namespaces (`container:ID`), through its process.
    for (kind, pid, name) in [
        (LinuxNamespaceType::Ipc, rec.state.ipc_donor_pid, "ipc"),
        (LinuxNamespaceType::Pid, rec.state.pid_donor_pid, "pid"),
    ] {
        if pid > 0 {
            for n in namespaces.iter_mut().filter(|n| n.typ() == kind) {
                n.set_path(Some(format!("/proc/{pid}/ns/{name}").into()));
            }
        }
    }
    if hc.uts_mode == "host" {
        // The host's name: runc sets none without a UTS namespace.
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Uts);
        s.set_hostname(None);
    }
    if hc.network_mode == "host" {
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    } else if !rec.state.sandbox.is_empty() {
        // The namespace berthd prepared (bridge networks) or another
        // container's (`--network container:`).
        for n in namespaces
            .iter_mut()
            .filter(|n| n.typ() == LinuxNamespaceType::Network)
        {
            n.set_path(Some(rec.state.sandbox.clone().into()));
        }
    }
    linux.set_namespaces(Some(namespaces));
    set_resources(&mut resources, hc);
    linux.set_resources(Some(resources));
    s.set_linux(Some(linux));
    let rl = rlimits(hc, c.cfg)?;
    if !rl.is_empty() {
        if let Some(p) = s.process_mut() {
            p.set_rlimits(Some(rl));
        }
    }
    Ok(s)
}

/// The cgroup limits of a container's `HostConfig` over `r` (the runtime
/// spec's, or nothing for `docker update`).
pub fn set_resources(r: &mut LinuxResources, hc: &HostConfig) {
    let hc = &hc.resources;
    let mut memory = LinuxMemory::default();
    let mut any_memory = false;
    if hc.memory > 0 {
        let sw = match hc.memory_swap {
            0 => hc.memory * 2,
            -1 => -1,
            s => s,
        };
        memory.set_limit(Some(hc.memory)).set_swap(Some(sw));
        any_memory = true;
    }
    if hc.memory_reservation > 0 {
        memory.set_reservation(Some(hc.memory_reservation));
        any_memory = true;
    }
    if hc.oom_kill_disable == Some(true) {
        memory.set_disable_oom_killer(Some(true));
        any_memory = true;
    }
    if any_memory {
        r.set_memory(Some(memory));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if hc.cpu_shares > 0 {
        cpu.set_shares(Some(hc.cpu_shares as u64));
        any_cpu = true;
    }
    if hc.nano_cpus > 0 {
        let period = 100_000u64;
        cpu.set_period(Some(period))
            .set_quota(Some(hc.nano_cpus * period as i64 / 1_000_000_000));
        any_cpu = true;
    } else {
        if hc.cpu_period > 0 {
            cpu.set_period(Some(hc.cpu_period as u64));
            any_cpu = true;
        }
        if hc.cpu_quota > 0 {
            cpu.set_quota(Some(hc.cpu_quota));
            any_cpu = true;
        }
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(hc.cpuset_cpus.clone()));
        any_cpu = true;
    }
    if !hc.cpuset_mems.is_empty() {
        cpu.set_mems(Some(hc.cpuset_mems.clone()));
        any_cpu = true;
    }
    if any_cpu {
        r.set_cpu(Some(cpu));
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if hc.blkio_weight > 0 {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(hc.blkio_weight));
        r.set_block_io(Some(b));
    }
}

/// `docker update`'s resources as the shim hands them to `runc update`.
pub fn update_resources(hc: &HostConfig) -> Value {
    let mut r = LinuxResources::default();
    r.set_devices(None);
    set_resources(&mut r, hc);
    serde_json::to_value(&r).unwrap_or_else(|_| json!({}))
}

/// `default-ulimits` overridden per name by `--ulimit`. None by default:
/// the container inherits the shim's limits (never above them: root here
/// may lack CAP_SYS_RESOURCE).
fn rlimits(hc: &HostConfig, cfg: &DaemonConfig) -> Result<Vec<PosixRlimit>, String> {
    let mut m: std::collections::BTreeMap<String, (i64, i64)> = cfg
        .default_ulimits
        .iter()
        .map(|(k, u)| (k.clone(), (u.hard, u.soft)))
        .collect();
    for u in hc
        .resources
        .ulimits
        .iter()
        .flatten()
        .filter(|u| !u.name.is_empty())
    {
        m.insert(u.name.clone(), (u.hard, u.soft));
    }
    m.into_iter()
        .map(|(n, (h, s))| {
            let name = format!("RLIMIT_{}", n.to_ascii_uppercase());
            let typ: PosixRlimitType = serde_json::from_value(Value::String(name))
                .map_err(|_| format!("invalid ulimit type: {n}"))?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .hard(h as u64)
                .soft(s as u64)
                .build()
                .map_err(|e| e.to_string())
        })
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

/// A process's environment as dockerd builds it (`CreateDaemonEnvironment`
/// then `ReplaceOrAppendEnvValues`): `PATH`, `HOSTNAME` and, with a TTY,
/// `TERM=xterm` first; the container's variables, then an exec's, replace
/// those of the same name or are appended; a name without `=` removes the
/// variable (`docker run -e V` with V unset in the client's environment).
pub fn process_env(
    hostname: &str,
    tty: bool,
    links: &[String],
    config: &[String],
    exec: &[String],
) -> Vec<String> {
    let mut env = vec![
        spec::DEFAULT_PATH.to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    // Legacy links' variables, then the container's over them (dockerd).
    replace_or_append(&mut env, links);
    replace_or_append(&mut env, config);
    replace_or_append(&mut env, exec);
    env
}

fn replace_or_append(env: &mut Vec<String>, overrides: &[String]) {
    let key = |e: &str| e.split_once('=').map(|(k, _)| k.to_string());
    for v in overrides {
        match key(v) {
            None => env.retain(|e| key(e).as_deref() != Some(v.as_str())),
            Some(k) => match env.iter().position(|e| key(e).as_deref() == Some(&k)) {
                Some(i) => env[i] = v.clone(),
                None => env.push(v.clone()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn process_env_as_dockerd_builds_it() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            process_env("h1", false, &[], &s(&["A=1", "PATH=/bin"]), &[]),
            s(&["PATH=/bin", "HOSTNAME=h1", "A=1"])
        );
        // A bare name unsets, the exec's variables come last.
        assert_eq!(
            process_env(
                "h1",
                true,
                &s(&["DB_NAME=/p/db"]),
                &s(&["V", "A=1", "HOSTNAME"]),
                &s(&["A=2", "TERM"])
            ),
            s(&[spec::DEFAULT_PATH, "DB_NAME=/p/db", "A=2"])
        );
    }

    #[test]
    fn capability_arithmetic() {
        let c = capabilities(&hc(
            json!({"CapAdd": ["sys_admin"], "CapDrop": ["CHOWN", "cap_kill"]}),
        ))
        .unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
        assert_eq!(
            capabilities(&hc(json!({"CapDrop": ["ALL"], "CapAdd": ["NET_RAW"]}))).unwrap(),
            vec!["CAP_NET_RAW"]
        );
        assert_eq!(
            capabilities(&hc(json!({"Privileged": true}))).unwrap(),
            host_capabilities()
        );
        assert!(host_capabilities().contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(capabilities(&hc(json!({"CapAdd": ["CAP_NOPE"]})))
            .unwrap_err()
            .contains("CAP_NOPE"));
    }

    #[test]
    fn resources() {
        let r = update_resources(&hc(
            json!({"Memory": 33554432, "NanoCpus": 1500000000i64, "PidsLimit": 10, "CpuShares": 512}),
        ));
        assert!(
            r.get("devices").is_none(),
            "an update leaves the devices alone"
        );
        assert_eq!(r["memory"]["limit"], 33554432);
        assert_eq!(r["memory"]["swap"], 67108864);
        assert_eq!(r["cpu"]["quota"], 150000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 10);
    }
}
