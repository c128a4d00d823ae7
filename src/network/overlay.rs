//! The overlay driver: a global network of the cluster, carried between
//! nodes by the kernel's VXLAN. On each node the network is a bridge
//! (`ov-<id12>`, no address: nothing is routed in or out) with a VXLAN
//! device (`vx-<id12>`: the network's VNI, this node's advertised address
//! as source, UDP 4789, no learning, no multicast) as one of its ports and
//! the containers' veths as the others. Other nodes' endpoints are
//! programmed from the cluster store, as dockerd's overlay driver does: a
//! permanent neighbour entry on the VXLAN device (its ARP proxy answers
//! for them on this node) and a forwarding entry sending their MAC to
//! their node's address.

use std::net::{IpAddr, Ipv4Addr};

use berth_actors::network::{Endpoint, NetworkRecord, Peer};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVxlan};
use tracing::warn;

use super::driver::{Bridge, DriverFuture, NetworkDriver};
use super::link;

/// The UDP port of VXLAN (IANA), as dockerd's overlay driver uses.
pub const VXLAN_PORT: u16 = 4789;

/// The VXLAN device of a network (the bridge is `rec.bridge`).
pub fn vxlan_name(rec: &NetworkRecord) -> String {
    format!("vx-{}", &rec.id[..12.min(rec.id.len())])
}

pub struct Overlay {
    nl: Handle,
    nl_lock: tokio::sync::Mutex<()>,
    /// Plumbs the containers' veths (as for a bridge network, without a
    /// gateway: the overlay is not routed).
    ports: Bridge,
    /// This node's VXLAN endpoint (`cluster-advertise`); none without a
    /// cluster store.
    pub local: Option<Ipv4Addr>,
}

impl Overlay {
    pub fn new(nl: Handle, ports: Bridge, local: Option<Ipv4Addr>) -> Overlay {
        Overlay {
            nl,
            nl_lock: tokio::sync::Mutex::new(()),
            ports,
            local,
        }
    }

    async fn ensure(&self, rec: &NetworkRecord) -> Result<u32, String> {
        let vni = rec
            .vni()
            .ok_or_else(|| format!("network {} has no VXLAN ID", rec.name))?;
        let local = self
            .local
            .ok_or_else(|| "overlay networks need cluster-advertise".to_string())?;
        let _g = self.nl_lock.lock().await;
        let br = match link::index_of(&self.nl, &rec.bridge).await? {
            Some(i) => i,
            None => {
                let mut b = LinkBridge::new(&rec.bridge);
                if rec.mtu > 0 {
                    b = b.mtu(rec.mtu);
                }
                self.nl
                    .link()
                    .add(b.build())
                    .execute()
                    .await
                    .map_err(|e| format!("creating the bridge {}: {e}", rec.bridge))?;
                link::index_of(&self.nl, &rec.bridge)
                    .await?
                    .ok_or_else(|| format!("the bridge {} vanished", rec.bridge))?
            }
        };
        let vx = vxlan_name(rec);
        let vxi = match link::index_of(&self.nl, &vx).await? {
            Some(i) => i,
            None => {
                let mut m = LinkVxlan::new(&vx, vni)
                    .local(local)
                    .port(VXLAN_PORT)
                    .learning(false)
                    .proxy(true)
                    .l2miss(false)
                    .l3miss(false)
                    .controller(br);
                if rec.mtu > 0 {
                    m = m.mtu(rec.mtu);
                }
                self.nl.link().add(m.build()).execute().await.map_err(|e| {
                    format!("creating the VXLAN device {vx} (VNI {vni}, local {local}): {e}")
                })?;
                link::index_of(&self.nl, &vx)
                    .await?
                    .ok_or_else(|| format!("the VXLAN device {vx} vanished"))?
            }
        };
        for (i, n) in [(br, &rec.bridge), (vxi, &vx)] {
            self.nl
                .link()
                .set(LinkUnspec::new_with_index(i).up().build())
                .execute()
                .await
                .map_err(|e| format!("setting {n} up: {e}"))?;
        }
        // Ports no endpoint names (a connect killed between plumbing and
        // saving) go, as on a bridge network.
        let keep: Vec<String> = rec
            .endpoints
            .values()
            .map(|e| e.host_ifname.clone())
            .collect();
        for port in link::ports_of(&self.nl, br).await {
            if port.starts_with("vb") && !keep.contains(&port) {
                warn!(network = %rec.name, %port, "removing a veth no endpoint names");
                let _ = link::delete(&self.nl, &port).await;
            }
        }
        Ok(vxi)
    }

