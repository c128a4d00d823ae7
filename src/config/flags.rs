//! berthd's command line: dockerd's flag names, turned into the same JSON
//! map a `daemon.json` gives so both go through one merge and validation.

use std::path::PathBuf;

use clap::Parser;
use serde_json::{json, Map, Value};

use super::ConfigError;

/// berthd: a container engine that serves the Docker Engine API.
#[derive(Parser, Debug, Clone, Default)]
#[command(name = "berthd", version, about, disable_version_flag = true)]
pub struct Flags {
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Only validate the configuration, then exit
    #[arg(long)]
    pub validate: bool,
    /// Daemon configuration file
    #[arg(long = "config-file", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Testing only: serve POST /_berth/chaos/kill?actor=NAME, which kills an
    /// actor of the tree so supervision can be observed. Never use in production.
    #[arg(long = "testing-chaos-control")]
    pub testing_chaos_control: bool,

    /// Register an additional OCI compatible runtime (name=path)
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    pub add_runtime: Vec<String>,
    /// Allow push of nondistributable artifacts to registry
    #[arg(long = "allow-nondistributable-artifacts")]
    pub allow_nondistributable_artifacts: Vec<String>,
    /// Set CORS headers in the Engine API
    #[arg(long = "api-cors-header")]
    pub api_cors_header: Option<String>,
    /// Authorization plugins to load
    #[arg(long = "authorization-plugin")]
    pub authorization_plugin: Vec<String>,
    /// Attach containers to a network bridge
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// Network bridge IP
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Set parent cgroup for all containers
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Address or interface name to advertise (removed in dockerd; ignored)
    #[arg(long = "cluster-advertise")]
    pub cluster_advertise: Option<String>,
    /// URL of the distributed storage backend (removed in dockerd; ignored)
    #[arg(long = "cluster-store")]
    pub cluster_store: Option<String>,
    /// Set cluster store options (removed in dockerd; ignored)
    #[arg(long = "cluster-store-opt")]
    pub cluster_store_opt: Vec<String>,
    /// containerd grpc address (berth runs no containerd; ignored)
    #[arg(long = "containerd")]
    pub containerd: Option<String>,
    /// containerd namespace (ignored)
    #[arg(long = "containerd-namespace")]
    pub containerd_namespace: Option<String>,
    /// containerd namespace for plugins (ignored)
    #[arg(long = "containerd-plugins-namespace")]
    pub containerd_plugins_namespace: Option<String>,
    /// Root directory of persistent state
    #[arg(long = "data-root")]
    pub data_root: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub debug: Option<bool>,
    /// Default address pools for node specific local networks (base=CIDR,size=N)
    #[arg(long = "default-address-pool")]
    pub default_address_pool: Vec<String>,
    /// Default cgroup namespace mode for containers ("host" or "private")
    #[arg(long = "default-cgroupns-mode")]
    pub default_cgroupns_mode: Option<String>,
    /// Container default gateway IPv4 address
    #[arg(long = "default-gateway")]
    pub default_gateway: Option<String>,
    /// Container default gateway IPv6 address
    #[arg(long = "default-gateway-v6")]
    pub default_gateway_v6: Option<String>,
    /// Default OCI runtime for containers
    #[arg(long = "default-runtime")]
    pub default_runtime: Option<String>,
    /// Default shm size for containers
    #[arg(long = "default-shm-size")]
    pub default_shm_size: Option<String>,
    /// Default ulimits for containers (name=soft[:hard])
    #[arg(long = "default-ulimit")]
    pub default_ulimit: Vec<String>,
    /// DNS server to use
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// DNS options to use
    #[arg(long = "dns-opt")]
    pub dns_opt: Vec<String>,
    /// DNS search domains to use
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Runtime execution options
    #[arg(long = "exec-opt")]
    pub exec_opt: Vec<String>,
    /// Root directory for execution state files
    #[arg(long = "exec-root")]
    pub exec_root: Option<String>,
    /// Enable experimental features
    #[arg(long = "experimental", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub experimental: Option<bool>,
    /// IPv4 subnet for fixed IPs
    #[arg(long = "fixed-cidr")]
    pub fixed_cidr: Option<String>,
    /// IPv6 subnet for fixed IPs
    #[arg(long = "fixed-cidr-v6")]
    pub fixed_cidr_v6: Option<String>,
    /// Group for the unix socket
    #[arg(short = 'G', long = "group")]
    pub group: Option<String>,
    /// Daemon socket(s) to connect to
    #[arg(short = 'H', long = "host")]
    pub host: Vec<String>,
    /// Enable inter-container communication
    #[arg(long = "icc", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub icc: Option<bool>,
    /// Run an init in the container to forward signals and reap processes
    #[arg(long = "init", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<bool>,
    /// Path to the docker-init binary
    #[arg(long = "init-path")]
    pub init_path: Option<String>,
    /// Enable insecure registry communication
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
    /// Default IP when binding container ports
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// Enable net.ipv4.ip_forward
    #[arg(long = "ip-forward", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ip_forward: Option<bool>,
    /// Enable IP masquerading
    #[arg(long = "ip-masq", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ip_masq: Option<bool>,
    /// Enable addition of firewall rules
    #[arg(long = "iptables", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub iptables: Option<bool>,
    /// Enable addition of IPv6 firewall rules
    #[arg(long = "ip6tables", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ip6tables: Option<bool>,
    /// Enable IPv6 networking on the default bridge
    #[arg(long = "ipv6", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// Set key=value labels to the daemon
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Enable live restore of containers when the daemon is down
    #[arg(long = "live-restore", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub live_restore: Option<bool>,
    /// Default driver for container logs
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Default log driver options for containers
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Max concurrent downloads per pull
    #[arg(long = "max-concurrent-downloads", allow_negative_numbers = true)]
    pub max_concurrent_downloads: Option<i64>,
    /// Max concurrent uploads per push
    #[arg(long = "max-concurrent-uploads", allow_negative_numbers = true)]
    pub max_concurrent_uploads: Option<i64>,
    /// Max download attempts per pull
    #[arg(long = "max-download-attempts", allow_negative_numbers = true)]
    pub max_download_attempts: Option<i64>,
    /// Network MTU of the default bridge
    #[arg(long = "mtu", allow_negative_numbers = true)]
    pub mtu: Option<i64>,
    /// Set no-new-privileges by default for new containers
    #[arg(long = "no-new-privileges", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_new_privileges: Option<bool>,
    /// Advertise user-defined resource
    #[arg(long = "node-generic-resource")]
    pub node_generic_resource: Vec<String>,
    /// Set the oom_score_adj for the daemon
    #[arg(long = "oom-score-adjust", allow_negative_numbers = true)]
    pub oom_score_adjust: Option<i64>,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<String>,
    /// Full timestamps without ANSI coloring
    #[arg(long = "raw-logs", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub raw_logs: Option<bool>,
    /// Preferred registry mirror
    #[arg(long = "registry-mirror")]
    pub registry_mirror: Vec<String>,
    /// Path to the seccomp profile ("builtin", "unconfined" or a file)
    #[arg(long = "seccomp-profile")]
    pub seccomp_profile: Option<String>,
    /// Enable selinux support
    #[arg(long = "selinux-enabled", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub selinux_enabled: Option<bool>,
    /// Default shutdown timeout in seconds
    #[arg(long = "shutdown-timeout", allow_negative_numbers = true)]
    pub shutdown_timeout: Option<i64>,
    /// Storage driver to use
    #[arg(short = 's', long = "storage-driver")]
    pub storage_driver: Option<String>,
    /// Storage driver options
    #[arg(long = "storage-opt")]
    pub storage_opt: Vec<String>,
    /// Swarm default advertise address (berth has no swarm; ignored)
    #[arg(long = "swarm-default-advertise-addr")]
    pub swarm_default_advertise_addr: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long = "tls", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Trust certs signed only by this CA
    #[arg(long = "tlscacert")]
    pub tlscacert: Option<String>,
    /// Path to TLS certificate file
    #[arg(long = "tlscert")]
    pub tlscert: Option<String>,
    /// Path to TLS key file
    #[arg(long = "tlskey")]
    pub tlskey: Option<String>,
    /// Use TLS and verify the remote
    #[arg(long = "tlsverify", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tlsverify: Option<bool>,
    /// Use userland proxy for loopback traffic
    #[arg(long = "userland-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub userland_proxy: Option<bool>,
    /// Path to the userland proxy binary
    #[arg(long = "userland-proxy-path")]
    pub userland_proxy_path: Option<String>,
    /// User/Group setting for user namespaces
    #[arg(long = "userns-remap")]
    pub userns_remap: Option<String>,

