//! The container's networks, through their NetworkActors: at each start
//! the container's namespace is made (a host port) and it joins every
//! network it names (each NetworkActor allocates its address and plumbs
//! its endpoint); after the run it leaves them. `network connect` and
//! `disconnect` change the configured networks and, while it runs, join
//! or leave now. The host adapter only makes namespaces, files and DNS
//! servers: it never speaks to a NetworkActor.

use super::actor::ContainerState;
use super::model::{ContainerRecord, NetworkAttachment};
use super::{ContainerError, ContainerMsg};
use crate::network::{Endpoint, EndpointRequest, NetworkError, NetworkMsg, Networks, PortMapping};

/// A network error as a container error of the same kind.
fn net_err(e: NetworkError) -> ContainerError {
    match e {
        NetworkError::NotFound(_) | NetworkError::PluginNotFound(_) => {
            ContainerError::NetworkNotFound(e.to_string())
        }
        NetworkError::Conflict(m) => ContainerError::Conflict(m),
        NetworkError::Invalid(m) => ContainerError::Invalid(m),
        NetworkError::Forbidden(m) => ContainerError::Forbidden(m),
        NetworkError::System(m) => ContainerError::System(m),
        NetworkError::Unavailable => {
            ContainerError::Timeout("the network's actor is restarting; retry".into())
        }
        NetworkError::Timeout(m) | NetworkError::StoreUnavailable(m) => ContainerError::Timeout(m),
    }
}

/// The network a container names in `NetworkMode` (`default` is the
/// default bridge).
pub fn primary_network(rec: &ContainerRecord) -> String {
    match rec.host_config.network_mode.as_str() {
        "" | "default" => "bridge".into(),
        m => m.to_string(),
    }
}

/// The ports a container publishes: `-p` bindings, and with `-P` every
/// exposed port on an ephemeral host port.
pub fn port_requests(rec: &ContainerRecord, default_ip: &str) -> Vec<PortMapping> {
    let hc = &rec.host_config;
    let mut out: Vec<PortMapping> = Vec::new();
    let split = |k: &str| -> Option<(u16, String)> {
        let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        Some((p.parse().ok()?, proto.to_string()))
    };
    if let Some(b) = &hc.port_bindings {
        for (k, v) in b {
            let Some((cport, proto)) = split(k) else {
                continue;
            };
            for binding in v.iter().flatten() {
                let ip = binding.host_ip.as_str();
                let hp = binding.host_port.as_str();
                let (lo, hi) = match hp.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
                    None => (hp.parse().unwrap_or(0), 0),
                };
                out.push(PortMapping {
                    proto: proto.clone(),
                    container_port: cport,
                    host_ip: if ip.is_empty() {
                        default_ip.to_string()
                    } else {
                        ip.to_string()
                    },
                    host_port: lo,
                    host_port_end: hi,
                });
            }
        }
    }
    if hc.publish_all_ports {
        {
            for k in rec.config.exposed() {
                let Some((cport, proto)) = split(k) else {
                    continue;
                };
                if out
                    .iter()
                    .any(|m| m.container_port == cport && m.proto == proto)
                {
                    continue;
                }
                out.push(PortMapping {
                    proto,
                    container_port: cport,
                    host_ip: default_ip.to_string(),
                    host_port: 0,
                    host_port_end: 0,
                });
            }
        }
    }
    out
}

