//! An in-memory cluster store with etcd's semantics where berth relies on
//! them: transactions that create all keys or none, leases whose keys go
//! when they expire, prefix watches from a revision. Clones share the
//! data; each clone is one node (its own lease). `down` makes every call
//! fail as an unreachable store does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::cluster::{ClusterStore, Kv, WatchEvent};
use crate::ports::BoxFuture;

#[derive(Default)]
pub struct Shared {
    /// key -> (value, lease or 0)
    pub data: BTreeMap<String, (Vec<u8>, i64)>,
    pub revision: i64,
    next_lease: i64,
    watchers: Vec<(String, mpsc::UnboundedSender<WatchEvent>)>,
    /// Every change with its revision (watches replay from theirs).
    log: Vec<(i64, WatchEvent)>,
    /// Every transaction that created keys, for the tests' counts.
    pub creates: usize,
    /// Leases that expired.
    pub expired: Vec<i64>,
}

#[derive(Clone)]
pub struct MemClusterStore {
    pub shared: Arc<Mutex<Shared>>,
    lease: Arc<AtomicI64>,
    pub down: Arc<AtomicBool>,
}

impl Default for MemClusterStore {
    fn default() -> Self {
        MemClusterStore {
            shared: Default::default(),
            lease: Arc::new(AtomicI64::new(0)),
            down: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Shared {
    fn notify(&mut self, ev: WatchEvent) {
        self.log.push((self.revision, ev.clone()));
        let key = match &ev {
            WatchEvent::Put(kv) => kv.key.clone(),
            WatchEvent::Delete(k) => k.clone(),
        };
        self.watchers
            .retain(|(p, tx)| !key.starts_with(p.as_str()) || tx.send(ev.clone()).is_ok());
    }
    fn set(&mut self, key: String, value: Vec<u8>, lease: i64) {
        self.revision += 1;
        self.data.insert(key.clone(), (value.clone(), lease));
        self.notify(WatchEvent::Put(Kv { key, value }));
    }
    fn remove(&mut self, key: &str) {
        if self.data.remove(key).is_some() {
            self.revision += 1;
            self.notify(WatchEvent::Delete(key.to_string()));
        }
    }
}

impl MemClusterStore {
    /// Another node on the same data (its own lease).
    pub fn node(&self) -> MemClusterStore {
        MemClusterStore {
            shared: self.shared.clone(),
            lease: Arc::new(AtomicI64::new(0)),
            down: Arc::new(AtomicBool::new(false)),
        }
    }
    fn guard(&self) -> Result<std::sync::MutexGuard<'_, Shared>, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        Ok(self.shared.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// This node's lease expires: its keys go (watchers see deletes).
    pub fn expire(&self) {
        let id = self.lease.swap(0, Ordering::SeqCst);
        self.expire_lease(id);
    }
    /// Lease `id` expires, whoever holds it; the holder's next renewal fails.
    pub fn expire_lease(&self, id: i64) {
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.expired.push(id);
        let gone: Vec<String> = s
            .data
            .iter()
            .filter(|(_, (_, l))| *l == id && id != 0)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            s.remove(&k);
        }
    }
    /// Every watch ends (the store restarted).
    pub fn break_watches(&self) {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .watchers
            .clear();
    }
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.data
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl ClusterStore for MemClusterStore {
    fn lease(&self) -> BoxFuture<Result<i64, String>> {
        let r = self.guard().map(|mut s| {
            let l = self.lease.load(Ordering::SeqCst);
            if l == 0 || s.expired.contains(&l) {
                s.next_lease += 1;
                self.lease.store(s.next_lease, Ordering::SeqCst);
            }
            self.lease.load(Ordering::SeqCst)
        });
        Box::pin(async move { r })
    }
    fn keep_alive(&self) -> BoxFuture<Result<(), String>> {
        let r = self.guard().and_then(|s| {
            let l = self.lease.load(Ordering::SeqCst);
            if l == 0 || s.expired.contains(&l) {
                self.lease.store(0, Ordering::SeqCst);
                Err("the lease expired".to_string())
            } else {
                Ok(())
            }
        });
        Box::pin(async move { r })
    }
    fn list(&self, prefix: &str) -> BoxFuture<Result<(Vec<Kv>, i64), String>> {
        let r = self.guard().map(|s| {
            let kvs = s
                .data
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, (v, _))| Kv {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            (kvs, s.revision)
        });
        Box::pin(async move { r })
    }
    fn put(&self, key: &str, value: Vec<u8>, leased: bool) -> BoxFuture<Result<(), String>> {
        let lease = if leased {
            self.lease.load(Ordering::SeqCst)
        } else {
            0
        };
        let r = self
            .guard()
            .map(|mut s| s.set(key.to_string(), value, lease));
        Box::pin(async move { r })
    }
    fn create_all(&self, kvs: Vec<Kv>) -> BoxFuture<Result<bool, String>> {
        let r = self.guard().map(|mut s| {
            if kvs.iter().any(|kv| s.data.contains_key(&kv.key)) {
                return false;
            }
            s.creates += 1;
            for kv in kvs {
                s.set(kv.key, kv.value, 0);
            }
            true
        });
        Box::pin(async move { r })
    }
    fn delete(&self, keys: Vec<String>) -> BoxFuture<Result<(), String>> {
        let r = self.guard().map(|mut s| {
            for k in keys {
                let gone: Vec<String> = if k.ends_with('/') {
                    s.data
                        .keys()
                        .filter(|x| x.starts_with(&k))
                        .cloned()
                        .collect()
                } else {
                    vec![k]
                };
                for g in gone {
                    s.remove(&g);
                }
            }
        });
        Box::pin(async move { r })
    }
    fn watch(
        &self,
        prefix: &str,
        revision: i64,
    ) -> BoxFuture<Result<mpsc::UnboundedReceiver<WatchEvent>, String>> {
        let r = self.guard().map(|mut s| {
            let (tx, rx) = mpsc::unbounded_channel();
            for (rev, ev) in &s.log {
                let key = match ev {
                    WatchEvent::Put(kv) => &kv.key,
                    WatchEvent::Delete(k) => k,
                };
                if *rev >= revision && key.starts_with(prefix) {
                    let _ = tx.send(ev.clone());
                }
            }
            s.watchers.push((prefix.to_string(), tx));
            rx
        });
        Box::pin(async move { r })
    }
    fn describe(&self) -> String {
        "etcd://memory".into()
    }
}
