//! One execution: its state vector, policy, payload, attempts and lease, and
//! the pure transitions of the core lifecycle (create, claim, renew,
//! complete). Nothing here touches the server; `now` and minted ids come in
//! as arguments so a replica replaying the same arguments reaches the same
//! state.

use std::sync::Arc;

use crate::core::blob::Blob;
use crate::core::caps::CapSet;
use crate::core::codec::{DecodeError, Reader, Writer};
use crate::core::ids::{ExecId, Uuid};
use crate::core::state::*;

pub const PRIORITY_MAX: i64 = 9000;

/// Retry policy stored at submit; applied by `fail` (a later issue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff: Backoff,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backoff {
    Fixed {
        delay_ms: u64,
    },
    /// `multiplier_milli` is the multiplier in thousandths, so the policy is
    /// integer-only and replays identically everywhere.
    Exponential {
        initial_ms: u64,
        max_ms: u64,
        multiplier_milli: u32,
        jitter: bool,
    },
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            backoff: Backoff::Exponential {
                initial_ms: 1000,
                max_ms: 60_000,
                multiplier_milli: 2000,
                jitter: false,
            },
        }
    }
}

/// The current lease of an active execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub lease_id: Uuid,
    pub acquired_at: u64,
    pub expires_at: u64,
    pub last_renewed_at: u64,
    pub renewal_deadline: u64,
    pub expired_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub index: u32,
    pub attempt_id: Uuid,
    pub attempt_type: AttemptType,
    pub state: AttemptLifecycle,
    pub started_at: u64,
    pub ended_at: Option<u64>,
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub worker: WorkerName,
}

/// A worker's id and instance id, together. Kept inline when they are
/// short (most are), so a claim allocates nothing for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerName {
    Inline {
        /// Where the instance id starts, and the total length.
        split: u8,
        len: u8,
        buf: [u8; WorkerName::INLINE],
    },
    Heap {
        split: u32,
        bytes: Box<[u8]>,
    },
}

impl WorkerName {
    const INLINE: usize = 29;

    pub fn new(id: &[u8], instance: &[u8]) -> WorkerName {
        let total = id.len().saturating_add(instance.len());
        if let (true, Ok(split), Ok(len)) = (
            total <= Self::INLINE,
            u8::try_from(id.len()),
            u8::try_from(total),
        ) {
            let mut buf = [0; Self::INLINE];
            for (d, s) in buf.iter_mut().zip(id.iter().chain(instance)) {
                *d = *s;
            }
            return WorkerName::Inline { split, len, buf };
        }
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(instance);
        WorkerName::Heap {
            // Worker names are limited far below 4 GiB when parsed.
            split: u32::try_from(id.len()).unwrap_or(u32::MAX),
            bytes: bytes.into_boxed_slice(),
        }
    }

    fn parts(&self) -> (&[u8], usize) {
        match self {
            WorkerName::Inline { split, len, buf } => (
                buf.get(..usize::from(*len)).unwrap_or_default(),
                usize::from(*split),
            ),
            WorkerName::Heap { split, bytes } => (bytes, *split as usize),
        }
    }

    pub fn id(&self) -> &[u8] {
        let (b, split) = self.parts();
        b.get(..split).unwrap_or_default()
    }

    pub fn instance(&self) -> &[u8] {
        let (b, split) = self.parts();
        b.get(split..).unwrap_or_default()
    }

    /// Heap bytes beyond the struct, for MEMORY USAGE.
    pub fn heap_len(&self) -> usize {
        match self {
            WorkerName::Inline { .. } => 0,
            WorkerName::Heap { bytes, .. } => bytes.len(),
        }
    }
}

/// Tag key/value pairs, in submit order.
pub type Tag = (Box<[u8]>, Box<[u8]>);
pub type Tags = Vec<Tag>;

