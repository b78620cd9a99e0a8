//! Replication and persistence reproduce state exactly: a replica's digest
//! matches its primary's; AOF, RDB and a rewritten AOF bring every
//! execution back; a corrupt RDB fails the load cleanly.
mod common;

use std::time::{Duration, Instant};

use common::*;

/// Leases that outlast any stall of the test machine: these tests compare
/// states across restarts and replicas, and a lease running out in a pause
/// (a paused VM's clock jumps ahead) changes the state under comparison.
/// Leases meant to run out say so with LEASE.
const LONG_LEASE: [&str; 2] = ["--flowfabric.lease-ms", "3600000"];

fn start(extra: &[&str]) -> Server {
    let mut args = LONG_LEASE.to_vec();
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Suspends `j` with `opts`; the first waitpoint's id and token.
fn suspend_one(c: &mut redis::Connection, j: &Job, opts: &[&str]) -> (String, String) {
    let mut cmd = fenced("FF.SUSPEND", j);
    for o in opts {
        cmd.arg(*o);
    }
    let v: Vec<redis::Value> = cmd.query(c).unwrap();
    let wps: Vec<Vec<String>> = redis::from_redis_value(&v[2]).unwrap();
    (wps[0][0].clone(), wps[0][2].clone())
}

/// A mixed workload touching every write path; returns all execution ids.
fn workload(srv: &Server, tag: &str) -> Vec<String> {
    let mut c = srv.conn();
    let mut ids = Vec::new();
    let far = 4_000_000_000_000u64.to_string();
    for i in 0..40 {
        let prio = (i % 7).to_string();
        let idem = format!("{tag}-idem-{}", i % 5);
        let mut extra: Vec<&str> = vec!["PRIORITY", &prio, "TAG", "app.k", "v"];
        if i % 4 == 0 {
            extra.extend(["IDEMPOTENCY", &idem, "600000"]);
        }
        if i % 9 == 0 {
            extra.extend(["DELAY_UNTIL", &far]);
        }
        if i % 6 == 0 {
            extra.extend(["CAPS", "gpu", "MAX_RETRIES", "2", "BACKOFF", "FIXED", "100"]);
        }
        ids.push(submit(
            &mut c,
            if i % 2 == 0 { "a" } else { "b" },
            &format!("payload-{i}"),
            &extra,
        ));
    }
    // A blocked claimer served by a submit (the reply-callback path).
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        claim(&mut c, "blocked", &["late"], &["BLOCK", "5000"]).map(|j| j.id)
    });
    std::thread::sleep(Duration::from_millis(100));
    let late = submit(&mut c, "late", "late", &[]);
    assert_eq!(waiter.join().unwrap(), Some(late.clone()));
    ids.push(late);
    let mut jobs = Vec::new();
    while let Some(j) = claim(
        &mut c,
        "w",
        &["a", "b"],
        &["CAPS", "gpu", "LEASE", "3600000"],
    ) {
        jobs.push(j);
        if jobs.len() == 25 {
            break;
        }
    }
    for (i, j) in jobs.iter().enumerate() {
        match i % 3 {
            0 => {
                complete(&mut c, j, Some(&format!("result-{i}"))).unwrap();
            }
            1 => {
                let _: i64 = fenced("FF.RENEW", j).query(&mut c).unwrap();
            }
            _ => {}
        }
    }
    let (lf, ld) = (format!("f-{tag}"), format!("d-{tag}"));
    // Failures (one retried, one terminal) and cancels.
    let retried = submit(
        &mut c,
        &lf,
        "f",
        &["MAX_RETRIES", "1", "BACKOFF", "FIXED", "600000"],
    );
    let j = claim(&mut c, "w", &[lf.as_str()], &[]).unwrap();
    assert_eq!(j.id, retried);
    let _: redis::Value = fenced("FF.FAIL", &j).query(&mut c).unwrap();
    submit(&mut c, &lf, "g", &[]);
    let j = claim(&mut c, "w", &[lf.as_str()], &[]).unwrap();
    let _: redis::Value = fenced("FF.FAIL", &j)
        .arg("REASON")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let cancelled = submit(&mut c, &lf, "h", &[]);
    let _: String = redis::cmd("FF.CANCEL")
        .arg(&cancelled)
        .arg("REASON")
        .arg("ops")
        .query(&mut c)
        .unwrap();
    ids.extend([retried, cancelled]);
    // Delay, revoke and priority changes.
    let parked = submit(&mut c, &ld, "p", &[]);
    let j = claim(&mut c, "w", &[ld.as_str()], &[]).unwrap();
    let _: String = fenced("FF.DELAY", &j)
        .arg(4_000_000_000_000u64)
        .query(&mut c)
        .unwrap();
    let revoked = submit(&mut c, &ld, "r", &[]);
    claim(&mut c, "w", &[ld.as_str()], &[]).unwrap();
    let _: String = redis::cmd("FF.REVOKE").arg(&revoked).query(&mut c).unwrap();
    let bumped = submit(&mut c, &ld, "b", &[]);
    let _: i64 = redis::cmd("FF.PRIORITY")
        .arg(&bumped)
        .arg(77)
        .query(&mut c)
        .unwrap();
    ids.extend([parked.clone(), revoked, bumped.clone()]);
    // Tags, block, replay, progress.
    let _: i64 = redis::cmd("FF.SETTAGS")
        .arg(&bumped)
        .arg("ops.owner")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("FF.BLOCK")
        .arg(&bumped)
        .arg("REASON")
        .arg("hold")
        .query(&mut c)
        .unwrap();
    let replayed = submit(&mut c, &ld, "z", &["PRIORITY", "9000"]);
    let j = claim(&mut c, "w", &[ld.as_str()], &[]).unwrap();
    assert_eq!(j.id, replayed);
    let _: String = fenced("FF.PROGRESS", &j).arg(50).query(&mut c).unwrap();
    complete(&mut c, &j, Some("z")).unwrap();
    let _: String = redis::cmd("FF.REPLAY")
        .arg(&replayed)
        .query(&mut c)
        .unwrap();
    ids.push(replayed);
    // Suspensions: a secret, a signal that resumes, a pending waitpoint
    // with a buffered signal, a composite waiting, a timeout that fires.
    let ls = format!("s-{tag}");
    let _: redis::Value = redis::cmd("FF.ROTATESECRET")
        .arg("k1")
        .arg("00112233445566778899aabbccddeeff")
        .query(&mut c)
        .unwrap();
    for i in 0..4 {
        ids.push(submit(&mut c, &ls, &format!("s{i}"), &[]));
    }
    let j = claim(&mut c, "w", &[ls.as_str()], &[]).unwrap();
    let (wp, tok) = suspend_one(&mut c, &j, &["CONDITION", "SIGNAL", "go"]);
    let _: redis::Value = redis::cmd("FF.SIGNAL")
        .arg(&j.id)
        .arg(&wp)
        .arg(&tok)
        .arg("go")
        .arg("PAYLOAD")
        .arg(&b"\x00\xffbin"[..])
        .query(&mut c)
        .unwrap();
    let j = claim(&mut c, "w", &[ls.as_str()], &[]).unwrap();
    // A waitpoint closed by hand (replicated with its time pinned).
    let spare: Vec<redis::Value> = fenced("FF.WAITPOINT", &j).query(&mut c).unwrap();
    let spare: String = redis::from_redis_value(&spare[0]).unwrap();
    let _: String = redis::cmd("FF.CLOSEWP")
        .arg(&j.id)
        .arg(&spare)
        .query(&mut c)
        .unwrap();
    let pend: Vec<redis::Value> = fenced("FF.WAITPOINT", &j).query(&mut c).unwrap();
    let pid: String = redis::from_redis_value(&pend[0]).unwrap();
    let ptok: String = redis::from_redis_value(&pend[2]).unwrap();
    let _: redis::Value = redis::cmd("FF.SIGNAL")
        .arg(&j.id)
        .arg(&pid)
        .arg(&ptok)
        .arg("early")
        .query(&mut c)
        .unwrap();
    let j = claim(&mut c, "w", &[ls.as_str()], &[]).unwrap();
    let (wp, tok) = suspend_one(
        &mut c,
        &j,
        &[
            "CONDITION",
            "COUNT",
            "2",
            "SOURCES",
            "ANY",
            "1",
            "k",
            "WAITPOINT",
            "k",
            "TIMEOUT",
            "3600000",
        ],
    );
    let _: redis::Value = redis::cmd("FF.SIGNAL")
        .arg(&j.id)
        .arg(&wp)
        .arg(&tok)
        .arg("x")
        .arg("SOURCE")
        .arg("user")
        .arg("alice")
        .arg("IDEMPOTENCY")
        .arg("once")
        .query(&mut c)
        .unwrap();
    let j = claim(&mut c, "w", &[ls.as_str()], &[]).unwrap();
    suspend_one(&mut c, &j, &["TIMEOUT", "20", "ON_TIMEOUT", "auto_resume"]);
    std::thread::sleep(Duration::from_millis(60));
    // Output frames in every mode: a stream closed by completion, one
    // trimmed (best effort), one left open, and a rolling summary.
    let lo = format!("{tag}-out");
    for _ in 0..3 {
        ids.push(submit(&mut c, &lo, "o", &[]));
    }
    for round in 0..3 {
        let j = claim(&mut c, "w", &[lo.as_str()], &[]).unwrap();
        for k in 0..150 {
            let mode = match round {
                0 => ["durable", "summary"][k % 2],
                1 => "best_effort",
                _ => "summary",
            };
            let payload = if mode == "summary" {
                format!("{{\"n\":{k},\"tok\":{{\"last\":\"{k}\"}}}}")
            } else {
                format!("frame-{k}")
            };
            let mut cmd = fenced("FF.APPEND", &j);
            cmd.arg("token").arg(&payload).arg("MODE").arg(mode);
            if mode == "best_effort" {
                cmd.arg("MAXLEN").arg("64");
            }
            let _: redis::Value = cmd.query(&mut c).unwrap();
        }
        if round < 2 {
            complete(&mut c, &j, None).unwrap();
        }
    }
    // An expired lease marked by a late complete (error reply, state change).
    let j = claim(&mut c, "slow", &["a", "b"], &["LEASE", "10"]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(complete(&mut c, &j, None).is_err());
    ids.dedup();
    ids
}

