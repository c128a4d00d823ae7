//! tracing setup: `--log-level`, `--debug` (forces debug), `--raw-logs`
//! (no colours), `--log-format` (`text`, or `json`: one JSON object per
//! line); the level is reloadable on SIGHUP.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, reload, Registry};

use crate::config::DaemonConfig;

/// Changes the level of the running subscriber.
pub struct LogHandle(reload::Handle<LevelFilter, Registry>);

pub fn level_for(c: &DaemonConfig) -> LevelFilter {
    if c.debug {
        return LevelFilter::DEBUG;
    }
    match c.log_level.as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    }
}

pub fn init(c: &DaemonConfig) -> LogHandle {
    let (filter, handle) = reload::Layer::new(level_for(c));
    let ansi = !c.raw_logs && nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    let json = c.log_format == "json";
    let text = (!json).then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_target(false)
    });
    let json = json.then(|| {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init();
    LogHandle(handle)
}

impl LogHandle {
    pub fn set(&self, c: &DaemonConfig) {
        let _ = self.0.modify(|f| *f = level_for(c));
    }
}
