//! kill: deliver a signal through the runtime.

use super::actor::ContainerState;
use super::ContainerError;
use crate::protocol::shim::Request;

/// Signal names (with or without `SIG`) and numbers, as dockerd takes them.
pub fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    const NAMES: &[(&str, i32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("POLL", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];
    let bad = || ContainerError::Invalid(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let off = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+')
                .parse::<i32>()
                .map_err(|_| bad())?
        };
        return if (0..=30).contains(&off) {
            Ok(34 + off)
        } else {
            Err(bad())
        };
    }
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(bad)
}

impl ContainerState {
    /// Deliver the signal; `true` when it is SIGKILL, whose answer waits
    /// for the exit (dockerd's `Kill` waits for the container to stop).
    pub(super) async fn kill(&mut self, signal: &str) -> Result<bool, ContainerError> {
        let sig = if signal.is_empty() {
            9
        } else {
            parse_signal(signal)?
        };
        if !self.status().can_kill() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                self.rec.short_name(),
                self.rec.id
            )));
        }
        self.rec.state.manually_stopped = true;
        self.save();
        self.signal(sig, false).await?;
        Ok(sig == 9)
    }

    /// Send `sig` to the container's init (`all`: every process).
    pub(super) async fn signal(&mut self, sig: i32, all: bool) -> Result<(), ContainerError> {
        self.event("kill", &[("signal", sig.to_string())]);
        let r = self
            .host
            .call(&self.rec.id, Request::Kill { signal: sig, all })
            .await
            .map(|_| ())
            .map_err(|e| {
                ContainerError::System(format!("Cannot kill container {}: {e}", self.rec.id))
            });
        if self.status() == crate::container::Status::Paused {
            // A frozen process cannot act on a signal: thaw it.
            let _ = self.host.call(&self.rec.id, Request::Resume).await;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("usr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }
}
