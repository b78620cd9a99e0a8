//! FlowFabric's functional core: plain Rust with no server types, so it
//! builds and unit-tests without the server crate (and without bindgen).
//!
//! Laid out by domain, each with the same rooms (records, pure transitions,
//! requests, codec); imports go down: `base` ← `streams`, `suspension` ←
//! `execution` ← `flows` ← `partition` ← `claims` / `workers`. Flows sit
//! below the partition, which holds them beside its executions and applies
//! their decisions to them in the same step.
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
