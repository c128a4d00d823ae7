//! The container's status and what each status allows.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// A shim serves the container (its process exists).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Restarting)
    }
    pub fn can_stop(self) -> bool {
        self.is_live() || self == Status::Restarting
    }
    pub fn can_kill(self) -> bool {
        self.is_live()
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_unpause(self) -> bool {
        self == Status::Paused
    }
    pub fn can_exec(self) -> bool {
        self == Status::Running
    }
    /// Removal without force.
    pub fn can_remove(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards() {
        use Status::*;
        let all = [Created, Running, Paused, Restarting, Removing, Exited, Dead];
        let starts: Vec<_> = all.iter().filter(|s| s.can_start()).collect();
        assert_eq!(starts, [&Created, &Restarting, &Exited]);
        assert!(Running.can_kill() && Paused.can_kill() && !Exited.can_kill());
        assert!(Running.can_pause() && !Paused.can_pause() && Paused.can_unpause());
        assert!(!Running.can_remove() && !Removing.can_remove() && Dead.can_remove());
        assert!(Running.can_exec() && !Paused.can_exec());
        assert_eq!(
            serde_json::to_string(&Restarting).unwrap(),
            "\"restarting\""
        );
    }
}
