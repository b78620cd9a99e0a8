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

/// The partition of the workload's flows (one the other executions reach
/// only by chance: `*` spreads them over every partition).
const FLOW_TAG: &str = "{fp:7}";

/// Members of the big flow: more than the 1,000 units a command does,
/// so the node timer continues the cancel in batches.
const BIG_FLOW: usize = 2500;

/// Flows of every shape, on lanes of their own (`fl-{tag}-...`); returns
/// their members' ids (the big flow's sampled) and the flows still
/// cascading when it returns.
fn flow_workload(c: &mut redis::Connection, tag: &str) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let lane = |name: &str| format!("fl-{tag}-{name}");
    let new_flow = |c: &mut redis::Connection| -> String {
        let (id, created): (String, i64) = redis::cmd("FF.FLOWCREATE")
            .arg(FLOW_TAG)
            .arg("KIND")
            .arg("dag")
            .arg("NAMESPACE")
            .arg(tag)
            .query(c)
            .unwrap();
        assert_eq!(created, 1);
        id
    };
    let member = |c: &mut redis::Connection, f: &str, name: &str| -> String {
        redis::cmd("FF.SUBMIT")
            .arg(FLOW_TAG)
            .arg(lane(name))
            .arg(format!("payload-{name}"))
            .arg("FLOW")
            .arg(f)
            .query(c)
            .unwrap()
    };
    let edge = |c: &mut redis::Connection, f: &str, up: &str, down: &str, opts: &[&str]| {
        let mut cmd = redis::cmd("FF.EDGE");
        cmd.arg(f).arg(up).arg(down);
        for o in opts {
            cmd.arg(*o);
        }
        let (_, _, _, created): (String, i64, i64, i64) = cmd.query(c).unwrap();
        assert_eq!(created, 1);
    };
    let policy = |c: &mut redis::Connection, f: &str, down: &str, p: &[&str]| {
        let mut cmd = redis::cmd("FF.EDGEPOLICY");
        cmd.arg(f).arg(down);
        for x in p {
            cmd.arg(*x);
        }
        let set: String = cmd.query(c).unwrap();
        assert_eq!(set, "set");
    };
    let take = |c: &mut redis::Connection, name: &str| -> Job {
        claim(c, "w", &[lane(name).as_str()], &[])
            .unwrap_or_else(|| panic!("nothing to claim on {}", lane(name)))
    };
    let run = |c: &mut redis::Connection, name: &str, result: Option<&str>| {
        let j = take(c, name);
        complete(c, &j, result).unwrap();
    };
    let state = |c: &mut redis::Connection, id: &str| s(&get(c, id), "public_state");

    // A diamond run to completion, a's result handed to b by a DATA edge;
    // tagged.
    let f = new_flow(c);
    let [a, b, cc, d] = ["dia-a", "dia-b", "dia-c", "dia-d"].map(|l| member(c, &f, l));
    edge(c, &f, &a, &b, &["DATA", "artifact://a"]);
    edge(c, &f, &a, &cc, &[]);
    edge(c, &f, &b, &d, &[]);
    edge(c, &f, &cc, &d, &[]);
    run(c, "dia-a", Some("result-of-a"));
    let pb: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(&b).query(c).unwrap();
    assert_eq!(pb, b"result-of-a");
    for l in ["dia-b", "dia-c", "dia-d"] {
        run(c, l, None);
    }
    let tags: i64 = redis::cmd("FF.FLOWSETTAGS")
        .arg(&f)
        .arg("app.owner")
        .arg(tag)
        .arg("app.kind")
        .arg("diamond")
        .query(c)
        .unwrap();
    assert_eq!(tags, 2);
    ids.extend([a, b, cc, d]);

    // Any of, cancel remaining: the first success releases the child and
    // cancels its siblings, one of them running (its holder is fenced
    // out).
    let f = new_flow(c);
    let ups: Vec<String> = (0..3).map(|i| member(c, &f, &format!("any-{i}"))).collect();
    let down = member(c, &f, "any-d");
    policy(c, &f, &down, &["ANY_OF", "cancel_remaining"]);
    for u in &ups {
        edge(c, &f, u, &down, &[]);
    }
    let running = take(c, "any-1");
    run(c, "any-0", None);
    assert_eq!(state(c, &down), "waiting");
    for u in &ups[1..] {
        assert_eq!(state(c, u), "cancelled");
    }
    assert!(complete(c, &running, None).is_err());
    ids.extend(ups);
    ids.push(down);

    // Quorum 2 of 3, let run: one success, the group left pending.
    let f = new_flow(c);
    let ups: Vec<String> = (0..3).map(|i| member(c, &f, &format!("q-{i}"))).collect();
    let down = member(c, &f, "q-d");
    policy(c, &f, &down, &["QUORUM", "2", "let_run"]);
    for u in &ups {
        edge(c, &f, u, &down, &[]);
    }
    run(c, "q-0", None);
    assert_eq!(state(c, &down), "waiting_children");
    ids.extend(ups);
    ids.push(down);

    // A chain whose head fails: every level below is skipped.
    let f = new_flow(c);
    let chain: Vec<String> = (0..4).map(|i| member(c, &f, &format!("ch-{i}"))).collect();
    for w in chain.windows(2) {
        edge(c, &f, &w[0], &w[1], &[]);
    }
    let j = take(c, "ch-0");
    let _: redis::Value = fenced("FF.FAIL", &j)
        .arg("REASON")
        .arg("boom")
        .query(c)
        .unwrap();
    for x in &chain[1..] {
        assert_eq!(state(c, x), "skipped");
    }
    ids.extend(chain);

    // Cancelled with cancel_pending while one member is claimed: it keeps
    // running, the others are cancelled. Tagged after the cancel.
    let f = new_flow(c);
    let [p, q, r] = ["cp-p", "cp-q", "cp-r"].map(|l| member(c, &f, l));
    edge(c, &f, &q, &r, &[]);
    let _held = take(c, "cp-p");
    let reply: (String, i64, i64, i64) = redis::cmd("FF.CANCELFLOW")
        .arg(&f)
        .arg("POLICY")
        .arg("cancel_pending")
        .arg("REASON")
        .arg("operator")
        .query(c)
        .unwrap();
    assert_eq!(reply, ("cancel_pending".into(), 1, 2, 0));
    assert_eq!(state(c, &p), "active");
    assert_eq!(state(c, &q), "cancelled");
    assert_eq!(state(c, &r), "cancelled");
    let _: i64 = redis::cmd("FF.FLOWSETTAGS")
        .arg(&f)
        .arg("ops.note")
        .arg("cancelled")
        .query(c)
        .unwrap();
    ids.extend([p, q, r]);

    // A running parent spawns two children it depends on and parks with
    // FF.WAITCHILDREN; one child done, the other not.
    let f = new_flow(c);
    let parent = member(c, &f, "wc-parent");
    let jp = take(c, "wc-parent");
    let kids: Vec<String> = (0..2)
        .map(|i| member(c, &f, &format!("wc-kid{i}")))
        .collect();
    for k in &kids {
        edge(c, &f, k, &parent, &[]);
    }
    let _: redis::Value = fenced("FF.WAITCHILDREN", &jp).query(c).unwrap();
    run(c, "wc-kid0", None);
    assert_eq!(state(c, &parent), "waiting_children");
    ids.push(parent);
    ids.extend(kids);

    // A flow larger than a command's share of flow work, cancelled with
    // cancel_all: the node timer cancels the rest in batches (the caller
    // waits for it to finish).
    let f = new_flow(c);
    let mut pipe = redis::pipe();
    for _ in 0..BIG_FLOW {
        pipe.cmd("FF.SUBMIT")
            .arg(FLOW_TAG)
            .arg(lane("big"))
            .arg("p")
            .arg("FLOW")
            .arg(&f);
    }
    let big: Vec<String> = pipe.query(c).unwrap();
    let reply: (String, i64, i64, i64) = redis::cmd("FF.CANCELFLOW")
        .arg(&f)
        .arg("POLICY")
        .arg("cancel_all")
        .query(c)
        .unwrap();
    let batch = flowfabric_core::partition::cascade::CASCADE_BUDGET as i64;
    assert_eq!(
        reply,
        ("cancel_all".into(), 1, batch, BIG_FLOW as i64 - batch)
    );
    ids.extend(big.iter().step_by(250).cloned());
    ids.extend(big.last().cloned());
    (ids, vec![f])
}

