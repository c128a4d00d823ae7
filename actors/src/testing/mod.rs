//! Fakes and fault injection for tests of the actor tree.

mod flaky;

pub use flaky::{Flaky, FlakyControl, FlakyMsg};
