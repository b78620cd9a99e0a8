//! The operator's tools on a big node: a node of N executions spread over
//! every partition (1% failed for good, the rest waiting) plus a few
//! thousand completed; then INFO flowfabric, FF.SCAN STATE failed over the
//! whole node, FF.DELETE of completed executions, FF.BULKREPLAY STATE
//! failed over the whole node and FF.BULKCANCEL of one lane's waiting
//! executions (a tenth of the node, in every partition), each to cursor 0.
//! Every call must do bounded work: its round trip (client side) and its
//! usec per call (commandstats) should not grow with the node, and a
//! second connection's PING must not stall while the bulk calls run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use crate::server::*;
use crate::Opts;

/// Payload of every execution here: small, the node's size is its count.
const PAYLOAD: &str = "operator-payload";
/// Lane of the executions that fail for good, of the completed ones, and
/// of the bulk-cancelled share.
const FAILED_LANE: &str = "opf";
const DONE_LANE: &str = "opd";
const CANCEL_LANE: &str = "opc";
/// FF.DELETE calls measured (one round trip each).
const DELETES: usize = 1000;

/// One bulk command driven to cursor 0.
#[derive(Default)]
pub struct Bulk {
    pub calls: usize,
    pub acted: usize,
    /// Client round trip per call (us).
    pub p50_us: u64,
    pub max_us: u64,
    /// commandstats usec per call, and per execution acted on.
    pub server_us_per_call: f64,
    /// The longest single call's server time (SLOWLOG).
    pub server_max_us: u64,
    pub server_us: u64,
    pub per_exec_us: f64,
    /// The server main thread's CPU per execution acted on (also counts
    /// replication and the AOF write of each replicated command).
    pub cpu_per_exec_us: f64,
}

pub struct Operators {
    pub executions: usize,
    pub failed: usize,
    pub completed: usize,
    pub build_s: f64,
    /// INFO flowfabric: client round trip median and max, commandstats.
    pub info_us: f64,
    pub info_max_us: f64,
    pub info_server_us: f64,
    pub info_server_max_us: u64,
    pub scan_calls: usize,
    pub scan_p50_us: f64,
    pub scan_max_us: f64,
    pub scan_server_us: f64,
    pub scan_server_max_us: u64,
    pub delete_us: f64,
    pub delete_rtt_us: f64,
    pub delete_server_max_us: u64,
    pub replay: Bulk,
    pub cancel: Bulk,
    /// Both bulk commands: server usec per execution acted on.
    pub bulk_per_exec_us: f64,
    pub worst_ping_ms: f64,
    pub idle_ping_ms: f64,
}

/// A pseudo-random partition for submission `i`, so every kind of
/// execution lands on every partition.
fn partition_of(i: usize) -> u64 {
    ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 256
}

/// A reply element as text (bulk, simple string or integer).
fn text(v: &Value, what: &str) -> String {
    match v {
        Value::BulkString(b) => {
            String::from_utf8(b.clone()).unwrap_or_else(|_| panic!("{what}: not UTF-8: {v:?}"))
        }
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => panic!("{what}: unexpected reply element {other:?}"),
    }
}

fn int(v: &Value, what: &str) -> usize {
    match v {
        Value::Int(n) if *n >= 0 => *n as usize,
        other => text(other, what)
            .parse()
            .unwrap_or_else(|_| panic!("{what}: not a count: {other:?}")),
    }
}

/// `INFO flowfabric`'s fields, without the `flowfabric_` prefix.
fn ff_info(c: &mut redis::Connection) -> HashMap<String, u64> {
    info(c, "flowfabric")
        .into_iter()
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("flowfabric_")?.to_string();
            Some((k, v.parse().ok()?))
        })
        .collect()
}

fn state_count(c: &mut redis::Connection, state: &str) -> usize {
    let f = ff_info(c);
    let key = format!("executions_{state}");
    *f.get(&key)
        .unwrap_or_else(|| panic!("INFO flowfabric has no {key}: {f:?}")) as usize
}

