//! A fake registry port: pulls that wait on a gate, so a test can kill a
//! session while they are in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::ports::BoxFuture;
use crate::registry::{
    Credentials, HostClient, Job, Progress, PushTarget, RegistryError, RegistryPort,
};
use crate::ErrorKind;

/// A host and whether its pulls may finish.
type Gate = (String, watch::Sender<bool>);

/// Counts the clients made; `open` releases the pulls of a host.
#[derive(Clone, Default)]
pub struct FakeRegistry {
    /// Clients made, by `host` and credentials.
    pub clients: Arc<Mutex<Vec<(String, Credentials)>>>,
    /// Pull jobs that ran to their end.
    pub finished: Arc<AtomicUsize>,
    gates: Arc<Mutex<Vec<Gate>>>,
}

impl FakeRegistry {
    fn gate(&self, host: &str) -> watch::Receiver<bool> {
        let mut g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = g.iter().find(|(h, _)| h == host) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(false);
        g.push((host.to_string(), tx));
        rx
    }

    /// Let the pulls of `host` (present and future) finish.
    pub fn open(&self, host: &str) {
        let _ = self.gate(host);
        let g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = g.iter().find(|(h, _)| h == host) {
            tx.send_replace(true);
        }
    }

    /// Hold the pulls of `host` again.
    pub fn close(&self, host: &str) {
        let _ = self.gate(host);
        let g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = g.iter().find(|(h, _)| h == host) {
            tx.send_replace(false);
        }
    }
}

struct Client {
    host: String,
    credentials: Credentials,
    gate: watch::Receiver<bool>,
    finished: Arc<AtomicUsize>,
}

fn line(v: Value) -> Bytes {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

impl HostClient for Client {
    fn pull(&self, reference: String, progress: Progress) -> BoxFuture<Result<Job, RegistryError>> {
        let (mut gate, finished) = (self.gate.clone(), self.finished.clone());
        Box::pin(async move {
            if reference.contains("missing") {
                return Err(RegistryError::new(
                    ErrorKind::NotFound,
                    format!("manifest for {reference} not found"),
                ));
            }
            let job: Job = Box::pin(async move {
                let _ = progress
                    .send(line(json!({"status": format!("Pulling {reference}")})))
                    .await;
                while !*gate.borrow_and_update() {
                    if gate.changed().await.is_err() {
                        return Err(RegistryError::new(ErrorKind::System, "gate gone"));
                    }
                }
                let _ = progress
                    .send(line(json!({"status": format!("Pulled {reference}")})))
                    .await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            Ok(job)
        })
    }

    fn push(&self, targets: Vec<PushTarget>, progress: Progress) -> Job {
        Box::pin(async move {
            for t in targets {
                let _ = progress
                    .send(line(json!({"status": format!("Pushed {}", t.reference)})))
                    .await;
            }
            Ok(())
        })
    }

    fn distribution(&self, reference: String) -> BoxFuture<Result<Value, RegistryError>> {
        let host = self.host.clone();
        Box::pin(async move { Ok(json!({"host": host, "reference": reference})) })
    }

    fn login(&self) -> BoxFuture<Result<Value, RegistryError>> {
        let ok =
            matches!(&self.credentials, Credentials::Basic { password, .. } if password == "pw");
        Box::pin(async move {
            if ok {
                Ok(json!({"Status": "Login Succeeded"}))
            } else {
                Err(RegistryError::new(
                    ErrorKind::Unauthorized,
                    "401 Unauthorized",
                ))
            }
        })
    }
}

impl RegistryPort for FakeRegistry {
    fn client(&self, host: &str, credentials: &Credentials) -> Arc<dyn HostClient> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((host.to_string(), credentials.clone()));
        Arc::new(Client {
            host: host.to_string(),
            credentials: credentials.clone(),
            gate: self.gate(host),
            finished: self.finished.clone(),
        })
    }
}