impl ContainerState {
    /// Before the runtime creates the container: its namespace (its own,
    /// or another container's) and an endpoint on each of its networks;
    /// hosts, resolv.conf and the embedded DNS server to match.
    pub(super) async fn network_up(&mut self) -> Result<(), ContainerError> {
        let mode = self.rec.host_config.network_mode.clone();
        if mode == "host" || mode == "none" {
            return Ok(());
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.index.borrow().lookup(other)?;
            if !o.state.status.is_live() || o.state.pid <= 0 {
                return Err(ContainerError::Conflict(format!(
                    "cannot join network namespace of a non running container: {}",
                    o.id
                )));
            }
            self.rec.state.sandbox = if o.state.sandbox.is_empty() {
                format!("/proc/{}/ns/net", o.state.pid)
            } else {
                o.state.sandbox.clone()
            };
            return Ok(());
        }
        let primary = primary_network(&self.rec);
        let mut order = vec![primary.clone()];
        order.extend(self.rec.networks.keys().filter(|k| **k != primary).cloned());
        // No default bridge (`bridge: none`): a container left on it gets
        // only its loopback, as with dockerd.
        order.retain(|n| n != "bridge" || self.networks.lookup(n).is_ok());
        if order.is_empty() {
            return Ok(());
        }
        // Every network must exist before anything is created.
        for n in &order {
            self.networks.lookup(n).map_err(net_err)?;
        }
        // Endpoints a start or stop that did not finish left (the actor
        // was killed before its record said so) go first.
        self.leave_stale_endpoints().await;
        self.rec.state.sandbox = self
            .host
            .sandbox_create(&self.rec)
            .await
            .map_err(ContainerError::System)?;
        for (i, n) in order.iter().enumerate() {
            let ep = self.join(n, format!("eth{i}"), i == 0).await?;
            self.rec.state.endpoints.insert(n.clone(), ep);
        }
        let snap = self.networks.snapshot();
        let user = order
            .iter()
            .any(|n| snap.by_name(n).is_some_and(|r| r.user_defined()));
        if user {
            self.host.dns_start(&self.rec, true).await;
        }
        // Legacy links, from the children as they run now.
        let links = super::links::resolve(&self.index.borrow(), &self.rec)?;
        self.rec.state.link_env = links.env;
        self.rec.state.link_hosts = links.hosts;
        // Running parents linking to this container learn its address.
        if self.rec.state.endpoints.contains_key("bridge") {
            let index = self.index.borrow().clone();
            for p in index.by_id.values().filter(|p| p.state.status.is_live()) {
                if p.host_config.links.as_ref().is_some_and(|l| !l.is_empty()) {
                    if let Ok(a) = super::supervisor::Containers::actor(&p.id) {
                        let _ =
                            a.cast(ContainerMsg::LinkedChildStarted(Box::new(self.rec.clone())));
                    }
                }
            }
        }
        // hosts and resolv.conf for this run.
        let ip = self.rec.state.endpoints.get(&primary).map(|e| e.ip.clone());
        self.host.write_net_files(&self.rec, ip.as_deref(), user);
        Ok(())
    }

    /// An endpoint for the container on `network`, from its NetworkActor.
    async fn join(
        &self,
        network: &str,
        ifname: String,
        primary: bool,
    ) -> Result<Endpoint, ContainerError> {
        let rec = &self.rec;
        let net = self.networks.lookup(network).map_err(net_err)?;
        let att = rec.networks.get(network).cloned().unwrap_or_default();
        let mut aliases = att.aliases.clone();
        let short = rec.id.get(..12).unwrap_or(&rec.id).to_string();
        if net.user_defined() && !aliases.contains(&short) {
            aliases.push(short);
        }
        let parse =
            |s: &str, what: &str| ContainerError::Invalid(format!("invalid {what} address: {s}"));
        let req = EndpointRequest {
            container: rec.id.clone(),
            name: rec.short_name().to_string(),
            aliases,
            links: att.links.clone(),
            mac: (!att.mac.is_empty()).then(|| att.mac.clone()),
            ip: match att.ip.as_str() {
                "" => None,
                s => Some(s.parse().map_err(|_| parse(s, "IPv4"))?),
            },
            ip6: match att.ip6.as_str() {
                "" => None,
                s => Some(s.parse().map_err(|_| parse(s, "IPv6"))?),
            },
            sandbox: rec.state.sandbox.clone(),
            ifname,
            ports: if primary {
                port_requests(rec, &self.host.publish_ip())
            } else {
                vec![]
            },
        };
        Networks::ask_again(&net.id, |reply| NetworkMsg::Connect {
            req: Box::new(req.clone()),
            reply,
        })
        .await
        .map_err(net_err)
    }

