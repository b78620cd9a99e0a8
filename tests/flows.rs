//! Flows on a real server: DAGs whose dependents the completing command
//! resolves, edge-group policies (all of, any of, quorum, with cancel
//! remaining or let run), skip propagation, edges added after their
//! upstream ended, every refusal, cancelling a flow under each policy,
//! waiting for children, replays, and a cascade larger than one batch
//! finishing after a restart and after a failover.
mod common;

use std::time::{Duration, Instant};

use common::*;
use redis::Value;

const TAG: &str = "{fp:7}";

fn flow(c: &mut redis::Connection) -> String {
    let (id, created): (String, i64) = redis::cmd("FF.FLOWCREATE")
        .arg(TAG)
        .arg("KIND")
        .arg("dag")
        .query(c)
        .unwrap();
    assert_eq!(created, 1);
    id
}

/// A new member of `flow` on `lane`.
fn member(c: &mut redis::Connection, flow: &str, lane: &str) -> String {
    redis::cmd("FF.SUBMIT")
        .arg(TAG)
        .arg(lane)
        .arg(format!("payload-{lane}"))
        .arg("FLOW")
        .arg(flow)
        .query(c)
        .unwrap()
}

fn edge_cmd(flow: &str, up: &str, down: &str, opts: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("FF.EDGE");
    cmd.arg(flow).arg(up).arg(down);
    for o in opts {
        cmd.arg(*o);
    }
    cmd
}

/// Adds an edge; `[edge id, revision, unsatisfied, created]`.
fn edge(
    c: &mut redis::Connection,
    flow: &str,
    up: &str,
    down: &str,
    opts: &[&str],
) -> (String, i64, i64, i64) {
    edge_cmd(flow, up, down, opts).query(c).unwrap()
}

fn policy(c: &mut redis::Connection, flow: &str, down: &str, p: &[&str]) -> String {
    let mut cmd = redis::cmd("FF.EDGEPOLICY");
    cmd.arg(flow).arg(down);
    for x in p {
        cmd.arg(*x);
    }
    cmd.query(c).unwrap()
}

fn state(c: &mut redis::Connection, id: &str) -> String {
    s(&get(c, id), "public_state")
}

fn reason(c: &mut redis::Connection, id: &str) -> String {
    s(&get(c, id), "reason")
}

/// Claims the one job of `lane` (each member has a lane of its own).
fn take(c: &mut redis::Connection, lane: &str) -> Job {
    claim(c, "w", &[lane], &[]).unwrap_or_else(|| panic!("nothing to claim on {lane}"))
}

fn run(c: &mut redis::Connection, lane: &str, result: Option<&str>) {
    let j = take(c, lane);
    complete(c, &j, result).unwrap();
}

fn fail(c: &mut redis::Connection, lane: &str) {
    let j = take(c, lane);
    let _: Value = fenced("FF.FAIL", &j).query(c).unwrap();
}

fn flow_get(c: &mut redis::Connection, flow: &str) -> Fields {
    pairs(redis::cmd("FF.FLOWGET").arg(flow).query(c).unwrap())
}

fn group(c: &mut redis::Connection, flow: &str, down: &str) -> Fields {
    pairs(
        redis::cmd("FF.EDGEGROUP")
            .arg(flow)
            .arg(down)
            .query(c)
            .unwrap(),
    )
}

fn nested(f: &Fields, k: &str) -> Fields {
    pairs(f.get(k).cloned().unwrap_or(Value::Array(vec![])))
}

