//! What an operator reaches for: node-wide listings by state (FF.SCAN),
//! the reclaim filter, bulk replay and cancel (replicated and persisted
//! exactly), deleting one finished execution, a retention change applying
//! to executions already finished, the INFO section, and RESP3 maps.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use redis::Value;

/// Submits a job to partition `p` of lane `lane`, claims it and fails it
/// for good (no retries); returns its id.
fn failed_job(c: &mut redis::Connection, p: u16, lane: &str) -> String {
    let id: String = redis::cmd("FF.SUBMIT")
        .arg(format!("{{fp:{p}}}"))
        .arg(lane)
        .arg("x")
        .arg("MAX_RETRIES")
        .arg(0)
        .query(c)
        .unwrap();
    let j = claim(c, "w", &[lane], &[]).expect("a job to claim");
    assert_eq!(j.id, id);
    let _: Value = fenced("FF.FAIL", &j).query(c).unwrap();
    id
}

/// Every id FF.SCAN (or a bulk command's cursor walk) lists, paging with
/// `count`.
fn scan_all(c: &mut redis::Connection, args: &[&str], count: usize) -> Vec<String> {
    let (mut cursor, mut all) = ("0".to_string(), Vec::new());
    for _ in 0..10_000 {
        let (next, ids): (String, Vec<String>) = redis::cmd("FF.SCAN")
            .arg(args)
            .arg("COUNT")
            .arg(count)
            .arg("CURSOR")
            .arg(&cursor)
            .query(c)
            .unwrap();
        all.extend(ids);
        if next == "0" {
            return all;
        }
        cursor = next;
    }
    panic!("FF.SCAN never ended");
}

/// Runs a bulk command to the end; returns (acted on, refused).
fn bulk_all(c: &mut redis::Connection, name: &str, args: &[&str], count: usize) -> (i64, i64) {
    let (mut cursor, mut acted, mut refused) = ("0".to_string(), 0, 0);
    for _ in 0..10_000 {
        let (next, a, r): (String, i64, i64) = redis::cmd(name)
            .arg(args)
            .arg("COUNT")
            .arg(count)
            .arg("CURSOR")
            .arg(&cursor)
            .query(c)
            .unwrap();
        acted += a;
        refused += r;
        if next == "0" {
            return (acted, refused);
        }
        cursor = next;
    }
    panic!("{name} never ended");
}

#[test]
fn scan_lists_a_state_across_partitions_once() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let mut failed = HashSet::new();
    for p in [0u16, 3, 3, 77, 200, 255] {
        failed.insert(failed_job(&mut c, p, "mail"));
    }
    let other = failed_job(&mut c, 9, "sms");
    for p in [1u16, 3, 200] {
        submit(&mut c, "mail", "waiting", &[]);
        let _: String = redis::cmd("FF.SUBMIT")
            .arg(format!("{{fp:{p}}}"))
            .arg("mail")
            .arg("y")
            .query(&mut c)
            .unwrap();
    }
    for count in [1, 2, 100] {
        let got = scan_all(&mut c, &["STATE", "failed", "LANE", "mail"], count);
        assert_eq!(got.len(), failed.len(), "COUNT {count}: {got:?}");
        assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), failed);
    }
    let all_failed = scan_all(&mut c, &["STATE", "failed"], 3);
    assert_eq!(all_failed.len(), failed.len() + 1);
    assert!(all_failed.contains(&other));
    assert_eq!(scan_all(&mut c, &[], 4).len(), 7 + 6);
    assert!(scan_all(&mut c, &["LANE", "nope"], 10).is_empty());
    // A cursor this node could not have handed out.
    let far = (300u64 << 48).to_string();
    let r = redis::cmd("FF.SCAN").arg("CURSOR").arg(&far).query(&mut c);
    assert_eq!(err_code(r), "ERR");
}

#[test]
fn a_lease_waiting_for_reclaim_is_listed_as_such() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let held = submit(&mut c, "q", "y", &[]);
    let j = claim(&mut c, "w", &["q"], &["LEASE", "50"]).unwrap();
    assert_eq!(j.id, id);
    let k = claim(&mut c, "w", &["q"], &["LEASE", "60000"]).unwrap();
    assert_eq!(k.id, held);
    wait_until(
        || s(&get(&mut c, &id), "ownership_state") == "lease_expired_reclaimable",
        Duration::from_secs(5),
        "the lease to run out",
    );
    // Its public state stays the reference's.
    assert_eq!(s(&get(&mut c, &id), "public_state"), "active");
    assert_eq!(scan_all(&mut c, &["RECLAIMABLE"], 10), vec![id.clone()]);
    let active = scan_all(&mut c, &["STATE", "active"], 10);
    assert_eq!(active.len(), 2);
    let (_, listed): (String, Vec<String>) = redis::cmd("FF.LIST")
        .arg(tag_of(&id))
        .arg("RECLAIMABLE")
        .query(&mut c)
        .unwrap();
    assert_eq!(listed, vec![id.clone()]);
    // Reclaimed, it is no longer waiting.
    let r = claim(&mut c, "w2", &["q"], &[]).unwrap();
    assert_eq!(r.id, id);
    assert!(scan_all(&mut c, &["RECLAIMABLE"], 10).is_empty());
}

