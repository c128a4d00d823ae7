//! The NetworkActor: one per network. It owns the network's IPAM and its
//! endpoints, drives the host (bridge, veth pairs, firewall) and publishes
//! every change to the read model. Rebuilding the actor re-reads the
//! record and reconciles the host without tearing down what works.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tracing::warn;

use super::index::NetworkIndex;
use super::ipam::{self, Cidr};
use super::model::Peer;
use super::model::{mac_for, Endpoint, EndpointRequest, NetworkRecord};
use super::supervisor::SupervisorMsg;
use super::{NetworkError, NetworkMsg};
use crate::cluster::{keys, Cluster, Kv};
use crate::container::ContainerIndex;
use crate::directory::NETWORKS;
use crate::events::Events;
use crate::ports::NetworkHost;
use crate::resave::Unsaved;

pub fn actor_name(id: &str) -> String {
    format!("network:{id}")
}

pub struct NetworkActor;

pub struct NetworkArgs {
    pub record: NetworkRecord,
    pub host: Arc<dyn NetworkHost>,
    pub index: Arc<watch::Sender<Arc<NetworkIndex>>>,
    pub events: Events,
    /// The cluster store (overlay networks), when berthd has one.
    pub cluster: Option<Cluster>,
    /// The containers' read model: an endpoint whose container is not in
    /// it any more is stale (see [`NetworkState::remove`]).
    pub containers: Option<watch::Receiver<Arc<ContainerIndex>>>,
}

pub struct NetworkState {
    rec: NetworkRecord,
    host: Arc<dyn NetworkHost>,
    index: Arc<watch::Sender<Arc<NetworkIndex>>>,
    events: Events,
    cluster: Option<Cluster>,
    containers: Option<watch::Receiver<Arc<ContainerIndex>>>,
    /// The last save failed (a full disk): the record is saved again after
    /// the next change or [`crate::resave::RESAVE_AFTER`] at the latest.
    unsaved: Unsaved,
}

impl NetworkState {
    fn publish(&self) {
        let rec = Arc::new(self.rec.clone());
        self.index.send_modify(|ix| {
            let mut next = (**ix).clone();
            next.by_id.insert(rec.id.clone(), rec);
            *ix = Arc::new(next);
        });
    }

    fn save(&mut self) -> Result<(), NetworkError> {
        match self.host.save(&self.rec) {
            Ok(()) => {
                if self.unsaved.saved() {
                    tracing::info!(network = %self.rec.name, "the network record is saved again");
                }
                Ok(())
            }
            Err(e) => Err(NetworkError::System(format!("saving the network: {e}"))),
        }
    }

    /// Save a change the host has already made (an endpoint gone, peers
    /// programmed): one the disk refuses is saved again later, never left
    /// half-known (the actor, its snapshot and the reply agree).
    fn save_or_later(&mut self) {
        if let Err(e) = self.save() {
            if self.unsaved.failed() {
                warn!(network = %self.rec.name, "{e}; saving again until it is saved");
            }
        }
    }

    fn event(&self, action: &str, container: Option<&str>) {
        let mut attrs = self.rec.event_attrs();
        if let Some(c) = container {
            attrs.insert("container".into(), c.to_string());
        }
        self.events.publish("network", action, &self.rec.id, attrs);
    }

    fn taken(&self) -> BTreeSet<Ipv4Addr> {
        let mut t = BTreeSet::new();
        for p in &self.rec.pools {
            t.extend(p.gateway.parse::<Ipv4Addr>().ok());
            t.extend(p.aux.values().filter_map(|a| a.parse::<Ipv4Addr>().ok()));
        }
        t.extend(
            self.rec
                .endpoints
                .values()
                .filter_map(|e| e.ip.parse::<Ipv4Addr>().ok()),
        );
        t
    }