#[test]
fn diamond_runs_in_order_and_describes_itself() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let [a, b, cc, d] = ["a", "b", "c", "d"].map(|l| member(&mut c, &f, l));
    edge(&mut c, &f, &a, &b, &["DATA", "artifact://hash-abc"]);
    edge(&mut c, &f, &a, &cc, &[]);
    edge(&mut c, &f, &b, &d, &[]);
    let (_, rev, unsatisfied, created) = edge(&mut c, &f, &cc, &d, &["REVISION", "7"]);
    assert_eq!((rev, unsatisfied, created), (8, 2, 1));
    for x in [&b, &cc, &d] {
        assert_eq!(state(&mut c, x), "waiting_children");
    }
    assert_eq!(state(&mut c, &a), "waiting");
    assert!(claim(&mut c, "w", &["b", "c", "d"], &[]).is_none());

    run(&mut c, "a", Some("result-of-a"));
    // The completing command released b and c, and handed a's result to b.
    assert_eq!(state(&mut c, &b), "waiting");
    assert_eq!(state(&mut c, &cc), "waiting");
    assert_eq!(state(&mut c, &d), "waiting_children");
    let pb: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(&b).query(&mut c).unwrap();
    assert_eq!(pb, b"result-of-a");
    let pc: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(&cc).query(&mut c).unwrap();
    assert_eq!(pc, b"payload-c");
    run(&mut c, "b", None);
    assert_eq!(state(&mut c, &d), "waiting_children");
    let g = group(&mut c, &f, &d);
    assert_eq!(
        (
            s(&g, "policy"),
            n(&g, "total_deps"),
            n(&g, "satisfied_count")
        ),
        ("all_of".into(), 2, 1)
    );
    let fg = flow_get(&mut c, &f);
    assert_eq!(s(&fg, "state"), "open");
    run(&mut c, "c", None);
    assert_eq!(state(&mut c, &d), "waiting");
    assert_eq!(s(&group(&mut c, &f, &d), "group_state"), "satisfied");
    let j = take(&mut c, "d");
    assert_eq!(s(&flow_get(&mut c, &f), "state"), "running");
    complete(&mut c, &j, None).unwrap();

    let fg = flow_get(&mut c, &f);
    assert_eq!(s(&fg, "flow_id"), f);
    assert_eq!(s(&fg, "kind"), "dag");
    assert_eq!(s(&fg, "state"), "completed");
    assert_eq!((n(&fg, "node_count"), n(&fg, "edge_count")), (4, 4));
    assert_eq!(n(&fg, "revision"), 8);
    assert_eq!(n(&fg, "cascading"), 0);
    assert_eq!(n(&nested(&fg, "members"), "completed"), 4);
    assert_eq!(s(&get(&mut c, &a), "flow_id"), f);

    // Edges in and out, and one described.
    let out: Vec<Value> = redis::cmd("FF.EDGES")
        .arg(&f)
        .arg(&a)
        .arg("OUT")
        .query(&mut c)
        .unwrap();
    assert_eq!(out.len(), 2);
    let e0 = pairs(out[0].clone());
    assert_eq!(s(&e0, "upstream_execution_id"), a);
    assert_eq!(s(&e0, "downstream_execution_id"), b);
    assert_eq!(s(&e0, "dependency_kind"), "success_only");
    assert_eq!(s(&e0, "satisfaction_condition"), "all_required");
    assert_eq!(s(&e0, "data_passing_ref"), "artifact://hash-abc");
    assert_eq!(s(&e0, "edge_state"), "satisfied");
    assert_eq!(s(&e0, "created_by"), "engine");
    let one = pairs(
        redis::cmd("FF.EDGEGET")
            .arg(&f)
            .arg(s(&e0, "edge_id"))
            .query(&mut c)
            .unwrap(),
    );
    assert_eq!(one, e0);
    let into: Vec<Value> = redis::cmd("FF.EDGES")
        .arg(&f)
        .arg(&d)
        .arg("IN")
        .query(&mut c)
        .unwrap();
    assert_eq!(into.len(), 2);
    let none: Vec<Value> = redis::cmd("FF.EDGES")
        .arg(&f)
        .arg(&d)
        .arg("OUT")
        .query(&mut c)
        .unwrap();
    assert!(none.is_empty());
    let missing: Value = redis::cmd("FF.FLOWGET")
        .arg(format!("{TAG}:00000000-0000-4000-8000-000000000001"))
        .query(&mut c)
        .unwrap();
    assert_eq!(missing, Value::Nil);
}

#[test]
fn a_chain_runs_and_a_failure_skips_every_level_below() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let ids: Vec<String> = (0..10)
        .map(|i| member(&mut c, &f, &format!("l{i}")))
        .collect();
    for w in ids.windows(2) {
        edge(&mut c, &f, &w[0], &w[1], &[]);
    }
    for i in 0..10 {
        assert!(claim(&mut c, "w", &[&format!("l{}", i + 1)], &[]).is_none() || i == 9);
        run(&mut c, &format!("l{i}"), None);
    }
    assert_eq!(s(&flow_get(&mut c, &f), "state"), "completed");

    // Three levels under a failing head: all skipped, transitively, by
    // the failing command.
    let g = flow(&mut c);
    let [h, x, y, z] = ["h", "x", "y", "z"].map(|l| member(&mut c, &g, l));
    edge(&mut c, &g, &h, &x, &[]);
    edge(&mut c, &g, &x, &y, &[]);
    edge(&mut c, &g, &y, &z, &[]);
    fail(&mut c, "h");
    for id in [&x, &y, &z] {
        assert_eq!(state(&mut c, id), "skipped");
        assert_eq!(reason(&mut c, id), "dependency_impossible");
    }
    let fg = flow_get(&mut c, &g);
    assert_eq!(s(&fg, "state"), "failed");
    assert_eq!(n(&nested(&fg, "members"), "skipped"), 3);
    assert_eq!(s(&group(&mut c, &g, &z), "group_state"), "impossible");
}

