//! Fakes and fault injection for tests of the actor tree.

mod cluster;
mod container;
mod flaky;
mod logs;
mod network;
mod records;
mod registry;
mod volume;

pub use cluster::MemClusterStore;
pub use container::{FakeContainerHost, FakeContainerState, FakeShim};
pub use flaky::{Flaky, FlakyControl, FlakyMsg};
pub use logs::FakeLogFiles;
pub use network::{FakeNetState, FakeNetworkHost};
pub use records::MemRecords;
pub use registry::FakeRegistry;
pub use volume::{FakeVolState, FakeVolumeHost};
