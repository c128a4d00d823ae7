//! The container record: what berthd persists per container, and the
//! source of `docker inspect`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::{Config, HostConfig};
use super::state::Status;

/// Record format version; bump only with a migration.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// Stopped by `docker stop`/`kill` (unless-stopped stays down).
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub shim_pid: i32,
    /// The network namespace file while the container runs.
    #[serde(default)]
    pub sandbox: String,
    /// Its endpoints while it runs, by network name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, crate::network::Endpoint>,
    /// Its legacy links on the default bridge, resolved at start
    /// (`links.rs`): the variables its processes get, its hosts lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_hosts: Vec<String>,
    /// `--ipc container:X` / `--pid container:X`: X's process while this
    /// run started (its namespaces, and its /dev/shm, are joined).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ipc_donor_pid: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pid_donor_pid: i32,
    /// `State.Health`: the last report of the shim's healthcheck (kept
    /// after the exit, as dockerd keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::protocol::shim::Health>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A mount of a container: a volume, a bind mount or a tmpfs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The volume's name (volume mounts).
    #[serde(default)]
    pub name: String,
    /// The host path (bind mounts).
    #[serde(default)]
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// `-v`'s mode string (`ro`, `z`...), as inspect shows it.
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub propagation: String,
    /// Copy the image's content into an empty volume (not `nocopy`).
    #[serde(default)]
    pub copy: bool,
    /// tmpfs options (`size=...,mode=...`).
    #[serde(default)]
    pub tmpfs: String,
    /// `--volumes-from`: the container it came from (its anonymous volume
    /// is not this container's to remove).
    #[serde(default)]
    pub from: String,
    /// `VolumeOptions.Subpath`: the part of the volume mounted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    /// `BindOptions.NonRecursive`: the source's submounts stay out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_recursive: bool,
    /// How a read-only mount is read-only below its submounts: `try`
    /// (recursively where the kernel and runtime can, API 1.44's default),
    /// `force` (`ReadOnlyForceRecursive`: recursively or not at all), or
    /// empty (the mount itself only: older clients, `ReadOnlyNonRecursive`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ro_recursive: String,
}

/// A link as dockerd parses it: `target` or `target:alias`, and the form
/// dockerd itself stores (`/target:/container/alias`).
pub fn parse_link(v: &str) -> Result<(String, String), String> {
    if v.is_empty() {
        return Err("empty string specified for links".into());
    }
    let parts: Vec<&str> = v.split(':').collect();
    match parts[..] {
        [one] => Ok((one.to_string(), one.to_string())),
        [target, alias] if target.starts_with('/') => {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            Ok((target[1..].to_string(), alias.to_string()))
        }
        [target, alias] => Ok((target.to_string(), alias.to_string())),
        _ => Err(format!("bad format for links: {v}")),
    }
}

/// A MAC address as dockerd takes it (`02:42:ac:11:00:02`, also with
/// `-`), in the lower-case colon form; dockerd's message when it is not.
pub fn parse_mac(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(parts.join(":").to_ascii_lowercase())
    } else {
        Err(format!("invalid MAC address {v}"))
    }
}

/// A network a container is configured to join (`--network`, `network
/// connect`): its settings, kept while the container is stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`
    #[serde(default)]
    pub ip: String,
    /// `--ip6`
    #[serde(default)]
    pub ip6: String,
    /// Links on a user-defined network (`target:alias`, as given): the
    /// alias resolves to the target for this container only.
    #[serde(default)]
    pub links: Vec<String>,
    /// `--mac-address` (`EndpointSettings.MacAddress`, or the create's
    /// `Config.MacAddress` for the first network).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub version: u32,
    pub id: String,
    /// With the leading slash, as the API shows it.
    pub name: String,
    pub created: String,
    /// The image ID (`sha256:...`).
    pub image: String,
    /// The image as the user named it (`Config.Image`).
    pub image_name: String,
    /// The API's `Config` (merged with the image's at create).
    #[serde(deserialize_with = "super::config::lenient")]
    pub config: Config,
    /// The API's `HostConfig` (defaults filled in at create).
    #[serde(deserialize_with = "super::config::lenient")]
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: RunState,
    #[serde(default)]
    pub restart_count: u64,
    #[serde(default)]
    pub has_been_started: bool,
    pub driver: String,
    /// The storage driver's directory of the writable layer.
    pub layer: String,
    /// The image's top layer directory (`None` for an empty image).
    #[serde(default)]
    pub image_layer: Option<String>,
    pub log_path: String,
    pub runtime: String,
    #[serde(default)]
    pub hostname_path: String,
    #[serde(default)]
    pub hosts_path: String,
    #[serde(default)]
    pub resolv_conf_path: String,
    /// The networks the container joins when it starts, by name.
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkAttachment>,
    /// Its volumes, bind mounts and tmpfs mounts.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Anything a newer berthd wrote that this one does not know.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ContainerRecord {
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config.labels()
    }

    /// `RestartPolicy` from the host config: name and maximum retries.
    pub fn restart_policy(&self) -> (String, u64) {
        let p = &self.host_config.restart_policy;
        let name = if p.name.is_empty() { "no" } else { &p.name };
        (name.to_string(), p.maximum_retry_count.max(0) as u64)
    }

    /// The log driver (`json-file` for a record without one).
    pub fn log_driver(&self) -> &str {
        match self.host_config.log_config.kind.as_str() {
            "" => "json-file",
            d => d,
        }
    }

    /// The container's own directory (its log files live there).
    pub fn dir(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.log_path)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    }

    /// `LogPath` as dockerd shows it: the json-file's path, else empty.
    pub fn shown_log_path(&self) -> &str {
        if self.log_driver() == "json-file" {
            &self.log_path
        } else {
            ""
        }
    }

    /// The file `docker logs` reads: the json-file, the `local` driver's
    /// file, or a remote driver's dual-logging cache (unless
    /// `cache-disabled`); `None` when the driver keeps nothing readable.
    pub fn log_read_path(&self) -> Option<String> {
        let opt = |k: &str| {
            self.host_config
                .log_config
                .config
                .as_ref()
                .and_then(|c| c.get(k).cloned())
        };
        match self.log_driver() {
            "json-file" => Some(self.log_path.clone()),
            "local" => Some(
                self.dir()
                    .join("local-logs")
                    .join("container.log")
                    .display()
                    .to_string(),
            ),
            "none" => None,
            _ => {
                let disabled = opt("cache-disabled").is_some_and(|v| {
                    matches!(v.as_str(), "1" | "t" | "T" | "TRUE" | "true" | "True")
                });
                (!disabled).then(|| {
                    self.dir()
                        .join("container-cached.log")
                        .display()
                        .to_string()
                })
            }
        }
    }

    pub fn auto_remove(&self) -> bool {
        self.host_config.auto_remove
    }

    pub fn tty(&self) -> bool {
        self.config.tty
    }

    /// The stop signal (`Config.StopSignal`, default SIGTERM) as a name.
    pub fn stop_signal(&self) -> String {
        match self.config.stop_signal.as_str() {
            "" => "SIGTERM".to_string(),
            s => s.to_string(),
        }
    }

    /// `Config.StopTimeout` in seconds (default 10).
    pub fn stop_timeout(&self) -> i64 {
        self.config.stop_timeout.unwrap_or(10)
    }

    /// Event attributes: image, name and the labels.
    pub fn event_attrs(&self) -> BTreeMap<String, String> {
        let mut a = self.labels();
        a.insert("image".into(), self.image_name.clone());
        a.insert("name".into(), self.short_name().to_string());
        a
    }
}