/// n upstreams (lanes `{p}0..`) into one downstream (lane `{p}d`) under
/// `pol`.
fn fan_in(
    c: &mut redis::Connection,
    p: &str,
    k: usize,
    pol: &[&str],
) -> (String, Vec<String>, String) {
    let f = flow(c);
    let ups: Vec<String> = (0..k).map(|i| member(c, &f, &format!("{p}{i}"))).collect();
    let d = member(c, &f, &format!("{p}d"));
    if !pol.is_empty() {
        assert_eq!(policy(c, &f, &d, pol), "set");
    }
    for u in &ups {
        edge(c, &f, u, &d, &[]);
    }
    (f, ups, d)
}

#[test]
fn any_of_and_quorum_with_both_on_satisfied_behaviours() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    // Any of, cancel remaining: the first success releases the child and
    // cancels the running siblings in the same command.
    let (f, ups, d) = fan_in(&mut c, "ar", 3, &["ANY_OF", "cancel_remaining"]);
    let j1 = take(&mut c, "ar1");
    run(&mut c, "ar0", None);
    assert_eq!(state(&mut c, &d), "waiting");
    for u in &ups[1..] {
        assert_eq!(state(&mut c, u), "cancelled");
        assert_eq!(reason(&mut c, u), "sibling_quorum_satisfied");
    }
    // The running sibling's holder is fenced out.
    assert_eq!(
        err_code(complete(&mut c, &j1, None).map(Value::SimpleString)),
        "EXECUTION_NOT_ACTIVE"
    );
    let g = group(&mut c, &f, &d);
    assert_eq!((n(&g, "satisfied_count"), n(&g, "failed_count")), (1, 2));
    // A cancel-remaining win is not a failed flow.
    run(&mut c, "ard", None);
    assert_eq!(s(&flow_get(&mut c, &f), "state"), "completed");

    // Any of, let run: nobody is cancelled; a later success only counts.
    let (f, ups, d) = fan_in(&mut c, "al", 3, &["ANY_OF", "let_run"]);
    run(&mut c, "al0", None);
    assert_eq!(state(&mut c, &d), "waiting");
    let fired = n(&group(&mut c, &f, &d), "fired_at");
    for u in &ups[1..] {
        assert_eq!(state(&mut c, u), "waiting");
    }
    run(&mut c, "al1", None);
    let g = group(&mut c, &f, &d);
    assert_eq!((n(&g, "satisfied_count"), n(&g, "fired_at")), (2, fired));

    // Quorum 3 of 5, cancel remaining: two successes wait, the third
    // releases and cancels the last two.
    let (_, ups, d) = fan_in(&mut c, "qr", 5, &["QUORUM", "3", "cancel_remaining"]);
    run(&mut c, "qr0", None);
    run(&mut c, "qr1", None);
    assert_eq!(state(&mut c, &d), "waiting_children");
    run(&mut c, "qr2", None);
    assert_eq!(state(&mut c, &d), "waiting");
    for u in &ups[3..] {
        assert_eq!(reason(&mut c, u), "sibling_quorum_satisfied");
    }

    // Quorum 3 of 5 made impossible by three failures: the child is
    // skipped and, with cancel remaining, the rest cancelled.
    let (_, ups, d) = fan_in(&mut c, "qi", 5, &["QUORUM", "3", "cancel_remaining"]);
    fail(&mut c, "qi0");
    fail(&mut c, "qi1");
    assert_eq!(state(&mut c, &d), "waiting_children");
    fail(&mut c, "qi2");
    assert_eq!(state(&mut c, &d), "skipped");
    for u in &ups[3..] {
        assert_eq!(reason(&mut c, u), "sibling_quorum_impossible");
    }
    // Let run: impossible skips the child, cancels nobody.
    let (_, ups, d) = fan_in(&mut c, "ql", 5, &["QUORUM", "3", "let_run"]);
    for l in ["ql0", "ql1", "ql2"] {
        fail(&mut c, l);
    }
    assert_eq!(state(&mut c, &d), "skipped");
    for u in &ups[3..] {
        assert_eq!(state(&mut c, u), "waiting");
    }

    // The reference's pitfall: k larger than the edges applied so far is
    // not impossible at the first resolution; it waits for more edges.
    let f = flow(&mut c);
    let u0 = member(&mut c, &f, "k0");
    let dd = member(&mut c, &f, "kd");
    policy(&mut c, &f, &dd, &["QUORUM", "2", "let_run"]);
    edge(&mut c, &f, &u0, &dd, &[]);
    run(&mut c, "k0", None);
    assert_eq!(state(&mut c, &dd), "waiting_children");
    let u1 = member(&mut c, &f, "k1");
    edge(&mut c, &f, &u1, &dd, &[]);
    run(&mut c, "k1", None);
    assert_eq!(state(&mut c, &dd), "waiting");

    // Quorum(1, cancel remaining) over 50: one success cancels 49.
    let (_, ups, d) = fan_in(&mut c, "q50-", 50, &["QUORUM", "1", "cancel_remaining"]);
    run(&mut c, "q50-0", None);
    assert_eq!(state(&mut c, &d), "waiting");
    let cancelled = ups[1..]
        .iter()
        .filter(|u| state(&mut c, u) == "cancelled")
        .count();
    assert_eq!(cancelled, 49);
}

