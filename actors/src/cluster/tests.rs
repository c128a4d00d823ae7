//! Global networks and the membership actor against an in-memory store
//! with etcd's semantics (`testing::MemClusterStore`); the real etcd with
//! real nodes is exercised by `tests/cluster.rs`.

use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use tokio::sync::watch;

use super::*;
use crate::network::tests::{record, req, start_in, SERIAL};
use crate::network::{NetworkError, NetworkMsg, Networks};
use crate::testing::{FakeNetworkHost, MemClusterStore};

fn node(store: &MemClusterStore, id: &str, vtep: &str) -> Cluster {
    let (_tx, rx) = watch::channel(ClusterInfo::default());
    Cluster {
        store: Arc::new(store.clone()),
        me: Node {
            id: id.into(),
            name: id.into(),
            addr: format!("{vtep}:2376"),
        },
        info: rx,
    }
}

fn overlay(name: &str, subnet: Option<&str>) -> NetworkRecord {
    let mut r = record(name, subnet);
    r.driver = "overlay".into();
    r.id = format!("{:x<64}", format!("{name}0123456789ab"));
    r
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn global_networks_claim_names_subnets_and_ids_once() {
    let store = MemClusterStore::default();
    let (a, b) = (
        node(&store, "a", "10.9.0.1"),
        node(&store.node(), "b", "10.9.0.2"),
    );
    // Six creates racing from two nodes, two of them with one name.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        let name = if i < 2 {
            "same".to_string()
        } else {
            format!("net{i}")
        };
        tasks.push(tokio::spawn(async move {
            let mut r = overlay(&format!("{name}{i}"), None);
            r.name = name;
            create_network(&c, &mut r, &[]).await.map(|_| r)
        }));
    }
    let mut made = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => made.push(r),
            Err(NetworkError::Conflict(m)) => {
                assert!(m.contains("already exists"), "{m}");
                conflicts += 1
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((made.len(), conflicts), (5, 1));
    let subnets: std::collections::BTreeSet<_> =
        made.iter().map(|r| r.pools[0].subnet.clone()).collect();
    let vnis: std::collections::BTreeSet<_> = made.iter().map(|r| r.vni().unwrap()).collect();
    assert_eq!((subnets.len(), vnis.len()), (5, 5), "{subnets:?} {vnis:?}");
    assert!(subnets.contains("10.0.0.0/24") && vnis.contains(&FIRST_VNI));
    for r in &made {
        assert_eq!(r.mtu, OVERLAY_MTU);
        assert!(r.bridge.starts_with("ov-"), "{}", r.bridge);
        assert_eq!(store.keys(&keys::network(&r.id)).len(), 1);
    }
    // A subnet overlapping one of the cluster's, or one this node routes.
    let mut r = overlay("over", Some("10.0.0.128/25"));
    let e = create_network(&a, &mut r, &[]).await.unwrap_err();
    assert!(matches!(e, NetworkError::Forbidden(_)), "{e:?}");
    let mut r = overlay("routed", None);
    let used = [crate::network::ipam::Cidr::parse("10.0.0.0/21").unwrap()];
    create_network(&a, &mut r, &used).await.unwrap();
    assert_eq!(r.pools[0].subnet, "10.0.8.0/24");
    // Refused clearly: encryption, IPv6; an unreachable store.
    let mut r = overlay("enc", None);
    r.options.insert("encrypted".into(), "".into());
    let e = create_network(&a, &mut r, &[]).await.unwrap_err();
    assert!(e.to_string().contains("encrypted"), "{e}");
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut r = overlay("away", None);
    let e = create_network(&a, &mut r, &[]).await.unwrap_err();
    assert!(matches!(e, NetworkError::StoreUnavailable(_)), "{e:?}");
    assert!(e.to_string().contains("connection refused"), "{e}");
}

/// Nodes `a` (whose NetworkSupervisor runs here, over a fake host) and
/// `b` on one store.
async fn two_nodes() -> (
    MemClusterStore,
    Cluster,
    Cluster,
    FakeNetworkHost,
    Networks,
    ractor::ActorRef<crate::network::SupervisorMsg>,
) {
    let store = MemClusterStore::default();
    let a = node(&store, "a", "10.9.0.1");
    let b = node(&store.node(), "b", "10.9.0.2");
    let host = FakeNetworkHost::default();
    let (nets, sup) = start_in(&host, Some(a.clone())).await;
    (store, a, b, host, nets, sup)
}

