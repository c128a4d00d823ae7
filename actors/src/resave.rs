//! A record the disk refused (a full data-root) is saved again: the actor
//! that owns it keeps the change, marks the record unsaved, and sends
//! itself a resave message every [`RESAVE_AFTER`] until a save succeeds,
//! so a berthd that restarts never finds a record older than what it
//! answered.

use std::time::Duration;

use ractor::{ActorRef, Message};

/// How long a record the disk refused waits for the next attempt.
#[cfg(not(test))]
pub const RESAVE_AFTER: Duration = Duration::from_secs(5);
#[cfg(test)]
pub const RESAVE_AFTER: Duration = Duration::from_millis(100);

/// Whether an actor's record waits to be saved again.
#[derive(Debug, Default)]
pub struct Unsaved {
    pending: bool,
    scheduled: bool,
}

impl Unsaved {
    /// A save failed; `true` the first time (to warn once).
    pub fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.pending, true)
    }

    /// A save succeeded; `true` if one had failed before (to say so).
    pub fn saved(&mut self) -> bool {
        std::mem::take(&mut self.pending)
    }

    /// The resave message arrived: whether the record is to be saved.
    pub fn due(&mut self) -> bool {
        self.scheduled = false;
        self.pending
    }

    /// After each message: one resave message on its way while unsaved.
    pub fn schedule<M: Message>(&mut self, myself: &ActorRef<M>, msg: fn() -> M) {
        if self.pending && !self.scheduled {
            self.scheduled = true;
            myself.send_after(RESAVE_AFTER, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_warn_once_and_a_save_clears_them() {
        let mut u = Unsaved::default();
        assert!(!u.saved());
        assert!(u.failed());
        assert!(!u.failed());
        assert!(u.due());
        assert!(u.saved());
        assert!(!u.due());
    }
}
