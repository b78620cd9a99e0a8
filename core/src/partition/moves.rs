//! Transitions that change an execution and its partition index together,
//! so the two can never disagree. Every transition runs the same way: note
//! where the record sits in the index, apply the record's own transition,
//! then move its index entries (queue, due-time sets, per-state counts) to
//! where the new state says they belong.

use crate::base::blob::Blob;
use crate::base::ids::Uuid;
use crate::base::state::{EligibilityState, LifecyclePhase, OwnershipState, PublicState};
use crate::execution::feed::Snapshot;
use crate::execution::requests::{Acquire, Append, CreateWaitpoint, SignalIn, Suspend};
use crate::execution::suspend::{Delivered, SuspendError, Suspended, WaitpointMade};
use crate::execution::{
    ClaimError, Execution, Failure, Fence, Grant, LeaseError, LeaseOutcome, OpError, RevokeError,
    Tags,
};
use crate::partition::index::{PartitionIndex, QueueOp};
use crate::partition::queue::{Due, Head, QueueKey};
use crate::streams::{Appended, CloseReason, Event, StreamError};
use crate::suspension::WaitError;

/// Settings a transition needs besides the record.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    pub now: u64,
    /// How long terminal executions are kept; 0 keeps them. Applied when
    /// retention entries fall due, never stored.
    pub retention_ms: u64,
    pub max_reclaims: u32,
}

/// Where a record belongs in its partition's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    /// The queue key, while claimable.
    queued: Option<QueueKey>,
    delay: Option<u64>,
    lease: Option<u64>,
    deadline: Option<u64>,
    retention: Option<u64>,
    /// A suspension timeout or pending waitpoint expiry.
    waits: Option<u64>,
    public: PublicState,
}

fn placement(e: &Execution) -> Placement {
    let terminal = e.is_terminal();
    Placement {
        queued: e.is_claimable().then(|| QueueKey::of(e)),
        delay: if e.lifecycle == LifecyclePhase::Runnable
            && e.eligibility == EligibilityState::NotEligibleUntilTime
        {
            e.delay_until()
        } else {
            None
        },
        lease: match (&e.lease, e.ownership) {
            (Some(l), OwnershipState::Leased) => Some(l.expires_at),
            _ => None,
        },
        deadline: e.expiry_due(),
        retention: if terminal { e.completed_at } else { None },
        waits: e.waits_due(),
        public: e.public,
    }
}

/// Called for each record a step moved beyond the one a command names
/// (flow work, a removal's resolved edges): the shell settles it as it
/// settles any transition.
pub type OnMove<'a> = dyn FnMut(&mut PartitionIndex, &Execution, Moved) + 'a;

/// What a transition did to the queues, for claim hints and waiters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub head: Head,
    /// The record became claimable.
    pub now_claimable: bool,
    /// A due-time set has a new earliest entry, so the partition may
    /// fall due sooner than the node timer knows (most transitions add
    /// behind the first).
    pub due: bool,
    /// The record gained (true) or lost (false) a live lease, held by its
    /// current attempt's worker: the node's per-worker lease index follows.
    pub leased: Option<bool>,
    /// The feed event the transition raised, if its state vector changed.
    pub event: Option<Event>,
    /// The attempt whose output stream the transition closed, and why:
    /// the shell writes the closing frame.
    pub closed: Option<(u32, CloseReason)>,
}

fn sync(idx: &mut PartitionIndex, e: &Execution, before: Option<Placement>) -> Moved {
    shift(idx, e, before, Some(placement(e)))
}

