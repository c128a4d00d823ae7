//! The berth-shim wire protocol (see `docs/shim-protocol.md`).
//!
//! berthd writes a [`ShimConfig`] to `shim.json` in the container's state
//! directory and starts `berth-shim <state dir>`. The shim serves a unix
//! socket, `shim.sock`, in the same directory. On each connection the client
//! sends one [`Request`] as a JSON line and reads one [`Response`] line; the
//! streaming requests (`attach`, `exec`) then carry [`frames`] both ways.
//!
//! The protocol only grows: new requests and new optional fields. Every field
//! added after version 1 must be `#[serde(default)]`, and readers ignore
//! unknown fields, so berthd N+1 adopts the shims of berthd N.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version spoken by this build; a shim reports its own in every response.
pub const PROTOCOL_VERSION: u32 = 1;

/// File names in a container's state directory (under the exec-root).
pub const CONFIG_FILE: &str = "shim.json";
pub const SOCKET_FILE: &str = "shim.sock";
/// The log's counters ([`LogCounts`] as JSON) in the container's
/// directory, rewritten by the shim while they change.
pub const LOG_COUNTS_FILE: &str = "log-counts.json";
pub const EXIT_FILE: &str = "exit.json";
pub const PID_FILE: &str = "shim.pid";
pub const INIT_PID_FILE: &str = "init.pid";
/// The healthcheck's state, rewritten (atomically) after every probe.
pub const HEALTH_FILE: &str = "health.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShimConfig {
    pub version: u32,
    pub id: String,
    /// The OCI bundle directory (holds config.json).
    pub bundle: String,
    /// The runtime binary and its `runtimeArgs`.
    pub runtime: String,
    #[serde(default)]
    pub runtime_args: Vec<String>,
    /// The runtime's `--root` (its state directory).
    pub runtime_root: String,
    /// `None`: the `none` log driver.
    #[serde(default)]
    pub log: Option<LogConfig>,
    #[serde(default)]
    pub tty: bool,
    /// Keep the container's stdin open (`docker run -i`).
    #[serde(default)]
    pub stdin: bool,
    /// Close stdin after the first attached client detaches (`StdinOnce`).
    #[serde(default)]
    pub stdin_once: bool,
    /// The container's memory cgroup directory, read for OOM kills.
    #[serde(default)]
    pub memory_cgroup: Option<String>,
    /// The healthcheck the shim runs while the container runs.
    #[serde(default)]
    pub health: Option<HealthSpec>,
}

/// A healthcheck as the shim runs it: `Config.Healthcheck` with dockerd's
/// defaults applied, and the probe as an OCI process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthSpec {
    /// The OCI `process` object of every probe.
    pub process: serde_json::Value,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    /// Failures while starting inside this period do not count.
    #[serde(default)]
    pub start_period_ns: i64,
    /// The interval while starting inside the start period.
    #[serde(default)]
    pub start_interval_ns: i64,
    /// Consecutive failures that make the container unhealthy.
    pub retries: i64,
    /// The log of the previous run (dockerd keeps it across a restart).
    #[serde(default)]
    pub log: Vec<HealthResult>,
}

/// `State.Health` as the Engine API shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    /// The last results, oldest first.
    pub log: Vec<HealthResult>,
}

/// One probe's result (`HealthcheckResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// What the shim knows of the healthcheck: the state, and where the probes
/// are. `version` grows with every change (a probe starts, a probe ends).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthReport {
    pub version: u64,
    pub health: Health,
    /// Probes that have ended since the shim started.
    pub probes: u64,
    /// The probe that runs now, or the last one: its exec ID and command
    /// (for dockerd's `exec_create`/`exec_start`/`exec_die` events).
    #[serde(default)]
    pub probe_id: String,
    #[serde(default)]
    pub probe_cmd: String,
    /// A probe runs now.
    #[serde(default)]
    pub probing: bool,
}

/// The json-file log driver's options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogConfig {
    pub path: String,
    /// Rotate when the file would exceed this many bytes (0: never).
    #[serde(default)]
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    #[serde(default)]
    pub max_file: u32,
    /// Gzip rotated files.
    #[serde(default)]
    pub compress: bool,
    /// Extra attributes written with every line (`labels`, `env`, `tag`).
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
    /// The driver: `json-file` (also when empty: configs of older
    /// berthds), `local`, `syslog`, `gelf`, `fluentd` or `journald`.
    #[serde(default)]
    pub driver: String,
    /// The driver's own options as the container has them (remote
    /// drivers: addresses, formats, retries).
    #[serde(default)]
    pub opts: BTreeMap<String, String>,
    /// The facts remote drivers send with every entry.
    #[serde(default)]
    pub info: LogInfo,
    /// The dual-logging cache of a remote driver (a `local` file that
    /// `docker logs` reads), unless `cache-disabled`.
    #[serde(default)]
    pub cache: Option<LogCache>,
    /// `mode: non-blocking`: entries go through a buffer of
    /// `max_buffer_size` bytes and are dropped (and counted) when it is full.
    #[serde(default)]
    pub non_blocking: bool,
    #[serde(default)]
    pub max_buffer_size: u64,
    /// Where the shim keeps the log's counters ([`LogCounts`] as JSON, in
    /// the container's directory so they outlive the run; a restarted
    /// container's shim goes on from them).
    #[serde(default)]
    pub counts_path: String,
}