fn snapshot(c: &mut redis::Connection, ids: &[String]) -> Vec<Fields> {
    ids.iter().map(|id| get(c, id)).collect()
}

/// Every key with its value's digest, so a mismatch names the key.
fn key_digests(c: &mut redis::Connection) -> std::collections::BTreeMap<String, String> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.into_iter()
        .map(|k| {
            let d: Vec<String> = redis::cmd("DEBUG")
                .arg("DIGEST-VALUE")
                .arg(&k)
                .query(c)
                .unwrap();
            (k, d.concat())
        })
        .collect()
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).unwrap()
}

#[test]
fn replica_digest_matches_primary() {
    let primary = start(&[]);
    let replica = Server::start_replica(&primary, &LONG_LEASE);
    let mut r = replica.conn();
    let ids = workload(&primary, "rep");
    let mut p = primary.conn();
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p).unwrap();
    wait_for(
        || digest(&mut p) == digest(&mut r),
        "replica digest to match",
    );
    assert_eq!(snapshot(&mut p, &ids), snapshot(&mut r, &ids));

    // Promoted, the replica serves the remaining work: its claim hints were
    // kept up to date by the replicated commands.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .unwrap();
    let mut left_on_primary = 0;
    while claim(&mut p, "x", &["a", "b"], &[]).is_some() {
        left_on_primary += 1;
    }
    assert!(left_on_primary > 0);
    let mut left_on_replica = 0;
    while claim(&mut r, "x", &["a", "b"], &[]).is_some() {
        left_on_replica += 1;
    }
    assert_eq!(left_on_primary, left_on_replica);
}

