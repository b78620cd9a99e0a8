//! Suspension as the execution sees it: the holder parks its attempt on
//! waitpoints (the lease is released, the epoch kept), or makes a pending
//! waitpoint first; what moves it on is in `signal`; the next claim
//! resumes the same attempt. Waitpoints, conditions and signals themselves
//! are `suspension`'s; these files change the state vector around them.

use crate::base::ids::Uuid;
use crate::base::state::{
    AttemptLifecycle, AttemptState, BlockingReason, EligibilityState, LifecyclePhase,
    OwnershipState, PublicState,
};
use crate::execution::errors::LeaseError;
use crate::execution::record::Execution;
use crate::execution::requests::{
    CreateWaitpoint, Suspend, Timeout, WaitpointSpec, WAITPOINTS_MAX,
};
use crate::suspension::condition::{Condition, Effect, Matcher, Node};
use crate::suspension::record::{
    seen, waitpoint_id, CloseReason, Suspension, Waitpoint, WaitpointState, Waits,
};
use crate::suspension::WaitError;

/// A suspension request refused: by the fence, or by the suspension's
/// own checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuspendError {
    Lease(LeaseError),
    Wait(WaitError),
}

impl From<WaitError> for SuspendError {
    fn from(e: WaitError) -> SuspendError {
        SuspendError::Wait(e)
    }
}

impl From<LeaseError> for SuspendError {
    fn from(e: LeaseError) -> SuspendError {
        SuspendError::Lease(e)
    }
}

/// How far in the past a TIMEOUT_AT may be (clock skew), as in the
/// reference.
pub const TIMEOUT_PAST_TOLERANCE_MS: u64 = 600_000;

/// A waitpoint as its token needs it: id, key, creation time.
pub type WaitpointMade = (Uuid, Box<[u8]>, u64);

/// What a suspend did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspended {
    /// The buffered signals of a pending waitpoint satisfied the
    /// condition at once: the holder keeps its lease and goes on.
    pub already_satisfied: bool,
    pub suspension: Uuid,
    /// Each waitpoint's id, key and creation time (what its token signs).
    pub waitpoints: Vec<WaitpointMade>,
    /// A retry of an earlier suspend: nothing changed.
    pub replayed: bool,
}

/// What a signal did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    Accepted {
        signal: Uuid,
        effect: Effect,
        resumed: bool,
    },
    Duplicate(Uuid),
}

/// A suspension reason code's blocking reason (the reference's mapping).
pub fn blocking_for(reason: &[u8]) -> BlockingReason {
    match reason {
        b"waiting_for_approval" => BlockingReason::WaitingForApproval,
        b"waiting_for_callback" => BlockingReason::WaitingForCallback,
        b"waiting_for_tool_result" => BlockingReason::WaitingForToolResult,
        b"waiting_for_operator_review" | b"manual_pause" => BlockingReason::PausedByOperator,
        b"paused_by_policy" => BlockingReason::PausedByPolicy,
        b"paused_by_budget" => BlockingReason::WaitingForBudget,
        _ => BlockingReason::WaitingForSignal,
    }
}

fn resolve_keys(n: &mut Node, primary: &[u8]) {
    match n {
        Node::One { key, .. } if key.is_empty() => *key = primary.into(),
        Node::AllOf(m) => m.iter_mut().for_each(|c| resolve_keys(c, primary)),
        _ => {}
    }
}

impl Execution {
    fn attempt_index(&self) -> u32 {
        self.current_attempt().map_or(0, |a| a.index)
    }

    fn outcome_of(s: &Suspension, w: &Waits) -> Suspended {
        Suspended {
            already_satisfied: matches!(s.closed, Some((_, CloseReason::AlreadySatisfied))),
            suspension: s.id,
            waitpoints: s
                .waitpoints
                .iter()
                .filter_map(|id| w.waitpoint(*id))
                .map(|w| (w.id, w.key.clone(), w.created_at))
                .collect(),
            replayed: true,
        }
    }

