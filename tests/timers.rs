//! Time-driven behaviour: the node timer promotes delays, expires leases
//! (and the work is reclaimed), ends executions at their deadline, and
//! removes terminal executions after retention. Short times, no long sleeps.
mod common;

use std::time::Duration;

use common::*;

fn now_ms(c: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

fn fail(c: &mut redis::Connection, j: &Job, reason: &str) -> redis::Value {
    fenced("FF.FAIL", j)
        .arg("REASON")
        .arg(reason)
        .query(c)
        .unwrap()
}

#[test]
fn stopped_worker_loses_lease_and_work_is_reclaimed() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let first = claim(&mut c, "w1", &["q"], &["LEASE", "40"]).unwrap();
    assert!(
        claim(&mut c, "w2", &["q"], &[]).is_none(),
        "leased work is not claimable"
    );
    // w1 stops renewing: within a few ms of expiry the work is reclaimable.
    let waited = wait_until(
        || s(&get(&mut c, &id), "ownership_state") == "lease_expired_reclaimable",
        Duration::from_secs(2),
        "lease expiry",
    );
    assert!(
        waited >= Duration::from_millis(30),
        "not before the lease ran out ({waited:?})"
    );
    let second = claim(&mut c, "w2", &["q"], &["LEASE", "60000"]).expect("reclaimed");
    assert_eq!(second.id, id);
    assert_eq!(attempt_type(&mut c, &second.id), "reclaim");
    assert_eq!(n(&second.fields, "attempt_index"), 1);
    assert_eq!(second.epoch, first.epoch + 1);
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "lease_reclaim_count"), "1");
    assert_eq!(s(&f, "current_worker_id"), "w2");
    // The first worker's late complete is fenced off.
    assert_eq!(
        complete(&mut c, &first, None).unwrap_err().code(),
        Some("STALE_LEASE")
    );
    assert_eq!(complete(&mut c, &second, None).unwrap(), "OK");
}

#[test]
fn blocked_claimer_gets_reclaimed_work() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    claim(&mut c, "w1", &["q"], &["LEASE", "30"]).unwrap();
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        claim(&mut c, "w2", &["q"], &["BLOCK", "3000"]).map(|j| j.id)
    });
    assert_eq!(waiter.join().unwrap(), Some(id));
}

#[test]
fn reclaims_stop_at_the_limit() {
    let srv = Server::start(&["--flowfabric.max-reclaims", "1"]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    claim(&mut c, "w1", &["q"], &["LEASE", "20"]).unwrap();
    wait_until(
        || claim(&mut c, "w2", &["q"], &["LEASE", "20"]).is_some(),
        Duration::from_secs(2),
        "reclaim",
    );
    wait_until(
        || s(&get(&mut c, &id), "public_state") == "failed",
        Duration::from_secs(2),
        "terminal failure",
    );
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "reason"), "max_reclaims_exceeded");
    assert!(claim(&mut c, "w3", &["q"], &[]).is_none());
}

#[test]
fn retries_follow_backoff_and_stop_at_max() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(
        &mut c,
        "q",
        "x",
        &[
            "MAX_RETRIES",
            "2",
            "BACKOFF",
            "EXPONENTIAL",
            "100",
            "1000",
            "2",
        ],
    );
    let mut expected_delay = 100;
    for attempt in 0..3 {
        let j = wait_until_claim(&mut c);
        assert_eq!(j.id, id);
        assert_eq!(n(&j.fields, "attempt_index"), attempt);
        assert_eq!(
            attempt_type(&mut c, &j.id),
            if attempt == 0 { "initial" } else { "retry" }
        );
        let before = now_ms(&mut c);
        let r = fail(&mut c, &j, "boom");
        if attempt < 2 {
            let redis::Value::Array(v) = r else {
                panic!("{r:?}")
            };
            let at: u64 = redis::from_redis_value(&v[1]).unwrap();
            assert!(
                at >= before + expected_delay && at <= before + expected_delay + 100,
                "{at} vs {before}+{expected_delay}"
            );
            let f = get(&mut c, &id);
            assert_eq!(s(&f, "public_state"), "delayed");
            assert_eq!(s(&f, "blocking_reason"), "waiting_for_retry_backoff");
            assert!(
                claim(&mut c, "w", &["q"], &[]).is_none(),
                "not before the backoff"
            );
            expected_delay *= 2;
        } else {
            assert_eq!(
                r,
                redis::Value::Array(vec![redis::Value::BulkString(b"failed".to_vec())])
            );
        }
    }
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "failed");
    assert_eq!(s(&f, "retry_count"), "2");
    assert_eq!(s(&f, "reason"), "boom");
    // Without a policy a failure is terminal at once.
    let id2 = submit(&mut c, "q2", "x", &[]);
    let j = claim(&mut c, "w", &["q2"], &[]).unwrap();
    fail(&mut c, &j, "nope");
    assert_eq!(s(&get(&mut c, &id2), "public_state"), "failed");
}

