//! The lifecycle against a plain list queue: submit, claim, complete vs
//! RPUSH, LPOP, INCR, with server time from commandstats and from the main
//! thread's CPU; and a lifecycle with a retry.

use std::time::Instant;

use crate::server::*;
use crate::Opts;

pub const PAYLOAD: usize = 4096;
pub const RESULT: usize = 64;

pub struct Run {
    pub server_us_per_job: f64,
    /// Main-thread CPU per job over the submit and drain phases.
    pub cpu_us_per_job: f64,
    pub jobs_per_s: f64,
    pub bytes_pending: f64,
    pub bytes_done: f64,
    pub breakdown: Vec<(String, f64)>,
}

/// Runs `submit` then `drain`, measuring wall time and main-thread CPU of
/// both (memory is read between them, outside the CPU window).
struct Passes {
    wall_s: f64,
    cpu_ns: u64,
    pending: i64,
}

fn timed(
    c: &mut redis::Connection,
    submit: impl FnOnce(&mut redis::Connection),
    drain: impl FnOnce(),
) -> Passes {
    let main = MainThread::of(c);
    let (t0, cpu0) = (Instant::now(), main.cpu_ns());
    submit(c);
    let (submit_s, cpu1) = (t0.elapsed().as_secs_f64(), main.cpu_ns());
    let pending = settle_memory(c);
    let (t1, cpu2) = (Instant::now(), main.cpu_ns());
    drain();
    let (drain_s, cpu3) = (t1.elapsed().as_secs_f64(), main.cpu_ns());
    Passes {
        wall_s: submit_s + drain_s,
        cpu_ns: (cpu1 - cpu0) + (cpu3 - cpu2),
        pending,
    }
}

fn submit_all(c: &mut redis::Connection, jobs: usize, mut add: impl FnMut(&mut redis::Pipeline)) {
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(200) {
        let mut p = redis::pipe();
        for _ in chunk {
            add(&mut p);
        }
        let _: () = p.query(c).unwrap();
    }
}