    /// The holder parks its attempt on waitpoints. A retry with the same
    /// idempotency key and fence returns the first outcome, changing
    /// nothing.
    pub fn suspend(
        &mut self,
        req: &Suspend,
        suspension_id: Uuid,
        now: u64,
    ) -> Result<Suspended, SuspendError> {
        if let (Some(key), Some(w)) = (&req.idempotency, self.waits()) {
            if let Some(s) = &w.suspension {
                let f = &req.fence;
                if s.idempotency.as_deref() == Some(&**key)
                    && (s.lease_id, s.lease_epoch, s.attempt_id)
                        == (f.lease_id, f.lease_epoch, f.attempt_id)
                {
                    return Ok(Execution::outcome_of(s, w));
                }
            }
        }
        self.check_fence(&req.fence, now).map_err(|(e, _)| e)?;
        let timeout_at = match req.timeout {
            None => None,
            Some(Timeout::In(ms)) => Some(now.saturating_add(ms)),
            Some(Timeout::At(at)) => {
                if at.saturating_add(TIMEOUT_PAST_TOLERANCE_MS) < now {
                    return Err(WaitError::TimeoutInPast.into());
                }
                Some(at)
            }
        };
        let mut condition = req
            .condition
            .clone()
            .unwrap_or(Condition::Signals(Node::One {
                key: Box::default(),
                matcher: Matcher::Any,
            }));
        if condition == Condition::TimeoutOnly && timeout_at.is_none() {
            return Err(WaitError::TimeoutOnlyWithoutDeadline.into());
        }
        let attempt = self.attempt_index();
        let empty = Waits::default();
        let waits = self.waits().unwrap_or(&empty);
        // The waitpoints: fresh ones get ids derived from the suspension's.
        let specs: Vec<WaitpointSpec> = if req.waitpoints.is_empty() {
            vec![WaitpointSpec::Fresh(Box::default())]
        } else {
            req.waitpoints.clone()
        };
        let mut list: Vec<Waitpoint> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let w = match spec {
                WaitpointSpec::Fresh(key) => {
                    let id = waitpoint_id(suspension_id, i);
                    let key: Box<[u8]> = if key.is_empty() {
                        let mut k = b"wpk:".to_vec();
                        k.extend_from_slice(&id.text());
                        k.into()
                    } else {
                        key.clone()
                    };
                    Waitpoint {
                        id,
                        key,
                        state: WaitpointState::Active,
                        attempt_index: attempt,
                        created_at: now,
                        expires_at: None,
                        activated_at: Some(now),
                        closed: None,
                    }
                }
                WaitpointSpec::Pending(id) => {
                    let p = waits.waitpoint(*id).ok_or(WaitError::WaitpointNotFound)?;
                    if p.state != WaitpointState::Pending {
                        return Err(WaitError::WaitpointNotPending.into());
                    }
                    if p.attempt_index != attempt {
                        return Err(WaitError::WrongAttempt.into());
                    }
                    if p.expires_at.is_some_and(|e| e <= now) {
                        return Err(WaitError::PendingExpired.into());
                    }
                    Waitpoint {
                        state: WaitpointState::Active,
                        activated_at: Some(now),
                        expires_at: None,
                        ..p.clone()
                    }
                }
            };
            if list.iter().any(|o| o.key == w.key || o.id == w.id) {
                return Err(WaitError::KeyMismatch("two waitpoints share a key".into()).into());
            }
            list.push(w);
        }
        let adopted: Vec<Uuid> = specs
            .iter()
            .filter_map(|s| match s {
                WaitpointSpec::Pending(id) => Some(*id),
                WaitpointSpec::Fresh(_) => None,
            })
            .collect();
        // Other open pending waitpoints stay; with these, no more than the cap.
        let staying = waits
            .open_waitpoints()
            .filter(|w| w.state == WaitpointState::Pending && !adopted.contains(&w.id))
            .count();
        if staying + list.len() > WAITPOINTS_MAX {
            return Err(WaitError::TooManyWaitpoints(WAITPOINTS_MAX).into());
        }
        if let Some(clash) = waits.open_waitpoints().find(|o| {
            !adopted.contains(&o.id) && list.iter().any(|w| w.key == o.key || w.id == o.id)
        }) {
            let _ = clash;
            return Err(WaitError::WaitpointAlreadyExists.into());
        }
        let primary = list.first().map(|w| w.key.clone()).unwrap_or_default();
        if let Condition::Signals(root) = &mut condition {
            resolve_keys(root, &primary);
        }
        if let Condition::Signals(_) = &condition {
            let named = condition.keys();
            if let Some(k) = named.iter().find(|k| !list.iter().any(|w| w.key == **k)) {
                return Err(WaitError::KeyMismatch(format!(
                    "waitpoint_key_mismatch: the condition names {} which is not a waitpoint of this suspension",
                    String::from_utf8_lossy(k)
                ))
                .into());
            }
            if let Some(w) = list.iter().find(|w| !named.contains(&w.key)) {
                return Err(WaitError::KeyMismatch(format!(
                    "waitpoint_key_mismatch: waitpoint {} is not in the condition",
                    String::from_utf8_lossy(&w.key)
                ))
                .into());
            }
        }
        // Checks done: nothing below refuses.
        let fence = req.fence;
        let ids: Vec<Uuid> = list.iter().map(|w| w.id).collect();
        let w = self.waits_mut();
        // What the last suspension left goes: its closed waitpoints and
        // their signals.
        w.waitpoints
            .retain(|x| x.closed.is_none() && !ids.contains(&x.id));
        let open: Vec<Uuid> = w
            .waitpoints
            .iter()
            .map(|x| x.id)
            .chain(ids.iter().copied())
            .collect();
        w.signals.retain(|g| open.contains(&g.waitpoint));
        w.waitpoints.extend(list);
        w.suspension = Some(Suspension {
            id: suspension_id,
            attempt_index: attempt,
            lease_id: fence.lease_id,
            lease_epoch: fence.lease_epoch,
            attempt_id: fence.attempt_id,
            idempotency: req.idempotency.clone(),
            reason: req.reason.clone(),
            created_at: now,
            timeout_at,
            behavior: req.behavior,
            resume_delay_ms: req.resume_delay_ms,
            condition,
            waitpoints: ids,
            closed: None,
            closer: None,
        });
        // Signals buffered on adopted waitpoints count now, in arrival order.
        let satisfied = replay_buffered(w, now);
        let outcome = {
            let s = w.suspension.as_ref();
            s.map(|s| Execution::outcome_of(s, w))
        };
        let mut outcome = outcome.unwrap_or(Suspended {
            already_satisfied: false,
            suspension: suspension_id,
            waitpoints: Vec::new(),
            replayed: false,
        });
        outcome.replayed = false;
        if satisfied {
            self.last_mutation_at = now;
            return Ok(outcome);
        }
        if let Some(a) = self.attempts.last_mut() {
            a.state = AttemptLifecycle::Suspended;
        }
        self.lifecycle = LifecyclePhase::Suspended;
        self.ownership = OwnershipState::Unowned;
        self.eligibility = EligibilityState::NotApplicable;
        self.blocking = blocking_for(&req.reason);
        self.attempt_state = AttemptState::AttemptInterrupted;
        self.public = PublicState::Suspended;
        self.lease = None;
        self.last_transition_at = now;
        self.last_mutation_at = now;
        Ok(outcome)
    }

    /// The holder makes a pending waitpoint ahead of suspending, so its
    /// token can be handed out first.
    pub fn create_waitpoint(
        &mut self,
        req: &CreateWaitpoint,
        waitpoint: Uuid,
        now: u64,
    ) -> Result<WaitpointMade, SuspendError> {
        self.check_fence(&req.fence, now).map_err(|(e, _)| e)?;
        let key: Box<[u8]> = match &req.key {
            Some(k) => k.clone(),
            None => {
                let mut k = b"wpk:".to_vec();
                k.extend_from_slice(&waitpoint.text());
                k.into()
            }
        };
        let expires_at = match req.expires {
            Timeout::In(ms) => now.saturating_add(ms),
            Timeout::At(at) => at,
        };
        if expires_at <= now {
            return Err(WaitError::PendingExpired.into());
        }
        let attempt = self.attempt_index();
        if let Some(w) = self.waits() {
            if w.waitpoint(waitpoint).is_some() || w.open_waitpoints().any(|o| o.key == key) {
                return Err(WaitError::WaitpointAlreadyExists.into());
            }
            if w.open_waitpoints().count() >= WAITPOINTS_MAX {
                return Err(WaitError::TooManyWaitpoints(WAITPOINTS_MAX).into());
            }
        }
        self.waits_mut().waitpoints.push(Waitpoint {
            id: waitpoint,
            key: key.clone(),
            state: WaitpointState::Pending,
            attempt_index: attempt,
            created_at: now,
            expires_at: Some(expires_at),
            activated_at: None,
            closed: None,
        });
        self.last_mutation_at = now;
        Ok((waitpoint, key, now))
    }
}

