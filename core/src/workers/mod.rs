//! The workers domain: the registry of worker instances with their
//! liveness, the index of the leases each instance holds, and the node
//! state persisted beside the partitions (the registry and paused lanes).

pub mod leases;
pub mod node_state;
pub mod registry;
pub mod requests;

pub use leases::{LeaseRef, WorkerLeases};
pub use node_state::NodeState;
pub use registry::{Registry, Worker, WorkerError};
