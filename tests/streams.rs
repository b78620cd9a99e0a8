//! Attempt output streams and the event feed on a real server: appends in
//! each mode with every error, merge-patch semantics, closing frames that
//! wake blocked XREAD readers on every way an attempt ends, a reclaimed
//! holder fenced out, and the events a lifecycle leaves on the feed.
mod common;

use std::time::Duration;

use common::*;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn append(
    c: &mut redis::Connection,
    j: &Job,
    kind: &str,
    payload: &[u8],
    opts: &[&str],
) -> redis::RedisResult<(Option<String>, i64, Option<i64>)> {
    let mut cmd = fenced("FF.APPEND", j);
    cmd.arg(kind).arg(payload);
    for o in opts {
        cmd.arg(*o);
    }
    cmd.query(c)
}

fn stream_of(j: &Job, attempt: u32) -> String {
    format!("ff:stream:{}:{attempt}", j.id)
}

type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

fn xrange(c: &mut redis::Connection, key: &str) -> Vec<Entry> {
    let v: Vec<Entry> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(c)
        .unwrap();
    v
}

fn field<'a>(e: &'a Entry, k: &str) -> Option<&'a [u8]> {
    e.1.iter()
        .find(|(f, _)| f == k.as_bytes())
        .map(|(_, v)| v.as_slice())
}