#[test]
fn an_edge_after_its_upstream_ended_is_resolved_at_once() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let up = member(&mut c, &f, "u");
    run(&mut c, "u", Some("r"));
    let down = member(&mut c, &f, "d");
    let (_, _, unsatisfied, _) = edge(&mut c, &f, &up, &down, &["DATA", "x"]);
    assert_eq!(unsatisfied, 1);
    // Resolved by the same command (the reference leaves it to a 15 s
    // reconciler).
    assert_eq!(state(&mut c, &down), "waiting");
    let p: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(&down).query(&mut c).unwrap();
    assert_eq!(p, b"r");
    // A failed upstream skips a late downstream at once.
    let bad = member(&mut c, &f, "b");
    fail(&mut c, "b");
    let late = member(&mut c, &f, "l");
    edge(&mut c, &f, &bad, &late, &[]);
    assert_eq!(state(&mut c, &late), "skipped");
}

#[test]
fn refusals_name_the_reference_errors_and_change_nothing() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let [a, b, x] = ["a", "b", "x"].map(|l| member(&mut c, &f, l));
    edge(&mut c, &f, &a, &b, &[]);
    let other = flow(&mut c);
    let stranger = member(&mut c, &other, "s");
    let solo = submit(&mut c, "solo", "p", &[]);
    let solo7: String = redis::cmd("FF.SUBMIT")
        .arg(TAG)
        .arg("solo7")
        .arg("p")
        .query(&mut c)
        .unwrap();
    let nope = format!("{TAG}:00000000-0000-4000-8000-000000000009");
    let before = digest(&mut c);
    let q = |c: &mut redis::Connection, cmd: redis::Cmd| err_code(cmd.query::<Value>(c));
    let cases: Vec<(redis::Cmd, &str)> = vec![
        (edge_cmd(&f, &a, &a, &[]), "SELF_REFERENCING_EDGE"),
        (edge_cmd(&nope, &a, &b, &[]), "FLOW_NOT_FOUND"),
        (
            edge_cmd(&f, &a, &x, &["REVISION", "1"]),
            "STALE_GRAPH_REVISION",
        ),
        (edge_cmd(&f, &stranger, &b, &[]), "EXECUTION_NOT_IN_FLOW"),
        (edge_cmd(&f, &a, &solo7, &[]), "EXECUTION_NOT_IN_FLOW"),
        (edge_cmd(&f, &b, &a, &[]), "CYCLE_DETECTED"),
        (edge_cmd(&f, &a, &b, &[]), "DEPENDENCY_ALREADY_EXISTS"),
        (edge_cmd(&f, &a, &solo, &[]), "PARTITION_MISMATCH"),
        (edge_cmd(&f, &a, &x, &["KIND", "any"]), "INVALID_INPUT"),
        (
            redis::cmd("FF.FLOWADD").arg(&f).arg(&stranger).clone(),
            "ALREADY_MEMBER_OF_DIFFERENT_FLOW",
        ),
        (
            redis::cmd("FF.FLOWADD")
                .arg(&f)
                .arg(format!("{TAG}:00000000-0000-4000-8000-00000000000a"))
                .clone(),
            "EXECUTION_NOT_FOUND",
        ),
        (
            redis::cmd("FF.FLOWADD").arg(&nope).arg(&solo7).clone(),
            "FLOW_NOT_FOUND",
        ),
        (
            redis::cmd("FF.EDGEPOLICY")
                .arg(&f)
                .arg(&b)
                .arg("ANY_OF")
                .arg("let_run")
                .clone(),
            "INVALID_INPUT",
        ),
        (
            redis::cmd("FF.EDGEPOLICY")
                .arg(&f)
                .arg(&x)
                .arg("QUORUM")
                .arg("0")
                .arg("let_run")
                .clone(),
            "INVALID_INPUT",
        ),
        (
            redis::cmd("FF.EDGEPOLICY")
                .arg(&f)
                .arg(&x)
                .arg("ANY_OF")
                .clone(),
            "INVALID_INPUT",
        ),
        (
            redis::cmd("FF.EDGEPOLICY")
                .arg(&f)
                .arg(&x)
                .arg("SOME_OF")
                .clone(),
            "INVALID_INPUT",
        ),
        (
            redis::cmd("FF.EDGEPOLICY")
                .arg(&f)
                .arg(&solo7)
                .arg("ALL_OF")
                .clone(),
            "EXECUTION_NOT_IN_FLOW",
        ),
        (
            redis::cmd("FF.FLOWSETTAGS")
                .arg(&f)
                .arg("Bad")
                .arg("v")
                .clone(),
            "INVALID_TAG_KEY",
        ),
        (
            redis::cmd("FF.FLOWSETTAGS")
                .arg(&f)
                .arg("app.k")
                .arg("v")
                .arg("app.j")
                .clone(),
            "INVALID_INPUT",
        ),
        (
            redis::cmd("FF.FLOWSETTAGS")
                .arg(&nope)
                .arg("app.k")
                .arg("v")
                .clone(),
            "FLOW_NOT_FOUND",
        ),
        (
            redis::cmd("FF.CANCELFLOW")
                .arg(&f)
                .arg("POLICY")
                .arg("some")
                .clone(),
            "INVALID_INPUT",
        ),
        (
            redis::cmd("FF.CANCELFLOW").arg(&nope).clone(),
            "FLOW_NOT_FOUND",
        ),
        (
            redis::cmd("FF.SUBMIT")
                .arg(TAG)
                .arg("l")
                .arg("p")
                .arg("FLOW")
                .arg(&nope)
                .clone(),
            "FLOW_NOT_FOUND",
        ),
        (
            redis::cmd("FF.SUBMIT")
                .arg("{fp:8}")
                .arg("l")
                .arg("p")
                .arg("FLOW")
                .arg(&f)
                .clone(),
            "PARTITION_MISMATCH",
        ),
        (redis::cmd("FF.FLOWCREATE").arg("{fp:x}").clone(), "ERR"),
        (
            redis::cmd("FF.FLOWS")
                .arg(TAG)
                .arg("COUNT")
                .arg("-1")
                .clone(),
            "ERR",
        ),
    ];
    for (cmd, code) in cases {
        assert_eq!(
            q(&mut c, cmd.clone()),
            code,
            "{:?}",
            cmd.get_packed_command()
        );
    }
    assert_eq!(digest(&mut c), before, "a refusal changed something");
    // A group that fired takes no more edges; an ended downstream none.
    run(&mut c, "a", None);
    assert_eq!(
        q(&mut c, edge_cmd(&f, &x, &b, &[])),
        "GROUP_ALREADY_TERMINAL"
    );
    let done = member(&mut c, &f, "done");
    run(&mut c, "done", None);
    assert_eq!(
        q(&mut c, edge_cmd(&f, &x, &done, &[])),
        "GROUP_ALREADY_TERMINAL"
    );
    // A retry of an edge is not an error; the same id for another pair is.
    let free = member(&mut c, &f, "free");
    let (id, rev, _, created) = edge(&mut c, &f, &x, &free, &[]);
    assert_eq!(created, 1);
    let again = edge(&mut c, &f, &x, &free, &["EDGE_ID", &id]);
    assert_eq!((again.1, again.3), (rev, 0));
    let reused = edge_cmd(&f, &a, &x, &["EDGE_ID", &id]).query::<Value>(&mut c);
    assert_eq!(err_code(reused), "DEPENDENCY_ALREADY_EXISTS");
    // Tags and the flow's own idempotent create.
    let n_tags: i64 = redis::cmd("FF.FLOWSETTAGS")
        .arg(&f)
        .arg("app.owner")
        .arg("me")
        .arg("app.a")
        .arg("1")
        .query(&mut c)
        .unwrap();
    assert_eq!(n_tags, 2);
    let tags = nested(&flow_get(&mut c, &f), "tags");
    assert_eq!(s(&tags, "app.owner"), "me");
    let (same, created): (String, i64) = redis::cmd("FF.FLOWCREATE").arg(&f).query(&mut c).unwrap();
    assert_eq!((same, created), (f.clone(), 0));
}

