//! The functional core: plain Rust, no server types.
pub mod caps;
pub mod codec;
pub mod execution;
pub mod hints;
pub mod ids;
pub mod index;
pub mod state;
