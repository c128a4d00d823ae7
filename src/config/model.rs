//! The typed daemon configuration: every daemon.json option berth knows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default `data-root`.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
/// Default `exec-root`.
pub const DEFAULT_EXEC_ROOT: &str = "/var/run/berth";
/// Default `pidfile`.
pub const DEFAULT_PIDFILE: &str = "/var/run/berthd.pid";
/// Default config file, as dockerd's.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/docker/daemon.json";
/// Default unix socket, as dockerd's.
pub const DEFAULT_UNIX_SOCKET: &str = "/var/run/docker.sock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    pub base: String,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Hard")]
    pub hard: i64,
    #[serde(rename = "Soft")]
    pub soft: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Runtime {
    #[serde(default)]
    pub path: String,
    #[serde(rename = "runtimeArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `proxies`: the proxies the daemon uses (and hands to builds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
pub struct Proxies {
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
}

/// The whole configuration after flags and file are merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct DaemonConfig {
    pub allow_direct_routing: bool,
    pub allow_nondistributable_artifacts: Vec<String>,
    pub api_cors_header: String,
    pub authorization_plugins: Vec<String>,
    pub bip: String,
    pub bip6: String,
    pub bridge: String,
    /// dockerd's BuildKit settings (`gc`, `entitlements`, `history`).
    pub builder: BTreeMap<String, serde_json::Value>,
    pub cdi_spec_dirs: Vec<String>,
    pub cgroup_parent: String,
    pub cluster_advertise: String,
    pub cluster_store: String,
    pub cluster_store_opts: BTreeMap<String, String>,
    pub containerd: String,
    pub containerd_namespace: String,
    pub containerd_plugin_namespace: String,
    pub cpu_rt_period: i64,
    pub cpu_rt_runtime: i64,
    pub cri_containerd: bool,
    pub data_root: String,
    pub debug: bool,
    pub default_address_pools: Vec<AddressPool>,
    pub default_cgroupns_mode: String,
    pub default_gateway: String,
    pub default_gateway_v6: String,
    pub default_init: String,
    pub default_ipc_mode: String,
    pub default_network_opts: BTreeMap<String, BTreeMap<String, String>>,
    pub default_runtime: String,
    pub default_shm_size: String,
    pub default_ulimits: BTreeMap<String, Ulimit>,
    pub dns: Vec<String>,
    pub dns_opts: Vec<String>,
    pub dns_search: Vec<String>,
    pub exec_opts: Vec<String>,
    pub exec_root: String,
    pub experimental: bool,
    pub features: BTreeMap<String, bool>,
    pub firewall_backend: String,
    pub fixed_cidr: String,
    pub fixed_cidr_v6: String,
    pub group: String,
    pub host_gateway_ip: String,
    pub host_gateway_ips: Vec<String>,
    pub hosts: Vec<String>,
    #[serde(default = "yes")]
    pub icc: bool,
    pub init: bool,
    pub init_path: String,
    pub insecure_registries: Vec<String>,
    pub ip: String,
    #[serde(default = "yes")]
    pub ip_forward: bool,
    pub ip_forward_no_drop: bool,
    #[serde(default = "yes")]
    pub ip_masq: bool,
    #[serde(default = "yes")]
    pub iptables: bool,
    pub ip6tables: bool,
    pub ipv6: bool,
    pub labels: Vec<String>,
    pub live_restore: bool,
    pub log_driver: String,
    pub log_format: String,
    pub log_level: String,
    pub log_opts: BTreeMap<String, String>,
    pub max_concurrent_downloads: i64,
    pub max_concurrent_uploads: i64,
    pub max_download_attempts: i64,
    pub metrics_addr: String,
    pub mtu: i64,
    pub network_control_plane_mtu: i64,
    pub network_diagnostic_port: i64,
    pub no_new_privileges: bool,
    pub node_generic_resources: Vec<String>,
    pub oom_score_adjust: i64,
    pub pidfile: String,
    pub proxies: Proxies,
    pub raw_logs: bool,
    pub registry_mirrors: Vec<String>,
    pub resolv_conf: String,
    pub rootless: bool,
    pub runtimes: BTreeMap<String, Runtime>,
    pub seccomp_profile: String,
    pub selinux_enabled: bool,
    pub shutdown_timeout: i64,
    pub storage_driver: String,
    pub storage_opts: Vec<String>,
    pub swarm_default_advertise_addr: String,
    pub swarm_raft_election_tick: u32,
    pub swarm_raft_heartbeat_tick: u32,
    pub tls: Option<bool>,
    pub tlscacert: String,
    pub tlscert: String,
    pub tlskey: String,
    pub tlsverify: Option<bool>,
    #[serde(default = "yes")]
    pub userland_proxy: bool,
    pub userland_proxy_path: String,
    pub userns_remap: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            allow_direct_routing: false,
            allow_nondistributable_artifacts: vec![],
            api_cors_header: String::new(),
            authorization_plugins: vec![],
            bip: String::new(),
            bip6: String::new(),
            bridge: String::new(),
            builder: BTreeMap::new(),
            cdi_spec_dirs: vec![],
            cgroup_parent: String::new(),
            cluster_advertise: String::new(),
            cluster_store: String::new(),
            cluster_store_opts: BTreeMap::new(),
            containerd: String::new(),
            containerd_namespace: String::new(),
            containerd_plugin_namespace: String::new(),
            cpu_rt_period: 0,
            cpu_rt_runtime: 0,
            cri_containerd: false,
            data_root: DEFAULT_DATA_ROOT.into(),
            debug: false,
            default_address_pools: vec![],
            default_cgroupns_mode: String::new(),
            default_gateway: String::new(),
            default_gateway_v6: String::new(),
            default_init: String::new(),
            default_ipc_mode: String::new(),
            default_network_opts: BTreeMap::new(),
            default_runtime: "runc".into(),
            default_shm_size: "64M".into(),
            default_ulimits: BTreeMap::new(),
            dns: vec![],
            dns_opts: vec![],
            dns_search: vec![],
            exec_opts: vec![],
            exec_root: DEFAULT_EXEC_ROOT.into(),
            experimental: false,
            features: BTreeMap::new(),
            firewall_backend: String::new(),
            fixed_cidr: String::new(),
            fixed_cidr_v6: String::new(),
            group: String::new(),
            host_gateway_ip: String::new(),
            host_gateway_ips: vec![],
            hosts: vec![],
            icc: true,
            init: false,
            init_path: String::new(),
            insecure_registries: vec![],
            ip: "0.0.0.0".into(),
            ip_forward: true,
            ip_forward_no_drop: false,
            ip_masq: true,
            iptables: true,
            ip6tables: false,
            ipv6: false,
            labels: vec![],
            live_restore: false,
            log_driver: "json-file".into(),
            log_format: String::new(),
            log_level: "info".into(),
            log_opts: BTreeMap::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            max_download_attempts: 5,
            metrics_addr: String::new(),
            mtu: 1500,
            network_control_plane_mtu: 0,
            network_diagnostic_port: 0,
            no_new_privileges: false,
            node_generic_resources: vec![],
            oom_score_adjust: 0,
            pidfile: DEFAULT_PIDFILE.into(),
            proxies: Proxies::default(),
            raw_logs: false,
            registry_mirrors: vec![],
            resolv_conf: String::new(),
            rootless: false,
            runtimes: BTreeMap::new(),
            seccomp_profile: String::new(),
            selinux_enabled: false,
            shutdown_timeout: 15,
            storage_driver: String::new(),
            storage_opts: vec![],
            swarm_default_advertise_addr: String::new(),
            swarm_raft_election_tick: 0,
            swarm_raft_heartbeat_tick: 0,
            tls: None,
            tlscacert: String::new(),
            tlscert: String::new(),
            tlskey: String::new(),
            tlsverify: None,
            userland_proxy: true,
            userland_proxy_path: String::new(),
            userns_remap: String::new(),
        }
    }
}

/// Every key a daemon.json may hold.
pub fn known_keys() -> Vec<String> {
    match serde_json::to_value(DaemonConfig::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

impl DaemonConfig {
    /// TLS is on when `tls` or `tlsverify` is true.
    pub fn tls_enabled(&self) -> bool {
        self.tls.unwrap_or(false) || self.tlsverify.unwrap_or(false)
    }

    /// Runtimes offered: runc plus the configured ones.
    pub fn all_runtimes(&self) -> BTreeMap<String, Runtime> {
        let mut m = self.runtimes.clone();
        m.insert(
            "runc".into(),
            Runtime {
                path: "runc".into(),
                runtime_args: vec![],
            },
        );
        m
    }

    /// `default-shm-size` in bytes (validated, so parsing succeeds).
    pub fn default_shm_bytes(&self) -> u64 {
        super::units::parse_size(&self.default_shm_size).unwrap_or(64 << 20)
    }
}