    /// The address for a new endpoint: the one asked for, or the lowest free.
    fn address(&self, want: Option<Ipv4Addr>) -> Result<(Ipv4Addr, Cidr, String), NetworkError> {
        self.address_in(want, &self.taken())
    }

    fn address_in(
        &self,
        want: Option<Ipv4Addr>,
        taken: &BTreeSet<Ipv4Addr>,
    ) -> Result<(Ipv4Addr, Cidr, String), NetworkError> {
        for p in self.rec.v4_pools() {
            let Some(subnet) = Cidr::parse(&p.subnet) else {
                continue;
            };
            let range = Cidr::parse(&p.ip_range);
            let ip = match want {
                Some(ip) if subnet.contains(ip) => {
                    if taken.contains(&ip) {
                        return Err(NetworkError::Forbidden(format!(
                            "Address already in use: {ip}"
                        )));
                    }
                    ip
                }
                Some(_) => continue,
                None => match ipam::allocate(&subnet, range.as_ref(), taken) {
                    Some(ip) => ip,
                    None => continue,
                },
            };
            return Ok((ip, subnet, p.gateway.clone()));
        }
        Err(match want {
            Some(ip) => NetworkError::Invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )),
            None => NetworkError::System(format!(
                "no available IPv4 addresses on this network's address pools: {} ({})",
                self.rec.name, self.rec.id
            )),
        })
    }

    /// The IPv6 address for a new endpoint (networks with IPv6 enabled).
    fn address6(
        &self,
        want: Option<std::net::Ipv6Addr>,
    ) -> Result<Option<(std::net::Ipv6Addr, u8, String)>, NetworkError> {
        let Some(p) = self.rec.v6_pool() else {
            return match want {
                Some(_) => Err(NetworkError::Invalid(format!(
                    "network {} does not have IPv6 enabled",
                    self.rec.name
                ))),
                None => Ok(None),
            };
        };
        let Some(subnet) = ipam::Cidr6::parse(&p.subnet) else {
            return Ok(None);
        };
        let mut taken: BTreeSet<std::net::Ipv6Addr> = self
            .rec
            .endpoints
            .values()
            .filter_map(|e| e.ipv6.parse().ok())
            .collect();
        taken.extend(p.gateway.parse::<std::net::Ipv6Addr>().ok());
        let ip = match want {
            Some(ip) if !subnet.contains(ip) => {
                return Err(NetworkError::Invalid(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )))
            }
            Some(ip) if taken.contains(&ip) => {
                return Err(NetworkError::Forbidden(format!(
                    "Address already in use: {ip}"
                )))
            }
            Some(ip) => ip,
            None => ipam::allocate6(&subnet, ipam::Cidr6::parse(&p.ip_range).as_ref(), &taken)
                .ok_or_else(|| {
                    NetworkError::System(format!(
                        "no available IPv6 addresses on network {}",
                        self.rec.name
                    ))
                })?,
        };
        Ok(Some((ip, subnet.prefix, p.gateway.clone())))
    }

    async fn connect(&mut self, req: EndpointRequest) -> Result<Endpoint, NetworkError> {
        if !self.rec.connectable() {
            return Err(NetworkError::Forbidden(format!(
                "containers cannot be connected to the {} network",
                self.rec.name
            )));
        }
        if let Some(old) = self.rec.endpoints.get(&req.container) {
            // The same container's start asking again for the sandbox it
            // made anew (its actor was killed after the first ask): the old
            // endpoint's interfaces went with the old namespace.
            if !req.sandbox.is_empty() && old.sandbox == req.sandbox {
                warn!(network = %self.rec.name, container = %req.container, "replacing the endpoint of a start that did not finish");
                self.disconnect(&req.container).await?;
            }
        }
        if self.rec.endpoints.contains_key(&req.container) {
            return Err(NetworkError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                req.name, self.rec.name
            )));
        }
        if req.ip.is_some() && !self.rec.user_defined() {
            return Err(NetworkError::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let ipam_plugin = super::remote::is_ipam_plugin(&self.rec.ipam_driver);
        let (ip, prefix, gateway) = if ipam_plugin {
            super::remote::request_address(&self.rec, req.ip, req.mac.as_deref().unwrap_or(""))
                .await?
        } else if self.rec.is_overlay() {
            self.claim(req.ip, &req.container).await?
        } else {
            let (ip, subnet, gateway) = self.address(req.ip)?;
            (ip, subnet.prefix, gateway)
        };
        // IPv6 of an IPAM plugin's network: not asked for (IPv4 only).
        let v6 = if ipam_plugin {
            None
        } else {
            self.address6(req.ip6)?
        };
        let mut ep = Endpoint {
            id: endpoint_id(&self.rec.id, &req.container),
            container: req.container.clone(),
            name: req.name.clone(),
            aliases: req.aliases.clone(),
            links: req.links.clone(),
            ip: ip.to_string(),
            prefix,
            gateway,
            mac: req.mac.clone().unwrap_or_else(|| mac_for(ip)),
            sandbox: req.sandbox.clone(),
            ifname: req.ifname.clone(),
            host_ifname: host_ifname(&self.rec.id, &req.container),
            ports: req.ports.clone(),
            static_ip: req.ip.is_some(),
            ipv6: v6.as_ref().map(|v| v.0.to_string()).unwrap_or_default(),
            prefix6: v6.as_ref().map(|v| v.1).unwrap_or(0),
            gateway6: v6.map(|v| v.2).unwrap_or_default(),
        };
        let r = self.plumb(&mut ep, &req.name).await;
        if r.is_err() && ipam_plugin {
            super::remote::release_address(&self.rec, &ep.ip).await;
        }
        if r.is_err() && self.rec.is_overlay() {
            self.unclaim(&ep).await;
        }
        r?;
        crate::failpoint::hit("network-connect:endpoint");
        self.rec.endpoints.insert(req.container.clone(), ep.clone());
        if let Err(e) = self.save() {
            self.rec.endpoints.remove(&req.container);
            self.host.detach(&self.rec, &ep).await;
            if self.rec.is_remote() {
                let _ = super::remote::leave_and_delete(&self.rec, &ep).await;
            }
            if ipam_plugin {
                super::remote::release_address(&self.rec, &ep.ip).await;
            }
            if self.rec.is_overlay() {
                self.unclaim(&ep).await;
            }
            return Err(e);
        }
        crate::failpoint::hit("network-connect:saved");
        if self.rec.is_overlay() {
            // Other nodes learn of it (names, tunnel entries) from the store.
            if let Err(e) = self.announce(&ep).await {
                self.rec.endpoints.remove(&req.container);
                self.save_or_later();
                self.host.detach(&self.rec, &ep).await;
                self.unclaim(&ep).await;
                return Err(e);
            }
        }
        self.publish();
        self.event("connect", Some(&req.container));
        Ok(ep)
    }

    /// The endpoint on the host (and at its network plugin), with its
    /// published ports as the host made them.
    async fn plumb(&mut self, ep: &mut Endpoint, name: &str) -> Result<(), NetworkError> {
        if self.rec.is_overlay() {
            // Not routed from the host: nothing is published on it.
            ep.ports.clear();
        }
        if self.rec.is_remote() {
            // The plugin publishes nothing of berthd's: its own business.
            ep.ports.clear();
            super::remote::create_and_join(&self.rec, ep).await?;
        }
        let attached = self.host.attach(&self.rec, ep).await;
        if attached.is_err() && self.rec.is_remote() {
            let _ = super::remote::leave_and_delete(&self.rec, ep).await;
        }
        ep.ports = attached.map_err(|e| {
            if e.contains("port is already allocated") {
                NetworkError::System(format!(
                    "driver failed programming external connectivity on endpoint {name} ({}): {e}",
                    ep.id
                ))
            } else {
                NetworkError::System(e)
            }
        })?;
        Ok(())
    }

    async fn disconnect(&mut self, container: &str) -> Result<(), NetworkError> {
        let Some(ep) = self.rec.endpoints.remove(container) else {
            // No endpoint recorded: the veth a connect left when its actor
            // was killed between plumbing and saving goes (by its name).
            if self.rec.is_bridge() {
                let stray = Endpoint {
                    id: endpoint_id(&self.rec.id, container),
                    container: container.to_string(),
                    name: String::new(),
                    aliases: vec![],
                    links: vec![],
                    ip: String::new(),
                    prefix: 0,
                    gateway: String::new(),
                    mac: String::new(),
                    sandbox: String::new(),
                    ifname: String::new(),
                    host_ifname: host_ifname(&self.rec.id, container),
                    ports: vec![],
                    static_ip: false,
                    ipv6: String::new(),
                    prefix6: 0,
                    gateway6: String::new(),
                };
                self.host.detach(&self.rec, &stray).await;
            }
            return Ok(());
        };
        self.host.detach(&self.rec, &ep).await;
        if self.rec.is_remote() {
            if let Err(e) = super::remote::leave_and_delete(&self.rec, &ep).await {
                warn!(network = %self.rec.name, container, "leaving the plugin's network: {e}");
            }
        }
        if super::remote::is_ipam_plugin(&self.rec.ipam_driver) {
            super::remote::release_address(&self.rec, &ep.ip).await;
        }
        if self.rec.is_overlay() {
            self.unclaim(&ep).await;
        }
        crate::failpoint::hit("network-disconnect:removed");
        self.save_or_later();
        crate::failpoint::hit("network-disconnect:saved");
        self.publish();
        self.event("disconnect", Some(container));
        Ok(())
    }

    async fn remove(&mut self) -> Result<(), NetworkError> {
        if self.rec.predefined {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                self.rec.name
            )));
        }
        self.drop_stale_endpoints().await?;
        if !self.rec.endpoints.is_empty() {
            return Err(NetworkError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                self.rec.name, self.rec.id
            )));
        }
        // Without a cluster store (it was taken out of the configuration)
        // an overlay network left on disk is only this node's to remove.
        if self.rec.is_overlay() && self.cluster.is_some() {
            self.remove_global().await?;
        }
        if self.rec.is_remote() {
            match super::remote::delete_network(&self.rec).await {
                Ok(()) => {}
                // The plugin is gone: its network is forgotten.
                Err(NetworkError::PluginNotFound(p)) => {
                    warn!(network = %self.rec.name, "plugin {p} not found; removing the record only")
                }
                Err(e) => return Err(e),
            }
        }
        self.host
            .teardown(&self.rec)
            .await
            .map_err(NetworkError::System)?;
        if super::remote::is_ipam_plugin(&self.rec.ipam_driver) {
            super::remote::release_pools(&self.rec).await;
        }
        crate::failpoint::hit("network-rm:bridge");
        self.forget()
    }
}

