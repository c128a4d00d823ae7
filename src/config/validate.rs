//! Value checks for a merged configuration. Each refusal names the key and
//! the value; options berth accepts but does not use produce warnings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::hosts::ListenAddr;
use super::units::parse_size;
use super::{ConfigError, DaemonConfig};

fn bad(key: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn cidr(key: &str, s: &str) -> Result<IpNet, ConfigError> {
    s.parse::<IpNet>()
        .map_err(|_| bad(key, s, "not a CIDR address (like 172.17.0.1/16)"))
}

fn non_negative(key: &str, v: i64) -> Result<(), ConfigError> {
    if v < 0 {
        return Err(bad(key, v, "must not be negative"));
    }
    Ok(())
}

const LOG_LEVELS: &[&str] = &[
    "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic",
];
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
];
pub fn validate(c: &DaemonConfig) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();

    if !LOG_LEVELS.contains(&c.log_level.as_str()) {
        return Err(bad(
            "log-level",
            &c.log_level,
            "must be one of debug, info, warn, error, fatal",
        ));
    }
    if !c.bip.is_empty() {
        let n = cidr("bip", &c.bip)?;
        if !n.addr().is_ipv4() {
            return Err(bad("bip", &c.bip, "must be an IPv4 address with prefix"));
        }
        if !c.bridge.is_empty() {
            return Err(bad("bip", &c.bip, "bip and bridge are mutually exclusive"));
        }
    }
    if !c.fixed_cidr.is_empty() && !cidr("fixed-cidr", &c.fixed_cidr)?.addr().is_ipv4() {
        return Err(bad("fixed-cidr", &c.fixed_cidr, "must be an IPv4 subnet"));
    }
    if !c.fixed_cidr_v6.is_empty() && !cidr("fixed-cidr-v6", &c.fixed_cidr_v6)?.addr().is_ipv6() {
        return Err(bad(
            "fixed-cidr-v6",
            &c.fixed_cidr_v6,
            "must be an IPv6 subnet",
        ));
    }
    if !c.default_gateway.is_empty() && c.default_gateway.parse::<Ipv4Addr>().is_err() {
        return Err(bad(
            "default-gateway",
            &c.default_gateway,
            "not an IPv4 address",
        ));
    }
    if !c.default_gateway_v6.is_empty() && c.default_gateway_v6.parse::<Ipv6Addr>().is_err() {
        return Err(bad(
            "default-gateway-v6",
            &c.default_gateway_v6,
            "not an IPv6 address",
        ));
    }
    if c.ip.parse::<IpAddr>().is_err() {
        return Err(bad("ip", &c.ip, "not an IP address"));
    }
    for d in &c.dns {
        if d.parse::<IpAddr>().is_err() {
            return Err(bad("dns", d, "not an IP address"));
        }
    }
    for d in &c.dns_search {
        crate::containers::etc_values::check_dns_search(d)
            .map_err(|_| bad("dns-search", d, "not a valid domain"))?;
    }
    for o in &c.dns_opts {
        crate::containers::etc_values::check_dns_option(o)
            .map_err(|_| bad("dns-opts", o, "not one resolver option"))?;
    }
    for p in &c.default_address_pools {
        let n = cidr("default-address-pools", &p.base)?;
        let max = if n.addr().is_ipv4() { 32 } else { 128 };
        if p.size < i64::from(n.prefix_len()) || p.size > max {
            return Err(bad(
                "default-address-pools",
                format!("base={},size={}", p.base, p.size),
                format!(
                    "size must be between the base's prefix length ({}) and {max}",
                    n.prefix_len()
                ),
            ));
        }
    }
    match c.default_cgroupns_mode.as_str() {
        "" | "host" | "private" => {}
        other => {
            return Err(bad(
                "default-cgroupns-mode",
                other,
                "must be \"host\" or \"private\"",
            ))
        }
    }
    match parse_size(&c.default_shm_size) {
        Some(n) if n > 0 => {}
        _ => {
            return Err(bad(
                "default-shm-size",
                &c.default_shm_size,
                "not a size (like 64M)",
            ))
        }
    }
    for (name, u) in &c.default_ulimits {
        if !ULIMITS.contains(&name.as_str()) {
            return Err(bad("default-ulimits", name, "unknown ulimit name"));
        }
        if u.soft < -1 || u.hard < -1 || (u.hard >= 0 && u.soft > u.hard) {
            return Err(bad(
                "default-ulimits",
                format!("{name}={}:{}", u.soft, u.hard),
                "soft limit must not exceed the hard limit",
            ));
        }
    }
    for o in &c.exec_opts {
        match o.split_once('=') {
            Some(("native.cgroupdriver", "cgroupfs")) => {}
            Some(("native.cgroupdriver", v)) => {
                return Err(bad(
                    "exec-opts",
                    o,
                    format!("cgroup driver {v:?} is not supported (berth uses cgroupfs)"),
                ))
            }
            _ => return Err(bad("exec-opts", o, "unknown exec option")),
        }
    }
    for (key, v) in [
        ("max-concurrent-downloads", c.max_concurrent_downloads),
        ("max-concurrent-uploads", c.max_concurrent_uploads),
        ("mtu", c.mtu),
        ("shutdown-timeout", c.shutdown_timeout),
    ] {
        non_negative(key, v)?;
    }
    if c.max_download_attempts <= 0 {
        return Err(bad(
            "max-download-attempts",
            c.max_download_attempts,
            "must be at least 1",
        ));
    }
    if c.mtu > 65535 {
        return Err(bad("mtu", c.mtu, "must be at most 65535"));
    }
    if !(-1000..=1000).contains(&c.oom_score_adjust) {
        return Err(bad(
            "oom-score-adjust",
            c.oom_score_adjust,
            "must be between -1000 and 1000",
        ));
    }
    for (name, rt) in &c.runtimes {
        if name == "runc" {
            return Err(bad("runtimes", name, "runtime name 'runc' is reserved"));
        }
        if rt.path.is_empty() {
            return Err(bad("runtimes", name, "a runtime needs a path"));
        }
    }
    if c.default_runtime != "runc" && !c.runtimes.contains_key(&c.default_runtime) {
        return Err(bad(
            "default-runtime",
            &c.default_runtime,
            "no such runtime in runtimes",
        ));
    }
    match c.storage_driver.as_str() {
        "" | "overlay2" | "overlay" | "vfs" => {}
        other => {
            return Err(bad(
                "storage-driver",
                other,
                "driver not supported (berth offers overlay2 and vfs)",
            ))
        }
    }
    // dockerd checks the default log configuration at start with the
    // same rules as a container's.
    let opts = &c.log_opts;
    if let Err(e) = crate::logdrivers::validate(&c.log_driver, opts) {
        let what = if e.starts_with("error looking up logging plugin") {
            ("log-driver", c.log_driver.clone())
        } else {
            ("log-opts", format!("{opts:?}"))
        };
        return Err(bad(what.0, what.1, e));
    }
    let tls = c.tls_enabled();
    for h in &c.hosts {
        ListenAddr::parse(h, tls).map_err(|e| bad("hosts", h, e))?;
    }
    for l in &c.labels {
        if !l.contains('=') {
            return Err(bad("labels", l, "labels must be key=value"));
        }
    }
    for r in c
        .insecure_registries
        .iter()
        .chain(&c.allow_nondistributable_artifacts)
    {
        if r.contains("://") || r.is_empty() {
            return Err(bad(
                "insecure-registries",
                r,
                "must be host[:port] or a CIDR, without scheme",
            ));
        }
        if r.contains('/') && r.parse::<IpNet>().is_err() {
            return Err(bad("insecure-registries", r, "not a CIDR"));
        }
    }
    for m in &c.registry_mirrors {
        if !(m.starts_with("http://") || m.starts_with("https://")) {
            return Err(bad(
                "registry-mirrors",
                m,
                "mirror must start with http:// or https://",
            ));
        }
    }
    for r in &c.node_generic_resources {
        if !r.contains('=') {
            return Err(bad("node-generic-resources", r, "must be NAME=VALUE"));
        }
    }
    match c.seccomp_profile.as_str() {
        "" | "builtin" | "unconfined" => {}
        path => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad("seccomp-profile", path, format!("cannot read: {e}")))?;
            let caps: Vec<String> = crate::sys::runtime::DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect();
            let target = crate::sys::runtime::seccomp::Target {
                goarch: "amd64",
                capabilities: &caps,
                kernel: (6, 0),
            };
            crate::sys::runtime::seccomp::translate(&text, &target)
                .map_err(|e| bad("seccomp-profile", path, e))?;
        }
    }
    if !c.userns_remap.is_empty() {
        return Err(bad(
            "userns-remap",
            &c.userns_remap,
            "user namespace remapping is not supported by berth yet",
        ));
    }
    for p in &c.authorization_plugins {
        if p.is_empty() || p.contains('/') || p == "." || p == ".." {
            return Err(bad(
                "authorization-plugins",
                p,
                "a plugin name is one path component",
            ));
        }
    }
    if !c.data_root.starts_with('/') {
        return Err(bad("data-root", &c.data_root, "must be an absolute path"));
    }
    if !c.exec_root.starts_with('/') {
        return Err(bad("exec-root", &c.exec_root, "must be an absolute path"));
    }

    for (key, set) in [
        ("containerd", !c.containerd.is_empty()),
        ("containerd-namespace", !c.containerd_namespace.is_empty()),
        (
            "containerd-plugin-namespace",
            !c.containerd_plugin_namespace.is_empty(),
        ),
    ] {
        if set {
            warnings.push(format!(
                "WARNING: {key} is ignored: berth runs no containerd"
            ));
        }
    }
    crate::cluster::check(c).map_err(|(k, v, e)| bad(k, v, e))?;
    if !c.swarm_default_advertise_addr.is_empty() {
        warnings.push(
            "WARNING: swarm-default-advertise-addr is ignored: berth has no swarm mode".into(),
        );
    }
    check_newer_options(c, &mut warnings)?;
    if c.selinux_enabled {
        warnings.push(
            "WARNING: selinux-enabled is set but berth does not label containers with SELinux"
                .into(),
        );
    }
    Ok(warnings)
}