fn workers(
    o: &Opts,
    work: impl Fn(usize, &mut redis::Connection) -> usize + Send + Sync + Copy + 'static,
) -> usize {
    let handles: Vec<_> = (0..o.workers)
        .map(|w| {
            let port = o.port;
            std::thread::spawn(move || work(w, &mut conn(port)))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

/// Claims one job of `lane` for worker `w` (optionally blocking): the
/// claim reply's fields as strings.
fn claim(
    c: &mut redis::Connection,
    w: usize,
    lane: &str,
    block: Option<u64>,
) -> Option<Vec<String>> {
    let mut cmd = redis::cmd("FF.CLAIM");
    cmd.arg(format!("w{w}")).arg("i").arg(1).arg(lane);
    if let Some(ms) = block {
        cmd.arg("BLOCK").arg(ms);
    }
    // Positional: id, payload, lease id, lease epoch, attempt id (the
    // fence), attempt index, lease expiry, resumed.
    let redis::Value::Array(f) = cmd.query(c).unwrap() else {
        return None;
    };
    Some(
        f.iter()
            .map(|v| match v {
                redis::Value::BulkString(_) => redis::from_redis_value(v).unwrap(),
                redis::Value::Int(i) => i.to_string(),
                other => panic!("{other:?}"),
            })
            .collect(),
    )
}

/// A holder's fenced call on a claim reply: id, lease id, epoch, attempt id.
pub fn fenced(name: &str, f: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(&f[0]).arg(&f[2]).arg(&f[3]).arg(&f[4]);
    cmd
}

pub fn ff_run(o: &Opts) -> Run {
    let mut c = conn(o.port);
    reset(&mut c);
    let base = settle_memory(&mut c);
    let payload = vec![b'p'; PAYLOAD];
    let mut done = 0;
    let passes = timed(
        &mut c,
        |c| {
            submit_all(c, o.jobs, |p| {
                p.cmd("FF.SUBMIT")
                    .arg("*")
                    .arg("bench")
                    .arg(&payload)
                    .ignore();
            })
        },
        || {
            done = workers(o, |w, c| {
                let result = vec![b'r'; RESULT];
                let mut done = 0usize;
                while let Some(f) = claim(c, w, "bench", None) {
                    let _: String = fenced("FF.COMPLETE", &f)
                        .arg("RESULT")
                        .arg(&result)
                        .query(c)
                        .unwrap();
                    done += 1;
                }
                done
            })
        },
    );
    assert_eq!(done, o.jobs, "every job processed once");
    let stats = commandstats(&mut c);
    let completed = settle_memory(&mut c);
    let n = o.jobs as f64;
    let names = ["ff.submit", "ff.claim", "ff.complete"];
    Run {
        server_us_per_job: usec_of(&stats, &names) as f64 / n,
        cpu_us_per_job: passes.cpu_ns as f64 / 1000.0 / n,
        jobs_per_s: n / passes.wall_s,
        bytes_pending: (passes.pending - base) as f64 / n - PAYLOAD as f64,
        bytes_done: (completed - base) as f64 / n - (PAYLOAD + RESULT) as f64,
        breakdown: per_call(&stats, &names),
    }
}

pub fn list_run(o: &Opts) -> Run {
    let mut c = conn(o.port);
    reset(&mut c);
    let base = settle_memory(&mut c);
    let payload = vec![b'p'; PAYLOAD];
    let mut done = 0;
    let passes = timed(
        &mut c,
        |c| {
            submit_all(c, o.jobs, |p| {
                p.cmd("RPUSH").arg("bench:list").arg(&payload).ignore();
            })
        },
        || {
            done = workers(o, |_, c| {
                let mut done = 0usize;
                loop {
                    let v: Option<Vec<u8>> = redis::cmd("LPOP").arg("bench:list").query(c).unwrap();
                    if v.is_none() {
                        break;
                    }
                    let _: i64 = redis::cmd("INCR").arg("bench:done").query(c).unwrap();
                    done += 1;
                }
                done
            })
        },
    );
    assert_eq!(done, o.jobs);
    let stats = commandstats(&mut c);
    let n = o.jobs as f64;
    let names = ["rpush", "lpop", "incr"];
    Run {
        server_us_per_job: usec_of(&stats, &names) as f64 / n,
        cpu_us_per_job: passes.cpu_ns as f64 / 1000.0 / n,
        jobs_per_s: n / passes.wall_s,
        bytes_pending: (passes.pending - base) as f64 / n - PAYLOAD as f64,
        bytes_done: 0.0,
        breakdown: per_call(&stats, &names),
    }
}

/// The median pass by server time.
pub fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.server_us_per_job.total_cmp(&b.server_us_per_job));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// A lifecycle with one failure and retry per job: submit, claim, fail
/// (retry after 1 ms), claim, complete. Server us per job from commandstats
/// (the timer's promotions run outside any command and are not counted).
pub fn retry_run(o: &Opts) -> f64 {
    let mut c = conn(o.port);
    reset(&mut c);
    let payload = vec![b'p'; PAYLOAD];
    submit_all(&mut c, o.jobs, |p| {
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
    });
    let done = workers(o, |w, c| {
        let mut done = 0usize;
        while let Some(f) = claim(c, w, "retry", Some(200)) {
            let cmd = if f[5] == "0" {
                "FF.FAIL"
            } else {
                "FF.COMPLETE"
            };
            let _: redis::Value = fenced(cmd, &f).query(c).unwrap();
            if cmd == "FF.COMPLETE" {
                done += 1;
            }
        }
        done
    });
    assert_eq!(done, o.jobs, "every job retried once and completed");
    let stats = commandstats(&mut c);
    usec_of(&stats, &["ff.submit", "ff.claim", "ff.fail", "ff.complete"]) as f64 / o.jobs as f64
}

/// The lifecycle with the event feed off and on, alternating pass by pass
/// so a noisy stretch of the machine hits both: (off, on) medians.
pub fn feed_cost(o: &Opts) -> (Run, Run) {
    let feed = |on: bool| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("flowfabric.events")
            .arg(if on { "yes" } else { "no" })
            .query(&mut conn(o.port))
            .unwrap();
    };
    let (mut offs, mut ons) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        feed(false);
        offs.push(ff_run(o));
        feed(true);
        ons.push(ff_run(o));
    }
    (median(offs), median(ons))
}