/// The flows a restored node holds still resolve: the quorum's second
/// success releases its child, the parked parent's last child releases
/// it.
fn flows_still_resolve(c: &mut redis::Connection, tag: &str) {
    for name in ["q-1", "wc-kid1"] {
        let lane = format!("fl-{tag}-{name}");
        let j = claim(c, "after", &[lane.as_str()], &[])
            .unwrap_or_else(|| panic!("nothing to claim on {lane}"));
        complete(c, &j, None).unwrap();
        let flow = s(&get(c, &j.id), "flow_id");
        let out: Vec<redis::Value> = redis::cmd("FF.EDGES")
            .arg(&flow)
            .arg(&j.id)
            .arg("OUT")
            .query(c)
            .unwrap();
        let down = s(&pairs(out[0].clone()), "downstream_execution_id");
        assert_eq!(s(&get(c, &down), "public_state"), "waiting", "{lane}");
    }
}

/// Whether flow work for `flow` is still queued.
fn cascading(c: &mut redis::Connection, flow: &str) -> bool {
    let f = pairs(redis::cmd("FF.FLOWGET").arg(flow).query(c).unwrap());
    n(&f, "cascading") != 0
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
    // Classified failures: a permanent one and one marked non-retryable
    // end with retries left (the primary pins RETRY_AT 0); a transient one
    // retries.
    let mut classified = Vec::new();
    for opts in [
        &["CATEGORY", "permanent"][..],
        &["CATEGORY", "bad_input", "NON_RETRYABLE"],
        &["CATEGORY", "transient"],
    ] {
        let id = submit(
            &mut c,
            &lf,
            "c",
            &["MAX_RETRIES", "3", "BACKOFF", "FIXED", "600000"],
        );
        let j = claim(&mut c, "w", &[lf.as_str()], &[]).unwrap();
        assert_eq!(j.id, id);
        let mut cmd = fenced("FF.FAIL", &j);
        cmd.arg("REASON").arg("classified");
        for o in opts {
            cmd.arg(*o);
        }
        let _: redis::Value = cmd.query(&mut c).unwrap();
        classified.push(id);
    }
    ids.extend(classified);
    // Relative times: a delay and a deadline counted from the submit's
    // pinned time, and a holder's delay FOR a span.
    ids.push(submit(
        &mut c,
        &ld,
        "rel",
        &["DELAY", "3600000", "DEADLINE_IN", "7200000"],
    ));
    let parked_for = submit(&mut c, &lf, "pf", &[]);
    let j = claim(&mut c, "w", &[lf.as_str()], &[]).unwrap();
    assert_eq!(j.id, parked_for);
    let _: String = fenced("FF.DELAY", &j)
        .arg("FOR")
        .arg(3_600_000)
        .query(&mut c)
        .unwrap();
    ids.push(parked_for);
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
    // Flows: a DAG run through, groups fired and pending, skips, tags,
    // cancels under two policies (one continued by the node timer) and a
    // parent waiting for its children.
    let (members, cascading_flows) = flow_workload(&mut c, tag);
    ids.extend(members);
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
    // The big flow's cancel finishes in the node timer's batches.
    for f in &cascading_flows {
        wait_for(|| !cascading(&mut c, f), "the flow cancel to finish");
    }
    ids.dedup();
    ids
}