/// Claims every execution of `lane` (exactly `n` must be claimable): the
/// fences `[id, lease id, epoch, attempt id]`.
fn claim_all(c: &mut redis::Connection, lane: &str, n: usize) -> Vec<[String; 4]> {
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for _ in chunk {
            p.cmd("FF.CLAIM").arg("op-w").arg("op-i").arg(1).arg(lane);
        }
        let replies: Vec<Value> = p
            .query(c)
            .unwrap_or_else(|e| panic!("FF.CLAIM on {lane}: {e}"));
        for v in replies {
            let Value::Array(f) = &v else {
                panic!("FF.CLAIM on {lane}: expected a claim, got {v:?}");
            };
            assert!(f.len() >= 5, "FF.CLAIM reply too short: {v:?}");
            let s = |i: usize| text(&f[i], "FF.CLAIM");
            out.push([s(0), s(2), s(3), s(4)]);
        }
    }
    let v: Value = redis::cmd("FF.CLAIM")
        .arg("op-w")
        .arg("op-i")
        .arg(1)
        .arg(lane)
        .query(c)
        .unwrap_or_else(|e| panic!("FF.CLAIM on {lane}: {e}"));
    assert_eq!(v, Value::Nil, "{lane} held more than {n} executions");
    out
}

/// The node: `n` executions over every partition, 1% on FAILED_LANE
/// (MAX_RETRIES 0, claimed and failed), 10% on CANCEL_LANE, the rest on
/// 64 other lanes, all waiting; plus one completed execution per 66.
/// Returns (failed, cancel share, completed ids).
fn build(c: &mut redis::Connection, n: usize) -> (usize, usize, Vec<String>) {
    let (mut failed, mut share, mut done) = (0usize, 0usize, 0usize);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        let mut sent = 0;
        for &i in chunk {
            let target = format!("{{fp:{}}}", partition_of(i));
            if i % 100 == 0 {
                failed += 1;
                p.cmd("FF.SUBMIT")
                    .arg(&target)
                    .arg(FAILED_LANE)
                    .arg(PAYLOAD)
                    .arg("MAX_RETRIES")
                    .arg(0);
            } else if i % 10 == 1 {
                share += 1;
                p.cmd("FF.SUBMIT")
                    .arg(&target)
                    .arg(CANCEL_LANE)
                    .arg(PAYLOAD);
            } else {
                p.cmd("FF.SUBMIT")
                    .arg(&target)
                    .arg(format!("op{}", (i / 3) % 64))
                    .arg(PAYLOAD);
            }
            sent += 1;
            if i % 66 == 3 {
                done += 1;
                sent += 1;
                p.cmd("FF.SUBMIT").arg(&target).arg(DONE_LANE).arg(PAYLOAD);
            }
        }
        let ids: Vec<String> = p.query(c).unwrap_or_else(|e| panic!("FF.SUBMIT: {e}"));
        assert_eq!(ids.len(), sent, "one id per FF.SUBMIT");
    }
    for chunk in claim_all(c, FAILED_LANE, failed).chunks(500) {
        let mut p = redis::pipe();
        for j in chunk {
            p.cmd("FF.FAIL").arg(&j[0]).arg(&j[1]).arg(&j[2]).arg(&j[3]);
        }
        let replies: Vec<Value> = p.query(c).unwrap_or_else(|e| panic!("FF.FAIL: {e}"));
        for v in replies {
            let Value::Array(f) = &v else {
                panic!("FF.FAIL: {v:?}")
            };
            assert_eq!(
                f.first().map(|x| text(x, "FF.FAIL")).as_deref(),
                Some("failed"),
                "FF.FAIL with MAX_RETRIES 0 ends the execution failed: {v:?}"
            );
        }
    }
    let mut completed = Vec::with_capacity(done);
    for chunk in claim_all(c, DONE_LANE, done).chunks(500) {
        let mut p = redis::pipe();
        for j in chunk {
            p.cmd("FF.COMPLETE")
                .arg(&j[0])
                .arg(&j[1])
                .arg(&j[2])
                .arg(&j[3]);
            completed.push(j[0].clone());
        }
        let replies: Vec<String> = p.query(c).unwrap_or_else(|e| panic!("FF.COMPLETE: {e}"));
        assert!(
            replies.iter().all(|r| r == "OK"),
            "FF.COMPLETE replies: {replies:?}"
        );
    }
    (failed, share, completed)
}

