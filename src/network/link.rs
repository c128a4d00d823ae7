//! Links, addresses and routes over rtnetlink: the bridge of a network and
//! the veth pair of an endpoint. Calls in berthd's namespace use one
//! connection; configuration inside a container's namespace runs on a
//! thread in it with its own connection.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

const ENODEV: i32 = 19;
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;

fn code(e: &rtnetlink::Error) -> i32 {
    match e {
        rtnetlink::Error::NetlinkError(m) => -m.raw_code(),
        _ => 0,
    }
}

/// A connection in the calling thread's network namespace.
pub fn connect() -> std::io::Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

pub async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, String> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        Err(e) if code(&e) == ENODEV || code(&e) == ENOENT => Ok(None),
        Err(e) => Err(format!("looking up {name}: {e}")),
    }
}

/// The bridge with `gateway/prefix` on it, up; created if missing, kept
/// as it is if it exists.
pub async fn ensure_bridge(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    mtu: u32,
) -> Result<u32, String> {
    let idx = match index_of(h, name).await? {
        Some(i) => i,
        None => {
            let mut b = LinkBridge::new(name);
            if mtu > 0 {
                b = b.mtu(mtu);
            }
            match h.link().add(b.build()).execute().await {
                Ok(()) => {}
                Err(e) if code(&e) == EEXIST => {}
                Err(e) => return Err(format!("creating the bridge {name}: {e}")),
            }
            index_of(h, name)
                .await?
                .ok_or_else(|| format!("the bridge {name} vanished"))?
        }
    };
    let mut addrs = h.address().get().set_link_index_filter(idx).execute();
    let mut present = false;
    while let Some(a) = addrs.try_next().await.map_err(|e| e.to_string())? {
        present |= a.attributes.iter().any(|at| {
            matches!(at, AddressAttribute::Address(std::net::IpAddr::V4(ip)) if *ip == gateway)
        });
    }
    if !present {
        match h.address().add(idx, gateway.into(), prefix).execute().await {
            Ok(()) => {}
            Err(e) if code(&e) == EEXIST => {}
            Err(e) => return Err(format!("adding {gateway}/{prefix} to {name}: {e}")),
        }
    }
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| format!("setting {name} up: {e}"))?;
    Ok(idx)
}

/// The first IPv4 address (and prefix) on a link, if the link exists.
pub async fn ipv4_of(h: &Handle, name: &str) -> Result<Option<(Ipv4Addr, u8)>, String> {
    let Some(idx) = index_of(h, name).await? else {
        return Ok(None);
    };
    let mut addrs = h.address().get().set_link_index_filter(idx).execute();
    while let Some(a) = addrs.try_next().await.map_err(|e| e.to_string())? {
        for at in &a.attributes {
            if let AddressAttribute::Address(std::net::IpAddr::V4(ip)) = at {
                return Ok(Some((*ip, a.header.prefix_len)));
            }
        }
    }
    Ok(None)
}

/// Add an IPv6 address without duplicate address detection (usable at
/// once); an existing one is fine.
pub async fn add_v6(
    h: &Handle,
    idx: u32,
    ip: std::net::Ipv6Addr,
    prefix: u8,
) -> Result<(), String> {
    let mut req = h.address().add(idx, ip.into(), prefix);
    req.message_mut()
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if code(&e) == EEXIST => Ok(()),
        Err(e) => Err(format!("adding {ip}/{prefix}: {e}")),
    }
}

/// An IPv6 address for an interface: address, prefix, gateway (for the
/// default route, when this interface has it).
#[derive(Debug, Clone, Copy)]
pub struct V6 {
    pub ip: std::net::Ipv6Addr,
    pub prefix: u8,
    pub gateway: Option<std::net::Ipv6Addr>,
}

/// Delete a link by name; a missing link is fine.
/// The names of the links whose master is the bridge `bridge` (its ports).
pub async fn ports_of(h: &Handle, bridge: u32) -> Vec<String> {
    use rtnetlink::packet_route::link::LinkAttribute;
    let mut out = Vec::new();
    let mut s = h.link().get().execute();
    while let Ok(Some(l)) = s.try_next().await {
        let on_bridge = l
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Controller(i) if *i == bridge));
        if !on_bridge {
            continue;
        }
        if let Some(name) = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        }) {
            out.push(name);
        }
    }
    out
}

