//! Transitions that change an execution and its partition index together,
//! so the two can never disagree. Every transition runs the same way: note
//! where the record sits in the index, apply the record's own transition,
//! then move its index entries (queue, due-time sets, per-state counts) to
//! where the new state says they belong.

use crate::core::blob::Blob;
use crate::core::execution::{
    ClaimError, Execution, Fence, Grant, LeaseError, LeaseOutcome, OpError, RevokeError,
};
use crate::core::ids::Uuid;
use crate::core::index::{Due, Head, PartitionIndex, QueueKey, QueueOp};
use crate::core::requests::Acquire;
use crate::core::state::{EligibilityState, LifecyclePhase, OwnershipState, PublicState};

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
        public: e.public,
    }
}

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
    let mut due = false;
    for (old, new, set) in [
        (b.delay, a.delay, &mut idx.delayed),
        (b.lease, a.lease, &mut idx.lease_expiry),
        (b.deadline, a.deadline, &mut idx.deadlines),
        (b.retention, a.retention, &mut idx.retention),
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
    }
}

/// Runs `f` on the record and moves its index entries (and its share of
/// the partition's running byte count) to match.
fn transition<T>(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    f: impl FnOnce(&mut Execution) -> T,
) -> (T, Moved) {
    let (before, bytes) = (placement(e), e.mem_usage());
    let out = f(e);
    idx.record_bytes = idx
        .record_bytes
        .saturating_sub(bytes)
        .saturating_add(e.mem_usage());
    let moved = sync(idx, e, Some(before));
    (out, moved)
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
        if e.lease_ran_out(env.now, env.max_reclaims) != LeaseOutcome::Unchanged {
            return Err((LeaseError::Expired, true));
        }
        f(e)
    })
}

