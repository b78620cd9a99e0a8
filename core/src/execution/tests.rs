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
    // Relative and absolute twins: one of each pair; a client's absolute
    // time must look like unix ms.
    for bad in [
        "* q p DELAY 5 DELAY_UNTIL 1700000000000",
        "* q p DELAY_UNTIL 1700000000000 DELAY 5",
        "* q p DEADLINE 1700000000000 DEADLINE_IN 5",
        "* q p DEADLINE_IN 0",
        "* q p DEADLINE_IN -1",
        "* q p DELAY 31536000001",
        "* q p DELAY_UNTIL 1700000000",
        "* q p DELAY_UNTIL 0",
        "* q p DEADLINE 99999999999",
    ] {
        let e = parse_submit(&split(bad), &L, Origin::Client).unwrap_err();
        assert_eq!(e.code, crate::base::errors::Code::Err, "{bad}");
    }
    // The primary's stream and the AOF carry what older builds accepted.
    assert!(parse_submit(&split("* q p DELAY_UNTIL 1 AT 5"), &L, Origin::Replicated).is_ok());
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

const NOW: u64 = 1_700_000_000_000;

fn submitted(line: &str, origin: Origin) -> crate::base::errors::CmdResult<Spec> {
    let mut s = parse_submit(&split(line), &L, origin)?;
    s.resolve_times(NOW, origin)?;
    Ok(s.spec)
}

#[test]
fn submit_times_relative_and_absolute() {
    let c = Origin::Client;
    let s = submitted("* q p DELAY 5000 DEADLINE_IN 60000", c).unwrap();
    assert_eq!(s.delay_until, Some(NOW + 5000));
    assert_eq!(s.deadline_at, Some(NOW + 60_000));
    let s = submitted("* q p DELAY_UNTIL 1700000005000 DEADLINE 1700000060000", c).unwrap();
    assert_eq!(s.delay_until, Some(NOW + 5000));
    assert_eq!(s.deadline_at, Some(NOW + 60_000));
    // A delay already past: claimable at once.
    let s = submitted("* q p DELAY_UNTIL 1600000000000", c).unwrap();
    let e = Execution::new(
        ExecId {
            partition: 0,
            uuid: Uuid(1),
        },
        s,
        0,
        NOW,
    );
    assert!(e.is_eligible());
    // A deadline not after the submit is refused, for a client only.
    for past in ["DEADLINE 1700000000000", "DEADLINE 1600000000000"] {
        let e = submitted(&format!("* q p {past}"), c).unwrap_err();
        assert_eq!(e.code, crate::base::errors::Code::InvalidInput, "{past}");
        assert!(e.message.contains("has passed"), "{e}");
        let s = submitted(&format!("* q p {past} AT 1"), Origin::Replicated).unwrap();
        assert!(s.deadline_at.is_some());
    }
    // Replicated with its pinned time, a relative time gives the same
    // absolute one on every node.
    let mut r = parse_submit(
        &split("* q p DELAY 7 AT 1700000000000"),
        &L,
        Origin::Replicated,
    )
    .unwrap();
    r.resolve_times(r.at.unwrap(), Origin::Replicated).unwrap();
    assert_eq!(r.spec.delay_until, Some(NOW + 7));
}

fn holder_line(rest: &str) -> String {
    format!(
        "{{fp:3}}:00000000-0000-4000-8000-000000000009 {} 1 {} {rest}",
        Uuid(1),
        Uuid(2)
    )
}

#[test]
fn delay_until_or_for() {
    use crate::base::time::When;
    let c = Origin::Client;
    let d = |rest: &str, o| parse_delay(&split(holder_line(rest).trim()), &L, o);
    assert_eq!(d("1700000005000", c).unwrap().until, When::At(NOW + 5000));
    assert_eq!(d("FOR 5000", c).unwrap().until, When::In(5000));
    assert_eq!(d("for 0", c).unwrap().until, When::In(0));
    assert_eq!(When::In(5000).resolve(NOW), NOW + 5000);
    for bad in [
        "",
        "5",
        "1700000000",
        "FOR",
        "FOR -1",
        "FOR 31536000001",
        "-1",
        "AT 5",
        "FOR 5 x",
    ] {
        assert!(d(bad, c).is_err(), "{bad}");
    }
    assert_eq!(
        d("5 AT 3", Origin::Replicated).unwrap().until,
        When::At(5),
        "an old AOF's time loads"
    );
}

