//! Restart policies with dockerd's backoff: the first restart after 100 ms,
//! doubling each time, reset once the container ran for 10 s.

use std::time::Duration;

pub const INITIAL: Duration = Duration::from_millis(100);
pub const RESET_AFTER: Duration = Duration::from_secs(10);
pub const MAX_DELAY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    /// The delay before the next restart, given how long the container ran.
    pub fn next(&mut self, ran: Duration) -> Duration {
        let d = match self.delay {
            Some(d) if ran < RESET_AFTER => (d * 2).min(MAX_DELAY),
            _ => INITIAL,
        };
        self.delay = Some(d);
        d
    }

    pub fn reset(&mut self) {
        self.delay = None;
    }
}

/// Whether the policy restarts a container that exited with `code`.
pub fn should_restart(
    policy: &str,
    max_retries: u64,
    restarts: u64,
    code: i32,
    manually_stopped: bool,
) -> bool {
    if manually_stopped {
        return false;
    }
    match policy {
        "always" | "unless-stopped" => true,
        "on-failure" => code != 0 && (max_retries == 0 || restarts < max_retries),
        _ => false,
    }
}

/// Validate a policy as the API receives it.
pub fn validate(policy: &str, max_retries: i64) -> Result<(), String> {
    match policy {
        "" | "no" | "always" | "unless-stopped" if max_retries != 0 => Err(format!(
            "maximum retry count cannot be used with restart policy '{policy}'"
        )),
        "" | "no" | "always" | "unless-stopped" => Ok(()),
        "on-failure" if max_retries < 0 => Err("maximum retry count cannot be negative".into()),
        "on-failure" => Ok(()),
        p => Err(format!("invalid restart policy '{p}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        assert_eq!(b.next(short), Duration::from_millis(100));
        assert_eq!(b.next(short), Duration::from_millis(200));
        assert_eq!(b.next(short), Duration::from_millis(400));
        assert_eq!(b.next(Duration::from_secs(11)), Duration::from_millis(100));
        for _ in 0..20 {
            b.next(short);
        }
        assert_eq!(b.next(short), MAX_DELAY);
    }

    #[test]
    fn policies() {
        assert!(!should_restart("no", 0, 0, 1, false));
        assert!(should_restart("always", 0, 5, 0, false));
        assert!(!should_restart("always", 0, 5, 0, true));
        assert!(should_restart("on-failure", 2, 1, 1, false));
        assert!(!should_restart("on-failure", 2, 2, 1, false));
        assert!(!should_restart("on-failure", 2, 0, 0, false));
        assert!(validate("on-failure", 3).is_ok());
        assert!(validate("always", 3).is_err());
        assert!(validate("sometimes", 0).is_err());
    }
}
