//! The NetworkSupervisor: creates networks (name and subnet checks, pool
//! allocation, all serialized here), spawns a NetworkActor per network (in
//! parallel at berthd start) and rebuilds any that dies from the read
//! model: a rebuild reconciles the host, it never re-creates a bridge or a
//! veth that exists.

use std::sync::Arc;
use std::time::Instant;
use tracing::warn;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tracing::info;

use super::actor::{actor_name, NetworkActor, NetworkArgs};
use super::index::NetworkIndex;
use super::ipam::Cidr;
use super::model::{IpamPool, NetworkRecord};
use super::{NetworkError, NetworkMsg};
use crate::directory::NETWORKS;
use crate::events::Events;
use crate::ports::NetworkHost;
use crate::supervisor::ask::{ask_named, ask_named_again, AskError};
use crate::supervisor::keyed::{
    records_to_restore, spawn_child, SpawnFuture, REBUILD_AFTER, RETRY_AFTER,
};
use crate::supervisor::KeyedChildren;

/// A `default-address-pools` entry: subnets of `size` bits carved from `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoPool {
    pub base: String,
    pub size: u8,
}

pub struct NetworkSupervisor;

#[derive(Clone)]
pub struct NetworkSupervisorArgs {
    pub host: Arc<dyn NetworkHost>,
    pub index: Arc<watch::Sender<Arc<NetworkIndex>>>,
    pub events: Events,
    /// Records read from disk at berthd start (first incarnation only).
    pub initial: Arc<std::sync::Mutex<Option<Vec<NetworkRecord>>>>,
    /// The cluster store (global networks), when berthd has one.
    pub cluster: Option<crate::cluster::Cluster>,
    /// The containers' read model (stale endpoints are told by it).
    pub containers: Option<watch::Receiver<Arc<crate::container::ContainerIndex>>>,
}

pub enum SupervisorMsg {
    /// Create a network: checks, pool allocation, host setup, actor.
    Create {
        record: Box<NetworkRecord>,
        pools: Vec<AutoPool>,
        reply: RpcReplyPort<Result<Arc<NetworkRecord>, NetworkError>>,
    },
    /// The network was removed: its actor stops for good.
    Forget(String),
    /// A global network the cluster store has: served here too (nothing
    /// to do when it already is).
    Adopt(Box<NetworkRecord>),
    /// A global network the cluster store no longer has.
    Abandon(String),
    Rebuild(String),
    /// The actor of this network did not answer a request in time.
    Unresponsive(String, &'static str),
}

impl crate::supervisor::ask::Request for SupervisorMsg {
    fn name(&self) -> &'static str {
        match self {
            SupervisorMsg::Create { .. } => "create",
            _ => "internal",
        }
    }
}

pub struct SupervisorState {
    args: NetworkSupervisorArgs,
    children: KeyedChildren,
}

/// Handle for callers: the read model and the actors.
#[derive(Clone)]
pub struct Networks {
    pub index: watch::Receiver<Arc<NetworkIndex>>,
}

impl Networks {
    pub fn snapshot(&self) -> Arc<NetworkIndex> {
        self.index.borrow().clone()
    }

    pub fn lookup(&self, s: &str) -> Result<Arc<NetworkRecord>, NetworkError> {
        self.snapshot().lookup(s)
    }

