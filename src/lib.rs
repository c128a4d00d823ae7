//! berthd as a library: configuration, the API front door, host adapters.

pub mod config;