fn wait_until_claim(c: &mut redis::Connection) -> Job {
    claim(c, "w", &["q"], &["BLOCK", "3000"]).expect("work within 3 s")
}

#[test]
fn delayed_job_becomes_claimable_at_its_time() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let at = now_ms(&mut c) + 60;
    let id = submit(&mut c, "q", "x", &["DELAY_UNTIL", &at.to_string()]);
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    // A blocked claimer is woken by the promotion itself.
    let j = claim(&mut c, "w", &["q"], &["BLOCK", "3000"]).expect("promoted");
    let got_at = now_ms(&mut c);
    assert_eq!(j.id, id);
    assert!(got_at >= at, "not early: {got_at} < {at}");
    assert!(
        got_at <= at + 250,
        "promptly (precise lateness is measured by scripts/bench): {got_at} vs {at}"
    );
}

#[test]
fn deadline_ends_a_job() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let soon = (now_ms(&mut c) + 40).to_string();
    let waiting = submit(&mut c, "q", "x", &["DEADLINE", &soon]);
    let active = submit(&mut c, "q", "y", &["DEADLINE", &soon]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(j.id, waiting);
    let _ = active;
    wait_until(
        || s(&get(&mut c, &waiting), "public_state") == "expired",
        Duration::from_secs(2),
        "deadline",
    );
    wait_until(
        || s(&get(&mut c, &active), "public_state") == "expired",
        Duration::from_secs(2),
        "deadline",
    );
    assert_eq!(s(&get(&mut c, &waiting), "terminal_outcome"), "expired");
    assert_eq!(
        complete(&mut c, &j, None).unwrap_err().code(),
        Some("EXECUTION_NOT_ACTIVE")
    );
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
}

