//! After a suspension: signals (and what they do to the condition), an
//! operator's wake, closing a waitpoint, and the timer's timeouts and
//! expiries; the execution moves on when its condition is met.

use crate::base::ids::Uuid;
use crate::base::state::{
    AttemptLifecycle, AttemptState, BlockingReason, EligibilityState, LifecyclePhase,
    OwnershipState, PublicState, TerminalOutcome,
};
use crate::execution::record::Execution;
use crate::execution::requests::{SignalIn, SIGNALS_MAX};
use crate::execution::suspend::Delivered;
use crate::suspension::condition::Effect;
use crate::suspension::record::{
    close, seen, CloseReason, Signal, TimeoutBehavior, WaitpointState, Waits,
};
use crate::suspension::WaitError;

impl Execution {
    /// Delivers a signal (its token already checked by the caller).
    pub fn deliver(
        &mut self,
        waitpoint: Uuid,
        s: &SignalIn,
        signal_id: Uuid,
        now: u64,
    ) -> Result<Delivered, WaitError> {
        if self.is_terminal() {
            return Err(WaitError::TargetNotSignalable);
        }
        let w = self.waits().ok_or(WaitError::WaitpointNotFound)?;
        let wp = w.waitpoint(waitpoint).ok_or(WaitError::WaitpointNotFound)?;
        if let Some(key) = &s.idempotency {
            if let Some(first) = w.signals.iter().find(|g| {
                g.waitpoint == waitpoint
                    && g.idempotency.as_deref() == Some(&**key)
                    && g.dedup_until > now
            }) {
                return Ok(Delivered::Duplicate(first.id));
            }
        }
        if wp.state == WaitpointState::Closed {
            return Err(WaitError::WaitpointClosed);
        }
        if w.signals.len() >= SIGNALS_MAX {
            return Err(WaitError::SignalLimit(SIGNALS_MAX));
        }
        let mut g = Signal {
            id: signal_id,
            waitpoint,
            name: s.name.clone(),
            category: s.category.clone(),
            source_type: s.source_type.clone(),
            source_identity: s.source_identity.clone(),
            correlation: s.correlation.clone(),
            payload: s.payload.clone(),
            idempotency: s.idempotency.clone(),
            dedup_until: now.saturating_add(s.dedup_ttl_ms),
            accepted_at: now,
            effect: Effect::Buffered,
        };
        let mut resume = None;
        if wp.state == WaitpointState::Active {
            let before = w.seen();
            let mut with = before.clone();
            let me = seen(&g, wp);
            with.push(me);
            let susp = w.open().ok_or(WaitError::WaitpointClosed)?;
            g.effect = susp.condition.effect(&me, &before, &with);
            if g.effect == Effect::Satisfied {
                resume = Some(s.resume_delay_ms.unwrap_or(susp.resume_delay_ms));
            }
        }
        let effect = g.effect;
        let w = self.waits_mut();
        w.signals.push(g);
        if let Some(delay) = resume {
            w.close_suspension(CloseReason::Resumed, Some(signal_id), now);
            if self.lifecycle == LifecyclePhase::Suspended {
                self.resume(delay, now);
            }
        }
        self.last_mutation_at = now;
        Ok(Delivered::Accepted {
            signal: signal_id,
            effect,
            resumed: resume.is_some(),
        })
    }

    /// Back to runnable: eligible now, or after `delay` ms. The attempt
    /// stays interrupted, so the next claim resumes it.
    fn resume(&mut self, delay: u64, now: u64) {
        self.lifecycle = LifecyclePhase::Runnable;
        self.ownership = OwnershipState::Unowned;
        self.attempt_state = AttemptState::AttemptInterrupted;
        if delay > 0 {
            self.eligibility = EligibilityState::NotEligibleUntilTime;
            self.blocking = BlockingReason::WaitingForResumeDelay;
            self.public = PublicState::Delayed;
            self.extra.get_or_insert_with(Box::default).delay_until =
                Some(now.saturating_add(delay));
        } else {
            self.eligibility = EligibilityState::EligibleNow;
            self.blocking = BlockingReason::WaitingForWorker;
            self.public = PublicState::Waiting;
        }
        self.last_transition_at = now;
        self.last_mutation_at = now;
    }