#[test]
fn aof_restart_restores_everything() {
    let mut srv = start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let ids = workload(&srv, "aof");
    let mut c = srv.conn();
    let (d, snap) = (digest(&mut c), snapshot(&mut c, &ids));
    let keys = key_digests(&mut c);
    drop(c);
    srv.kill();
    srv.restart();
    let mut c = srv.conn();
    assert_eq!(snapshot(&mut c, &ids), snap);
    assert_eq!(key_digests(&mut c), keys);
    assert_eq!(digest(&mut c), d);
    assert!(
        claim(&mut c, "after", &["a", "b"], &[]).is_some(),
        "claims work after replay"
    );
}

#[test]
fn rdb_restart_restores_everything() {
    let mut srv = start(&[]);
    let ids = workload(&srv, "rdb");
    let mut c = srv.conn();
    // Due after the restart: the loaded data must arm the timer.
    let (sec, _): (u64, u64) = redis::cmd("TIME").query(&mut c).unwrap();
    let later = submit(
        &mut c,
        "later",
        "x",
        &["DELAY_UNTIL", &((sec + 1) * 1000 + 500).to_string()],
    );
    let (d, snap) = (digest(&mut c), snapshot(&mut c, &ids));
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let keys = key_digests(&mut c);
    drop(c);
    srv.kill();
    srv.restart();
    let mut c = srv.conn();
    assert_eq!(snapshot(&mut c, &ids), snap);
    assert_eq!(key_digests(&mut c), keys);
    assert_eq!(digest(&mut c), d);
    assert!(
        claim(&mut c, "after", &["a", "b"], &[]).is_some(),
        "claims work after load"
    );
    let j =
        claim(&mut c, "after", &["later"], &["BLOCK", "5000"]).expect("promoted after the restart");
    assert_eq!(j.id, later);
    // DEBUG RELOAD round-trips through RDB in place.
    let d2 = digest(&mut c);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(digest(&mut c), d2);
}

