//! Suspend → signal → resume: a worker suspends its job and blocks for
//! more work; the signal that satisfies the condition hands the resumed
//! job straight back to it. Latency is from sending the signal to the
//! worker holding its resumed claim; server cost from commandstats.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::server::*;
use crate::Opts;

pub struct Cycle {
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// FF.SUSPEND + FF.SIGNAL + the resuming FF.CLAIM, server us, one
    /// cycle at a time (each command alone on the server: cold caches).
    pub server_us: f64,
    /// The same with 16 workers cycling at once, as the lifecycle passes
    /// measure (the server's caches stay warm).
    pub loaded_server_us: f64,
}

/// Workers each cycle their own lane: submit, claim, suspend, signal,
/// claim the resumed attempt, complete. Server us per cycle of FF.SUSPEND,
/// FF.SIGNAL and the resuming FF.CLAIM (half of FF.CLAIM's time).
fn loaded_cycle_us(o: &Opts, workers: usize) -> f64 {
    let mut c = conn(o.port);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let per = (o.cycles / workers).max(1);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let port = o.port;
            std::thread::spawn(move || {
                let mut c = conn(port);
                let lane = format!("sl{w}");
                for _ in 0..per {
                    let _: String = redis::cmd("FF.SUBMIT")
                        .arg("*")
                        .arg(&lane)
                        .arg("x")
                        .query(&mut c)
                        .unwrap();
                    let f = claim_on(&mut c, &lane);
                    let (wp, token) = suspend(&mut c, &f);
                    signal(&mut c, &f[0], &wp, &token);
                    let r = claim_on(&mut c, &lane);
                    complete(&mut c, &r);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = commandstats(&mut c);
    let n = (per * workers) as f64;
    let claim = stats.get("ff.claim").map_or(0, |s| s.0) as f64 / 2.0;
    (usec_of(&stats, &["ff.suspend", "ff.signal"]) as f64 + claim) / n
}

/// Suspends the claimed job `f` until a signal named `go`; its
/// waitpoint's id and token.
fn suspend(c: &mut redis::Connection, f: &[String]) -> (String, String) {
    let v: Vec<redis::Value> = redis::cmd("FF.SUSPEND")
        .arg(&f[0])
        .arg(&f[2])
        .arg(&f[3])
        .arg(&f[4])
        .arg("CONDITION")
        .arg("SIGNAL")
        .arg("go")
        .query(c)
        .unwrap();
    let mut wps: Vec<Vec<String>> = redis::from_redis_value(&v[2]).unwrap();
    let mut wp = wps.remove(0);
    let token = wp.remove(2);
    (wp.remove(0), token)
}

/// The signal that resumes a suspended job.
fn signal(c: &mut redis::Connection, id: &str, wp: &str, token: &str) {
    let (_, e): (String, String) = redis::cmd("FF.SIGNAL")
        .arg(id)
        .arg(wp)
        .arg(token)
        .arg("go")
        .query(c)
        .unwrap();
    assert_eq!(e, "resume_condition_satisfied");
}

fn complete(c: &mut redis::Connection, f: &[String]) {
    let _: redis::Value = redis::cmd("FF.COMPLETE")
        .arg(&f[0])
        .arg(&f[2])
        .arg(&f[3])
        .arg(&f[4])
        .query(c)
        .unwrap();
}

fn claim(c: &mut redis::Connection) -> Vec<String> {
    claim_on(c, "sr")
}

fn claim_on(c: &mut redis::Connection, lane: &str) -> Vec<String> {
    let v: redis::Value = redis::cmd("FF.CLAIM")
        .arg("sw")
        .arg("i")
        .arg(1)
        .arg(lane)
        .arg("BLOCK")
        .arg(5000)
        .query(c)
        .unwrap();
    let redis::Value::Array(f) = v else {
        panic!("no claim")
    };
    f.iter()
        .map(|x| match x {
            redis::Value::Int(n) => n.to_string(),
            x => redis::from_redis_value(x).unwrap(),
        })
        .collect()
}

pub fn signal_resume(o: &Opts) -> Cycle {
    let mut c = conn(o.port);
    reset(&mut c);
    let _: redis::Value = redis::cmd("FF.ROTATESECRET")
        .arg("bench")
        .arg("00112233445566778899aabbccddeeff")
        .query(&mut c)
        .unwrap();
    let cycles = o.cycles;
    let (to_main, from_worker) = mpsc::channel::<(String, String, String)>();
    let (resumed_tx, resumed_rx) = mpsc::channel::<Instant>();
    let port = o.port;
    let worker = std::thread::spawn(move || {
        let mut c = conn(port);
        for _ in 0..cycles {
            let f = claim(&mut c);
            let (wp, token) = suspend(&mut c, &f);
            to_main.send((f[0].clone(), wp, token)).unwrap();
            let r = claim(&mut c);
            resumed_tx.send(Instant::now()).unwrap();
            assert_eq!(r[0], f[0]);
            complete(&mut c, &r);
        }
    });
    let mut lat = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let _: String = redis::cmd("FF.SUBMIT")
            .arg("*")
            .arg("sr")
            .arg("x")
            .query(&mut c)
            .unwrap();
        let (id, wp, token) = from_worker
            .recv_timeout(Duration::from_secs(10))
            .expect("the worker suspended");
        // Signal once the worker waits again.
        let t = Instant::now();
        while info(&mut c, "clients")["blocked_clients"] != "1" {
            assert!(t.elapsed() < Duration::from_secs(5), "worker did not block");
            std::hint::spin_loop();
        }
        let sent = Instant::now();
        signal(&mut c, &id, &wp, &token);
        let got = resumed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("resumed");
        lat.push(got.duration_since(sent).as_micros() as u64);
    }
    worker.join().unwrap();
    let stats = commandstats(&mut c);
    for (k, us) in per_call(
        &stats,
        &[
            "ff.submit",
            "ff.claim",
            "ff.suspend",
            "ff.signal",
            "ff.complete",
        ],
    ) {
        println!("  {k}: {us:.2} us per call");
    }
    let claim_us = stats
        .get("ff.claim")
        .map_or(0.0, |s| s.0 as f64 / s.1.max(1) as f64);
    let us = usec_of(&stats, &["ff.suspend", "ff.signal"]) as f64 / cycles.max(1) as f64;
    lat.sort_unstable();
    let loaded_server_us = loaded_cycle_us(o, 16);
    Cycle {
        p50_ms: percentile(&lat, 0.5) as f64 / 1000.0,
        p99_ms: percentile(&lat, 0.99) as f64 / 1000.0,
        server_us: us + claim_us,
        loaded_server_us,
    }
}