#[test]
fn cancel_from_every_state() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let far = (now_ms(&mut c) + 600_000).to_string();
    let delayed = submit(&mut c, "q", "d", &["DELAY_UNTIL", &far]);
    let active = submit(&mut c, "q", "a", &[]);
    let ja = claim(&mut c, "w", &["q"], &["LEASE", "60000"]).unwrap();
    assert_eq!(ja.id, active);
    let waiting = submit(&mut c, "q", "w", &[]);
    let reclaimable = submit(&mut c, "r", "r", &[]);
    claim(&mut c, "w", &["r"], &["LEASE", "20"]).unwrap();
    wait_until(
        || s(&get(&mut c, &reclaimable), "ownership_state") == "lease_expired_reclaimable",
        Duration::from_secs(2),
        "expiry",
    );
    // A wrong fence is refused for active work; the holder's fence or an
    // operator (no fence) cancels.
    let bad = redis::cmd("FF.CANCEL")
        .arg(&active)
        .arg("FENCE")
        .arg("00000000-0000-4000-8000-000000000000")
        .arg(ja.epoch)
        .arg(&ja.attempt_id)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(bad.code(), Some("STALE_LEASE"));
    let ok: String = redis::cmd("FF.CANCEL")
        .arg(&active)
        .arg("REASON")
        .arg("user asked")
        .arg("FENCE")
        .arg(&ja.lease_id)
        .arg(ja.epoch)
        .arg(&ja.attempt_id)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    for id in [&delayed, &waiting, &reclaimable] {
        let ok: String = redis::cmd("FF.CANCEL")
            .arg(id)
            .arg("REASON")
            .arg("ops")
            .query(&mut c)
            .unwrap();
        assert_eq!(ok, "OK");
    }
    for (id, reason) in [
        (&delayed, "ops"),
        (&active, "user asked"),
        (&waiting, "ops"),
        (&reclaimable, "ops"),
    ] {
        let f = get(&mut c, id);
        assert_eq!(s(&f, "public_state"), "cancelled", "{id}");
        assert_eq!(s(&f, "reason"), reason);
    }
    assert!(
        claim(&mut c, "w", &["q", "r"], &[]).is_none(),
        "cancelled work is gone from the queues"
    );
    let again = redis::cmd("FF.CANCEL")
        .arg(&waiting)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(again.code(), Some("EXECUTION_NOT_ACTIVE"));
    assert!(again.to_string().contains("terminal_outcome=cancelled"));
    assert_eq!(
        complete(&mut c, &ja, None).unwrap_err().code(),
        Some("EXECUTION_NOT_ACTIVE")
    );
}

#[test]
fn retention_removes_terminal_executions() {
    let srv = Server::start(&["--flowfabric.retention-ms", "50"]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    complete(&mut c, &j, Some("r")).unwrap();
    assert_eq!(s(&get(&mut c, &id), "public_state"), "completed");
    wait_until(
        || {
            redis::cmd("FF.GET")
                .arg(&id)
                .query::<redis::Value>(&mut c)
                .is_err()
        },
        Duration::from_secs(2),
        "retention",
    );
    let e = redis::cmd("FF.RESULT")
        .arg(&id)
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("EXECUTION_NOT_FOUND"));
    assert_eq!(records_in(&mut c, &tag_of(&id)), 0, "the record is gone");
}

#[test]
fn timer_effects_replicate_exactly() {
    let primary = Server::start(&["--flowfabric.retention-ms", "40"]);
    let replica = Server::start_replica(&primary, &[]);
    let mut r = replica.conn();
    let mut c = primary.conn();
    let now = now_ms(&mut c);
    for i in 0..20 {
        let d = (now + 20 + i).to_string();
        submit(
            &mut c,
            "q",
            "d",
            &[
                "DELAY_UNTIL",
                &d,
                "MAX_RETRIES",
                "1",
                "BACKOFF",
                "FIXED",
                "15",
                "DEADLINE",
                &(now + 5000).to_string(),
            ],
        );
    }
    let mut done = 0;
    while done < 20 {
        if let Some(j) = claim(&mut c, "w", &["q"], &["BLOCK", "2000", "LEASE", "30"]) {
            match n(&j.fields, "attempt_index") {
                0 => {
                    fail(&mut c, &j, "first");
                }
                1 => {} // let the lease run out
                _ => {
                    complete(&mut c, &j, None).unwrap();
                    done += 1;
                }
            }
        } else {
            panic!("work stalled");
        }
    }
    std::thread::sleep(Duration::from_millis(150));
    let _: i64 = redis::cmd("WAIT").arg(1).arg(2000).query(&mut c).unwrap();
    wait_until(
        || digest(&mut c) == digest(&mut r),
        Duration::from_secs(5),
        "digests to match",
    );
    let tag: String = redis::cmd("FF.PARTITION").arg("q").query(&mut c).unwrap();
    assert_eq!(records_in(&mut r, &tag), 0, "retention ran on both");
}

