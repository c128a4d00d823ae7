//! Beyond one host: berthd nodes sharing a cluster store (etcd). The
//! [`ClusterMembership`] actor keeps this node's lease and registration,
//! follows the store with one watch and hands what it sees to the
//! NetworkSupervisor (global networks appear and go) and to the overlay
//! networks' actors (endpoints of other nodes: their names, addresses and
//! tunnel endpoints). The store itself is a port ([`ClusterStore`]); the
//! real one speaks etcd v3 (`src/sys/etcd.rs`).
//!
//! What the store holds (under [`PREFIX`]):
//! - `nodes/<id>`: a live node (`{id, name, addr}`), under its lease;
//! - `networks/<id>`: a global network's record (no endpoints);
//! - `names/<name>`, `subnets/<cidr>`, `vnis/<vni>`: claims that keep
//!   names, subnets and VXLAN IDs unique (made in one transaction with the
//!   network);
//! - `ipam/<network>/<ip>`: an address handed out (`<node> <container>`),
//!   claimed by a transaction so no two nodes hand out one address;
//! - `endpoints/<network>/<container>`: an endpoint ([`Peer`]), under the
//!   lease of its node: a dead node's endpoints go when its lease expires.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::directory::{CLUSTER, NETWORKS};
use crate::network::ipam::Cidr;
use crate::network::{
    actor_name, IpamPool, NetworkError, NetworkIndex, NetworkMsg, NetworkRecord, Peer,
    SupervisorMsg, VXLAN_ID,
};
use crate::ports::BoxFuture;

/// Every key berthd writes starts with this.
pub const PREFIX: &str = "/berth/v1/";
/// The lease of a node: its endpoints outlive a dead node by at most this.
pub const LEASE_TTL: i64 = 10;
/// How long a request to the store may take before it counts as unreachable.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub mod keys {
    use super::PREFIX;
    pub fn node(id: &str) -> String {
        format!("{PREFIX}nodes/{id}")
    }
    pub fn network(id: &str) -> String {
        format!("{PREFIX}networks/{id}")
    }
    pub fn name(name: &str) -> String {
        format!("{PREFIX}names/{name}")
    }
    pub fn subnet(cidr: &str) -> String {
        format!("{PREFIX}subnets/{}", cidr.replace('/', "_"))
    }
    pub fn vni(vni: u32) -> String {
        format!("{PREFIX}vnis/{vni}")
    }
    pub fn ipam(net: &str, ip: &str) -> String {
        format!("{PREFIX}ipam/{net}/{ip}")
    }
    pub fn ipam_of(net: &str) -> String {
        format!("{PREFIX}ipam/{net}/")
    }
    pub fn endpoint(net: &str, container: &str) -> String {
        format!("{PREFIX}endpoints/{net}/{container}")
    }
    pub fn endpoints_of(net: &str) -> String {
        format!("{PREFIX}endpoints/{net}/")
    }
}

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(Kv),
    Delete(String),
}

/// The cluster store (etcd): the real one in `src/sys/etcd.rs`. Every call
/// is bounded by [`STORE_TIMEOUT`] and fails with a message naming the
/// store when it cannot be reached.
pub trait ClusterStore: Send + Sync + 'static {
    /// This node's lease: the one it held before if it is still alive
    /// (a berthd restarted within the TTL keeps its endpoints), else a new one.
    fn lease(&self) -> BoxFuture<Result<i64, String>>;
    /// Renew the lease; an error when it expired or the store is away.
    fn keep_alive(&self) -> BoxFuture<Result<(), String>>;
    /// Keys under `prefix`, and the store's revision of that read.
    fn list(&self, prefix: &str) -> BoxFuture<Result<(Vec<Kv>, i64), String>>;
    /// Set `key` (under this node's lease when `leased`).
    fn put(&self, key: &str, value: Vec<u8>, leased: bool) -> BoxFuture<Result<(), String>>;
    /// Create every key, or none if any exists (one transaction).
    fn create_all(&self, kvs: Vec<Kv>) -> BoxFuture<Result<bool, String>>;
    /// Delete keys (one transaction); absent ones are fine.
    fn delete(&self, keys: Vec<String>) -> BoxFuture<Result<(), String>>;
    /// Changes under `prefix` after `revision`; the channel closes when
    /// the watch breaks (the store went away).
    fn watch(
        &self,
        prefix: &str,
        revision: i64,
    ) -> BoxFuture<Result<mpsc::UnboundedReceiver<WatchEvent>, String>>;
    /// The store's endpoints, for `docker info` (`etcd://h:p,...`).
    fn describe(&self) -> String;
}