/// Moves a record's index entries from one placement to another (`None`:
/// not in the index). Inlined: on the hot path `after` is always there.
#[inline(always)]
fn shift(
    idx: &mut PartitionIndex,
    e: &Execution,
    before: Option<Placement>,
    after: Option<Placement>,
) -> Moved {
    let u = e.id.uuid;
    // Outside the index: no entries (its state is counted from `before`
    // and `after` themselves, never from this).
    let nowhere = Placement {
        queued: None,
        delay: None,
        lease: None,
        deadline: None,
        retention: None,
        waits: None,
        public: e.public,
    };
    let (b, a) = (before.unwrap_or(nowhere), after.unwrap_or(nowhere));
    let op = match (b.queued, a.queued) {
        (None, Some(_)) => QueueOp::Add,
        (Some(old), None) => QueueOp::Remove(old),
        (Some(old), Some(new)) if old != new => QueueOp::Move(old),
        _ => QueueOp::Keep,
    };
    let (from, to) = match (before, after) {
        (Some(b), Some(a)) if b.public == a.public => (None, None),
        _ => (before.map(|p| p.public), after.map(|p| p.public)),
    };
    let head = if op == QueueOp::Keep && from.is_none() && to.is_none() {
        Head::Unchanged
    } else {
        idx.update_lane(e, op, from, to)
    };
    if from.is_none() && b != a && !idx.flows.member_of.is_empty() {
        let claimable = a.queued.is_some() && b.queued.is_none();
        idx.flows.touched(u, e.queue_seq, claimable);
    }
    let mut due = false;
    for (old, new, set) in [
        (b.delay, a.delay, &mut idx.delayed),
        (b.lease, a.lease, &mut idx.lease_expiry),
        (b.deadline, a.deadline, &mut idx.deadlines),
        (b.retention, a.retention, &mut idx.retention),
        (b.waits, a.waits, &mut idx.waits),
    ] {
        if old != new {
            // Only an earlier due time matters at once. A removed first
            // entry leaves the node timer's recorded time early; a firing
            // then finds nothing due and records the real one, which
            // costs far less than recomputing on every complete.
            if let Some(t) = old {
                set.remove(t, u);
            }
            if let Some(t) = new {
                due |= set.insert(t, u);
            }
        }
    }
    Moved {
        head,
        now_claimable: a.queued.is_some() && b.queued.is_none(),
        due,
        leased: match (b.lease.is_some(), a.lease.is_some()) {
            (false, true) => Some(true),
            (true, false) => Some(false),
            _ => None,
        },
        event: None,
        closed: None,
    }
}

/// What the feed and the output streams learn of a transition from
/// `before`: its event, and the stream it closed.
fn observe(e: &mut Execution, before: &Snapshot, now: u64, moved: &mut Moved) {
    moved.event = e.event_since(before);
    if moved.event.is_some() {
        moved.closed = e.settle_output(before.attempt, now);
    }
}

/// Runs `f` on the record and moves its index entries (and its share of
/// the partition's running byte count) to match.
fn transition<T>(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    f: impl FnOnce(&mut Execution) -> T,
) -> (T, Moved) {
    let (before, bytes, snap) = (placement(e), e.mem_usage(), e.snapshot());
    let out = f(e);
    let mut moved = sync(idx, e, Some(before));
    observe(e, &snap, e.last_mutation_at, &mut moved);
    idx.record_bytes = idx
        .record_bytes
        .saturating_sub(bytes)
        .saturating_add(e.mem_usage());
    (out, moved)
}

/// Settles a lease that ran out (reclaimable, or failed once its reclaims
/// are used up), exactly as the timer would; true when it did.
fn ran_out(e: &mut Execution, env: &Env) -> bool {
    e.lease_ran_out(env.now, env.max_reclaims) != LeaseOutcome::Unchanged
}

/// Runs a holder's fenced step. A lease that has run out is settled first,
/// exactly as the timer would settle it (reclaimable, or failed once its
/// reclaims are used up), and the holder gets LEASE_EXPIRED; the record
/// changed, so the caller replicates the call (with the reclaim limit
/// pinned).
fn fenced<T>(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    env: &Env,
    f: impl FnOnce(&mut Execution) -> Result<T, (LeaseError, bool)>,
) -> (Result<T, (LeaseError, bool)>, Moved) {
    transition(idx, e, |e| {
        if ran_out(e, env) {
            return Err((LeaseError::Expired, true));
        }
        f(e)
    })
}

/// Places a freshly created execution in the index.
pub fn admit(idx: &mut PartitionIndex, e: &Execution) -> Moved {
    idx.record_bytes = idx.record_bytes.saturating_add(e.mem_usage());
    Moved {
        event: Some(Event::Submitted),
        ..sync(idx, e, None)
    }
}