/// Everything a submit fixes about an execution.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Spec {
    pub lane: Arc<str>,
    pub namespace: Box<[u8]>,
    pub kind: Box<[u8]>,
    pub priority: u16,
    pub payload: Blob,
    pub caps: CapSet,
    pub retry: Option<RetryPolicy>,
    pub tags: Tags,
    pub delay_until: Option<u64>,
    pub deadline_at: Option<u64>,
    pub idempotency: Option<Box<[u8]>>,
    /// How long one attempt may run before the execution expires.
    pub attempt_timeout_ms: Option<u64>,
}

/// A progress report: percent, message, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub pct: u8,
    pub message: Box<[u8]>,
    pub at: u64,
}

/// The rarely-set parts of a submit, kept out of line so a plain job's
/// record stays small.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Extra {
    pub namespace: Box<[u8]>,
    pub kind: Box<[u8]>,
    pub retry: Option<RetryPolicy>,
    pub tags: Tags,
    pub delay_until: Option<u64>,
    pub deadline_at: Option<u64>,
    pub idempotency: Option<Box<[u8]>>,
    /// The holder's last progress report.
    pub progress: Option<Progress>,
    pub attempt_timeout_ms: Option<u64>,
    /// Why the execution failed, was cancelled, expired or was blocked.
    pub reason: Option<Box<[u8]>>,
}

pub const DEFAULT_NAMESPACE: &[u8] = b"default";

impl Extra {
    /// True when nothing here differs from a plain submit.
    pub fn is_default(&self) -> bool {
        self.namespace.is_empty()
            && self.kind.is_empty()
            && self.retry.is_none()
            && self.tags.is_empty()
            && self.delay_until.is_none()
            && self.deadline_at.is_none()
            && self.idempotency.is_none()
            && self.progress.is_none()
            && self.attempt_timeout_ms.is_none()
            && self.reason.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub id: ExecId,
    pub lane: Arc<str>,
    pub priority: u16,
    pub caps: CapSet,
    pub payload: Blob,
    pub extra: Option<Box<Extra>>,
    pub result: Option<Blob>,
    pub lifecycle: LifecyclePhase,
    pub ownership: OwnershipState,
    pub eligibility: EligibilityState,
    pub blocking: BlockingReason,
    pub terminal: TerminalOutcome,
    pub attempt_state: AttemptState,
    pub public: PublicState,
    pub retry_count: u32,
    pub replay_count: u32,
    pub reclaim_count: u32,
    pub lease_epoch: u64,
    pub lease: Option<Lease>,
    pub attempts: Vec<Attempt>,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub last_transition_at: u64,
    pub last_mutation_at: u64,
    /// Position among executions of equal priority and age in the
    /// partition's queue (assigned by the index).
    pub queue_seq: u64,
}

/// The lease fence every holder-only call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub attempt_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseError {
    /// Carries what a caller needs to recognise a replay of a terminal
    /// operation whose reply was lost.
    NotActive {
        terminal: TerminalOutcome,
        lease_epoch: u64,
        lifecycle: LifecyclePhase,
        attempt_id: Option<Uuid>,
    },
    Revoked,
    Expired,
    Stale,
}

impl LeaseError {
    pub fn message(&self) -> String {
        match self {
            LeaseError::NotActive { terminal, lease_epoch, lifecycle, attempt_id } => format!(
                "EXECUTION_NOT_ACTIVE terminal_outcome={} lease_epoch={} lifecycle_phase={} attempt_id={}",
                terminal.as_str(),
                lease_epoch,
                lifecycle.as_str(),
                attempt_id.map(|a| a.to_string()).unwrap_or_default()
            ),
            LeaseError::Revoked => "LEASE_REVOKED the lease was revoked".into(),
            LeaseError::Expired => "LEASE_EXPIRED the lease expired before this call".into(),
            LeaseError::Stale => "STALE_LEASE the lease fence does not match the current lease".into(),
        }
    }
}

/// Why an operator transition (revoke, priority change) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeError {
    NoActiveLease,
    Stale,
    NotEligible,
}

