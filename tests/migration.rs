//! Moving a busy partition between primaries of a three-primary cluster,
//! by legacy MIGRATE (the partition key moves as one DUMP/RESTORE value):
//! nothing is lost or duplicated, delays and leases still fall due on the
//! new owner, and claims there see the moved work.
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

fn node_id(n: &Server) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut n.conn())
        .unwrap()
}

fn keyslot(c: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(c)
        .unwrap()
}

/// A partition tag whose slot the first primary serves (slots 0..=5460).
fn tag_on_first(c: &mut redis::Connection) -> String {
    (0..256)
        .map(|n| format!("{{fp:{n}}}"))
        .find(|t| keyslot(c, t) <= 5460)
        .unwrap()
}

fn server_ms(c: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

/// Fills `tag`'s partition on `c`: `waiting` claimable jobs, `delayed`
/// jobs due in `due_in` ms, and `leased` jobs claimed under a lease of
/// `due_in` ms. Returns every id.
fn busy_partition(
    c: &mut redis::Connection,
    tag: &str,
    waiting: usize,
    delayed: usize,
    leased: usize,
    due_in: u64,
) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut p = redis::pipe();
    for i in 0..leased {
        p.cmd("FF.SUBMIT")
            .arg(tag)
            .arg("busy")
            .arg(format!("leased-{i}"));
    }
    let got: Vec<String> = p.query(c).unwrap();
    ids.extend(got);
    let mut p = redis::pipe();
    for _ in 0..leased {
        p.cmd("FF.CLAIM")
            .arg("w0")
            .arg("w0-i")
            .arg(1)
            .arg("busy")
            .arg("LEASE")
            .arg(due_in)
            .ignore();
    }
    let _: () = p.query(c).unwrap();
    let at = (server_ms(c) + due_in).to_string();
    let mut p = redis::pipe();
    for i in 0..delayed {
        p.cmd("FF.SUBMIT")
            .arg(tag)
            .arg("busy")
            .arg(format!("delayed-{i}"))
            .arg("DELAY_UNTIL")
            .arg(&at);
    }
    for i in 0..waiting {
        p.cmd("FF.SUBMIT")
            .arg(tag)
            .arg("busy")
            .arg(format!("waiting-{i}"));
    }
    let got: Vec<String> = p.query(c).unwrap();
    ids.extend(got);
    ids
}

/// Claims (and completes) everything `lane` has on `c`, blocking briefly
/// until `want` jobs were seen; returns their ids.
fn drain(c: &mut redis::Connection, want: usize, within: Duration) -> Vec<String> {
    let t = Instant::now();
    let mut got = Vec::new();
    while got.len() < want && t.elapsed() < within {
        if let Some(j) = claim(c, "w1", &["busy"], &["BLOCK", "200"]) {
            assert_eq!(complete(c, &j, None).unwrap(), "OK");
            got.push(j.id);
        }
    }
    got
}

/// Legacy migration of `slot` from `src` to `dst`: IMPORTING/MIGRATING,
/// MIGRATE every key of the slot, then NODE on both. Returns how long the
/// MIGRATE call took.
fn legacy_migrate(src: &Server, dst: &Server, slot: i64) -> Duration {
    let (mut s, mut d) = (src.conn(), dst.conn());
    let (sid, did) = (node_id(src), node_id(dst));
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("IMPORTING")
        .arg(&sid)
        .query(&mut d)
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("MIGRATING")
        .arg(&did)
        .query(&mut s)
        .unwrap();
    let keys: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(1000)
        .query(&mut s)
        .unwrap();
    let t = Instant::now();
    let _: String = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(dst.port)
        .arg("")
        .arg(0)
        .arg(30_000)
        .arg("KEYS")
        .arg(&keys)
        .query(&mut s)
        .unwrap();
    let took = t.elapsed();
    for c in [&mut d, &mut s] {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("NODE")
            .arg(&did)
            .query(c)
            .unwrap();
    }
    took
}

