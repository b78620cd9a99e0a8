//! Claim routing: wake-up latency with many blocked claimers, the cost of a
//! submit while claimers wait elsewhere, and claims on a lane with many
//! capability sets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::server::*;
use crate::Opts;

pub struct Wake {
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Server CPU per submit to an unrelated lane, with the claimers
    /// waiting, over the same without them.
    pub unrelated_ratio: f64,
    pub unrelated_us_idle: f64,
    pub unrelated_us_waiting: f64,
}

/// Main-thread CPU per pipelined submit to a lane nobody waits on.
fn unrelated_submit_cpu(c: &mut redis::Connection, n: usize) -> f64 {
    let main = MainThread::of(c);
    // Twice, keeping the second: the first warms the lane and the heap.
    let mut us = 0.0;
    for _ in 0..2 {
        let cpu0 = main.cpu_ns();
        for _ in 0..n / 200 {
            let mut p = redis::pipe();
            for _ in 0..200 {
                p.cmd("FF.SUBMIT")
                    .arg("*")
                    .arg("unrelated")
                    .arg("x")
                    .ignore();
            }
            let _: () = p.query(c).unwrap();
        }
        us = (main.cpu_ns() - cpu0) as f64 / 1000.0 / n as f64;
    }
    us
}

/// `waiters` claimers block on one lane; each submit wakes one of them
/// (which completes its job and blocks again). Latency is from sending the
/// submit to the woken claimer holding its reply.
pub fn wake_latency(o: &Opts) -> Wake {
    let mut c = conn(o.port);
    reset(&mut c);
    let unrelated_us_idle = unrelated_submit_cpu(&mut c, 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut handles = Vec::new();
    for w in 0..o.waiters {
        let (port, stop, tx) = (o.port, stop.clone(), tx.clone());
        let h = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut c = conn(port);
                while !stop.load(Ordering::Relaxed) {
                    let v: redis::Value = redis::cmd("FF.CLAIM")
                        .arg(format!("w{w}"))
                        .arg("i")
                        .arg(1)
                        .arg("wake")
                        .arg("BLOCK")
                        .arg(1000)
                        .query(&mut c)
                        .unwrap();
                    let got = Instant::now();
                    let redis::Value::Array(f) = v else { continue };
                    let _ = tx.send(got);
                    let s = |i: usize| -> String { redis::from_redis_value(&f[i]).unwrap() };
                    let _: redis::Value = redis::cmd("FF.COMPLETE")
                        .arg(s(0))
                        .arg(s(2))
                        .arg(s(3))
                        .arg(s(4))
                        .query(&mut c)
                        .unwrap();
                }
            })
            .unwrap();
        handles.push(h);
    }
    let wait_blocked = |c: &mut redis::Connection| {
        let t = Instant::now();
        while info(c, "clients")["blocked_clients"]
            .parse::<usize>()
            .unwrap()
            < o.waiters
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "claimers did not block"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_blocked(&mut c);
    let unrelated_us_waiting = unrelated_submit_cpu(&mut c, 20_000);
    let mut lat = Vec::with_capacity(o.wakes);
    for _ in 0..o.wakes {
        wait_blocked(&mut c);
        let sent = Instant::now();
        let _: String = redis::cmd("FF.SUBMIT")
            .arg("*")
            .arg("wake")
            .arg("x")
            .query(&mut c)
            .unwrap();
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a claimer woke");
        lat.push(got.duration_since(sent).as_micros() as u64);
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    lat.sort_unstable();
    Wake {
        p50_ms: percentile(&lat, 0.5) as f64 / 1000.0,
        p99_ms: percentile(&lat, 0.99) as f64 / 1000.0,
        unrelated_ratio: unrelated_us_waiting / unrelated_us_idle.max(1e-9),
        unrelated_us_idle,
        unrelated_us_waiting,
    }
}

pub struct CapSets {
    pub sets: usize,
    /// Server us per claim for a worker offering every token, exactly one
    /// set's tokens, and none of them.
    pub all_us: f64,
    pub one_us: f64,
    pub none_us: f64,
    /// The first claim of a new worker capability set files the lane's
    /// sets once.
    pub first_claim_us: f64,
    /// The same claims on a lane without capability sets, for reference.
    pub plain_us: f64,
}

/// The `i`th distinct pair of tokens t0..t199.
fn pair(i: usize) -> (usize, usize) {
    let (mut a, mut rest) = (0, i);
    while rest >= 199 - a {
        rest -= 199 - a;
        a += 1;
    }
    (a, a + 1 + rest)
}

/// Server us per claim over `calls` claims of `lane` by a worker offering
/// `caps`, sent in pipelines of 100 so the server runs them back to back
/// (one at a time, each would start on cold caches after an idle wait);
/// and the server us of the first claim alone.
fn claim_us(
    c: &mut redis::Connection,
    lane: &str,
    caps: &str,
    calls: usize,
    expect_work: bool,
) -> (f64, f64) {
    let claim = |p: &mut redis::Pipeline| {
        p.cmd("FF.CLAIM")
            .arg("w")
            .arg("i")
            .arg(1)
            .arg(lane)
            .arg("CAPS")
            .arg(caps);
    };
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
    let mut p = redis::pipe();
    claim(&mut p);
    let got: Vec<redis::Value> = p.query(c).unwrap();
    let first = commandstats(c)["ff.claim"].0 as f64;
    let mut answers = got;
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
    let mut left = calls - 1;
    while left > 0 {
        let n = left.min(100);
        let mut p = redis::pipe();
        for _ in 0..n {
            claim(&mut p);
        }
        let got: Vec<redis::Value> = p.query(c).unwrap();
        answers.extend(got);
        left -= n;
    }
    for (i, v) in answers.iter().enumerate() {
        assert_eq!(
            *v != redis::Value::Nil,
            expect_work,
            "claim {i} for {caps:.20}"
        );
    }
    let (us, n) = commandstats(c)["ff.claim"];
    (us as f64 / n.max(1) as f64, first)
}

/// 10,000 distinct capability sets (pairs of 200 tokens) on one lane, two
/// jobs each, plus a thousand jobs on the pair (t0, t1): claims by workers
/// matching every set, one, and none.
pub fn capsets(o: &Opts) -> CapSets {
    let mut c = conn(o.port);
    reset(&mut c);
    let sets = o.capsets;
    for round in 0..2 {
        for chunk in (0..sets).collect::<Vec<_>>().chunks(500) {
            let mut p = redis::pipe();
            for &i in chunk {
                let (a, b) = pair(i);
                p.cmd("FF.SUBMIT")
                    .arg("*")
                    .arg("caps")
                    .arg(round)
                    .arg("CAPS")
                    .arg(format!("t{a},t{b}"))
                    .ignore();
            }
            let _: () = p.query(&mut c).unwrap();
        }
    }
    let mut p = redis::pipe();
    for _ in 0..1000 {
        p.cmd("FF.SUBMIT")
            .arg("*")
            .arg("caps")
            .arg("one")
            .arg("CAPS")
            .arg("t0,t1")
            .ignore();
    }
    for _ in 0..5000 {
        p.cmd("FF.SUBMIT").arg("*").arg("plain").arg("x").ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let (plain_us, _) = claim_us(&mut c, "plain", "t0,t1", 5000, true);
    let all: Vec<String> = (0..200).map(|t| format!("t{t}")).collect();
    // One set: a worker with t0 and t1 (the others need a second token).
    let (one_us, _) = claim_us(&mut c, "caps", "t0,t1", 1000, true);
    // Every set: claims pop the oldest jobs, one per set, so ~10,000 sets
    // stay on the lane throughout.
    let (all_us, first_claim_us) = claim_us(&mut c, "caps", &all.join(","), 5000, true);
    let (none_us, _) = claim_us(&mut c, "caps", "zz", 5000, false);
    CapSets {
        sets,
        all_us,
        one_us,
        none_us,
        first_claim_us,
        plain_us,
    }
}

pub struct Leases {
    pub executions: usize,
    /// Server us of FF.LEASES for a worker holding 10,000 leases and for
    /// one holding none, of MEMORY USAGE of a partition key, and of the
    /// FF.MARKDEAD of the big worker.
    pub leases_big_us: f64,
    pub leases_none_us: f64,
    pub memory_usage_us: f64,
    pub markdead_us: f64,
    /// Until every lease of the dead worker was revoked (timer batches).
    pub revoked_all_ms: f64,
    pub timer_max_firing_us: u64,
}

fn cmd_us(
    c: &mut redis::Connection,
    name: &str,
    calls: usize,
    mut run: impl FnMut(&mut redis::Connection),
) -> f64 {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
    for _ in 0..calls {
        run(c);
    }
    let (us, n) = commandstats(c).get(name).copied().unwrap_or((0, 0));
    us as f64 / n.max(1) as f64
}

/// `executions` jobs across all partitions, 10,000 of them leased by one
/// worker: what FF.LEASES, MEMORY USAGE and FF.MARKDEAD cost.
pub fn leases(o: &Opts) -> Leases {
    let mut c = conn(o.port);
    reset(&mut c);
    for chunk in (0..o.lease_jobs).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        for &i in chunk {
            p.cmd("FF.SUBMIT")
                .arg(format!("{{fp:{}}}", i % 256))
                .arg(if i < 10_000 { "held" } else { "idle" })
                .arg("x")
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    for who in ["big", "none"] {
        let _: () = redis::cmd("FF.REGISTER")
            .arg(format!("{who}-i"))
            .arg(who)
            .arg(3_600_000)
            .query(&mut c)
            .unwrap();
    }
    for _ in 0..10 {
        let mut p = redis::pipe();
        for _ in 0..1000 {
            p.cmd("FF.CLAIM")
                .arg("big")
                .arg("big-i")
                .arg(1)
                .arg("held")
                .arg("LEASE")
                .arg(3_600_000)
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let leases_big_us = cmd_us(&mut c, "ff.leases", 5, |c| {
        let v: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("big-i").query(c).unwrap();
        assert_eq!(v.len(), 20_000);
    });
    let leases_none_us = cmd_us(&mut c, "ff.leases", 200, |c| {
        let _: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("none-i").query(c).unwrap();
    });
    let memory_usage_us = cmd_us(&mut c, "memory|usage", 200, |c| {
        let _: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg("ff:idx:{fp:7}")
            .query(c)
            .unwrap();
    });
    let t = Instant::now();
    let markdead_us = cmd_us(&mut c, "ff.markdead", 1, |c| {
        let n: i64 = redis::cmd("FF.MARKDEAD").arg("big-i").query(c).unwrap();
        assert_eq!(n, 10_000);
    });
    loop {
        let v: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("big-i").query(&mut c).unwrap();
        if v.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "leases were not revoked"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let revoked_all_ms = t.elapsed().as_secs_f64() * 1000.0;
    let v: redis::Value = redis::cmd("FF.VERSION").query(&mut c).unwrap();
    let redis::Value::Array(f) = v else { panic!() };
    let i = f
        .chunks(2)
        .position(|p| redis::from_redis_value::<String>(&p[0]).unwrap() == "timer_max_firing_us")
        .unwrap();
    Leases {
        executions: o.lease_jobs,
        leases_big_us,
        leases_none_us,
        memory_usage_us,
        markdead_us,
        revoked_all_ms,
        timer_max_firing_us: redis::from_redis_value(&f[i * 2 + 1]).unwrap(),
    }
}
