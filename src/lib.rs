#![recursion_limit = "256"]
//! berthd as a library: configuration, the API front door, host adapters.

pub mod config;
pub mod sys;
pub mod api;
pub mod daemon;
pub mod logging;
