//! Relative times and classified failures on a real server: a relative
//! delay or deadline counts from the command's own (pinned) time; a
//! client's absolute time that looks like seconds, both halves of a pair
//! and a deadline already past are refused and change nothing; a
//! non-retryable failure ends the execution with retries left and FF.GET
//! and the feed show its category; replicas and the AOF reach the same
//! state.
mod common;

use std::time::Duration;

use common::*;

const LONG_LEASE: [&str; 2] = ["--flowfabric.lease-ms", "3600000"];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn u(f: &Fields, k: &str) -> u64 {
    s(f, k)
        .parse()
        .unwrap_or_else(|_| panic!("{k} is not a number"))
}

fn try_submit(c: &mut redis::Connection, opts: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd("FF.SUBMIT");
    cmd.arg("*").arg("q").arg("p");
    for o in opts {
        cmd.arg(*o);
    }
    cmd.query(c)
}

/// The error reply's text, code first.
fn err_text(r: redis::RedisResult<redis::Value>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

#[test]
fn a_relative_delay_holds_until_it_falls_due() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "later", &["DELAY", "400"]);
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "delayed");
    // Counted from the submit's own time, which is its creation time.
    assert_eq!(u(&f, "delay_until"), u(&f, "created_at") + 400);
    assert!(claim(&mut c, "w", &["q"], &[]).is_none(), "not before");
    wait_until(
        || claim(&mut c, "w", &["q"], &[]).is_some_and(|j| j.id == id),
        Duration::from_secs(5),
        "the delayed execution to be claimable",
    );
    // DELAY 0 and a DELAY_UNTIL already past: claimable at once.
    let zero = submit(&mut c, "q", "now", &["DELAY", "0"]);
    assert_eq!(claim(&mut c, "w", &["q"], &[]).unwrap().id, zero);
    let past = (now_ms() - 60_000).to_string();
    let past = submit(&mut c, "q", "past", &["DELAY_UNTIL", &past]);
    assert_eq!(s(&get(&mut c, &past), "public_state"), "waiting");
}

#[test]
fn a_relative_deadline_expires_the_execution() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &["DEADLINE_IN", "300"]);
    let f = get(&mut c, &id);
    assert_eq!(u(&f, "deadline_at"), u(&f, "created_at") + 300);
    wait_until(
        || s(&get(&mut c, &id), "public_state") == "expired",
        Duration::from_secs(5),
        "the deadline to expire it",
    );
    // The absolute twin still works.
    let at = (now_ms() + 3_600_000).to_string();
    let id = submit(&mut c, "q", "y", &["DEADLINE", &at]);
    assert_eq!(s(&get(&mut c, &id), "deadline_at"), at);
}

#[test]
fn the_holders_delay_for_a_span() {
    let srv = Server::start(&LONG_LEASE);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let ok: String = fenced("FF.DELAY", &j)
        .arg("FOR")
        .arg(300)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "delayed");
    assert_eq!(u(&f, "delay_until"), u(&f, "last_transition_at") + 300);
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    let mut resumed = None;
    wait_until(
        || {
            resumed = claim(&mut c, "w", &["q"], &[]);
            resumed.is_some()
        },
        Duration::from_secs(5),
        "the parked execution to be claimable",
    );
    let j = resumed.unwrap();
    assert_eq!((j.id.as_str(), n(&j.fields, "resumed")), (id.as_str(), 1));
    // A span and a time are one or the other; seconds are refused.
    for bad in [
        &["FOR"][..],
        &["FOR", "-1"],
        &["1700000000"],
        &["FOR", "5", "x"],
    ] {
        let mut cmd = fenced("FF.DELAY", &j);
        for a in bad {
            cmd.arg(*a);
        }
        assert_eq!(err_code(cmd.query(&mut c)), "ERR", "{bad:?}");
    }
    assert_eq!(s(&get(&mut c, &id), "public_state"), "active");
}

