//! The core lifecycle of an execution: a claim starts an attempt under a
//! lease, the lease is checked and runs out, delays fall due, deadlines and
//! attempt timeouts end it.

use crate::base::ids::Uuid;
use crate::base::state::{
    AttemptLifecycle, AttemptState, AttemptType, BlockingReason, EligibilityState, LifecyclePhase,
    OwnershipState, PublicState, TerminalOutcome,
};
use crate::execution::attempt::{Attempt, Fence, Grant, Lease, WorkerName};
use crate::execution::errors::{ClaimError, LeaseError, LeaseOutcome};
use crate::execution::record::Execution;
use crate::execution::record::Extra;

impl Execution {
    pub(crate) fn not_active(&self) -> LeaseError {
        LeaseError::NotActive {
            terminal: self.terminal,
            lease_epoch: self.lease_epoch,
            lifecycle: self.lifecycle,
            attempt_id: self.current_attempt().map(|a| a.attempt_id),
        }
    }

    /// Starts a new attempt under a new lease.
    pub fn claim(
        &mut self,
        worker_id: &[u8],
        worker_instance_id: &[u8],
        lease_ms: u64,
        lease_id: Uuid,
        attempt_id: Uuid,
        now: u64,
    ) -> Result<Grant, ClaimError> {
        let reclaim = self.is_reclaimable();
        if !reclaim {
            if self.lifecycle != LifecyclePhase::Runnable
                || self.eligibility != EligibilityState::EligibleNow
                || self.terminal != TerminalOutcome::None
            {
                return Err(ClaimError::NotLeaseable);
            }
            if self.ownership != OwnershipState::Unowned {
                return Err(ClaimError::LeaseConflict);
            }
        }
        let attempt_type = if reclaim {
            if let Some(a) = self.attempts.last_mut() {
                a.state = AttemptLifecycle::InterruptedReclaimed;
                a.ended_at = Some(now);
            }
            self.reclaim_count = self.reclaim_count.saturating_add(1);
            AttemptType::Reclaim
        } else {
            match self.attempt_state {
                AttemptState::PendingRetryAttempt => AttemptType::Retry,
                AttemptState::PendingReplayAttempt => AttemptType::Replay,
                _ => AttemptType::Initial,
            }
        };
        let epoch = self.lease_epoch.saturating_add(1);
        let expires_at = now.saturating_add(lease_ms);
        // A holder that parked its execution (FF.DELAY) left its attempt
        // interrupted: the next claim resumes that attempt under a new lease.
        let resumed = match self.attempts.last_mut() {
            Some(a) if !reclaim && self.attempt_state == AttemptState::AttemptInterrupted => {
                a.state = AttemptLifecycle::Started;
                a.lease_id = lease_id;
                a.lease_epoch = epoch;
                a.worker = WorkerName::new(worker_id, worker_instance_id);
                Some((a.index, a.attempt_id, a.attempt_type))
            }
            _ => None,
        };
        let was_resumed = resumed.is_some();
        let (index, attempt_id, attempt_type) = match resumed {
            Some(r) => r,
            None => {
                let index = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
                // Most executions run once: room for one attempt, not four.
                if self.attempts.capacity() == 0 {
                    self.attempts = Vec::with_capacity(1);
                }
                self.attempts.push(Attempt {
                    index,
                    attempt_id,
                    attempt_type,
                    state: AttemptLifecycle::Started,
                    started_at: now,
                    ended_at: None,
                    lease_id,
                    lease_epoch: epoch,
                    worker: WorkerName::new(worker_id, worker_instance_id),
                });
                (index, attempt_id, attempt_type)
            }
        };
        self.lease_epoch = epoch;
        self.lease = Some(Lease {
            lease_id,
            acquired_at: now,
            expires_at,
            last_renewed_at: now,
            renewal_deadline: now.saturating_add(lease_ms / 3 * 2),
            expired_at: None,
            revoked_at: None,
        });
        self.lifecycle = LifecyclePhase::Active;
        self.ownership = OwnershipState::Leased;
        self.eligibility = EligibilityState::NotApplicable;
        self.blocking = BlockingReason::None;
        self.attempt_state = AttemptState::RunningAttempt;
        self.public = PublicState::Active;
        self.started_at.get_or_insert(now);
        self.last_transition_at = now;
        self.last_mutation_at = now;
        Ok(Grant {
            attempt_index: index,
            attempt_id,
            attempt_type,
            lease_id,
            lease_epoch: epoch,
            lease_expires_at: expires_at,
            resumed: was_resumed,
        })
    }

    /// Checks the fence in the reference's order (`partition::moves` settles a
    /// lease that ran out before this runs, see `moves::fenced`); the flag
    /// says whether the record changed (never, here).
    pub fn check_fence(&mut self, fence: &Fence, now: u64) -> Result<(), (LeaseError, bool)> {
        if self.lifecycle != LifecyclePhase::Active {
            return Err((self.not_active(), false));
        }
        if self.ownership == OwnershipState::LeaseRevoked {
            return Err((LeaseError::Revoked, false));
        }
        let expires_at = self.lease.as_ref().map_or(0, |l| l.expires_at);
        if expires_at <= now || self.ownership == OwnershipState::LeaseExpiredReclaimable {
            return Err((LeaseError::Expired, false));
        }
        let lease_id = self.lease.as_ref().map(|l| l.lease_id);
        let attempt_id = self.current_attempt().map(|a| a.attempt_id);
        if lease_id != Some(fence.lease_id)
            || self.lease_epoch != fence.lease_epoch
            || attempt_id != Some(fence.attempt_id)
        {
            return Err((LeaseError::Stale, false));
        }
        Ok(())
    }