pub async fn delete(h: &Handle, name: &str) -> Result<(), String> {
    let Some(idx) = index_of(h, name).await? else {
        return Ok(());
    };
    match h.link().del(idx).execute().await {
        Ok(()) => Ok(()),
        Err(e) if code(&e) == ENODEV => Ok(()),
        Err(e) => Err(format!("deleting {name}: {e}")),
    }
}

/// A veth pair: `host` on the bridge, `peer` created directly inside the
/// namespace file `netns` (so its name never clashes with the host's).
pub async fn create_veth(
    h: &Handle,
    host: &str,
    peer: &str,
    netns: &std::fs::File,
    bridge: u32,
    mtu: u32,
) -> Result<(), String> {
    // A leftover from an endpoint that was not cleaned up goes first.
    delete(h, host).await?;
    let mut p = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_string())
        .setns_by_fd(netns.as_raw_fd());
    if mtu > 0 {
        p = p.mtu(mtu);
    }
    let mut m = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .controller(bridge)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())));
    if mtu > 0 {
        m = m.mtu(mtu);
    }
    h.link()
        .add(m.build())
        .execute()
        .await
        .map_err(|e| format!("creating the veth pair {host}: {e}"))?;
    let idx = index_of(h, host)
        .await?
        .ok_or_else(|| format!("the veth {host} vanished"))?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| format!("setting {host} up: {e}"))
}

/// Move the host's interface `name` into the namespace file `netns`,
/// renamed `to` there (one message: the name never clashes in either).
pub async fn move_into(
    h: &Handle,
    name: &str,
    netns: &std::fs::File,
    to: &str,
) -> Result<(), String> {
    let idx = index_of(h, name)
        .await?
        .ok_or_else(|| format!("the plugin's interface {name} does not exist"))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .setns_by_fd(netns.as_raw_fd())
                .name(to.to_string())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| format!("moving {name} into the container as {to}: {e}"))
}

/// Inside a container's namespace (call on its thread): delete `ifname`
/// if it is there.
pub fn delete_inside(ifname: &str) -> Result<(), String> {
    inside(|h| async move { delete(&h, ifname).await })
}

/// Run `f` with a netlink connection of the calling thread's namespace,
/// on a runtime of its own (the thread is in a container's namespace).
fn inside<F, Fut>(f: F) -> Result<(), String>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let h = connect().map_err(|e| format!("netlink in the container: {e}"))?;
        f(h).await
    })
}

/// Inside a container's namespace (call on its thread): `lo` up and, for
/// an endpoint, its interface's MAC, address, up and (for the first
/// network) the default route.
pub fn configure_inside(
    ifname: Option<&str>,
    mac: [u8; 6],
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    v6: Option<V6>,
) -> Result<(), String> {
    inside(|h| async move {
        if let Some(lo) = index_of(&h, "lo").await? {
            h.link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await
                .map_err(|e| format!("setting lo up: {e}"))?;
        }
        let Some(ifname) = ifname else {
            return Ok(());
        };
        let idx = index_of(&h, ifname)
            .await?
            .ok_or_else(|| format!("{ifname} is missing in the container"))?;
        h.link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .address(mac.to_vec())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| format!("setting {ifname} up: {e}"))?;
        match h.address().add(idx, ip.into(), prefix).execute().await {
            Ok(()) => {}
            Err(e) if code(&e) == EEXIST => {}
            Err(e) => return Err(format!("adding {ip}/{prefix} to {ifname}: {e}")),
        }
        if let Some(gw) = gateway {
            let r = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(idx)
                .build();
            match h.route().add(r).execute().await {
                Ok(()) => {}
                Err(e) if code(&e) == EEXIST => {}
                Err(e) => return Err(format!("adding the default route via {gw}: {e}")),
            }
        }
        if let Some(v6) = v6 {
            add_v6(&h, idx, v6.ip, v6.prefix).await?;
            if let Some(gw) = v6.gateway {
                let r = RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .gateway(gw)
                    .output_interface(idx)
                    .build();
                match h.route().add(r).execute().await {
                    Ok(()) => {}
                    Err(e) if code(&e) == EEXIST => {}
                    Err(e) => return Err(format!("adding the IPv6 default route via {gw}: {e}")),
                }
            }
        }
        Ok(())
    })
}

pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').take(6).enumerate() {
        m[i] = u8::from_str_radix(p, 16).unwrap_or(0);
    }
    m
}