#[test]
fn bulk_replay_and_cancel_replicate_and_persist_exactly() {
    let mut srv = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let replica = Server::start_replica(&srv, &[]);
    let (mut c, mut r) = (srv.conn(), replica.conn());
    let mut failed = Vec::new();
    for i in 0..12u16 {
        failed.push(failed_job(
            &mut c,
            i * 20,
            if i % 3 == 0 { "b" } else { "a" },
        ));
    }
    let (acted, refused) = bulk_all(
        &mut c,
        "FF.BULKREPLAY",
        &["STATE", "failed", "LANE", "a"],
        3,
    );
    assert_eq!((acted, refused), (8, 0));
    for id in &failed {
        let state = s(&get(&mut c, id), "public_state");
        assert!(state == "waiting" || state == "failed", "{state}");
    }
    assert_eq!(scan_all(&mut c, &["STATE", "waiting"], 100).len(), 8);
    assert_eq!(scan_all(&mut c, &["STATE", "failed"], 100).len(), 4);
    let (cancelled, none) = bulk_all(
        &mut c,
        "FF.BULKCANCEL",
        &["STATE", "waiting", "REASON", "drained"],
        2,
    );
    assert_eq!((cancelled, none), (8, 0));
    assert_eq!(scan_all(&mut c, &["STATE", "cancelled"], 100).len(), 8);
    // Cancelling what has ended is refused, one by one, changing nothing.
    let before = digest(&mut c);
    assert_eq!(
        bulk_all(&mut c, "FF.BULKCANCEL", &["STATE", "failed"], 100),
        (0, 4)
    );
    assert_eq!(digest(&mut c), before);
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    wait_until(
        || digest(&mut c) == digest(&mut r),
        Duration::from_secs(5),
        "the replica to match",
    );
    srv.restart();
    let mut c = srv.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(scan_all(&mut c, &["STATE", "cancelled"], 100).len(), 8);
    for bad in [
        vec!["FF.BULKCANCEL", "LANE", "a"],
        vec!["FF.BULKREPLAY", "STATE", "nope"],
        vec!["FF.BULKREPLAY", "STATE", "failed", "COUNT", "1001"],
        vec!["FF.BULKREPLAY", "STATE", "failed", "AT", "5"],
    ] {
        let r = redis::cmd(bad[0]).arg(&bad[1..]).query::<Value>(&mut c);
        assert_eq!(err_code(r), "ERR", "{bad:?}");
    }
}

#[test]
fn delete_removes_one_finished_execution_now() {
    let srv = Server::start(&[]);
    let replica = Server::start_replica(&srv, &[]);
    let (mut c, mut r) = (srv.conn(), replica.conn());
    let id = submit(&mut c, "q", "x", &["IDEMPOTENCY", "k1", "600000"]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    // Not finished: refused, nothing changes.
    let err = redis::cmd("FF.DELETE").arg(&id).query::<Value>(&mut c);
    assert_eq!(err_code(err), "EXECUTION_NOT_TERMINAL");
    let _: Value = fenced("FF.APPEND", &j)
        .arg("log")
        .arg("line 1")
        .query(&mut c)
        .unwrap();
    let stream = format!("ff:stream:{id}:0");
    let before: i64 = redis::cmd("EXISTS").arg(&stream).query(&mut c).unwrap();
    assert_eq!(before, 1, "the attempt's stream is {stream}");
    complete(&mut c, &j, Some("done")).unwrap();
    let _: String = redis::cmd("FF.DELETE").arg(&id).query(&mut c).unwrap();
    let gone = redis::cmd("FF.GET").arg(&id).query::<Value>(&mut c);
    assert_eq!(err_code(gone), "EXECUTION_NOT_FOUND");
    let after: i64 = redis::cmd("EXISTS").arg(&stream).query(&mut c).unwrap();
    assert_eq!(after, 0, "its output stream went with it");
    let again = redis::cmd("FF.DELETE").arg(&id).query::<Value>(&mut c);
    assert_eq!(err_code(again), "EXECUTION_NOT_FOUND");
    // Its idempotency key went with it: the same key makes a new job.
    let fresh = submit(&mut c, "q", "x", &["IDEMPOTENCY", "k1", "600000"]);
    assert_ne!(fresh, id);
    assert_eq!(records_in(&mut c, &tag_of(&id)), 1);
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    wait_until(
        || digest(&mut c) == digest(&mut r),
        Duration::from_secs(5),
        "the replica to match",
    );
}

#[test]
fn a_retention_change_applies_to_executions_already_finished() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&mut c, "q", "x", &[]));
        let j = claim(&mut c, "w", &["q"], &[]).unwrap();
        complete(&mut c, &j, None).unwrap();
    }
    // Finished under a day's retention...
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(scan_all(&mut c, &["STATE", "completed"], 10).len(), 3);
    // ...and removed once the setting says they are old enough.
    let _: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.retention-ms")
        .arg("200")
        .query(&mut c)
        .unwrap();
    wait_until(
        || scan_all(&mut c, &[], 10).is_empty(),
        Duration::from_secs(5),
        "retention to remove the finished executions",
    );
    // A longer retention keeps what finishes after it.
    let _: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.retention-ms")
        .arg("86400000")
        .query(&mut c)
        .unwrap();
    submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    complete(&mut c, &j, None).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(scan_all(&mut c, &["STATE", "completed"], 10).len(), 1);
}

