//! The thin shell: command handlers, data type callbacks, registration.
pub mod blocking;
pub mod config;
pub mod describe;
pub mod events;
pub mod globals;
pub mod handlers;
pub mod held;
pub mod keys;
pub mod lanes;
pub mod migration;
pub mod registry;
pub mod reply;
pub mod timer;
pub mod types;
pub mod workers;
