//! The steps a flow takes on one of its executions: held back while its
//! edge group is pending, released when it is satisfied, skipped when it
//! cannot be. Each says whether it changed the record.

use crate::base::state::{
    AttemptLifecycle, BlockingReason, EligibilityState, LifecyclePhase, OwnershipState,
    PublicState, TerminalOutcome,
};
use crate::execution::record::Execution;

/// Why a skipped execution ended.
pub const DEPENDENCY_IMPOSSIBLE: &[u8] = b"dependency_impossible";

impl Execution {
    /// Waiting (or delayed) and unowned: an edge into it holds it back.
    pub fn hold_for_dependencies(&mut self, now: u64) -> bool {
        let waiting = self.lifecycle == LifecyclePhase::Runnable
            && self.ownership == OwnershipState::Unowned
            && matches!(
                self.eligibility,
                EligibilityState::EligibleNow | EligibilityState::NotEligibleUntilTime
            );
        if !waiting {
            return false;
        }
        self.eligibility = EligibilityState::BlockedByDependencies;
        self.blocking = BlockingReason::WaitingForChildren;
        self.public = PublicState::WaitingChildren;
        self.last_transition_at = now;
        self.last_mutation_at = now;
        true
    }

    /// Its dependencies are satisfied: eligible again, or delayed if its
    /// delay is still ahead. Only an execution they hold back moves.
    pub fn release_dependencies(&mut self, now: u64) -> bool {
        if self.lifecycle != LifecyclePhase::Runnable
            || self.eligibility != EligibilityState::BlockedByDependencies
        {
            return false;
        }
        self.unblock(now).is_ok()
    }

    /// Its dependencies can no longer be satisfied: it ends skipped from
    /// wherever it is, a live attempt cancelled.
    pub fn skip(&mut self, now: u64) -> bool {
        if self.is_terminal() {
            return false;
        }
        self.end(
            TerminalOutcome::Skipped,
            AttemptLifecycle::EndedCancelled,
            Some(DEPENDENCY_IMPOSSIBLE.into()),
            now,
        );
        true
    }
}