    /// Program another node's endpoint: ARP answered here, frames to its
    /// MAC tunnelled to its node.
    pub async fn peer_add(&self, rec: &NetworkRecord, p: &Peer) -> Result<(), String> {
        let (ip, vtep) = parse_peer(p)?;
        let mac = link::parse_mac(&p.mac);
        let _g = self.nl_lock.lock().await;
        let vx = vxlan_name(rec);
        let idx = link::index_of(&self.nl, &vx)
            .await?
            .ok_or_else(|| format!("the VXLAN device {vx} of network {} is missing", rec.name))?;
        self.nl
            .neighbours()
            .add(idx, IpAddr::V4(ip))
            .link_layer_address(&mac)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("adding the neighbour {ip} on {vx}: {e}"))?;
        self.nl
            .neighbours()
            .add_bridge(idx, &mac)
            .flags(NeighbourFlags::Own)
            .destination(IpAddr::V4(vtep))
            .replace()
            .execute()
            .await
            .map_err(|e| {
                format!(
                    "adding the forwarding entry {} via {vtep} on {vx}: {e}",
                    p.mac
                )
            })
    }

    pub async fn peer_del(&self, rec: &NetworkRecord, p: &Peer) {
        let Ok((ip, vtep)) = parse_peer(p) else {
            return;
        };
        let mac = link::parse_mac(&p.mac);
        let _g = self.nl_lock.lock().await;
        let vx = vxlan_name(rec);
        let Ok(Some(idx)) = link::index_of(&self.nl, &vx).await else {
            return;
        };
        let mut n = NeighbourMessage::default();
        n.header.family = AddressFamily::Inet;
        n.header.ifindex = idx;
        n.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        if let Err(e) = self.nl.neighbours().del(n).execute().await {
            warn!(network = %rec.name, %ip, "removing the neighbour: {e}");
        }
        let mut f = NeighbourMessage::default();
        f.header.family = AddressFamily::Bridge;
        f.header.ifindex = idx;
        f.header.flags = NeighbourFlags::Own;
        f.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        f.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                vtep,
            )));
        if let Err(e) = self.nl.neighbours().del(f).execute().await {
            warn!(network = %rec.name, mac = %p.mac, "removing the forwarding entry: {e}");
        }
    }
}

fn parse_peer(p: &Peer) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let ip: Ipv4Addr =
        p.ip.parse()
            .map_err(|_| format!("bad peer address {}", p.ip))?;
    let vtep: Ipv4Addr = p
        .vtep
        .parse()
        .map_err(|_| format!("bad node address {}", p.vtep))?;
    Ok((ip, vtep))
}

impl NetworkDriver for Overlay {
    fn setup<'a>(&'a self, rec: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.ensure(rec).await?;
            for p in rec.peers.values() {
                if let Err(e) = self.peer_add(rec, p).await {
                    warn!(network = %rec.name, peer = %p.name, "{e}");
                }
            }
            Ok(())
        })
    }

    fn teardown<'a>(&'a self, rec: &'a NetworkRecord) -> DriverFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let _g = self.nl_lock.lock().await;
            link::delete(&self.nl, &vxlan_name(rec)).await?;
            link::delete(&self.nl, &rec.bridge).await
        })
    }

    fn attach<'a>(
        &'a self,
        rec: &'a NetworkRecord,
        ep: &'a Endpoint,
    ) -> DriverFuture<'a, Result<(), String>> {
        self.ports.attach(rec, ep)
    }

    fn detach<'a>(&'a self, rec: &'a NetworkRecord, ep: &'a Endpoint) -> DriverFuture<'a, ()> {
        self.ports.detach(rec, ep)
    }
}
