//! Configuration: dockerd's flags and `daemon.json`, merged into one typed
//! [`DaemonConfig`], validated, and reloaded on SIGHUP.

mod flags;
pub mod hosts;
mod model;
pub mod reload;
pub mod units;
mod validate;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use flags::Flags;
pub use hosts::ListenAddr;
pub use model::*;

/// Why a configuration was refused. Every message names the key and value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unable to configure the Docker daemon with file {file}: {reason}")]
    File { file: String, reason: String },
    #[error("unable to configure the Docker daemon with file {file}: the following directives don't match any configuration option: {keys}")]
    UnknownKeys { file: String, keys: String },
    #[error("unable to configure the Docker daemon with file {file}: the following directives are specified both as a flag and in the configuration file: {conflicts}")]
    Conflict { file: String, conflicts: String },
    #[error("invalid value for flag --{flag}: {value:?}: {reason}")]
    InvalidFlag {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("invalid value for {key}: {value}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// A configuration that passed validation, with the warnings it implies.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: DaemonConfig,
    /// Startup warnings (also shown in `docker info`).
    pub warnings: Vec<String>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// Load and validate: flags, then the file, merged.
pub fn load(flags: &Flags) -> Result<Loaded, ConfigError> {
    let flag_map = flags.to_json()?;
    let (file, file_map) = read_file(flags.config_file.as_deref())?;
    let file_name = file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_string());
    merge_and_validate(&file_name, flag_map, file_map).map(|(config, warnings)| Loaded {
        config,
        warnings,
        file,
    })
}

/// Read the config file: an explicit one must exist, the default may not.
fn read_file(
    explicit: Option<&Path>,
) -> Result<(Option<PathBuf>, Map<String, Value>), ConfigError> {
    let path = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((None, Map::new()))
        }
        Err(e) => {
            return Err(ConfigError::File {
                file: path.display().to_string(),
                reason: format!("open {}: {e}", path.display()),
            })
        }
    };
    let map = parse_file_text(&path.display().to_string(), &text)?;
    Ok((Some(path), map))
}

/// Parse the file's text into a JSON object (an empty file is `{}`).
pub fn parse_file_text(file: &str, text: &str) -> Result<Map<String, Value>, ConfigError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ConfigError::File {
            file: file.into(),
            reason: "the configuration must be a JSON object".into(),
        }),
        Err(e) => Err(ConfigError::File {
            file: file.into(),
            reason: e.to_string(),
        }),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The heart of loading, shared by startup, `--validate` and SIGHUP reload.