fn summary(c: &mut redis::Connection, id: &str, attempt: u32) -> (Option<String>, i64) {
    let v: (Option<String>, i64, Option<i64>, Option<i64>) = redis::cmd("FF.SUMMARY")
        .arg(id)
        .arg(attempt)
        .query(c)
        .unwrap();
    (v.0, v.1)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn job(c: &mut redis::Connection, lane: &str, opts: &[&str]) -> Job {
    submit(c, lane, "p", &[]);
    claim(c, "w", &[lane], opts).expect("a job")
}

#[test]
fn append_in_each_mode_with_every_error() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let j = job(&mut c, "q", &[]);
    // Durable: the entry id, the frame count, no version.
    let (id1, n, v) = append(&mut c, &j, "token", b"hel\x00lo", &["CORRELATION", "c1"]).unwrap();
    assert_eq!((n, v), (1, None));
    let entries = xrange(&mut c, &stream_of(&j, 0));
    assert_eq!(entries.len(), 1);
    assert_eq!(Some(entries[0].0.clone()), id1);
    assert_eq!(field(&entries[0], "type"), Some(&b"token"[..]));
    assert_eq!(field(&entries[0], "payload"), Some(&b"hel\x00lo"[..]));
    assert_eq!(field(&entries[0], "correlation"), Some(&b"c1"[..]));
    assert_eq!(field(&entries[0], "mode"), None);
    // Summary: versions count up, the document merges.
    let (_, n, v) = append(
        &mut c,
        &j,
        "s",
        br#"{"a":1,"b":{"c":2}}"#,
        &["MODE", "summary"],
    )
    .unwrap();
    assert_eq!((n, v), (2, Some(1)));
    let (_, _, v) = append(&mut c, &j, "s", br#"{"b":{"d":3}}"#, &["MODE", "summary"]).unwrap();
    assert_eq!(v, Some(2));
    let (doc, ver) = summary(&mut c, &j.id, 0);
    assert_eq!(json(&doc.unwrap()), json(r#"{"a":1,"b":{"c":2,"d":3}}"#));
    assert_eq!(ver, 2);
    // Best effort: marked in the entry, dropped by DURABLE_ONLY.
    append(
        &mut c,
        &j,
        "live",
        b"x",
        &["MODE", "best_effort", "TTL", "60000"],
    )
    .unwrap();
    let all: (Vec<Entry>, i64, Option<String>, Option<i64>) = redis::cmd("FF.FRAMES")
        .arg(&j.id)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!((all.0.len(), all.1, all.2), (4, 4, None));
    let durable: (Vec<Entry>, i64, Option<String>, Option<i64>) = redis::cmd("FF.FRAMES")
        .arg(&j.id)
        .arg(0)
        .arg("DURABLE_ONLY")
        .query(&mut c)
        .unwrap();
    assert_eq!(durable.0.len(), 3);
    let page: (Vec<Entry>, i64, Option<String>, Option<i64>) = redis::cmd("FF.FRAMES")
        .arg(&j.id)
        .arg(0)
        .arg("FROM")
        .arg(format!("({}", all.0[0].0))
        .arg("COUNT")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(page.0.len(), 2);
    assert_eq!(page.0[0].0, all.0[1].0);

    // Errors, each changing nothing.
    let big = vec![b'x'; 65537];
    let e = err_code(fenced("FF.APPEND", &j).arg("t").arg(&big[..]).query(&mut c));
    assert_eq!(e, "RETENTION_LIMIT_EXCEEDED");
    for bad in [&b"[1]"[..], b"3", b"null", b"{nope"] {
        let e = err_code(
            fenced("FF.APPEND", &j)
                .arg("t")
                .arg(bad)
                .arg("MODE")
                .arg("summary")
                .query(&mut c),
        );
        assert_eq!(e, "INVALID_INPUT", "{:?}", String::from_utf8_lossy(bad));
    }
    let deep = format!("{}1{}", r#"{"a":"#.repeat(18), "}".repeat(18));
    let e = err_code(
        fenced("FF.APPEND", &j)
            .arg("t")
            .arg(&deep)
            .arg("MODE")
            .arg("summary")
            .query(&mut c),
    );
    assert_eq!(e, "INVALID_INPUT");
    let mut stale = redis::cmd("FF.APPEND");
    stale
        .arg(&j.id)
        .arg(&j.lease_id)
        .arg(j.epoch + 1)
        .arg(&j.attempt_id)
        .arg("t")
        .arg("p");
    assert_eq!(err_code(stale.query(&mut c)), "STALE_OWNER_CANNOT_APPEND");
    assert_eq!(summary(&mut c, &j.id, 0).1, 2);
    assert_eq!(xrange(&mut c, &stream_of(&j, 0)).len(), 4);
    // Malformed options.
    for opts in [
        &["MODE", "loud"][..],
        &["MAXLEN", "100"],
        &["MODE", "best_effort", "MAXLEN", "10"],
        &["MODE", "best_effort", "TTL", "0"],
        &["BOGUS"],
    ] {
        let e = err_code(append_value(&mut c, &j, opts));
        assert_eq!(e, "ERR", "{opts:?}");
    }
    // A stream name holding another type: WRONGTYPE, nothing changes.
    let j2 = job(&mut c, "q2", &[]);
    let _: () = redis::cmd("SET")
        .arg(stream_of(&j2, 0))
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert_eq!(err_code(append_value(&mut c, &j2, &[])), "WRONGTYPE");
    // After the attempt ends the stream is closed.
    complete(&mut c, &j, None).unwrap();
    assert_eq!(err_code(append_value(&mut c, &j, &[])), "STREAM_CLOSED");
    let closed: (Vec<Entry>, i64, Option<String>, Option<i64>) = redis::cmd("FF.FRAMES")
        .arg(&j.id)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(closed.2.as_deref(), Some("completed"));
    let last = closed.0.last().unwrap();
    assert_eq!(field(last, "closed"), Some(&b"completed"[..]));
    assert_eq!(field(last, "frames"), Some(&b"4"[..]));
    // FF.GET names the stream.
    assert_eq!(s(&get(&mut c, &j.id), "stream_key"), stream_of(&j, 0));
}

fn append_value(
    c: &mut redis::Connection,
    j: &Job,
    opts: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut cmd = fenced("FF.APPEND", j);
    cmd.arg("t").arg("p");
    for o in opts {
        cmd.arg(*o);
    }
    cmd.query(c)
}

#[test]
fn merge_patch_follows_rfc_7396() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let j = job(&mut c, "q", &[]);
    let steps = [
        (
            r#"{"a":"b","c":{"d":"e","f":"g"},"arr":[1,2]}"#,
            r#"{"a":"b","c":{"d":"e","f":"g"},"arr":[1,2]}"#,
        ),
        (
            r#"{"a":"z","c":{"f":null}}"#,
            r#"{"a":"z","c":{"d":"e"},"arr":[1,2]}"#,
        ),
        (
            r#"{"arr":[{"x":null}]}"#,
            r#"{"a":"z","c":{"d":"e"},"arr":[{"x":null}]}"#,
        ),
        (
            r#"{"c":"flat","n":{"m":null,"k":1}}"#,
            r#"{"a":"z","c":"flat","arr":[{"x":null}],"n":{"k":1}}"#,
        ),
        (
            r#"{"a":null,"s":"__ff_null__"}"#,
            r#"{"c":"flat","arr":[{"x":null}],"n":{"k":1},"s":null}"#,
        ),
        (
            r#"{}"#,
            r#"{"c":"flat","arr":[{"x":null}],"n":{"k":1},"s":null}"#,
        ),
    ];
    for (i, (patch, want)) in steps.iter().enumerate() {
        let (_, _, v) = append(&mut c, &j, "s", patch.as_bytes(), &["MODE", "summary"]).unwrap();
        assert_eq!(v, Some(i as i64 + 1));
        let (doc, _) = summary(&mut c, &j.id, 0);
        assert_eq!(json(&doc.unwrap()), json(want), "after patch {patch}");
    }
    // Sixteen levels of objects are accepted, seventeen are not.
    let nest = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    append(&mut c, &j, "s", nest(17).as_bytes(), &["MODE", "summary"]).unwrap();
    let e = err_code(
        fenced("FF.APPEND", &j)
            .arg("s")
            .arg(nest(18))
            .arg("MODE")
            .arg("summary")
            .query(&mut c),
    );
    assert_eq!(e, "INVALID_INPUT");
}

/// Starts a reader blocked on `key` after `after`; returns the first entry
/// it gets.
fn blocked_reader(port: u16, key: String, after: String) -> std::thread::JoinHandle<Entry> {
    std::thread::spawn(move || {
        let mut c = connect(port);
        let v: redis::Value = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(10_000)
            .arg("STREAMS")
            .arg(&key)
            .arg(&after)
            .query(&mut c)
            .unwrap();
        let r: Vec<(String, Vec<Entry>)> = redis::from_redis_value(&v).unwrap();
        r.into_iter().next().unwrap().1.into_iter().next().unwrap()
    })
}

fn wait_blocked(c: &mut redis::Connection, n: u64) {
    wait_until(
        || blocked_clients(c) >= n,
        Duration::from_secs(5),
        "a blocked reader",
    );
}

#[test]
fn closing_frame_wakes_blocked_readers_on_every_ending() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let _: () = redis::cmd("FF.ROTATESECRET")
        .arg("k")
        .arg(SECRET)
        .query(&mut c)
        .map(|_: redis::Value| ())
        .unwrap();
    // (what, submit options, claim options, the ending call: its command,
    // whether the holder's fence goes first, its options; none when the
    // timer ends the attempt), the close reason.
    type Ending<'a> = (
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
        Option<(&'a str, bool, &'a [&'a str])>,
        &'a str,
    );
    let retry: &[&str] = &["MAX_RETRIES", "1", "BACKOFF", "FIXED", "600000"];
    let ends: Vec<Ending> = vec![
        (
            "complete",
            &[],
            &[],
            Some(("FF.COMPLETE", true, &[])),
            "completed",
        ),
        ("fail", &[], &[], Some(("FF.FAIL", true, &[])), "failed"),
        ("retry", retry, &[], Some(("FF.FAIL", true, &[])), "failed"),
        (
            "cancel",
            &[],
            &[],
            Some(("FF.CANCEL", false, &[])),
            "cancelled",
        ),
        (
            "revoke",
            &[],
            &[],
            Some(("FF.REVOKE", false, &[])),
            "lease_revoked",
        ),
        ("expiry", &[], &["LEASE", "100"], None, "lease_expired"),
        ("timeout", &["ATTEMPT_TIMEOUT", "100"], &[], None, "expired"),
        (
            "suspend",
            &[],
            &[],
            Some(("FF.SUSPEND", true, &["CONDITION", "SIGNAL", "go"])),
            "suspended",
        ),
    ];
    for (what, submit_opts, claim_opts, end, reason) in ends {
        let lane = format!("l-{what}");
        submit(&mut c, &lane, "p", submit_opts);
        let j = claim(&mut c, "w", &[lane.as_str()], claim_opts).unwrap();
        let (last, _, _) = append(&mut c, &j, "t", b"first", &[]).unwrap();
        let before = blocked_clients(&mut c);
        let reader = blocked_reader(srv.port, stream_of(&j, 0), last.unwrap());
        wait_blocked(&mut c, before + 1);
        if let Some((name, holder, opts)) = end {
            let mut cmd = if holder {
                fenced(name, &j)
            } else {
                let mut cmd = redis::cmd(name);
                cmd.arg(&j.id);
                cmd
            };
            for o in opts {
                cmd.arg(*o);
            }
            let _: redis::Value = cmd.query(&mut c).unwrap();
        }
        let got = reader.join().unwrap();
        let key = if what == "suspend" {
            "suspended"
        } else {
            "closed"
        };
        let v = field(&got, key).map(|v| String::from_utf8_lossy(v).to_string());
        if what == "suspend" {
            assert!(v.is_some(), "{what}: {got:?}");
        } else {
            assert_eq!(v.as_deref(), Some(reason), "{what}: {got:?}");
        }
    }
}

#[test]
fn a_reclaimed_attempts_old_holder_cannot_append() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let old = job(&mut c, "q", &["LEASE", "50"]);
    append(&mut c, &old, "t", b"a", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let new = claim(&mut c, "w2", &["q"], &[]).expect("reclaimed");
    assert_eq!(new.id, old.id);
    assert_eq!(
        err_code(append_value(&mut c, &old, &[])),
        "STALE_OWNER_CANNOT_APPEND"
    );
    append(&mut c, &new, "t", b"b", &[]).unwrap();
    let first = xrange(&mut c, &stream_of(&old, 0));
    assert_eq!(
        field(first.last().unwrap(), "closed"),
        Some(&b"lease_expired"[..])
    );
    assert_eq!(xrange(&mut c, &stream_of(&new, 1)).len(), 1);
    assert_eq!(s(&get(&mut c, &new.id), "stream_key"), stream_of(&new, 1));
}

/// The events of execution `id` on its partition's feed, in order.
fn events_of(c: &mut redis::Connection, id: &str) -> Vec<String> {
    let key = format!("ff:events:{}", tag_of(id));
    xrange(c, &key)
        .iter()
        .filter(|e| field(e, "id") == Some(id.as_bytes()))
        .map(|e| String::from_utf8_lossy(field(e, "event").unwrap()).to_string())
        .collect()
}

#[test]
fn the_feed_holds_each_lifecycles_events() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let _: redis::Value = redis::cmd("FF.ROTATESECRET")
        .arg("k")
        .arg(SECRET)
        .query(&mut c)
        .unwrap();
    // A retry lifecycle.
    let id = submit(
        &mut c,
        "r",
        "p",
        &["MAX_RETRIES", "1", "BACKOFF", "FIXED", "20"],
    );
    let j = claim(&mut c, "w", &["r"], &[]).unwrap();
    let _: redis::Value = fenced("FF.PROGRESS", &j)
        .arg(50)
        .arg("MESSAGE")
        .arg("half")
        .query(&mut c)
        .unwrap();
    let _: redis::Value = fenced("FF.FAIL", &j).query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    let j = claim(&mut c, "w", &["r"], &[]).unwrap();
    let _: redis::Value = fenced("FF.RENEW", &j).query(&mut c).unwrap();
    complete(&mut c, &j, None).unwrap();
    assert_eq!(
        events_of(&mut c, &id),
        [
            "submitted",
            "claimed",
            "progress",
            "retry_scheduled",
            "waiting",
            "claimed",
            "completed"
        ]
    );
    // A suspension.
    let id = submit(&mut c, "s", "p", &[]);
    let j = claim(&mut c, "w", &["s"], &[]).unwrap();
    let v: Vec<redis::Value> = fenced("FF.SUSPEND", &j)
        .arg("CONDITION")
        .arg("SIGNAL")
        .arg("go")
        .query(&mut c)
        .unwrap();
    let wps: Vec<Vec<String>> = redis::from_redis_value(&v[2]).unwrap();
    let _: redis::Value = redis::cmd("FF.SIGNAL")
        .arg(&id)
        .arg(&wps[0][0])
        .arg(&wps[0][2])
        .arg("go")
        .query(&mut c)
        .unwrap();
    let j = claim(&mut c, "w", &["s"], &[]).unwrap();
    complete(&mut c, &j, None).unwrap();
    assert_eq!(
        events_of(&mut c, &id),
        [
            "submitted",
            "claimed",
            "suspended",
            "signal",
            "resumed",
            "claimed",
            "completed"
        ]
    );
    let key = format!("ff:events:{}", tag_of(&id));
    let sig = xrange(&mut c, &key)
        .into_iter()
        .find(|e| field(e, "event") == Some(&b"signal"[..]))
        .unwrap();
    assert_eq!(field(&sig, "outcome"), Some(&b"satisfied"[..]));
    // A cancel, tags.
    let id = submit(&mut c, "c", "p", &[]);
    let _: redis::Value = redis::cmd("FF.SETTAGS")
        .arg(&id)
        .arg("app.k")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: redis::Value = redis::cmd("FF.CANCEL").arg(&id).query(&mut c).unwrap();
    assert_eq!(
        events_of(&mut c, &id),
        ["submitted", "tags_set", "cancelled"]
    );
    // Renewals when asked for; nothing at all with the feed off.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.events-renewals")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    let id = submit(&mut c, "n", "p", &[]);
    let j = claim(&mut c, "w", &["n"], &[]).unwrap();
    let _: redis::Value = fenced("FF.RENEW", &j).query(&mut c).unwrap();
    assert_eq!(events_of(&mut c, &id), ["submitted", "claimed", "renewed"]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.events")
        .arg("no")
        .query(&mut c)
        .unwrap();
    complete(&mut c, &j, None).unwrap();
    assert_eq!(events_of(&mut c, &id), ["submitted", "claimed", "renewed"]);
}

#[test]
fn the_feed_is_capped_and_notifies_keyspace_subscribers() {
    let srv = Server::start(&["--flowfabric.events-maxlen", "100"]);
    let mut c = srv.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Ed")
        .query(&mut c)
        .unwrap();
    let mut sub = srv.conn();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyevent@0__:ff.*").unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let id = submit(&mut c, "cap", "p", &[]);
    let m = ps.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "__keyevent@0__:ff.submitted");
    assert_eq!(m.get_payload::<String>().unwrap(), id);
    for _ in 0..400 {
        submit(&mut c, "cap", "p", &[]);
    }
    let key = format!("ff:events:{}", tag_of(&id));
    let len: u64 = redis::cmd("XLEN").arg(&key).query(&mut c).unwrap();
    assert!((100..=300).contains(&len), "events stream length {len}");
}

/// A lifecycle with frames, renewals and events on `srv`.
fn feed_workload(srv: &Server, lane: &str, n: usize) {
    let mut c = srv.conn();
    for i in 0..n {
        submit(&mut c, lane, "p", &[]);
        let j = claim(&mut c, "w", &[lane], &[]).unwrap();
        let _: redis::Value = fenced("FF.RENEW", &j).query(&mut c).unwrap();
        append(
            &mut c,
            &j,
            "t",
            format!("f{i}").as_bytes(),
            &["MODE", "best_effort", "MAXLEN", "64"],
        )
        .unwrap();
        if i % 3 == 0 {
            let _: redis::Value = fenced("FF.FAIL", &j).query(&mut c).unwrap();
        } else {
            complete(&mut c, &j, None).unwrap();
        }
    }
}

#[test]
fn replicas_and_the_aof_follow_the_primarys_feed_settings() {
    let primary = Server::start(&[
        "--appendonly",
        "yes",
        "--flowfabric.events-maxlen",
        "40",
        "--flowfabric.events-renewals",
        "yes",
    ]);
    // The replica's own settings differ: it follows the primary's.
    let replica = Server::start_replica(&primary, &["--flowfabric.events", "no"]);
    feed_workload(&primary, "fa", 120);
    let mut p = primary.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.events")
        .arg("no")
        .query(&mut p)
        .unwrap();
    feed_workload(&primary, "fb", 30);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.events")
        .arg("yes")
        .query(&mut p)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.events-maxlen")
        .arg("10000")
        .query(&mut p)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("flowfabric.events-renewals")
        .arg("no")
        .query(&mut p)
        .unwrap();
    feed_workload(&primary, "fa", 20);
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p).unwrap();
    let mut r = replica.conn();
    wait_until(
        || digest(&mut p) == digest(&mut r),
        Duration::from_secs(10),
        "the replica's digest to match",
    );
    let key = format!("ff:events:{}", tag_of(&submit(&mut p, "fa", "x", &[])));
    let len: u64 = redis::cmd("XLEN").arg(&key).query(&mut p).unwrap();
    assert!(
        len > 40,
        "the feed grew again under the default limit: {len}"
    );
    // An AOF replay under other settings reaches the same state.
    let d = digest(&mut p);
    drop(p);
    let mut primary = primary;
    primary.shutdown("NOSAVE");
    primary.restart_with(&["--appendonly", "yes", "--flowfabric.events", "no"]);
    let mut p = primary.conn();
    assert_eq!(digest(&mut p), d);
}

#[test]
fn retention_removes_an_executions_streams() {
    let srv = Server::start(&["--flowfabric.retention-ms", "50"]);
    let mut c = srv.conn();
    let j = job(&mut c, "q", &[]);
    append(&mut c, &j, "t", b"a", &[]).unwrap();
    let _: redis::Value = fenced("FF.FAIL", &j).query(&mut c).unwrap();
    let key = stream_of(&j, 0);
    let exists =
        |c: &mut redis::Connection| -> i64 { redis::cmd("EXISTS").arg(&key).query(c).unwrap() };
    assert_eq!(exists(&mut c), 1);
    wait_until(
        || exists(&mut c) == 0,
        Duration::from_secs(5),
        "retention to remove the stream",
    );
    assert!(redis::cmd("FF.GET")
        .arg(&j.id)
        .query::<redis::Value>(&mut c)
        .is_err());
}

#[test]
fn consumer_groups_read_the_feed() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let first = submit(&mut c, "g", "p", &[]);
    let key = format!("ff:events:{}", tag_of(&first));
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("dash")
        .arg("$")
        .query(&mut c)
        .unwrap();
    let id = submit(&mut c, "g", "p", &[]);
    let v: Vec<(String, Vec<Entry>)> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("dash")
        .arg("c1")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query(&mut c)
        .unwrap();
    let entries = &v[0].1;
    assert_eq!(entries.len(), 1);
    assert_eq!(field(&entries[0], "id"), Some(id.as_bytes()));
    let acked: i64 = redis::cmd("XACK")
        .arg(&key)
        .arg("dash")
        .arg(&entries[0].0)
        .query(&mut c)
        .unwrap();
    assert_eq!(acked, 1);
}