    /// Ask a network's actor; one being restarted is waited for.
    pub async fn ask<T: Send + 'static>(
        id: &str,
        msg: impl FnOnce(RpcReplyPort<Result<T, NetworkError>>) -> NetworkMsg,
    ) -> Result<T, NetworkError> {
        let report = |request| {
            if let Some(s) = ActorRef::<SupervisorMsg>::where_is(NETWORKS) {
                let _ = s.cast(SupervisorMsg::Unresponsive(id.to_string(), request));
            }
        };
        ask_named(&actor_name(id), msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => NetworkError::Unavailable,
                e => NetworkError::Timeout(e.message(&format!("the actor of network {id}"))),
            })?
    }

    /// [`Networks::ask`] for a request safe to make twice (a disconnect;
    /// a container's connect with its sandbox, which replaces the endpoint
    /// an earlier making left): one the actor took and died with is made
    /// again for its next incarnation.
    pub async fn ask_again<T: Send + 'static>(
        id: &str,
        msg: impl Fn(RpcReplyPort<Result<T, NetworkError>>) -> NetworkMsg,
    ) -> Result<T, NetworkError> {
        let report = |request| {
            if let Some(s) = ActorRef::<SupervisorMsg>::where_is(NETWORKS) {
                let _ = s.cast(SupervisorMsg::Unresponsive(id.to_string(), request));
            }
        };
        ask_named_again(&actor_name(id), msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => NetworkError::Unavailable,
                e => NetworkError::Timeout(e.message(&format!("the actor of network {id}"))),
            })?
    }

    pub async fn ask_supervisor<T: Send + 'static>(
        msg: impl FnOnce(RpcReplyPort<Result<T, NetworkError>>) -> SupervisorMsg,
    ) -> Result<T, NetworkError> {
        let report = |request| warn!(%request, "the network supervisor did not answer in time");
        ask_named(NETWORKS, msg, report)
            .await
            .map_err(|e| match e {
                AskError::Gone => NetworkError::Unavailable,
                e => NetworkError::Timeout(e.message("the network supervisor")),
            })?
    }
}

impl SupervisorState {
    fn args_for(&self, record: NetworkRecord) -> NetworkArgs {
        NetworkArgs {
            record,
            host: self.args.host.clone(),
            index: self.args.index.clone(),
            events: self.args.events.clone(),
            cluster: self.args.cluster.clone(),
            containers: self.args.containers.clone(),
        }
    }

    /// The subnets in use: other networks' and the host's routes.
    fn used_subnets(&self) -> Vec<Cidr> {
        let mut used: Vec<Cidr> = self
            .args
            .index
            .borrow()
            .by_id
            .values()
            .flat_map(|r| r.pools.iter().filter_map(|p| Cidr::parse(&p.subnet)))
            .collect();
        used.extend(
            self.args
                .host
                .host_routes()
                .iter()
                .filter_map(|r| Cidr::parse(r)),
        );
        used
    }

