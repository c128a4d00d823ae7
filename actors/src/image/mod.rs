//! Images: references, records, and the ImageStore actor that owns them.

pub mod model;
pub mod reference;
mod store;

#[cfg(test)]
pub(crate) mod tests;

pub use model::*;
pub use reference::{Reference, ReferenceError};
pub use store::{
    CommitResult, DeleteItem, ImageError, ImageStore, ImageStoreArgs, ImageStoreMsg, ImageUser,
    ImageUsers, Images, PruneResult, PruneSelect, Released,
};
