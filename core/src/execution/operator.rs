//! What an operator does to an execution: revoke its lease, change its
//! priority or tags, replay it, block and unblock it.

use crate::base::ids::Uuid;
use crate::base::state::{
    AttemptState, BlockingReason, EligibilityState, LifecyclePhase, OwnershipState, PublicState,
    TerminalOutcome,
};
use crate::execution::errors::{OpError, RevokeError};
use crate::execution::record::{Execution, Tags};

impl Execution {
    /// An operator takes the lease away; the work becomes reclaimable, or,
    /// once its reclaims are used up (as when leases run out), ends failed
    /// with `max_reclaims_exceeded`.
    pub fn revoke(
        &mut self,
        expected: Option<Uuid>,
        max_reclaims: u32,
        now: u64,
    ) -> Result<(), RevokeError> {
        if self.lifecycle != LifecyclePhase::Active || self.ownership != OwnershipState::Leased {
            return Err(RevokeError::NoActiveLease);
        }
        let current = self.lease.as_ref().map(|l| l.lease_id);
        if expected.is_some() && expected != current {
            return Err(RevokeError::Stale);
        }
        if self.reclaim_count >= max_reclaims {
            self.fail_out_of_reclaims(now);
            return Ok(());
        }
        self.interrupt(OwnershipState::LeaseRevoked, now);
        Ok(())
    }

    /// Changes priority while the execution waits to be claimed.
    pub fn set_priority(&mut self, priority: u16, now: u64) -> Result<(), OpError> {
        if self.lifecycle != LifecyclePhase::Runnable
            || self.eligibility != EligibilityState::EligibleNow
        {
            return Err(OpError::NotWaiting);
        }
        self.priority = priority;
        self.last_mutation_at = now;
        Ok(())
    }

    /// Sets or replaces tags; returns how many were given.
    pub fn set_tags(&mut self, tags: Tags, now: u64) -> Result<usize, OpError> {
        let x = self.extra.get_or_insert_with(Box::default);
        let mut merged = x.tags.clone();
        let n = tags.len();
        for (k, v) in tags {
            match merged.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => merged.push((k, v)),
            }
        }
        if merged.len() > crate::base::limits::TAGS_MAX {
            return Err(OpError::TooManyTags);
        }
        x.tags = merged;
        self.last_mutation_at = now;
        Ok(n)
    }

    /// Runs a terminal execution again as a new (replay) attempt.
    pub fn replay(&mut self, max_replays: u32, now: u64) -> Result<(), OpError> {
        if !self.is_terminal() {
            return Err(OpError::NotTerminal);
        }
        if self.replay_count >= max_replays {
            return Err(OpError::MaxReplays);
        }
        self.lifecycle = LifecyclePhase::Runnable;
        self.ownership = OwnershipState::Unowned;
        self.eligibility = EligibilityState::EligibleNow;
        self.blocking = BlockingReason::WaitingForWorker;
        self.terminal = TerminalOutcome::None;
        self.attempt_state = AttemptState::PendingReplayAttempt;
        self.public = PublicState::Waiting;
        self.replay_count = self.replay_count.saturating_add(1);
        self.completed_at = None;
        self.result = None;
        self.set_reason(None);
        // The deadline bounded the first run; a replay is an operator's
        // decision to run again, so it runs without one (the reference
        // clears the deadline when the execution ends).
        if let Some(x) = self.extra.as_mut() {
            x.deadline_at = None;
        }
        self.last_transition_at = now;
        self.last_mutation_at = now;
        Ok(())
    }

    /// An operator holds a waiting (or delayed) execution back from claims.
    pub fn block(&mut self, reason: Option<Box<[u8]>>, now: u64) -> Result<(), OpError> {
        let waiting = self.lifecycle == LifecyclePhase::Runnable
            && matches!(
                self.eligibility,
                EligibilityState::EligibleNow | EligibilityState::NotEligibleUntilTime
            );
        if !waiting {
            return Err(OpError::NotEligible);
        }
        self.eligibility = EligibilityState::BlockedByOperator;
        self.blocking = BlockingReason::PausedByOperator;
        self.public = PublicState::Waiting;
        self.set_reason(reason);
        self.last_transition_at = now;
        self.last_mutation_at = now;
        Ok(())
    }

    /// Lifts an operator block: eligible again, or delayed if its delay is
    /// still ahead.
    pub fn unblock(&mut self, now: u64) -> Result<(), OpError> {
        if !matches!(
            self.eligibility,
            EligibilityState::BlockedByOperator | EligibilityState::BlockedByDependencies
        ) {
            return Err(OpError::NotBlocked);
        }
        let delayed = self.delay_until().is_some_and(|d| d > now);
        self.eligibility = if delayed {
            EligibilityState::NotEligibleUntilTime
        } else {
            EligibilityState::EligibleNow
        };
        self.blocking = if delayed {
            BlockingReason::WaitingForDelay
        } else {
            BlockingReason::WaitingForWorker
        };
        self.public = if delayed {
            PublicState::Delayed
        } else {
            PublicState::Waiting
        };
        self.set_reason(None);
        self.last_transition_at = now;
        self.last_mutation_at = now;
        Ok(())
    }
}