    /// An operator resumes a suspended execution whatever its condition.
    pub fn wake(&mut self, delay: u64, now: u64) -> Result<PublicState, WaitError> {
        if self.lifecycle != LifecyclePhase::Suspended
            || self.waits().and_then(Waits::open).is_none()
        {
            return Err(WaitError::NotSuspended);
        }
        self.waits_mut()
            .close_suspension(CloseReason::Resumed, None, now);
        self.resume(delay, now);
        Ok(self.public)
    }

    /// Closes one waitpoint; false if it was closed already. A suspension
    /// whose waitpoint closes stays open (other waitpoints, an operator
    /// or its timeout may still end it).
    pub fn close_waitpoint(&mut self, waitpoint: Uuid, now: u64) -> Result<bool, WaitError> {
        let w = self.waits().ok_or(WaitError::WaitpointNotFound)?;
        let wp = w.waitpoint(waitpoint).ok_or(WaitError::WaitpointNotFound)?;
        if wp.state == WaitpointState::Closed {
            return Ok(false);
        }
        if let Some(wp) = self
            .waits_mut()
            .waitpoints
            .iter_mut()
            .find(|x| x.id == waitpoint)
        {
            close(wp, CloseReason::Proactive, now);
        }
        self.last_mutation_at = now;
        Ok(true)
    }

    /// When the suspension's timeout or a pending waitpoint's expiry
    /// falls due.
    pub fn waits_due(&self) -> Option<u64> {
        if self.is_terminal() {
            return None;
        }
        self.waits().and_then(Waits::next_due)
    }

    /// A suspension timeout or pending expiry fell due: pending
    /// waitpoints past their time close; a timed-out suspension does what
    /// its behaviour says. True if anything changed.
    pub fn on_waits_due(&mut self, now: u64) -> bool {
        if self.is_terminal() || self.waits().is_none() {
            return false;
        }
        let mut changed = self.waits_mut().expire_pending(now);
        let due = self
            .waits()
            .and_then(Waits::open)
            .and_then(|s| s.timeout_at.filter(|&t| t <= now).map(|_| s.behavior));
        let Some(behavior) = due else {
            if changed {
                self.last_mutation_at = now;
            }
            return changed;
        };
        changed = true;
        match behavior {
            TimeoutBehavior::Escalate => {
                if let Some(s) = self.waits_mut().suspension.as_mut() {
                    s.timeout_at = None;
                    s.reason = b"waiting_for_operator_review"[..].into();
                }
                self.blocking = BlockingReason::PausedByOperator;
                self.last_mutation_at = now;
            }
            TimeoutBehavior::AutoResume => {
                self.waits_mut()
                    .close_suspension(CloseReason::TimedOutAutoResume, None, now);
                self.resume(0, now);
            }
            b => {
                self.waits_mut()
                    .close_suspension(b.close_reason(), None, now);
                let (outcome, attempt) = match b {
                    TimeoutBehavior::Cancel => {
                        (TerminalOutcome::Cancelled, AttemptLifecycle::EndedCancelled)
                    }
                    TimeoutBehavior::Expire => {
                        (TerminalOutcome::Expired, AttemptLifecycle::EndedFailure)
                    }
                    _ => (TerminalOutcome::Failed, AttemptLifecycle::EndedFailure),
                };
                let reason = format!("suspension_timeout:{}", b.as_str());
                self.end(outcome, attempt, Some(reason.into_bytes().into()), now);
            }
        }
        changed
    }

    /// The execution ended: whatever it was waiting on closes.
    pub(crate) fn close_waits(&mut self, outcome: TerminalOutcome, now: u64) {
        if self.waits().is_none() {
            return;
        }
        let reason = match outcome {
            TerminalOutcome::Cancelled => CloseReason::Cancelled,
            TerminalOutcome::Expired => CloseReason::Expired,
            _ => CloseReason::Ended,
        };
        self.waits_mut().end(reason, now);
    }
}