#[test]
fn info_reports_the_node_in_numbers() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    for i in 0..5 {
        submit(
            &mut c,
            if i < 3 { "a" } else { "b" },
            "x",
            &["MAX_RETRIES", "0"],
        );
    }
    let done = claim(&mut c, "w", &["a"], &[]).unwrap();
    complete(&mut c, &done, None).unwrap();
    let bad = claim(&mut c, "w", &["a"], &[]).unwrap();
    let _: Value = fenced("FF.FAIL", &bad).query(&mut c).unwrap();
    let _held = claim(&mut c, "w", &["b"], &[]).unwrap();
    let _: Value = redis::cmd("FF.REGISTER")
        .arg("inst-1")
        .arg("w")
        .arg(60_000)
        .query(&mut c)
        .unwrap();
    // A claimer waiting on an empty lane.
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut w = connect(port);
        let _: Value = redis::cmd("FF.CLAIM")
            .arg("w")
            .arg("w-2")
            .arg(1)
            .arg("empty")
            .arg("BLOCK")
            .arg(1500)
            .query(&mut w)
            .unwrap();
    });
    wait_until(
        || blocked_clients(&mut c) == 1,
        Duration::from_secs(5),
        "the claim to block",
    );
    let f = |c: &mut redis::Connection, k: &str| {
        info_field(c, "flowfabric", &format!("flowfabric_{k}"))
    };
    assert_eq!(f(&mut c, "executions"), 5);
    assert_eq!(f(&mut c, "executions_waiting"), 2);
    assert_eq!(f(&mut c, "executions_active"), 1);
    assert_eq!(f(&mut c, "executions_completed"), 1);
    assert_eq!(f(&mut c, "executions_failed"), 1);
    assert_eq!(f(&mut c, "partition_lanes"), 2);
    assert_eq!(f(&mut c, "leases_live"), 1);
    assert_eq!(f(&mut c, "blocked_claimers"), 1);
    assert_eq!(f(&mut c, "workers_live"), 1);
    assert_eq!(f(&mut c, "workers_dead"), 0);
    assert_eq!(f(&mut c, "events_submitted_total"), 5);
    assert_eq!(f(&mut c, "events_claimed_total"), 3);
    assert_eq!(f(&mut c, "events_completed_total"), 1);
    assert_eq!(f(&mut c, "events_failed_total"), 1);
    assert_eq!(f(&mut c, "feed_entries"), 5 + 3 + 2);
    assert_eq!(f(&mut c, "partitions"), 256);
    assert!(f(&mut c, "timer_next_due_ms") > 1_700_000_000_000);
    // Every field is a number, so scrapers export them as they are.
    let info: String = redis::cmd("INFO").arg("flowfabric").query(&mut c).unwrap();
    let fields: Vec<&str> = info.lines().filter(|l| l.contains(':')).collect();
    assert!(fields.len() > 30, "{info}");
    for l in fields {
        let (_, v) = l.split_once(':').unwrap();
        assert!(v.trim().parse::<i64>().is_ok(), "not a number: {l}");
    }
    // FF.VERSION's counts agree.
    let v = pairs(redis::cmd("FF.VERSION").query(&mut c).unwrap());
    let by_state = pairs(v.get("executions").unwrap().clone());
    assert_eq!(n(&by_state, "waiting"), 2);
    assert_eq!(n(&by_state, "completed"), 1);
    waiter.join().unwrap();
}

