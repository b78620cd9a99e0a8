//! The workers domain: the registry of worker instances with their
//! liveness, and the index of the leases each instance holds.

pub mod leases;
pub mod registry;
pub mod requests;

pub use leases::{LeaseRef, WorkerLeases};
pub use registry::{Registry, Worker, WorkerError};
