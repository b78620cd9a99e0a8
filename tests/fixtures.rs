//! Golden fixtures: data written by each encoding the module can read
//! (tests/fixtures/<name>/: an RDB, or an AOF directory, and what FF.GET,
//! the flow reads and the node commands showed when it was written) still
//! loads, to the same executions and flows. Each fixture is loaded on a
//! server started as a replica of nobody, so no timer moves what it
//! loaded.
//!
//! `FF_FIXTURE_DIR=tests/fixtures/<name> cargo test --release --test
//! fixtures -- --ignored write_fixture` writes a new one with the current
//! build (RDB) — done once, when an encoding changes.
mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Executions with fixed ids in fixed partitions, through every kind of
/// state and option the record encodes.
fn workload(c: &mut redis::Connection) -> Vec<String> {
    let mut ids = Vec::new();
    let id = |n: u32| format!("{{fp:{}}}:00000000-0000-4000-8000-{:012x}", n % 7, n);
    let mut add = |c: &mut redis::Connection, n: u32, lane: &str, extra: &[&str]| {
        let mut cmd = redis::cmd("FF.SUBMIT");
        cmd.arg(id(n)).arg(lane).arg(format!("payload-{n}"));
        for e in extra {
            cmd.arg(*e);
        }
        let got: String = cmd.query(c).unwrap();
        ids.push(got);
    };
    add(c, 1, "plain", &[]);
    add(
        c,
        2,
        "plain",
        &["PRIORITY", "7", "KIND", "mail", "NAMESPACE", "tenant-a"],
    );
    add(
        c,
        3,
        "caps",
        &[
            "CAPS", "gpu,cuda", "TAG", "app.x", "1", "TAG", "app.y", "two",
        ],
    );
    add(c, 4, "later", &["DELAY_UNTIL", "4102444800000"]);
    add(
        c,
        5,
        "retry",
        &[
            "MAX_RETRIES",
            "3",
            "BACKOFF",
            "EXPONENTIAL",
            "100",
            "5000",
            "2.5",
            "JITTER",
        ],
    );
    add(
        c,
        6,
        "dl",
        &["DEADLINE", "4102444800000", "ATTEMPT_TIMEOUT", "60000"],
    );
    add(c, 7, "idem", &["IDEMPOTENCY", "k-7", "3600000"]);
    add(c, 8, "leased", &[]);
    add(c, 9, "done", &[]);
    add(
        c,
        10,
        "failed",
        &["MAX_RETRIES", "1", "BACKOFF", "FIXED", "50"],
    );
    add(c, 11, "blocked", &[]);
    add(c, 12, "cancelled", &[]);
    // Leases of almost a week (the longest allowed).
    let hold = |c: &mut redis::Connection, lane: &str| {
        claim(c, "w", &[lane], &["LEASE", "600000000"]).unwrap()
    };
    let j = hold(c, "leased");
    let _: String = fenced("FF.PROGRESS", &j)
        .arg(40)
        .arg("MESSAGE")
        .arg("half")
        .query(c)
        .unwrap();
    let j = hold(c, "done");
    complete(c, &j, Some("the result")).unwrap();
    let j = hold(c, "failed");
    let _: redis::Value = fenced("FF.FAIL", &j)
        .arg("REASON")
        .arg("boom")
        .query(c)
        .unwrap();
    let _: String = redis::cmd("FF.BLOCK")
        .arg(id(11))
        .arg("REASON")
        .arg("held")
        .query(c)
        .unwrap();
    let _: String = redis::cmd("FF.CANCEL")
        .arg(id(12))
        .arg("REASON")
        .arg("no")
        .query(c)
        .unwrap();
    // Suspensions (record encoding 5) and the waitpoint key ring (node
    // state 3): fixed ids, so tokens and fingerprints are the same on
    // every write.
    let _: redis::Value = redis::cmd("FF.ROTATESECRET")
        .arg("fx1")
        .arg("00112233445566778899aabbccddeeff")
        .query(c)
        .unwrap();
    for (n, opts) in [
        (20u32, "WAITPOINT a WAITPOINT b CONDITION ALLOF 2 ONE a NAME go COUNT 2 SOURCES ANY 1 b TIMEOUT_AT 4102444800000 ON_TIMEOUT escalate IDEMPOTENCY s1 SUSPENSION_ID 00000000-0000-4000-8000-0000000000a0"),
        (21, "CONDITION SIGNAL done SUSPENSION_ID 00000000-0000-4000-8000-0000000000a1"),
        (22, ""),
    ] {
        let lane = format!("susp-{n}");
        add(c, n, &lane, &[]);
        let j = claim(c, "w", &[lane.as_str()], &["LEASE", "3600000"]).unwrap();
        if n == 22 {
            let _: Vec<String> = fenced("FF.WAITPOINT", &j)
                .arg("KEY")
                .arg("cb")
                .arg("WAITPOINT_ID")
                .arg("00000000-0000-4000-8000-0000000000b2")
                .query(c)
                .unwrap();
            continue;
        }
        let mut cmd = fenced("FF.SUSPEND", &j);
        for o in opts.split(' ') {
            cmd.arg(o);
        }
        let v: Vec<redis::Value> = cmd.query(c).unwrap();
        let wps: Vec<Vec<String>> = redis::from_redis_value(&v[2]).unwrap();
        let (wp, tok) = (&wps.last().unwrap()[0], &wps.last().unwrap()[2]);
        let _: (String, String) = redis::cmd("FF.SIGNAL")
            .arg(&j.id)
            .arg(wp)
            .arg(tok)
            .arg(if n == 21 { "done" } else { "vote" })
            .arg("PAYLOAD")
            .arg(&b"\x00\xff bytes"[..])
            .arg("SOURCE")
            .arg("user")
            .arg("alice")
            .arg("IDEMPOTENCY")
            .arg("i1")
            .arg("SIGNAL_ID")
            .arg(format!("00000000-0000-4000-8000-0000000000{n}"))
            .query(c)
            .unwrap();
    }
    // Output streams (record encoding 6): one closed by its completion
    // with a summary, one open with best-effort frames.
    for n in [30u32, 31] {
        let lane = format!("out-{n}");
        add(c, n, &lane, &[]);
        let j = claim(c, "w", &[lane.as_str()], &["LEASE", "600000000"]).unwrap();
        for (kind, payload, mode) in [
            ("token", r#"hello"#, "durable"),
            (
                "usage",
                r#"{"tokens":3,"model":{"name":"m","t":0.5}}"#,
                "summary",
            ),
            (
                "usage",
                r#"{"model":{"t":null},"done":"__ff_null__"}"#,
                "summary",
            ),
            ("live", "x", "best_effort"),
        ] {
            let _: redis::Value = fenced("FF.APPEND", &j)
                .arg(kind)
                .arg(payload)
                .arg("MODE")
                .arg(mode)
                .query(c)
                .unwrap();
        }
        if n == 30 {
            complete(c, &j, None).unwrap();
        }
    }
    // Classified failures (record encoding 6, tail flag 4): a permanent
    // one and an application's category made non-retryable end with
    // retries left; a transient one is retried.
    for (n, opts) in [
        (40u32, &["CATEGORY", "permanent"][..]),
        (41, &["CATEGORY", "bad_input", "NON_RETRYABLE"]),
        (42, &["CATEGORY", "transient"]),
    ] {
        let lane = format!("classified-{n}");
        add(
            c,
            n,
            &lane,
            &["MAX_RETRIES", "3", "BACKOFF", "FIXED", "600000000"],
        );
        let j = claim(c, "w", &[lane.as_str()], &["LEASE", "600000000"]).unwrap();
        let mut cmd = fenced("FF.FAIL", &j);
        cmd.arg("REASON").arg("classified");
        for o in opts {
            cmd.arg(*o);
        }
        let _: redis::Value = cmd.query(c).unwrap();
    }
    let _: i64 = redis::cmd("FF.PAUSE").arg("paused-lane").query(c).unwrap();
    let _: () = redis::cmd("FF.REGISTER")
        .arg("inst-1")
        .arg("worker-1")
        .arg(3_600_000)
        .arg("CAPS")
        .arg("gpu")
        .arg("LANES")
        .arg(2)
        .arg("plain")
        .arg("caps")
        .query(c)
        .unwrap();
    flows(c, &mut ids);
    ids
}

/// Flows (flow encoding 1, tagged items of their partition) with fixed
/// ids: members in every state a flow moves them to, edges pending,
/// satisfied, failed and skipped, groups pending, satisfied and
/// impossible under each policy, flows cancelled under each policy,
/// completed, empty, and tagged.
fn flows(c: &mut redis::Connection, ids: &mut Vec<String>) {
    let at = |p: u32, n: u32| format!("{{fp:{p}}}:00000000-0000-4000-8000-{n:012x}");
    let create = |c: &mut redis::Connection, id: &str, opts: &[&str]| {
        let mut cmd = redis::cmd("FF.FLOWCREATE");
        cmd.arg(id);
        for o in opts {
            cmd.arg(*o);
        }
        let (got, created): (String, i64) = cmd.query(c).unwrap();
        assert_eq!((got.as_str(), created), (id, 1));
    };
    // A member of `flow` with id `n` of the flow's partition, on lane
    // flow-<n in hex>.
    let mut member = |c: &mut redis::Connection, flow: &str, n: u32| -> String {
        let p: u32 = flow[4..flow.find('}').unwrap()].parse().unwrap();
        let id: String = redis::cmd("FF.SUBMIT")
            .arg(at(p, n))
            .arg(format!("flow-{n:x}"))
            .arg(format!("payload-{n:x}"))
            .arg("FLOW")
            .arg(flow)
            .query(c)
            .unwrap();
        ids.push(id.clone());
        id
    };
    let mut edge_n = 0xe00u32;
    let mut edge =
        |c: &mut redis::Connection, flow: &str, up: &str, down: &str, data: Option<&str>| {
            edge_n += 1;
            let mut cmd = redis::cmd("FF.EDGE");
            cmd.arg(flow)
                .arg(up)
                .arg(down)
                .arg("EDGE_ID")
                .arg(format!("00000000-0000-4000-8000-{edge_n:012x}"));
            if let Some(d) = data {
                cmd.arg("DATA").arg(d);
            }
            let (_, _, _, created): (String, i64, i64, i64) = cmd.query(c).unwrap();
            assert_eq!(created, 1);
        };
    let policy = |c: &mut redis::Connection, flow: &str, down: &str, p: &str| {
        let mut cmd = redis::cmd("FF.EDGEPOLICY");
        cmd.arg(flow).arg(down);
        for x in p.split(' ') {
            cmd.arg(x);
        }
        let set: String = cmd.query(c).unwrap();
        assert_eq!(set, "set");
    };
    let take = |c: &mut redis::Connection, n: u32| {
        claim(
            c,
            "w",
            &[format!("flow-{n:x}").as_str()],
            &["LEASE", "600000000"],
        )
        .unwrap_or_else(|| panic!("nothing to claim on flow-{n:x}"))
    };
    let run = |c: &mut redis::Connection, n: u32, result: Option<&str>| {
        let j = take(c, n);
        complete(c, &j, result).unwrap();
    };
    let fail = |c: &mut redis::Connection, n: u32| {
        let j = take(c, n);
        let _: redis::Value = fenced("FF.FAIL", &j)
            .arg("REASON")
            .arg("boom")
            .query(c)
            .unwrap();
    };
    let cancel = |c: &mut redis::Connection, flow: &str, p: &str| {
        let _: redis::Value = redis::cmd("FF.CANCELFLOW")
            .arg(flow)
            .arg("POLICY")
            .arg(p)
            .arg("REASON")
            .arg("operator")
            .query(c)
            .unwrap();
    };
    let tag = |c: &mut redis::Connection, flow: &str, kv: &[&str]| {
        let mut cmd = redis::cmd("FF.FLOWSETTAGS");
        cmd.arg(flow);
        for x in kv {
            cmd.arg(*x);
        }
        let _: i64 = cmd.query(c).unwrap();
    };

    // Three upstreams (one succeeds with a result, one fails, one never
    // runs) into all-of groups (pending, satisfied with a DATA edge,
    // impossible, impossible by a skip) and a quorum left pending.
    let f = at(4, 0xf01);
    create(c, &f, &["KIND", "etl", "NAMESPACE", "tenant-a"]);
    let [up1, up2, up3, all, data, skip, skip2, q] =
        [0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108].map(|n| member(c, &f, n));
    policy(c, &f, &q, "QUORUM 2 let_run");
    edge(c, &f, &up1, &all, Some("ref://up1"));
    edge(c, &f, &up3, &all, None);
    edge(c, &f, &up1, &data, Some("ref://up1"));
    edge(c, &f, &up2, &skip, None);
    edge(c, &f, &skip, &skip2, None);
    for u in [&up1, &up2, &up3] {
        edge(c, &f, u, &q, None);
    }
    run(c, 0x101, Some("up1 result"));
    fail(c, 0x102);
    tag(c, &f, &["app.owner", "fixture", "app.tier", "gold"]);

    // Any of, cancel remaining, fired: one sibling was running, one
    // waiting; both cancelled.
    let f = at(4, 0xf02);
    create(c, &f, &["KIND", "race"]);
    let [a, b, cc, d] = [0x111, 0x112, 0x113, 0x114].map(|n| member(c, &f, n));
    policy(c, &f, &d, "ANY_OF cancel_remaining");
    for u in [&a, &b, &cc] {
        edge(c, &f, u, &d, None);
    }
    take(c, 0x112);
    run(c, 0x111, None);

    // Quorum 2 of 2 with cancel remaining made impossible by a failure:
    // its other upstream is cancelled, which an any-of (let run) it
    // shares with a third counts as failed before the third succeeds.
    let f = at(4, 0xf03);
    create(c, &f, &[]);
    let [a, b, cc, qi, lr] = [0x121, 0x122, 0x125, 0x124, 0x123].map(|n| member(c, &f, n));
    policy(c, &f, &qi, "QUORUM 2 cancel_remaining");
    policy(c, &f, &lr, "ANY_OF let_run");
    edge(c, &f, &a, &qi, None);
    edge(c, &f, &b, &qi, None);
    edge(c, &f, &b, &lr, None);
    edge(c, &f, &cc, &lr, None);
    fail(c, 0x121);
    run(c, 0x125, None);

    // A parent parked by FF.WAITCHILDREN: one child done, one not.
    let f = at(4, 0xf04);
    create(c, &f, &["KIND", "tree"]);
    let parent = member(c, &f, 0x131);
    let jp = take(c, 0x131);
    for n in [0x132, 0x133] {
        let kid = member(c, &f, n);
        edge(c, &f, &kid, &parent, None);
    }
    let _: String = fenced("FF.WAITCHILDREN", &jp).query(c).unwrap();
    run(c, 0x132, None);

    // A chain run to completion.
    let f = at(4, 0xf05);
    create(c, &f, &["KIND", "chain"]);
    let [a, b] = [0x141, 0x142].map(|n| member(c, &f, n));
    edge(c, &f, &a, &b, Some("ref://a"));
    run(c, 0x141, Some("a result"));
    run(c, 0x142, None);

    // Cancelled under each policy: cancel_pending with a member running
    // (it runs on), cancel_all with one running (cancelled), flow_only
    // (members untouched); tags set after the cancel; and an empty flow.
    let f = at(5, 0xf06);
    create(c, &f, &["KIND", "stop"]);
    let [_, b, cc] = [0x151, 0x152, 0x153].map(|n| member(c, &f, n));
    edge(c, &f, &b, &cc, None);
    take(c, 0x151);
    cancel(c, &f, "cancel_pending");
    tag(c, &f, &["ops.note", "stopped"]);
    let f = at(5, 0xf07);
    create(c, &f, &[]);
    for n in [0x161, 0x162] {
        member(c, &f, n);
    }
    take(c, 0x161);
    cancel(c, &f, "cancel_all");
    let f = at(5, 0xf08);
    create(c, &f, &[]);
    member(c, &f, 0x171);
    cancel(c, &f, "flow_only");
    create(
        c,
        &at(5, 0xf09),
        &["KIND", "empty", "NAMESPACE", "tenant-b"],
    );
}

/// A reply value as the fixture's text shows it.
fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::Nil => "(nil)".into(),
        redis::Value::Int(i) => i.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// One line per field, `{prefix} {field} {value}`, by field name; an
/// array's items joined by commas, a nested reply as `[k=v ...]`.
fn field_lines(out: &mut Vec<String>, prefix: &str, f: &Fields) {
    let mut keys: Vec<&String> = f.keys().collect();
    keys.sort();
    for k in keys {
        let shown = match &f[k] {
            redis::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    redis::Value::Array(_) => format!("[{}]", inline(i)),
                    x => text(x),
                })
                .collect::<Vec<_>>()
                .join(","),
            x => text(x),
        };
        out.push(format!("{prefix} {k} {shown}"));
    }
}

