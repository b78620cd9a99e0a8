use crate::base::args::Origin;
use crate::base::ids::{ExecId, Uuid};
use crate::base::state::*;
use crate::base::testing::{split, L};
use crate::execution::attempt::{Fence, Grant};
use crate::execution::record::{Execution, Spec};
use crate::execution::requests::*;
use crate::execution::suspend::{Delivered, SuspendError};
use crate::suspension::{CloseReason, Effect, WaitError, WaitpointState};

fn claimed(now: u64) -> (Execution, Fence) {
    let spec = Spec {
        lane: "q".into(),
        payload: b"p".to_vec().into(),
        ..Spec::default()
    };
    let id = ExecId {
        partition: 3,
        uuid: Uuid(9),
    };
    let mut e = Execution::new(id, spec, 1, now);
    let g: Grant = e
        .claim(b"w", b"i", 10_000_000, Uuid(1), Uuid(2), now)
        .unwrap();
    let f = g.fence();
    (e, f)
}

fn req(f: Fence, opts: &str) -> Suspend {
    req_from(f, opts, Origin::Client)
}

fn req_from(f: Fence, opts: &str, origin: Origin) -> Suspend {
    let text = format!(
        "{{fp:3}}:00000000-0000-4000-8000-000000000009 {} 1 {} {opts}",
        Uuid(1),
        Uuid(2)
    );
    let words = split(text.trim());
    let mut r = parse_suspend(&words, &L, origin).unwrap();
    r.fence = f;
    r
}

fn signal(name: &str) -> SignalIn {
    SignalIn {
        name: name.as_bytes().into(),
        dedup_ttl_ms: 1000,
        ..SignalIn::default()
    }
}

#[test]
fn suspend_then_signal_then_claim_resumes_the_attempt() {
    let (mut e, f) = claimed(10);
    let s = e
        .suspend(&req(f, "CONDITION SIGNAL go"), Uuid(50), 20)
        .unwrap();
    assert!(!s.already_satisfied);
    assert_eq!(e.public, PublicState::Suspended);
    assert_eq!(e.lifecycle, LifecyclePhase::Suspended);
    assert!(e.lease.is_none());
    let wp = s.waitpoints[0].0;
    let d = e.deliver(wp, &signal("other"), Uuid(60), 30).unwrap();
    assert!(matches!(
        d,
        Delivered::Accepted {
            effect: Effect::MatcherFailed,
            resumed: false,
            ..
        }
    ));
    let d = e.deliver(wp, &signal("go"), Uuid(61), 31).unwrap();
    assert!(matches!(
        d,
        Delivered::Accepted {
            effect: Effect::Satisfied,
            resumed: true,
            ..
        }
    ));
    assert_eq!(e.public, PublicState::Waiting);
    assert!(e.is_claimable());
    let g = e.claim(b"w2", b"i2", 1000, Uuid(3), Uuid(4), 40).unwrap();
    assert!(g.resumed);
    assert_eq!(g.attempt_id, Uuid(2), "the same attempt");
    assert_eq!(g.lease_epoch, f.lease_epoch + 1);
    let w = e.waits().unwrap();
    assert_eq!(w.satisfiers().len(), 1);
    assert_eq!(w.waitpoint(wp).unwrap().state, WaitpointState::Closed);
    assert_eq!(
        e.deliver(wp, &signal("go"), Uuid(62), 41),
        Err(WaitError::WaitpointClosed)
    );
}

#[test]
fn refusals_change_nothing() {
    let (mut e, f) = claimed(10);
    let before = e.clone();
    for (opts, want) in [
        ("WAITPOINT a CONDITION ONE b ANY", "mismatch"),
        ("CONDITION TIMEOUT_ONLY", "timeout_only"),
        ("TIMEOUT_AT 1", "past"),
        ("PENDING 00000000-0000-4000-8000-000000000077", "not found"),
    ] {
        // A client's TIMEOUT_AT 1 is refused as seconds when parsed; as an
        // old AOF replays it, the suspension refuses it as past.
        let r = e.suspend(&req_from(f, opts, Origin::Replicated), Uuid(50), 700_000);
        assert!(matches!(r, Err(SuspendError::Wait(_))), "{want}: {r:?}");
        assert_eq!(e, before, "{want}");
    }
    let stale = Fence {
        lease_epoch: 9,
        ..f
    };
    assert!(matches!(
        e.suspend(&req(stale, ""), Uuid(50), 20),
        Err(SuspendError::Lease(_))
    ));
    assert_eq!(e, before);
}