#[test]
fn fail_classification() {
    use crate::execution::failure::Failure;
    let c = Origin::Client;
    let f = |rest: &str| parse_fail(&split(holder_line(rest).trim()), &L, c);
    assert_eq!(f("").unwrap().failure, None);
    assert_eq!(f("REASON boom").unwrap().failure, None);
    let got = f("REASON boom CATEGORY permanent").unwrap();
    assert_eq!(
        got.failure,
        Some(Failure {
            category: b"permanent"[..].into(),
            non_retryable: true
        })
    );
    assert_eq!(got.reason.as_deref(), Some(&b"boom"[..]));
    let got = f("CATEGORY transient").unwrap().failure.unwrap();
    assert!(!got.non_retryable);
    let got = f("CATEGORY bad_input NON_RETRYABLE")
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(
        (&*got.category, got.non_retryable),
        (&b"bad_input"[..], true)
    );
    let got = f("non_retryable").unwrap().failure.unwrap();
    assert_eq!((&*got.category, got.non_retryable), (&b""[..], true));
    for bad in ["CATEGORY", "CATEGORY  x", "NON_RETRYABLE 1", "RETRY_AT 0"] {
        assert!(f(bad).is_err(), "{bad}");
    }
    assert!(parse_fail(
        &[
            b"{fp:3}:00000000-0000-4000-8000-000000000009",
            b"00000000-0000-0000-0000-000000000001",
            b"1",
            b"00000000-0000-0000-0000-000000000002",
            b"CATEGORY",
            b"a\x01b"
        ],
        &L,
        c
    )
    .is_err());
}

#[test]
fn suspension_time_pairs() {
    let c = Origin::Client;
    let s = |rest: &str| parse_suspend(&split(holder_line(rest).trim()), &L, c);
    assert!(s("TIMEOUT 5 TIMEOUT_AT 1700000000000").is_err());
    assert!(s("TIMEOUT_AT 1700000").is_err());
    assert_eq!(s("TIMEOUT 5").unwrap().timeout, Some(Timeout::In(5)));
    assert_eq!(
        s("TIMEOUT_AT 1700000000000").unwrap().timeout,
        Some(Timeout::At(NOW))
    );
    let w = |rest: &str| parse_create_waitpoint(&split(holder_line(rest).trim()), &L, c);
    assert!(w("EXPIRES_IN 5 EXPIRES_AT 1700000000000").is_err());
    assert!(w("EXPIRES_AT 86400000").is_err());
    assert_eq!(w("EXPIRES_IN 5").unwrap().expires, Timeout::In(5));
    assert_eq!(w("").unwrap().expires, Timeout::In(PENDING_TTL_MS));
}

#[test]
fn a_classified_failure_round_trips_in_the_record_tail() {
    use crate::execution::failure::Failure;
    let mut e = exec(5);
    let g = e.claim(b"w", b"i", 10, Uuid(1), Uuid(2), 6).unwrap();
    let plain = {
        let mut w = Writer::default();
        e.encode(&mut w);
        w.buf
    };
    assert_eq!(plain[0], 4, "a record without one keeps version 4");
    let failure = Failure::classify(Some(b"bad_input"), true);
    e.fail(
        &g.fence(),
        Some(b"no".to_vec().into()),
        failure.clone(),
        None,
        7,
    )
    .unwrap();
    assert_eq!(
        e.public,
        PublicState::Failed,
        "retries left, but not retryable"
    );
    let mut w = Writer::default();
    e.encode(&mut w);
    assert_eq!(w.buf[0], 6);
    let back = Execution::decode(&w.buf).unwrap();
    assert_eq!(back, e);
    assert_eq!(back.failure(), failure.as_ref());
    for cut in 0..w.buf.len() {
        assert!(Execution::decode(&w.buf[..cut]).is_err());
    }
}
