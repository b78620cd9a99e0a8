//! One execution's record: what a submit fixed, its state vector,
//! attempts, lease and timestamps. The transitions live beside it
//! (`lifecycle`, `holder`, `operator`); nothing here touches the server:
//! `now` and minted ids come in as arguments, so a replica replaying the
//! same arguments reaches the same state.

use std::sync::Arc;

use crate::base::blob::Blob;
use crate::base::caps::CapSet;
use crate::base::ids::ExecId;
use crate::base::state::{
    AttemptState, BlockingReason, EligibilityState, LifecyclePhase, OwnershipState, PublicState,
    TerminalOutcome,
};
use crate::execution::attempt::{Attempt, Lease};
use crate::execution::failure::Failure;
use crate::execution::retry::RetryPolicy;
use crate::streams::Output;
use crate::suspension::record::Waits;

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
    /// How the holder classified the failure the reason is of (FF.FAIL's
    /// `CATEGORY`, `NON_RETRYABLE`); cleared with the reason.
    pub failure: Option<Failure>,
    /// Its waitpoints, suspension and signals, once it has had any.
    pub waits: Option<Box<Waits>>,
    /// Its attempts' output streams, for attempts that appended frames.
    pub outputs: Vec<Output>,
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
            && self.failure.is_none()
            && self.waits.is_none()
            && self.outputs.is_empty()
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
            failure: None,
            waits: None,
            outputs: Vec::new(),
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

    /// Sets (or clears) the reason; the failure classification, which
    /// describes a failure's reason, goes with the reason it described.
    pub(crate) fn set_reason(&mut self, reason: Option<Box<[u8]>>) {
        match (reason, self.extra.as_mut()) {
            (None, None) => {}
            (None, Some(x)) => {
                x.reason = None;
                x.failure = None;
            }
            (r, _) => {
                let x = self.extra.get_or_insert_with(Box::default);
                x.reason = r;
                x.failure = None;
            }
        }
    }

    /// How the holder classified the failure the reason is of.
    pub fn failure(&self) -> Option<&Failure> {
        self.extra.as_ref().and_then(|x| x.failure.as_ref())
    }

    /// Sets the classification of the failure just recorded (after its
    /// reason: `set_reason` clears it).
    pub(crate) fn set_failure(&mut self, failure: Option<Failure>) {
        match (failure, self.extra.as_mut()) {
            (None, None) => {}
            (None, Some(x)) => x.failure = None,
            (f, _) => self.extra.get_or_insert_with(Box::default).failure = f,
        }
    }

    pub fn waits(&self) -> Option<&Waits> {
        self.extra.as_ref().and_then(|x| x.waits.as_deref())
    }

    pub(crate) fn waits_mut(&mut self) -> &mut Waits {
        self.extra
            .get_or_insert_with(Box::default)
            .waits
            .get_or_insert_with(Box::default)
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
            BlockingReason::WaitingForResumeDelay => {
                format!(
                    "resume delay until {}",
                    self.delay_until().unwrap_or_default()
                )
            }
            _ if self.lifecycle == LifecyclePhase::Suspended => {
                match self.waits().and_then(Waits::open) {
                    Some(s) => format!(
                        "suspended: waitpoint {} awaiting {}",
                        s.waitpoints
                            .first()
                            .map(|w| w.to_string())
                            .unwrap_or_default(),
                        String::from_utf8_lossy(&s.reason)
                    ),
                    None => "suspended".into(),
                }
            }
            _ => String::new(),
        }
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
                    + x.failure.as_ref().map_or(0, Failure::heap_bytes)
                    + x.waits.as_ref().map_or(0, |w| w.heap_bytes())
                    + x.outputs.iter().map(Output::mem_usage).sum::<usize>()
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
