//! Every integration test in one binary: the shared helpers compile and
//! the whole suite links once, and libtest packs the tests of every area
//! side by side (each starts its own berthd on its own roots, socket and
//! subnets). One area: `cargo test --test integration registry::`.

mod bollard;
mod build;
mod chaos;
mod clients;
mod cluster;
mod commit;
mod common;
mod compose;
mod config;
mod connections;
mod containers;
mod cp;
mod exposure;
mod failpoints;
mod full_disk;
mod fuzz_corpus;
mod health;
mod images;
mod listeners;
mod live_restore;
mod logdrivers;
mod malformed;
mod metrics;
mod networking;
mod plugins;
mod python_sdk;
mod registry;
mod runtime_spec;
mod security;
mod shutdown;
mod soak;
mod system;
mod upgrade;
mod volumes;