impl RevokeError {
    pub fn message(&self) -> &'static str {
        match self {
            RevokeError::NoActiveLease => "NO_ACTIVE_LEASE the execution holds no live lease",
            RevokeError::Stale => "STALE_LEASE the lease named is not the current lease",
            RevokeError::NotEligible => {
                "EXECUTION_NOT_ELIGIBLE only a waiting execution can change priority"
            }
        }
    }
}

/// Why an operator transition (tags, replay, block) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    TooManyTags,
    NotTerminal,
    MaxReplays,
    NotEligible,
    NotBlocked,
}

impl OpError {
    pub fn message(&self) -> &'static str {
        match self {
            OpError::TooManyTags => "INVALID_INPUT an execution has at most 64 tags",
            OpError::NotTerminal => {
                "EXECUTION_NOT_TERMINAL only a terminal execution can be replayed"
            }
            OpError::MaxReplays => {
                "MAX_REPLAYS_EXHAUSTED the execution was replayed as often as allowed"
            }
            OpError::NotEligible => {
                "EXECUTION_NOT_ELIGIBLE only a waiting or delayed execution can be blocked"
            }
            OpError::NotBlocked => {
                "EXECUTION_NOT_BLOCKED the execution is not blocked by an operator"
            }
        }
    }
}

/// What a lease running out did to an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    Unchanged,
    Reclaimable,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimError {
    NotLeaseable,
    LeaseConflict,
}

/// What a successful claim hands the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub attempt_index: u32,
    pub attempt_id: Uuid,
    pub attempt_type: AttemptType,
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub lease_expires_at: u64,
}

impl Execution {
    pub fn new(id: ExecId, spec: Spec, queue_seq: u64, now: u64) -> Execution {
        let delayed = spec.delay_until.is_some_and(|d| d > now);
        let extra = Extra {
            namespace: if spec.namespace.is_empty() || spec.namespace.as_ref() == DEFAULT_NAMESPACE
            {
                Box::default()
            } else {
                spec.namespace
            },
            kind: spec.kind,
            retry: spec.retry,
            tags: spec.tags,
            delay_until: if delayed { spec.delay_until } else { None },
            deadline_at: spec.deadline_at,
            idempotency: spec.idempotency,
            progress: None,
            attempt_timeout_ms: spec.attempt_timeout_ms,
            reason: None,
        };
        Execution {
            id,
            lane: spec.lane,
            priority: spec.priority,
            caps: spec.caps,
            payload: spec.payload,
            extra: if extra.is_default() {
                None
            } else {
                Some(Box::new(extra))
            },
            result: None,
            lifecycle: LifecyclePhase::Runnable,
            ownership: OwnershipState::Unowned,
            eligibility: if delayed {
                EligibilityState::NotEligibleUntilTime
            } else {
                EligibilityState::EligibleNow
            },
            blocking: if delayed {
                BlockingReason::WaitingForDelay
            } else {
                BlockingReason::WaitingForWorker
            },
            terminal: TerminalOutcome::None,
            attempt_state: AttemptState::PendingFirstAttempt,
            public: if delayed {
                PublicState::Delayed
            } else {
                PublicState::Waiting
            },
            retry_count: 0,
            replay_count: 0,
            reclaim_count: 0,
            lease_epoch: 0,
            lease: None,
            attempts: Vec::new(),
            created_at: now,
            started_at: None,
            completed_at: None,
            last_transition_at: now,
            last_mutation_at: now,
            queue_seq,
        }
    }

    pub fn is_eligible(&self) -> bool {
        self.lifecycle == LifecyclePhase::Runnable
            && self.eligibility == EligibilityState::EligibleNow
            && self.ownership == OwnershipState::Unowned
    }

    /// Active with a lease that expired or was revoked: a claim may start a
    /// new (reclaim) attempt.
    pub fn is_reclaimable(&self) -> bool {
        self.lifecycle == LifecyclePhase::Active
            && matches!(
                self.ownership,
                OwnershipState::LeaseExpiredReclaimable | OwnershipState::LeaseRevoked
            )
    }

