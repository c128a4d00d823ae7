//! Fakes and fault injection for tests of the actor tree.

mod flaky;
mod logs;
mod network;
mod volume;

pub use flaky::{Flaky, FlakyControl, FlakyMsg};
pub use logs::FakeLogFiles;
pub use network::{FakeNetState, FakeNetworkHost};
pub use volume::{FakeVolState, FakeVolumeHost};