#[test]
fn cancel_flow_under_each_policy() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let cancel = |c: &mut redis::Connection, f: &str, p: &str| -> (String, i64, i64, i64) {
        redis::cmd("FF.CANCELFLOW")
            .arg(f)
            .arg("POLICY")
            .arg(p)
            .arg("REASON")
            .arg("operator")
            .query(c)
            .unwrap()
    };
    // cancel_all: every member not ended, running ones too.
    let f = flow(&mut c);
    let [a, b, d] = ["a", "b", "d"].map(|l| member(&mut c, &f, l));
    edge(&mut c, &f, &a, &d, &[]);
    let ja = take(&mut c, "a");
    run(&mut c, "b", None);
    assert_eq!(
        cancel(&mut c, &f, "cancel_all"),
        ("cancel_all".into(), 1, 2, 0)
    );
    assert_eq!(state(&mut c, &a), "cancelled");
    assert_eq!(reason(&mut c, &a), "operator");
    assert_eq!(state(&mut c, &b), "completed");
    assert_eq!(state(&mut c, &d), "cancelled");
    assert_eq!(
        err_code(complete(&mut c, &ja, None).map(Value::SimpleString)),
        "EXECUTION_NOT_ACTIVE"
    );
    let fg = flow_get(&mut c, &f);
    assert_eq!(s(&fg, "state"), "cancelled");
    assert_eq!(s(&fg, "cancel_reason"), "operator");
    assert_eq!(s(&fg, "cancellation_policy"), "cancel_all");
    // Idempotent: the first policy stands; the flow takes no members.
    assert_eq!(
        cancel(&mut c, &f, "flow_only"),
        ("cancel_all".into(), 0, 0, 0)
    );
    let solo7: String = redis::cmd("FF.SUBMIT")
        .arg(TAG)
        .arg("z")
        .arg("p")
        .query(&mut c)
        .unwrap();
    let r = redis::cmd("FF.FLOWADD")
        .arg(&f)
        .arg(&solo7)
        .query::<Value>(&mut c);
    assert_eq!(err_code(r), "FLOW_ALREADY_TERMINAL");

    // cancel_pending: a member running under a live lease finishes.
    let f = flow(&mut c);
    let [p, q] = ["p", "q"].map(|l| member(&mut c, &f, l));
    let jp = take(&mut c, "p");
    assert_eq!(cancel(&mut c, &f, "cancel_pending").2, 1);
    assert_eq!(state(&mut c, &p), "active");
    assert_eq!(state(&mut c, &q), "cancelled");
    complete(&mut c, &jp, None).unwrap();

    // flow_only: the flow is marked, no member moves.
    let f = flow(&mut c);
    let m = member(&mut c, &f, "m");
    assert_eq!(
        cancel(&mut c, &f, "flow_only"),
        ("flow_only".into(), 1, 0, 0)
    );
    assert_eq!(state(&mut c, &m), "waiting");
    assert_eq!(s(&flow_get(&mut c, &f), "state"), "cancelled");
}

