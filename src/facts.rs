//! Facts about the host that `docker info` and `docker version` report,
//! read once at startup by `sys::host` (they do not change while berthd
//! runs). Plain data: the API renders them.

/// A component's version as `docker version` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentVersion {
    pub version: String,
    pub commit: String,
}

#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel_version: String,
    pub operating_system: String,
    pub os_version: String,
    pub architecture: String,
    pub ncpu: usize,
    pub mem_total: u64,
    pub cgroup_version: String,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs: bool,
    pub cpu_shares: bool,
    pub cpuset: bool,
    pub pids_limit: bool,
    pub oom_kill_disable: bool,
    pub ipv4_forwarding: bool,
    pub bridge_nf_iptables: Option<bool>,
    pub bridge_nf_ip6tables: Option<bool>,
    pub runc: Option<ComponentVersion>,
    pub init: Option<ComponentVersion>,
}