impl NetworkState {
    /// Endpoints of containers that no longer exist are not active: they
    /// go (with their veth and address), each with a warning naming it.
    /// A container is in the read model from its create until its removal
    /// has left its networks, so an endpoint of one that is not there was
    /// left by a removal that could not reach this network.
    async fn drop_stale_endpoints(&mut self) -> Result<(), NetworkError> {
        let Some(containers) = &self.containers else {
            return Ok(());
        };
        let known = containers.borrow().clone();
        let stale: Vec<String> = self
            .rec
            .endpoints
            .keys()
            .filter(|c| !known.by_id.contains_key(c.as_str()))
            .cloned()
            .collect();
        for c in stale {
            warn!(network = %self.rec.name, container = %c, "removing the endpoint of a container that no longer exists");
            self.disconnect(&c).await?;
        }
        Ok(())
    }

    /// The host part is gone: the record, the read model's entry, then the
    /// `destroy` event.
    fn forget(&mut self) -> Result<(), NetworkError> {
        self.host
            .delete(&self.rec.id)
            .map_err(|e| NetworkError::System(format!("removing the network's record: {e}")))?;
        let id = self.rec.id.clone();
        self.index.send_modify(|ix| {
            let mut next = (**ix).clone();
            next.by_id.remove(&id);
            *ix = Arc::new(next);
        });
        self.event("destroy", None);
        Ok(())
    }