#[test]
fn timeouts_and_operator_wake() {
    for (b, want) in [
        ("fail", PublicState::Failed),
        ("cancel", PublicState::Cancelled),
        ("expire", PublicState::Expired),
        ("auto_resume", PublicState::Waiting),
        ("escalate", PublicState::Suspended),
    ] {
        let (mut e, f) = claimed(10);
        e.suspend(
            &req(f, &format!("TIMEOUT 100 ON_TIMEOUT {b}")),
            Uuid(50),
            20,
        )
        .unwrap();
        assert_eq!(e.waits_due(), Some(120));
        assert!(!e.on_waits_due(119));
        assert!(e.on_waits_due(120));
        assert_eq!(e.public, want, "{b}");
        if b == "escalate" {
            assert_eq!(e.blocking, BlockingReason::PausedByOperator);
            assert_eq!(e.waits_due(), None, "no second timeout");
            assert_eq!(e.wake(5, 200), Ok(PublicState::Delayed));
            assert_eq!(e.wake(0, 201), Err(WaitError::NotSuspended));
        }
        if e.is_terminal() {
            let w = e.waits().unwrap();
            assert!(w
                .waitpoints
                .iter()
                .all(|p| p.state == WaitpointState::Closed));
            assert!(matches!(
                w.suspension.as_ref().unwrap().closed,
                Some((
                    _,
                    CloseReason::TimedOutFail
                        | CloseReason::TimedOutCancel
                        | CloseReason::TimedOutExpire
                ))
            ));
        }
    }
}

#[test]
fn pending_waitpoints_buffer_and_expire() {
    let (mut e, f) = claimed(10);
    let c = CreateWaitpoint {
        id: e.id,
        fence: f,
        key: Some(b"cb"[..].into()),
        waitpoint_id: None,
        expires: Timeout::In(100),
        at: None,
    };
    let (wp, _, _) = e.create_waitpoint(&c, Uuid(70), 20).unwrap();
    assert!(e.create_waitpoint(&c, Uuid(71), 20).is_err(), "same key");
    let d = e.deliver(wp, &signal("done"), Uuid(80), 30).unwrap();
    assert!(matches!(
        d,
        Delivered::Accepted {
            effect: Effect::Buffered,
            ..
        }
    ));
    let s = e
        .suspend(
            &req(f, &format!("PENDING {wp} CONDITION SIGNAL done")),
            Uuid(50),
            40,
        )
        .unwrap();
    assert!(s.already_satisfied);
    assert_eq!(e.public, PublicState::Active, "the holder goes on");
    assert!(e.check_fence(&f, 41).is_ok());
    // Another pending waitpoint that nobody adopts expires.
    let c2 = CreateWaitpoint {
        key: Some(b"late"[..].into()),
        ..c
    };
    let (wp2, _, _) = e.create_waitpoint(&c2, Uuid(72), 50).unwrap();
    assert_eq!(e.waits_due(), Some(150));
    assert!(e.on_waits_due(150));
    assert_eq!(
        e.waits()
            .unwrap()
            .waitpoint(wp2)
            .unwrap()
            .closed
            .map(|c| c.1),
        Some(CloseReason::NeverCommitted)
    );
}

#[test]
fn a_retried_suspend_gets_the_stored_outcome() {
    let (mut e, f) = claimed(10);
    let a = e.suspend(&req(f, "IDEMPOTENCY k"), Uuid(50), 20).unwrap();
    let snapshot = e.clone();
    let b = e.suspend(&req(f, "IDEMPOTENCY k"), Uuid(51), 30).unwrap();
    assert!(b.replayed);
    assert_eq!((a.suspension, a.waitpoints), (b.suspension, b.waitpoints));
    assert_eq!(e, snapshot);
    // Another fence with the same key is not a retry.
    let other = Fence {
        lease_epoch: 7,
        ..f
    };
    assert!(e
        .suspend(&req(other, "IDEMPOTENCY k"), Uuid(52), 30)
        .is_err());
}