/// What the tests compare: FF.GET of every execution; FF.FLOWGET of
/// every flow they joined, with each member's edge group and its edges in
/// and out; and each such partition's list of flows.
#[derive(Debug, PartialEq)]
struct Snapshot {
    executions: Vec<Fields>,
    flows: Vec<(String, redis::Value)>,
}

fn snapshot(c: &mut redis::Connection, ids: &[String]) -> Snapshot {
    let executions: Vec<Fields> = ids.iter().map(|id| get(c, id)).collect();
    let mut flows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut ask = |c: &mut redis::Connection, args: Vec<&str>| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let v: redis::Value = cmd.query(c).unwrap();
        flows.push((args.join(" "), v));
    };
    for (id, e) in ids.iter().zip(&executions) {
        let f = s(e, "flow_id");
        if f.is_empty() {
            continue;
        }
        if seen.insert(f.clone()) {
            ask(c, vec!["FF.FLOWGET", &f]);
        }
        ask(c, vec!["FF.EDGEGROUP", &f, id]);
        ask(c, vec!["FF.EDGES", &f, id, "IN"]);
        ask(c, vec!["FF.EDGES", &f, id, "OUT"]);
    }
    let partitions: std::collections::BTreeSet<String> = seen.iter().map(|f| tag_of(f)).collect();
    for p in &partitions {
        ask(c, vec!["FF.FLOWS", p, "COUNT", "10000"]);
    }
    Snapshot { executions, flows }
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
    // And the flows the replica was sent resolve as on the primary.
    flows_still_resolve(&mut p, "rep");
    flows_still_resolve(&mut r, "rep");
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
    flows_still_resolve(&mut c, "aof");
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
        // Far enough out that a restart on a loaded machine is over
        // before it falls due (the digests compare the saved state).
        &["DELAY_UNTIL", &((sec + 4) * 1000).to_string()],
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
    flows_still_resolve(&mut c, "rdb");
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
    flows_still_resolve(&mut c, "rw1");
    flows_still_resolve(&mut c, "rw2");
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
    flows_still_resolve(&mut c, "rt");
}