/// A field/value reply on one line, `k=v ...` by field name.
fn inline(v: &redis::Value) -> String {
    let mut a: Vec<String> = pairs(v.clone())
        .into_iter()
        .map(|(k, v)| format!("{k}={}", text(&v)))
        .collect();
    a.sort();
    a.join(" ")
}

/// What a fixture's data shows: FF.GET of every execution, their
/// waitpoints, signals and streams, the flows of their partitions, and the
/// node commands, one line per field.
fn describe(c: &mut redis::Connection, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        field_lines(&mut out, id, &get(c, id));
    }
    for id in ids {
        for (name, extra) in [("FF.WAITPOINTS", None), ("FF.SIGNALS", Some("ALL"))] {
            let mut cmd = redis::cmd(name);
            cmd.arg(id);
            if let Some(x) = extra {
                cmd.arg(x);
            }
            let Ok(list) = cmd.query::<Vec<redis::Value>>(c) else {
                continue;
            };
            for item in list {
                let mut f: Vec<String> = pairs(item)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={}", text(&v)))
                    .collect();
                f.sort();
                out.push(format!("{id} {name} {}", f.join(" ")));
            }
        }
    }
    for id in ids {
        // The record's side of attempt 0's stream (the stream itself is a
        // plain key the server loads).
        let (doc, version, first, last): (Option<String>, i64, Option<i64>, Option<i64>) =
            redis::cmd("FF.SUMMARY").arg(id).arg(0).query(c).unwrap();
        if version > 0 {
            out.push(format!(
                "{id} FF.SUMMARY {} {version} {first:?} {last:?}",
                doc.unwrap_or_default()
            ));
        }
        let (entries, count, reason, at): (Vec<redis::Value>, i64, Option<String>, Option<i64>) =
            redis::cmd("FF.FRAMES").arg(id).arg(0).query(c).unwrap();
        if count > 0 {
            out.push(format!(
                "{id} FF.FRAMES {} {count} {reason:?} {at:?}",
                entries.len()
            ));
        }
    }
    // Flows: each partition's list and each flow described; each member's
    // edge group and its edges in and out.
    let partitions: std::collections::BTreeSet<String> = ids.iter().map(|id| tag_of(id)).collect();
    for p in &partitions {
        let (_, list): (redis::Value, Vec<(String, i64, String)>) = redis::cmd("FF.FLOWS")
            .arg(p)
            .arg("COUNT")
            .arg(10_000)
            .query(c)
            .unwrap();
        for (flow, created, state) in list {
            out.push(format!("{p} FF.FLOWS {flow} {created} {state}"));
            let f = pairs(redis::cmd("FF.FLOWGET").arg(&flow).query(c).unwrap());
            field_lines(&mut out, &format!("{flow} FF.FLOWGET"), &f);
        }
    }
    for id in ids {
        let flow = s(&get(c, id), "flow_id");
        if flow.is_empty() {
            continue;
        }
        let g: redis::Value = redis::cmd("FF.EDGEGROUP")
            .arg(&flow)
            .arg(id)
            .query(c)
            .unwrap();
        if g != redis::Value::Nil {
            out.push(format!("{id} FF.EDGEGROUP {}", inline(&g)));
        }
        // A DATA edge satisfied handed its upstream's result on.
        let payload: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(id).query(c).unwrap();
        out.push(format!(
            "{id} FF.PAYLOAD {}",
            String::from_utf8_lossy(&payload)
        ));
        for side in ["IN", "OUT"] {
            let edges: Vec<redis::Value> = redis::cmd("FF.EDGES")
                .arg(&flow)
                .arg(id)
                .arg(side)
                .query(c)
                .unwrap();
            for e in edges {
                out.push(format!("{id} FF.EDGES {side} {}", inline(&e)));
            }
        }
    }
    let paused: Vec<String> = redis::cmd("FF.PAUSED").query(c).unwrap();
    out.push(format!("paused {}", paused.join(",")));
    let workers: Vec<redis::Value> = redis::cmd("FF.WORKERS").query(c).unwrap();
    for w in workers {
        let mut f: Vec<String> = pairs(w)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", text(&v)))
            .collect();
        f.sort();
        out.push(format!("worker {}", f.join(" ")));
    }
    out
}

