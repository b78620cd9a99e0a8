//! The core job lifecycle on a real server: submit, claim, renew, complete,
//! read; ordering, routing, idempotency, fencing and blocking claims.
mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn submit_claim_renew_complete_read() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(
        &mut c,
        "q",
        "hello",
        &["NAMESPACE", "ns", "KIND", "email", "TAG", "app.owner", "me"],
    );
    assert!(id.starts_with("{fp:"));
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "waiting");
    assert_eq!(s(&f, "lifecycle_phase"), "runnable");
    assert_eq!(s(&f, "eligibility_state"), "eligible_now");
    assert_eq!(s(&f, "namespace"), "ns");
    assert_eq!(s(&f, "kind"), "email");

    let j = claim(&mut c, "w", &["q"], &["LEASE", "5000"]).expect("a job");
    assert_eq!(j.id, id);
    assert_eq!(j.payload, b"hello");
    assert_eq!(j.epoch, 1);
    assert_eq!(n(&j.fields, "attempt_index"), 0);
    assert_eq!(attempt_type(&mut c, &j.id), "initial");
    assert!(claim(&mut c, "w", &["q"], &[]).is_none(), "nothing left");

    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "active");
    assert_eq!(s(&f, "ownership_state"), "leased");
    assert_eq!(s(&f, "current_worker_id"), "w");

    let before = n(&j.fields, "lease_expires_at");
    std::thread::sleep(Duration::from_millis(5));
    let renewed: i64 = fenced("FF.RENEW", &j)
        .arg("LEASE")
        .arg(10_000)
        .query(&mut c)
        .unwrap();
    assert!(renewed > before);

    assert_eq!(complete(&mut c, &j, Some("the result")).unwrap(), "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "completed");
    assert_eq!(s(&f, "terminal_outcome"), "success");
    assert_eq!(s(&f, "lifecycle_phase"), "terminal");
    let r: String = redis::cmd("FF.RESULT").arg(&id).query(&mut c).unwrap();
    assert_eq!(r, "the result");
    let p: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(&id).query(&mut c).unwrap();
    assert_eq!(p, b"hello");

    // A retried complete after a lost reply is recognisable as already done.
    let e = complete(&mut c, &j, None).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.code(), Some("EXECUTION_NOT_ACTIVE"));
    assert!(msg.contains("terminal_outcome=success"), "{msg}");
    assert!(
        msg.contains(&format!("attempt_id={}", j.attempt_id)),
        "{msg}"
    );
    assert!(msg.contains("lease_epoch=1"), "{msg}");
}

#[test]
fn priority_then_age_order() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let low = submit(&mut c, "q", "low", &["PRIORITY", "1"]);
    let hi1 = submit(&mut c, "q", "hi1", &["PRIORITY", "50"]);
    let hi2 = submit(&mut c, "q", "hi2", &["PRIORITY", "50"]);
    let clamp = submit(&mut c, "q", "clamped", &["PRIORITY", "99999"]);
    let order: Vec<String> = (0..4)
        .map(|_| claim(&mut c, "w", &["q"], &[]).unwrap().id)
        .collect();
    assert_eq!(order, vec![clamp.clone(), hi1, hi2, low]);
    assert_eq!(s(&get(&mut c, &clamp), "priority"), "9000");
}

#[test]
fn claims_across_partitions_and_lanes() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    // Caller-minted ids put work in many partitions; a claim still finds the
    // oldest first, whatever partition it sits in.
    let mut ids = Vec::new();
    for p in [7, 200, 3, 99] {
        let id = format!("{{fp:{p}}}:00000000-0000-4000-8000-{p:012}");
        let got: String = redis::cmd("FF.SUBMIT")
            .arg(&id)
            .arg("multi")
            .arg("x")
            .query(&mut c)
            .unwrap();
        assert_eq!(got, id);
        ids.push(id);
        std::thread::sleep(Duration::from_millis(2));
    }
    let tagged: String = redis::cmd("FF.SUBMIT")
        .arg("{fp:5}")
        .arg("other")
        .arg("y")
        .query(&mut c)
        .unwrap();
    assert!(tagged.starts_with("{fp:5}:"));
    let got: Vec<String> = (0..4)
        .map(|_| claim(&mut c, "w", &["multi"], &[]).unwrap().id)
        .collect();
    assert_eq!(got, ids);
    assert_eq!(
        claim(&mut c, "w", &["nope", "other"], &[]).unwrap().id,
        tagged
    );
    // A duplicate caller-minted id returns the id and creates nothing.
    let again: String = redis::cmd("FF.SUBMIT")
        .arg(&ids[0])
        .arg("multi")
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert_eq!(again, ids[0]);
    assert!(claim(&mut c, "w", &["multi"], &[]).is_none());
}

