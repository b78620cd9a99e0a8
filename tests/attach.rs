//! A replica that attaches while the primary works under load ends up
//! identical to it: plain claims and completes, claims handed to blocked
//! claimers, delays falling due and leases running out (timer batches and
//! the reclaims after them) all keep flowing while the replica syncs, by
//! disk, diskless with and without a delay, and while a background save is
//! already running. Each scenario runs FF_ATTACH_ROUNDS times (default 1;
//! scripts/attach-loop runs hundreds).
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn rounds() -> usize {
    std::env::var("FF_ATTACH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn server_ms(c: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

/// Load on `port` until `stop`: each pass submits a plain job, a job due a
/// few ms later, and a job claimed under a 15 ms lease that runs out and is
/// reclaimed; completes what it claims.
fn load(port: u16, stop: Arc<AtomicBool>, seed: usize) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut c = connect(port);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            submit(&mut c, "load", "x", &[]);
            let soon = (server_ms(&mut c) + 3).to_string();
            submit(&mut c, "load", "later", &["DELAY_UNTIL", &soon]);
            submit(&mut c, "short", "x", &[]);
            if let Some(j) = claim(&mut c, "lw", &["short"], &["LEASE", "15"]) {
                if (n + seed).is_multiple_of(3) {
                    // Kept: runs out, then a claim below reclaims it.
                    drop(j);
                } else {
                    let _ = complete(&mut c, &j, Some("r"));
                }
            }
            for lane in ["load", "short"] {
                if let Some(j) = claim(&mut c, "lw", &[lane], &["LEASE", "3600000"]) {
                    let _ = complete(&mut c, &j, Some("r"));
                }
            }
            n += 1;
        }
        n
    })
}

/// Claimers that block and are woken by the load's submits and promotions.
fn blocked_claimers(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut c = connect(port);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Some(j) = claim(
                &mut c,
                "bw",
                &["load", "short"],
                &["BLOCK", "20", "LEASE", "3600000"],
            ) {
                let _ = complete(&mut c, &j, Some("b"));
                n += 1;
            }
        }
        n
    })
}

fn attach_under_load(primary_args: &[&str], before_attach: impl Fn(&mut redis::Connection)) {
    let lease = ["--flowfabric.lease-ms", "3600000"];
    let mut args = lease.to_vec();
    args.extend_from_slice(primary_args);
    let primary = Server::start(&args);
    let stop = Arc::new(AtomicBool::new(false));
    let threads = vec![
        load(primary.port, stop.clone(), 0),
        load(primary.port, stop.clone(), 1),
        blocked_claimers(primary.port, stop.clone()),
    ];
    std::thread::sleep(Duration::from_millis(60));
    before_attach(&mut primary.conn());
    let replica = Server::start_replica(&primary, &lease);
    std::thread::sleep(Duration::from_millis(120));
    stop.store(true, Ordering::Relaxed);
    let done: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(done > 0);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    // Whatever leases are still out run out and are reclaimed on the
    // primary while the replica follows.
    std::thread::sleep(Duration::from_millis(50));
    while let Some(j) = claim(&mut p, "end", &["load", "short"], &["LEASE", "3600000"]) {
        complete(&mut p, &j, None).unwrap();
    }
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p).unwrap();
    let t = Instant::now();
    while digest(&mut p) != digest(&mut r) {
        if t.elapsed() > Duration::from_secs(10) {
            let keys: Vec<String> = redis::cmd("KEYS").arg("ff:idx:*").query(&mut p).unwrap();
            for k in keys {
                let d = |c: &mut redis::Connection| -> Vec<String> {
                    redis::cmd("DEBUG")
                        .arg("DIGEST-VALUE")
                        .arg(&k)
                        .query(c)
                        .unwrap()
                };
                if d(&mut p) != d(&mut r) {
                    let (_, ids): (String, Vec<String>) = redis::cmd("FF.LIST")
                        .arg(k.trim_start_matches("ff:idx:"))
                        .arg("COUNT")
                        .arg(10000)
                        .query(&mut p)
                        .unwrap();
                    for id in ids {
                        let (a, b) = (get(&mut p, &id), get(&mut r, &id));
                        if a != b {
                            eprintln!("{id} differs:\n primary {a:?}\n replica {b:?}");
                        }
                    }
                }
            }
            panic!("replica digest differs after the attach");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn attach_by_disk() {
    for _ in 0..rounds() {
        attach_under_load(&["--repl-diskless-sync", "no"], |_| {});
    }
}

#[test]
fn attach_diskless() {
    for _ in 0..rounds() {
        attach_under_load(
            &[
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
            ],
            |_| {},
        );
    }
}

#[test]
fn attach_diskless_with_delay() {
    for _ in 0..rounds() {
        attach_under_load(
            &[
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "1",
            ],
            |_| {},
        );
    }
}

#[test]
fn attach_while_a_save_runs() {
    for _ in 0..rounds() {
        attach_under_load(&["--repl-diskless-sync", "no"], |c| {
            // Slow the save down so the replica arrives while it runs.
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("rdb-key-save-delay")
                .arg(100_000)
                .query(c)
                .unwrap();
            let _: String = redis::cmd("BGSAVE").query(c).unwrap();
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("rdb-key-save-delay")
                .arg(0)
                .query(c)
                .unwrap();
        });
    }
}
