//! The execution domain: one execution's record, its attempts and lease,
//! the transitions a claim, its holder, the timer and an operator make,
//! its retry policy and how a failure is classified, the requests that drive them, and its encoding.

pub mod attempt;
pub mod codec;
pub mod dependencies;
pub mod errors;
pub mod failure;
pub mod feed;
pub mod holder;
pub mod lifecycle;
pub mod operator;
pub mod output;
pub mod record;
pub mod requests;
pub mod retry;
pub mod signal;
pub mod suspend;
#[cfg(test)]
mod suspend_tests;

pub use attempt::{Attempt, Fence, Grant, Lease, WorkerName};
pub use errors::{ClaimError, LeaseError, LeaseOutcome, OpError, RevokeError};
pub use failure::Failure;
pub use record::{Execution, Extra, Progress, Spec, Tag, Tags, DEFAULT_NAMESPACE};
pub use retry::{Backoff, RetryPolicy};

#[cfg(test)]
mod tests;
