//! An edge group: how a downstream execution's incoming edges decide it.
//! Pure counting: each resolved edge lands in one bucket, and the group
//! fires once, satisfied or impossible; later resolutions only count.

use crate::base::state::byte_enum;

byte_enum!(
    /// Which of its upstreams a downstream needs.
    PolicyKind {
        AllOf = 0 => "all_of",
        AnyOf = 1 => "any_of",
        Quorum = 2 => "quorum",
    }
);

byte_enum!(
    /// What a fired any-of or quorum group does to its upstreams still
    /// running.
    OnSatisfied {
        CancelRemaining = 0 => "cancel_remaining",
        LetRun = 1 => "let_run",
    }
);

byte_enum!(GroupState {
    Pending = 0 => "pending",
    Satisfied = 1 => "satisfied",
    Impossible = 2 => "impossible",
});

/// How a resolved edge counts: only a success satisfies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Succeeded,
    Failed,
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    /// The quorum (1 for any-of; all-of needs every edge).
    pub k: u32,
    pub on_satisfied: OnSatisfied,
}

impl Policy {
    pub const ALL_OF: Policy = Policy {
        kind: PolicyKind::AllOf,
        k: 0,
        on_satisfied: OnSatisfied::LetRun,
    };
}

/// The largest quorum a group may ask for (and so the most edges one
/// downstream can usefully have waiting).
pub const QUORUM_MAX: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    pub policy: Policy,
    /// Whether the policy was set explicitly (before the first edge).
    pub explicit: bool,
    /// Edges applied to the downstream.
    pub n: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
    pub state: GroupState,
    /// When the group fired (set once).
    pub fired_at: Option<u64>,
}

impl Group {
    pub fn new(policy: Policy, explicit: bool) -> Group {
        Group {
            policy,
            explicit,
            n: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            state: GroupState::Pending,
            fired_at: None,
        }
    }

    /// Successes the group needs.
    pub fn needed(&self) -> u32 {
        match self.policy.kind {
            PolicyKind::AllOf => self.n,
            PolicyKind::AnyOf => 1,
            PolicyKind::Quorum => self.policy.k,
        }
    }

    pub fn resolved(&self) -> u32 {
        self.succeeded
            .saturating_add(self.failed)
            .saturating_add(self.skipped)
    }

    /// Edges not resolved yet.
    pub fn running(&self) -> u32 {
        self.n.saturating_sub(self.resolved())
    }

    /// What the counters decide. A quorum larger than the edges applied
    /// so far decides nothing yet (more edges may come): the reference
    /// called such a group impossible at its first resolution, even a
    /// success.
    pub fn decide(&self) -> GroupState {
        let need = self.needed();
        if need > self.n || self.n == 0 {
            return GroupState::Pending;
        }
        if self.succeeded >= need {
            GroupState::Satisfied
        } else if self.failed.saturating_add(self.skipped) > self.n - need {
            GroupState::Impossible
        } else {
            GroupState::Pending
        }
    }

    pub fn is_fired(&self) -> bool {
        self.state != GroupState::Pending
    }

    /// Counts one resolved edge; returns the state the group fired into,
    /// if this resolution fired it (a fired group only counts).
    pub fn resolve(&mut self, b: Bucket, now: u64) -> Option<GroupState> {
        if self.resolved() >= self.n {
            return None;
        }
        match b {
            Bucket::Succeeded => self.succeeded += 1,
            Bucket::Failed => self.failed += 1,
            Bucket::Skipped => self.skipped += 1,
        }
        self.fire(now)
    }

    /// Takes back a resolution (its upstream is replayed) while the group
    /// has not fired.
    pub fn unresolve(&mut self, b: Bucket) {
        let c = match b {
            Bucket::Succeeded => &mut self.succeeded,
            Bucket::Failed => &mut self.failed,
            Bucket::Skipped => &mut self.skipped,
        };
        *c = c.saturating_sub(1);
    }

    /// Fires the group if its counters now decide it.
    pub fn fire(&mut self, now: u64) -> Option<GroupState> {
        if self.is_fired() {
            return None;
        }
        let s = self.decide();
        if s == GroupState::Pending {
            return None;
        }
        self.state = s;
        self.fired_at = Some(now);
        Some(s)
    }

    /// Back to pending with nothing resolved (the downstream is replayed).
    pub fn reset(&mut self) {
        self.succeeded = 0;
        self.failed = 0;
        self.skipped = 0;
        self.state = GroupState::Pending;
        self.fired_at = None;
    }

    /// Whether a fired group cancels its upstreams still running.
    pub fn cancels_remaining(&self) -> bool {
        self.is_fired()
            && self.policy.kind != PolicyKind::AllOf
            && self.policy.on_satisfied == OnSatisfied::CancelRemaining
    }
}
