//! systemd integration: socket activation (`LISTEN_FDS`) and `sd_notify`.

use std::os::fd::RawFd;

/// The fds systemd passed, if `LISTEN_PID` names this process.
/// Consumes the environment variables so children do not inherit them.
pub fn listen_fds() -> Vec<RawFd> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    // Called once at startup, before the tokio runtime starts any thread.
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !pid_ok || n <= 0 {
        return Vec::new();
    }
    (3..3 + n).collect()
}

/// Tell systemd we are ready (no-op outside systemd).
pub fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// Tell systemd we are stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}
