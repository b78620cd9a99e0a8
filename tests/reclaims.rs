//! Leases that are taken away: revokes and dead workers count toward the
//! reclaim limit as lease expiries do; a revoked holder cannot act; replays
//! outlive a passed deadline; an attempt timeout restarts at each claim;
//! and the work scales with the worker, not the node (a per-worker lease
//! index, revocations in timer batches, replicated one by one).
mod common;

use std::time::{Duration, Instant};

use common::*;

fn now_ms(c: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

fn revoke(c: &mut redis::Connection, id: &str) {
    let ok: String = redis::cmd("FF.REVOKE").arg(id).query(c).unwrap();
    assert_eq!(ok, "OK");
}

fn register(c: &mut redis::Connection, instance: &str) {
    let _: () = redis::cmd("FF.REGISTER")
        .arg(instance)
        .arg("w")
        .arg(3_600_000)
        .query(c)
        .unwrap();
}

fn mark_dead(c: &mut redis::Connection, instance: &str) -> i64 {
    redis::cmd("FF.MARKDEAD").arg(instance).query(c).unwrap()
}

#[test]
fn revokes_count_toward_max_reclaims() {
    let srv = Server::start(&["--flowfabric.max-reclaims", "1"]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    claim(&mut c, "w", &["q"], &[]).unwrap();
    revoke(&mut c, &id);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(n(&get(&mut c, &id), "lease_reclaim_count"), 1);
    revoke(&mut c, &id);
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "failed");
    assert_eq!(s(&f, "reason"), "max_reclaims_exceeded");
    assert!(
        claim(&mut c, "w", &["q"], &[]).is_none(),
        "no third attempt"
    );
    let e = err_code(fenced("FF.COMPLETE", &j).query(&mut c));
    assert_eq!(e, "EXECUTION_NOT_ACTIVE");
}

#[test]
fn dead_workers_count_toward_max_reclaims() {
    let srv = Server::start(&["--flowfabric.max-reclaims", "1"]);
    let mut c = srv.conn();
    register(&mut c, "w-i");
    let id = submit(&mut c, "q", "x", &[]);
    claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(mark_dead(&mut c, "w-i"), 1);
    register(&mut c, "w-i");
    claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(mark_dead(&mut c, "w-i"), 1);
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "failed");
    assert_eq!(s(&f, "reason"), "max_reclaims_exceeded");
}

#[test]
fn a_fenced_call_after_expiry_honours_max_reclaims() {
    let srv = Server::start(&["--flowfabric.max-reclaims", "0"]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    // The timer may notice first, or the holder's call: either way it ends.
    let j = claim(&mut c, "w", &["q"], &["LEASE", "20"]).unwrap();
    std::thread::sleep(Duration::from_millis(40));
    let e = err_code(fenced("FF.COMPLETE", &j).query(&mut c));
    assert!(e == "LEASE_EXPIRED" || e == "EXECUTION_NOT_ACTIVE", "{e}");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "reason"), "max_reclaims_exceeded");
}

#[test]
fn a_revoked_holder_cannot_cancel() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    register(&mut c, "w-i");
    for how in ["revoke", "markdead"] {
        let id = submit(&mut c, "q", how, &[]);
        let j = claim(&mut c, "w", &["q"], &[]).unwrap();
        assert_eq!(j.id, id);
        match how {
            "revoke" => revoke(&mut c, &id),
            _ => {
                mark_dead(&mut c, "w-i");
                register(&mut c, "w-i");
            }
        }
        assert_eq!(
            err_code(fenced("FF.COMPLETE", &j).query(&mut c)),
            "LEASE_REVOKED"
        );
        let e = err_code(
            redis::cmd("FF.CANCEL")
                .arg(&id)
                .arg("FENCE")
                .arg(&j.lease_id)
                .arg(j.epoch)
                .arg(&j.attempt_id)
                .query(&mut c),
        );
        assert_eq!(e, "LEASE_REVOKED", "{how}");
        assert_eq!(s(&get(&mut c, &id), "public_state"), "active");
        // An operator still can.
        let ok: String = redis::cmd("FF.CANCEL").arg(&id).query(&mut c).unwrap();
        assert_eq!(ok, "OK");
    }
}

#[test]
fn a_replay_after_the_deadline_runs() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let deadline = (now_ms(&mut c) + 100).to_string();
    let id = submit(&mut c, "q", "x", &["DEADLINE", &deadline]);
    wait_until(
        || s(&get(&mut c, &id), "public_state") == "expired",
        Duration::from_secs(3),
        "the deadline",
    );
    let ok: String = redis::cmd("FF.REPLAY").arg(&id).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        s(&get(&mut c, &id), "public_state"),
        "waiting",
        "not expired again"
    );
    let j = claim(&mut c, "w", &["q"], &[]).expect("the replay runs");
    assert_eq!(complete(&mut c, &j, None).unwrap(), "OK");
}

