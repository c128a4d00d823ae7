//! The NetworkSupervisor and NetworkActors over a fake host: IPAM,
//! failures that leave nothing allocated, removal rules, pool allocation,
//! rebuild after a kill.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use tokio::sync::watch;

use super::*;
use crate::events::Events;
use crate::ports::SystemClock;
use crate::testing::FakeNetworkHost;

pub(crate) fn record(name: &str, subnet: Option<&str>) -> NetworkRecord {
    NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        id: format!("{name:0<64}"),
        name: name.into(),
        driver: "bridge".into(),
        created: String::new(),
        internal: false,
        attachable: false,
        enable_ipv6: false,
        ipam_driver: "default".into(),
        ipam_options: Default::default(),
        pools: subnet
            .map(|s| {
                vec![IpamPool {
                    subnet: s.into(),
                    ip_range: String::new(),
                    gateway: String::new(),
                    aux: BTreeMap::new(),
                    pool_id: String::new(),
                }]
            })
            .unwrap_or_default(),
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        bridge: format!("br-{name}"),
        icc: true,
        masquerade: true,
        mtu: 0,
        predefined: false,
        endpoints: BTreeMap::new(),
        peers: Default::default(),
    }
}

pub(crate) fn req(container: &str) -> Box<EndpointRequest> {
    Box::new(EndpointRequest {
        container: container.into(),
        name: container.into(),
        ifname: "eth0".into(),
        ..Default::default()
    })
}

pub(crate) async fn start(host: &FakeNetworkHost) -> (Networks, ractor::ActorRef<SupervisorMsg>) {
    start_in(host, None).await
}

/// The supervisor of a node of a cluster (`cluster`), or of one alone.
pub(crate) async fn start_in(
    host: &FakeNetworkHost,
    cluster: Option<crate::cluster::Cluster>,
) -> (Networks, ractor::ActorRef<SupervisorMsg>) {
    start_with(host, cluster, None).await
}

