//! Command handlers, one file per domain: each parses its request (in the
//! core), applies the core transition through the shell's mechanisms, and
//! replies.

pub mod claims;
pub mod dead_letter;
pub mod execution;
pub mod execution_reads;
pub mod flows;
pub mod node;
pub mod partition;
pub mod streams;
pub mod suspension;
pub mod workers;