/// Claims a claimable execution for a worker, as decided by `a`.
pub fn acquire(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    a: &Acquire<'_>,
) -> (Result<Grant, ClaimError>, Moved) {
    transition(idx, e, |e| {
        e.claim(
            a.worker_id,
            a.worker_instance_id,
            a.lease_ms,
            a.lease_id,
            a.attempt_id,
            a.at,
        )
    })
}

pub fn renew(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    lease_ms: u64,
    env: &Env,
) -> (Result<u64, (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| e.renew(fence, lease_ms, env.now))
}

pub fn complete(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    result: Option<Blob>,
    env: &Env,
) -> (Result<(), (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| e.complete(fence, result, env.now))
}

pub fn fail(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    reason: Option<Box<[u8]>>,
    failure: Option<Failure>,
    retry_at: Option<u64>,
    env: &Env,
) -> (Result<Option<u64>, (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| {
        e.fail(fence, reason, failure, retry_at, env.now)
    })
}

pub fn cancel(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: Option<&Fence>,
    reason: Option<Box<[u8]>>,
    env: &Env,
) -> (Result<(), (LeaseError, bool)>, Moved) {
    match fence {
        Some(_) => fenced(idx, e, env, |e| e.cancel(fence, reason, env.now)),
        None => transition(idx, e, |e| e.cancel(None, reason, env.now)),
    }
}

pub fn delay(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    until: u64,
    env: &Env,
) -> (Result<(), (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| e.delay(fence, until, env.now))
}

pub fn wait_for_children(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    env: &Env,
) -> (Result<(), (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| e.wait_for_children(fence, env.now))
}

pub fn revoke(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    expected: Option<Uuid>,
    env: &Env,
) -> (Result<(), RevokeError>, Moved) {
    transition(idx, e, |e| e.revoke(expected, env.max_reclaims, env.now))
}

/// Re-queues a waiting execution under its new priority.
pub fn set_priority(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    priority: u16,
    env: &Env,
) -> (Result<(), OpError>, Moved) {
    transition(idx, e, |e| e.set_priority(priority, env.now))
}

pub fn report_progress(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    pct: u8,
    message: Box<[u8]>,
    env: &Env,
) -> (Result<(), (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| {
        e.report_progress(fence, pct, message, env.now)
    })
}

/// The holder suspends its execution (see `Execution::suspend`). A lease
/// found run out is settled first, as for every fenced call.
pub fn suspend(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    req: &Suspend,
    suspension_id: Uuid,
    env: &Env,
) -> (Result<Suspended, (SuspendError, bool)>, Moved) {
    transition(idx, e, |e| {
        if ran_out(e, env) {
            return Err((SuspendError::Lease(LeaseError::Expired), true));
        }
        e.suspend(req, suspension_id, env.now)
            .map_err(|x| (x, false))
    })
}

pub fn create_waitpoint(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    req: &CreateWaitpoint,
    waitpoint: Uuid,
    env: &Env,
) -> (Result<WaitpointMade, (SuspendError, bool)>, Moved) {
    transition(idx, e, |e| {
        if ran_out(e, env) {
            return Err((SuspendError::Lease(LeaseError::Expired), true));
        }
        e.create_waitpoint(req, waitpoint, env.now)
            .map_err(|x| (x, false))
    })
}

pub fn deliver(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    waitpoint: Uuid,
    s: &SignalIn,
    signal_id: Uuid,
    env: &Env,
) -> (Result<Delivered, WaitError>, Moved) {
    transition(idx, e, |e| e.deliver(waitpoint, s, signal_id, env.now))
}

pub fn wake(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    delay: u64,
    env: &Env,
) -> (Result<PublicState, WaitError>, Moved) {
    transition(idx, e, |e| e.wake(delay, env.now))
}

pub fn close_waitpoint(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    waitpoint: Uuid,
    env: &Env,
) -> (Result<bool, WaitError>, Moved) {
    transition(idx, e, |e| e.close_waitpoint(waitpoint, env.now))
}

/// An append's outcome: the attempt's index and what the append did.
pub type AppendResult = Result<(u32, Appended), (StreamError, bool)>;