#[tokio::test]
async fn overlay_endpoints_claim_addresses_across_nodes_and_follow_peers() {
    let _g = SERIAL.lock().await;
    let (store, _a, b, host, nets, sup) = two_nodes().await;
    let n = crate::network::tests::create(overlay("ov", None))
        .await
        .unwrap();
    assert_eq!(n.scope(), "global");
    // Another node holds .2 already: this one skips it.
    b.store
        .create_all(vec![Kv {
            key: keys::ipam(&n.id, "10.0.0.2"),
            value: b"b other".to_vec(),
        }])
        .await
        .unwrap();
    let connect = |c: &'static str| {
        let id = n.id.clone();
        async move { Networks::ask(&id, |reply| NetworkMsg::Connect { req: req(c), reply }).await }
    };
    let e1 = connect("c1").await.unwrap();
    assert_eq!(e1.ip, "10.0.0.3");
    assert!(e1.gateway.is_empty(), "{}", e1.gateway);
    let held = store.keys(&keys::ipam_of(&n.id));
    assert_eq!(held.len(), 2, "{held:?}");
    let ep: Peer =
        serde_json::from_slice(&store.shared.lock().unwrap().data[&keys::endpoint(&n.id, "c1")].0)
            .unwrap();
    assert_eq!((ep.node.as_str(), ep.vtep.as_str()), ("a", "10.9.0.1"));
    // The other node's endpoints: programmed and resolvable (read model).
    let peer = Peer {
        container: "far".into(),
        name: "far".into(),
        aliases: vec!["db".into()],
        ip: "10.0.0.2".into(),
        mac: "02:42:0a:00:00:02".into(),
        node: "b".into(),
        vtep: "10.9.0.2".into(),
    };
    let actor =
        ractor::ActorRef::<NetworkMsg>::where_is(crate::network::actor_name(&n.id)).unwrap();
    actor
        .cast(NetworkMsg::PeerUp(Box::new(peer.clone())))
        .unwrap();
    until("the peer", || {
        host.state().peers.get(&(n.id.clone(), "far".into())) == Some(&"10.9.0.2".to_string())
    })
    .await;
    until("the peer in the read model", || {
        nets.lookup("ov").unwrap().peers.contains_key("far")
    })
    .await;
    // Removal is refused while any node has an endpoint on it.
    b.store
        .put(
            &keys::endpoint(&n.id, "far"),
            serde_json::to_vec(&peer).unwrap(),
            true,
        )
        .await
        .unwrap();
    Networks::ask(&n.id, |reply| NetworkMsg::Disconnect {
        container: "c1".into(),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(
        store.keys(&keys::endpoint(&n.id, "c1")),
        Vec::<String>::new()
    );
    assert_eq!(store.keys(&keys::ipam_of(&n.id)).len(), 1);
    let e = Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("active endpoints"), "{e}");
    actor.cast(NetworkMsg::PeerDown("far".into())).unwrap();
    until("the peer gone", || host.state().peers.is_empty()).await;
    // The store away: a new endpoint fails clearly, nothing is left.
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = connect("c2").await.unwrap_err();
    assert!(matches!(e, NetworkError::StoreUnavailable(_)), "{e:?}");
    assert!(host.state().attached.iter().all(|(_, c)| c != "c2"));
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    b.store
        .delete(vec![keys::endpoint(&n.id, "far"), keys::ipam_of(&n.id)])
        .await
        .unwrap();
    Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap();
    assert_eq!(store.keys(PREFIX), Vec::<String>::new());
    sup.stop_and_wait(None, None).await.unwrap();
}