pub fn merge_and_validate(
    file: &str,
    flag_map: Map<String, Value>,
    file_map: Map<String, Value>,
) -> Result<(DaemonConfig, Vec<String>), ConfigError> {
    let known = known_keys();
    let mut unknown: Vec<&str> = file_map
        .keys()
        .filter(|k| !known.iter().any(|n| n == *k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(ConfigError::UnknownKeys {
            file: file.into(),
            keys: unknown.join(", "),
        });
    }
    let mut conflicts: Vec<String> = flag_map
        .iter()
        .filter_map(|(k, fv)| {
            file_map
                .get(k)
                .map(|v| format!("{k}: (from flag: {}, from file: {})", show(fv), show(v)))
        })
        .collect();
    if !conflicts.is_empty() {
        conflicts.sort();
        return Err(ConfigError::Conflict {
            file: file.into(),
            conflicts: conflicts.join(", "),
        });
    }
    let mut merged = file_map;
    merged.extend(flag_map);
    let config = typed(&merged)?;
    let warnings = validate::validate(&config)?;
    Ok((config, warnings))
}

/// Deserialize, naming the key whose value has the wrong type.
fn typed(merged: &Map<String, Value>) -> Result<DaemonConfig, ConfigError> {
    match serde_json::from_value::<DaemonConfig>(Value::Object(merged.clone())) {
        Ok(c) => Ok(c),
        Err(whole) => {
            for (k, v) in merged {
                let mut one = Map::new();
                one.insert(k.clone(), v.clone());
                if let Err(e) = serde_json::from_value::<DaemonConfig>(Value::Object(one)) {
                    return Err(ConfigError::InvalidValue {
                        key: k.clone(),
                        value: v.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
            Err(ConfigError::InvalidValue {
                key: "configuration".into(),
                value: String::new(),
                reason: whole.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn check(file: Value) -> Result<(DaemonConfig, Vec<String>), ConfigError> {
        merge_and_validate("/f.json", Map::new(), obj(file))
    }

    #[test]
    fn every_listed_option_is_known() {
        let keys = known_keys();
        for k in [
            "allow-nondistributable-artifacts",
            "api-cors-header",
            "authorization-plugins",
            "bip",
            "bridge",
            "cgroup-parent",
            "cluster-advertise",
            "cluster-store",
            "cluster-store-opts",
            "containerd",
            "containerd-namespace",
            "containerd-plugin-namespace",
            "data-root",
            "debug",
            "default-address-pools",
            "default-cgroupns-mode",
            "default-gateway",
            "default-gateway-v6",
            "default-runtime",
            "default-shm-size",
            "default-ulimits",
            "dns",
            "dns-opts",
            "dns-search",
            "exec-opts",
            "exec-root",
            "experimental",
            "features",
            "fixed-cidr",
            "fixed-cidr-v6",
            "group",
            "hosts",
            "icc",
            "init",
            "init-path",
            "insecure-registries",
            "ip",
            "ip-forward",
            "ip-masq",
            "iptables",
            "ip6tables",
            "ipv6",
            "labels",
            "live-restore",
            "log-driver",
            "log-level",
            "log-opts",
            "max-concurrent-downloads",
            "max-concurrent-uploads",
            "max-download-attempts",
            "mtu",
            "no-new-privileges",
            "node-generic-resources",
            "oom-score-adjust",
            "pidfile",
            "raw-logs",
            "registry-mirrors",
            "runtimes",
            "seccomp-profile",
            "selinux-enabled",
            "shutdown-timeout",
            "storage-driver",
            "storage-opts",
            "swarm-default-advertise-addr",
            "tls",
            "tlscacert",
            "tlscert",
            "tlskey",
            "tlsverify",
            "userland-proxy",
            "userland-proxy-path",
            "userns-remap",
            // dockerd after 20.10
            "allow-direct-routing",
            "bip6",
            "builder",
            "cdi-spec-dirs",
            "cpu-rt-period",
            "cpu-rt-runtime",
            "cri-containerd",
            "default-init",
            "default-ipc-mode",
            "default-network-opts",
            "firewall-backend",
            "host-gateway-ip",
            "host-gateway-ips",
            "ip-forward-no-drop",
            "log-format",
            "metrics-addr",
            "network-control-plane-mtu",
            "network-diagnostic-port",
            "proxies",
            "resolv-conf",
            "rootless",
            "swarm-raft-election-tick",
            "swarm-raft-heartbeat-tick",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing");
        }
        assert_eq!(keys.len(), 95, "no option beyond the documented ones");
    }

    #[test]
    fn unknown_keys_are_refused_with_dockerds_message() {
        let e = check(json!({"debug": true, "zeta": 1, "alpha": 2})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to configure the Docker daemon with file /f.json: the following directives don't match any configuration option: alpha, zeta"
        );
    }

    #[test]
    fn flag_and_file_conflict_names_both_values() {
        let e = merge_and_validate(
            "/f.json",
            obj(json!({"debug": true})),
            obj(json!({"debug": false})),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to configure the Docker daemon with file /f.json: the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false)"
        );
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            (json!({"bip": "10.0.0.1/99"}), "bip"),
            (json!({"fixed-cidr": "nope"}), "fixed-cidr"),
            (json!({"default-shm-size": "64Q"}), "default-shm-size"),
            (json!({"log-level": "loud"}), "log-level"),
            (
                json!({"max-concurrent-downloads": -1}),
                "max-concurrent-downloads",
            ),
            (json!({"max-download-attempts": 0}), "max-download-attempts"),
            (json!({"runtimes": {"mine": {}}}), "runtimes"),
            (json!({"mtu": "big"}), "mtu"),
            (
                json!({"default-address-pools": [{"base": "10.0.0.0/8", "size": 4}]}),
                "default-address-pools",
            ),
            (json!({"hosts": ["udp://x"]}), "hosts"),
            (json!({"default-runtime": "nope"}), "default-runtime"),
            (json!({"storage-driver": "zfs"}), "storage-driver"),
            (json!({"oom-score-adjust": 5000}), "oom-score-adjust"),
            (json!({"dns": ["1.2.3"]}), "dns"),
            (
                json!({"dns-search": ["a.com\nnameserver 6.6.6.6"]}),
                "dns-search",
            ),
            (
                json!({"dns-opts": ["ndots:1\nnameserver 6.6.6.6"]}),
                "dns-opts",
            ),
            (json!({"log-opts": {"max-size": "1Q"}}), "log-opts"),
        ];
        for (file, key) in cases {
            let e = check(file.clone()).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid value for {key}: ")),
                "{file}: {e}"
            );
        }
        let e = check(json!({"default-shm-size": "64Q"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("64Q"), "{e}");
    }

    #[test]
    fn defaults_and_good_values_pass() {
        let (c, w) = check(json!({
            "bip": "172.30.0.1/16", "fixed-cidr": "172.30.0.0/24", "default-shm-size": "128m",
            "runtimes": {"mine": {"path": "/usr/bin/runc", "runtimeArgs": ["--debug"]}},
            "default-runtime": "mine", "log-opts": {"max-size": "10m", "max-file": "3"},
            "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
            "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
            "labels": ["a=b"], "insecure-registries": ["10.0.0.0/8", "myreg:5000"]
        }))
        .unwrap();
        assert_eq!(c.default_shm_bytes(), 128 << 20);
        assert!(w.is_empty(), "{w:?}");
        let (c, _) = check(json!({})).unwrap();
        assert_eq!(c, DaemonConfig::default());
    }

    #[test]
    fn seccomp_profiles_are_translated_to_validate_them() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good.json");
        std::fs::write(&good, crate::sys::runtime::seccomp::DEFAULT_PROFILE).unwrap();
        assert!(check(json!({"seccomp-profile": good.to_str().unwrap()})).is_ok());
        let bad = d.path().join("bad.json");
        std::fs::write(&bad, r#"{"defaultAction": 3}"#).unwrap();
        let e = check(json!({"seccomp-profile": bad.to_str().unwrap()}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid value for seccomp-profile:")
                && e.contains("invalid seccomp profile"),
            "{e}"
        );
        assert!(check(json!({"seccomp-profile": "/nonexistent/profile.json"})).is_err());
        assert!(check(json!({"seccomp-profile": "unconfined"})).is_ok());
    }

    #[test]
    fn unused_options_warn() {
        let (_, w) =
            check(json!({"containerd": "/run/containerd.sock", "containerd-namespace": "x"}))
                .unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn cluster_options_are_checked() {
        let ok = check(json!({
            "cluster-store": "etcd://10.1.0.1:2379,10.1.0.2:2379",
            "cluster-advertise": "eth0:2376",
            "cluster-store-opts": {"discovery.ttl": "20"},
        }));
        assert!(ok.is_ok(), "{ok:?}");
        let tls = check(json!({
            "cluster-store": "etcd+tls://h:2379",
            "cluster-advertise": "10.1.0.5:2376",
            "cluster-store-opts": {"kv.cacertfile": "/ca.pem", "kv.certfile": "/c.pem", "kv.keyfile": "/k.pem"},
        }));
        assert!(tls.is_ok(), "{tls:?}");
        for (bad, key, why) in [
            (
                json!({"cluster-store": "consul://x:8500", "cluster-advertise": "eth0:2376"}),
                "cluster-store",
                "supports etcd",
            ),
            (
                json!({"cluster-store": "etcd://h:2379"}),
                "cluster-advertise",
                "required",
            ),
            (
                json!({"cluster-store": "etcd://h", "cluster-advertise": "eth0:2376"}),
                "cluster-store",
                "host:port",
            ),
            (
                json!({"cluster-store": "etcd://h:1", "cluster-advertise": "eth0"}),
                "cluster-advertise",
                "<port>",
            ),
            (
                json!({"cluster-store": "etcd://h:1", "cluster-advertise": "[::1]:2376"}),
                "cluster-advertise",
                "IPv4",
            ),
            (
                json!({"cluster-advertise": "eth0:2376"}),
                "cluster-advertise",
                "needs cluster-store",
            ),
            (
                json!({"cluster-store": "etcd://h:1", "cluster-advertise": "e:1", "cluster-store-opts": {"kv.cacertfile": "/ca"}}),
                "cluster-store",
                "etcd+tls",
            ),
            (
                json!({"cluster-store": "etcd://h:1", "cluster-advertise": "e:1", "cluster-store-opts": {"kv.bogus": "1"}}),
                "cluster-store",
                "unknown",
            ),
        ] {
            match check(bad.clone()) {
                Err(ConfigError::InvalidValue { key: k, reason, .. }) => {
                    assert_eq!(k, key, "{bad}");
                    assert!(reason.contains(why), "{bad}: {reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn flags_map_to_file_keys() {
        use clap::Parser;
        let f = Flags::try_parse_from([
            "berthd",
            "-D",
            "--tls=false",
            "--add-runtime",
            "crun=/usr/bin/crun",
            "--log-opt",
            "max-size=1m",
            "--default-ulimit",
            "nofile=10:20",
            "--default-address-pool",
            "base=10.0.0.0/8,size=24",
            "-H",
            "unix:///tmp/s",
            "--label",
            "a=b",
            "--max-concurrent-downloads",
            "-1",
        ])
        .unwrap();
        let m = f.to_json().unwrap();
        assert_eq!(m["debug"], json!(true));
        assert_eq!(m["tls"], json!(false));
        assert_eq!(m["runtimes"], json!({"crun": {"path": "/usr/bin/crun"}}));
        assert_eq!(m["log-opts"], json!({"max-size": "1m"}));
        assert_eq!(
            m["default-ulimits"],
            json!({"nofile": {"Name": "nofile", "Soft": 10, "Hard": 20}})
        );
        assert_eq!(
            m["default-address-pools"],
            json!([{"base": "10.0.0.0/8", "size": 24}])
        );
        assert_eq!(m["hosts"], json!(["unix:///tmp/s"]));
        assert_eq!(m["labels"], json!(["a=b"]));
        assert!(!m.contains_key("iptables"));
        let e = merge_and_validate("/f", m, Map::new()).unwrap_err();
        assert!(e.to_string().contains("max-concurrent-downloads"), "{e}");
    }
}
