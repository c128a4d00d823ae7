//! A network's durable record: its configuration, its IPAM pools and the
//! endpoints (one per connected running container) with their addresses.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub const NETWORK_RECORD_VERSION: u32 = 1;
/// dockerd's option naming an overlay network's VXLAN ID.
pub const VXLAN_ID: &str = "com.docker.network.driver.overlay.vxlanid_list";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamPool {
    /// `a.b.c.d/n`
    pub subnet: String,
    #[serde(default)]
    pub ip_range: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub aux: BTreeMap<String, String>,
    /// The pool's ID at an IPAM plugin (`--ipam-driver`); empty for
    /// berthd's own IPAM.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pool_id: String,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `tcp` or `udp`.
    pub proto: String,
    pub container_port: u16,
    /// `0.0.0.0` for all host addresses.
    pub host_ip: String,
    /// 0 asks for an ephemeral port; an endpoint holds the chosen one.
    pub host_port: u16,
    /// For a requested range `a-b`: its last port (0 when none).
    #[serde(default)]
    pub host_port_end: u16,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub container: String,
    /// The container's name without the slash.
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Links (`target:alias`): names only this container resolves.
    #[serde(default)]
    pub links: Vec<String>,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    /// The container's network namespace file.
    pub sandbox: String,
    /// The interface inside the container (`eth0`...).
    pub ifname: String,
    /// The host end of the veth pair (a plugin's network: the interface
    /// its `Join` named, moved into the container).
    pub host_ifname: String,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// An address the user asked for (kept across restarts).
    #[serde(default)]
    pub static_ip: bool,
    /// IPv6 (networks with IPv6 enabled): address, prefix, gateway.
    #[serde(default)]
    pub ipv6: String,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: String,
}

/// An endpoint of an overlay network as the cluster store holds it: what
/// other nodes need to reach it (its tunnel endpoint) and to resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub container: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ip: String,
    pub mac: String,
    /// The node's ID and its VXLAN endpoint (its advertised address).
    pub node: String,
    pub vtep: String,
}

impl Peer {
    pub fn of(ep: &Endpoint, node: &crate::cluster::Node) -> Peer {
        Peer {
            container: ep.container.clone(),
            name: ep.name.clone(),
            aliases: ep.aliases.clone(),
            ip: ep.ip.clone(),
            mac: ep.mac.clone(),
            node: node.id.clone(),
            vtep: node.vtep(),
        }
    }
}

/// What a container asks of a network when it connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRequest {
    pub container: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub links: Vec<String>,
    /// `--mac-address`; none: derived from the address.
    pub mac: Option<String>,
    /// `--ip`
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`
    pub ip6: Option<std::net::Ipv6Addr>,
    pub sandbox: String,
    pub ifname: String,
    pub ports: Vec<PortMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub version: u32,
    pub id: String,
    pub name: String,
    /// `bridge`, `host`, `null`, or a network plugin's name.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub ipam_driver: String,
    /// `--ipam-opt`: passed to an IPAM plugin's `RequestPool`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ipam_options: BTreeMap<String, String>,
    #[serde(default)]
    pub pools: Vec<IpamPool>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The bridge interface (bridge driver).
    #[serde(default)]
    pub bridge: String,
    /// Inter-container traffic allowed on the bridge.
    #[serde(default = "yes")]
    pub icc: bool,
    /// Masquerade traffic leaving the bridge.
    #[serde(default = "yes")]
    pub masquerade: bool,
    #[serde(default)]
    pub mtu: u32,
    /// The predefined `bridge`, `host` and `none` networks.
    #[serde(default)]
    pub predefined: bool,
    /// By container ID.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// An overlay network: the endpoints of other nodes, by container ID
    /// (kept on disk so the data path and names survive a store outage).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peers: BTreeMap<String, Peer>,
}

fn yes() -> bool {
    true
}

impl IpamPool {
    pub fn is_v6(&self) -> bool {
        self.subnet.contains(':')
    }
}

impl NetworkRecord {
    /// The IPv4 pools.
    pub fn v4_pools(&self) -> impl Iterator<Item = &IpamPool> {
        self.pools.iter().filter(|p| !p.is_v6())
    }
    /// The IPv6 pool (with IPv6 enabled).
    pub fn v6_pool(&self) -> Option<&IpamPool> {
        self.pools
            .iter()
            .find(|p| p.is_v6())
            .filter(|_| self.enable_ipv6)
    }
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }
    /// A network of a legacy network plugin (`docker network create -d`).
    pub fn is_remote(&self) -> bool {
        !super::remote::is_builtin(&self.driver)
    }
    /// A global network of the cluster (VXLAN between nodes).
    pub fn is_overlay(&self) -> bool {
        self.driver == "overlay"
    }
    /// `local`, or `global` for a network every node of the cluster shares.
    pub fn scope(&self) -> &'static str {
        if self.is_overlay() {
            "global"
        } else {
            "local"
        }
    }
    /// The VXLAN ID of an overlay network.
    pub fn vni(&self) -> Option<u32> {
        self.options.get(VXLAN_ID).and_then(|v| v.parse().ok())
    }
    /// Containers can join it: a bridge, an overlay or a plugin's network.
    pub fn connectable(&self) -> bool {
        self.is_bridge() || self.is_overlay() || self.is_remote()
    }
    /// A user-defined network (embedded DNS, aliases): not the default bridge.
    pub fn user_defined(&self) -> bool {
        !self.predefined
    }
    pub fn event_attrs(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("name".into(), self.name.clone());
        m.insert("type".into(), self.driver.clone());
        m
    }
}

/// A MAC address derived from the IPv4 address, as dockerd does.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}