#[test]
fn capability_routing() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let gpu = submit(&mut c, "q", "needs gpu", &["CAPS", "gpu,cuda"]);
    let plain = submit(&mut c, "q", "anyone", &[]);
    let j = claim(&mut c, "cpu", &["q"], &["CAPS", "cpu"]).unwrap();
    assert_eq!(j.id, plain);
    assert!(claim(&mut c, "cpu", &["q"], &["CAPS", "cpu,gpu"]).is_none());
    let j = claim(&mut c, "gpu", &["q"], &["CAPS", "cuda,gpu,x"]).unwrap();
    assert_eq!(j.id, gpu);
    assert_eq!(s(&get(&mut c, &gpu), "required_capabilities"), "cuda,gpu");
}

#[test]
fn idempotent_submit() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let a = submit(&mut c, "q", "x", &["IDEMPOTENCY", "order-1", "60000"]);
    let b = submit(&mut c, "q", "x", &["IDEMPOTENCY", "order-1", "60000"]);
    assert_eq!(a, b);
    let other_ns = submit(
        &mut c,
        "q",
        "x",
        &["IDEMPOTENCY", "order-1", "60000", "NAMESPACE", "n2"],
    );
    assert_ne!(a, other_ns);
    assert!(claim(&mut c, "w", &["q"], &[]).is_some());
    assert!(claim(&mut c, "w", &["q"], &[]).is_some());
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    // After the TTL the key may be used again.
    let x = submit(&mut c, "q", "x", &["IDEMPOTENCY", "short", "20"]);
    std::thread::sleep(Duration::from_millis(60));
    let y = submit(&mut c, "q", "x", &["IDEMPOTENCY", "short", "20"]);
    assert_ne!(x, y);
}

#[test]
fn delayed_is_not_claimable_yet() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let far = 4_000_000_000_000u64.to_string();
    let id = submit(
        &mut c,
        "q",
        "later",
        &["DELAY_UNTIL", &far, "DEADLINE", &far],
    );
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "delayed");
    assert_eq!(s(&f, "blocking_reason"), "waiting_for_delay");
    assert_eq!(s(&f, "delay_until"), far);
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    // A delay in the past is no delay.
    let now = submit(&mut c, "q", "now", &["DELAY_UNTIL", "1600000000000"]);
    assert_eq!(claim(&mut c, "w", &["q"], &[]).unwrap().id, now);
}

#[test]
fn fencing_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &["LEASE", "60000"]).unwrap();
    let other = "00000000-0000-4000-8000-000000000000";
    let stale = |c: &mut redis::Connection, lease: &str, epoch: i64, attempt: &str| {
        err_code(
            redis::cmd("FF.RENEW")
                .arg(&j.id)
                .arg(lease)
                .arg(epoch)
                .arg(attempt)
                .query(c),
        )
    };
    assert_eq!(stale(&mut c, other, j.epoch, &j.attempt_id), "STALE_LEASE");
    assert_eq!(
        stale(&mut c, &j.lease_id, j.epoch + 1, &j.attempt_id),
        "STALE_LEASE"
    );
    assert_eq!(stale(&mut c, &j.lease_id, j.epoch, other), "STALE_LEASE");
    let missing = "{fp:1}:00000000-0000-4000-8000-000000000001";
    assert_eq!(
        err_code(
            redis::cmd("FF.COMPLETE")
                .arg(missing)
                .arg(&j.lease_id)
                .arg(1)
                .arg(&j.attempt_id)
                .query(&mut c)
        ),
        "EXECUTION_NOT_FOUND"
    );
    // Still active and unchanged after all of that.
    assert_eq!(s(&get(&mut c, &j.id), "public_state"), "active");
    assert_eq!(complete(&mut c, &j, None).unwrap(), "OK");
}

