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
