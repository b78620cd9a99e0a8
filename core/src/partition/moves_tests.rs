use super::*;
use crate::base::caps::CapSet;
use crate::base::ids::ExecId;
use crate::base::state::{AttemptType, PublicState};
use crate::execution::{Backoff, RetryPolicy, Spec};

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
    g.fence()
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
    let at = e.retry_delay(None, 0).map(|d| 10 + d);
    assert_eq!(at, Some(60));
    assert_eq!(
        fail(&mut idx, &mut e, &fence(&g), None, None, at, &env(10)).0,
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
    assert_eq!(e.retry_delay(None, 0), None, "retries used up");
    assert_eq!(
        fail(
            &mut idx,
            &mut e,
            &fence(&g),
            Some(b"boom"[..].into()),
            None,
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
fn a_non_retryable_failure_ends_with_retries_left() {
    use crate::execution::Failure;
    let spec = Spec {
        lane: "l".into(),
        retry: Some(RetryPolicy {
            max_retries: 5,
            backoff: Backoff::Fixed { delay_ms: 50 },
        }),
        ..Spec::default()
    };
    for (category, flag, retries) in [
        (&b"transient"[..], false, true),
        (b"app_error", false, true),
        (b"permanent", false, false),
        (b"timeout", false, false),
        (b"app_error", true, false),
    ] {
        let mut idx = PartitionIndex::new(0, 1);
        let mut e = new_exec(&mut idx, spec.clone(), 0);
        let a = acq(&e, 2, 3, 0);
        let g = acquire(&mut idx, &mut e, &a).0.unwrap();
        let failure = Failure::classify(Some(category), flag);
        let at = e.retry_delay(failure.as_ref(), 0).map(|d| 10 + d);
        assert_eq!(at.is_some(), retries, "{category:?} {flag}");
        let r = fail(
            &mut idx,
            &mut e,
            &fence(&g),
            Some(b"bad input"[..].into()),
            failure.clone(),
            at,
            &env(10),
        );
        assert_eq!(r.0, Ok(at));
        let want = if retries {
            PublicState::Delayed
        } else {
            PublicState::Failed
        };
        assert_eq!(e.public, want);
        assert_eq!(e.retry_count, u32::from(retries));
        assert_eq!(e.failure(), failure.as_ref());
        assert_eq!(e.reason(), Some(&b"bad input"[..]));
        if retries {
            // The classification goes with the reason: the next attempt's
            // success clears both.
            let (kind, _, _) = idx.pop_due(60, 1000).unwrap();
            on_due(&mut idx, &mut e, kind, &env(60));
            let a = acq(&e, 4, 5, 70);
            let g = acquire(&mut idx, &mut e, &a).0.unwrap();
            complete(&mut idx, &mut e, &fence(&g), None, &env(80))
                .0
                .unwrap();
            assert_eq!((e.reason(), e.failure()), (None, None));
        }
    }
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
        assert!(idx.eligible_len() == 0 && idx.delayed.is_empty() && idx.lease_expiry.is_empty());
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
