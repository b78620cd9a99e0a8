//! Benchmark: FlowFabric's lifecycle against a plain list queue on the same
//! server, in one run. Server cost comes from INFO commandstats (usec per
//! call), which is stable on a noisy machine. Run through scripts/bench.
//!
//! Last line of output: one JSON object for scripts to read.

use std::collections::HashMap;
use std::time::Instant;

const PAYLOAD: usize = 4096;
const RESULT: usize = 64;

struct Opts {
    port: u16,
    jobs: usize,
    workers: usize,
    rounds: usize,
    delayed_jobs: usize,
    stall_jobs: usize,
    /// Only the lifecycle passes (scripts/profile: the instruction counts
    /// then cover exactly what the ratio compares).
    lifecycle_only: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        port: 6379,
        jobs: 10_000,
        workers: 4,
        rounds: 3,
        delayed_jobs: 10_000,
        stall_jobs: 1_000_000,
        lifecycle_only: false,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--port" => o.port = v.parse().expect("port"),
            "--jobs" => o.jobs = v.parse().expect("jobs"),
            "--workers" => o.workers = v.parse().expect("workers"),
            "--rounds" => o.rounds = v.parse::<usize>().expect("rounds").max(1),
            "--delayed-jobs" => o.delayed_jobs = v.parse::<usize>().expect("delayed-jobs").max(1),
            "--stall-jobs" => o.stall_jobs = v.parse::<usize>().expect("stall-jobs").max(1),
            "--phases" => {
                o.lifecycle_only = match v.as_str() {
                    "all" => false,
                    "lifecycle" => true,
                    other => panic!("--phases is all or lifecycle, not {other}"),
                }
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn info(c: &mut redis::Connection, section: &str) -> HashMap<String, String> {
    let s: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    s.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn used_memory(c: &mut redis::Connection) -> i64 {
    info(c, "memory")["used_memory"].parse().unwrap()
}

/// Total usec and calls per command since the last CONFIG RESETSTAT.
fn commandstats(c: &mut redis::Connection) -> HashMap<String, (u64, u64)> {
    let mut out = HashMap::new();
    for (k, v) in info(c, "commandstats") {
        let Some(name) = k.strip_prefix("cmdstat_") else {
            continue;
        };
        let mut calls = 0;
        let mut usec = 0;
        for kv in v.split(',') {
            match kv.split_once('=') {
                Some(("calls", n)) => calls = n.parse().unwrap_or(0),
                Some(("usec", n)) => usec = n.parse().unwrap_or(0),
                _ => {}
            }
        }
        out.insert(name.to_lowercase(), (usec, calls));
    }
    out
}

fn usec_of(stats: &HashMap<String, (u64, u64)>, names: &[&str]) -> u64 {
    names.iter().map(|n| stats.get(*n).map_or(0, |s| s.0)).sum()
}

/// Server microseconds per call of each named command.
fn per_call(stats: &HashMap<String, (u64, u64)>, names: &[&str]) -> Vec<(String, f64)> {
    names
        .iter()
        .map(|k| {
            let (us, calls) = stats.get(*k).copied().unwrap_or((0, 0));
            (k.to_string(), us as f64 / calls.max(1) as f64)
        })
        .collect()
}

fn reset(c: &mut redis::Connection) {
    let _: () = redis::cmd("FLUSHALL").arg("SYNC").query(c).unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
}

fn settle_memory(c: &mut redis::Connection) -> i64 {
    std::thread::sleep(std::time::Duration::from_millis(200));
    used_memory(c)
}

struct Run {
    server_us_per_job: f64,
    jobs_per_s: f64,
    bytes_pending: f64,
    bytes_done: f64,
    breakdown: Vec<(String, f64)>,
}

fn ff_run(o: &Opts) -> Run {
    let mut c = conn(o.port);
    reset(&mut c);
    let base = settle_memory(&mut c);
    let payload = vec![b'p'; PAYLOAD];
    let t0 = Instant::now();
    for chunk in (0..o.jobs).collect::<Vec<_>>().chunks(200) {
        let mut p = redis::pipe();
        for _ in chunk {
            p.cmd("FF.SUBMIT")
                .arg("*")
                .arg("bench")
                .arg(&payload)
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let submit_s = t0.elapsed().as_secs_f64();
    let pending = settle_memory(&mut c);
    let t1 = Instant::now();
    let handles: Vec<_> = (0..o.workers)
        .map(|w| {
            let port = o.port;
            std::thread::spawn(move || {
                let mut c = conn(port);
                let result = vec![b'r'; RESULT];
                let mut done = 0usize;
                loop {
                    let v: redis::Value = redis::cmd("FF.CLAIM")
                        .arg(format!("w{w}"))
                        .arg("i")
                        .arg(1)
                        .arg("bench")
                        .query(&mut c)
                        .unwrap();
                    // Positional: id, payload, attempt index, attempt id,
                    // lease id, lease epoch, lease expiry.
                    let redis::Value::Array(f) = v else { break };
                    let get = |i: usize| -> String { redis::from_redis_value(&f[i]).unwrap() };
                    let _: String = redis::cmd("FF.COMPLETE")
                        .arg(get(0))
                        .arg(get(4))
                        .arg(get(5))
                        .arg(get(3))
                        .arg("RESULT")
                        .arg(&result)
                        .query(&mut c)
                        .unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(done, o.jobs, "every job processed once");
    let drain_s = t1.elapsed().as_secs_f64();
    let stats = commandstats(&mut c);
    let completed = settle_memory(&mut c);
    let n = o.jobs as f64;
    let names = ["ff.submit", "ff.claim", "ff.complete"];
    Run {
        server_us_per_job: usec_of(&stats, &names) as f64 / n,
        jobs_per_s: n / (submit_s + drain_s),
        bytes_pending: (pending - base) as f64 / n - PAYLOAD as f64,
        bytes_done: (completed - base) as f64 / n - (PAYLOAD + RESULT) as f64,
        breakdown: per_call(&stats, &names),
    }
}

fn list_run(o: &Opts) -> Run {
    let mut c = conn(o.port);
    reset(&mut c);
    let base = settle_memory(&mut c);
    let payload = vec![b'p'; PAYLOAD];
    let t0 = Instant::now();
    for chunk in (0..o.jobs).collect::<Vec<_>>().chunks(200) {
        let mut p = redis::pipe();
        for _ in chunk {
            p.cmd("RPUSH").arg("bench:list").arg(&payload).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let submit_s = t0.elapsed().as_secs_f64();
    let pending = settle_memory(&mut c);
    let t1 = Instant::now();
    let handles: Vec<_> = (0..o.workers)
        .map(|_| {
            let port = o.port;
            std::thread::spawn(move || {
                let mut c = conn(port);
                let mut done = 0usize;
                loop {
                    let v: Option<Vec<u8>> =
                        redis::cmd("LPOP").arg("bench:list").query(&mut c).unwrap();
                    if v.is_none() {
                        break;
                    }
                    let _: i64 = redis::cmd("INCR").arg("bench:done").query(&mut c).unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(done, o.jobs);
    let drain_s = t1.elapsed().as_secs_f64();
    let stats = commandstats(&mut c);
    let n = o.jobs as f64;
    let names = ["rpush", "lpop", "incr"];
    Run {
        server_us_per_job: usec_of(&stats, &names) as f64 / n,
        jobs_per_s: n / (submit_s + drain_s),
        bytes_pending: (pending - base) as f64 / n - PAYLOAD as f64,
        bytes_done: 0.0,
        breakdown: per_call(&stats, &names),
    }
}

fn server_ms(c: &mut redis::Connection) -> u64 {
    let (sec, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    sec * 1000 + us / 1000
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

/// Timer lateness: jobs due over two seconds; how long after its due time
/// each became claimable (the promotion time the server recorded).
fn delay_lateness(o: &Opts) -> (u64, u64, u64) {
    let mut c = conn(o.port);
    reset(&mut c);
    let start = server_ms(&mut c) + 1000;
    let mut due = Vec::with_capacity(o.delayed_jobs);
    let mut ids = Vec::with_capacity(o.delayed_jobs);
    for chunk in (0..o.delayed_jobs).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for &i in chunk {
            let at = start + (i as u64 * 2000) / o.delayed_jobs as u64;
            due.push(at);
            p.cmd("FF.SUBMIT")
                .arg("*")
                .arg("late")
                .arg("x")
                .arg("DELAY_UNTIL")
                .arg(at);
        }
        let got: Vec<String> = p.query(&mut c).unwrap();
        ids.extend(got);
    }
    while server_ms(&mut c) < start + 2200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut late = Vec::with_capacity(ids.len());
    for (chunk, dues) in ids.chunks(500).zip(due.chunks(500)) {
        let mut p = redis::pipe();
        for id in chunk {
            p.cmd("FF.GET").arg(id);
        }
        let all: Vec<redis::Value> = p.query(&mut c).unwrap();
        for (v, &d) in all.iter().zip(dues) {
            let redis::Value::Array(f) = v else {
                panic!("{v:?}")
            };
            let get = |k: &str| -> String {
                let i = f
                    .chunks(2)
                    .position(|p| redis::from_redis_value::<String>(&p[0]).unwrap() == k)
                    .unwrap();
                redis::from_redis_value(&f[i * 2 + 1]).unwrap()
            };
            assert_eq!(
                get("public_state"),
                "waiting",
                "every delayed job was promoted"
            );
            let at: u64 = get("last_transition_at").parse().unwrap();
            late.push(at.saturating_sub(d));
        }
    }
    late.sort_unstable();
    (
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late.last().copied().unwrap_or(0),
    )
}

/// A lifecycle with one failure and retry per job: submit, claim, fail
/// (retry after 1 ms), claim, complete. Server us per job from commandstats
/// (the timer's promotions run outside any command and are not counted).
fn retry_run(o: &Opts) -> f64 {
    let mut c = conn(o.port);
    reset(&mut c);
    let payload = vec![b'p'; PAYLOAD];
    for chunk in (0..o.jobs).collect::<Vec<_>>().chunks(200) {
        let mut p = redis::pipe();
        for _ in chunk {
            p.cmd("FF.SUBMIT")
                .arg("*")
                .arg("retry")
                .arg(&payload)
                .arg("MAX_RETRIES")
                .arg(1)
                .arg("BACKOFF")
                .arg("FIXED")
                .arg(1)
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let handles: Vec<_> = (0..o.workers)
        .map(|w| {
            let port = o.port;
            std::thread::spawn(move || {
                let mut c = conn(port);
                let mut done = 0usize;
                loop {
                    let v: redis::Value = redis::cmd("FF.CLAIM")
                        .arg(format!("w{w}"))
                        .arg("i")
                        .arg(1)
                        .arg("retry")
                        .arg("BLOCK")
                        .arg(200)
                        .query(&mut c)
                        .unwrap();
                    let redis::Value::Array(f) = v else { break };
                    let get = |i: usize| -> String { redis::from_redis_value(&f[i]).unwrap() };
                    let cmd = if get(2) == "0" {
                        "FF.FAIL"
                    } else {
                        "FF.COMPLETE"
                    };
                    let _: redis::Value = redis::cmd(cmd)
                        .arg(get(0))
                        .arg(get(4))
                        .arg(get(5))
                        .arg(get(3))
                        .query(&mut c)
                        .unwrap();
                    if cmd == "FF.COMPLETE" {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(done, o.jobs, "every job retried once and completed");
    let stats = commandstats(&mut c);
    usec_of(&stats, &["ff.submit", "ff.claim", "ff.fail", "ff.complete"]) as f64 / o.jobs as f64
}

/// Event-loop stall: many jobs due at the same instant; the longest PING
/// round trip a concurrent client sees while the timer promotes them all.
/// Returns (worst ping ms, ms until the last sampled job was promoted,
/// whether submission finished before the due time).
fn timer_stall(o: &Opts) -> (f64, f64, u64, bool, u64) {
    let mut c = conn(o.port);
    reset(&mut c);
    // The same PING loop on the idle server first: the machine's own noise.
    let mut idle_worst = 0f64;
    let mut ping = conn(o.port);
    let idle_start = std::time::Instant::now();
    while idle_start.elapsed() < std::time::Duration::from_secs(2) {
        let t = std::time::Instant::now();
        let _: String = redis::cmd("PING").query(&mut ping).unwrap();
        idle_worst = idle_worst.max(t.elapsed().as_secs_f64() * 1000.0);
    }
    let at = server_ms(&mut c) + 2000 + (o.stall_jobs as u64) / 150;
    let mut sample = Vec::new();
    for chunk in (0..o.stall_jobs).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        for _ in chunk {
            p.cmd("FF.SUBMIT")
                .arg("*")
                .arg("stall")
                .arg("x")
                .arg("DELAY_UNTIL")
                .arg(at);
        }
        let ids: Vec<String> = p.query(&mut c).unwrap();
        sample.extend(ids.into_iter().step_by(97));
    }
    let in_time = server_ms(&mut c) < at;
    let mut ping = conn(o.port);
    while server_ms(&mut c) + 20 < at {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Ping through the whole promotion window; nothing else talks to the
    // server meanwhile.
    let window = std::time::Duration::from_millis(3000 + (o.stall_jobs as u64) / 100);
    let mut worst = 0f64;
    let started = std::time::Instant::now();
    while started.elapsed() < window {
        let t = std::time::Instant::now();
        let _: String = redis::cmd("PING").query(&mut ping).unwrap();
        worst = worst.max(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut last_promoted = 0u64;
    for chunk in sample.chunks(500) {
        let mut p = redis::pipe();
        for id in chunk {
            p.cmd("FF.GET").arg(id);
        }
        let all: Vec<redis::Value> = p.query(&mut c).unwrap();
        for v in all {
            let redis::Value::Array(f) = v else {
                panic!("{v:?}")
            };
            let state: String = redis::from_redis_value(&f[11]).unwrap();
            assert_eq!(state, "waiting", "promoted within the window");
            let t: String = redis::from_redis_value(&f[37]).unwrap();
            last_promoted = last_promoted.max(t.parse().unwrap_or(0));
        }
    }
    let v: redis::Value = redis::cmd("FF.VERSION").query(&mut c).unwrap();
    let redis::Value::Array(f) = v else { panic!() };
    let i = f
        .chunks(2)
        .position(|p| redis::from_redis_value::<String>(&p[0]).unwrap() == "timer_max_firing_us")
        .unwrap();
    let firing_us: u64 = redis::from_redis_value(&f[i * 2 + 1]).unwrap();
    (
        worst,
        idle_worst,
        last_promoted.saturating_sub(at),
        in_time,
        firing_us,
    )
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.server_us_per_job.total_cmp(&b.server_us_per_job));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

fn main() {
    let o = opts();
    println!(
        "bench: {} jobs, {} B payload, {} worker connections, port {}",
        o.jobs, PAYLOAD, o.workers, o.port
    );
    // A first pass of each warms the server's heap, so neither measured pass
    // pays for growing it (page faults would land inside command time).
    ff_run(&o);
    list_run(&o);
    // Measured passes alternate so a noisy stretch of the machine hits both;
    // each side reports its median pass by server time.
    let mut ffs = Vec::new();
    let mut lists = Vec::new();
    for _ in 0..o.rounds {
        ffs.push(ff_run(&o));
        lists.push(list_run(&o));
    }
    let spread = |runs: &[Run]| {
        let v: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.2}", r.server_us_per_job))
            .collect();
        v.join(" ")
    };
    println!(
        "passes (server us/job): flowfabric [{}], list [{}]",
        spread(&ffs),
        spread(&lists)
    );
    let ff = median(ffs);
    let list = median(lists);
    for (label, r) in [("flowfabric", &ff), ("list queue", &list)] {
        println!(
            "{label:>11}: {:.2} server us/job, {:.0} jobs/s end to end, {:.0} B/pending job beyond payload",
            r.server_us_per_job, r.jobs_per_s, r.bytes_pending
        );
        for (k, us) in &r.breakdown {
            println!("             {k:<12} {us:.2} us/call");
        }
    }
    println!(
        "flowfabric: {:.0} B/completed job beyond payload and result",
        ff.bytes_done
    );
    let ratio = ff.server_us_per_job / list.server_us_per_job.max(1e-9);
    println!("ratio flowfabric/list server time: {ratio:.2}");
    if o.lifecycle_only {
        return;
    }
    let retry_us = retry_run(&o);
    println!("retry lifecycle (submit, claim, fail, claim, complete): {retry_us:.2} server us/job");
    let (p50, p99, max) = delay_lateness(&o);
    println!(
        "timer lateness over {} delayed jobs: p50 {p50} ms, p99 {p99} ms, max {max} ms",
        o.delayed_jobs
    );
    let (stall, idle, took, in_time, firing_us) = timer_stall(&o);
    println!(
        "timer stall: {} jobs due at once promoted in {took} ms; longest PING meanwhile {stall:.2} ms (idle server beforehand: {idle:.2} ms); longest timer firing {firing_us} us{}",
        o.stall_jobs,
        if in_time { "" } else { " (submission overran the due time)" }
    );
    println!(
        "{{\"ff_server_us_per_job\":{:.3},\"list_server_us_per_job\":{:.3},\"ff_list_ratio\":{:.3},\"ff_jobs_per_s\":{:.0},\"list_jobs_per_s\":{:.0},\"ff_bytes_per_pending_job\":{:.0},\"ff_bytes_per_completed_job\":{:.0},\"list_bytes_per_pending_job\":{:.0},\"retry_server_us_per_job\":{:.3},\"delay_lateness_p50_ms\":{},\"delay_lateness_p99_ms\":{},\"delay_lateness_max_ms\":{},\"timer_stall_max_ms\":{:.3},\"idle_ping_max_ms\":{:.3},\"timer_max_firing_ms\":{:.3}}}",
        ff.server_us_per_job,
        list.server_us_per_job,
        ratio,
        ff.jobs_per_s,
        list.jobs_per_s,
        ff.bytes_pending,
        ff.bytes_done,
        list.bytes_pending,
        retry_us,
        p50,
        p99,
        max,
        stall,
        idle,
        firing_us as f64 / 1000.0
    );
}
