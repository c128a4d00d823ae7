//! `/containers/*`, by concern.

mod commit;
mod fs;
mod lifecycle;
mod list;
mod stats;
mod streams;

pub use commit::*;
pub use fs::*;
pub use lifecycle::*;
pub use list::*;
pub use stats::*;
pub use streams::*;