#[test]
fn bad_times_are_refused_and_change_nothing() {
    let srv = Server::start(&LONG_LEASE);
    let mut c = srv.conn();
    let before = digest(&mut c);
    let future = (now_ms() + 3_600_000).to_string();
    for opts in [
        &["DELAY_UNTIL", "1700000000"][..],
        &["DELAY_UNTIL", "0"],
        &["DEADLINE", "99999999999"],
        &["DELAY", "5", "DELAY_UNTIL", &future],
        &["DEADLINE", &future, "DEADLINE_IN", "5"],
        &["DEADLINE_IN", "0"],
        &["DELAY", "31536000001"],
    ] {
        let e = err_text(try_submit(&mut c, opts));
        assert!(e.starts_with("ERR "), "{opts:?}: {e}");
    }
    let e = err_text(try_submit(&mut c, &["DELAY_UNTIL", "1700000000"]));
    assert!(e.contains("milliseconds since the epoch"), "{e}");
    // A deadline already past.
    let past = (now_ms() - 1000).to_string();
    let e = err_text(try_submit(&mut c, &["DEADLINE", &past]));
    assert!(
        e.starts_with("INVALID_INPUT ") && e.contains("passed"),
        "{e}"
    );
    assert_eq!(digest(&mut c), before, "nothing was created");
    // The holder's and the suspension's absolute times too.
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let state = get(&mut c, &id);
    let refused = |c: &mut redis::Connection, name: &str, opts: &[&str]| {
        let mut cmd = fenced(name, &j);
        for o in opts {
            cmd.arg(*o);
        }
        err_code(cmd.query(c))
    };
    assert_eq!(refused(&mut c, "FF.DELAY", &["1700000000"]), "ERR");
    assert_eq!(
        refused(&mut c, "FF.SUSPEND", &["TIMEOUT_AT", "1700000000"]),
        "ERR"
    );
    assert_eq!(
        refused(
            &mut c,
            "FF.SUSPEND",
            &["TIMEOUT", "5", "TIMEOUT_AT", &future]
        ),
        "ERR"
    );
    assert_eq!(
        refused(&mut c, "FF.WAITPOINT", &["EXPIRES_AT", "86400000"]),
        "ERR"
    );
    assert_eq!(
        refused(
            &mut c,
            "FF.WAITPOINT",
            &["EXPIRES_IN", "5", "EXPIRES_AT", &future]
        ),
        "ERR"
    );
    assert_eq!(get(&mut c, &id), state);
}

/// Fails `j` with `opts`; the reply.
fn fail(c: &mut redis::Connection, j: &Job, opts: &[&str]) -> Vec<redis::Value> {
    let mut cmd = fenced("FF.FAIL", j);
    for o in opts {
        cmd.arg(*o);
    }
    cmd.query(c).unwrap()
}

type Entry = (String, Vec<(String, redis::Value)>);

/// The feed entry of `id`'s last event.
fn last_event(c: &mut redis::Connection, id: &str) -> Fields {
    let key = format!("ff:events:{}", tag_of(id));
    let v: Vec<Entry> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query(c)
        .unwrap();
    v.into_iter()
        .rev()
        .map(|(_, f)| f.into_iter().collect::<Fields>())
        .find(|f| s(f, "id") == id)
        .expect("an event")
}

#[test]
fn a_non_retryable_failure_ends_with_retries_left() {
    let srv = Server::start(&LONG_LEASE);
    let mut c = srv.conn();
    let retry = ["MAX_RETRIES", "3", "BACKOFF", "FIXED", "600000"];
    for (opts, category) in [
        (&["CATEGORY", "permanent"][..], "permanent"),
        (&["CATEGORY", "Timeout"], "Timeout"),
        (&["CATEGORY", "bad_input", "NON_RETRYABLE"], "bad_input"),
        (&["NON_RETRYABLE"], ""),
    ] {
        let id = submit(&mut c, "q", "x", &retry);
        let j = claim(&mut c, "w", &["q"], &[]).unwrap();
        let mut all = vec!["REASON", "boom"];
        all.extend_from_slice(opts);
        let reply = fail(&mut c, &j, &all);
        let reply: Vec<String> = redis::from_redis_value(&redis::Value::Array(reply)).unwrap();
        assert_eq!(reply, ["failed"], "{opts:?}");
        let f = get(&mut c, &id);
        assert_eq!(s(&f, "public_state"), "failed");
        assert_eq!(s(&f, "retry_count"), "0", "retries were left");
        assert_eq!(s(&f, "reason"), "boom");
        assert_eq!(s(&f, "failure_category"), category);
        assert_eq!(s(&f, "non_retryable"), "1");
        let ev = last_event(&mut c, &id);
        assert_eq!(s(&ev, "event"), "failed");
        assert_eq!(s(&ev, "category"), category);
    }
    // A transient failure, and any other category, retries as before.
    for category in ["transient", "flaky_upstream"] {
        let id = submit(&mut c, "q", "x", &retry);
        let j = claim(&mut c, "w", &["q"], &[]).unwrap();
        let reply = fail(&mut c, &j, &["CATEGORY", category]);
        assert_eq!(reply.len(), 2, "{category}");
        let status: String = redis::from_redis_value(&reply[0]).unwrap();
        assert_eq!(status, "retry_scheduled");
        let f = get(&mut c, &id);
        assert_eq!(s(&f, "public_state"), "delayed");
        assert_eq!(s(&f, "retry_count"), "1");
        assert_eq!(s(&f, "failure_category"), category);
        assert_eq!(s(&f, "non_retryable"), "0");
        let ev = last_event(&mut c, &id);
        assert_eq!(s(&ev, "event"), "retry_scheduled");
        assert_eq!(s(&ev, "category"), category);
    }
    // Unclassified: nothing kept, the feed entry has its five fields.
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    fail(&mut c, &j, &[]);
    let f = get(&mut c, &id);
    assert_eq!(
        (s(&f, "failure_category"), s(&f, "non_retryable")),
        ("".into(), "0".into())
    );
    assert_eq!(last_event(&mut c, &id).len(), 5);
    // A bad category is refused and changes nothing.
    let id = submit(&mut c, "q", "x", &retry);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let state = get(&mut c, &id);
    for bad in [
        &["CATEGORY"][..],
        &["CATEGORY", ""],
        &["CATEGORY", "a\nb"],
        &["RETRY_AT", "0"],
    ] {
        let mut cmd = fenced("FF.FAIL", &j);
        for a in bad {
            cmd.arg(*a);
        }
        assert_eq!(err_code(cmd.query(&mut c)), "ERR", "{bad:?}");
    }
    assert_eq!(get(&mut c, &id), state);
}

