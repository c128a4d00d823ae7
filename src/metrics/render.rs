//! One scrape: a registry filled with the recorded durations, the actors'
//! counters and the read models as they are now, encoded as text.

use std::sync::atomic::Ordering;

use berth_actors::metrics as counters;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Labels, RECORDER};
use crate::api::ApiContext;

fn label(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

fn gauge(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

/// A process is alive (a zombie, not yet reaped, is not).
fn alive(pid: i32) -> bool {
    pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
}

/// The text of `GET /metrics` (OpenMetrics, which Prometheus reads).
/// `live`: the log counters running containers' shims answered with (the
/// counters file may lag: a full disk keeps the shim from rewriting it).
pub fn render(
    ctx: &ApiContext,
    live: &std::collections::HashMap<String, berth_actors::protocol::shim::LogCounts>,
) -> String {
    let mut reg = Registry::default();
    let r = &*RECORDER;

    // dockerd's engine metrics.
    let h = &ctx.host;
    let info: Family<Labels, Gauge> = Family::default();
    info.get_or_create(&vec![
        label("architecture", h.architecture.clone()),
        label("commit", "berth"),
        label("daemon_id", ctx.engine_id.clone()),
        label("graphdriver", ctx.images.driver.name()),
        label("kernel", h.kernel_version.clone()),
        label("os", h.operating_system.clone()),
        label("os_type", "linux"),
        label("os_version", h.os_version.clone()),
        label("version", env!("CARGO_PKG_VERSION")),
    ])
    .set(1);
    reg.register(
        "engine_daemon_engine_info",
        "The information related to the engine and the OS it is running on",
        info,
    );
    reg.register(
        "engine_daemon_engine_cpus_cpus",
        "The number of cpus that the host system of the engine has",
        gauge(h.ncpu as i64),
    );
    reg.register(
        "engine_daemon_engine_memory_bytes",
        "The number of bytes of memory that the host system of the engine has",
        gauge(h.mem_total as i64),
    );
    let view = ctx.view.borrow().clone();
    let states: Family<Labels, Gauge> = Family::default();
    for (state, n) in [
        ("running", view.containers_running),
        ("paused", view.containers_paused),
        ("stopped", view.containers_stopped),
    ] {
        states
            .get_or_create(&vec![label("state", state)])
            .set(n as i64);
    }
    reg.register(
        "engine_daemon_container_states_containers",
        "The count of containers in various states",
        states,
    );
    reg.register(
        "engine_daemon_container_actions_seconds",
        "The number of seconds it takes to process each container action",
        r.container_actions.clone(),
    );
    reg.register(
        "engine_daemon_image_actions_seconds",
        "The number of seconds it takes to process each image action",
        r.image_actions.clone(),
    );
    reg.register(
        "engine_daemon_network_actions_seconds",
        "The number of seconds it takes to process each network action",
        r.network_actions.clone(),
    );
    reg.register(
        "engine_daemon_health_checks",
        "The total number of health checks",
        counter(counters::read(&counters::HEALTH_CHECKS)),
    );
    reg.register(
        "engine_daemon_health_checks_failed",
        "The total number of failed health checks",
        counter(counters::read(&counters::HEALTH_CHECKS_FAILED)),
    );
    reg.register(
        "engine_daemon_events",
        "The number of events logged",
        counter(counters::read(&counters::EVENTS)),
    );
    reg.register(
        "engine_daemon_events_subscribers_total",
        "The number of current subscribers to events",
        gauge(ctx.event_listeners.load(Ordering::Relaxed) as i64),
    );

    // berth's own.
    reg.register(
        "berth_api_request_duration_seconds",
        "Time from a request's arrival to the end of its response, per route",
        r.requests.clone(),
    );
    let restarts: Family<Labels, Counter> = Family::default();
    for (kind, n) in counters::restarts() {
        restarts.get_or_create(&vec![label("kind", kind)]).inc_by(n);
    }
    reg.register(
        "berth_actor_restarts",
        "Actors restarted by their supervisor, per actor kind",
        restarts,
    );
    let flight: Family<Labels, Gauge> = Family::default();
    for (kind, n) in counters::in_flight_now() {
        flight.get_or_create(&vec![label("kind", kind)]).set(n);
    }
    reg.register(
        "berth_actor_requests_in_flight",
        "Requests sent to actors and not answered yet (queued or being handled), per actor kind",
        flight,
    );
    let index = ctx.containers.containers.snapshot();
    let shims = index
        .by_id
        .values()
        .filter(|c| alive(c.state.shim_pid))
        .count();
    // Log entries per driver, from the counters each shim keeps in its
    // container's directory (every container not removed yet).
    let (written, dropped): (Family<Labels, Counter>, Family<Labels, Counter>) =
        (Family::default(), Family::default());
    for c in index.by_id.values() {
        let n = match live.get(&c.id) {
            Some(n) => *n,
            None => {
                let Ok(b) =
                    std::fs::read(c.dir().join(berth_actors::protocol::shim::LOG_COUNTS_FILE))
                else {
                    continue;
                };
                let Ok(n) = serde_json::from_slice::<berth_actors::protocol::shim::LogCounts>(&b)
                else {
                    continue;
                };
                n
            }
        };
        let l = vec![label("driver", c.log_driver())];
        written.get_or_create(&l).inc_by(n.written);
        dropped.get_or_create(&l).inc_by(n.dropped);
    }
    reg.register(
        "berth_log_lines_written",
        "Log entries the shims' drivers wrote or sent, per driver (containers not removed)",
        written,
    );
    reg.register(
        "berth_log_lines_dropped",
        "Log entries lost: the buffer was full or the receiver failed them, per driver",
        dropped,
    );
    reg.register(
        "berth_shims_alive",
        "berth-shim processes alive (one per running container)",
        gauge(shims as i64),
    );
    // With a cluster store: what the ClusterMembership actor sees.
    if let Some(c) = &ctx.cluster {
        let c = c.borrow().clone();
        reg.register(
            "berth_cluster_store_connected",
            "1 while the cluster store answers (lease held, watch running), else 0",
            gauge(i64::from(c.connected)),
        );
        reg.register(
            "berth_cluster_nodes",
            "Live nodes of the cluster (their lease holds), this one included",
            gauge(c.nodes.len() as i64),
        );
        reg.register(
            "berth_cluster_watch_events",
            "Changes the cluster store's watch delivered to this node",
            counter(counters::read(&counters::CLUSTER_WATCH_EVENTS)),
        );
    }

    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        tracing::warn!("encoding the metrics: {e}");
    }
    out
}