/// A berthd of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub name: String,
    /// `ip:port` (`cluster-advertise`); the IP is the node's VXLAN endpoint.
    pub addr: String,
}

impl Node {
    pub fn vtep(&self) -> String {
        self.addr
            .rsplit_once(':')
            .map(|(ip, _)| ip.to_string())
            .unwrap_or_else(|| self.addr.clone())
    }
}

/// What `docker info` shows of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    pub store: String,
    pub advertise: String,
    pub connected: bool,
    /// Live nodes (their lease holds), by ID.
    pub nodes: BTreeMap<String, Node>,
    pub last_error: String,
}

/// What the network actors need of the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub store: Arc<dyn ClusterStore>,
    pub me: Node,
    pub info: watch::Receiver<ClusterInfo>,
}

impl Cluster {
    /// A store call bounded by [`STORE_TIMEOUT`].
    pub async fn call<T>(&self, what: &str, f: BoxFuture<Result<T, String>>) -> Result<T, String> {
        match tokio::time::timeout(STORE_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{what}: the cluster store: {e}")),
            Err(_) => Err(format!(
                "{what}: the cluster store {} did not answer within {} s",
                self.store.describe(),
                STORE_TIMEOUT.as_secs()
            )),
        }
    }
}

pub enum ClusterMsg {
    /// (Re)join: lease, registration, a full read, the watch.
    Connect,
    /// Renew the lease.
    Tick,
    /// A change the watch of session `.0` saw.
    Watched(u64, WatchEvent),
    /// The watch of this session broke.
    WatchEnded(u64),
    /// An overlay network's actor (re)started: send it its view.
    SyncPeers(String),
}

pub struct ClusterMembership;

pub struct ClusterArgs {
    pub cluster: Cluster,
    pub info: Arc<watch::Sender<ClusterInfo>>,
    pub networks: watch::Receiver<Arc<NetworkIndex>>,
}

pub struct ClusterState {
    c: Cluster,
    info: Arc<watch::Sender<ClusterInfo>>,
    networks: watch::Receiver<Arc<NetworkIndex>>,
    /// The current watch; older sessions' messages are ignored.
    session: u64,
    connected: bool,
    watch_task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ClusterState {
    fn drop(&mut self) {
        if let Some(t) = self.watch_task.take() {
            t.abort();
        }
    }
}

fn networks_ref() -> Option<ActorRef<SupervisorMsg>> {
    ActorRef::<SupervisorMsg>::where_is(NETWORKS)
}

fn network_ref(id: &str) -> Option<ActorRef<NetworkMsg>> {
    ActorRef::<NetworkMsg>::where_is(actor_name(id))
}

/// What a key under [`PREFIX`] names.
enum Key<'a> {
    Node(&'a str),
    Network(&'a str),
    Endpoint(&'a str, &'a str),
    Other,
}

fn parse_key(key: &str) -> Key<'_> {
    let Some(rest) = key.strip_prefix(PREFIX) else {
        return Key::Other;
    };
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("nodes"), Some(id), None) => Key::Node(id),
        (Some("networks"), Some(id), None) => Key::Network(id),
        (Some("endpoints"), Some(net), Some(c)) => Key::Endpoint(net, c),
        _ => Key::Other,
    }
}

impl ClusterState {
    fn set_info(&self, f: impl FnOnce(&mut ClusterInfo)) {
        self.info.send_modify(f);
    }

    fn lost(&mut self, myself: &ActorRef<ClusterMsg>, why: &str) {
        // Logged when it starts and when the reason changes, not each retry.
        if self.connected || self.info.borrow().last_error != why {
            warn!("the cluster store is unreachable: {why}; retrying");
        }
        self.connected = false;
        self.session += 1;
        if let Some(t) = self.watch_task.take() {
            t.abort();
        }
        let why = why.to_string();
        self.set_info(|i| {
            i.connected = false;
            i.last_error = why;
        });
        myself.send_after(RECONNECT_AFTER, || ClusterMsg::Connect);
    }