#[test]
fn delay_parks_and_resumes_the_attempt() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let until = now_ms(&mut c) + 40;
    let ok: String = fenced("FF.DELAY", &j).arg(until).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "delayed");
    assert_eq!(s(&f, "blocking_reason"), "waiting_for_delay");
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    let again = claim(&mut c, "w", &["q"], &["BLOCK", "3000"]).expect("claimable again");
    assert!(now_ms(&mut c) >= until);
    assert_eq!(again.attempt_id, j.attempt_id, "same attempt resumed");
    assert_eq!(again.epoch, j.epoch + 1);
    assert_eq!(
        complete(&mut c, &j, None).unwrap_err().code(),
        Some("STALE_LEASE")
    );
    assert_eq!(complete(&mut c, &again, None).unwrap(), "OK");
}

#[test]
fn revoke_makes_work_reclaimable() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w1", &["q"], &[]).unwrap();
    let stale = redis::cmd("FF.REVOKE")
        .arg(&id)
        .arg("LEASE")
        .arg("00000000-0000-4000-8000-000000000000")
        .query::<String>(&mut c);
    assert_eq!(stale.unwrap_err().code(), Some("STALE_LEASE"));
    let ok: String = redis::cmd("FF.REVOKE")
        .arg(&id)
        .arg("LEASE")
        .arg(&j.lease_id)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(s(&get(&mut c, &id), "ownership_state"), "lease_revoked");
    assert_eq!(
        complete(&mut c, &j, None).unwrap_err().code(),
        Some("LEASE_REVOKED")
    );
    let none = redis::cmd("FF.REVOKE")
        .arg(&id)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(none.code(), Some("NO_ACTIVE_LEASE"));
    let k = claim(&mut c, "w2", &["q"], &[]).unwrap();
    assert_eq!(attempt_type(&mut c, &k.id), "reclaim");
    assert_eq!(complete(&mut c, &k, None).unwrap(), "OK");
}

#[test]
fn priority_change_moves_the_job() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let a = submit(&mut c, "q", "a", &[]);
    let b = submit(&mut c, "q", "b", &[]);
    let p: i64 = redis::cmd("FF.PRIORITY")
        .arg(&b)
        .arg(100000)
        .query(&mut c)
        .unwrap();
    assert_eq!(p, 9000);
    assert_eq!(claim(&mut c, "w", &["q"], &[]).unwrap().id, b);
    let e = redis::cmd("FF.PRIORITY")
        .arg(&b)
        .arg(1)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("EXECUTION_NOT_ELIGIBLE"));
    assert_eq!(claim(&mut c, "w", &["q"], &[]).unwrap().id, a);
}

#[test]
fn attempt_timeout_ends_a_running_attempt() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &["ATTEMPT_TIMEOUT", "40"]);
    let j = claim(&mut c, "w", &["q"], &["LEASE", "60000"]).unwrap();
    wait_until(
        || s(&get(&mut c, &id), "public_state") == "expired",
        Duration::from_secs(2),
        "attempt timeout",
    );
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "reason"), "attempt_timeout");
    assert_eq!(
        complete(&mut c, &j, None).unwrap_err().code(),
        Some("EXECUTION_NOT_ACTIVE")
    );
}

