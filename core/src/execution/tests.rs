use crate::base::args::Origin;
use crate::base::blob::Blob;
use crate::base::codec::Writer;
use crate::base::ids::{ExecId, Uuid};
use crate::base::state::*;
use crate::base::testing::{split, L};
use crate::execution::attempt::{Fence, Grant, WorkerName};
use crate::execution::errors::ClaimError;
use crate::execution::errors::LeaseError;
use crate::execution::record::{Execution, Spec};
use crate::execution::requests::*;
use crate::execution::retry::{Backoff, RetryPolicy};

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
    g.fence()
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

#[test]
fn submit_options() {
    let s = parse_submit(
            &split("* q payload PRIORITY 99999 CAPS b,a TAG x.y 1 MAX_RETRIES 5 BACKOFF EXPONENTIAL 10 100 1.5 JITTER IDEMPOTENCY k 1000"),
            &L,
            Origin::Client,
        )
        .unwrap();
    assert_eq!(s.spec.priority, 9000);
    assert_eq!(s.spec.caps.as_str(), "a,b");
    assert_eq!(s.idempotency_ttl_ms, Some(1000));
    let r = s.spec.retry.unwrap();
    assert_eq!(r.max_retries, 5);
    assert_eq!(
        r.backoff,
        Backoff::Exponential {
            initial_ms: 10,
            max_ms: 100,
            multiplier_milli: 1500,
            jitter: true
        }
    );
    assert_eq!(
        parse_submit(&split("* q p PRIORITY -5"), &L, Origin::Client)
            .unwrap()
            .spec
            .priority,
        0
    );
}

#[test]
fn submit_rejects() {
    for bad in [
        "",
        "*",
        "* q",
        "x q p",
        "{fp:256} q p",
        "* q p PRIORITY",
        "* q p PRIORITY 1.5",
        "* q p PRIORITY 99999999999999999999",
        "* q p NOPE 1",
        "* q p AT 5",
        "* q p CAPS a,,b",
        "* q p IDEMPOTENCY k 0",
        "* q p DELAY_UNTIL -1",
        "* q p BACKOFF FIXED 10 JITTER",
        "* q p BACKOFF EXPONENTIAL 10 5 2",
    ] {
        assert!(
            parse_submit(&split(bad), &L, Origin::Client).is_err(),
            "{bad}"
        );
    }
    assert!(parse_submit(&split("* q p AT 5"), &L, Origin::Replicated).is_ok());
    let big = vec![b'x'; 1025];
    assert!(parse_submit(&[b"*", b"q", &big], &L, Origin::Client).is_err());
    let long_lane = vec![b'l'; 65];
    assert!(parse_submit(&[b"*", &long_lane, b"p"], &L, Origin::Client).is_err());
}

#[test]
fn tag_keys() {
    for ok in ["app.x", "a1_b.c.d", "z.9"] {
        assert!(valid_tag_key(ok.as_bytes()), "{ok}");
    }
    for bad in ["", "app", "app.", "app..x", ".x", "App.x", "1a.x", "a-b.x"] {
        assert!(!valid_tag_key(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn acquire_round_trips() {
    let a = Acquire {
        id: ExecId {
            partition: 3,
            uuid: Uuid(5),
        },
        worker_id: b"w",
        worker_instance_id: b"i",
        lease_ms: 10,
        lease_id: Uuid(6),
        attempt_id: Uuid(7),
        at: 8,
    };
    let args = a.to_args();
    let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
    assert_eq!(parse_acquire(&refs, &L).unwrap(), a);
}
