//! Containers: a ContainerActor per container under the
//! ContainerSupervisor. The actor is a client of the container's shim; the
//! shim owns the process, its stdio and its exit status, so killing and
//! rebuilding the actor never touches the container.

mod actor;
mod attach;
pub mod config;
pub mod create;
pub mod fs;
mod health;
mod index;
mod kill;
pub mod links;
mod model;
mod network;
mod pause;
mod remove;
mod restart_policy;
mod start;
pub mod state;
pub mod stdio;
mod stop;
mod supervisor;
mod update;
mod volumes;
mod wait;

#[cfg(test)]
pub(crate) mod tests;

use ractor::RpcReplyPort;
use serde_json::Value;
use tokio::sync::oneshot;

pub use actor::{actor_name, ContainerActor, ContainerArgs};
pub use config::{Config, HostConfig};
pub use index::ContainerIndex;
pub use kill::parse_signal;
pub use model::{
    parse_link, parse_mac, ContainerRecord, MountPoint, NetworkAttachment, RunState, RECORD_VERSION,
};
pub use restart_policy::{validate as restart_policy_validate, Backoff};
pub use state::Status;
pub use supervisor::{
    valid_name, ContainerSupervisor, ContainerSupervisorArgs, Containers, Service, SupervisorMsg,
};
pub use wait::{WaitCondition, WaitOutcome};

use crate::{ErrorKind, HasKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// A network the container names does not exist (the message as is).
    #[error("{0}")]
    NetworkNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    System(String),
    /// The runtime refused (bad command, missing binary...).
    #[error("{0}")]
    Runtime(String),
    /// The storage driver cannot do it.
    #[error("{0}")]
    NotImplemented(String),
    #[error("container already {0}")]
    NotModified(&'static str),
    #[error("the container's actor is restarting; retry")]
    Unavailable,
    /// An actor did not answer in time (the message names it and the request).
    #[error("{0}")]
    Timeout(String),
}

impl HasKind for ContainerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_)
            | ContainerError::NoSuchImage(_)
            | ContainerError::NetworkNotFound(_) => ErrorKind::NotFound,
            ContainerError::Conflict(_) => ErrorKind::Conflict,
            ContainerError::Forbidden(_) => ErrorKind::Forbidden,
            ContainerError::Invalid(_) => ErrorKind::InvalidParameter,
            ContainerError::Runtime(_) => ErrorKind::InvalidParameter,
            ContainerError::System(_) => ErrorKind::System,
            ContainerError::NotModified(_) => ErrorKind::NotModified,
            ContainerError::NotImplemented(_) => ErrorKind::NotImplemented,
            ContainerError::Unavailable | ContainerError::Timeout(_) => ErrorKind::Unavailable,
        }
    }
}

/// Which streams an attach wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An attach before the start gets its stdio when the container starts:
/// the actor connects it to the shim before it lets the process run, so no
/// output is missed.
pub type AttachLater = oneshot::Receiver<Result<stdio::Stdio, ContainerError>>;

pub enum AttachTicket {
    /// The container runs: its stdio now.
    Now(stdio::Stdio),
    /// The stdio of the next start (the sender is dropped if the start
    /// fails or the container goes).
    AtStart(AttachLater),
}

type Reply<T> = RpcReplyPort<Result<T, ContainerError>>;

impl crate::supervisor::ask::Request for ContainerMsg {
    fn name(&self) -> &'static str {
        match self {
            ContainerMsg::Start(_) | ContainerMsg::StartOnce { .. } => "start",
            ContainerMsg::Stop { .. } => "stop",
            ContainerMsg::Restart { .. } => "restart",
            ContainerMsg::Kill { .. } => "kill",
            ContainerMsg::Remove { .. } => "remove",
            ContainerMsg::Wait { .. } => "wait",
            ContainerMsg::Attach { .. } => "attach",
            ContainerMsg::ExecStart { .. } => "exec start",
            ContainerMsg::Resize { .. } => "resize",
            ContainerMsg::Filesystem { .. } => "filesystem",
            ContainerMsg::Stats(_) => "stats",
            ContainerMsg::Top { .. } => "top",
            ContainerMsg::Pause(_) => "pause",
            ContainerMsg::Unpause(_) => "unpause",
            ContainerMsg::SetName(..) => "rename",
            ContainerMsg::Unlink(..) => "unlink",
            ContainerMsg::LinkedChildStarted(..) => "internal",
            ContainerMsg::Update(..) => "update",
            ContainerMsg::Connect { .. } => "network connect",
            ContainerMsg::Disconnect { .. } => "network disconnect",
            ContainerMsg::Exited { .. }
            | ContainerMsg::Health { .. }
            | ContainerMsg::RestartNow { .. }
            | ContainerMsg::StopTimeout { .. }
            | ContainerMsg::Resave
            | ContainerMsg::KillTimeout => "internal",
        }
    }

    /// A stop waits for its grace period (then a kill): the default wait
    /// comes on top of it; `-t -1` waits for as long as the process runs.
    fn within(&self) -> Option<std::time::Duration> {
        use crate::supervisor::ask::DEFAULT;
        match self {
            ContainerMsg::Stop { timeout, .. } | ContainerMsg::Restart { timeout, .. } => {
                match timeout {
                    Some(t) if *t < 0 => None,
                    Some(t) => Some(DEFAULT + std::time::Duration::from_secs(*t as u64)),
                    // The container's own StopTimeout may be long.
                    None => Some(DEFAULT * 5),
                }
            }
            ContainerMsg::Remove { force: true, .. } => Some(DEFAULT * 2),
            _ => Some(DEFAULT),
        }
    }
}

