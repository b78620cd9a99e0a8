//! Flows: a linear chain of 10 run by blocked workers (per-flow latency
//! from the first submit to the last completion), a 1,000-wide fan-out
//! joined by one all-of child (from the last upstream's completion to a
//! blocked claimer holding the child), quorum cancel-remaining over 100
//! upstreams (until every loser is cancelled), the server time one
//! promotion adds to the FF.COMPLETE that makes it, and the longest single
//! command of these phases (SLOWLOG, every command logged).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::server::*;
use crate::Opts;

pub struct Flows {
    pub chain_p50_ms: f64,
    pub chain_p99_ms: f64,
    pub fanout_join_ms: f64,
    pub quorum_cancel_p50_ms: f64,
    pub quorum_cancel_p99_ms: f64,
    /// FF.COMPLETE with one dependent to release, less a plain one (us).
    pub promotion_server_us: f64,
    pub complete_plain_us: f64,
    pub complete_promoting_us: f64,
    /// The longest command of the flow phases (ms).
    pub max_command_ms: f64,
    /// Cancelling a flow of 10,000 waiting members: the FF.CANCELFLOW
    /// round trip, and until the timer's batches cancelled the last.
    pub cancel10k_command_ms: f64,
    pub cancel10k_all_ms: f64,
}

