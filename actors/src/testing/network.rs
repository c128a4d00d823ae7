//! A fake [`NetworkHost`]: records what the actors asked of the host, and
//! can be told to fail an attach.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::network::{Endpoint, NetworkRecord, PortMapping};
use crate::ports::{BoxFuture, NetworkHost};

#[derive(Default)]
pub struct FakeNetState {
    /// Networks set up on the "host", by ID.
    pub up: BTreeMap<String, NetworkRecord>,
    /// Plumbed endpoints: (network ID, container).
    pub attached: Vec<(String, String)>,
    /// Saved records.
    pub saved: BTreeMap<String, NetworkRecord>,
    /// The next attach fails with this message.
    pub fail_attach: Option<String>,
    pub restored: bool,
    /// Overlay networks: other nodes' endpoints programmed, (network ID,
    /// container) -> the node's address.
    pub peers: BTreeMap<(String, String), String>,
    /// Saves fail (a full disk) while set.
    pub fail_save: bool,
}

#[derive(Clone, Default)]
pub struct FakeNetworkHost(pub Arc<Mutex<FakeNetState>>);

impl FakeNetworkHost {
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeNetState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NetworkHost for FakeNetworkHost {
    fn peer_add(
        &self,
        rec: &NetworkRecord,
        p: &crate::network::Peer,
    ) -> BoxFuture<Result<(), String>> {
        self.state()
            .peers
            .insert((rec.id.clone(), p.container.clone()), p.vtep.clone());
        Box::pin(async { Ok(()) })
    }
    fn peer_del(&self, rec: &NetworkRecord, p: &crate::network::Peer) -> BoxFuture<()> {
        self.state()
            .peers
            .remove(&(rec.id.clone(), p.container.clone()));
        Box::pin(async {})
    }
    fn setup(&self, rec: &NetworkRecord) -> BoxFuture<Result<(), String>> {
        self.state().up.insert(rec.id.clone(), rec.clone());
        Box::pin(async { Ok(()) })
    }
    fn teardown(&self, rec: &NetworkRecord) -> BoxFuture<Result<(), String>> {
        self.state().up.remove(&rec.id);
        Box::pin(async { Ok(()) })
    }
    fn attach(
        &self,
        rec: &NetworkRecord,
        ep: &Endpoint,
    ) -> BoxFuture<Result<Vec<PortMapping>, String>> {
        let mut st = self.state();
        let r = match st.fail_attach.take() {
            Some(e) => Err(e),
            None => {
                st.attached.push((rec.id.clone(), ep.container.clone()));
                Ok(ep.ports.clone())
            }
        };
        Box::pin(async move { r })
    }
    fn detach(&self, rec: &NetworkRecord, ep: &Endpoint) -> BoxFuture<()> {
        let key = (rec.id.clone(), ep.container.clone());
        self.state().attached.retain(|a| *a != key);
        Box::pin(async {})
    }
    fn save(&self, rec: &NetworkRecord) -> std::io::Result<()> {
        if self.state().fail_save {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.state().saved.insert(rec.id.clone(), rec.clone());
        Ok(())
    }
    fn delete(&self, id: &str) -> std::io::Result<()> {
        self.state().saved.remove(id);
        Ok(())
    }
    fn host_routes(&self) -> Vec<String> {
        vec!["172.17.0.0/24".into()]
    }
    fn restored(&self) {
        self.state().restored = true;
    }
}
