//! Traits for the host side effects the actors need. Real implementations
//! live in the root package (`src/sys/`), fakes in [`crate::testing`].

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, injectable so event ordering tests are deterministic.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> i64;
}

/// The host's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    }
}

/// Durable records under one root (the image store's directory): every
/// `put` is atomic (temp, fsync, rename), so a reader after a crash sees the
/// old record or the new one.
pub trait RecordStore: Send + Sync + 'static {
    fn put(&self, key: &str, data: &[u8]) -> std::io::Result<()>;
    fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>>;
    fn delete(&self, key: &str) -> std::io::Result<()>;
    /// File names directly under the directory `dir`.
    fn list(&self, dir: &str) -> std::io::Result<Vec<String>>;
}

/// A boxed future, for the async methods of the host traits.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Why a call to a container's shim failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShimCallError {
    /// No shim answers at the container's socket.
    #[error("the container's shim is gone: {0}")]
    Gone(String),
    /// The shim answered with an error (the runtime's message).
    #[error("{0}")]
    Failed(String),
}

/// The host side of containers: storage, the OCI bundle, the shim.
pub trait ContainerHost: Send + Sync + 'static {
    /// A new container's storage and files: its writable layer over its
    /// image, its directory with hostname, hosts and resolv.conf, missing
    /// `-v` bind sources. Undone by `discard`, also when it failed halfway.
    fn prepare(&self, rec: &crate::container::ContainerRecord) -> BoxFuture<Result<(), String>>;
    /// Remove what `prepare` and `save` made (a create that failed).
    fn discard(&self, rec: &crate::container::ContainerRecord) -> BoxFuture<()>;
    /// Mount the root filesystem, write the bundle and start the shim,
    /// which creates the container (not started). The container's pid.
    fn create(
        &self,
        rec: &crate::container::ContainerRecord,
    ) -> BoxFuture<Result<ShimStarted, String>>;
    /// One request to the container's shim.
    fn call(
        &self,
        id: &str,
        req: crate::protocol::shim::Request,
    ) -> BoxFuture<Result<crate::protocol::shim::Response, ShimCallError>>;
    /// A stdio connection to the container's shim: `req` is an attach or
    /// an exec; its answer read, the frames follow.
    fn open_stdio(
        &self,
        id: &str,
        req: crate::protocol::shim::Request,
    ) -> BoxFuture<Result<crate::container::stdio::Stdio, ShimCallError>>;
    /// The OCI `process` of an exec in the container (from the container's
    /// spec as written at its start and the exec's settings).
    fn exec_process(
        &self,
        rec: &crate::container::ContainerRecord,
        exec: &crate::exec::ExecRecord,
    ) -> Result<serde_json::Value, crate::container::ContainerError>;
    /// Mount the container's root filesystem for a copy or an export (also
    /// while it is stopped); counted, so `give_back_root` unmounts it only
    /// when neither the container nor another copy uses it.
    fn borrow_root(
        &self,
        rec: &crate::container::ContainerRecord,
    ) -> Result<std::path::PathBuf, String>;
    /// Give back what `borrow_root` lent (the container's layer).
    fn give_back_root(&self, layer: &str);
    /// The container's writable layer and the image's layer directories (top
    /// first); an error (the message) if the storage driver has none.
    fn layer_dirs(
        &self,
        rec: &crate::container::ContainerRecord,
    ) -> Result<(std::path::PathBuf, Vec<std::path::PathBuf>), String>;
    /// One resource-use sample of the container (`docker stats`: cgroup
    /// counters, and the network counters of `pid`'s namespace when it is
    /// not 0), in the Engine API's shape.
    fn stats_sample(
        &self,
        rec: &crate::container::ContainerRecord,
        pid: i32,
    ) -> BoxFuture<serde_json::Value>;
    /// `docker top`: the host's `ps` with `ps_args`, filtered to the
    /// container's processes.
    fn top(
        &self,
        rec: &crate::container::ContainerRecord,
        ps_args: &str,
    ) -> BoxFuture<Result<serde_json::Value, String>>;
    /// The exit status the shim wrote, if any.
    fn exit_file(&self, id: &str) -> Option<crate::protocol::shim::ExitStatus>;
    /// After an exit was recorded: unmount the root filesystem and clear the
    /// container's runtime state directory.
    fn release(&self, rec: &crate::container::ContainerRecord);
    /// Remove the container's writable layer and its directory (logs).
    fn destroy(&self, rec: &crate::container::ContainerRecord) -> BoxFuture<Result<(), String>>;
    /// Persist a record atomically.
    fn save(&self, rec: &crate::container::ContainerRecord) -> std::io::Result<()>;
    /// The container's own network namespace, made afresh (loopback up)
    /// for a run: its path.
    fn sandbox_create(
        &self,
        rec: &crate::container::ContainerRecord,
    ) -> BoxFuture<Result<String, String>>;
    /// Remove the namespace `sandbox_create` made (not another container's).
    fn sandbox_remove(&self, rec: &crate::container::ContainerRecord) -> BoxFuture<()>;
    /// The address ports are published on when a binding names none (the
    /// daemon's `ip`; empty: every address).
    fn publish_ip(&self) -> String;
    /// The embedded DNS server in the container's namespace (user-defined
    /// networks); with `wait`, until it serves.
    fn dns_start(&self, rec: &crate::container::ContainerRecord, wait: bool) -> BoxFuture<()>;
    fn dns_stop(&self, rec: &crate::container::ContainerRecord);
    /// Its hosts file (with its address `ip` when given) and resolv.conf
    /// (the embedded server when `embedded`).
    fn write_net_files(
        &self,
        rec: &crate::container::ContainerRecord,
        ip: Option<&str>,
        embedded: bool,
    );
    /// Push the record's resource limits (`docker update`) to the runtime
    /// of the running container.
    fn apply_resources(
        &self,
        rec: &crate::container::ContainerRecord,
    ) -> BoxFuture<Result<(), ShimCallError>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimStarted {
    pub shim_pid: i32,
    pub pid: i32,
}