/// Options of dockerd releases newer than 20.10: checked as dockerd checks
/// them; those berth does not apply are named in a warning (`docker info`
/// shows it), never a refusal to start.
fn check_newer_options(c: &DaemonConfig, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if !matches!(c.log_format.as_str(), "" | "text" | "json") {
        return Err(bad("log-format", &c.log_format, "must be text or json"));
    }
    match c.default_ipc_mode.as_str() {
        "" | "private" | "shareable" => {}
        m if matches!(m, "host" | "none") || m.starts_with("container:") => {
            return Err(bad(
                "default-ipc-mode",
                m,
                format!("IPC mode \"{m}\" is not supported as default value; use \"shareable\" or \"private\""),
            ))
        }
        m => {
            return Err(bad(
                "default-ipc-mode",
                m,
                format!("default IPC mode setting ({m}) is invalid; use \"shareable\" or \"private\""),
            ))
        }
    }
    for ip in std::iter::once(&c.host_gateway_ip)
        .filter(|s| !s.is_empty())
        .chain(c.host_gateway_ips.iter())
    {
        if ip.parse::<IpAddr>().is_err() {
            return Err(bad("host-gateway-ip", ip, "not an IP address"));
        }
    }
    if !c.bip6.is_empty() && !cidr("bip6", &c.bip6)?.addr().is_ipv6() {
        return Err(bad("bip6", &c.bip6, "must be an IPv6 address with prefix"));
    }
    if !c.metrics_addr.is_empty() {
        metrics_addr(c)?;
    }
    if !matches!(c.firewall_backend.as_str(), "" | "iptables" | "nftables") {
        return Err(bad(
            "firewall-backend",
            &c.firewall_backend,
            "must be iptables or nftables",
        ));
    }
    for (key, v) in [
        ("cpu-rt-period", c.cpu_rt_period),
        ("cpu-rt-runtime", c.cpu_rt_runtime),
        ("network-control-plane-mtu", c.network_control_plane_mtu),
        ("network-diagnostic-port", c.network_diagnostic_port),
    ] {
        non_negative(key, v)?;
    }
    let p = &c.proxies;
    let unused: Vec<(&str, bool, &str)> = vec![
        ("allow-direct-routing", c.allow_direct_routing, "berth's forward rules do not change with it"),
        ("bip6", !c.bip6.is_empty(), "the default bridge's IPv6 subnet comes from fixed-cidr-v6"),
        ("builder", !c.builder.is_empty(), "berth's builder is the engine's legacy builder (no BuildKit garbage collection or entitlements)"),
        ("cdi-spec-dirs", !c.cdi_spec_dirs.is_empty(), "berth has no CDI devices"),
        ("cpu-rt-period", c.cpu_rt_period != 0, "berth sets no real-time CPU budget on the parent cgroup"),
        ("cpu-rt-runtime", c.cpu_rt_runtime != 0, "berth sets no real-time CPU budget on the parent cgroup"),
        ("cri-containerd", c.cri_containerd, "berth runs no containerd"),
        ("default-init", !c.default_init.is_empty(), "the init binary is init-path"),
        ("default-network-opts", !c.default_network_opts.is_empty(), "new networks get only the options they are created with"),
        ("firewall-backend", !c.firewall_backend.is_empty(), "berth always programs nftables itself"),
        ("ip-forward-no-drop", c.ip_forward_no_drop, "berth's forward rules do not change with it"),
        ("network-control-plane-mtu", c.network_control_plane_mtu != 0, "berth has no swarm mode"),
        ("network-diagnostic-port", c.network_diagnostic_port != 0, "berth has no network diagnostic server"),
        ("proxies", !(p.http_proxy.is_empty() && p.https_proxy.is_empty() && p.no_proxy.is_empty()), "berth uses the HTTP_PROXY, HTTPS_PROXY and NO_PROXY of its own environment"),
        ("resolv-conf", !c.resolv_conf.is_empty(), "containers get the host's /etc/resolv.conf"),
        ("rootless", c.rootless, "berth runs as root"),
        ("swarm-raft-election-tick", c.swarm_raft_election_tick != 0, "berth has no swarm mode"),
        ("swarm-raft-heartbeat-tick", c.swarm_raft_heartbeat_tick != 0, "berth has no swarm mode"),
    ];
    for (key, set, why) in unused {
        if set {
            warnings.push(format!("WARNING: {key} is accepted but not applied: {why}"));
        }
    }
    Ok(())
}

/// `metrics-addr` is `host:port`; the metrics are served without TLS, so
/// an address beyond this host is refused unless TLS was explicitly turned
/// off (`tls: false` or `tlsverify: false`), as the API's listeners are.
fn metrics_addr(c: &DaemonConfig) -> Result<(), ConfigError> {
    let a = &c.metrics_addr;
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| bad("metrics-addr", a, "expected host:port"))?;
    port.parse::<u16>()
        .map_err(|_| bad("metrics-addr", a, "invalid port"))?;
    let listen = ListenAddr::Tcp {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: port.parse().unwrap_or(0),
    };
    let explicitly_off = c.tls == Some(false) || c.tlsverify == Some(false);
    if !listen.is_loopback() && !explicitly_off {
        return Err(bad(
            "metrics-addr",
            a,
            "the metrics would be served without TLS beyond this host; use a loopback address, or --tls=false or --tlsverify=false to serve them anyway",
        ));
    }
    Ok(())
}
