//! The claims domain: the node's claim board (where claimable work is, by
//! lane and capability set, and who waits for it) and FF.CLAIM's request.

pub mod board;
pub mod heads;
pub mod requests;
pub mod slab;

pub use board::{Candidate, ClaimBoard, Waiter};