#[test]
fn dead_worker_leases_are_revoked() {
    let primary = Server::start(&[]);
    let replica = Server::start_replica(&primary, &[]);
    let mut r = replica.conn();
    let mut c = primary.conn();
    let ok: String = redis::cmd("FF.REGISTER")
        .arg("w1-i")
        .arg("w1")
        .arg(80)
        .arg("CAPS")
        .arg("gpu")
        .arg("LANES")
        .arg(1)
        .arg("q")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let _: String = redis::cmd("FF.REGISTER")
        .arg("w2-i")
        .arg("w2")
        .arg(60_000)
        .query(&mut c)
        .unwrap();
    let a = submit(&mut c, "q", "a", &[]);
    let b = submit(&mut c, "q", "b", &[]);
    let ja = claim(&mut c, "w1", &["q"], &["LEASE", "600000"]).unwrap();
    let jb = claim(&mut c, "w1", &["q"], &["LEASE", "600000"]).unwrap();
    assert_eq!((ja.id.clone(), jb.id.clone()), (a.clone(), b.clone()));
    let _: String = redis::cmd("FF.HEARTBEAT")
        .arg("w1-i")
        .query(&mut c)
        .unwrap();
    // w1 stops heartbeating: within its TTL it is dead and its leases revoked.
    wait_until(
        || s(&get(&mut c, &a), "ownership_state") == "lease_revoked",
        Duration::from_secs(2),
        "revocation",
    );
    assert_eq!(s(&get(&mut c, &b), "ownership_state"), "lease_revoked");
    let workers: Vec<redis::Value> = redis::cmd("FF.WORKERS").query(&mut c).unwrap();
    let w1 = workers
        .iter()
        .map(|v| pairs(v.clone()))
        .find(|f| s(f, "worker_instance_id") == "w1-i")
        .unwrap();
    assert!(!s(&w1, "dead_at").is_empty());
    assert_eq!(
        redis::cmd("FF.HEARTBEAT")
            .arg("w1-i")
            .query::<String>(&mut c)
            .unwrap_err()
            .code(),
        Some("WORKER_DEAD")
    );
    assert_eq!(
        complete(&mut c, &ja, None).unwrap_err().code(),
        Some("LEASE_REVOKED")
    );
    // Another worker reclaims the work; an operator can mark w2 dead too.
    let k = claim(&mut c, "w2", &["q"], &["LEASE", "600000"]).unwrap();
    assert_eq!(attempt_type(&mut c, &k.id), "reclaim");
    let n: i64 = redis::cmd("FF.MARKDEAD").arg("w2-i").query(&mut c).unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        redis::cmd("FF.MARKDEAD")
            .arg("nobody")
            .query::<i64>(&mut c)
            .unwrap_err()
            .code(),
        Some("WORKER_NOT_FOUND")
    );
    let _: i64 = redis::cmd("WAIT").arg(1).arg(2000).query(&mut c).unwrap();
    wait_until(
        || digest(&mut c) == digest(&mut r),
        Duration::from_secs(5),
        "replica digest",
    );
    let on_replica: Vec<redis::Value> = redis::cmd("FF.WORKERS").query(&mut r).unwrap();
    assert_eq!(on_replica.len(), 2);
}

#[test]
fn timer_effects_survive_an_aof_restart() {
    let mut srv = Server::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--flowfabric.retention-ms",
        "30",
    ]);
    let mut c = srv.conn();
    let now = now_ms(&mut c);
    let mut ids = Vec::new();
    for i in 0..10u64 {
        ids.push(submit(
            &mut c,
            "q",
            "x",
            &[
                "DELAY_UNTIL",
                &(now + 20 + i).to_string(),
                "DEADLINE",
                &(now + 600_000).to_string(),
            ],
        ));
    }
    // Promotions, a lease that runs out, completions and retention removals
    // all come from the timer and must replay from the AOF.
    let mut done = 0;
    while done < 5 {
        let j = claim(&mut c, "w", &["q"], &["BLOCK", "2000"]).expect("promoted work");
        complete(&mut c, &j, None).unwrap();
        done += 1;
    }
    let j = claim(&mut c, "w", &["q"], &["LEASE", "20", "BLOCK", "2000"]).unwrap();
    wait_until(
        || s(&get(&mut c, &j.id), "ownership_state") == "lease_expired_reclaimable",
        Duration::from_secs(2),
        "expiry",
    );
    std::thread::sleep(Duration::from_millis(100));
    let before = digest(&mut c);
    let read_all = |c: &mut redis::Connection| -> Vec<redis::Value> {
        ids.iter()
            .map(|id| {
                redis::cmd("FF.GET")
                    .arg(id)
                    .query::<redis::Value>(c)
                    .unwrap_or(redis::Value::Nil)
            })
            .collect()
    };
    let states = read_all(&mut c);
    drop(c);
    srv.kill();
    srv.restart();
    let mut c = srv.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(states, read_all(&mut c));
}