    fn cluster(&self) -> Result<&Cluster, NetworkError> {
        self.cluster.as_ref().ok_or_else(|| {
            NetworkError::Forbidden(format!(
                "network {} is an overlay network and this berthd has no cluster-store",
                self.rec.name
            ))
        })
    }

    /// An address no node of the cluster holds: claimed in the store by
    /// a transaction (a key per address), so two nodes never hand out one.
    async fn claim(
        &self,
        want: Option<Ipv4Addr>,
        container: &str,
    ) -> Result<(Ipv4Addr, u8, String), NetworkError> {
        let c = self.cluster()?;
        let unreachable = |e: String| {
            NetworkError::StoreUnavailable(format!(
                "cannot attach to overlay network {}: {e}",
                self.rec.name
            ))
        };
        let (held, _) = c
            .call(
                "reading the network's addresses",
                c.store.list(&keys::ipam_of(&self.rec.id)),
            )
            .await
            .map_err(unreachable)?;
        let prefix = keys::ipam_of(&self.rec.id);
        let mut taken = self.taken();
        taken.extend(
            held.iter()
                .filter_map(|kv| kv.key.strip_prefix(&prefix)?.parse::<Ipv4Addr>().ok()),
        );
        taken.extend(
            self.rec
                .peers
                .values()
                .filter_map(|p| p.ip.parse::<Ipv4Addr>().ok()),
        );
        let owner = format!("{} {container}", c.me.id).into_bytes();
        for _ in 0..64 {
            let (ip, subnet, _gateway) = self.address_in(want, &taken)?;
            let kv = Kv {
                key: keys::ipam(&self.rec.id, &ip.to_string()),
                value: owner.clone(),
            };
            let won = c
                .call("claiming an address", c.store.create_all(vec![kv]))
                .await
                .map_err(unreachable)?;
            if won {
                // No gateway: the overlay is not routed (the pool's gateway
                // address stays reserved, as dockerd's).
                return Ok((ip, subnet.prefix, String::new()));
            }
            if want.is_some() {
                return Err(NetworkError::Forbidden(format!(
                    "Address already in use: {ip}"
                )));
            }
            taken.insert(ip);
        }
        Err(NetworkError::System(format!(
            "no address could be claimed on network {}",
            self.rec.name
        )))
    }