pub enum ContainerMsg {
    Start(Reply<()>),
    /// A client's start, safe to make again: `seen` is the `StartedAt` the
    /// client saw before asking; a container started since (by this
    /// request's earlier making, whose answer was lost with the actor)
    /// answers "already started" instead of running again.
    StartOnce {
        seen: String,
        reply: Reply<()>,
    },
    Stop {
        signal: Option<String>,
        timeout: Option<i64>,
        reply: Reply<()>,
    },
    Restart {
        signal: Option<String>,
        timeout: Option<i64>,
        reply: Reply<()>,
    },
    Kill {
        signal: String,
        reply: Reply<()>,
    },
    Remove {
        force: bool,
        /// Also remove its anonymous volumes (`rm -v`).
        volumes: bool,
        reply: Reply<()>,
    },
    Wait {
        condition: WaitCondition,
        reply: RpcReplyPort<WaitOutcome>,
    },
    /// Attach to the container's stdio (now, or at its next start).
    Attach {
        streams: AttachStreams,
        reply: Reply<AttachTicket>,
    },
    /// Run an exec's process in the running container (the exec's actor
    /// granted the start): its stdio, with the process's pid.
    ExecStart {
        exec: Box<crate::exec::ExecRecord>,
        /// Attach the exec's stdin.
        stdin: bool,
        reply: Reply<stdio::Stdio>,
    },
    /// One resource-use sample, and whether the container runs (a stats
    /// stream ends when it does not).
    Stats(Reply<(Value, bool)>),
    /// Its processes (`docker top`).
    Top {
        ps_args: String,
        reply: Reply<Value>,
    },
    /// Lend the container's filesystem for a copy, an export or a diff.
    Filesystem {
        want: fs::FsWant,
        reply: Reply<fs::FsView>,
    },
    /// Resize the TTY of the container (or of one of its execs).
    Resize {
        exec_id: Option<String>,
        width: u16,
        height: u16,
        reply: Reply<()>,
    },
    Pause(Reply<()>),
    Unpause(Reply<()>),
    /// Set the name (the supervisor reserved it).
    SetName(String, Reply<()>),
    /// A container this one links to (legacy link) started with this
    /// record: rewrite the hosts lines (dockerd updates a parent's hosts).
    LinkedChildStarted(Box<ContainerRecord>),
    /// Drop the legacy link of this alias (`DELETE ...?link=true`).
    Unlink(String, Reply<()>),
    /// Merge these HostConfig fields (resources, restart policy).
    Update(Box<config::UpdateConfig>, Reply<Vec<String>>),
    /// Join a network (now if running, at every start from now on).
    Connect {
        network: String,
        attachment: NetworkAttachment,
        reply: Reply<()>,
    },
    /// Leave a network.
    Disconnect {
        network: String,
        reply: Reply<()>,
    },
    /// Internal: the shim reported the exit of incarnation `gen`.
    Exited {
        gen: u64,
        exit: crate::protocol::shim::ExitStatus,
    },
    /// Internal: the shim's healthcheck report for incarnation `gen`.
    Health {
        gen: u64,
        report: crate::protocol::shim::HealthReport,
    },
    /// Internal: the restart policy's delay has passed.
    RestartNow {
        gen: u64,
    },
    /// Internal: a stop's grace period is over.
    /// A SIGKILL's exit did not come in time: answer the kills waiting
    /// for it (the signal was delivered).
    KillTimeout,
    StopTimeout {
        gen: u64,
    },
    /// Internal: save the record again (its last save failed).
    Resave,
}