/// Places a freshly created execution in the index.
pub fn admit(idx: &mut PartitionIndex, e: &Execution) -> Moved {
    idx.record_bytes = idx.record_bytes.saturating_add(e.mem_usage());
    sync(idx, e, None)
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
    retry_at: Option<u64>,
    env: &Env,
) -> (Result<Option<u64>, (LeaseError, bool)>, Moved) {
    fenced(idx, e, env, |e| e.fail(fence, reason, retry_at, env.now))
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
) -> (Result<(), RevokeError>, Moved) {
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
    let mut before = placement(e);
    match kind {
        Due::Delay => before.delay = None,
        Due::LeaseExpiry => before.lease = None,
        Due::Deadline => before.deadline = None,
        Due::Retention => before.retention = None,
    }
    let changed = match kind {
        Due::Delay => e.promote(env.now),
        Due::LeaseExpiry => e.lease_ran_out(env.now, env.max_reclaims) != LeaseOutcome::Unchanged,
        Due::Deadline => e.expire(env.now),
        Due::Retention => {
            return if e.is_terminal() {
                DueEffect::Remove
            } else {
                DueEffect::Nothing
            }
        }
    };
    let moved = sync(idx, e, Some(before));
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
    tags: crate::core::execution::Tags,
    env: &Env,
) -> (Result<usize, OpError>, Moved) {
    transition(idx, e, |e| e.set_tags(tags, env.now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::caps::CapSet;
    use crate::core::execution::{Backoff, RetryPolicy, Spec};
    use crate::core::ids::ExecId;
    use crate::core::state::{AttemptType, PublicState};

    fn env(now: u64) -> Env {
        Env {
            now,
            retention_ms: 1000,
            max_reclaims: 1,
        }
    }

    fn acq(e: &Execution, lease: u128, attempt: u128, at: u64) -> Acquire<'static> {
        Acquire {
            id: e.id,
            worker_id: b"w",
            worker_instance_id: b"i",
            lease_ms: 100,
            lease_id: Uuid(lease),
            attempt_id: Uuid(attempt),
            at,
        }
    }

    fn fence(g: &Grant) -> Fence {
        Fence {
            lease_id: g.lease_id,
            lease_epoch: g.lease_epoch,
            attempt_id: g.attempt_id,
        }
    }

    fn new_exec(idx: &mut PartitionIndex, spec: Spec, now: u64) -> Execution {
        let seq = idx.take_seq();
        let e = Execution::new(
            ExecId {
                partition: 0,
                uuid: Uuid(1),
            },
            spec,
            seq,
            now,
        );
        admit(idx, &e);
        e
    }

    #[test]
    fn index_follows_the_record() {
        let mut idx = PartitionIndex::new(0, 1);
        let spec = Spec {
            lane: "l".into(),
            deadline_at: Some(99),
            ..Spec::default()
        };
        let mut e = new_exec(&mut idx, spec, 10);
        assert_eq!(idx.eligible_len(), 1);
        assert_eq!(idx.counts[PublicState::Waiting as usize], 1);
        let (g, m) = {
            let a = acq(&e, 2, 3, 20);
            acquire(&mut idx, &mut e, &a)
        };
        let g = g.unwrap();
        assert_eq!(m.head, Head::Now(None));
        assert!(idx.head("l", &CapSet::empty()).is_none());
        assert!(idx.lease_expiry.contains(120, Uuid(1)));
        assert_eq!(
            renew(&mut idx, &mut e, &fence(&g), 100, &env(50)).0,
            Ok(150)
        );
        assert!(idx.lease_expiry.contains(150, Uuid(1)) && idx.lease_expiry.len() == 1);
        complete(&mut idx, &mut e, &fence(&g), None, &env(60))
            .0
            .unwrap();
        assert!(idx.lease_expiry.is_empty() && idx.deadlines.is_empty());
        assert!(idx.retention.contains(60, Uuid(1)));
        assert_eq!(idx.counts[PublicState::Completed as usize], 1);
        assert_eq!(idx.counts[PublicState::Active as usize], 0);
        assert_eq!(idx.pop_due(1059, 1000), None);
        assert_eq!(idx.next_due(1000), Some(1060));
        assert_eq!(idx.next_due(0), None, "retention off");
        assert_eq!(
            idx.pop_due(1060, 1000),
            Some((Due::Retention, 1060, Uuid(1)))
        );
        assert_eq!(
            on_due(&mut idx, &mut e, Due::Retention, &env(1060)),
            DueEffect::Remove
        );
    }

    #[test]
    fn lease_runs_out_then_reclaim_then_max_reclaims() {
        let mut idx = PartitionIndex::new(0, 1);
        let mut e = new_exec(
            &mut idx,
            Spec {
                lane: "l".into(),
                ..Spec::default()
            },
            0,
        );
        let g1 = {
            let a = acq(&e, 2, 3, 0);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        let (kind, t, _) = idx.pop_due(100, 1000).unwrap();
        assert_eq!((kind, t), (Due::LeaseExpiry, 100));
        assert!(matches!(
            on_due(&mut idx, &mut e, kind, &env(100)),
            DueEffect::Changed(Moved {
                now_claimable: true,
                ..
            })
        ));
        assert_eq!(idx.eligible_len(), 1, "reclaimable work is queued");
        let g2 = {
            let a = acq(&e, 4, 5, 110);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        assert_eq!(g2.attempt_type, AttemptType::Reclaim);
        assert_eq!(g2.attempt_index, 1);
        assert_eq!(e.reclaim_count, 1);
        assert_eq!(
            complete(&mut idx, &mut e, &fence(&g1), None, &env(120)).0,
            Err((LeaseError::Stale, false))
        );
        // The second lease runs out too: reclaims are used up.
        let (kind, _, _) = idx.pop_due(210, 1000).unwrap();
        on_due(&mut idx, &mut e, kind, &env(210));
        assert_eq!(e.public, PublicState::Failed);
        assert_eq!(e.reason(), Some(&b"max_reclaims_exceeded"[..]));
        assert_eq!(idx.eligible_len(), 0);
    }

    #[test]
    fn a_fenced_call_settles_an_expired_lease_once_and_honours_max_reclaims() {
        let mut idx = PartitionIndex::new(0, 1);
        let spec = Spec {
            lane: "l".into(),
            ..Spec::default()
        };
        let mut e = new_exec(&mut idx, spec, 0);
        let g = {
            let a = acq(&e, 2, 3, 0);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        // The lease (100 ms) ran out before the holder's renew arrived.
        assert_eq!(
            renew(&mut idx, &mut e, &fence(&g), 10, &env(150)).0,
            Err((LeaseError::Expired, true))
        );
        assert!(e.is_reclaimable() && idx.eligible_len() == 1);
        assert_eq!(
            renew(&mut idx, &mut e, &fence(&g), 10, &env(151)).0,
            Err((LeaseError::Expired, false)),
            "settled once"
        );
        // One reclaim allowed (env's max_reclaims is 1): the reclaim's own
        // lease running out ends it, whoever notices first.
        let g2 = {
            let a = acq(&e, 4, 5, 160);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        assert_eq!(
            complete(&mut idx, &mut e, &fence(&g2), None, &env(300)).0,
            Err((LeaseError::Expired, true))
        );
        assert_eq!(e.public, PublicState::Failed);
        assert_eq!(e.reason(), Some(&b"max_reclaims_exceeded"[..]));
        assert_eq!(idx.eligible_len(), 0);
    }

    #[test]
    fn revoked_leases_count_toward_max_reclaims_and_refuse_a_fenced_cancel() {
        let mut idx = PartitionIndex::new(0, 1);
        let spec = Spec {
            lane: "l".into(),
            ..Spec::default()
        };
        let mut e = new_exec(&mut idx, spec, 0);
        let g = {
            let a = acq(&e, 2, 3, 0);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        revoke(&mut idx, &mut e, None, &env(10)).0.unwrap();
        assert_eq!(
            cancel(&mut idx, &mut e, Some(&fence(&g)), None, &env(11)).0,
            Err((LeaseError::Revoked, false)),
            "a revoked holder cannot cancel"
        );
        let a = acq(&e, 4, 5, 20);
        acquire(&mut idx, &mut e, &a).0.unwrap();
        assert_eq!(e.reclaim_count, 1);
        revoke(&mut idx, &mut e, None, &env(30)).0.unwrap();
        assert_eq!(e.public, PublicState::Failed, "no third attempt");
        assert_eq!(e.reason(), Some(&b"max_reclaims_exceeded"[..]));
        assert_eq!(idx.eligible_len(), 0);
    }

    #[test]
    fn fail_retries_with_backoff_then_fails() {
        let mut idx = PartitionIndex::new(0, 1);
        let retry = RetryPolicy {
            max_retries: 1,
            backoff: Backoff::Fixed { delay_ms: 50 },
        };
        let spec = Spec {
            lane: "l".into(),
            retry: Some(retry),
            ..Spec::default()
        };
        let mut e = new_exec(&mut idx, spec, 0);
        let g = {
            let a = acq(&e, 2, 3, 0);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        let at = e.retry_delay(0).map(|d| 10 + d);
        assert_eq!(at, Some(60));
        assert_eq!(
            fail(&mut idx, &mut e, &fence(&g), None, at, &env(10)).0,
            Ok(Some(60))
        );
        assert_eq!(e.public, PublicState::Delayed);
        assert!(idx.delayed.contains(60, Uuid(1)) && idx.lease_expiry.is_empty());
        let (kind, _, _) = idx.pop_due(60, 1000).unwrap();
        on_due(&mut idx, &mut e, kind, &env(60));
        assert_eq!(e.public, PublicState::Waiting);
        let g = {
            let a = acq(&e, 4, 5, 70);
            acquire(&mut idx, &mut e, &a)
        }
        .0
        .unwrap();
        assert_eq!(g.attempt_type, AttemptType::Retry);
        assert_eq!(e.retry_delay(0), None, "retries used up");
        assert_eq!(
            fail(
                &mut idx,
                &mut e,
                &fence(&g),
                Some(b"boom"[..].into()),
                None,
                &env(80)
            )
            .0,
            Ok(None)
        );
        assert_eq!(e.public, PublicState::Failed);
        assert_eq!(idx.counts[PublicState::Failed as usize], 1);
    }

    #[test]
    fn cancel_from_each_state() {
        for state in 0..3 {
            let mut idx = PartitionIndex::new(0, 1);
            let delay = if state == 1 { Some(500) } else { None };
            let spec = Spec {
                lane: "l".into(),
                delay_until: delay,
                deadline_at: Some(900),
                ..Spec::default()
            };
            let mut e = new_exec(&mut idx, spec, 0);
            if state == 2 {
                {
                    let a = acq(&e, 2, 3, 0);
                    acquire(&mut idx, &mut e, &a)
                }
                .0
                .unwrap();
            }
            cancel(&mut idx, &mut e, None, Some(b"why"[..].into()), &env(10))
                .0
                .unwrap();
            assert_eq!(e.public, PublicState::Cancelled);
            assert!(
                idx.eligible_len() == 0 && idx.delayed.is_empty() && idx.lease_expiry.is_empty()
            );
            assert!(idx.deadlines.is_empty() && idx.retention.len() == 1);
            assert!(matches!(
                cancel(&mut idx, &mut e, None, None, &env(11)).0,
                Err((LeaseError::NotActive { .. }, false))
            ));
        }
    }

    #[test]
    fn delay_resumes_the_same_attempt_and_revoke_reclaims() {
        let mut idx = PartitionIndex::new(0, 1);
        let mut e = new_exec(
            &mut idx,
            Spec {
                lane: "l".into(),
                ..Spec::default()
            },
            0,
        );
        let a = acq(&e, 2, 3, 0);
        let g = acquire(&mut idx, &mut e, &a).0.unwrap();
        delay(&mut idx, &mut e, &fence(&g), 50, &env(10)).0.unwrap();
        assert_eq!(e.public, PublicState::Delayed);
        assert!(idx.lease_expiry.is_empty() && idx.delayed.contains(50, Uuid(1)));
        let (kind, _, _) = idx.pop_due(50, 1000).unwrap();
        on_due(&mut idx, &mut e, kind, &env(50));
        let a = acq(&e, 4, 5, 60);
        let g2 = acquire(&mut idx, &mut e, &a).0.unwrap();
        assert_eq!(
            (g2.attempt_index, g2.attempt_id),
            (0, g.attempt_id),
            "resumed"
        );
        assert_eq!(g2.lease_epoch, 2);
        assert_eq!(e.attempts.len(), 1);
        revoke(&mut idx, &mut e, Some(Uuid(4)), &env(70)).0.unwrap();
        assert!(e.is_reclaimable() && idx.eligible_len() == 1 && idx.lease_expiry.is_empty());
        assert_eq!(
            revoke(&mut idx, &mut e, None, &env(71)).0,
            Err(RevokeError::NoActiveLease)
        );
        let a = acq(&e, 6, 7, 80);
        let g3 = acquire(&mut idx, &mut e, &a).0.unwrap();
        assert_eq!(g3.attempt_type, AttemptType::Reclaim);
    }

    #[test]
    fn priority_change_requeues() {
        let mut idx = PartitionIndex::new(0, 1);
        let mut e = new_exec(
            &mut idx,
            Spec {
                lane: "l".into(),
                ..Spec::default()
            },
            0,
        );
        set_priority(&mut idx, &mut e, 500, &env(1)).0.unwrap();
        assert_eq!(idx.head("l", &CapSet::empty()).unwrap().0, QueueKey::of(&e));
        assert_eq!(idx.eligible_len(), 1);
    }

    #[test]
    fn replay_block_unblock() {
        let mut idx = PartitionIndex::new(0, 1);
        let mut e = new_exec(
            &mut idx,
            Spec {
                lane: "l".into(),
                ..Spec::default()
            },
            0,
        );
        assert_eq!(
            operate(
                &mut idx,
                &mut e,
                Op::Replay { max_replays: 1 },
                None,
                &env(1)
            )
            .0,
            Err(OpError::NotTerminal)
        );
        operate(&mut idx, &mut e, Op::Block, None, &env(1))
            .0
            .unwrap();
        assert_eq!(idx.eligible_len(), 0, "blocked work is off the queue");
        operate(&mut idx, &mut e, Op::Unblock, None, &env(2))
            .0
            .unwrap();
        assert_eq!(idx.eligible_len(), 1);
        cancel(&mut idx, &mut e, None, None, &env(3)).0.unwrap();
        assert_eq!(idx.retention.len(), 1);
        operate(
            &mut idx,
            &mut e,
            Op::Replay { max_replays: 1 },
            None,
            &env(4),
        )
        .0
        .unwrap();
        assert!(idx.retention.is_empty() && idx.eligible_len() == 1);
        let a = acq(&e, 2, 3, 5);
        let g = acquire(&mut idx, &mut e, &a).0.unwrap();
        assert_eq!(g.attempt_type, AttemptType::Replay);
        cancel(&mut idx, &mut e, None, None, &env(6)).0.unwrap();
        assert_eq!(
            operate(
                &mut idx,
                &mut e,
                Op::Replay { max_replays: 1 },
                None,
                &env(7)
            )
            .0,
            Err(OpError::MaxReplays)
        );
    }

    #[test]
    fn attempt_timeout_expires_a_running_attempt() {
        let mut idx = PartitionIndex::new(0, 1);
        let spec = Spec {
            lane: "l".into(),
            attempt_timeout_ms: Some(30),
            ..Spec::default()
        };
        let mut e = new_exec(&mut idx, spec, 0);
        assert!(idx.deadlines.is_empty(), "no attempt running yet");
        let a = acq(&e, 2, 3, 10);
        acquire(&mut idx, &mut e, &a).0.unwrap();
        assert!(idx.deadlines.contains(40, Uuid(1)));
        let (kind, _, _) = idx.pop_due(40, 1000).unwrap();
        on_due(&mut idx, &mut e, kind, &env(40));
        assert_eq!(e.public, PublicState::Expired);
        assert_eq!(e.reason(), Some(&b"attempt_timeout"[..]));
        assert!(idx.lease_expiry.is_empty());
    }

    #[test]
    fn deadline_expires() {
        let mut idx = PartitionIndex::new(0, 1);
        let spec = Spec {
            lane: "l".into(),
            deadline_at: Some(50),
            ..Spec::default()
        };
        let mut e = new_exec(&mut idx, spec, 0);
        let (kind, _, _) = idx.pop_due(50, 1000).unwrap();
        on_due(&mut idx, &mut e, kind, &env(50));
        assert_eq!(e.public, PublicState::Expired);
        assert_eq!(idx.eligible_len(), 0);
    }
}