    fn check_and_allocate(
        &self,
        rec: &mut NetworkRecord,
        pools: &[AutoPool],
    ) -> Result<(), NetworkError> {
        if self.args.index.borrow().by_name(&rec.name).is_some() {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                rec.name
            )));
        }
        // An overlay's pools are the cluster's (see `cluster::create_network`).
        if !rec.connectable() || super::remote::is_ipam_plugin(&rec.ipam_driver) || rec.is_overlay()
        {
            // An IPAM plugin's pools are its own business.
            return Ok(());
        }
        let ours: Vec<Cidr> = self
            .args
            .index
            .borrow()
            .by_id
            .values()
            .flat_map(|r| r.pools.iter().filter_map(|p| Cidr::parse(&p.subnet)))
            .collect();
        let ours6: Vec<super::ipam::Cidr6> = self
            .args
            .index
            .borrow()
            .by_id
            .values()
            .flat_map(|r| {
                r.pools
                    .iter()
                    .filter_map(|p| super::ipam::Cidr6::parse(&p.subnet))
            })
            .collect();
        for p in &rec.pools {
            if let Some(c) = super::ipam::Cidr6::parse(&p.subnet) {
                if ours6.iter().any(|o| o.overlaps(&c)) {
                    return Err(NetworkError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
            }
            if let Some(c) = Cidr::parse(&p.subnet) {
                if ours.iter().any(|o| o.overlaps(&c)) {
                    return Err(NetworkError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
            }
        }
        if rec.v4_pools().next().is_none() {
            let used = self.used_subnets();
            let found = pools.iter().find_map(|p| {
                let base = Cidr::parse(&p.base)?;
                if p.size < base.prefix || p.size > 30 {
                    return None;
                }
                let step = 1u64 << (32 - p.size);
                let mut a = base.network() as u64;
                while a <= base.broadcast() as u64 {
                    let c = Cidr {
                        addr: std::net::Ipv4Addr::from(a as u32),
                        prefix: p.size,
                    };
                    if !used.iter().any(|u| u.overlaps(&c)) {
                        return Some(c);
                    }
                    a += step;
                }
                None
            });
            let Some(c) = found else {
                return Err(NetworkError::Forbidden(
                    "all predefined address pools have been fully subnetted".into(),
                ));
            };
            rec.pools.push(IpamPool {
                subnet: c.canonical(),
                ip_range: String::new(),
                gateway: c.first_host().to_string(),
                aux: Default::default(),
                pool_id: String::new(),
            });
        }
        for p in rec.pools.iter_mut() {
            if p.gateway.is_empty() {
                if let Some(c) = Cidr::parse(&p.subnet) {
                    p.gateway = c.first_host().to_string();
                } else if let Some(c) = super::ipam::Cidr6::parse(&p.subnet) {
                    p.gateway = c.first_host().to_string();
                }
            }
        }
        // IPv6 without a subnet: a unique local /64 derived from the ID.
        if rec.enable_ipv6 && rec.v6_pool().is_none() {
            use sha2::{Digest, Sha256};
            let d = Sha256::digest(rec.id.as_bytes());
            let c = super::ipam::Cidr6::parse(&format!(
                "fd{:02x}:{:02x}{:02x}:{:02x}{:02x}::/64",
                d[0], d[1], d[2], d[3], d[4]
            ))
            .ok_or_else(|| NetworkError::System("allocating an IPv6 subnet".into()))?;
            rec.pools.push(IpamPool {
                subnet: c.canonical(),
                ip_range: String::new(),
                gateway: c.first_host().to_string(),
                aux: Default::default(),
                pool_id: String::new(),
            });
        }
        Ok(())
    }
}

/// A create that failed after the plugins made their part: the network
/// plugin's network and the IPAM plugin's pools go again (best effort).
async fn undo_plugins(rec: &NetworkRecord) {
    if rec.is_remote() {
        if let Err(e) = super::remote::delete_network(rec).await {
            warn!(network = %rec.name, "undoing the plugin's network: {e}");
        }
    }
    if super::remote::is_ipam_plugin(&rec.ipam_driver) {
        super::remote::release_pools(rec).await;
    }
}

fn spawn(cell: ActorCell, args: NetworkArgs) -> SpawnFuture {
    spawn_child(actor_name(&args.record.id), NetworkActor, args, cell)
}

fn rebuild_later(myself: &ActorRef<SupervisorMsg>, id: String, after: std::time::Duration) {
    myself.send_after(after, move || SupervisorMsg::Rebuild(id));
}

impl Actor for NetworkSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = NetworkSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: NetworkSupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut st = SupervisorState {
            args,
            children: KeyedChildren::new("network"),
        };
        let index = st.args.index.clone();
        let (records, _) = records_to_restore(
            "network",
            &st.args.initial,
            || {
                index
                    .borrow()
                    .by_id
                    .keys()
                    .map(|id| actor_name(id))
                    .collect()
            },
            || {
                index
                    .borrow()
                    .by_id
                    .values()
                    .map(|r| (**r).clone())
                    .collect()
            },
        )
        .await;
        st.args.index.send_replace(Arc::new(NetworkIndex {
            by_id: records
                .iter()
                .map(|r| (r.id.clone(), Arc::new(r.clone())))
                .collect(),
        }));
        let started = Instant::now();
        let spawns: Vec<_> = records
            .into_iter()
            .map(|r| (r.id.clone(), spawn(myself.get_cell(), st.args_for(r))))
            .collect();
        let n = spawns.len();
        for id in st.children.restore(spawns).await {
            rebuild_later(&myself, id, RETRY_AFTER);
        }
        // Every network is known: the firewall can be written whole.
        st.args.host.restored();
        info!(
            networks = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "networks restored"
        );
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Create {
                mut record,
                pools,
                reply,
            } => {
                if let Err(e) = st.check_and_allocate(&mut record, &pools) {
                    let _ = reply.send(Err(e));
                    return Ok(());
                }
                if record.is_overlay() {
                    // Claimed in the cluster store first: name, subnet and
                    // VXLAN ID unique across nodes.
                    let used = st.used_subnets();
                    let r = match &st.args.cluster {
                        Some(c) => crate::cluster::create_network(c, &mut record, &used).await,
                        None => Err(NetworkError::Forbidden(
                            "overlay networks need a cluster store: set cluster-store and cluster-advertise".into(),
                        )),
                    };
                    if let Err(e) = r {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                }
                let ipam_plugin = super::remote::is_ipam_plugin(&record.ipam_driver);
                if ipam_plugin {
                    if let Err(e) = super::remote::request_pools(&mut record).await {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                }
                if record.is_remote() {
                    // The plugin makes it first, with the pools.
                    if let Err(e) = super::remote::create_network(&record).await {
                        if ipam_plugin {
                            super::remote::release_pools(&record).await;
                        }
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                }
                // The record first: a berthd killed before the bridge is
                // made finds the network and makes its bridge (a network
                // actor's start sets its network up); one killed after
                // never leaves a bridge no record names.
                if let Err(e) = st.args.host.save(&record) {
                    undo_plugins(&record).await;
                    let _ = reply.send(Err(NetworkError::System(format!(
                        "saving the network: {e}"
                    ))));
                    return Ok(());
                }
                crate::failpoint::hit("network-create:saved");
                if let Err(e) = st.args.host.setup(&record).await {
                    let _ = st.args.host.teardown(&record).await;
                    if let Err(d) = st.args.host.delete(&record.id) {
                        warn!(network = %record.name, "removing the record of a failed create: {d}");
                    }
                    undo_plugins(&record).await;
                    let _ = reply.send(Err(NetworkError::System(e)));
                    return Ok(());
                }
                crate::failpoint::hit("network-create:bridge");
                let rec = Arc::new((*record).clone());
                st.args.index.send_modify(|ix| {
                    let mut next = (**ix).clone();
                    next.by_id.insert(rec.id.clone(), rec.clone());
                    *ix = Arc::new(next);
                });
                match st
                    .children
                    .start(&rec.id, spawn(myself.get_cell(), st.args_for(*record)))
                    .await
                {
                    Ok(()) => {
                        st.args
                            .events
                            .publish("network", "create", &rec.id, rec.event_attrs());
                        let _ = reply.send(Ok(rec));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetworkError::System(e)));
                    }
                }
            }
            SupervisorMsg::Forget(id) => st.children.forget(&id),
            SupervisorMsg::Adopt(record) => {
                if st.args.index.borrow().by_id.contains_key(&record.id) {
                    return Ok(());
                }
                info!(network = %record.name, id = %record.id, "a global network of the cluster");
                if let Err(e) = st.args.host.save(&record) {
                    warn!(network = %record.name, "saving a global network: {e}");
                    return Ok(());
                }
                let rec = Arc::new((*record).clone());
                st.args.index.send_modify(|ix| {
                    let mut next = (**ix).clone();
                    next.by_id.insert(rec.id.clone(), rec.clone());
                    *ix = Arc::new(next);
                });
                if let Err(e) = st
                    .children
                    .start(&rec.id, spawn(myself.get_cell(), st.args_for(*record)))
                    .await
                {
                    warn!(network = %rec.name, "{e}");
                    rebuild_later(&myself, rec.id.clone(), RETRY_AFTER);
                }
            }
            SupervisorMsg::Abandon(id) => {
                if let Some(a) = ActorRef::<NetworkMsg>::where_is(actor_name(&id)) {
                    let _ = a.cast(NetworkMsg::Abandon);
                }
            }
            SupervisorMsg::Unresponsive(id, request) => {
                warn!(network = %id, %request, "the network's actor did not answer in time");
            }
            SupervisorMsg::Rebuild(id) => {
                let rec = st.args.index.borrow().by_id.get(&id).cloned();
                let a = rec.map(|rec| spawn(myself.get_cell(), st.args_for((*rec).clone())));
                st.children
                    .rebuild(id, a, |id| rebuild_later(&myself, id, RETRY_AFTER))
                    .await;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        ev: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let index = &st.args.index;
        if let Some(id) = st
            .children
            .exited(&ev, |id| index.borrow().by_id.contains_key(id))
        {
            rebuild_later(&myself, id, REBUILD_AFTER);
        }
        Ok(())
    }
}
