//! Per-attempt output streams and the event feed: what a frame append
//! checks and changes (modes, limits, the rolling summary merged with RFC
//! 7396 patches), the events transitions raise, and the names of the real
//! Valkey streams that hold both. Below `execution`: an execution's record
//! keeps its attempts' stream state. The shell writes the stream entries.

pub mod codec;
pub mod entry;
pub mod errors;
pub mod event;
pub mod keys;
pub mod merge_patch;
pub mod output;
pub mod settings;

pub use entry::EntryId;
pub use errors::StreamError;
pub use event::{Event, SignalOutcome};
pub use output::{Appended, CloseReason, FrameMode, Mode, Output, Summary, Trim};

#[cfg(test)]
mod tests;