/// Evaluates the signals buffered on the new suspension's waitpoints in
/// arrival order; closes the suspension if they satisfy it.
fn replay_buffered(w: &mut Waits, now: u64) -> bool {
    let Some(s) = w.suspension.as_ref() else {
        return false;
    };
    let ids = s.waitpoints.clone();
    let mut effects: Vec<(usize, Effect)> = Vec::new();
    let mut closer = None;
    {
        let mut so_far = Vec::new();
        for (i, g) in w.signals.iter().enumerate() {
            if !ids.contains(&g.waitpoint) || g.effect != Effect::Buffered {
                continue;
            }
            let Some(wp) = w.waitpoint(g.waitpoint) else {
                continue;
            };
            let me = seen(g, wp);
            let mut with = so_far.clone();
            with.push(me);
            let e = if closer.is_some() {
                Effect::NotInCondition
            } else {
                s.condition.effect(&me, &so_far, &with)
            };
            if e.counted() {
                so_far = with;
            }
            if e == Effect::Satisfied {
                closer = Some(g.id);
            }
            effects.push((i, e));
        }
    }
    for (i, e) in effects {
        if let Some(g) = w.signals.get_mut(i) {
            g.effect = e;
        }
    }
    match closer {
        Some(c) => {
            w.close_suspension(CloseReason::AlreadySatisfied, Some(c), now);
            true
        }
        None => false,
    }
}