/// A second connection pinging in a loop until stopped: the longest
/// round trip (ms).
struct Pinger {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<f64>,
}

impl Pinger {
    fn start(port: u16) -> Pinger {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut c = conn(port);
            let mut worst = 0f64;
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                let pong: String = redis::cmd("PING").query(&mut c).expect("PING");
                assert_eq!(pong, "PONG");
                worst = worst.max(t.elapsed().as_secs_f64() * 1000.0);
            }
            worst
        });
        Pinger { stop, handle }
    }

    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the PING thread")
    }
}

/// `cmd args... CURSOR c COUNT count` until the cursor is 0: its reply is
/// `[cursor, acted on, refused]`; every execution it selects must be acted
/// on. Server time is filled in by the caller from commandstats.
fn bulk(c: &mut redis::Connection, name: &str, args: &[&str], count: usize) -> Bulk {
    let main = MainThread::of(c);
    let cpu0 = main.cpu_ns();
    let mut cursor = "0".to_string();
    let mut lat = Vec::new();
    let (mut acted, mut most) = (0usize, 0usize);
    loop {
        let mut cmd = redis::cmd(name);
        cmd.arg(args)
            .arg("CURSOR")
            .arg(&cursor)
            .arg("COUNT")
            .arg(count);
        let t = Instant::now();
        let v: Value = cmd
            .query(c)
            .unwrap_or_else(|e| panic!("{name} {args:?} CURSOR {cursor}: {e}"));
        lat.push(t.elapsed().as_micros() as u64);
        let Value::Array(f) = &v else {
            panic!("{name}: expected [cursor, acted, refused], got {v:?}")
        };
        assert_eq!(
            f.len(),
            3,
            "{name}: expected [cursor, acted, refused], got {v:?}"
        );
        let (a, r) = (int(&f[1], name), int(&f[2], name));
        assert_eq!(r, 0, "{name} refused {r} executions it selected: {v:?}");
        assert!(a <= count, "{name} acted on {a} > COUNT {count}");
        acted += a;
        most = most.max(a);
        cursor = text(&f[0], name);
        if cursor == "0" {
            break;
        }
        assert!(lat.len() < 1_000_000, "{name} never reached cursor 0");
    }
    let cpu_ns = main.cpu_ns() - cpu0;
    let calls = lat.len();
    eprintln!(
        "  {name}: {acted} acted on in {calls} calls, at most {most} in one, {:.0} on average",
        acted as f64 / calls as f64
    );
    lat.sort_unstable();
    Bulk {
        calls,
        acted,
        p50_us: percentile(&lat, 0.5),
        max_us: lat.last().copied().unwrap_or(0),
        cpu_per_exec_us: cpu_ns as f64 / 1000.0 / acted.max(1) as f64,
        ..Bulk::default()
    }
}

/// Every command logged with its duration from here on (SLOWLOG: the
/// longest single call, which commandstats do not keep).
fn slowlog_all(c: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .arg("slowlog-max-len")
        .arg(500_000)
        .query(c)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(c).unwrap();
}

/// The longest logged call of each of `names` since the last reset (us),
/// naming the three longest on stderr; resets the log.
fn slowlog_max_us<const N: usize>(c: &mut redis::Connection, names: [&str; N]) -> [u64; N] {
    let v: Vec<Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(c).unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(c).unwrap();
    names.map(|name| {
        let mut all: Vec<u64> = v
            .iter()
            .filter_map(|e| {
                let Value::Array(f) = e else { return None };
                let Some(Value::Array(argv)) = f.get(3) else {
                    return None;
                };
                let cmd = text(argv.first()?, "SLOWLOG argv");
                let us = int(f.get(2)?, "SLOWLOG duration") as u64;
                cmd.eq_ignore_ascii_case(name).then_some(us)
            })
            .collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        let top: Vec<String> = all.iter().take(3).map(|us| format!("{us} us")).collect();
        eprintln!("  longest {name} calls (SLOWLOG): {}", top.join(", "));
        all.first().copied().unwrap_or(0)
    })
}