    /// The endpoint's address and its entry go from the store (best
    /// effort: a node that rejoins removes what it no longer holds).
    async fn unclaim(&self, ep: &Endpoint) {
        let Some(c) = &self.cluster else {
            return;
        };
        let keys = vec![
            keys::endpoint(&self.rec.id, &ep.container),
            keys::ipam(&self.rec.id, &ep.ip),
        ];
        if let Err(e) = c.call("releasing an endpoint", c.store.delete(keys)).await {
            warn!(network = %self.rec.name, container = %ep.container, "{e}; released when the store is back");
        }
    }

    /// Publish an endpoint to the cluster (under this node's lease).
    async fn announce(&self, ep: &Endpoint) -> Result<(), NetworkError> {
        let c = self.cluster()?;
        let v = serde_json::to_vec(&Peer::of(ep, &c.me)).unwrap_or_default();
        c.call(
            "registering the endpoint",
            c.store
                .put(&keys::endpoint(&self.rec.id, &ep.container), v, true),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            NetworkError::StoreUnavailable(format!(
                "cannot attach to overlay network {}: {e}",
                self.rec.name
            ))
        })
    }

    /// Remove a global network from the cluster: refused while any node
    /// has an endpoint on it.
    async fn remove_global(&self) -> Result<(), NetworkError> {
        let c = self.cluster()?;
        let unreachable = |e: String| {
            NetworkError::StoreUnavailable(format!("cannot remove network {}: {e}", self.rec.name))
        };
        let (eps, _) = c
            .call(
                "reading the network's endpoints",
                c.store.list(&keys::endpoints_of(&self.rec.id)),
            )
            .await
            .map_err(unreachable)?;
        if !eps.is_empty() {
            return Err(NetworkError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints ({} in the cluster)",
                self.rec.name,
                self.rec.id,
                eps.len()
            )));
        }
        let mut gone = vec![
            keys::network(&self.rec.id),
            keys::name(&self.rec.name),
            keys::ipam_of(&self.rec.id),
        ];
        gone.extend(self.rec.v4_pools().map(|p| keys::subnet(&p.subnet)));
        gone.extend(self.rec.vni().map(keys::vni));
        c.call("removing the network", c.store.delete(gone))
            .await
            .map_err(unreachable)
    }

    /// Reconcile with the store: the other nodes' endpoints programmed;
    /// this node's registrations put back (a lease that expired took
    /// them) and its stale keys removed (containers gone meanwhile).
    async fn sync(&mut self, view: crate::cluster::NetworkView) {
        self.set_peers(view.peers).await;
        let Some(c) = self.cluster.clone() else {
            return;
        };
        let mut stale = Vec::new();
        for cid in view.mine.keys() {
            if !self.rec.endpoints.contains_key(cid) {
                stale.push(keys::endpoint(&self.rec.id, cid));
            }
        }
        for (ip, cid) in &view.claims {
            let held = self.rec.endpoints.get(cid).is_some_and(|e| e.ip == *ip);
            if !held {
                stale.push(keys::ipam(&self.rec.id, ip));
            }
        }
        if !stale.is_empty() {
            tracing::info!(network = %self.rec.name, keys = stale.len(), "removing this node's stale keys from the cluster store");
            if let Err(e) = c.call("removing stale keys", c.store.delete(stale)).await {
                warn!(network = %self.rec.name, "{e}");
            }
        }
        let eps: Vec<Endpoint> = self.rec.endpoints.values().cloned().collect();
        for ep in eps {
            let registered = view.mine.get(&ep.container) == Some(&Peer::of(&ep, &c.me));
            let claimed = view.claims.get(&ep.ip) == Some(&ep.container);
            if !claimed {
                // Claimed again (a claim of another node on it would be a
                // conflict: reported, the endpoint kept).
                let kv = Kv {
                    key: keys::ipam(&self.rec.id, &ep.ip),
                    value: format!("{} {}", c.me.id, ep.container).into_bytes(),
                };
                match c
                    .call("claiming an address", c.store.create_all(vec![kv]))
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!(network = %self.rec.name, ip = %ep.ip, container = %ep.container, "the address is claimed by another node")
                    }
                    Err(e) => warn!(network = %self.rec.name, "{e}"),
                }
            }
            if !registered {
                if let Err(e) = self.announce(&ep).await {
                    warn!(network = %self.rec.name, container = %ep.container, "{e}");
                }
            }
        }
    }

    /// The other nodes' endpoints are now `peers`.
    async fn set_peers(&mut self, peers: std::collections::BTreeMap<String, Peer>) {
        let old = std::mem::take(&mut self.rec.peers);
        for (k, p) in &old {
            if peers.get(k) != Some(p) {
                self.host.peer_del(&self.rec, p).await;
            }
        }
        for (k, p) in &peers {
            if old.get(k) != Some(p) {
                if let Err(e) = self.host.peer_add(&self.rec, p).await {
                    warn!(network = %self.rec.name, peer = %p.name, "{e}");
                }
            }
        }
        if old != peers {
            self.rec.peers = peers;
            self.save_or_later();
            self.publish();
        } else {
            self.rec.peers = old;
        }
    }

    /// Forget a global network the cluster no longer has (its containers
    /// here are disconnected first).
    async fn abandon(&mut self) -> Result<(), NetworkError> {
        let containers: Vec<String> = self.rec.endpoints.keys().cloned().collect();
        for c in containers {
            warn!(network = %self.rec.name, container = %c, "the network was removed from the cluster; disconnecting");
            self.disconnect(&c).await?;
        }
        for p in self.rec.peers.values() {
            self.host.peer_del(&self.rec, p).await;
        }
        self.host
            .teardown(&self.rec)
            .await
            .map_err(NetworkError::System)?;
        self.forget()
    }
}