#[test]
fn wait_children_is_released_by_the_flow() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let parent = member(&mut c, &f, "parent");
    let jp = take(&mut c, "parent");
    // The running parent spawns two children it depends on, then parks.
    let kids: Vec<String> = (0..2)
        .map(|i| member(&mut c, &f, &format!("kid{i}")))
        .collect();
    for k in &kids {
        edge(&mut c, &f, k, &parent, &[]);
    }
    assert_eq!(state(&mut c, &parent), "active");
    let _: Value = fenced("FF.WAITCHILDREN", &jp).query(&mut c).unwrap();
    assert_eq!(state(&mut c, &parent), "waiting_children");
    run(&mut c, "kid0", None);
    assert_eq!(state(&mut c, &parent), "waiting_children");
    run(&mut c, "kid1", None);
    assert_eq!(state(&mut c, &parent), "waiting");
    let j = take(&mut c, "parent");
    assert_eq!(n(&j.fields, "resumed"), 1);
    complete(&mut c, &j, None).unwrap();

    // Children done before the parent parks: released at once.
    let f = flow(&mut c);
    let parent = member(&mut c, &f, "p2");
    let jp = take(&mut c, "p2");
    let kid = member(&mut c, &f, "k2");
    edge(&mut c, &f, &kid, &parent, &[]);
    run(&mut c, "k2", None);
    let _: Value = fenced("FF.WAITCHILDREN", &jp).query(&mut c).unwrap();
    assert_eq!(state(&mut c, &parent), "waiting");
}

