//! The partition domain: a partition's records and the index derived from
//! them (eligible queues, due-time sets, per-state counts), the one place
//! that moves index entries when a record changes (`moves`), its encoding
//! and its requests.

pub mod cascade;
pub mod codec;
pub mod due_table;
pub mod flow_index;
pub mod flow_ops;
pub mod index;
pub mod listing;
pub mod moves;
pub mod queue;
pub mod records;
pub mod requests;

pub use due_table::DueTable;
pub use index::PartitionIndex;
pub use listing::{Filter, NodeCursor, Page};
pub use moves::{DueEffect, Env, Moved};
pub use queue::{Due, Head, QueueKey};
pub use records::Partition;
