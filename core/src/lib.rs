//! FlowFabric's functional core: plain Rust with no server types, so it
//! builds and unit-tests without the server crate (and without bindgen).
//!
//! Laid out by domain, each with the same rooms (records, pure transitions,
//! requests, codec); imports go down: `base` ← `execution` ← `partition` ←
//! `claims` / `workers` / the coming domains.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod admission;
pub mod base;
pub mod claims;
pub mod execution;
pub mod flows;
pub mod partition;
pub mod streams;
pub mod suspension;
pub mod workers;