/// (usec, calls) of one command in commandstats.
fn stat(stats: &HashMap<String, (u64, u64)>, name: &str) -> (u64, u64) {
    stats.get(name).copied().unwrap_or((0, 0))
}

pub fn operators(o: &Opts) -> Operators {
    let mut c = conn(o.port);
    reset(&mut c);
    let n = o.operator_jobs;
    let t0 = Instant::now();
    let (failed, share, completed) = build(&mut c, n);
    let build_s = t0.elapsed().as_secs_f64();
    let waiting = n - failed;
    assert_eq!(state_count(&mut c, "failed"), failed, "failed on the node");
    assert_eq!(
        state_count(&mut c, "waiting"),
        waiting,
        "waiting on the node"
    );
    assert_eq!(
        state_count(&mut c, "completed"),
        completed.len(),
        "completed on the node"
    );
    let total = ff_info(&mut c)["executions"] as usize;
    assert_eq!(total, n + completed.len(), "executions on the node");
    // Let the last fsync and any background rewrite settle.
    std::thread::sleep(Duration::from_millis(500));

    slowlog_all(&mut c);

    // INFO flowfabric (documented as O(partitions)).
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let mut lat = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let s: String = redis::cmd("INFO").arg("flowfabric").query(&mut c).unwrap();
        lat.push(t.elapsed().as_micros() as u64);
        assert!(
            s.contains("flowfabric_executions_failed:"),
            "INFO flowfabric: {s}"
        );
    }
    let (us, calls) = stat(&commandstats(&mut c), "info");
    assert_eq!(calls, 50, "INFO calls in commandstats");
    lat.sort_unstable();
    let (info_us, info_max_us) = (percentile(&lat, 0.5), *lat.last().unwrap());
    let info_server_us = us as f64 / calls as f64;
    let [info_server_max_us] = slowlog_max_us(&mut c, ["INFO"]);

    // FF.SCAN STATE failed COUNT 100 over the whole node.
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let mut cursor = "0".to_string();
    let mut found = HashSet::new();
    let mut returned = 0usize;
    let mut lat = Vec::new();
    loop {
        let t = Instant::now();
        let v: Value = redis::cmd("FF.SCAN")
            .arg("STATE")
            .arg("failed")
            .arg("CURSOR")
            .arg(&cursor)
            .arg("COUNT")
            .arg(100)
            .query(&mut c)
            .unwrap_or_else(|e| panic!("FF.SCAN CURSOR {cursor}: {e}"));
        lat.push(t.elapsed().as_micros() as u64);
        let Value::Array(f) = &v else {
            panic!("FF.SCAN: expected [cursor, [ids]], got {v:?}")
        };
        let [next, Value::Array(ids)] = f.as_slice() else {
            panic!("FF.SCAN: expected [cursor, [ids]], got {v:?}")
        };
        assert!(ids.len() <= 100, "FF.SCAN COUNT 100 gave {} ids", ids.len());
        returned += ids.len();
        for id in ids {
            found.insert(text(id, "FF.SCAN id"));
        }
        cursor = text(next, "FF.SCAN cursor");
        if cursor == "0" {
            break;
        }
        assert!(lat.len() < 1_000_000, "FF.SCAN never reached cursor 0");
    }
    assert_eq!(returned, found.len(), "FF.SCAN returned an id twice");
    assert_eq!(
        found.len(),
        failed,
        "FF.SCAN STATE failed found {} of the {failed} failed executions",
        found.len()
    );
    let (us, calls) = stat(&commandstats(&mut c), "ff.scan");
    assert_eq!(calls as usize, lat.len(), "FF.SCAN calls in commandstats");
    let scan_server_us = us as f64 / calls.max(1) as f64;
    let [scan_server_max_us] = slowlog_max_us(&mut c, ["FF.SCAN"]);
    let scan_calls = lat.len();
    lat.sort_unstable();
    let (scan_p50_us, scan_max_us) = (percentile(&lat, 0.5), *lat.last().unwrap());

    // FF.DELETE of completed executions, one round trip each.
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let deletes = DELETES.min(completed.len());
    let mut lat = Vec::new();
    for id in &completed[..deletes] {
        let t = Instant::now();
        let r: String = redis::cmd("FF.DELETE")
            .arg(id)
            .query(&mut c)
            .unwrap_or_else(|e| panic!("FF.DELETE {id}: {e}"));
        lat.push(t.elapsed().as_micros() as u64);
        assert_eq!(r, "OK", "FF.DELETE {id}");
    }
    let (us, calls) = stat(&commandstats(&mut c), "ff.delete");
    assert_eq!(calls as usize, deletes, "FF.DELETE calls in commandstats");
    let delete_us = us as f64 / calls.max(1) as f64;
    lat.sort_unstable();
    let delete_rtt_us = percentile(&lat, 0.5) as f64;
    let [delete_server_max_us] = slowlog_max_us(&mut c, ["FF.DELETE"]);
    assert_eq!(
        state_count(&mut c, "completed"),
        completed.len() - deletes,
        "completed left after FF.DELETE"
    );
    if let Some(id) = completed.first() {
        let e = redis::cmd("FF.GET")
            .arg(id)
            .query::<Value>(&mut c)
            .expect_err("FF.GET of a deleted execution must fail");
        assert_eq!(
            e.code(),
            Some("EXECUTION_NOT_FOUND"),
            "FF.GET of a deleted execution: {e}"
        );
    }

    // The bulk commands, with a second connection pinging throughout. The
    // same PING loop on the idle server first: the machine's own noise.
    let idle = Pinger::start(o.port);
    std::thread::sleep(Duration::from_secs(1));
    let idle_ping_ms = idle.stop();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let pinger = Pinger::start(o.port);
    let mut replay = bulk(&mut c, "FF.BULKREPLAY", &["STATE", "failed"], 1000);
    let mut cancel = bulk(
        &mut c,
        "FF.BULKCANCEL",
        &["STATE", "waiting", "LANE", CANCEL_LANE],
        1000,
    );
    let worst_ping_ms = pinger.stop();
    let stats = commandstats(&mut c);
    for (b, name) in [
        (&mut replay, "ff.bulkreplay"),
        (&mut cancel, "ff.bulkcancel"),
    ] {
        let (us, calls) = stat(&stats, name);
        assert_eq!(calls as usize, b.calls, "{name} calls in commandstats");
        b.server_us = us;
        b.server_us_per_call = us as f64 / calls.max(1) as f64;
        b.per_exec_us = us as f64 / b.acted.max(1) as f64;
    }
    [replay.server_max_us, cancel.server_max_us] =
        slowlog_max_us(&mut c, ["FF.BULKREPLAY", "FF.BULKCANCEL"]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(10_000)
        .query(&mut c)
        .unwrap();
    assert_eq!(
        replay.acted, failed,
        "FF.BULKREPLAY replayed every failed execution"
    );
    assert_eq!(
        cancel.acted, share,
        "FF.BULKCANCEL cancelled the lane's share"
    );
    assert_eq!(
        state_count(&mut c, "failed"),
        0,
        "failed left after the replay"
    );
    assert_eq!(
        state_count(&mut c, "cancelled"),
        share,
        "cancelled after the bulk cancel"
    );
    assert_eq!(
        state_count(&mut c, "waiting"),
        waiting - share + failed,
        "waiting after the replay and the cancel"
    );
    let bulk_per_exec_us =
        (replay.server_us + cancel.server_us) as f64 / (replay.acted + cancel.acted).max(1) as f64;
    Operators {
        executions: total,
        failed,
        completed: completed.len(),
        build_s,
        info_us: info_us as f64,
        info_max_us: info_max_us as f64,
        info_server_us,
        info_server_max_us,
        scan_calls,
        scan_p50_us: scan_p50_us as f64,
        scan_max_us: scan_max_us as f64,
        scan_server_us,
        scan_server_max_us,
        delete_us,
        delete_rtt_us,
        delete_server_max_us,
        replay,
        cancel,
        bulk_per_exec_us,
        worst_ping_ms,
        idle_ping_ms,
    }
}