    /// Lease, registration, the full state, then the watch.
    async fn connect(&mut self, myself: &ActorRef<ClusterMsg>) -> Result<(), String> {
        let c = self.c.clone();
        c.call("taking a lease", c.store.lease()).await?;
        let me = serde_json::to_vec(&c.me).unwrap_or_default();
        c.call(
            "registering this node",
            c.store.put(&keys::node(&c.me.id), me, true),
        )
        .await?;
        let (all, revision) = c.call("reading the cluster", c.store.list(PREFIX)).await?;
        let mut nodes = BTreeMap::new();
        let mut nets: BTreeMap<String, NetworkRecord> = BTreeMap::new();
        let mut peers: BTreeMap<String, BTreeMap<String, Peer>> = BTreeMap::new();
        // (network, ip, owner)
        let mut ipam: Vec<(String, String, String)> = Vec::new();
        for kv in &all {
            match parse_key(&kv.key) {
                Key::Node(_) => {
                    if let Ok(n) = serde_json::from_slice::<Node>(&kv.value) {
                        nodes.insert(n.id.clone(), n);
                    }
                }
                Key::Network(_) => {
                    if let Ok(r) = serde_json::from_slice::<NetworkRecord>(&kv.value) {
                        nets.insert(r.id.clone(), r);
                    }
                }
                Key::Endpoint(net, cid) => {
                    if let Ok(p) = serde_json::from_slice::<Peer>(&kv.value) {
                        peers
                            .entry(net.to_string())
                            .or_default()
                            .insert(cid.to_string(), p);
                    }
                }
                Key::Other => {
                    if let Some(rest) = kv.key.strip_prefix(&format!("{PREFIX}ipam/")) {
                        if let Some((net, ip)) = rest.split_once('/') {
                            ipam.push((
                                net.to_string(),
                                ip.to_string(),
                                String::from_utf8_lossy(&kv.value).into_owned(),
                            ));
                        }
                    }
                }
            }
        }
        // Global networks: every one the store has is served here; one
        // this node knew that is gone from the store was removed meanwhile.
        if let Some(s) = networks_ref() {
            for r in nets.values() {
                let _ = s.cast(SupervisorMsg::Adopt(Box::new(r.clone())));
            }
            let local = self.networks.borrow().clone();
            for r in local.by_id.values().filter(|r| r.is_overlay()) {
                if !nets.contains_key(&r.id) {
                    let _ = s.cast(SupervisorMsg::Abandon(r.id.clone()));
                }
            }
        }
        // Every overlay network's actor gets the store's view of it: the
        // other nodes' endpoints, and this node's keys to reconcile with
        // its record (serialized with its connects, so a claim in flight
        // is never taken for a stale one).
        let local = self.networks.borrow().clone();
        let mut stale = Vec::new();
        for r in local.by_id.values().filter(|r| r.is_overlay()) {
            let view = NetworkView::of(
                &c.me.id,
                peers.remove(&r.id).unwrap_or_default(),
                ipam.iter()
                    .filter(|(n, _, _)| *n == r.id)
                    .map(|(_, ip, o)| (ip.clone(), o.clone()))
                    .collect(),
            );
            if let Some(a) = network_ref(&r.id) {
                let _ = a.cast(NetworkMsg::Sync(Box::new(view)));
            }
        }
        // Keys of this node on networks it no longer has (no actor to ask).
        for (net, eps) in &peers {
            if !nets.contains_key(net) || !local.by_id.contains_key(net) {
                for (cid, p) in eps {
                    if p.node == c.me.id {
                        stale.push(keys::endpoint(net, cid));
                    }
                }
            }
        }
        for (net, ip, owner) in &ipam {
            let mine = owner.split(' ').next() == Some(c.me.id.as_str());
            if mine && !local.by_id.contains_key(net) {
                stale.push(keys::ipam(net, ip));
            }
        }
        if !stale.is_empty() {
            info!(
                keys = stale.len(),
                "removing this node's stale endpoints from the cluster store"
            );
            c.call("removing stale endpoints", c.store.delete(stale))
                .await?;
        }
        // Then follow the store.
        let mut rx = c
            .call("watching the cluster", c.store.watch(PREFIX, revision + 1))
            .await?;
        self.session += 1;
        let session = self.session;
        let me2 = myself.clone();
        if let Some(t) = self.watch_task.take() {
            t.abort();
        }
        self.watch_task = Some(tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if me2.cast(ClusterMsg::Watched(session, ev)).is_err() {
                    return;
                }
            }
            let _ = me2.cast(ClusterMsg::WatchEnded(session));
        }));
        if !self.connected {
            info!(store = %c.store.describe(), nodes = nodes.len(), "joined the cluster");
        }
        self.connected = true;
        self.set_info(|i| {
            i.connected = true;
            i.nodes = nodes;
            i.last_error.clear();
        });
        Ok(())
    }

    fn watched(&mut self, ev: WatchEvent) {
        crate::metrics::add(&crate::metrics::CLUSTER_WATCH_EVENTS, 1);
        let key = match &ev {
            WatchEvent::Put(kv) => kv.key.clone(),
            WatchEvent::Delete(k) => k.clone(),
        };
        match (parse_key(&key), &ev) {
            (Key::Node(_), WatchEvent::Put(kv)) => {
                if let Ok(n) = serde_json::from_slice::<Node>(&kv.value) {
                    self.set_info(|i| {
                        i.nodes.insert(n.id.clone(), n);
                    });
                }
            }
            (Key::Node(id), WatchEvent::Delete(_)) => {
                let id = id.to_string();
                self.set_info(|i| {
                    i.nodes.remove(&id);
                });
            }
            (Key::Network(_), WatchEvent::Put(kv)) => {
                if let (Ok(r), Some(s)) = (
                    serde_json::from_slice::<NetworkRecord>(&kv.value),
                    networks_ref(),
                ) {
                    let _ = s.cast(SupervisorMsg::Adopt(Box::new(r)));
                }
            }
            (Key::Network(id), WatchEvent::Delete(_)) => {
                if let Some(s) = networks_ref() {
                    let _ = s.cast(SupervisorMsg::Abandon(id.to_string()));
                }
            }
            (Key::Endpoint(net, _), WatchEvent::Put(kv)) => {
                if let Ok(p) = serde_json::from_slice::<Peer>(&kv.value) {
                    if p.node != self.c.me.id {
                        if let Some(a) = network_ref(net) {
                            let _ = a.cast(NetworkMsg::PeerUp(Box::new(p)));
                        }
                    }
                }
            }
            (Key::Endpoint(net, cid), WatchEvent::Delete(_)) => {
                if let Some(a) = network_ref(net) {
                    let _ = a.cast(NetworkMsg::PeerDown(cid.to_string()));
                }
            }
            _ => {}
        }
    }

    /// One network's view of the store, for its actor.
    async fn sync_network(&self, net: &str) -> Result<(), String> {
        let c = &self.c;
        let (eps, _) = c
            .call("reading endpoints", c.store.list(&keys::endpoints_of(net)))
            .await?;
        let (claims, _) = c
            .call("reading addresses", c.store.list(&keys::ipam_of(net)))
            .await?;
        let prefix = keys::ipam_of(net);
        let view = NetworkView::of(
            &c.me.id,
            eps.iter()
                .filter_map(|kv| serde_json::from_slice::<Peer>(&kv.value).ok())
                .map(|p| (p.container.clone(), p))
                .collect(),
            claims
                .iter()
                .filter_map(|kv| {
                    Some((
                        kv.key.strip_prefix(&prefix)?.to_string(),
                        String::from_utf8_lossy(&kv.value).into_owned(),
                    ))
                })
                .collect(),
        );
        if let Some(a) = network_ref(net) {
            let _ = a.cast(NetworkMsg::Sync(Box::new(view)));
        }
        Ok(())
    }
}