/// What a remote driver says of the container, resolved by berthd.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogInfo {
    pub id: String,
    /// With its leading `/`.
    pub name: String,
    pub image_id: String,
    pub image_name: String,
    pub command: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The `tag` option expanded (dockerd's default: the short ID).
    pub tag: String,
    /// The host's name.
    pub hostname: String,
    /// journald's socket (a test points it elsewhere).
    #[serde(default)]
    pub journald_socket: String,
}

/// The dual-logging cache file and its rotation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogCache {
    pub path: String,
    pub max_size: u64,
    pub max_file: u32,
    pub compress: bool,
}

/// The log's counters, in the shim's state.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogCounts {
    /// Entries the driver took (written to the file, sent to the receiver).
    pub written: u64,
    /// Entries lost: the buffer was full, or the receiver failed them.
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The shim's view of the container.
    State,
    /// `runtime start`: let the created container run.
    Start,
    /// `runtime kill` (`all`: every process of the container).
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Answered when the container has exited (at once if it has).
    Wait,
    /// Stream the container's stdio: then frames.
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Resize the container's terminal, or an exec's.
    Resize {
        #[serde(default)]
        exec_id: Option<String>,
        width: u16,
        height: u16,
    },
    /// Run a process in the container (`runtime exec`), then frames; the
    /// last frame is [`frames::EXIT`].
    Exec {
        exec_id: String,
        /// The OCI `process` object.
        process: serde_json::Value,
        #[serde(default)]
        tty: bool,
        #[serde(default)]
        stdin: bool,
    },
    Pause,
    Resume,
    /// `runtime update`: new resource limits (the OCI `linux.resources`).
    Update {
        resources: serde_json::Value,
    },
    /// berthd has recorded the exit: the shim may go.
    AckExit,
    /// The healthcheck's report, once its version is above `after` (long
    /// poll; at once if it is already, or if the container has exited).
    Health {
        #[serde(default)]
        after: u64,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ShimStatus {
    Created,
    Running,
    Paused,
    Exited,
}

/// How the container (or an exec) ended. Written to `exit.json` before
/// anyone is told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i32,
    /// RFC 3339 with nanoseconds.
    pub exited_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ShimStatus>,
    /// The container's (or the exec's) pid on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    /// In the state: the log's counters (shims since the logging drivers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogCounts>,
}

impl Response {
    pub fn ok() -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ..Default::default()
        }
    }
    pub fn err(e: impl Into<String>) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            error: Some(e.into()),
            ..Default::default()
        }
    }
}

/// Frames after a streaming request: an 8-byte header (kind, three zero
/// bytes, big-endian u32 length) then the payload. Stdout and stderr frames
/// are byte for byte the Engine API's stdcopy frames.
pub mod frames {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    /// Payload: an [`super::ExitStatus`] as JSON. The last frame.
    pub const EXIT: u8 = 3;
    /// Client to shim: close the process's stdin.
    pub const CLOSE_STDIN: u8 = 4;
    /// Frames larger than this are refused.
    pub const MAX_PAYLOAD: usize = 1 << 20;

    pub fn header(kind: u8, len: usize) -> [u8; 8] {
        let l = (len as u32).to_be_bytes();
        [kind, 0, 0, 0, l[0], l[1], l[2], l[3]]
    }

    /// Parse a header: kind and payload length.
    pub fn parse(h: &[u8; 8]) -> Option<(u8, usize)> {
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if h[1] != 0 || h[2] != 0 || h[3] != 0 || len > MAX_PAYLOAD || h[0] > CLOSE_STDIN {
            return None;
        }
        Some((h[0], len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_lines_and_unknown_fields_are_ignored() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":15,"future":1}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Wait).unwrap(),
            r#"{"op":"wait"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"teleport"}"#).is_err());
        let resp: Response = serde_json::from_str(r#"{"version":9,"pid":4,"new":"x"}"#).unwrap();
        assert_eq!(resp.pid, Some(4));
    }

    #[test]
    fn frame_headers_round_trip_and_reject_garbage() {
        let h = frames::header(frames::STDERR, 70000);
        assert_eq!(frames::parse(&h), Some((frames::STDERR, 70000)));
        assert_eq!(frames::parse(&[9, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(frames::parse(&[1, 1, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(
            frames::parse(&frames::header(1, frames::MAX_PAYLOAD + 1)),
            None
        );
    }
}