#[test]
fn legacy_migrate_moves_a_busy_partition() {
    let nodes = form_cluster();
    let mut c0 = nodes[0].conn();
    let tag = tag_on_first(&mut c0);
    let slot = keyslot(&mut c0, &tag);
    let ids = busy_partition(&mut c0, &tag, 3000, 1000, 1000, 1500);
    assert_eq!(ids.len(), 5000);
    let took = legacy_migrate(&nodes[0], &nodes[1], slot);
    eprintln!("MIGRATE of a 5,000-job partition took {took:?}");
    let mut c1 = nodes[1].conn();
    assert_eq!(records_in(&mut c1, &tag), 5000, "every record moved");
    // The old owner holds none of it, and refuses its keys.
    let err = redis::cmd("FF.GET")
        .arg(ids.iter().next().unwrap())
        .query::<redis::Value>(&mut c0)
        .unwrap_err();
    assert!(err.to_string().to_uppercase().contains("MOVED"), "{err}");
    // Waiting work is claimable at once; delays and leases fall due on the
    // new owner and are claimed there too. Each job exactly once.
    let got = drain(&mut c1, 5000, Duration::from_secs(20));
    let unique: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "claimed twice");
    assert_eq!(unique, ids, "every job claimed on the new owner");
    for n in &nodes {
        assert!(!n.log().contains("ASSERTION"), "{}", n.log());
    }
}