/// What the store holds of one overlay network, as its actor needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkView {
    /// Other nodes' endpoints, by container.
    pub peers: BTreeMap<String, Peer>,
    /// This node's endpoints as registered, by container.
    pub mine: BTreeMap<String, Peer>,
    /// Addresses this node holds claims on: ip -> container.
    pub claims: BTreeMap<String, String>,
}

impl NetworkView {
    fn of(me: &str, endpoints: BTreeMap<String, Peer>, ipam: Vec<(String, String)>) -> NetworkView {
        let (mine, peers) = endpoints.into_iter().partition(|(_, p)| p.node == me);
        let claims = ipam
            .into_iter()
            .filter_map(|(ip, owner)| {
                let (node, cid) = owner.split_once(' ')?;
                (node == me).then(|| (ip, cid.to_string()))
            })
            .collect();
        NetworkView {
            peers,
            mine,
            claims,
        }
    }
}

impl Actor for ClusterMembership {
    type Msg = ClusterMsg;
    type State = ClusterState;
    type Arguments = ClusterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ClusterMsg>,
        a: ClusterArgs,
    ) -> Result<ClusterState, ActorProcessingErr> {
        let st = ClusterState {
            c: a.cluster,
            info: a.info,
            networks: a.networks,
            session: 0,
            connected: false,
            watch_task: None,
        };
        st.set_info(|i| {
            i.store = st.c.store.describe();
            i.advertise = st.c.me.addr.clone();
        });
        // Joining never holds up berthd's start: it runs as messages.
        let _ = myself.cast(ClusterMsg::Connect);
        myself.send_interval(Duration::from_millis((LEASE_TTL as u64 * 1000) / 4), || {
            ClusterMsg::Tick
        });
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        st: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterMsg::Connect => {
                if st.connected {
                    return Ok(());
                }
                if let Err(e) = st.connect(&myself).await {
                    st.lost(&myself, &e);
                }
            }
            ClusterMsg::Tick => {
                if st.connected {
                    let c = st.c.clone();
                    if let Err(e) = c.call("renewing the lease", c.store.keep_alive()).await {
                        st.lost(&myself, &e);
                    }
                }
            }
            ClusterMsg::Watched(s, ev) if s == st.session => st.watched(ev),
            ClusterMsg::Watched(..) => {}
            ClusterMsg::WatchEnded(s) if s == st.session && st.connected => {
                st.lost(&myself, "the watch ended");
            }
            ClusterMsg::WatchEnded(_) => {}
            ClusterMsg::SyncPeers(net) => {
                if st.connected {
                    if let Err(e) = st.sync_network(&net).await {
                        st.lost(&myself, &e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The first subnets overlay networks get without `--subnet` (dockerd's
/// swarm default: /24s of 10.0.0.0/8).
pub const OVERLAY_POOL: &str = "10.0.0.0/8";
pub const OVERLAY_POOL_SIZE: u8 = 24;
/// VXLAN IDs handed out from here up (as dockerd's overlay driver).
pub const FIRST_VNI: u32 = 4096;
/// Bytes the VXLAN encapsulation adds (outer IPv4, UDP, VXLAN, Ethernet).
pub const VXLAN_OVERHEAD: u32 = 50;
/// An overlay network's MTU when nothing sets one: a 1500-byte underlay
/// less the VXLAN encapsulation.
pub const OVERLAY_MTU: u32 = 1500 - VXLAN_OVERHEAD;

/// Make a global network in the cluster store: its name, subnets and VXLAN
/// ID are claimed with the record in one transaction (a race with another
/// node's create is retried with the next free subnet and ID). `used`:
/// subnets this node already routes (its networks, its host routes).
pub async fn create_network(
    c: &Cluster,
    rec: &mut NetworkRecord,
    used: &[Cidr],
) -> Result<(), NetworkError> {
    if rec.enable_ipv6 {
        return Err(NetworkError::Invalid(
            "IPv6 is not supported on overlay networks by berth".into(),
        ));
    }
    if rec.options.contains_key("encrypted") {
        return Err(NetworkError::Invalid(
            "encrypted overlay networks are not supported by berth: traffic between nodes is plain VXLAN"
                .into(),
        ));
    }
    if crate::network::remote::is_ipam_plugin(&rec.ipam_driver) {
        return Err(NetworkError::Invalid(
            "IPAM plugins are not supported on overlay networks by berth".into(),
        ));
    }
    if rec.id.len() < 12 {
        return Err(NetworkError::Invalid("bad network ID".into()));
    }
    rec.bridge = format!("ov-{}", &rec.id[..12]);
    if rec.mtu == 0 {
        rec.mtu = OVERLAY_MTU;
    }
    let unreachable = |e: String| {
        NetworkError::StoreUnavailable(format!("cannot create network {}: {e}", rec.name))
    };
    let asked: Vec<IpamPool> = rec.v4_pools().cloned().collect();
    for _ in 0..16 {
        let list = |what: &'static str| {
            let prefix = format!("{PREFIX}{what}/");
            async move {
                c.call("reading the cluster", c.store.list(&prefix))
                    .await
                    .map(|(kvs, _)| {
                        kvs.into_iter()
                            .filter_map(|kv| Some(kv.key.strip_prefix(&prefix)?.to_string()))
                            .collect::<Vec<String>>()
                    })
            }
        };
        let names = list("names").await.map_err(unreachable)?;
        if names.contains(&rec.name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                rec.name
            )));
        }
        let mut taken: Vec<Cidr> = list("subnets")
            .await
            .map_err(unreachable)?
            .iter()
            .filter_map(|s| Cidr::parse(&s.replace('_', "/")))
            .collect();
        taken.extend_from_slice(used);
        let vnis: std::collections::BTreeSet<u32> = list("vnis")
            .await
            .map_err(unreachable)?
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect();
        let mut pools = asked.clone();
        for p in &pools {
            if let Some(c) = Cidr::parse(&p.subnet) {
                if taken.iter().any(|t| t.overlaps(&c)) {
                    return Err(NetworkError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
            }
        }
        if pools.is_empty() {
            let base =
                Cidr::parse(OVERLAY_POOL).ok_or_else(|| NetworkError::System("bad pool".into()))?;
            let step = 1u64 << (32 - OVERLAY_POOL_SIZE);
            let mut a = base.network() as u64;
            let mut found = None;
            while a <= base.broadcast() as u64 {
                let cand = Cidr {
                    addr: std::net::Ipv4Addr::from(a as u32),
                    prefix: OVERLAY_POOL_SIZE,
                };
                if !taken.iter().any(|t| t.overlaps(&cand)) {
                    found = Some(cand);
                    break;
                }
                a += step;
            }
            let Some(cand) = found else {
                return Err(NetworkError::Forbidden(
                    "all predefined address pools have been fully subnetted".into(),
                ));
            };
            pools.push(IpamPool {
                subnet: cand.canonical(),
                ip_range: String::new(),
                gateway: cand.first_host().to_string(),
                aux: Default::default(),
                pool_id: String::new(),
            });
        }
        let vni = (FIRST_VNI..)
            .find(|v| !vnis.contains(v))
            .unwrap_or(FIRST_VNI);
        rec.pools.retain(|p| p.is_v6());
        rec.pools.extend(pools.iter().cloned());
        rec.options.insert(VXLAN_ID.into(), vni.to_string());
        let mut global = rec.clone();
        global.endpoints.clear();
        global.peers.clear();
        let id = rec.id.clone().into_bytes();
        let mut kvs = vec![
            Kv {
                key: keys::name(&rec.name),
                value: id.clone(),
            },
            Kv {
                key: keys::vni(vni),
                value: id.clone(),
            },
        ];
        kvs.extend(pools.iter().map(|p| Kv {
            key: keys::subnet(&p.subnet),
            value: id.clone(),
        }));
        kvs.push(Kv {
            key: keys::network(&rec.id),
            value: serde_json::to_vec(&global).unwrap_or_default(),
        });
        let won = c
            .call("creating the network", c.store.create_all(kvs))
            .await
            .map_err(unreachable)?;
        if won {
            return Ok(());
        }
        // Another node took the name, a subnet or the ID meanwhile.
    }
    Err(NetworkError::System(format!(
        "creating network {}: the cluster store kept refusing the claims",
        rec.name
    )))
}

/// Ask the membership actor to send an overlay network's actor its peers.
pub fn sync_peers(net: &str) {
    if let Some(a) = ActorRef::<ClusterMsg>::where_is(CLUSTER) {
        let _ = a.cast(ClusterMsg::SyncPeers(net.to_string()));
    }
}

#[cfg(test)]
mod tests;