#[test]
fn replay_resets_a_members_dependencies() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let [a, b] = ["a", "b"].map(|l| member(&mut c, &f, l));
    edge(&mut c, &f, &a, &b, &[]);
    fail(&mut c, "a");
    assert_eq!(state(&mut c, &b), "skipped");
    // Replaying the skipped child alone re-resolves from its upstream as
    // it is now: still failed, so skipped again.
    let _: Value = redis::cmd("FF.REPLAY").arg(&b).query(&mut c).unwrap();
    assert_eq!(state(&mut c, &b), "skipped");
    // Upstream first, then the child: it waits for the upstream's new run.
    let _: Value = redis::cmd("FF.REPLAY").arg(&a).query(&mut c).unwrap();
    let _: Value = redis::cmd("FF.REPLAY").arg(&b).query(&mut c).unwrap();
    assert_eq!(state(&mut c, &b), "waiting_children");
    let g = group(&mut c, &f, &b);
    assert_eq!(
        (s(&g, "group_state"), n(&g, "failed_count")),
        ("pending".into(), 0)
    );
    run(&mut c, "a", None);
    assert_eq!(state(&mut c, &b), "waiting");
}

#[test]
fn fan_out_of_a_thousand_joins_in_the_last_completing_command() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (f, ups, d) = fan_in(&mut c, "", 0, &[]);
    let _ = ups;
    let mut pipe = redis::pipe();
    for _ in 0..1000 {
        pipe.cmd("FF.SUBMIT")
            .arg(TAG)
            .arg("up")
            .arg("p")
            .arg("FLOW")
            .arg(&f);
    }
    let ups: Vec<String> = pipe.query(&mut c).unwrap();
    let mut pipe = redis::pipe();
    for u in &ups {
        pipe.cmd("FF.EDGE").arg(&f).arg(u).arg(&d).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    assert_eq!(n(&group(&mut c, &f, &d), "total_deps"), 1000);
    for _ in 0..999 {
        run(&mut c, "up", None);
    }
    assert_eq!(state(&mut c, &d), "waiting_children");
    run(&mut c, "up", None);
    assert_eq!(state(&mut c, &d), "waiting");
    assert!(claim(&mut c, "w", &["d"], &[]).is_some());
}

/// A flow of `n` waiting members on lane `lane`.
fn big_flow(c: &mut redis::Connection, n: usize, lane: &str) -> (String, Vec<String>) {
    let f = flow(c);
    let mut pipe = redis::pipe();
    for _ in 0..n {
        pipe.cmd("FF.SUBMIT")
            .arg(TAG)
            .arg(lane)
            .arg("p")
            .arg("FLOW")
            .arg(&f);
    }
    let ids: Vec<String> = pipe.query(c).unwrap();
    (f, ids)
}

fn cancelled_count(c: &mut redis::Connection, f: &str) -> i64 {
    let m = nested(&flow_get(c, f), "members");
    m.get("cancelled")
        .map_or(0, |v| redis::from_redis_value(v).unwrap())
}

/// A primary with a replica, a flow of 10,000 waiting members, cancelled
/// on the primary, which is stopped (SIGSTOP) once the replica has the
/// cancel: the replica holds the cascade part done (its first batch, and
/// whatever timer batches the primary ran before it stopped). Returns the
/// servers, the flow, and how many members the replica had cancelled.
fn stopped_mid_cascade(replica_args: &[&str]) -> (Server, Server, String, i64) {
    let primary = Server::start(&[]);
    let replica = Server::start_replica(&primary, replica_args);
    let mut c = primary.conn();
    let (f, _) = big_flow(&mut c, 10_000, "huge");
    let reply: (String, i64, i64, i64) = redis::cmd("FF.CANCELFLOW").arg(&f).query(&mut c).unwrap();
    let batch = flowfabric_core::partition::cascade::CASCADE_BUDGET as i64;
    assert_eq!((reply.2, reply.3), (batch, 10_000 - batch));
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    let _ = std::process::Command::new("kill")
        .arg("-STOP")
        .arg(primary.pid().to_string())
        .status();
    let mut r = replica.conn();
    let seen = cancelled_count(&mut r, &f);
    assert!(seen >= batch, "the replica ran the cancel's own batch");
    eprintln!("the replica had {seen} of 10000 members cancelled when its primary stopped");
    (primary, replica, f, seen)
}

fn resume(primary: &Server) {
    let _ = std::process::Command::new("kill")
        .arg("-CONT")
        .arg(primary.pid().to_string())
        .status();
}

