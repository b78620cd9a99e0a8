//! Which feed event a transition raised, read from the state vector before
//! and after it: one rule for every command and timer step, so no caller
//! can forget to tell the feed. Steps that leave the state vector alone
//! (a renewal, progress, tags, a signal that does not resume) are raised
//! by their callers.

use crate::base::state::{
    AttemptLifecycle, AttemptState, AttemptType, EligibilityState, LifecyclePhase, OwnershipState,
    PublicState, TerminalOutcome,
};
use crate::execution::record::Execution;
use crate::streams::Event;

/// The parts of the state vector a feed event is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    lifecycle: LifecyclePhase,
    ownership: OwnershipState,
    eligibility: EligibilityState,
    public: PublicState,
    lease_epoch: u64,
    /// The current attempt's index and lifecycle.
    pub attempt: Option<(u32, AttemptLifecycle)>,
}

impl Execution {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            lifecycle: self.lifecycle,
            ownership: self.ownership,
            eligibility: self.eligibility,
            public: self.public,
            lease_epoch: self.lease_epoch,
            attempt: self.current_attempt().map(|a| (a.index, a.state)),
        }
    }

    /// The event of a transition from `before` to the record's state now,
    /// if the state vector changed.
    pub fn event_since(&self, before: &Snapshot) -> Option<Event> {
        let after = self.snapshot();
        if after == *before {
            return None;
        }
        Some(match self.lifecycle {
            LifecyclePhase::Terminal => match self.terminal {
                TerminalOutcome::Success => Event::Completed,
                TerminalOutcome::Cancelled => Event::Cancelled,
                TerminalOutcome::Expired => Event::Expired,
                TerminalOutcome::Skipped => Event::Skipped,
                TerminalOutcome::Failed | TerminalOutcome::None => Event::Failed,
            },
            LifecyclePhase::Active => match self.ownership {
                OwnershipState::Leased if after.lease_epoch != before.lease_epoch => {
                    match self.current_attempt().map(|a| a.attempt_type) {
                        Some(AttemptType::Reclaim) => Event::Reclaimed,
                        _ => Event::Claimed,
                    }
                }
                OwnershipState::LeaseExpiredReclaimable => Event::LeaseExpired,
                OwnershipState::LeaseRevoked => Event::LeaseRevoked,
                _ => return None,
            },
            LifecyclePhase::Suspended => Event::Suspended,
            LifecyclePhase::Runnable | LifecyclePhase::Submitted => {
                if before.lifecycle == LifecyclePhase::Suspended {
                    Event::Resumed
                } else if self.eligibility == EligibilityState::BlockedByOperator {
                    Event::Blocked
                } else {
                    match self.public {
                        PublicState::Delayed
                            if self.attempt_state == AttemptState::PendingRetryAttempt =>
                        {
                            Event::RetryScheduled
                        }
                        PublicState::Delayed => Event::Delayed,
                        PublicState::WaitingChildren => Event::WaitingChildren,
                        _ if before.public == self.public => return None,
                        _ => Event::Waiting,
                    }
                }
            }
        })
    }
}
