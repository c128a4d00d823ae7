//! Well-known registry names of the singleton actors, so any part can reach
//! the current incarnation of an actor after it was restarted.

/// The HTTP front door.
pub const FRONT_DOOR: &str = "front-door";
/// The event bus.
pub const EVENT_BUS: &str = "event-bus";
/// The root supervisor.
pub const ROOT: &str = "root";
/// The image store.
pub const IMAGE_STORE: &str = "image-store";
/// The supervisor of registry sessions (pulls and pushes).
pub const REGISTRY_SESSIONS: &str = "registry-sessions";
/// The container supervisor.
pub const CONTAINERS: &str = "containers";
/// The network supervisor.
pub const NETWORKS: &str = "networks";
/// The supervisor of LogStream actors (`docker logs`, attach with logs).
pub const LOG_STREAMS: &str = "log-streams";
/// The supervisor of exec actors.
pub const EXECS: &str = "execs";
/// The metrics endpoint's listener (`metrics-addr`).
pub const METRICS: &str = "metrics";
/// The volume supervisor.
pub const VOLUMES: &str = "volumes";
/// The supervisor of plugin actors (legacy plugins: authorization, ...).
pub const PLUGINS: &str = "plugins";
/// The cluster membership actor (lease, registration, the store's watch);
/// present only with a `cluster-store`.
pub const CLUSTER: &str = "cluster";
