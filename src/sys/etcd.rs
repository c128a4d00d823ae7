//! The cluster store on etcd v3 (the `etcd-client` crate over gRPC): the
//! real [`ClusterStore`]. One client, made again after the store was away;
//! this node's lease, its ID kept in `<data-root>/cluster/lease` so a
//! berthd restarted within the TTL keeps its lease and its endpoints.
//! Built with the `cluster` feature (on by default).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_actors::cluster::{ClusterStore, Kv, WatchEvent, STORE_TIMEOUT};

use crate::cluster::StoreSettings;
use berth_actors::ports::BoxFuture;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Identity, PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use tokio::sync::mpsc;
use tracing::{debug, info};

struct Lease {
    id: i64,
    keeper: Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)>,
}

/// The real cluster store (clones share one client and lease).
pub struct EtcdStore(Arc<Inner>);

pub struct Inner {
    settings: StoreSettings,
    lease_file: PathBuf,
    client: tokio::sync::Mutex<Option<Client>>,
    lease: tokio::sync::Mutex<Option<Lease>>,
    lease_id: Mutex<i64>,
}

fn err(e: etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        e => e.to_string(),
    }
}

impl EtcdStore {
    pub fn new(settings: StoreSettings, state_dir: PathBuf) -> EtcdStore {
        EtcdStore(Arc::new(Inner {
            settings,
            lease_file: state_dir.join("lease"),
            client: tokio::sync::Mutex::new(None),
            lease: tokio::sync::Mutex::new(None),
            lease_id: Mutex::new(0),
        }))
    }
}

impl Inner {
    async fn options(&self) -> Result<ConnectOptions, String> {
        let mut o = ConnectOptions::new()
            .with_timeout(STORE_TIMEOUT)
            .with_connect_timeout(Duration::from_secs(2))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        if self.settings.tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = &self.settings.ca {
                let pem = tokio::fs::read(ca)
                    .await
                    .map_err(|e| format!("reading {}: {e}", ca.display()))?;
                t = t.ca_certificate(Certificate::from_pem(pem));
            }
            if let (Some(c), Some(k)) = (&self.settings.cert, &self.settings.key) {
                let cert = tokio::fs::read(c)
                    .await
                    .map_err(|e| format!("reading {}: {e}", c.display()))?;
                let key = tokio::fs::read(k)
                    .await
                    .map_err(|e| format!("reading {}: {e}", k.display()))?;
                t = t.identity(Identity::from_pem(cert, key));
            }
            o = o.with_tls(t);
        }
        Ok(o)
    }

    /// The client, made when there is none (the store was away).
    async fn client(&self) -> Result<Client, String> {
        let mut g = self.client.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let scheme = if self.settings.tls { "https" } else { "http" };
        let urls: Vec<String> = self
            .settings
            .endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect();
        let c = Client::connect(urls, Some(self.options().await?))
            .await
            .map_err(|e| format!("connecting to {}: {}", self.settings.describe(), err(e)))?;
        *g = Some(c.clone());
        Ok(c)
    }

    /// A call failed: the next one makes a new client.
    async fn forget_client(&self) {
        *self.client.lock().await = None;
    }

    async fn checked<T>(&self, r: Result<T, etcd_client::Error>) -> Result<T, String> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                self.forget_client().await;
                Err(err(e))
            }
        }
    }

    fn current_lease(&self) -> i64 {
        *self.lease_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn take_lease(&self) -> Result<i64, String> {
        let mut c = self.client().await?;
        // The lease of the previous berthd, if it still lives.
        if let Some(old) = std::fs::read_to_string(&self.lease_file)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            let r = c.lease_time_to_live(old, None).await;
            if let Ok(ttl) = self.checked(r).await.map(|r| r.ttl()) {
                if ttl > 0 {
                    info!(lease = old, ttl, "keeping the lease of the previous berthd");
                    return Ok(old);
                }
            }
        }
        let r = c.lease_grant(self.settings.ttl, None).await;
        let id = self.checked(r).await?.id();
        if let Some(dir) = self.lease_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        crate::sys::atomic::write_atomic(&self.lease_file, id.to_string().as_bytes(), 0o600)
            .map_err(|e| format!("saving the lease ID: {e}"))?;
        Ok(id)
    }
}

impl ClusterStore for EtcdStore {
    fn lease(&self) -> BoxFuture<Result<i64, String>> {
        let me = self.arc();
        Box::pin(async move {
            let id = me.take_lease().await?;
            *me.lease_id.lock().unwrap_or_else(|e| e.into_inner()) = id;
            *me.lease.lock().await = Some(Lease { id, keeper: None });
            Ok(id)
        })
    }