    // Options of dockerd releases after 20.10.
    /// Allow remote access to published ports on container IP addresses
    #[arg(long = "allow-direct-routing", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allow_direct_routing: Option<bool>,
    /// Network bridge IPv6 address
    #[arg(long = "bip6")]
    pub bip6: Option<String>,
    /// CDI specification directories to use
    #[arg(long = "cdi-spec-dir")]
    pub cdi_spec_dir: Vec<String>,
    /// Limit the CPU real-time period in microseconds for the parent cgroup
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds for the parent cgroup
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// Default mode for containers ipc ("shareable" | "private")
    #[arg(long = "default-ipc-mode")]
    pub default_ipc_mode: Option<String>,
    /// Default network options (driver=name,key=value)
    #[arg(long = "default-network-opt")]
    pub default_network_opt: Vec<String>,
    /// The firewall backend ("iptables" or "nftables")
    #[arg(long = "firewall-backend")]
    pub firewall_backend: Option<String>,
    /// IP addresses that the special 'host-gateway' string in --add-host resolves to
    #[arg(long = "host-gateway-ip")]
    pub host_gateway_ip: Vec<String>,
    /// HTTP proxy URL to use for outgoing traffic
    #[arg(long = "http-proxy")]
    pub http_proxy: Option<String>,
    /// HTTPS proxy URL to use for outgoing traffic
    #[arg(long = "https-proxy")]
    pub https_proxy: Option<String>,
    /// Do not set the filter-FORWARD policy to DROP when enabling IP forwarding
    #[arg(long = "ip-forward-no-drop", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ip_forward_no_drop: Option<bool>,
    /// Set the logging format ("text"|"json")
    #[arg(long = "log-format")]
    pub log_format: Option<String>,
    /// Set default address and port to serve the metrics api on
    #[arg(long = "metrics-addr")]
    pub metrics_addr: Option<String>,
    /// Network Control plane MTU
    #[arg(long = "network-control-plane-mtu")]
    pub network_control_plane_mtu: Option<i64>,
    /// Comma-separated list of hosts or IP addresses for which the proxy is skipped
    #[arg(long = "no-proxy")]
    pub no_proxy: Option<String>,
    /// Enable rootless mode
    #[arg(long = "rootless", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub rootless: Option<bool>,
}

