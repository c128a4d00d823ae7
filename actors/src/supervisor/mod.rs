//! Supervision: the restart strategy and the generic one-for-one supervisor
//! used for the root of the tree (and later for the per-area supervisors).

pub mod ask;
pub mod keyed;
mod one_for_one;
pub mod strategy;

#[cfg(test)]
mod tests;

pub use keyed::KeyedChildren;
pub use one_for_one::{ChildSpec, ChildStatus, Supervisor, SupervisorArgs, SupervisorMsg};
pub use strategy::{Decision, RestartPolicy, RestartTracker};