/// [`start_in`] with the containers' read model.
pub(crate) async fn start_with(
    host: &FakeNetworkHost,
    cluster: Option<crate::cluster::Cluster>,
    containers: Option<watch::Receiver<Arc<crate::container::ContainerIndex>>>,
) -> (Networks, ractor::ActorRef<SupervisorMsg>) {
    let (tx, rx) = watch::channel(Arc::new(NetworkIndex::default()));
    let args = NetworkSupervisorArgs {
        host: Arc::new(host.clone()),
        index: Arc::new(tx),
        events: Events::new(Arc::new(SystemClock)),
        initial: Arc::new(std::sync::Mutex::new(Some(vec![]))),
        cluster,
        containers,
    };
    // A unique registry name is not possible for the supervisor (the
    // actors find it by name), so the tests run one at a time (SERIAL),
    // and the previous test's supervisor may still be stopping.
    for _ in 0..500 {
        if ractor::registry::where_is(crate::directory::NETWORKS).is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (s, _) = Actor::spawn(
        Some(crate::directory::NETWORKS.into()),
        NetworkSupervisor,
        args,
    )
    .await
    .unwrap();
    (Networks { index: rx }, s)
}

pub(crate) async fn create(rec: NetworkRecord) -> Result<Arc<NetworkRecord>, NetworkError> {
    let pools = vec![AutoPool {
        base: "172.17.0.0/16".into(),
        size: 24,
    }];
    Networks::ask_supervisor(|reply| SupervisorMsg::Create {
        record: Box::new(rec),
        pools,
        reply,
    })
    .await
}

pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn ipam_failures_removal_and_rebuild() {
    let _g = SERIAL.lock().await;
    let host = FakeNetworkHost::default();
    let (nets, sup) = start(&host).await;
    assert!(host.state().restored);

    // No subnet: the first pool subnet not on a host route (172.17.0.0/24).
    let a = create(record("auto", None)).await.unwrap();
    assert_eq!(a.pools[0].subnet, "172.17.1.0/24");
    assert_eq!(a.pools[0].gateway, "172.17.1.1");
    // Overlap and name conflicts.
    let e = create(record("over", Some("172.17.1.128/25")))
        .await
        .unwrap_err();
    assert!(matches!(e, NetworkError::Forbidden(_)), "{e:?}");
    let e = create(record("auto", Some("10.9.0.0/24")))
        .await
        .unwrap_err();
    assert!(matches!(e, NetworkError::Conflict(_)), "{e:?}");

    let n = create(record("app", Some("10.9.0.0/29"))).await.unwrap();
    let ask = |c: &'static str| {
        let id = n.id.clone();
        async move { Networks::ask(&id, |reply| NetworkMsg::Connect { req: req(c), reply }).await }
    };
    // Lowest free addresses after the gateway; the broadcast never.
    assert_eq!(ask("c1").await.unwrap().ip, "10.9.0.2");
    assert_eq!(ask("c2").await.unwrap().ip, "10.9.0.3");
    // Twice: refused.
    assert!(matches!(ask("c1").await, Err(NetworkError::Forbidden(_))));
    // A failing attach allocates nothing.
    host.state().fail_attach = Some("boom".into());
    assert!(matches!(ask("c3").await, Err(NetworkError::System(_))));
    assert_eq!(ask("c3").await.unwrap().ip, "10.9.0.4");
    for c in ["c4", "c5"] {
        ask(c).await.unwrap();
    }
    // 10.9.0.0/29: .2 to .6 are taken, .7 is the broadcast.
    assert!(matches!(ask("c6").await, Err(NetworkError::System(_))));
    assert_eq!(nets.lookup("app").unwrap().endpoints.len(), 5);
    assert_eq!(host.state().saved[&n.id].endpoints.len(), 5);

    // Remove is refused with endpoints.
    let id = n.id.clone();
    let e = Networks::ask(&id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has active endpoints"), "{e}");

    // A killed actor is rebuilt from the read model with its endpoints.
    ractor::ActorRef::<NetworkMsg>::where_is(actor_name(&n.id))
        .unwrap()
        .kill();
    let mut back = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if ractor::ActorRef::<NetworkMsg>::where_is(actor_name(&n.id)).is_some() {
            back = true;
            break;
        }
    }
    assert!(back, "the network actor was not rebuilt");
    // The rebuilt actor knows the endpoints: the network is still full.
    assert!(matches!(ask("c8").await, Err(NetworkError::System(_))));
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        Networks::ask(&id, |reply| NetworkMsg::Disconnect {
            container: c.into(),
            reply,
        })
        .await
        .unwrap();
    }
    assert!(host.state().attached.iter().all(|(n2, _)| *n2 != id));
    Networks::ask(&id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap();
    assert!(nets.lookup("app").is_err());
    assert!(!host.state().up.contains_key(&id));
    assert!(!host.state().saved.contains_key(&id));
    sup.stop_and_wait(None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn removal_drops_endpoints_of_containers_that_no_longer_exist() {
    let _g = SERIAL.lock().await;
    let host = FakeNetworkHost::default();
    let known = |ids: &[&str]| {
        let mut ix = crate::container::ContainerIndex::default();
        for id in ids {
            let rec = crate::container::tests::record(id, serde_json::json!({}));
            ix.by_id.insert(id.to_string(), Arc::new(rec));
        }
        Arc::new(ix)
    };
    let (ctx, crx) = watch::channel(known(&["c1", "c2"]));
    let (nets, sup) = start_with(&host, None, Some(crx)).await;
    let n = create(record("stale", Some("10.9.1.0/29"))).await.unwrap();
    for c in ["c1", "c2"] {
        Networks::ask(&n.id, |reply| NetworkMsg::Connect { req: req(c), reply })
            .await
            .unwrap();
    }
    // c2 is gone (a removal that could not reach the network): its
    // endpoint does not keep the network; c1's does.
    ctx.send_replace(known(&["c1"]));
    let e = Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has active endpoints"), "{e}");
    let eps = nets.lookup("stale").unwrap().endpoints.clone();
    assert_eq!(eps.keys().collect::<Vec<_>>(), vec!["c1"]);
    assert!(!host.state().attached.iter().any(|(_, c)| c == "c2"));
    ctx.send_replace(known(&[]));
    Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap();
    assert!(nets.lookup("stale").is_err());
    assert!(host.state().attached.is_empty());
    assert!(!host.state().saved.contains_key(&n.id));
    sup.stop_and_wait(None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_disconnect_the_disk_refused_is_done_and_saved_once_it_can_be() {
    let _g = SERIAL.lock().await;
    let host = FakeNetworkHost::default();
    let (nets, sup) = start(&host).await;
    let n = create(record("full", Some("10.9.3.0/29"))).await.unwrap();
    Networks::ask(&n.id, |reply| NetworkMsg::Connect {
        req: req("c1"),
        reply,
    })
    .await
    .unwrap();
    host.state().fail_save = true;
    // A connect the disk refuses is undone whole.
    let e = Networks::ask(&n.id, |reply| NetworkMsg::Connect {
        req: req("c2"),
        reply,
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("saving the network"), "{e}");
    assert!(!host.state().attached.iter().any(|(_, c)| c == "c2"));
    // A disconnect is done (its veth is gone), published and answered as
    // done; the record follows once the disk takes it.
    Networks::ask(&n.id, |reply| NetworkMsg::Disconnect {
        container: "c1".into(),
        reply,
    })
    .await
    .unwrap();
    assert!(nets.lookup("full").unwrap().endpoints.is_empty());
    assert!(host.state().attached.is_empty());
    assert!(host.state().saved[&n.id].endpoints.contains_key("c1"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(host.state().saved[&n.id].endpoints.contains_key("c1"));
    host.state().fail_save = false;
    let mut saved = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if host.state().saved[&n.id].endpoints.is_empty() {
            saved = true;
            break;
        }
    }
    assert!(saved, "the refused record was not saved again");
    // A killed actor comes back without the endpoint.
    ractor::ActorRef::<NetworkMsg>::where_is(actor_name(&n.id))
        .unwrap()
        .kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    Networks::ask(&n.id, |reply| NetworkMsg::Remove { reply })
        .await
        .unwrap();
    sup.stop_and_wait(None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
}