fn kv(flag: &str, s: &str) -> Result<(String, String), ConfigError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(ConfigError::InvalidFlag {
            flag: flag.to_string(),
            value: s.to_string(),
            reason: "expected key=value".into(),
        }),
    }
}

fn int(flag: &str, s: &str) -> Result<i64, ConfigError> {
    s.trim()
        .parse::<i64>()
        .map_err(|e| ConfigError::InvalidFlag {
            flag: flag.to_string(),
            value: s.to_string(),
            reason: e.to_string(),
        })
}

impl Flags {
    /// The options given on the command line, as daemon.json keys and values.
    pub fn to_json(&self) -> Result<Map<String, Value>, ConfigError> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        macro_rules! opt {
            ($key:literal, $field:expr) => {
                if let Some(v) = &$field {
                    put($key, json!(v));
                }
            };
        }
        macro_rules! list {
            ($key:literal, $field:expr) => {
                if !$field.is_empty() {
                    put($key, json!($field));
                }
            };
        }
        list!(
            "allow-nondistributable-artifacts",
            self.allow_nondistributable_artifacts
        );
        opt!("api-cors-header", self.api_cors_header);
        list!("authorization-plugins", self.authorization_plugin);
        opt!("bridge", self.bridge);
        opt!("bip", self.bip);
        opt!("cgroup-parent", self.cgroup_parent);
        opt!("cluster-advertise", self.cluster_advertise);
        opt!("cluster-store", self.cluster_store);
        opt!("containerd", self.containerd);
        opt!("containerd-namespace", self.containerd_namespace);
        opt!(
            "containerd-plugin-namespace",
            self.containerd_plugins_namespace
        );
        opt!("data-root", self.data_root);
        opt!("debug", self.debug);
        opt!("default-cgroupns-mode", self.default_cgroupns_mode);
        opt!("default-gateway", self.default_gateway);
        opt!("default-gateway-v6", self.default_gateway_v6);
        opt!("default-runtime", self.default_runtime);
        opt!("default-shm-size", self.default_shm_size);
        list!("dns", self.dns);
        list!("dns-opts", self.dns_opt);
        list!("dns-search", self.dns_search);
        list!("exec-opts", self.exec_opt);
        opt!("exec-root", self.exec_root);
        opt!("experimental", self.experimental);
        opt!("fixed-cidr", self.fixed_cidr);
        opt!("fixed-cidr-v6", self.fixed_cidr_v6);
        opt!("group", self.group);
        list!("hosts", self.host);
        opt!("icc", self.icc);
        opt!("init", self.init);
        opt!("init-path", self.init_path);
        list!("insecure-registries", self.insecure_registry);
        opt!("ip", self.ip);
        opt!("ip-forward", self.ip_forward);
        opt!("ip-masq", self.ip_masq);
        opt!("iptables", self.iptables);
        opt!("ip6tables", self.ip6tables);
        opt!("ipv6", self.ipv6);
        list!("labels", self.label);
        opt!("live-restore", self.live_restore);
        opt!("log-driver", self.log_driver);
        opt!("log-level", self.log_level);
        opt!("max-concurrent-downloads", self.max_concurrent_downloads);
        opt!("max-concurrent-uploads", self.max_concurrent_uploads);
        opt!("max-download-attempts", self.max_download_attempts);
        opt!("mtu", self.mtu);
        opt!("no-new-privileges", self.no_new_privileges);
        list!("node-generic-resources", self.node_generic_resource);
        opt!("oom-score-adjust", self.oom_score_adjust);
        opt!("pidfile", self.pidfile);
        opt!("raw-logs", self.raw_logs);
        list!("registry-mirrors", self.registry_mirror);
        opt!("seccomp-profile", self.seccomp_profile);
        opt!("selinux-enabled", self.selinux_enabled);
        opt!("shutdown-timeout", self.shutdown_timeout);
        opt!("storage-driver", self.storage_driver);
        list!("storage-opts", self.storage_opt);
        opt!(
            "swarm-default-advertise-addr",
            self.swarm_default_advertise_addr
        );
        opt!("tls", self.tls);
        opt!("tlscacert", self.tlscacert);
        opt!("tlscert", self.tlscert);
        opt!("tlskey", self.tlskey);
        opt!("tlsverify", self.tlsverify);
        opt!("userland-proxy", self.userland_proxy);
        opt!("userland-proxy-path", self.userland_proxy_path);
        opt!("userns-remap", self.userns_remap);
        opt!("allow-direct-routing", self.allow_direct_routing);
        opt!("bip6", self.bip6);
        list!("cdi-spec-dirs", self.cdi_spec_dir);
        opt!("cpu-rt-period", self.cpu_rt_period);
        opt!("cpu-rt-runtime", self.cpu_rt_runtime);
        opt!("default-ipc-mode", self.default_ipc_mode);
        opt!("firewall-backend", self.firewall_backend);
        list!("host-gateway-ips", self.host_gateway_ip);
        opt!("ip-forward-no-drop", self.ip_forward_no_drop);
        opt!("log-format", self.log_format);
        opt!("metrics-addr", self.metrics_addr);
        opt!("network-control-plane-mtu", self.network_control_plane_mtu);
        opt!("rootless", self.rootless);

