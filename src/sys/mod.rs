//! Host side effects: files, sockets, TLS, systemd, host facts.

pub mod atomic;
pub mod blobs;
pub mod dirs;
#[cfg(feature = "cluster")]
pub mod etcd;
pub mod fsfd;
pub mod host;
pub mod layers;
pub mod listeners;
pub mod pidfile;
pub mod plugins;
pub mod records;
pub mod registry;
pub mod runtime;
pub mod storage;
pub mod systemd;
pub mod tls;

/// Why berthd could not start. Printed on stderr; berthd exits 1.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "pid file found, ensure berthd is not running or delete {path}: process {pid} is running"
    )]
    AlreadyRunning { path: String, pid: i32 },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to load listeners: {0}")]
    Listener(String),
    #[error("{0}")]
    Runtime(String),
    #[error("error initializing storage: {0}")]
    Storage(String),
    #[error("error initializing network controller: {0}")]
    Network(String),
    #[error("failed to validate authorization plugin: {0}")]
    Authz(String),
    #[error("could not load TLS material for {addr}: {reason}")]
    Tls { addr: String, reason: String },
}

impl StartupError {
    pub fn io(
        what: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        StartupError::Io {
            what,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