#[test]
fn rewritten_aof_restores_everything() {
    let mut srv = start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut ids = workload(&srv, "rw1");
    let mut c = srv.conn();
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    wait_for(
        || {
            let i = info(&mut c, "persistence");
            i.contains("aof_rewrite_in_progress:0") && i.contains("aof_rewrite_scheduled:0")
        },
        "AOF rewrite",
    );
    ids.extend(workload(&srv, "rw2"));
    let (d, snap) = (digest(&mut c), snapshot(&mut c, &ids));
    let keys = key_digests(&mut c);
    drop(c);
    srv.kill();
    srv.restart();
    let mut c = srv.conn();
    assert_eq!(snapshot(&mut c, &ids), snap);
    assert_eq!(key_digests(&mut c), keys);
    assert_eq!(digest(&mut c), d);
}

#[test]
fn corrupt_rdb_fails_the_load_cleanly() {
    let mut srv = start(&["--rdbcompression", "no", "--rdbchecksum", "no"]);
    let mut c = srv.conn();
    submit(&mut c, "corruptlane", "x", &[]);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(c);
    srv.kill();
    let path = srv.dir.join("dump.rdb");
    let mut rdb = std::fs::read(&path).unwrap();
    let needle = b"\x0b\x00\x00\x00corruptlane";
    let pos = rdb
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("record in RDB");
    rdb[pos..pos + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    std::fs::write(&path, rdb).unwrap();
    let mut bad = Server::spawn_raw(srv.dir.clone(), &["--rdbchecksum", "no"]);
    let status = bad
        .wait_exit(Duration::from_secs(10))
        .expect("server exits on a corrupt RDB");
    // Valkey refuses to start; its RDB checker then exits (with 0, as it
    // cannot judge module data). What matters: an exit, not a crash, and
    // the module's message in the log.
    assert!(
        status.code().is_some(),
        "exited, not killed by a signal: {status:?}"
    );
    let log = bad.log();
    assert!(
        log.contains("flowfabric: corrupt execution record in RDB: truncated record"),
        "{log}"
    );
    assert!(
        !log.contains("Ready to accept connections tcp")
            || log.matches("Ready to accept").count() == 1,
        "{log}"
    );
}

#[test]
fn partition_count_change_is_refused() {
    let mut srv = start(&[]);
    let mut c = srv.conn();
    submit(&mut c, "q", "x", &[]);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(c);
    srv.kill();
    let mut other = Server::spawn_raw(srv.dir.clone(), &["--flowfabric.partitions", "64"]);
    let status = other
        .wait_exit(Duration::from_secs(10))
        .expect("server refuses the data");
    assert!(
        status.code().is_some(),
        "exited, not killed by a signal: {status:?}"
    );
    assert!(
        other.log().contains("laid out for 256 partitions"),
        "{}",
        other.log()
    );
}

#[test]
fn restored_keys_are_claimable_and_timed() {
    // What slot migration does: DUMP on one node, RESTORE on another.
    let a = start(&[]);
    let b = start(&[]);
    let mut ca = a.conn();
    let mut cb = b.conn();
    let (sec, _): (u64, u64) = redis::cmd("TIME").query(&mut ca).unwrap();
    let now_id = submit(&mut ca, "m", "now", &[]);
    let later_id = submit(
        &mut ca,
        "m",
        "later",
        &["DELAY_UNTIL", &((sec + 1) * 1000 + 300).to_string()],
    );
    let tag: String = redis::cmd("FF.PARTITION").arg("m").query(&mut ca).unwrap();
    // One key holds the partition: its records and index move together.
    let key = format!("ff:idx:{tag}");
    let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query(&mut ca).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg(&key)
        .arg(0)
        .arg(dump)
        .query(&mut cb)
        .unwrap();
    assert_eq!(claim(&mut cb, "w", &["m"], &[]).unwrap().id, now_id);
    let j = claim(&mut cb, "w", &["m"], &["BLOCK", "5000"]).expect("the restored delay fires");
    assert_eq!(j.id, later_id);
}

fn changes_since_save(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn save_points_count_module_writes() {
    // RDB-only persistence: a save point must see FlowFabric's writes even
    // on a node that replicates nothing.
    let mut srv = start(&["--save", "1 1", "--appendonly", "no"]);
    let mut c = srv.conn();
    let id = submit(&mut c, "sp", "x", &[]);
    assert!(
        changes_since_save(&mut c) >= 1,
        "the submit counts as a change"
    );
    let t = Instant::now();
    while changes_since_save(&mut c) > 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "no background save");
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = digest(&mut c);
    drop(c);
    srv.kill();
    srv.restart();
    let mut c = srv.conn();
    assert_eq!(digest(&mut c), d);
    assert_eq!(s(&get(&mut c, &id), "public_state"), "waiting");
}

#[test]
fn aof_switched_on_at_runtime_keeps_later_writes() {
    // The module stops replicating on a node with no AOF and no replicas;
    // switching AOF on must bring every later write into the AOF, including
    // those made while its first rewrite runs.
    let mut srv = start(&["--appendonly", "no"]);
    let mut c = srv.conn();
    let before = submit(&mut c, "rt", "before", &[]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    let during = submit(&mut c, "rt", "during", &[]);
    wait_for(
        || {
            let i = info(&mut c, "persistence");
            i.contains("aof_enabled:1")
                && i.contains("aof_rewrite_in_progress:0")
                && i.contains("aof_rewrite_scheduled:0")
        },
        "the first AOF rewrite",
    );
    let mut ids = workload(&srv, "rt");
    ids.extend([before, during]);
    let (d, snap) = (digest(&mut c), snapshot(&mut c, &ids));
    drop(c);
    srv.kill();
    srv.restart_with(&[LONG_LEASE[0], LONG_LEASE[1], "--appendonly", "yes"]);
    let mut c = srv.conn();
    assert_eq!(digest(&mut c), d);
    assert_eq!(snapshot(&mut c, &ids), snap);
}
