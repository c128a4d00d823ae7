//! Restart strategy: one-for-one, at most `max_restarts` within `window`,
//! exponential backoff between attempts, escalate to the parent when exceeded.
//!
//! Pure logic (time is passed in) so the failure matrix is unit tested
//! without actors.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a supervisor treats the failures of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed inside `window` before the supervisor escalates.
    pub max_restarts: u32,
    /// Sliding window over which restarts are counted.
    pub window: Duration,
    /// Delay before the first restart of a burst.
    pub backoff_initial: Duration,
    /// Upper bound of the doubling backoff.
    pub backoff_max: Duration,
}

impl RestartPolicy {
    /// The policy for long-lived infrastructure actors (front door, event bus):
    /// restart at once, then back off, give up after 10 failures a minute.
    pub const fn infrastructure() -> Self {
        RestartPolicy {
            max_restarts: 10,
            window: Duration::from_secs(60),
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// What to do after a child failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the child again after this delay.
    Restart { after: Duration },
    /// Too many failures in the window: fail the supervisor itself.
    Escalate,
}

/// Failure history of one child.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    failures: VecDeque<Instant>,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy) -> Self {
        RestartTracker {
            policy,
            failures: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> RestartPolicy {
        self.policy
    }

    /// Failures counted in the current window.
    pub fn recent_failures(&self) -> usize {
        self.failures.len()
    }

    /// Record a failure at `now` and decide.
    pub fn on_failure(&mut self, now: Instant) -> Decision {
        while let Some(first) = self.failures.front() {
            if now.saturating_duration_since(*first) > self.policy.window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        let n = self.failures.len() as u32;
        if n > self.policy.max_restarts {
            return Decision::Escalate;
        }
        Decision::Restart {
            after: self.backoff(n),
        }
    }

    /// Backoff before the `n`th restart of a burst (n >= 1).
    fn backoff(&self, n: u32) -> Duration {
        if n <= 1 {
            return self.policy.backoff_initial;
        }
        // Second restart waits 50 ms (or the initial delay if larger), then doubles.
        let base = self.policy.backoff_initial.max(Duration::from_millis(50));
        let factor = 1u32.checked_shl(n - 2).unwrap_or(u32::MAX);
        base.checked_mul(factor)
            .unwrap_or(self.policy.backoff_max)
            .min(self.policy.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            max_restarts: 3,
            window: Duration::from_secs(10),
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::from_millis(150),
        }
    }

    #[test]
    fn first_restart_is_immediate_then_backs_off() {
        let mut t = RestartTracker::new(policy());
        let now = Instant::now();
        assert_eq!(
            t.on_failure(now),
            Decision::Restart {
                after: Duration::ZERO
            }
        );
        assert_eq!(
            t.on_failure(now),
            Decision::Restart {
                after: Duration::from_millis(50)
            }
        );
        assert_eq!(
            t.on_failure(now),
            Decision::Restart {
                after: Duration::from_millis(100)
            }
        );
    }

    #[test]
    fn exceeding_the_window_limit_escalates() {
        let mut t = RestartTracker::new(policy());
        let now = Instant::now();
        for _ in 0..3 {
            assert!(matches!(t.on_failure(now), Decision::Restart { .. }));
        }
        assert_eq!(t.on_failure(now), Decision::Escalate);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let mut t = RestartTracker::new(policy());
        let start = Instant::now();
        for _ in 0..3 {
            t.on_failure(start);
        }
        let later = start + Duration::from_secs(11);
        assert_eq!(
            t.on_failure(later),
            Decision::Restart {
                after: Duration::ZERO
            }
        );
        assert_eq!(t.recent_failures(), 1);
    }

    #[test]
    fn backoff_is_capped() {
        let mut t = RestartTracker::new(RestartPolicy {
            max_restarts: 100,
            ..policy()
        });
        let now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..60 {
            if let Decision::Restart { after } = t.on_failure(now) {
                last = after;
            }
        }
        assert_eq!(last, Duration::from_millis(150));
    }
}