#[tokio::test]
async fn membership_follows_the_store_and_rejoins() {
    let _g = SERIAL.lock().await;
    let (store, a, b, host, nets, sup) = two_nodes().await;
    let (info_tx, info_rx) = watch::channel(ClusterInfo::default());
    let (m, _) = Actor::spawn(
        Some(crate::directory::CLUSTER.into()),
        ClusterMembership,
        ClusterArgs {
            cluster: a.clone(),
            info: Arc::new(info_tx),
            networks: nets.index.clone(),
        },
    )
    .await
    .unwrap();
    until("joined", || info_rx.borrow().connected).await;
    b.store.lease().await.unwrap();
    b.store
        .put(&keys::node("b"), serde_json::to_vec(&b.me).unwrap(), true)
        .await
        .unwrap();
    until("two nodes", || info_rx.borrow().nodes.len() == 2).await;
    // A network another node makes is served here.
    let mut r = overlay("shared", None);
    create_network(&b, &mut r, &[]).await.unwrap();
    until("the network adopted", || nets.lookup("shared").is_ok()).await;
    until("its host side", || host.state().up.contains_key(&r.id)).await;
    // Its endpoint there: a peer here; gone with its node's lease.
    let peer = Peer {
        container: "bc".into(),
        name: "bc".into(),
        aliases: vec![],
        ip: "10.0.0.9".into(),
        mac: "02:42:0a:00:00:09".into(),
        node: "b".into(),
        vtep: "10.9.0.2".into(),
    };
    b.store
        .put(
            &keys::endpoint(&r.id, "bc"),
            serde_json::to_vec(&peer).unwrap(),
            true,
        )
        .await
        .unwrap();
    until("the peer", || host.state().peers.len() == 1).await;
    let id = r.id.clone();
    let e = Networks::ask(&id, |reply| NetworkMsg::Connect {
        req: req("ac"),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(e.ip, "10.0.0.2");
    // b's lease expires: its node and endpoints go everywhere.
    expire_lease_of(&store, "b");
    until("the peer gone", || host.state().peers.is_empty()).await;
    until("one node", || info_rx.borrow().nodes.len() == 1).await;
    // The store away, then back with this node's lease gone: it rejoins,
    // its endpoint is registered again.
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    until("disconnected", || !info_rx.borrow().connected).await;
    assert!(
        nets.lookup("shared").is_ok(),
        "a network stays while the store is away"
    );
    expire_lease_of(&store, "a");
    assert!(store.keys(&keys::endpoint(&id, "ac")).is_empty());
    // Meanwhile keys of this node the record does not hold (a container
    // that went while the store was away): removed at the rejoin.
    let other = store.node();
    let gone = Peer {
        container: "gone".into(),
        node: "a".into(),
        ..peer.clone()
    };
    other
        .put(
            &keys::endpoint(&id, "gone"),
            serde_json::to_vec(&gone).unwrap(),
            false,
        )
        .await
        .unwrap();
    other
        .create_all(vec![Kv {
            key: keys::ipam(&id, "10.0.0.77"),
            value: b"a gone".to_vec(),
        }])
        .await
        .unwrap();
    store.break_watches();
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    until("rejoined", || info_rx.borrow().connected).await;
    until("the endpoint registered again", || {
        store.keys(&keys::endpoint(&id, "ac")).len() == 1
    })
    .await;
    until("the stale keys removed", || {
        store.keys(&keys::endpoint(&id, "gone")).is_empty()
            && store.keys(&keys::ipam(&id, "10.0.0.77")).is_empty()
    })
    .await;
    assert_eq!(
        store.keys(&keys::ipam(&id, "10.0.0.2")).len(),
        1,
        "the live claim stays"
    );
    // Removed in the store by another node: gone here too.
    Networks::ask(&id, |reply| NetworkMsg::Disconnect {
        container: "ac".into(),
        reply,
    })
    .await
    .unwrap();
    b.store.delete(vec![keys::network(&id)]).await.unwrap();
    until("the network abandoned", || nets.lookup("shared").is_err()).await;
    assert!(!host.state().up.contains_key(&id));
    m.stop_and_wait(None, None).await.unwrap();
    sup.stop_and_wait(None, None).await.unwrap();
}

/// Expire the lease of node `id`'s keys (as etcd does after the TTL).
fn expire_lease_of(store: &MemClusterStore, id: &str) {
    let node_key = keys::node(id);
    let lease = store
        .shared
        .lock()
        .unwrap()
        .data
        .get(&node_key)
        .map(|v| v.1);
    if let Some(l) = lease {
        store.expire_lease(l);
    }
}