/// The host side of networks: bridges, veth pairs, the firewall.
pub trait NetworkHost: Send + Sync + 'static {
    /// Make the host match the network (bridge, addresses, firewall part).
    /// Idempotent: what exists is kept.
    fn setup(&self, rec: &crate::network::NetworkRecord) -> BoxFuture<Result<(), String>>;
    /// Remove the network's bridge and firewall part.
    fn teardown(&self, rec: &crate::network::NetworkRecord) -> BoxFuture<Result<(), String>>;
    /// Plumb an endpoint (veth into its sandbox, address, route) and publish
    /// its ports; the port mappings as published (ephemeral ports chosen).
    fn attach(
        &self,
        rec: &crate::network::NetworkRecord,
        ep: &crate::network::Endpoint,
    ) -> BoxFuture<Result<Vec<crate::network::PortMapping>, String>>;
    /// Undo `attach` (best effort: a gone sandbox took its veth with it).
    fn detach(
        &self,
        rec: &crate::network::NetworkRecord,
        ep: &crate::network::Endpoint,
    ) -> BoxFuture<()>;
    fn save(&self, rec: &crate::network::NetworkRecord) -> std::io::Result<()>;
    fn delete(&self, id: &str) -> std::io::Result<()>;
    /// An overlay network: reach another node's endpoint (its neighbour
    /// and forwarding entries on the network's VXLAN device).
    fn peer_add(
        &self,
        _rec: &crate::network::NetworkRecord,
        _peer: &crate::network::Peer,
    ) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    /// Undo `peer_add` (best effort).
    fn peer_del(
        &self,
        _rec: &crate::network::NetworkRecord,
        _peer: &crate::network::Peer,
    ) -> BoxFuture<()> {
        Box::pin(async {})
    }
    /// The host's routed subnets (`a.b.c.d/n`), for pool allocation.
    fn host_routes(&self) -> Vec<String>;
    /// Every network was restored: the firewall may be written whole.
    fn restored(&self);
}

/// The host side of volumes (the `local` driver).
pub trait VolumeHost: Send + Sync + 'static {
    /// Make the volume's directory.
    fn create(&self, rec: &crate::volume::VolumeRecord) -> Result<(), String>;
    /// Ready to be mounted into a container (a `device` volume is mounted
    /// on its directory once); the host path.
    fn mount(&self, rec: &crate::volume::VolumeRecord) -> Result<String, String>;
    /// Remove its data (and unmount a `device` volume).
    fn remove(&self, rec: &crate::volume::VolumeRecord) -> Result<(), String>;
    /// No container uses it any more: unmount a `device` volume.
    fn unmount(&self, rec: &crate::volume::VolumeRecord);
    fn save(&self, rec: &crate::volume::VolumeRecord) -> std::io::Result<()>;
}
