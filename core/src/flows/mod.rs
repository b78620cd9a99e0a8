//! Flows: DAGs of executions of one partition. A flow's edges and the
//! edge group of each downstream decide when a downstream may run; the
//! partition (`partition::cascade`) applies those decisions to the
//! executions in the command that ended an upstream.

pub mod codec;
pub mod edge;
pub mod errors;
pub mod flow;
pub mod group;
pub mod requests;

#[cfg(test)]
mod tests;

pub use edge::{bucket_of, DependencyKind, Edge, EdgeState};
pub use errors::FlowError;
pub use flow::{CancelPolicy, Cancellation, Flow, EDGES_MAX, MEMBERS_MAX};
pub use group::{Bucket, Group, GroupState, OnSatisfied, Policy, PolicyKind, QUORUM_MAX};