/// A caller-minted uuid, distinct per `n`.
fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile_f(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// A claim's (id, lease, epoch, attempt), or None.
fn claim(c: &mut redis::Connection, lane: &str, block_ms: u64) -> Option<[String; 4]> {
    let mut cmd = redis::cmd("FF.CLAIM");
    cmd.arg("fw").arg("fw-i").arg(1).arg(lane);
    if block_ms > 0 {
        cmd.arg("BLOCK").arg(block_ms);
    }
    let v: redis::Value = cmd.query(c).unwrap();
    let redis::Value::Array(f) = v else {
        return None;
    };
    let s = |i: usize| -> String {
        match &f[i] {
            redis::Value::Int(n) => n.to_string(),
            x => redis::from_redis_value(x).unwrap(),
        }
    };
    Some([s(0), s(2), s(3), s(4)])
}

fn complete_cmd(j: &[String; 4]) -> redis::Cmd {
    let mut cmd = redis::cmd("FF.COMPLETE");
    cmd.arg(&j[0]).arg(&j[1]).arg(&j[2]).arg(&j[3]);
    cmd
}

fn slowlog_on(c: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .arg("slowlog-max-len")
        .arg(200_000)
        .query(c)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(c).unwrap();
}

/// The longest command logged since `slowlog_on` (ms), and its name.
fn slowlog_max(c: &mut redis::Connection) -> (f64, String) {
    let v: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(c).unwrap();
    let mut all: Vec<(f64, String)> = Vec::new();
    for e in v {
        let redis::Value::Array(f) = e else { continue };
        let us: i64 = redis::from_redis_value(&f[2]).unwrap_or(0);
        let name = match f.get(3) {
            Some(redis::Value::Array(a)) => a
                .iter()
                .take(2)
                .filter_map(|x| redis::from_redis_value::<String>(x).ok())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        all.push((us as f64 / 1000.0, name));
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, name) in all.iter().take(5) {
        eprintln!("  slow: {ms:.3} ms {name}");
    }
    let best = all.first().cloned().unwrap_or_default();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(10_000)
        .query(c)
        .unwrap();
    best
}

/// 100 chains of 10, one flow at a time, built in one pipeline (each
/// member after the one before it), run by 4 workers blocked on the lane.
fn chains(o: &Opts, flows: usize) -> Vec<f64> {
    let mut c = conn(o.port);
    let (done_tx, done_rx) = mpsc::channel::<String>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (port, tx, stop) = (o.port, done_tx.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut c = conn(port);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(j) = claim(&mut c, "chain", 100) {
                        let _: redis::Value = complete_cmd(&j).query(&mut c).unwrap();
                        let _ = tx.send(j[0].clone());
                    }
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for k in 0..flows {
        let tag = format!("{{fp:{}}}", k % 256);
        let fid = format!("{tag}:{}", uuid(1_000_000 + k as u64));
        let ids: Vec<String> = (0..10)
            .map(|i| format!("{tag}:{}", uuid((k * 100 + i) as u64)))
            .collect();
        let t0 = Instant::now();
        let mut p = redis::pipe();
        p.cmd("FF.FLOWCREATE").arg(&fid).ignore();
        for (i, id) in ids.iter().enumerate() {
            let cmd = p
                .cmd("FF.SUBMIT")
                .arg(id)
                .arg("chain")
                .arg("x")
                .arg("FLOW")
                .arg(&fid);
            if i > 0 {
                cmd.arg("AFTER").arg(&ids[i - 1]);
            }
            cmd.ignore();
        }
        let _: () = p.query(&mut c).unwrap();
        let last = ids.last().unwrap();
        loop {
            let id = done_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("chain progress");
            if &id == last {
                break;
            }
        }
        lat.push(ms(t0.elapsed()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    lat
}

/// 1,000 upstreams into one all-of child: the time from sending the last
/// upstream's FF.COMPLETE to a claimer blocked on the child's lane holding
/// it.
fn fan_out(o: &Opts) -> f64 {
    let mut c = conn(o.port);
    let tag = "{fp:3}";
    let fid = format!("{tag}:{}", uuid(9_000_000));
    let child = format!("{tag}:{}", uuid(9_000_001));
    let _: redis::Value = redis::cmd("FF.FLOWCREATE").arg(&fid).query(&mut c).unwrap();
    // Nobody claims on the child's lane yet: it waits until its edges hold it.
    let _: String = redis::cmd("FF.SUBMIT")
        .arg(&child)
        .arg("join")
        .arg("x")
        .arg("FLOW")
        .arg(&fid)
        .query(&mut c)
        .unwrap();
    let mut p = redis::pipe();
    for i in 0..1000 {
        let id = format!("{tag}:{}", uuid(9_100_000 + i));
        p.cmd("FF.SUBMIT")
            .arg(&id)
            .arg("fan")
            .arg("x")
            .arg("FLOW")
            .arg(&fid)
            .ignore();
        p.cmd("FF.EDGE").arg(&fid).arg(&id).arg(&child).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let mut jobs = Vec::new();
    for _ in 0..1000 {
        jobs.push(claim(&mut c, "fan", 0).expect("an upstream"));
    }
    let last = jobs.pop().unwrap();
    let mut p = redis::pipe();
    for j in &jobs {
        p.add_command(complete_cmd(j)).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let port = o.port;
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let mut c = conn(port);
        let j = claim(&mut c, "join", 5000);
        let _ = tx.send(Instant::now());
        j
    });
    // Until the claimer is blocked.
    let t = Instant::now();
    while blocked_clients(&mut c) == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    let _: redis::Value = complete_cmd(&last).query(&mut c).unwrap();
    let t1 = rx.recv().unwrap();
    let got = waiter.join().unwrap().expect("the child");
    assert_eq!(got[0], child);
    ms(t1.duration_since(t0))
}

fn blocked_clients(c: &mut redis::Connection) -> u64 {
    info(c, "clients")
        .get("blocked_clients")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Quorum 1 of 100 with cancel_remaining, `rounds` times: from sending the
/// winner's FF.COMPLETE until its reply, by which every loser is
/// cancelled (checked).
fn quorum_cancel(o: &Opts, rounds: usize) -> Vec<f64> {
    let mut c = conn(o.port);
    let mut lat = Vec::new();
    for r in 0..rounds {
        let tag = format!("{{fp:{}}}", 10 + r % 200);
        let fid = format!("{tag}:{}", uuid(20_000_000 + r as u64 * 1000));
        let child = format!("{tag}:{}", uuid(20_000_001 + r as u64 * 1000));
        let mut p = redis::pipe();
        p.cmd("FF.FLOWCREATE").arg(&fid).ignore();
        p.cmd("FF.SUBMIT")
            .arg(&child)
            .arg("qchild")
            .arg("x")
            .arg("FLOW")
            .arg(&fid)
            .ignore();
        p.cmd("FF.EDGEPOLICY")
            .arg(&fid)
            .arg(&child)
            .arg("QUORUM")
            .arg(1)
            .arg("cancel_remaining")
            .ignore();
        for i in 0..100 {
            let id = format!("{tag}:{}", uuid(20_000_002 + r as u64 * 1000 + i));
            p.cmd("FF.SUBMIT")
                .arg(&id)
                .arg("q")
                .arg("x")
                .arg("FLOW")
                .arg(&fid)
                .ignore();
            p.cmd("FF.EDGE").arg(&fid).arg(&id).arg(&child).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
        let winner = claim(&mut c, "q", 0).expect("an upstream");
        let t0 = Instant::now();
        let _: redis::Value = complete_cmd(&winner).query(&mut c).unwrap();
        lat.push(ms(t0.elapsed()));
        let v: redis::Value = redis::cmd("FF.FLOWGET").arg(&fid).query(&mut c).unwrap();
        let text = format!("{v:?}");
        assert!(text.contains("cancelled"), "losers cancelled: {text}");
        // The child runs; the losers are gone from the queue.
        let j = claim(&mut c, "qchild", 0).expect("the child");
        let _: redis::Value = complete_cmd(&j).query(&mut c).unwrap();
        assert!(
            claim(&mut c, "q", 0).is_none(),
            "a loser was left claimable"
        );
    }
    lat
}

/// A flow of 10,000 waiting members cancelled: the command's round trip
/// (its first 1,000 members), and until every member is cancelled.
fn big_cancel(o: &Opts) -> (f64, f64) {
    let mut c = conn(o.port);
    let tag = "{fp:6}";
    let fid = format!("{tag}:{}", uuid(40_000_000));
    let _: redis::Value = redis::cmd("FF.FLOWCREATE").arg(&fid).query(&mut c).unwrap();
    let mut p = redis::pipe();
    for _ in 0..10_000 {
        p.cmd("FF.SUBMIT")
            .arg(tag)
            .arg("bigc")
            .arg("x")
            .arg("FLOW")
            .arg(&fid)
            .ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let t0 = Instant::now();
    let (_, _, now, left): (String, i64, i64, i64) =
        redis::cmd("FF.CANCELFLOW").arg(&fid).query(&mut c).unwrap();
    let command = ms(t0.elapsed());
    assert_eq!(now + left, 10_000);
    loop {
        let v: redis::Value = redis::cmd("FF.FLOWGET").arg(&fid).query(&mut c).unwrap();
        let redis::Value::Array(f) = v else {
            panic!("no flow")
        };
        let cascading = f
            .chunks(2)
            .find(|kv| {
                redis::from_redis_value::<String>(&kv[0]).ok().as_deref() == Some("cascading")
            })
            .and_then(|kv| redis::from_redis_value::<i64>(&kv[1]).ok());
        if cascading == Some(0) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "cancel backlog stuck"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    (command, ms(t0.elapsed()))
}

/// FF.COMPLETE's server time per call for `n` upstreams each releasing one
/// dependent, and for `n` plain jobs (commandstats, completes pipelined).
fn promotion(o: &Opts, n: usize) -> (f64, f64) {
    let mut c = conn(o.port);
    let per_call = |c: &mut redis::Connection, lane: &str| -> f64 {
        let mut jobs = Vec::new();
        while let Some(j) = claim(c, lane, 0) {
            jobs.push(j);
        }
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
        let mut p = redis::pipe();
        for j in &jobs {
            p.add_command(complete_cmd(j)).ignore();
        }
        let _: () = p.query(c).unwrap();
        let stats = commandstats(c);
        let (us, calls) = stats.get("ff.complete").copied().unwrap_or((0, 1));
        us as f64 / calls.max(1) as f64
    };
    let tag = "{fp:5}";
    let fid = format!("{tag}:{}", uuid(30_000_000));
    let _: redis::Value = redis::cmd("FF.FLOWCREATE").arg(&fid).query(&mut c).unwrap();
    let mut p = redis::pipe();
    for i in 0..n as u64 {
        let up = format!("{tag}:{}", uuid(30_100_000 + i));
        let down = format!("{tag}:{}", uuid(30_200_000 + i));
        p.cmd("FF.SUBMIT")
            .arg(&up)
            .arg("pu")
            .arg("x")
            .arg("FLOW")
            .arg(&fid)
            .ignore();
        p.cmd("FF.SUBMIT")
            .arg(&down)
            .arg("pd")
            .arg("x")
            .arg("FLOW")
            .arg(&fid)
            .arg("AFTER")
            .arg(&up)
            .ignore();
        p.cmd("FF.SUBMIT").arg(tag).arg("pp").arg("x").ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let promoting = per_call(&mut c, "pu");
    let plain = per_call(&mut c, "pp");
    (promoting, plain)
}

pub fn flows(o: &Opts) -> Flows {
    let mut c = conn(o.port);
    reset(&mut c);
    slowlog_on(&mut c);
    let mut chain = chains(o, 100);
    chain.sort_by(f64::total_cmp);
    let fanout_join_ms = fan_out(o);
    let mut q = quorum_cancel(o, 100);
    q.sort_by(f64::total_cmp);
    let (cancel10k_command_ms, cancel10k_all_ms) = big_cancel(o);
    let (max_command_ms, name) = slowlog_max(&mut c);
    eprintln!("longest flow-phase command: {name} {max_command_ms:.3} ms");
    // The promotion pass measures with commandstats, not the slowlog.
    let (promoting, plain) = promotion(o, 5000);
    Flows {
        chain_p50_ms: percentile_f(&chain, 0.5),
        chain_p99_ms: percentile_f(&chain, 0.99),
        fanout_join_ms,
        quorum_cancel_p50_ms: percentile_f(&q, 0.5),
        quorum_cancel_p99_ms: percentile_f(&q, 0.99),
        promotion_server_us: (promoting - plain).max(0.0),
        complete_plain_us: plain,
        complete_promoting_us: promoting,
        max_command_ms,
        cancel10k_command_ms,
        cancel10k_all_ms,
    }
}
