//! The actor tree of berthd: supervision, events, the read model.
//!
//! This crate knows nothing of hyper, netlink or the host: side effects live
//! behind the traits in [`ports`] and are implemented by the root package.

pub mod cluster;
pub mod container;
pub mod directory;
pub mod events;
pub mod exec;
pub mod failpoint;
pub mod image;
pub mod logs;
pub mod metrics;
pub mod network;
pub mod os_error;
pub mod plugin;
pub mod ports;
pub mod protocol;
pub mod registry;
pub mod resave;
pub mod supervisor;
pub mod testing;
pub mod view;
pub mod volume;

pub use protocol::error::{ErrorKind, HasKind};