        let mut proxies = Map::new();
        for (k, v) in [
            ("http-proxy", &self.http_proxy),
            ("https-proxy", &self.https_proxy),
            ("no-proxy", &self.no_proxy),
        ] {
            if let Some(v) = v {
                proxies.insert(k.into(), json!(v));
            }
        }
        if !proxies.is_empty() {
            m.insert("proxies".into(), Value::Object(proxies));
        }
        if !self.default_network_opt.is_empty() {
            // dockerd's form: `driver=bridge,com.docker.network.driver.mtu=1400`.
            let mut by_driver: Map<String, Value> = Map::new();
            for s in &self.default_network_opt {
                let mut driver = String::new();
                let mut opts = Map::new();
                for part in s.split(',') {
                    let (k, v) = kv("default-network-opt", part)?;
                    if k == "driver" {
                        driver = v;
                    } else {
                        opts.insert(k, json!(v));
                    }
                }
                if driver.is_empty() {
                    return Err(ConfigError::InvalidFlag {
                        flag: "default-network-opt".into(),
                        value: s.clone(),
                        reason: "no driver given (driver=NAME,KEY=VALUE)".into(),
                    });
                }
                let entry = by_driver.entry(driver).or_insert_with(|| json!({}));
                if let Some(o) = entry.as_object_mut() {
                    o.extend(opts);
                }
            }
            m.insert("default-network-opts".into(), Value::Object(by_driver));
        }
        if !self.add_runtime.is_empty() {
            let mut rt = Map::new();
            for s in &self.add_runtime {
                let (name, path) = kv("add-runtime", s)?;
                rt.insert(name, json!({ "path": path }));
            }
            m.insert("runtimes".into(), Value::Object(rt));
        }
        if !self.cluster_store_opt.is_empty() {
            let mut o = Map::new();
            for s in &self.cluster_store_opt {
                let (k, v) = kv("cluster-store-opt", s)?;
                o.insert(k, json!(v));
            }
            m.insert("cluster-store-opts".into(), Value::Object(o));
        }
        if !self.log_opt.is_empty() {
            let mut o = Map::new();
            for s in &self.log_opt {
                let (k, v) = kv("log-opt", s)?;
                o.insert(k, json!(v));
            }
            m.insert("log-opts".into(), Value::Object(o));
        }
        if !self.default_address_pool.is_empty() {
            let mut pools = Vec::new();
            for s in &self.default_address_pool {
                let mut pool = Map::new();
                for part in s.split(',') {
                    let (k, v) = kv("default-address-pool", part)?;
                    match k.as_str() {
                        "base" => pool.insert(k, json!(v)),
                        "size" => pool.insert(k, json!(int("default-address-pool", &v)?)),
                        _ => {
                            return Err(ConfigError::InvalidFlag {
                                flag: "default-address-pool".into(),
                                value: s.clone(),
                                reason: format!("unexpected key {k:?}"),
                            })
                        }
                    };
                }
                pools.push(Value::Object(pool));
            }
            m.insert("default-address-pools".into(), Value::Array(pools));
        }
        if !self.default_ulimit.is_empty() {
            let mut o = Map::new();
            for s in &self.default_ulimit {
                let (name, limits) = kv("default-ulimit", s)?;
                let (soft, hard) = match limits.split_once(':') {
                    Some((a, b)) => (int("default-ulimit", a)?, int("default-ulimit", b)?),
                    None => {
                        let v = int("default-ulimit", &limits)?;
                        (v, v)
                    }
                };
                o.insert(
                    name.clone(),
                    json!({ "Name": name, "Soft": soft, "Hard": hard }),
                );
            }
            m.insert("default-ulimits".into(), Value::Object(o));
        }
        Ok(m)
    }
}
