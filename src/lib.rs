//! libflowfabric: FlowFabric's durable execution engine as a Valkey module.
pub mod core;
