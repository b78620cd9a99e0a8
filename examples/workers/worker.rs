//! A complete FlowFabric worker on the `redis` crate: registration and heartbeat, a
//! blocking claim loop, lease renewal while a job runs, a graceful drain on SIGTERM, a
//! complete that survives a lost reply, and an idempotent producer.
//!
//!   cargo run --release --example worker -- [host:port] [lane] [jobs to submit first]
//!
//! Single server here. In a cluster FF.CLAIM has no key: run one loop per primary on a
//! connection to that node (a ClusterConnection would route an unknown command by its
//! first argument, the worker id); keyed calls route by the execution id or `{fp:N}` tag.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use redis::{Cmd, Connection as Conn, FromRedisValue, RedisResult as R};

const WORKER: &str = "rs-worker";
const TTL: &str = "15000"; // ms of liveness, renewed by a heartbeat every TICK
const LEASE: &str = "15000"; // ms of lease, renewed every TICK while the job runs
const TICK: Duration = Duration::from_secs(5);
const BLOCK: &str = "2000"; // ms a claim waits; a read timeout, if set, must exceed it

/// A claimed job: what every fenced call starts with (id, lease id, lease epoch, attempt
/// id: the claim reply's elements 1 and 3 to 5), and its payload.
#[derive(Clone)]
struct Job([String; 4], Vec<u8>);

/// id, payload, lease id, lease epoch, attempt id, attempt index, lease expiry, resumed.
type Claim = (String, Vec<u8>, String, String, String, u64, u64, u64);

fn ff<T: FromRedisValue>(c: &mut Conn, args: &[&str]) -> R<T> {
    Cmd::new().arg(args).query(c)
}

fn fenced<T: FromRedisValue>(c: &mut Conn, j: &Job, name: &str, rest: &[&str]) -> R<T> {
    Cmd::new().arg(name).arg(&j.0).arg(rest).query(c)
}

/// A producer: a retry (after a timeout) with the same key returns the first id.
fn submit(c: &mut Conn, lane: &str, payload: &str, key: &str) -> R<String> {
    let tag: String = ff(c, &["FF.PARTITION", lane])?; // '*' also works on one server
    let mut args = vec!["FF.SUBMIT", &tag, lane, payload];
    args.extend(["IDEMPOTENCY", key, "86400000"]);
    ff(c, &args)
}

/// True once done, also when an earlier send succeeded and only its reply was lost.
fn complete(c: &mut Conn, job: &Job, result: &str) -> R<bool> {
    match fenced::<()>(c, job, "FF.COMPLETE", &["RESULT", result]) {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("EXECUTION_NOT_ACTIVE") => {
            let has = |kv: &str| e.detail().unwrap_or("").split(' ').any(|t| t == kv);
            let mine = format!("attempt_id={}", job.0[3]);
            Ok(has("terminal_outcome=success") && has(&mine))
        }
        Err(e) => Err(e),
    }
}

fn register(c: &mut Conn, instance: &str, lane: &str) -> R<()> {
    let args = ["FF.REGISTER", instance, WORKER, TTL, "LANES", "1", lane];
    ff(c, &args)
}

fn main() -> R<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, or: &str| args.get(i).cloned().unwrap_or_else(|| or.to_string());
    let (addr, lane, jobs) = (arg(1, "127.0.0.1:6379"), arg(2, "email"), arg(3, "0"));
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let (mut c, mut keeper) = (client.get_connection()?, client.get_connection()?);
    for i in 0..jobs.parse().unwrap_or(0) {
        let payload = format!("{{\"n\":{i}}}");
        let key = format!("rs-{lane}-{i}");
        println!("{}", submit(&mut c, &lane, &payload, &key)?);
    }
    let instance = format!("rs-{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false)); // SIGTERM: finish the job in hand, then exit
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    register(&mut c, &instance, &lane)?;
    // A keeper thread heartbeats and renews the lease of the job in hand.
    let (tx, rx) = mpsc::channel::<Option<Job>>();
    let (me, my_lane, mut held) = (instance.clone(), lane.clone(), None::<Job>);
    std::thread::spawn(move || loop {
        match rx.recv_timeout(TICK) {
            Ok(job) => held = job,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if ff::<()>(&mut keeper, &["FF.HEARTBEAT", &me]).is_err() {
                    let _ = register(&mut keeper, &me, &my_lane); // WORKER_NOT_FOUND or _DEAD
                }
                let renew = |j: &Job| fenced::<u64>(&mut keeper, j, "FF.RENEW", &["LEASE", LEASE]);
                if let Some(Err(e)) = held.as_ref().map(renew) {
                    eprintln!("lease lost: {e}"); // expired or revoked: the complete fails too
                    held = None;
                }
            }
        }
    });
    let mut claim = vec!["FF.CLAIM", WORKER, &instance, "1", &lane];
    claim.extend(["LEASE", LEASE, "BLOCK", BLOCK]);
    while !stop.load(Ordering::Relaxed) {
        let reply: Option<Claim> = ff(&mut c, &claim)?;
        let Some((id, payload, lease, epoch, attempt, ..)) = reply else {
            continue;
        };
        let job = Job([id, lease, epoch, attempt], payload);
        println!("claimed {}", job.0[0]);
        let _ = tx.send(Some(job.clone()));
        let result = format!("{{\"bytes\":{}}}", job.1.len()); // the application's part
        let done = complete(&mut c, &job, &result)?;
        let _ = tx.send(None);
        let said = if done { "completed" } else { "not completed" };
        println!("{said} {}", job.0[0]);
    }
    println!("drained");
    Ok(())
}
