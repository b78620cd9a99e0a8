//! What the lease holder does with its execution, each call fenced by
//! lease id, epoch and attempt id: renew, complete, fail (and retry),
//! cancel, park it (delay, wait for children), report progress.

use crate::base::blob::Blob;
use crate::base::state::{
    AttemptLifecycle, AttemptState, BlockingReason, EligibilityState, LifecyclePhase,
    OwnershipState, PublicState, TerminalOutcome,
};
use crate::execution::attempt::Fence;
use crate::execution::errors::LeaseError;
use crate::execution::failure::Failure;
use crate::execution::record::{Execution, Progress};

impl Execution {
    /// Extends the lease; returns the new expiry.
    pub fn renew(
        &mut self,
        fence: &Fence,
        lease_ms: u64,
        now: u64,
    ) -> Result<u64, (LeaseError, bool)> {
        self.check_fence(fence, now)?;
        let expires_at = now.saturating_add(lease_ms);
        if let Some(l) = self.lease.as_mut() {
            l.last_renewed_at = now;
            l.renewal_deadline = now.saturating_add(lease_ms / 3 * 2);
            l.expires_at = expires_at;
        }
        self.last_mutation_at = now;
        Ok(expires_at)
    }

    /// Ends the execution successfully, storing its result.
    pub fn complete(
        &mut self,
        fence: &Fence,
        result: Option<Blob>,
        now: u64,
    ) -> Result<(), (LeaseError, bool)> {
        self.check_fence(fence, now)?;
        self.result = result;
        self.end(
            TerminalOutcome::Success,
            AttemptLifecycle::EndedSuccess,
            None,
            now,
        );
        Ok(())
    }

    /// The delay before the next retry, if the retry policy allows one
    /// after a failure classified as `failure` (a non-retryable one never
    /// retries). `jitter` is a random number the caller draws (and
    /// replicates).
    pub fn retry_delay(&self, failure: Option<&Failure>, jitter: u64) -> Option<u64> {
        if failure.is_some_and(|f| f.non_retryable) {
            return None;
        }
        let policy = self.retry()?;
        if self.retry_count >= policy.max_retries {
            return None;
        }
        Some(crate::execution::retry::backoff_ms(
            &policy.backoff,
            self.retry_count,
            jitter,
        ))
    }

    /// Fails the current attempt: a retry at `retry_at`, or terminal
    /// failure. The reason and its classification are kept either way.
    pub fn fail(
        &mut self,
        fence: &Fence,
        reason: Option<Box<[u8]>>,
        failure: Option<Failure>,
        retry_at: Option<u64>,
        now: u64,
    ) -> Result<Option<u64>, (LeaseError, bool)> {
        self.check_fence(fence, now)?;
        let out = self.fail_checked(reason, retry_at, now);
        self.set_failure(failure);
        Ok(out)
    }

    fn fail_checked(
        &mut self,
        reason: Option<Box<[u8]>>,
        retry_at: Option<u64>,
        now: u64,
    ) -> Option<u64> {
        match retry_at {
            Some(at) => {
                if let Some(a) = self.attempts.last_mut() {
                    a.state = AttemptLifecycle::EndedFailure;
                    a.ended_at = Some(now);
                }
                self.lifecycle = LifecyclePhase::Runnable;
                self.ownership = OwnershipState::Unowned;
                self.eligibility = EligibilityState::NotEligibleUntilTime;
                self.blocking = BlockingReason::WaitingForRetryBackoff;
                self.attempt_state = AttemptState::PendingRetryAttempt;
                self.public = PublicState::Delayed;
                self.retry_count = self.retry_count.saturating_add(1);
                self.extra.get_or_insert_with(Box::default).delay_until = Some(at);
                self.set_reason(reason);
                self.lease = None;
                self.last_transition_at = now;
                self.last_mutation_at = now;
                Some(at)
            }
            None => {
                self.end(
                    TerminalOutcome::Failed,
                    AttemptLifecycle::EndedFailure,
                    reason,
                    now,
                );
                None
            }
        }
    }

    /// Cancels from any non-terminal state. With a fence, the caller must
    /// hold the current lease; without one it acts as an operator.
    /// A holder's fence is checked like any fenced call's: a revoked or
    /// expired lease refuses it (an expired one is marked on the way).
    pub fn cancel(
        &mut self,
        fence: Option<&Fence>,
        reason: Option<Box<[u8]>>,
        now: u64,
    ) -> Result<(), (LeaseError, bool)> {
        if self.is_terminal() {
            return Err((self.not_active(), false));
        }
        if let (Some(f), LifecyclePhase::Active) = (fence, self.lifecycle) {
            self.check_fence(f, now)?;
        }
        self.end(
            TerminalOutcome::Cancelled,
            AttemptLifecycle::EndedCancelled,
            reason,
            now,
        );
        Ok(())
    }

    /// The holder parks its execution until `until` and gives up the lease;
    /// the attempt is interrupted and resumes at the next claim.
    pub fn delay(&mut self, fence: &Fence, until: u64, now: u64) -> Result<(), (LeaseError, bool)> {
        self.park(
            fence,
            (
                EligibilityState::NotEligibleUntilTime,
                BlockingReason::WaitingForDelay,
                PublicState::Delayed,
            ),
            now,
        )?;
        self.extra.get_or_insert_with(Box::default).delay_until = Some(until);
        Ok(())
    }

    /// The holder waits for child executions: the lease is released and the
    /// attempt suspended; it resumes when the children are done (flows, a
    /// later issue) or an operator releases it with FF.UNBLOCK.
    pub fn wait_for_children(&mut self, fence: &Fence, now: u64) -> Result<(), (LeaseError, bool)> {
        self.park(
            fence,
            (
                EligibilityState::BlockedByDependencies,
                BlockingReason::WaitingForChildren,
                PublicState::WaitingChildren,
            ),
            now,
        )
    }

    /// The holder gives up its lease and parks the execution as `parked`
    /// says; the attempt is suspended and resumes under the next claim.
    fn park(
        &mut self,
        fence: &Fence,
        parked: (EligibilityState, BlockingReason, PublicState),
        now: u64,
    ) -> Result<(), (LeaseError, bool)> {
        self.check_fence(fence, now)?;
        if let Some(a) = self.attempts.last_mut() {
            a.state = AttemptLifecycle::Suspended;
        }
        self.lifecycle = LifecyclePhase::Runnable;
        self.ownership = OwnershipState::Unowned;
        (self.eligibility, self.blocking, self.public) = parked;
        self.attempt_state = AttemptState::AttemptInterrupted;
        self.lease = None;
        self.last_transition_at = now;
        self.last_mutation_at = now;
        Ok(())
    }

    /// The holder reports progress.
    pub fn report_progress(
        &mut self,
        fence: &Fence,
        pct: u8,
        message: Box<[u8]>,
        now: u64,
    ) -> Result<(), (LeaseError, bool)> {
        self.check_fence(fence, now)?;
        self.extra.get_or_insert_with(Box::default).progress = Some(Progress {
            pct,
            message,
            at: now,
        });
        self.last_mutation_at = now;
        Ok(())
    }
}