/// The holder appends a frame to its attempt's output stream. A lease
/// found run out is settled first, as for every fenced call.
pub fn append(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    req: &Append<'_>,
    env: &Env,
) -> (AppendResult, Moved) {
    transition(idx, e, |e| {
        if ran_out(e, env) {
            return Err((StreamError::StaleOwner, true));
        }
        e.append(&req.fence, &req.mode, req.payload, env.now)
    })
}

/// A step a flow takes on one of its members.
#[derive(Clone, Debug)]
pub enum FlowStep {
    /// An edge into it: held back while its group is pending.
    Hold,
    /// Its group is satisfied.
    Release,
    /// Its group is impossible.
    Skip,
    /// Cancelled for its flow (a cancelled flow, a sibling's quorum).
    Cancel(Box<[u8]>),
    /// An upstream's result becomes its payload.
    Payload(Blob),
}

/// Applies a flow's step to a member; the move, when it changed it.
pub fn flow_step(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    step: FlowStep,
    env: &Env,
) -> Option<Moved> {
    let now = env.now;
    let (changed, moved) = transition(idx, e, |e| match step {
        FlowStep::Hold => e.hold_for_dependencies(now),
        FlowStep::Release => e.release_dependencies(now),
        FlowStep::Skip => e.skip(now),
        FlowStep::Cancel(reason) => e.cancel(None, Some(reason), now).is_ok(),
        FlowStep::Payload(b) => {
            e.payload = b;
            e.last_mutation_at = now;
            true
        }
    });
    changed.then_some(moved)
}

/// Operator transitions on one execution (replay, block, unblock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Replay { max_replays: u32 },
    Block,
    Unblock,
}

pub fn operate(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    op: Op,
    reason: Option<Box<[u8]>>,
    env: &Env,
) -> (Result<(), OpError>, Moved) {
    transition(idx, e, |e| match op {
        Op::Replay { max_replays } => e.replay(max_replays, env.now),
        Op::Block => e.block(reason, env.now),
        Op::Unblock => e.unblock(env.now),
    })
}

/// What a due entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueEffect {
    /// Stale or not applicable: nothing changed but the entry is gone.
    Nothing,
    /// The record changed in place.
    Changed(Moved),
    /// Retention is over: the caller deletes the record.
    Remove,
}

/// Applies one due entry (already popped from the index) to its record.
pub fn on_due(idx: &mut PartitionIndex, e: &mut Execution, kind: Due, env: &Env) -> DueEffect {
    // The entry is gone from its set; re-derive placement without it so
    // `sync` neither removes it twice nor misses a re-insert.
    let (mut before, bytes, snap) = (placement(e), e.mem_usage(), e.snapshot());
    match kind {
        Due::Delay => before.delay = None,
        Due::LeaseExpiry => before.lease = None,
        Due::Deadline => before.deadline = None,
        Due::Retention => before.retention = None,
        Due::Waits => before.waits = None,
    }
    let changed = match kind {
        Due::Delay => e.promote(env.now),
        Due::LeaseExpiry => ran_out(e, env),
        Due::Deadline => e.expire(env.now),
        Due::Waits => e.on_waits_due(env.now),
        Due::Retention => {
            return if e.is_terminal() {
                DueEffect::Remove
            } else {
                DueEffect::Nothing
            }
        }
    };
    let mut moved = sync(idx, e, Some(before));
    observe(e, &snap, env.now, &mut moved);
    idx.record_bytes = idx
        .record_bytes
        .saturating_sub(bytes)
        .saturating_add(e.mem_usage());
    if changed {
        DueEffect::Changed(moved)
    } else {
        DueEffect::Nothing
    }
}

/// Drops a record's entries from the index (the record is being removed).
pub fn forget(idx: &mut PartitionIndex, e: &Execution) {
    idx.record_bytes = idx.record_bytes.saturating_sub(e.mem_usage());
    shift(idx, e, Some(placement(e)), None);
}

/// Sets or replaces tags (no index entry depends on them).
pub fn set_tags(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    tags: Tags,
    env: &Env,
) -> (Result<usize, OpError>, Moved) {
    transition(idx, e, |e| e.set_tags(tags, env.now))
}

#[cfg(test)]
#[path = "moves_tests.rs"]
mod tests;