#[test]
fn records_are_maps_to_a_resp3_client() {
    let srv = Server::start(&[]);
    let mut c2 = srv.conn();
    let url = format!("redis://127.0.0.1:{}/?protocol=resp3", srv.port);
    let mut c3 = redis::Client::open(url).unwrap().get_connection().unwrap();
    let id = submit(&mut c2, "q", "x", &["TAG", "app.k", "v"]);
    let _: Value = redis::cmd("FF.REGISTER")
        .arg("inst-1")
        .arg("w")
        .arg(60_000)
        .query(&mut c2)
        .unwrap();
    let map_keys = |v: &Value| -> Vec<String> {
        match v {
            Value::Map(items) => items
                .iter()
                .map(|(k, _)| redis::from_redis_value(k).unwrap())
                .collect(),
            other => panic!("expected a map, got {other:?}"),
        }
    };
    let get: Value = redis::cmd("FF.GET").arg(&id).query(&mut c3).unwrap();
    let keys = map_keys(&get);
    assert!(keys.contains(&"public_state".to_string()) && keys.contains(&"tags".to_string()));
    let Value::Map(items) = &get else {
        unreachable!()
    };
    let tags = items
        .iter()
        .find(|(k, _)| redis::from_redis_value::<String>(k).unwrap() == "tags")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(map_keys(&tags), vec!["app.k".to_string()]);
    let version: Value = redis::cmd("FF.VERSION").query(&mut c3).unwrap();
    assert!(map_keys(&version).contains(&"executions".to_string()));
    let lanes: Value = redis::cmd("FF.LANES").query(&mut c3).unwrap();
    assert_eq!(map_keys(&lanes), vec!["q".to_string()]);
    let workers: Value = redis::cmd("FF.WORKERS").query(&mut c3).unwrap();
    let Value::Array(ws) = workers else {
        panic!("FF.WORKERS is an array of records")
    };
    assert!(map_keys(&ws[0]).contains(&"worker_id".to_string()));
    // A RESP2 client still reads flat arrays.
    let flat: Value = redis::cmd("FF.GET").arg(&id).query(&mut c2).unwrap();
    assert!(matches!(flat, Value::Array(_)));
}

#[test]
fn reads_leave_a_watched_partition_untouched() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &["TAG", "app.k", "v"]);
    let tag = tag_of(&id);
    let mut w = srv.conn();
    let _: () = redis::cmd("WATCH")
        .arg(format!("ff:idx:{tag}"))
        .query(&mut w)
        .unwrap();
    let reads: Vec<Vec<&str>> = vec![
        vec!["FF.GET", &id],
        vec!["FF.PAYLOAD", &id],
        vec!["FF.RESULT", &id],
        vec!["FF.GETTAGS", &id],
        vec!["FF.WAITPOINTS", &id],
        vec!["FF.SIGNALS", &id],
        vec!["FF.LIST", &tag],
        vec!["FF.SUSPENDED", &tag],
        vec!["FF.FLOWS", &tag],
        vec!["FF.SCAN"],
        vec!["FF.SCAN", "STATE", "waiting"],
        vec!["FF.LANES"],
        vec!["FF.VERSION"],
        vec!["INFO", "flowfabric"],
    ];
    for r in &reads {
        let _: Value = redis::cmd(r[0]).arg(&r[1..]).query(&mut c).unwrap();
    }
    // Node-wide reads touch no keyspace hit or miss counters.
    let stats = |c: &mut redis::Connection| {
        (
            info_field(c, "stats", "keyspace_hits"),
            info_field(c, "stats", "keyspace_misses"),
        )
    };
    let before = stats(&mut c);
    for r in [
        &["FF.SCAN"][..],
        &["FF.LANES"],
        &["FF.VERSION"],
        &["INFO", "flowfabric"],
    ] {
        let _: Value = redis::cmd(r[0]).arg(&r[1..]).query(&mut c).unwrap();
    }
    assert_eq!(stats(&mut c), before);
    // A read signals no change: the transaction runs.
    let done: Value = redis::pipe().atomic().cmd("PING").query(&mut w).unwrap();
    assert_ne!(done, Value::Nil, "a read marked the partition modified");
    // A write does.
    let _: () = redis::cmd("WATCH")
        .arg(format!("ff:idx:{tag}"))
        .query(&mut w)
        .unwrap();
    let _: Value = redis::cmd("FF.PRIORITY")
        .arg(&id)
        .arg(5)
        .query(&mut c)
        .unwrap();
    let aborted: Value = redis::pipe().atomic().cmd("PING").query(&mut w).unwrap();
    assert_eq!(aborted, Value::Nil);
}
