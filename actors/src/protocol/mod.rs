//! Types shared between the actors and their callers: error kinds, replies.

pub mod error;
pub mod shim;