    /// Waiting in its lane's queue: eligible, or reclaimable.
    pub fn is_claimable(&self) -> bool {
        self.is_eligible() || self.is_reclaimable()
    }

    pub fn is_terminal(&self) -> bool {
        self.lifecycle == LifecyclePhase::Terminal
    }

    pub fn current_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    fn not_active(&self) -> LeaseError {
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
        })
    }

    /// Checks the fence in the reference's order (the engine settles a
    /// lease that ran out before this runs, see `engine::fenced`); the flag
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
        self.ownership = OwnershipState::LeaseExpiredReclaimable;
        self.blocking = BlockingReason::WaitingForWorker;
        self.attempt_state = AttemptState::AttemptInterrupted;
        self.public = PublicState::Active;
        if let Some(l) = self.lease.as_mut() {
            l.expired_at = Some(now);
        }
        self.last_mutation_at = now;
        true
    }

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

    /// Ends the execution in `outcome`, closing any lease and attempt.
    fn end(
        &mut self,
        outcome: TerminalOutcome,
        attempt_end: AttemptLifecycle,
        reason: Option<Box<[u8]>>,
        now: u64,
    ) {
        if self.lifecycle == LifecyclePhase::Active {
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
        self.completed_at = Some(now);
        self.lease = None;
        self.last_transition_at = now;
        self.last_mutation_at = now;
    }

    /// The delay before the next retry, if the retry policy allows one.
    /// `jitter` is a random number the caller draws (and replicates).
    pub fn retry_delay(&self, jitter: u64) -> Option<u64> {
        let policy = self.retry()?;
        if self.retry_count >= policy.max_retries {
            return None;
        }
        Some(crate::core::retry::backoff_ms(
            &policy.backoff,
            self.retry_count,
            jitter,
        ))
    }

    /// Fails the current attempt: a retry at `retry_at`, or terminal failure.
    pub fn fail(
        &mut self,
        fence: &Fence,
        reason: Option<Box<[u8]>>,
        retry_at: Option<u64>,
        now: u64,
    ) -> Result<Option<u64>, (LeaseError, bool)> {
        self.check_fence(fence, now)?;
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
                Ok(Some(at))
            }
            None => {
                self.end(
                    TerminalOutcome::Failed,
                    AttemptLifecycle::EndedFailure,
                    reason,
                    now,
                );
                Ok(None)
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
            self.end(
                TerminalOutcome::Failed,
                AttemptLifecycle::InterruptedReclaimed,
                Some(Box::from(&b"max_reclaims_exceeded"[..])),
                now,
            );
            return LeaseOutcome::Failed;
        }
        self.mark_expired(now);
        LeaseOutcome::Reclaimable
    }

    /// The holder parks its execution until `until` and gives up the lease;
    /// the attempt is interrupted and resumes at the next claim.
    pub fn delay(&mut self, fence: &Fence, until: u64, now: u64) -> Result<(), (LeaseError, bool)> {
        self.suspend(
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
        self.suspend(
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
    fn suspend(
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
            self.end(
                TerminalOutcome::Failed,
                AttemptLifecycle::InterruptedReclaimed,
                Some(Box::from(&b"max_reclaims_exceeded"[..])),
                now,
            );
            return Ok(());
        }
        self.ownership = OwnershipState::LeaseRevoked;
        self.blocking = BlockingReason::WaitingForWorker;
        self.attempt_state = AttemptState::AttemptInterrupted;
        if let Some(l) = self.lease.as_mut() {
            l.revoked_at = Some(now);
        }
        self.last_mutation_at = now;
        Ok(())
    }

    /// Changes priority while the execution waits to be claimed.
    pub fn set_priority(&mut self, priority: u16, now: u64) -> Result<(), RevokeError> {
        if self.lifecycle != LifecyclePhase::Runnable
            || self.eligibility != EligibilityState::EligibleNow
        {
            return Err(RevokeError::NotEligible);
        }
        self.priority = priority;
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
        if merged.len() > crate::core::requests::TAGS_MAX {
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

    pub fn namespace(&self) -> &[u8] {
        match &self.extra {
            Some(x) if !x.namespace.is_empty() => &x.namespace,
            _ => DEFAULT_NAMESPACE,
        }
    }
    pub fn kind(&self) -> &[u8] {
        self.extra.as_ref().map_or(&[][..], |x| &x.kind)
    }
    pub fn retry(&self) -> Option<&RetryPolicy> {
        self.extra.as_ref().and_then(|x| x.retry.as_ref())
    }
    pub fn tags(&self) -> &[Tag] {
        self.extra.as_ref().map_or(&[][..], |x| &x.tags)
    }
    pub fn delay_until(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|x| x.delay_until)
    }
    pub fn deadline_at(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|x| x.deadline_at)
    }
    /// Why the execution failed, was cancelled, expired or was blocked.
    pub fn reason(&self) -> Option<&[u8]> {
        self.extra.as_ref().and_then(|x| x.reason.as_deref())
    }
    fn set_reason(&mut self, reason: Option<Box<[u8]>>) {
        match (reason, self.extra.as_mut()) {
            (None, None) => {}
            (None, Some(x)) => x.reason = None,
            (r, _) => self.extra.get_or_insert_with(Box::default).reason = r,
        }
    }
    pub fn idempotency(&self) -> Option<&[u8]> {
        self.extra.as_ref().and_then(|x| x.idempotency.as_deref())
    }

    /// Human-readable detail for the blocking reason, derived on read.
    pub fn blocking_detail(&self) -> String {
        match self.blocking {
            BlockingReason::WaitingForDelay => {
                format!("delayed until {}", self.delay_until().unwrap_or_default())
            }
            BlockingReason::WaitingForWorker
                if self.ownership == OwnershipState::LeaseExpiredReclaimable =>
            {
                "lease expired, awaiting reclaim".into()
            }
            _ => String::new(),
        }
    }
}

/// Version 2 added the outcome reason, 3 progress, 4 the attempt timeout;
/// older versions still load.
const ENCODING: u8 = 4;

fn put_str(w: &mut Writer, s: &[u8]) {
    w.bytes(s);
}

impl Execution {
    pub fn encode(&self, w: &mut Writer) {
        w.u8(ENCODING);
        w.u16(self.id.partition);
        w.u128(self.id.uuid.0);
        put_str(w, self.lane.as_bytes());
        put_str(w, self.namespace());
        put_str(w, self.kind());
        w.u16(self.priority);
        w.bytes(&self.payload);
        put_str(w, self.caps.as_str().as_bytes());
        match self.retry() {
            None => w.u8(0),
            Some(r) => {
                w.u8(1);
                w.u32(r.max_retries);
                match r.backoff {
                    Backoff::Fixed { delay_ms } => {
                        w.u8(0);
                        w.u64(delay_ms);
                    }
                    Backoff::Exponential {
                        initial_ms,
                        max_ms,
                        multiplier_milli,
                        jitter,
                    } => {
                        w.u8(1);
                        w.u64(initial_ms);
                        w.u64(max_ms);
                        w.u32(multiplier_milli);
                        w.u8(u8::from(jitter));
                    }
                }
            }
        }
        w.u32(self.tags().len() as u32);
        for (k, v) in self.tags() {
            w.bytes(k);
            w.bytes(v);
        }
        w.opt_u64(self.delay_until());
        w.opt_u64(self.deadline_at());
        w.opt_bytes(self.idempotency());
        w.opt_bytes(self.result.as_deref());
        for b in [
            self.lifecycle as u8,
            self.ownership as u8,
            self.eligibility as u8,
            self.blocking as u8,
            self.terminal as u8,
            self.attempt_state as u8,
            self.public as u8,
        ] {
            w.u8(b);
        }
        w.u32(self.retry_count);
        w.u32(self.replay_count);
        w.u32(self.reclaim_count);
        w.u64(self.lease_epoch);
        match &self.lease {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                w.u128(l.lease_id.0);
                w.u64(l.acquired_at);
                w.u64(l.expires_at);
                w.u64(l.last_renewed_at);
                w.u64(l.renewal_deadline);
                w.opt_u64(l.expired_at);
                w.opt_u64(l.revoked_at);
            }
        }
        w.u32(self.attempts.len() as u32);
        for a in &self.attempts {
            w.u32(a.index);
            w.u128(a.attempt_id.0);
            w.u8(a.attempt_type as u8);
            w.u8(a.state as u8);
            w.u64(a.started_at);
            w.opt_u64(a.ended_at);
            w.u128(a.lease_id.0);
            w.u64(a.lease_epoch);
            w.bytes(a.worker.id());
            w.bytes(a.worker.instance());
        }
        w.u64(self.created_at);
        w.opt_u64(self.started_at);
        w.opt_u64(self.completed_at);
        w.u64(self.last_transition_at);
        w.u64(self.last_mutation_at);
        w.u64(self.queue_seq);
        w.opt_bytes(self.reason());
        match self.extra.as_ref().and_then(|x| x.progress.as_ref()) {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                w.u8(p.pct);
                w.bytes(&p.message);
                w.u64(p.at);
            }
        }
        w.opt_u64(self.extra.as_ref().and_then(|x| x.attempt_timeout_ms));
    }

    pub fn decode(buf: &[u8]) -> Result<Execution, DecodeError> {
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if version == 0 || version > ENCODING {
            return Err(DecodeError("unknown execution encoding"));
        }
        let id = ExecId {
            partition: r.u16()?,
            uuid: Uuid(r.u128()?),
        };
        let lane = Arc::from(r.string()?);
        let namespace = r.bytes()?.into_boxed_slice();
        let kind = r.bytes()?.into_boxed_slice();
        let priority = r.u16()?;
        let payload = r.bytes()?;
        let caps =
            CapSet::from_canonical(r.string()?).map_err(|_| DecodeError("bad capability set"))?;
        let retry = match r.u8()? {
            0 => None,
            1 => {
                let max_retries = r.u32()?;
                let backoff = match r.u8()? {
                    0 => Backoff::Fixed { delay_ms: r.u64()? },
                    1 => Backoff::Exponential {
                        initial_ms: r.u64()?,
                        max_ms: r.u64()?,
                        multiplier_milli: r.u32()?,
                        jitter: r.bool()?,
                    },
                    _ => return Err(DecodeError("unknown backoff kind")),
                };
                Some(RetryPolicy {
                    max_retries,
                    backoff,
                })
            }
            _ => return Err(DecodeError("bad retry flag")),
        };
        let n = r.count(8)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            tags.push((r.bytes()?.into_boxed_slice(), r.bytes()?.into_boxed_slice()));
        }
        let delay_until = r.opt_u64()?;
        let spec = Spec {
            lane,
            namespace,
            kind,
            priority,
            payload: payload.into(),
            caps,
            retry,
            tags,
            delay_until,
            deadline_at: r.opt_u64()?,
            idempotency: r.opt_bytes()?.map(Vec::into_boxed_slice),
            attempt_timeout_ms: None,
        };
        let result = r.opt_bytes()?.map(Blob::from);
        let lifecycle = r.enum_u8(LifecyclePhase::from_u8)?;
        let ownership = r.enum_u8(OwnershipState::from_u8)?;
        let eligibility = r.enum_u8(EligibilityState::from_u8)?;
        let blocking = r.enum_u8(BlockingReason::from_u8)?;
        let terminal = r.enum_u8(TerminalOutcome::from_u8)?;
        let attempt_state = r.enum_u8(AttemptState::from_u8)?;
        let public = r.enum_u8(PublicState::from_u8)?;
        let retry_count = r.u32()?;
        let replay_count = r.u32()?;
        let reclaim_count = r.u32()?;
        let lease_epoch = r.u64()?;
        let lease = match r.u8()? {
            0 => None,
            1 => Some(Lease {
                lease_id: Uuid(r.u128()?),
                acquired_at: r.u64()?,
                expires_at: r.u64()?,
                last_renewed_at: r.u64()?,
                renewal_deadline: r.u64()?,
                expired_at: r.opt_u64()?,
                revoked_at: r.opt_u64()?,
            }),
            _ => return Err(DecodeError("bad lease flag")),
        };
        let n = r.count(60)?;
        let mut attempts = Vec::with_capacity(n);
        for _ in 0..n {
            attempts.push(Attempt {
                index: r.u32()?,
                attempt_id: Uuid(r.u128()?),
                attempt_type: r.enum_u8(AttemptType::from_u8)?,
                state: r.enum_u8(AttemptLifecycle::from_u8)?,
                started_at: r.u64()?,
                ended_at: r.opt_u64()?,
                lease_id: Uuid(r.u128()?),
                lease_epoch: r.u64()?,
                worker: {
                    let id = r.bytes()?;
                    WorkerName::new(&id, &r.bytes()?)
                },
            });
        }
        let mut e = Execution::new(id, spec, 0, 0);
        // Stored state wins over what `new` derives from the spec.
        if let Some(x) = e.extra.as_mut() {
            x.delay_until = delay_until;
        }
        if e.extra.as_deref().is_some_and(Extra::is_default) {
            e.extra = None;
        }
        let e = Execution {
            result,
            lifecycle,
            ownership,
            eligibility,
            blocking,
            terminal,
            attempt_state,
            public,
            retry_count,
            replay_count,
            reclaim_count,
            lease_epoch,
            lease,
            attempts,
            created_at: r.u64()?,
            started_at: r.opt_u64()?,
            completed_at: r.opt_u64()?,
            last_transition_at: r.u64()?,
            last_mutation_at: r.u64()?,
            queue_seq: r.u64()?,
            ..e
        };
        let mut e = e;
        if version >= 2 {
            e.set_reason(r.opt_bytes()?.map(Vec::into_boxed_slice));
        }
        if version >= 3 && r.bool()? {
            let p = Progress {
                pct: r.u8()?,
                message: r.bytes()?.into_boxed_slice(),
                at: r.u64()?,
            };
            e.extra.get_or_insert_with(Box::default).progress = Some(p);
        }
        if version >= 4 {
            if let Some(t) = r.opt_u64()? {
                e.extra.get_or_insert_with(Box::default).attempt_timeout_ms = Some(t);
            }
        }
        r.finish()?;
        Ok(e)
    }

    /// Approximate heap footprint, for MEMORY USAGE.
    pub fn mem_usage(&self) -> usize {
        // The lane name is shared by the lane's executions: not counted.
        std::mem::size_of::<Execution>()
            + self.payload.len()
            + self.caps.as_str().len()
            + self.extra.as_ref().map_or(0, |x| {
                std::mem::size_of::<Extra>()
                    + x.namespace.len()
                    + x.kind.len()
                    + x.tags
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 32)
                        .sum::<usize>()
            })
            + self.result.as_ref().map_or(0, |r| r.len())
            + self.attempts.capacity() * std::mem::size_of::<Attempt>()
            + self
                .attempts
                .iter()
                .map(|a| a.worker.heap_len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names_inline_or_boxed() {
        for (id, inst) in [
            (&b""[..], &b""[..]),
            (b"w", b"i"),
            (b"worker-1", b"worker-1-pid42"),
            (&[b'a'; 29][..], b""),
            (&[b'a'; 20][..], &[b'b'; 10][..]),
            (&[b'a'; 300][..], &[b'b'; 7][..]),
        ] {
            let w = WorkerName::new(id, inst);
            assert_eq!((w.id(), w.instance()), (id, inst));
            assert_eq!(w.heap_len() == 0, id.len() + inst.len() <= 29);
            assert_eq!(w, w.clone());
        }
    }

    fn exec(now: u64) -> Execution {
        let spec = Spec {
            lane: "default".into(),
            payload: b"p".to_vec().into(),
            priority: 5,
            tags: vec![(b"a.b"[..].into(), b"c"[..].into())],
            retry: Some(RetryPolicy::default()),
            ..Spec::default()
        };
        Execution::new(
            ExecId {
                partition: 3,
                uuid: Uuid(77),
            },
            spec,
            1,
            now,
        )
    }

    fn fence(g: &Grant) -> Fence {
        Fence {
            lease_id: g.lease_id,
            lease_epoch: g.lease_epoch,
            attempt_id: g.attempt_id,
        }
    }

    #[test]
    fn lifecycle_claim_renew_complete() {
        let mut e = exec(1000);
        assert_eq!(e.public, PublicState::Waiting);
        let g = e.claim(b"w", b"i", 100, Uuid(1), Uuid(2), 1000).unwrap();
        assert_eq!(g.lease_epoch, 1);
        assert_eq!(g.attempt_index, 0);
        assert_eq!(g.attempt_type, AttemptType::Initial);
        assert_eq!(
            e.claim(b"w", b"i", 100, Uuid(1), Uuid(2), 1000),
            Err(ClaimError::NotLeaseable)
        );
        let f = fence(&g);
        assert_eq!(e.renew(&f, 100, 1050), Ok(1150));
        let stale = Fence {
            lease_epoch: 2,
            ..f
        };
        assert_eq!(
            e.complete(&stale, None, 1060),
            Err((LeaseError::Stale, false))
        );
        e.complete(&f, Some(Blob::copy(b"r")), 1070).unwrap();
        assert_eq!(e.public, PublicState::Completed);
        match e.complete(&f, None, 1080) {
            Err((
                LeaseError::NotActive {
                    terminal,
                    lease_epoch,
                    attempt_id,
                    ..
                },
                false,
            )) => {
                assert_eq!(terminal, TerminalOutcome::Success);
                assert_eq!(lease_epoch, 1);
                assert_eq!(attempt_id, Some(Uuid(2)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delayed_submit() {
        let spec = Spec {
            lane: "l".into(),
            delay_until: Some(500),
            ..Spec::default()
        };
        let e = Execution::new(
            ExecId {
                partition: 0,
                uuid: Uuid(1),
            },
            spec,
            0,
            100,
        );
        assert_eq!(e.public, PublicState::Delayed);
        assert!(!e.is_eligible());
        let spec = Spec {
            lane: "l".into(),
            delay_until: Some(50),
            ..Spec::default()
        };
        let e = Execution::new(
            ExecId {
                partition: 0,
                uuid: Uuid(1),
            },
            spec,
            0,
            100,
        );
        assert!(e.is_eligible());
        assert_eq!(e.delay_until(), None);
    }

    #[test]
    fn codec_round_trip_and_corruption() {
        let mut e = exec(5);
        e.claim(b"w", b"i", 10, Uuid(1), Uuid(2), 6).unwrap();
        let mut w = Writer::default();
        e.encode(&mut w);
        assert_eq!(Execution::decode(&w.buf).unwrap(), e);
        for cut in 0..w.buf.len() {
            assert!(Execution::decode(&w.buf[..cut]).is_err());
        }
        let mut bad = w.buf.clone();
        bad[0] = 9;
        assert!(Execution::decode(&bad).is_err());
        // Flip every byte in turn: decoding may succeed or fail, never panic.
        for i in 0..w.buf.len() {
            let mut b = w.buf.clone();
            b[i] ^= 0xff;
            let _ = Execution::decode(&b);
        }
    }
}
