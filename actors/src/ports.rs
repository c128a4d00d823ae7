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
