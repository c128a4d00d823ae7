//! Networks: a NetworkActor per network under the NetworkSupervisor. The
//! actor owns the network's IPAM and endpoints and drives the host side
//! (bridge, veth pairs, firewall) through [`crate::ports::NetworkHost`];
//! it publishes every change to the read model, which the embedded DNS
//! server answers from.

mod actor;
mod index;
pub mod ipam;
mod model;
pub mod remote;
mod supervisor;

use ractor::RpcReplyPort;

pub use actor::{actor_name, host_ifname, NetworkActor, NetworkArgs};
pub use index::NetworkIndex;
pub use model::{
    mac_for, Endpoint, EndpointRequest, IpamPool, NetworkRecord, Peer, PortMapping,
    NETWORK_RECORD_VERSION, VXLAN_ID,
};
pub use supervisor::{AutoPool, NetworkSupervisor, NetworkSupervisorArgs, Networks, SupervisorMsg};

use crate::{ErrorKind, HasKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("plugin \"{0}\" not found")]
    PluginNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    System(String),
    #[error("the network's actor is restarting; retry")]
    Unavailable,
    /// The cluster store could not be reached (the message says what failed).
    #[error("{0}")]
    StoreUnavailable(String),
    /// An actor did not answer in time (the message names it and the request).
    #[error("{0}")]
    Timeout(String),
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) | NetworkError::PluginNotFound(_) => ErrorKind::NotFound,
            NetworkError::Conflict(_) => ErrorKind::Conflict,
            NetworkError::Invalid(_) => ErrorKind::InvalidParameter,
            NetworkError::Forbidden(_) => ErrorKind::Forbidden,
            NetworkError::System(_) => ErrorKind::System,
            NetworkError::Unavailable
            | NetworkError::StoreUnavailable(_)
            | NetworkError::Timeout(_) => ErrorKind::Unavailable,
        }
    }
}

impl crate::supervisor::ask::Request for NetworkMsg {
    fn name(&self) -> &'static str {
        match self {
            NetworkMsg::Connect { .. } => "connect",
            NetworkMsg::Disconnect { .. } => "disconnect",
            NetworkMsg::Remove { .. } => "remove",
            NetworkMsg::Sync(_) | NetworkMsg::PeerUp(_) | NetworkMsg::PeerDown(_) => "peers",
            NetworkMsg::Abandon => "abandon",
            NetworkMsg::Resave => "resave",
        }
    }
}

pub enum NetworkMsg {
    /// Allocate an address, plumb the container into the network, publish
    /// its ports.
    Connect {
        req: Box<EndpointRequest>,
        reply: RpcReplyPort<Result<Endpoint, NetworkError>>,
    },
    /// Remove a container's endpoint (nothing to do if it has none).
    Disconnect {
        container: String,
        reply: RpcReplyPort<Result<(), NetworkError>>,
    },
    /// Delete the network (refused while endpoints are active).
    Remove {
        reply: RpcReplyPort<Result<(), NetworkError>>,
    },
    /// An overlay network: the store's view of it (every endpoint other
    /// nodes have on it; this node's registrations and address claims, to
    /// reconcile with the record).
    Sync(Box<crate::cluster::NetworkView>),
    /// An overlay network: another node's endpoint appeared (or changed).
    PeerUp(Box<Peer>),
    /// An overlay network: another node's endpoint (by container) went.
    PeerDown(String),
    /// An overlay network removed from the cluster (by another node, or
    /// while this one was away): its local part goes.
    Abandon,
    /// The record the disk refused last is saved again (sent by the actor
    /// to itself).
    Resave,
}
#[cfg(test)]
pub(crate) mod tests;