#[test]
fn a_cascade_larger_than_a_batch_finishes_after_a_restart() {
    // The replica's half-done state is saved; started again from that
    // snapshot on its own, it finishes the rest.
    let (primary, mut replica, f, _) = stopped_mid_cascade(&["--appendonly", "no"]);
    let mut r = replica.conn();
    let _: Value = redis::cmd("SAVE").query(&mut r).unwrap();
    replica.restart_with(&["--appendonly", "no"]);
    let mut r = replica.conn();
    wait_until(
        || cancelled_count(&mut r, &f) == 10_000,
        Duration::from_secs(20),
        "the restarted node to finish the cascade",
    );
    assert_eq!(n(&flow_get(&mut r, &f), "cascading"), 0);
    resume(&primary);
}

#[test]
fn a_cascade_larger_than_a_batch_finishes_after_a_failover() {
    let (primary, replica, f, _) = stopped_mid_cascade(&[]);
    let mut r = replica.conn();
    let started = Instant::now();
    let _: Value = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .unwrap();
    wait_until(
        || cancelled_count(&mut r, &f) == 10_000,
        Duration::from_secs(20),
        "the promoted replica to finish the cascade",
    );
    eprintln!("the promoted replica finished in {:?}", started.elapsed());
    assert_eq!(n(&flow_get(&mut r, &f), "cascading"), 0);
    resume(&primary);
}

#[test]
fn submit_after_adds_the_edges_with_the_member() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let a = member(&mut c, &f, "same");
    let sub = |c: &mut redis::Connection, after: &[&str]| -> redis::RedisResult<String> {
        let mut cmd = redis::cmd("FF.SUBMIT");
        cmd.arg(TAG).arg("same").arg("p").arg("FLOW").arg(&f);
        for u in after {
            cmd.arg("AFTER").arg(*u);
        }
        cmd.query(c)
    };
    let b = sub(&mut c, &[&a]).unwrap();
    let d = sub(&mut c, &[&a, &b]).unwrap();
    // Never claimable before their edges: one lane, three claims in order.
    assert_eq!(state(&mut c, &b), "waiting_children");
    assert_eq!(n(&group(&mut c, &f, &d), "total_deps"), 2);
    for want in [&a, &b, &d] {
        let j = take(&mut c, "same");
        assert_eq!(&j.id, want);
        assert!(claim(&mut c, "w", &["same"], &[]).is_none());
        complete(&mut c, &j, None).unwrap();
    }
    // Refusals create nothing.
    let before = digest(&mut c);
    let solo: String = redis::cmd("FF.SUBMIT")
        .arg(TAG)
        .arg("x")
        .arg("p")
        .query(&mut c)
        .unwrap();
    let after_solo = digest(&mut c);
    assert_ne!(before, after_solo);
    assert_eq!(
        err_code(sub(&mut c, &[&solo]).map(Value::SimpleString)),
        "EXECUTION_NOT_IN_FLOW"
    );
    assert_eq!(
        err_code(sub(&mut c, &[&a, &a]).map(Value::SimpleString)),
        "INVALID_INPUT"
    );
    let r = redis::cmd("FF.SUBMIT")
        .arg(TAG)
        .arg("x")
        .arg("p")
        .arg("AFTER")
        .arg(&a)
        .query::<Value>(&mut c);
    assert_eq!(err_code(r), "ERR");
    assert_eq!(digest(&mut c), after_solo);
}

#[test]
fn retention_removes_a_flow_with_its_last_member() {
    let srv = Server::start(&["--flowfabric.retention-ms", "100"]);
    let mut c = srv.conn();
    let f = flow(&mut c);
    let a = member(&mut c, &f, "ra");
    let b = redis::cmd("FF.SUBMIT")
        .arg(TAG)
        .arg("rb")
        .arg("p")
        .arg("FLOW")
        .arg(&f)
        .arg("AFTER")
        .arg(&a)
        .query::<String>(&mut c)
        .unwrap();
    run(&mut c, "ra", None);
    let gone = |c: &mut redis::Connection, id: &str| {
        redis::cmd("FF.GET").arg(id).query::<Value>(c).is_err()
    };
    wait_until(|| gone(&mut c, &a), Duration::from_secs(5), "a's retention");
    // The flow keeps its other member, and the edge from the removed one.
    assert_eq!(n(&flow_get(&mut c, &f), "node_count"), 1);
    assert_eq!(state(&mut c, &b), "waiting");
    run(&mut c, "rb", None);
    wait_until(
        || {
            redis::cmd("FF.FLOWGET")
                .arg(&f)
                .query::<Value>(&mut c)
                .unwrap()
                == Value::Nil
        },
        Duration::from_secs(5),
        "the flow's removal",
    );
}
