#![recursion_limit = "256"]
//! berthd as a library: configuration, the API front door, host adapters.

pub mod api;
pub mod build;
pub mod cluster;
pub mod config;
pub mod containers;
pub mod daemon;
pub mod facts;
pub mod fuzzing;
pub mod ids;
pub mod images;
pub mod logdrivers;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod shim;
pub mod sys;
pub mod task;
pub mod volumes;