#[test]
fn client_writes_to_the_streams_are_harmless_and_replicate_alike() {
    let primary = Server::start(&[]);
    let replica = Server::start_replica(&primary, &[]);
    let mut c = primary.conn();
    let j = job(&mut c, "t", &[]);
    let key = stream_of(&j, 0);
    let events = format!("ff:events:{}", tag_of(&j.id));
    append(&mut c, &j, "t", b"1", &[]).unwrap();
    // An entry far in the future: the next frame goes after it.
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("9999999999999-5")
        .arg("x")
        .arg("y")
        .query(&mut c)
        .unwrap();
    let (id, _, _) = append(&mut c, &j, "t", b"2", &[]).unwrap();
    assert_eq!(id.as_deref(), Some("9999999999999-6"));
    // The tail deleted (the stream's last id is past its last entry).
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg("9999999999999-6")
        .query(&mut c)
        .unwrap();
    let (id, _, _) = append(&mut c, &j, "t", b"3", &[]).unwrap();
    assert_eq!(id.as_deref(), Some("9999999999999-7"));
    // The whole stream deleted: it starts again.
    let _: i64 = redis::cmd("DEL").arg(&key).query(&mut c).unwrap();
    append(&mut c, &j, "t", b"4", &[]).unwrap();
    // An entry added and deleted past the module's own: its id still counts
    // (the stream's last generated id, read from XINFO).
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("9999999999999-20")
        .arg("x")
        .arg("y")
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg("9999999999999-20")
        .query(&mut c)
        .unwrap();
    let (id, _, _) = append(&mut c, &j, "t", b"5", &[]).unwrap();
    assert_eq!(id.as_deref(), Some("9999999999999-21"));
    // The same for the feed.
    let _: String = redis::cmd("XADD")
        .arg(&events)
        .arg("9999999999999-0")
        .arg("x")
        .arg("y")
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("DEL").arg(&events).query(&mut c).unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&events)
        .arg("9999999999999-9")
        .arg("x")
        .arg("y")
        .query(&mut c)
        .unwrap();
    complete(&mut c, &j, None).unwrap();
    let last: Vec<Entry> = redis::cmd("XREVRANGE")
        .arg(&events)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(field(&last[0], "event"), Some(&b"completed"[..]));
    // A key of another type under the feed's name drops events, nothing else.
    let _: i64 = redis::cmd("DEL").arg(&events).query(&mut c).unwrap();
    let _: () = redis::cmd("SET")
        .arg(&events)
        .arg("x")
        .query(&mut c)
        .unwrap();
    submit(&mut c, "t", "p", &[]);
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    let mut r = replica.conn();
    wait_until(
        || digest(&mut c) == digest(&mut r),
        Duration::from_secs(10),
        "the replica's digest to match",
    );
}