#[test]
fn expired_lease_is_rejected_and_marked() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &["LEASE", "30"]).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let e = complete(&mut c, &j, None).unwrap_err();
    assert_eq!(e.code(), Some("LEASE_EXPIRED"));
    let f = get(&mut c, &j.id);
    assert_eq!(s(&f, "ownership_state"), "lease_expired_reclaimable");
    assert_eq!(s(&f, "attempt_state"), "attempt_interrupted");
    assert_eq!(s(&f, "blocking_detail"), "lease expired, awaiting reclaim");
}

#[test]
fn blocking_claim_is_woken_by_submit() {
    let srv = Server::start(&[]);
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let t = Instant::now();
        let j = claim(&mut c, "w", &["q"], &["BLOCK", "5000"]);
        (j.map(|j| j.id), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut c = srv.conn();
    // Work on another lane does not satisfy the waiter.
    submit(&mut c, "other", "x", &[]);
    let sent = Instant::now();
    let id = submit(&mut c, "q", "x", &[]);
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got.as_deref(), Some(id.as_str()));
    assert!(waited < Duration::from_millis(4000));
    eprintln!("blocked claim woke {:?} after the submit", sent.elapsed());
    // A timeout replies nil.
    let t = Instant::now();
    assert!(claim(&mut c, "w", &["q"], &["BLOCK", "50"]).is_none());
    assert!(t.elapsed() >= Duration::from_millis(45));
}

#[test]
fn block_zero_waits_until_work_arrives() {
    let srv = Server::start(&[]);
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        claim(&mut c, "w", &["z"], &["BLOCK", "0"]).map(|j| j.id)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished());
    let mut c = srv.conn();
    let id = submit(&mut c, "z", "x", &[]);
    assert_eq!(waiter.join().unwrap(), Some(id));
}

#[test]
fn deleted_partitions_are_skipped_by_claims() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let a = submit(&mut c, "q", "a", &[]);
    // Each lane's work sits in its own partition: deleting one partition's
    // key drops its work and nothing else.
    let c_id = submit(&mut c, "q2", "c", &[]);
    assert_ne!(tag_of(&a), tag_of(&c_id));
    let _: i64 = redis::cmd("DEL")
        .arg(format!("ff:idx:{}", tag_of(&a)))
        .query(&mut c)
        .unwrap();
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    assert_eq!(claim(&mut c, "w", &["q", "q2"], &[]).unwrap().id, c_id);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    let d = submit(&mut c, "q", "d", &[]);
    assert_eq!(claim(&mut c, "w", &["q"], &[]).unwrap().id, d);
}

#[test]
fn version_and_partition() {
    let srv = Server::start(&["--flowfabric.partitions", "16"]);
    let mut c = srv.conn();
    let f = pairs(redis::cmd("FF.VERSION").query(&mut c).unwrap());
    assert_eq!(n(&f, "partitions"), 16);
    assert_eq!(
        n(&f, "encoding"),
        3,
        "the data type's encoding version (3: items tagged by kind)"
    );
    let tag: String = redis::cmd("FF.PARTITION").arg("q").query(&mut c).unwrap();
    let id = submit(&mut c, "q", "x", &[]);
    assert!(id.starts_with(&format!("{tag}:")), "{id} vs {tag}");
    // The partition count cannot change at run time.
    assert!(redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.partitions")
        .arg("32")
        .query::<()>(&mut c)
        .is_err());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.lease-ms")
        .arg("1234")
        .query(&mut c)
        .unwrap();
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let f = get(&mut c, &j.id);
    let exp: i64 = s(&f, "lease_expires_at").parse().unwrap();
    let acq: i64 = s(&f, "started_at").parse().unwrap();
    assert_eq!(exp - acq, 1234);
}
