//! A dependency edge: the downstream execution waits on the upstream.

use crate::base::ids::Uuid;
use crate::base::state::{byte_enum, TerminalOutcome};
use crate::flows::group::Bucket;

byte_enum!(
    /// What the upstream must do for the edge to count as satisfied (the
    /// reference has one kind).
    DependencyKind {
        SuccessOnly = 0 => "success_only",
    }
);

byte_enum!(EdgeState {
    Pending = 0 => "pending",
    Satisfied = 1 => "satisfied",
    Failed = 2 => "failed",
    Skipped = 3 => "skipped",
});

impl EdgeState {
    pub fn of(b: Bucket) -> EdgeState {
        match b {
            Bucket::Succeeded => EdgeState::Satisfied,
            Bucket::Failed => EdgeState::Failed,
            Bucket::Skipped => EdgeState::Skipped,
        }
    }

    pub fn bucket(self) -> Option<Bucket> {
        match self {
            EdgeState::Pending => None,
            EdgeState::Satisfied => Some(Bucket::Succeeded),
            EdgeState::Failed => Some(Bucket::Failed),
            EdgeState::Skipped => Some(Bucket::Skipped),
        }
    }
}

/// How an ended upstream counts for its edges: only success satisfies;
/// a skipped upstream passes the skip on; every other end fails.
pub fn bucket_of(outcome: TerminalOutcome) -> Bucket {
    match outcome {
        TerminalOutcome::Success => Bucket::Succeeded,
        TerminalOutcome::Skipped => Bucket::Skipped,
        _ => Bucket::Failed,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub id: Uuid,
    pub up: Uuid,
    pub down: Uuid,
    pub kind: DependencyKind,
    /// A label for the data the upstream hands on: with one, the
    /// upstream's result becomes the downstream's payload.
    pub data_ref: Option<Box<[u8]>>,
    pub state: EdgeState,
    pub created_at: u64,
    pub resolved_at: Option<u64>,
}

impl Edge {
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Edge>() + self.data_ref.as_ref().map_or(0, |d| d.len())
    }
}