#[test]
fn an_attempt_timeout_restarts_at_each_claim() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &["ATTEMPT_TIMEOUT", "150"]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    // Parked for longer than the timeout: time parked does not count.
    let until = (now_ms(&mut c) + 250).to_string();
    let ok: String = fenced("FF.DELAY", &j).arg(&until).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let again = claim(&mut c, "w", &["q"], &["BLOCK", "2000"]).expect("resumed");
    assert_eq!(again.attempt_id, j.attempt_id, "the same attempt");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        s(&get(&mut c, &id), "public_state"),
        "active",
        "not expired at once"
    );
    let took = wait_until(
        || s(&get(&mut c, &id), "public_state") == "expired",
        Duration::from_secs(3),
        "the resumed attempt's own timeout",
    );
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert_eq!(s(&get(&mut c, &id), "reason"), "attempt_timeout");
}

#[test]
fn version_counts_executions_by_state() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    for _ in 0..3 {
        submit(&mut c, "q", "x", &[]);
    }
    submit(&mut c, "other", "x", &["DELAY_UNTIL", "4000000000000"]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    complete(&mut c, &j, None).unwrap();
    claim(&mut c, "w", &["q"], &[]).unwrap();
    let v = pairs(redis::cmd("FF.VERSION").query(&mut c).unwrap());
    let counts = pairs(v["executions"].clone());
    let count = |k: &str| -> i64 { redis::from_redis_value(&counts[k]).unwrap() };
    assert_eq!(
        (
            count("waiting"),
            count("active"),
            count("completed"),
            count("delayed")
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(counts.len(), 12, "every public state");
}

/// One worker holds 10,000 leases among many: another worker's FF.LEASES
/// and MARKDEAD cost what that worker holds; the big worker's MARKDEAD
/// revokes a batch at once and the rest in timer batches, each replicated
/// as FF.REVOKE, so the replica ends identical.
#[test]
fn lease_work_scales_with_the_worker() {
    let lease = ["--flowfabric.lease-ms", "3600000"];
    let primary = Server::start(&lease);
    let replica = Server::start_replica(&primary, &lease);
    let mut c = primary.conn();
    register(&mut c, "big-i");
    register(&mut c, "small-i");
    for chunk in 0..20 {
        let mut p = redis::pipe();
        for i in 0..500 {
            p.cmd("FF.SUBMIT")
                .arg(format!("{{fp:{}}}", (chunk * 500 + i) % 256))
                .arg("q")
                .arg("x")
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
        let mut p = redis::pipe();
        for _ in 0..500 {
            p.cmd("FF.CLAIM").arg("big").arg("big-i").arg(1).arg("q");
        }
        let _: Vec<redis::Value> = p.query(&mut c).unwrap();
    }
    let mine = submit(&mut c, "q", "small", &[]);
    let j = claim(&mut c, "small", &["q"], &[]).unwrap();
    assert_eq!(j.id, mine);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let small: Vec<redis::Value> = redis::cmd("FF.LEASES")
        .arg("small-i")
        .query(&mut c)
        .unwrap();
    assert_eq!(small.len(), 2);
    let none: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("nobody").query(&mut c).unwrap();
    assert!(none.is_empty());
    let big: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("big-i").query(&mut c).unwrap();
    assert_eq!(big.len(), 20_000);
    assert_eq!(mark_dead(&mut c, "small-i"), 1);
    let t = Instant::now();
    assert_eq!(mark_dead(&mut c, "big-i"), 10_000);
    wait_until(
        || {
            let v: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("big-i").query(&mut c).unwrap();
            v.is_empty()
        },
        Duration::from_secs(10),
        "every lease of the dead worker to be revoked",
    );
    eprintln!("10,000 leases revoked in {:?}", t.elapsed());
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    let usec = |name: &str| -> f64 {
        let line = stats
            .lines()
            .find(|l| l.to_lowercase().starts_with(&format!("cmdstat_{name}:")))
            .unwrap();
        let per = line.split("usec_per_call=").nth(1).unwrap();
        per.split(',').next().unwrap().parse().unwrap()
    };
    eprintln!(
        "FF.LEASES {} us/call, FF.MARKDEAD {} us/call",
        usec("ff.leases"),
        usec("ff.markdead")
    );
    let v = pairs(redis::cmd("FF.VERSION").query(&mut c).unwrap());
    let firing: i64 = redis::from_redis_value(&v["timer_max_firing_us"]).unwrap();
    eprintln!("longest timer firing {firing} us");
    let mut r = replica.conn();
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    wait_until(
        || digest(&mut c) == digest(&mut r),
        Duration::from_secs(10),
        "replica digest to match",
    );
    let counts = pairs(v["executions"].clone());
    let active: i64 = redis::from_redis_value(&counts["active"]).unwrap();
    assert_eq!(active, 10_001, "revoked work is active, awaiting reclaim");
}
