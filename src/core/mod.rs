//! The functional core: plain Rust, no server types.
pub mod args;
pub mod blob;
pub mod caps;
pub mod claims;
pub mod codec;
pub mod engine;
pub mod execution;
pub mod ids;
pub mod index;
pub mod leases;
pub mod partition;
pub mod requests;
pub mod retry;
pub mod state;
pub mod workers;
