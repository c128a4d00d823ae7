//! What the actors count for berthd's metrics endpoint (`src/metrics/`):
//! plain atomics and small maps, read at each scrape. This crate knows no
//! metrics library; the endpoint turns these into Prometheus text.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Healthcheck probes that ended (dockerd's `health_checks_total`), and
/// those that failed (`health_checks_failed_total`).
pub static HEALTH_CHECKS: AtomicU64 = AtomicU64::new(0);
pub static HEALTH_CHECKS_FAILED: AtomicU64 = AtomicU64::new(0);
/// Events published on the bus (dockerd's `events_total`).
pub static EVENTS: AtomicU64 = AtomicU64::new(0);
/// Changes the cluster store's watch delivered to this node.
pub static CLUSTER_WATCH_EVENTS: AtomicU64 = AtomicU64::new(0);

static RESTARTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static IN_FLIGHT: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());

/// An actor's kind: its registry name up to the first `:` (`container`
/// for `container:<id>`, `front-door` for itself).
pub fn kind_of(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// A supervisor restarted the child `name`.
pub fn restarted(name: &str) {
    let mut m = RESTARTS.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(kind_of(name).to_string()).or_default() += 1;
}

/// Restarts so far, per kind.
pub fn restarts() -> BTreeMap<String, u64> {
    RESTARTS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A request sent to an actor and not answered yet: counted while it
/// lives. ractor shows no mailbox length, so this is the queue as the
/// askers see it: what waits in the mailbox plus the one being handled.
pub struct InFlight(String);

pub fn in_flight(name: Option<String>) -> InFlight {
    let kind = kind_of(name.as_deref().unwrap_or("unnamed")).to_string();
    *IN_FLIGHT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(kind.clone())
        .or_default() += 1;
    InFlight(kind)
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = IN_FLIGHT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&self.0)
        {
            *n -= 1;
        }
    }
}

/// Requests in flight now, per kind.
pub fn in_flight_now() -> BTreeMap<String, i64> {
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_restarts_and_requests_in_flight() {
        assert_eq!(kind_of("container:abc"), "container");
        assert_eq!(kind_of("front-door"), "front-door");
        restarted("metrics-test:1");
        restarted("metrics-test:2");
        assert_eq!(restarts()["metrics-test"], 2);
        let a = in_flight(Some("flight-test:x".into()));
        let b = in_flight(Some("flight-test:y".into()));
        assert_eq!(in_flight_now()["flight-test"], 2);
        drop(a);
        assert_eq!(in_flight_now()["flight-test"], 1);
        drop(b);
        assert_eq!(in_flight_now()["flight-test"], 0);
    }
}
