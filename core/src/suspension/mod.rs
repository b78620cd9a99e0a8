//! Suspension, waitpoints and HMAC-signed signals: what an execution waits
//! for while it is parked (its resume condition, its waitpoints and the
//! signals they received) and the node's token keys. Below `execution`:
//! an execution's record holds its waits, and its transitions (in
//! `execution::suspend`) change the state vector around them.

pub mod codec;
pub mod condition;
pub mod errors;
pub mod record;
pub mod token;

pub use condition::{Condition, CountKind, Effect, Matcher, Node};
pub use errors::WaitError;
pub use record::{
    CloseReason, Signal, Suspension, TimeoutBehavior, Waitpoint, WaitpointState, Waits,
};
pub use token::{Keyring, Rotated};

#[cfg(test)]
mod tests;