/// Atomic slot migration (CLUSTER MIGRATESLOTS) of a busy partition while
/// jobs keep arriving and a worker on the source keeps claiming: every job
/// is completed once, delays and leases fall due on the new owner.
#[test]
fn atomic_slot_migration_moves_a_busy_partition_under_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let nodes = form_cluster();
    // The target's replica follows the import as the target applies it.
    let replica = add_cluster_replica(&nodes, &nodes[1]);
    let mut c0 = nodes[0].conn();
    let tag = tag_on_first(&mut c0);
    let slot = keyslot(&mut c0, &tag);
    let mut ids = busy_partition(&mut c0, &tag, 3000, 1000, 1000, 2500);
    let urls = node_urls(&nodes);
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(Mutex::new(Vec::<String>::new()));
    // Jobs keep arriving, routed by the cluster client.
    let submitter = {
        let (client, stop, tag) = (client.clone(), stop.clone(), tag.clone());
        std::thread::spawn(move || {
            let mut cc = client.get_connection().unwrap();
            let mut sent = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let id: String = redis::cmd("FF.SUBMIT")
                    .arg(&tag)
                    .arg("busy")
                    .arg("late")
                    .query(&mut cc)
                    .unwrap();
                sent.push(id);
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
    };
    // A worker on the source claims and completes (its completes follow
    // the slot to the new owner).
    let worker = {
        let (client, stop, done, port) = (
            client.clone(),
            stop.clone(),
            completed.clone(),
            nodes[0].port,
        );
        std::thread::spawn(move || {
            let mut local = connect(port);
            let mut cc = client.get_connection().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let Some(j) = claim(&mut local, "src", &["busy"], &["LEASE", "60000"]) else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let ok: String = fenced("FF.COMPLETE", &j).query(&mut cc).unwrap();
                assert_eq!(ok, "OK");
                done.lock().unwrap().push(j.id);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let target = node_id(&nodes[1]);
    let started = Instant::now();
    let _: redis::Value = redis::cmd("CLUSTER")
        .arg("MIGRATESLOTS")
        .arg("SLOTSRANGE")
        .arg(slot)
        .arg(slot)
        .arg("NODE")
        .arg(&target)
        .query(&mut c0)
        .unwrap();
    let probe = ids.iter().next().unwrap().clone();
    let mut c1 = nodes[1].conn();
    wait_until(
        || {
            redis::cmd("FF.GET")
                .arg(&probe)
                .query::<redis::Value>(&mut c1)
                .is_ok()
        },
        Duration::from_secs(30),
        "the new owner to serve the slot",
    );
    eprintln!(
        "MIGRATESLOTS moved the busy slot in {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    ids.extend(submitter.join().unwrap());
    worker.join().unwrap();
    let done_on_source: HashSet<String> = completed.lock().unwrap().iter().cloned().collect();
    let left = ids.len() - done_on_source.len();
    let got = drain(&mut c1, left, Duration::from_secs(30));
    let mut seen = done_on_source.clone();
    for id in &got {
        assert!(seen.insert(id.clone()), "{id} completed twice");
    }
    assert_eq!(seen, ids, "every job completed exactly once");
    assert_eq!(
        records_in(&mut c1, &tag),
        ids.len(),
        "every record on the new owner"
    );
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c1).unwrap();
    let key = format!("ff:idx:{tag}");
    let mut r = replica.conn();
    let _: () = redis::cmd("READONLY").query(&mut r).unwrap();
    let value_digest = |c: &mut redis::Connection| -> Vec<String> {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(&key)
            .query(c)
            .unwrap()
    };
    wait_until(
        || value_digest(&mut c1) == value_digest(&mut r),
        Duration::from_secs(10),
        "the target's replica to hold the same partition",
    );
    for n in &nodes {
        assert!(!n.log().contains("ASSERTION"), "{}", n.log());
    }
}

/// The longest PING round trip on `port` until `stop`.
fn worst_ping(
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let mut c = connect(port);
        let mut worst = Duration::ZERO;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query(&mut c).unwrap();
            worst = worst.max(t.elapsed());
        }
        worst
    })
}

fn fill(c: &mut redis::Connection, tag: &str, jobs: usize) {
    let payload = vec![b'p'; 1024];
    for _ in 0..jobs / 1000 {
        let mut p = redis::pipe();
        for _ in 0..1000 {
            p.cmd("FF.SUBMIT")
                .arg(tag)
                .arg("big")
                .arg(&payload)
                .ignore();
        }
        let _: () = p.query(c).unwrap();
    }
}

/// Measures (prints) how long each way of moving a 100,000-job partition
/// (1 KiB payloads) holds up the source and the target: the longest PING
/// each answers meanwhile. Run by scripts/migration-stalls.
#[test]
#[ignore]
fn measure_migration_stalls() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let jobs: usize = std::env::var("FF_MIGRATION_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let nodes = form_cluster();
    let mut c0 = nodes[0].conn();
    let mut tags = (0..256)
        .map(|n| format!("{{fp:{n}}}"))
        .filter(|t| keyslot(&mut c0, t) <= 5460);
    let (legacy_tag, asm_tag) = (tags.next().unwrap(), tags.next().unwrap());
    for (how, tag) in [("legacy MIGRATE", &legacy_tag), ("MIGRATESLOTS", &asm_tag)] {
        fill(&mut c0, tag, jobs);
        let slot = keyslot(&mut c0, tag);
        let stop = Arc::new(AtomicBool::new(false));
        let pings = [
            worst_ping(nodes[0].port, stop.clone()),
            worst_ping(nodes[1].port, stop.clone()),
        ];
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        if how == "legacy MIGRATE" {
            legacy_migrate(&nodes[0], &nodes[1], slot);
        } else {
            let _: redis::Value = redis::cmd("CLUSTER")
                .arg("MIGRATESLOTS")
                .arg("SLOTSRANGE")
                .arg(slot)
                .arg(slot)
                .arg("NODE")
                .arg(node_id(&nodes[1]))
                .query(&mut c0)
                .unwrap();
            let key = format!("ff:idx:{tag}");
            let mut c1 = nodes[1].conn();
            wait_until(
                || {
                    redis::cmd("FF.LIST")
                        .arg(tag)
                        .query::<redis::Value>(&mut c1)
                        .is_ok()
                        && redis::cmd("EXISTS")
                            .arg(&key)
                            .query::<i64>(&mut c1)
                            .unwrap_or(0)
                            == 1
                },
                Duration::from_secs(120),
                "the migration",
            );
        }
        let took = t.elapsed();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let [src, dst] = pings.map(|h| h.join().unwrap());
        eprintln!(
            "{how}: {jobs} jobs of 1 KiB moved in {took:?}; longest PING on the source {src:?}, on the target {dst:?}"
        );
        let mut c1 = nodes[1].conn();
        assert_eq!(records_in(&mut c1, tag), jobs);
    }
}