    /// Marks an active lease expired and the execution reclaimable.
    /// Idempotent; returns whether anything changed.
    pub fn mark_expired(&mut self, now: u64) -> bool {
        if self.lifecycle != LifecyclePhase::Active
            || self.ownership == OwnershipState::LeaseExpiredReclaimable
        {
            return false;
        }
        self.interrupt(OwnershipState::LeaseExpiredReclaimable, now);
        self.public = PublicState::Active;
        true
    }

    /// The holder lost its lease (it ran out, or was revoked): the attempt
    /// is interrupted and the work waits for a reclaim.
    pub(crate) fn interrupt(&mut self, ownership: OwnershipState, now: u64) {
        self.ownership = ownership;
        self.blocking = BlockingReason::WaitingForWorker;
        self.attempt_state = AttemptState::AttemptInterrupted;
        if let Some(l) = self.lease.as_mut() {
            match ownership {
                OwnershipState::LeaseRevoked => l.revoked_at = Some(now),
                _ => l.expired_at = Some(now),
            }
        }
        self.last_mutation_at = now;
    }

    /// Its reclaims are used up: the execution ends failed
    /// (`max_reclaims_exceeded`, as in the reference).
    pub(crate) fn fail_out_of_reclaims(&mut self, now: u64) {
        self.end(
            TerminalOutcome::Failed,
            AttemptLifecycle::InterruptedReclaimed,
            Some(Box::from(&b"max_reclaims_exceeded"[..])),
            now,
        );
    }

    /// Ends the execution in `outcome`, closing any lease and attempt.
    pub(crate) fn end(
        &mut self,
        outcome: TerminalOutcome,
        attempt_end: AttemptLifecycle,
        reason: Option<Box<[u8]>>,
        now: u64,
    ) {
        if matches!(
            self.lifecycle,
            LifecyclePhase::Active | LifecyclePhase::Suspended
        ) {
            if let Some(a) = self.attempts.last_mut() {
                if a.ended_at.is_none() {
                    a.state = attempt_end;
                    a.ended_at = Some(now);
                }
            }
        }
        self.lifecycle = LifecyclePhase::Terminal;
        self.ownership = OwnershipState::Unowned;
        self.eligibility = EligibilityState::NotApplicable;
        self.blocking = BlockingReason::None;
        self.terminal = outcome;
        self.attempt_state = if self.attempts.is_empty() {
            self.attempt_state
        } else {
            AttemptState::AttemptTerminal
        };
        self.public = match outcome {
            TerminalOutcome::Success => PublicState::Completed,
            TerminalOutcome::Cancelled => PublicState::Cancelled,
            TerminalOutcome::Expired => PublicState::Expired,
            TerminalOutcome::Skipped => PublicState::Skipped,
            _ => PublicState::Failed,
        };
        self.set_reason(reason);
        self.close_waits(outcome, now);
        self.completed_at = Some(now);
        self.lease = None;
        self.last_transition_at = now;
        self.last_mutation_at = now;
    }

    /// A delay (or retry backoff) has passed: eligible again.
    pub fn promote(&mut self, now: u64) -> bool {
        if self.lifecycle != LifecyclePhase::Runnable
            || self.eligibility != EligibilityState::NotEligibleUntilTime
        {
            return false;
        }
        self.eligibility = EligibilityState::EligibleNow;
        self.blocking = BlockingReason::WaitingForWorker;
        self.public = PublicState::Waiting;
        if let Some(x) = self.extra.as_mut() {
            x.delay_until = None;
        }
        if self.extra.as_deref().is_some_and(Extra::is_default) {
            self.extra = None;
        }
        self.last_transition_at = now;
        self.last_mutation_at = now;
        true
    }

    /// The execution deadline has passed: terminal, expired.
    pub fn expire(&mut self, now: u64) -> bool {
        if self.is_terminal() {
            return false;
        }
        let reason: &[u8] = if self.deadline_at().is_some_and(|d| d <= now) {
            b"execution_deadline"
        } else if self.attempt_deadline().is_some_and(|d| d <= now) {
            b"attempt_timeout"
        } else {
            return false;
        };
        self.end(
            TerminalOutcome::Expired,
            AttemptLifecycle::EndedFailure,
            Some(reason.into()),
            now,
        );
        true
    }

    /// When the running attempt times out, if it has a timeout. The timeout
    /// runs from the claim that holds (or last held) the lease, as in the
    /// reference: an attempt parked by FF.DELAY and resumed by a later
    /// claim gets its full timeout again; time parked does not count.
    pub fn attempt_deadline(&self) -> Option<u64> {
        let timeout = self.extra.as_ref()?.attempt_timeout_ms?;
        if self.lifecycle != LifecyclePhase::Active {
            return None;
        }
        let since = self.lease.as_ref()?.acquired_at;
        Some(since.saturating_add(timeout))
    }

    /// The earliest time this execution must end: its deadline or its
    /// running attempt's timeout.
    pub fn expiry_due(&self) -> Option<u64> {
        if self.is_terminal() {
            return None;
        }
        match (self.deadline_at(), self.attempt_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A lease ran out: reclaimable, or failed once reclaims are used up.
    pub fn lease_ran_out(&mut self, now: u64, max_reclaims: u32) -> LeaseOutcome {
        let live = self.lifecycle == LifecyclePhase::Active
            && self.ownership == OwnershipState::Leased
            && self.lease.as_ref().is_some_and(|l| l.expires_at <= now);
        if !live {
            return LeaseOutcome::Unchanged;
        }
        if self.reclaim_count >= max_reclaims {
            self.fail_out_of_reclaims(now);
            return LeaseOutcome::Failed;
        }
        self.mark_expired(now);
        LeaseOutcome::Reclaimable
    }
}