    fn keep_alive(&self) -> BoxFuture<Result<(), String>> {
        let me = self.arc();
        Box::pin(async move {
            let mut g = me.lease.lock().await;
            let Some(l) = g.as_mut() else {
                return Err("no lease".into());
            };
            if l.keeper.is_none() {
                let mut c = me.client().await?;
                let r = c.lease_keep_alive(l.id).await;
                l.keeper = Some(me.checked(r).await?);
            }
            let Some((k, s)) = l.keeper.as_mut() else {
                return Err("no lease".into());
            };
            let r = async {
                k.keep_alive().await?;
                s.message().await
            }
            .await;
            match r {
                Ok(Some(resp)) if resp.ttl() > 0 => {
                    debug!(lease = l.id, ttl = resp.ttl(), "lease renewed");
                    Ok(())
                }
                Ok(_) => {
                    l.keeper = None;
                    Err(format!("the lease {} expired", l.id))
                }
                Err(e) => {
                    l.keeper = None;
                    drop(g);
                    me.forget_client().await;
                    Err(err(e))
                }
            }
        })
    }

    fn list(&self, prefix: &str) -> BoxFuture<Result<(Vec<Kv>, i64), String>> {
        let (me, prefix) = (self.arc(), prefix.to_string());
        Box::pin(async move {
            let mut c = me.client().await?;
            let r = c.get(prefix, Some(GetOptions::new().with_prefix())).await;
            let r = me.checked(r).await?;
            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
            let kvs = r
                .kvs()
                .iter()
                .map(|kv| Kv {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    value: kv.value().to_vec(),
                })
                .collect();
            Ok((kvs, rev))
        })
    }

    fn put(&self, key: &str, value: Vec<u8>, leased: bool) -> BoxFuture<Result<(), String>> {
        let (me, key) = (self.arc(), key.to_string());
        Box::pin(async move {
            let mut c = me.client().await?;
            let opts = leased.then(|| PutOptions::new().with_lease(me.current_lease()));
            let r = c.put(key, value, opts).await;
            me.checked(r).await.map(|_| ())
        })
    }

    fn create_all(&self, kvs: Vec<Kv>) -> BoxFuture<Result<bool, String>> {
        let me = self.arc();
        Box::pin(async move {
            let mut c = me.client().await?;
            let when: Vec<Compare> = kvs
                .iter()
                .map(|kv| Compare::create_revision(kv.key.clone(), CompareOp::Equal, 0))
                .collect();
            let ops: Vec<TxnOp> = kvs
                .into_iter()
                .map(|kv| TxnOp::put(kv.key, kv.value, None))
                .collect();
            let r = c.txn(Txn::new().when(when).and_then(ops)).await;
            Ok(me.checked(r).await?.succeeded())
        })
    }

    fn delete(&self, keys: Vec<String>) -> BoxFuture<Result<(), String>> {
        let me = self.arc();
        Box::pin(async move {
            let mut c = me.client().await?;
            let ops: Vec<TxnOp> = keys
                .into_iter()
                .map(|k| {
                    let prefix = k.ends_with('/');
                    TxnOp::delete(k, prefix.then(|| DeleteOptions::new().with_prefix()))
                })
                .collect();
            let r = c.txn(Txn::new().and_then(ops)).await;
            me.checked(r).await.map(|_| ())
        })
    }

    fn watch(
        &self,
        prefix: &str,
        revision: i64,
    ) -> BoxFuture<Result<mpsc::UnboundedReceiver<WatchEvent>, String>> {
        let (me, prefix) = (self.arc(), prefix.to_string());
        Box::pin(async move {
            let mut c = me.client().await?;
            let opts = WatchOptions::new()
                .with_prefix()
                .with_start_revision(revision);
            let r = c.watch(prefix, Some(opts)).await;
            let mut stream = me.checked(r).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                loop {
                    let resp = match stream.message().await {
                        Ok(Some(r)) => r,
                        Ok(None) | Err(_) => return,
                    };
                    if resp.canceled() {
                        return;
                    }
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        let e = match ev.event_type() {
                            EventType::Put => WatchEvent::Put(Kv {
                                key,
                                value: kv.value().to_vec(),
                            }),
                            EventType::Delete => WatchEvent::Delete(key),
                        };
                        if tx.send(e).is_err() {
                            return;
                        }
                    }
                }
            });
            Ok(rx)
        })
    }

    fn describe(&self) -> String {
        self.0.settings.describe()
    }
}

impl EtcdStore {
    /// The store's calls run as `'static` futures holding the shared part.
    fn arc(&self) -> Arc<Inner> {
        self.0.clone()
    }
}
