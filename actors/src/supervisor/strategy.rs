//! Restart strategy: one-for-one, at most `max_restarts` within `window`,
//! exponential backoff between attempts, escalate to the parent when exceeded.
//!
//! Only exits that show the child cannot come back count toward the limit
//! ([`counts`]): a start that fails, or a failure or stop soon after a
//! start. A kill from outside (the chaos control, a supervisor ending an
//! unresponsive actor) or an exit after the child ran a while is restarted
//! at once and never escalates: a kill storm degrades service, it does not
//! end the daemon.
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
    /// A child that ran this long before going down came back: its exit
    /// does not count toward `max_restarts`.
    pub settle: Duration,
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
            settle: SETTLE,
        }
    }
}

/// How long a child must run before its exit no longer counts as one that
/// cannot come back.
pub const SETTLE: Duration = Duration::from_secs(5);

/// The reason ractor gives for an actor ended by `kill()`.
pub const KILLED: &str = "killed";

/// Whether an exit counts toward escalation: not a kill from outside, and
/// within `settle` of the child's start.
pub fn counts(killed: bool, uptime: Duration, settle: Duration) -> bool {
    !killed && uptime < settle
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

    /// An exit that does not count ([`counts`]): restart at once.
    pub fn on_exit(&mut self, now: Instant, counted: bool) -> Decision {
        if counted {
            self.on_failure(now)
        } else {
            Decision::Restart {
                after: Duration::ZERO,
            }
        }
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
            settle: Duration::from_secs(1),
        }
    }

    #[test]
    fn kills_and_exits_after_settling_never_escalate() {
        let p = policy();
        let mut t = RestartTracker::new(p);
        let now = Instant::now();
        for _ in 0..100 {
            let killed = counts(true, Duration::ZERO, p.settle);
            let settled = counts(false, Duration::from_secs(2), p.settle);
            for c in [killed, settled] {
                assert_eq!(
                    t.on_exit(now, c),
                    Decision::Restart {
                        after: Duration::ZERO
                    }
                );
            }
        }
        assert_eq!(t.recent_failures(), 0);
        // A failure right after a start counts.
        assert!(counts(false, Duration::from_millis(10), p.settle));
        for _ in 0..3 {
            assert!(matches!(t.on_exit(now, true), Decision::Restart { .. }));
        }
        assert_eq!(t.on_exit(now, true), Decision::Escalate);
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