/// Relative times and classified failures, as a client issues them.
fn workload(c: &mut redis::Connection) -> Vec<String> {
    let mut ids = Vec::new();
    let retry = ["MAX_RETRIES", "3", "BACKOFF", "FIXED", "600000"];
    ids.push(submit(
        c,
        "t",
        "d",
        &["DELAY", "3600000", "DEADLINE_IN", "7200000"],
    ));
    ids.push(submit(c, "t", "e", &["DEADLINE_IN", "50"]));
    for opts in [
        &["CATEGORY", "permanent"][..],
        &["CATEGORY", "mine", "NON_RETRYABLE"],
        &["CATEGORY", "transient"],
    ] {
        let id = submit(c, "f", "x", &retry);
        let j = claim(c, "w", &["f"], &[]).unwrap();
        fail(c, &j, opts);
        ids.push(id);
    }
    let id = submit(c, "f", "p", &[]);
    let j = claim(c, "w", &["f"], &[]).unwrap();
    let _: String = fenced("FF.DELAY", &j)
        .arg("FOR")
        .arg(3_600_000)
        .query(c)
        .unwrap();
    ids.push(id);
    // The short deadline fires in the timer (replicated as its batch).
    std::thread::sleep(Duration::from_millis(150));
    ids
}

#[test]
fn replicas_and_the_aof_agree() {
    let mut args = LONG_LEASE.to_vec();
    args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
    let mut primary = Server::start(&args);
    let replica = Server::start_replica(&primary, &LONG_LEASE);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    let ids = workload(&mut p);
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p).unwrap();
    wait_until(
        || digest(&mut p) == digest(&mut r),
        Duration::from_secs(15),
        "the replica's digest to match",
    );
    let on_primary: Vec<Fields> = ids.iter().map(|id| get(&mut p, id)).collect();
    let on_replica: Vec<Fields> = ids.iter().map(|id| get(&mut r, id)).collect();
    assert_eq!(on_primary, on_replica);
    assert_eq!(s(&on_primary[1], "public_state"), "expired");
    assert_eq!(s(&on_primary[2], "non_retryable"), "1");
    assert_eq!(s(&on_primary[4], "public_state"), "delayed");
    // The AOF replays to the same state.
    let d = digest(&mut p);
    drop(p);
    primary.kill();
    primary.restart();
    let mut p = primary.conn();
    assert_eq!(digest(&mut p), d);
    let replayed: Vec<Fields> = ids.iter().map(|id| get(&mut p, id)).collect();
    assert_eq!(replayed, on_primary);
}

/// A command as the AOF stores it (RESP).
fn resp(args: &[&str]) -> String {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s
}

#[test]
fn an_old_aofs_small_times_still_load() {
    // Written before the client checks: times a client may no longer send
    // (a deadline of 2 ms, before the submit's pinned time) replay as they
    // were. Loaded on a replica of nobody, so no timer moves them.
    let dir = fresh_dir("old-aof");
    let aof = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    std::fs::write(
        aof.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    std::fs::write(aof.join("appendonly.aof.1.base.aof"), "").unwrap();
    let id = "{fp:1}:00000000-0000-4000-8000-0000000000c1";
    let mut incr = resp(&["SELECT", "0"]);
    incr += &resp(&[
        "FF.SUBMIT",
        id,
        "q",
        "p",
        "DELAY_UNTIL",
        "1",
        "DEADLINE",
        "2",
        "AT",
        "1000",
    ]);
    std::fs::write(aof.join("appendonly.aof.1.incr.aof"), incr).unwrap();
    let port = free_port().to_string();
    let srv = Server::start_in(
        dir,
        &["--appendonly", "yes", "--replicaof", "127.0.0.1", &port],
    );
    let mut c = srv.conn();
    let f = get(&mut c, id);
    assert_eq!(
        (
            s(&f, "created_at"),
            s(&f, "deadline_at"),
            s(&f, "public_state")
        ),
        ("1000".into(), "2".into(), "waiting".into())
    );
}