    pub(super) async fn connect(
        &mut self,
        network: String,
        attachment: NetworkAttachment,
    ) -> Result<(), ContainerError> {
        if self.rec.networks.contains_key(&network) {
            return Err(ContainerError::Forbidden(format!(
                "endpoint with name {} already exists in network {network}",
                self.rec.short_name()
            )));
        }
        let mode = self.rec.host_config.network_mode.as_str();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(ContainerError::Forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
            )));
        }
        // An endpoint the network has and the record does not: a connect
        // that did not finish (the actor was killed before its save).
        if self.has_stale_endpoint(&network) {
            tracing::warn!(id = %self.rec.id, %network, "removing an endpoint left by a connect that did not finish");
            let _ = self.leave(&network).await;
        }
        self.rec.networks.insert(network.clone(), attachment);
        if self.status().is_live() && !self.rec.state.sandbox.is_empty() {
            let used: Vec<&str> = self
                .rec
                .state
                .endpoints
                .values()
                .map(|e| e.ifname.as_str())
                .collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(&n.as_str()))
                .unwrap_or_default();
            match self.join(&network, ifname, false).await {
                Ok(ep) => {
                    self.rec.state.endpoints.insert(network.clone(), ep);
                }
                Err(e) => {
                    self.rec.networks.remove(&network);
                    return Err(e);
                }
            }
            if self
                .networks
                .lookup(&network)
                .is_ok_and(|n| n.user_defined())
            {
                // The embedded server takes over name resolution (dockerd
                // rewrites resolv.conf the same way).
                self.host.dns_start(&self.rec, false).await;
                self.host.write_net_files(&self.rec, None, true);
            }
        }
        self.save();
        Ok(())
    }

    pub(super) async fn disconnect(&mut self, network: String) -> Result<(), ContainerError> {
        if self.rec.networks.remove(&network).is_none() {
            if self.has_stale_endpoint(&network) {
                // A connect that did not finish: its endpoint goes.
                return self.leave(&network).await;
            }
            return Err(ContainerError::Forbidden(format!(
                "container {} is not connected to network {network}",
                self.rec.id
            )));
        }
        if self.rec.state.endpoints.contains_key(&network) {
            let r = self.leave(&network).await;
            self.rec.state.endpoints.remove(&network);
            if let Err(e) = r {
                tracing::warn!(id = %self.rec.id, "disconnecting from {network}: {e}");
            }
        }
        self.save();
        Ok(())
    }

    /// Whether `network` has an endpoint of this container that the
    /// record does not know.
    fn has_stale_endpoint(&self, network: &str) -> bool {
        !self.rec.state.endpoints.contains_key(network)
            && self
                .networks
                .lookup(network)
                .is_ok_and(|n| n.endpoints.contains_key(&self.rec.id))
    }

    async fn leave(&self, network: &str) -> Result<(), ContainerError> {
        let net = self.networks.lookup(network).map_err(net_err)?;
        let container = self.rec.id.clone();
        Networks::ask_again(&net.id, |reply| NetworkMsg::Disconnect {
            container: container.clone(),
            reply,
        })
        .await
        .map_err(net_err)
    }

    /// Leave every network that still has an endpoint of this container
    /// (one its record does not know: a start or stop that did not finish).
    async fn leave_stale_endpoints(&mut self) {
        self.leave_every_network(true).await
    }

    /// Leave every network that has an endpoint of this container (also one
    /// its record lost); `stale`: such endpoints are not expected (logged).
    async fn leave_every_network(&self, stale: bool) {
        let snap = self.networks.snapshot();
        for net in snap.of_container(&self.rec.id) {
            if stale {
                tracing::warn!(id = %self.rec.id, network = %net.name, "removing an endpoint left by a start or stop that did not finish");
            }
            let container = self.rec.id.clone();
            let r = Networks::ask_again(&net.id, |reply| NetworkMsg::Disconnect {
                container: container.clone(),
                reply,
            })
            .await;
            if let Err(e) = r {
                tracing::warn!(id = %self.rec.id, network = %net.name, "leaving the network: {e}");
            }
        }
    }

    /// After a run (or a failed start): leave its networks, drop its
    /// namespace and DNS server.
    pub(super) async fn network_down(&mut self) {
        if self.rec.state.sandbox.is_empty()
            && self.rec.state.endpoints.is_empty()
            && self
                .networks
                .snapshot()
                .of_container(&self.rec.id)
                .next()
                .is_none()
        {
            return;
        }
        self.host.dns_stop(&self.rec);
        // Every network that has an endpoint of it (also one its record
        // lost, e.g. after a failed start).
        self.leave_every_network(false).await;
        self.host.sandbox_remove(&self.rec).await;
        self.rec.state.sandbox.clear();
        self.rec.state.endpoints.clear();
    }
}