#[test]
#[ignore]
fn write_fixture() {
    let dir = PathBuf::from(std::env::var("FF_FIXTURE_DIR").expect("FF_FIXTURE_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let srv = Server::start(&["--appendonly", "no"]);
    let mut c = srv.conn();
    let ids = workload(&mut c);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    std::fs::copy(srv.dir.join("dump.rdb"), dir.join("dump.rdb")).unwrap();
    std::fs::write(dir.join("ids.txt"), ids.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("expected.txt"),
        describe(&mut c, &ids).join("\n") + "\n",
    )
    .unwrap();
}

/// A dead port: the fixture's server is a replica of nobody, so its timer
/// leaves the loaded data as it was.
fn nobody() -> String {
    free_port().to_string()
}

#[test]
fn every_fixture_loads_to_what_it_showed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let fixture = entry.unwrap().path();
        if !fixture.is_dir() {
            continue;
        }
        let dir = fresh_dir("fixture");
        for f in std::fs::read_dir(&fixture).unwrap() {
            let f = f.unwrap().path();
            let to = dir.join(f.file_name().unwrap());
            if f.is_dir() {
                std::fs::create_dir_all(&to).unwrap();
                for g in std::fs::read_dir(&f).unwrap() {
                    let g = g.unwrap().path();
                    std::fs::copy(&g, to.join(g.file_name().unwrap())).unwrap();
                }
            } else {
                std::fs::copy(&f, &to).unwrap();
            }
        }
        let aof = dir.join("appendonlydir").is_dir();
        let port = nobody();
        let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
        if aof {
            args.extend(["--appendonly", "yes"]);
        }
        let srv = Server::start_in(dir.clone(), &args);
        let mut c = srv.conn();
        let ids: Vec<String> = std::fs::read_to_string(fixture.join("ids.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let want = std::fs::read_to_string(fixture.join("expected.txt")).unwrap();
        let got = describe(&mut c, &ids);
        // Every line the fixture recorded is still shown (later builds may
        // show more fields).
        for line in want.lines() {
            assert!(
                got.iter().any(|g| g == line),
                "{}: {line} is no longer shown; got:\n{}",
                fixture.display(),
                got.join("\n")
            );
        }
        seen += 1;
    }
    assert!(seen >= 1, "no fixtures found");
}

/// Every partition encoding the build reads (2 up to the one it writes)
/// has its RDB fixture: bumping the encoding means adding one.
#[test]
fn every_readable_encoding_has_a_fixture() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = pairs(redis::cmd("FF.VERSION").query(&mut c).unwrap());
    let current = n(&f, "encoding");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for v in 2..=current {
        let dump = root.join(format!("rdb-v{v}/dump.rdb"));
        assert!(dump.is_file(), "no fixture {}", dump.display());
    }
}

/// An AOF with everything the module replicates, timer batches and a dead
/// worker's revocations included, rewritten once midway (the base then
/// holds FF.LOADREC records) — written by the build under test, so running
/// it with an older module keeps that version's command forms readable.
#[test]
#[ignore]
fn write_aof_fixture() {
    let dir = PathBuf::from(std::env::var("FF_FIXTURE_DIR").expect("FF_FIXTURE_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let srv = Server::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        "no",
    ]);
    let mut c = srv.conn();
    let mut ids = workload(&mut c);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Timer batches: leases that run out, delays that fall due.
    for n in 20..26u32 {
        let id: String = redis::cmd("FF.SUBMIT")
            .arg(format!("{{fp:3}}:00000000-0000-4000-8000-{n:012x}"))
            .arg("timed")
            .arg("x")
            .query(&mut c)
            .unwrap();
        ids.push(id);
    }
    for _ in 0..3 {
        claim(&mut c, "tw", &["timed"], &["LEASE", "20"]).unwrap();
    }
    // A dead worker's leases are revoked.
    let _: () = redis::cmd("FF.REGISTER")
        .arg("tw-i")
        .arg("tw")
        .arg(3_600_000)
        .query(&mut c)
        .unwrap();
    for _ in 0..2 {
        claim(&mut c, "tw", &["timed"], &["LEASE", "600000000"]).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _: i64 = redis::cmd("FF.MARKDEAD").arg("tw-i").query(&mut c).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    // Paused lanes and the worker registry are node state, kept as RDB
    // aux data: an AOF rewrite without the RDB preamble drops them (the
    // README says so), so this fixture checks executions only.
    let mut expected = describe(&mut c, &ids);
    expected.retain(|l| !l.starts_with("paused") && !l.starts_with("worker"));
    let aof = srv.dir.join("appendonlydir");
    let to = dir.join("appendonlydir");
    std::fs::create_dir_all(&to).unwrap();
    for f in std::fs::read_dir(&aof).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("ids.txt"), ids.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("expected.txt"), expected.join("\n") + "\n").unwrap();
}