/// A stable endpoint ID for a container on a network.
fn endpoint_id(net: &str, container: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{net}/{container}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host end of a container's veth pair: `vb` and ten hex digits,
/// stable for a container on a network (so a restarted berthd finds it).
pub fn host_ifname(net: &str, container: &str) -> String {
    format!("vb{}", &endpoint_id(net, container)[..10])
}

impl Actor for NetworkActor {
    type Msg = NetworkMsg;
    type State = NetworkState;
    type Arguments = NetworkArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<NetworkMsg>,
        a: NetworkArgs,
    ) -> Result<NetworkState, ActorProcessingErr> {
        let st = NetworkState {
            rec: a.record,
            host: a.host,
            index: a.index,
            events: a.events,
            cluster: a.cluster,
            containers: a.containers,
            unsaved: Unsaved::default(),
        };
        // Reconcile the host with the record: what exists is kept.
        if let Err(e) = st.host.setup(&st.rec).await {
            warn!(network = %st.rec.name, "setting up the network: {e}");
        }
        st.publish();
        if st.rec.is_overlay() {
            // The other nodes' endpoints as the store has them now.
            crate::cluster::sync_peers(&st.rec.id);
        }
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<NetworkMsg>,
        msg: NetworkMsg,
        st: &mut NetworkState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NetworkMsg::Connect { req, reply } => {
                let r = st.connect(*req).await;
                let _ = reply.send(r);
            }
            NetworkMsg::Disconnect { container, reply } => {
                let r = st.disconnect(&container).await;
                let _ = reply.send(r);
            }
            NetworkMsg::Sync(view) => st.sync(*view).await,
            NetworkMsg::PeerUp(p) => {
                let mut peers = st.rec.peers.clone();
                peers.insert(p.container.clone(), *p);
                st.set_peers(peers).await;
            }
            NetworkMsg::PeerDown(container) => {
                if st.rec.peers.contains_key(&container) {
                    let mut peers = st.rec.peers.clone();
                    peers.remove(&container);
                    st.set_peers(peers).await;
                }
            }
            NetworkMsg::Abandon => match st.abandon().await {
                Ok(()) => {
                    if let Some(s) = ActorRef::<SupervisorMsg>::where_is(NETWORKS) {
                        let _ = s.send_message(SupervisorMsg::Forget(st.rec.id.clone()));
                    }
                    myself.stop(Some("removed from the cluster".into()));
                }
                Err(e) => {
                    warn!(network = %st.rec.name, "leaving a network the cluster removed: {e}")
                }
            },
            NetworkMsg::Remove { reply } => {
                let r = st.remove().await;
                let ok = r.is_ok();
                let _ = reply.send(r);
                if ok {
                    if let Some(s) = ActorRef::<SupervisorMsg>::where_is(NETWORKS) {
                        let _ = s.send_message(SupervisorMsg::Forget(st.rec.id.clone()));
                    }
                    myself.stop(Some("removed".into()));
                }
            }
            NetworkMsg::Resave => {
                if st.unsaved.due() {
                    st.save_or_later();
                }
            }
        }
        st.unsaved.schedule(&myself, || NetworkMsg::Resave);
        Ok(())
    }
}
