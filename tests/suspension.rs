//! Suspension, waitpoints and signed signals on a real server: suspend →
//! signal → resume → the next claim resumes the same attempt; tokens
//! bound to their execution and waitpoint; rotation with grace; composite
//! conditions (and the reference's defects, fixed); pending waitpoints
//! with buffered signals; timeouts; duplicates.
mod common;

use std::time::Duration;

use common::*;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn server() -> (Server, redis::Connection) {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let r: Vec<redis::Value> = redis::cmd("FF.ROTATESECRET")
        .arg("k1")
        .arg(SECRET)
        .query(&mut c)
        .unwrap();
    assert_eq!(redis::from_redis_value::<String>(&r[0]).unwrap(), "rotated");
    (srv, c)
}

struct Susp {
    status: String,
    id: String,
    /// (waitpoint id, key, token)
    wps: Vec<Vec<String>>,
}

fn suspend(c: &mut redis::Connection, j: &Job, opts: &[&str]) -> redis::RedisResult<Susp> {
    let mut cmd = fenced("FF.SUSPEND", j);
    for o in opts {
        cmd.arg(*o);
    }
    let v: Vec<redis::Value> = cmd.query(c)?;
    Ok(Susp {
        status: redis::from_redis_value(&v[0]).unwrap(),
        id: redis::from_redis_value(&v[1]).unwrap(),
        wps: redis::from_redis_value(&v[2]).unwrap(),
    })
}

fn signal(
    c: &mut redis::Connection,
    id: &str,
    wp: &str,
    token: &str,
    name: &str,
    opts: &[&str],
) -> redis::RedisResult<(String, String)> {
    let mut cmd = redis::cmd("FF.SIGNAL");
    cmd.arg(id).arg(wp).arg(token).arg(name);
    for o in opts {
        cmd.arg(*o);
    }
    cmd.query(c)
}

fn effect(r: redis::RedisResult<(String, String)>) -> String {
    r.unwrap().1
}

fn job(c: &mut redis::Connection, lane: &str) -> Job {
    submit(c, lane, "p", &[]);
    claim(c, "w", &[lane], &["LEASE", "60000"]).unwrap()
}

#[test]
fn suspend_signal_resume_claims_the_same_attempt() {
    let (_srv, mut c) = server();
    let j = job(&mut c, "q");
    let s = suspend(
        &mut c,
        &j,
        &[
            "REASON",
            "waiting_for_approval",
            "CONDITION",
            "SIGNAL",
            "approve",
        ],
    )
    .unwrap();
    assert_eq!(s.status, "suspended");
    assert_eq!(s.wps.len(), 1);
    assert!(s.wps[0][2].starts_with("k1:") && s.wps[0][2].len() == 3 + 64);
    let f = get(&mut c, &j.id);
    for (k, v) in [
        ("lifecycle_phase", "suspended"),
        ("ownership_state", "unowned"),
        ("eligibility_state", "not_applicable"),
        ("blocking_reason", "waiting_for_approval"),
        ("attempt_state", "attempt_interrupted"),
        ("public_state", "suspended"),
    ] {
        assert_eq!(s_(&f, k), v, "{k}");
    }
    assert_eq!(s_(&f, "current_suspension_id"), s.id);
    assert_eq!(s_(&f, "current_waitpoint_id"), s.wps[0][0]);
    assert_eq!(
        s_(&f, "blocking_detail"),
        format!(
            "suspended: waitpoint {} awaiting waiting_for_approval",
            s.wps[0][0]
        )
    );
    assert!(
        claim(&mut c, "w2", &["q"], &[]).is_none(),
        "suspended work is not claimable"
    );
    // The old fence no longer works.
    assert_eq!(
        complete(&mut c, &j, None).unwrap_err().code(),
        Some("EXECUTION_NOT_ACTIVE")
    );
    let (wp, tok) = (&s.wps[0][0], &s.wps[0][2]);
    assert_eq!(
        effect(signal(&mut c, &j.id, wp, tok, "other", &[])),
        "signal_ignored_matcher_failed"
    );
    let payload = b"\x00\xffapproved by jane\r\n";
    let mut cmd = redis::cmd("FF.SIGNAL");
    cmd.arg(&j.id)
        .arg(wp)
        .arg(tok)
        .arg("approve")
        .arg("PAYLOAD")
        .arg(&payload[..]);
    cmd.arg("SOURCE").arg("user").arg("jane");
    let (_, e): (String, String) = cmd.query(&mut c).unwrap();
    assert_eq!(e, "resume_condition_satisfied");
    let f = get(&mut c, &j.id);
    assert_eq!(s_(&f, "public_state"), "waiting");
    assert_eq!(s_(&f, "attempt_state"), "attempt_interrupted");
    let r = claim(&mut c, "w2", &["q"], &["LEASE", "60000"]).expect("resumed work is claimable");
    assert_eq!(r.id, j.id);
    assert_eq!(r.attempt_id, j.attempt_id, "the same attempt resumes");
    assert_eq!(n(&r.fields, "attempt_index"), n(&j.fields, "attempt_index"));
    assert_eq!(r.epoch, j.epoch + 1);
    assert_eq!(n(&r.fields, "resumed"), 1);
    assert_eq!(n(&j.fields, "resumed"), 0);
    // The holder observes what satisfied the condition, byte-exact.
    let sigs: Vec<redis::Value> = redis::cmd("FF.SIGNALS").arg(&j.id).query(&mut c).unwrap();
    assert_eq!(sigs.len(), 1);
    let g = pairs(sigs[0].clone());
    assert_eq!(s_(&g, "signal_name"), "approve");
    assert_eq!(s_(&g, "source_identity"), "jane");
    let got: Vec<u8> = redis::from_redis_value(g.get("payload").unwrap()).unwrap();
    assert_eq!(got, payload);
    // The waitpoint is closed: its token opens nothing now.
    assert_eq!(
        signal(&mut c, &j.id, wp, tok, "approve", &[])
            .unwrap_err()
            .code(),
        Some("WAITPOINT_CLOSED")
    );
    complete(&mut c, &r, None).unwrap();
}

fn s_(f: &Fields, k: &str) -> String {
    s(f, k)
}

#[test]
fn tokens_are_bound_and_checked_first() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let j = job(&mut c, "q");
    assert_eq!(
        suspend(&mut c, &j, &[])
            .err()
            .and_then(|e| e.code().map(str::to_string)),
        Some("HMAC_SECRET_NOT_INITIALIZED".into())
    );
    let _: redis::Value = redis::cmd("FF.ROTATESECRET")
        .arg("k1")
        .arg(SECRET)
        .query(&mut c)
        .unwrap();
    let a = suspend(&mut c, &j, &["WAITPOINT", "wa"]).unwrap();
    let j2 = job(&mut c, "q");
    let b = suspend(&mut c, &j2, &["WAITPOINT", "wa"]).unwrap();
    let (wa, ta) = (&a.wps[0][0], &a.wps[0][2]);
    let (wb, tb) = (&b.wps[0][0], &b.wps[0][2]);
    let code =
        |r: redis::RedisResult<(String, String)>| r.unwrap_err().code().unwrap_or("").to_string();
    assert_eq!(
        code(signal(&mut c, &j.id, wa, "", "x", &[])),
        "MISSING_TOKEN"
    );
    let mut forged = ta.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        code(signal(&mut c, &j.id, wa, &forged, "x", &[])),
        "INVALID_TOKEN"
    );
    assert_eq!(
        code(signal(
            &mut c,
            &j.id,
            wa,
            &format!("k9:{}", "0".repeat(64)),
            "x",
            &[]
        )),
        "INVALID_TOKEN"
    );
    // Cross-execution and cross-waitpoint: refused, even with the same key.
    assert_eq!(
        code(signal(&mut c, &j.id, wa, tb, "x", &[])),
        "INVALID_TOKEN"
    );
    assert_eq!(
        code(signal(&mut c, &j2.id, wb, ta, "x", &[])),
        "INVALID_TOKEN"
    );
    assert_eq!(
        code(signal(&mut c, &j.id, wb, tb, "x", &[])),
        "INVALID_TOKEN"
    );
    // A waitpoint that does not exist looks the same as a bad token.
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        code(signal(&mut c, &j.id, unknown, ta, "x", &[])),
        "INVALID_TOKEN"
    );
    // Nothing changed.
    assert_eq!(s(&get(&mut c, &j.id), "public_state"), "suspended");
    assert_eq!(
        effect(signal(&mut c, &j.id, wa, ta, "x", &[])),
        "resume_condition_satisfied"
    );
    // FF.WPTOKEN and FF.WAITPOINTS never show a secret.
    let t: Option<String> = redis::cmd("FF.WPTOKEN")
        .arg(&j2.id)
        .arg(wb)
        .query(&mut c)
        .unwrap();
    assert_eq!(t.as_deref(), Some(tb.as_str()));
    let list: Vec<redis::Value> = redis::cmd("FF.WAITPOINTS")
        .arg(&j2.id)
        .query(&mut c)
        .unwrap();
    let w = pairs(list[0].clone());
    assert_eq!(s(&w, "state"), "active");
    assert_eq!(s(&w, "token_kid"), "k1");
    assert_eq!(s(&w, "token_fingerprint"), tb[3..19]);
    let secrets: Vec<redis::Value> = redis::cmd("FF.SECRETS").query(&mut c).unwrap();
    assert!(!format!("{secrets:?}").contains("0001020304"));
}

#[test]
fn rotation_keeps_old_tokens_for_the_grace_only() {
    let (_srv, mut c) = server();
    let j = job(&mut c, "q");
    let s = suspend(&mut c, &j, &["CONDITION", "SIGNAL", "done"]).unwrap();
    let (wp, tok) = (&s.wps[0][0], &s.wps[0][2]);
    let r: Vec<redis::Value> = redis::cmd("FF.ROTATESECRET")
        .arg("k2")
        .arg("11".repeat(32))
        .arg("GRACE")
        .arg(300)
        .query(&mut c)
        .unwrap();
    assert_eq!(
        redis::from_redis_value::<Vec<String>>(&redis::Value::Array(r)).unwrap(),
        ["rotated", "k1", "k2", "0"]
    );
    assert_eq!(
        effect(signal(&mut c, &j.id, wp, tok, "noise", &[])),
        "signal_ignored_matcher_failed"
    );
    let t2: String = redis::cmd("FF.WPTOKEN")
        .arg(&j.id)
        .arg(wp)
        .query(&mut c)
        .unwrap();
    assert!(t2.starts_with("k2:"));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        signal(&mut c, &j.id, wp, tok, "done", &[])
            .unwrap_err()
            .code(),
        Some("TOKEN_EXPIRED")
    );
    assert_eq!(
        effect(signal(&mut c, &j.id, wp, &t2, "done", &[])),
        "resume_condition_satisfied"
    );
    let bad: redis::RedisResult<redis::Value> = redis::cmd("FF.ROTATESECRET")
        .arg("k2")
        .arg("22".repeat(32))
        .query(&mut c);
    assert_eq!(err_code(bad), "ROTATION_CONFLICT");
    let bad: redis::RedisResult<redis::Value> = redis::cmd("FF.ROTATESECRET")
        .arg("a:b")
        .arg(SECRET)
        .query(&mut c);
    assert_eq!(err_code(bad), "INVALID_KID");
    let bad: redis::RedisResult<redis::Value> = redis::cmd("FF.ROTATESECRET")
        .arg("k3")
        .arg("zz11")
        .query(&mut c);
    assert_eq!(err_code(bad), "INVALID_SECRET_HEX");
}

#[test]
fn composite_conditions_and_the_reference_defects() {
    let (_srv, mut c) = server();
    // AllOf of two names on one waitpoint; a repeat is a duplicate.
    let j = job(&mut c, "q");
    let s = suspend(
        &mut c,
        &j,
        &[
            "WAITPOINT",
            "k",
            "CONDITION",
            "ALLOF",
            "2",
            "ONE",
            "k",
            "NAME",
            "a",
            "ONE",
            "k",
            "NAME",
            "b",
        ],
    )
    .unwrap();
    let (id, wp, tok) = (&j.id, &s.wps[0][0], &s.wps[0][2]);
    assert_eq!(
        effect(signal(&mut c, id, wp, tok, "a", &[])),
        "appended_to_waitpoint"
    );
    assert_eq!(
        effect(signal(&mut c, id, wp, tok, "a", &[])),
        "appended_to_waitpoint_duplicate"
    );
    assert_eq!(
        effect(signal(&mut c, id, wp, tok, "b", &[])),
        "resume_condition_satisfied"
    );
    // Nested AllOf -> AllOf -> Count resolves (it never did in the reference).
    let j = job(&mut c, "q");
    let s = suspend(
        &mut c,
        &j,
        &[
            "WAITPOINT",
            "x",
            "WAITPOINT",
            "y",
            "CONDITION",
            "ALLOF",
            "2",
            "ONE",
            "x",
            "ANY",
            "ALLOF",
            "1",
            "COUNT",
            "2",
            "SOURCES",
            "NAME",
            "ok",
            "1",
            "y",
        ],
    )
    .unwrap();
    let (x, tx) = (&s.wps[0][0], &s.wps[0][2]);
    let (y, ty) = (&s.wps[1][0], &s.wps[1][2]);
    assert_eq!(
        effect(signal(&mut c, &j.id, x, tx, "go", &[])),
        "appended_to_waitpoint"
    );
    assert_eq!(
        effect(signal(
            &mut c,
            &j.id,
            y,
            ty,
            "ok",
            &["SOURCE", "u", "alice"]
        )),
        "appended_to_waitpoint"
    );
    assert_eq!(
        effect(signal(
            &mut c,
            &j.id,
            y,
            ty,
            "ok",
            &["SOURCE", "u", "alice"]
        )),
        "appended_to_waitpoint_duplicate"
    );
    assert_eq!(
        effect(signal(&mut c, &j.id, y, ty, "no", &["SOURCE", "u", "bob"])),
        "signal_ignored_matcher_failed"
    );
    // Satisfied through the extra waitpoint: every waitpoint closes.
    assert_eq!(
        effect(signal(&mut c, &j.id, y, ty, "ok", &["SOURCE", "u", "bob"])),
        "resume_condition_satisfied"
    );
    let list: Vec<redis::Value> = redis::cmd("FF.WAITPOINTS")
        .arg(&j.id)
        .query(&mut c)
        .unwrap();
    for w in list {
        assert_eq!(s_(&pairs(w), "state"), "closed");
    }
    assert_eq!(
        signal(&mut c, &j.id, x, tx, "go", &[]).unwrap_err().code(),
        Some("WAITPOINT_CLOSED")
    );
    // A signal for a previous suspension's waitpoint is refused.
    let r = claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(r.id, j.id);
    suspend(&mut c, &r, &[]).unwrap();
    assert_eq!(
        signal(&mut c, &j.id, x, tx, "go", &[]).unwrap_err().code(),
        Some("INVALID_TOKEN")
    );
    // Bad conditions change nothing.
    let j = job(&mut c, "q");
    let bad = |c: &mut redis::Connection, opts: &[&str]| {
        suspend(c, &j, opts)
            .err()
            .and_then(|e| e.code().map(str::to_string))
            .unwrap_or_default()
    };
    assert_eq!(
        bad(
            &mut c,
            &["CONDITION", "COUNT", "0", "SIGNALS", "ANY", "1", "k"]
        ),
        "INVALID_RESUME_CONDITION"
    );
    assert_eq!(
        bad(&mut c, &["WAITPOINT", "a", "CONDITION", "ONE", "b", "ANY"]),
        "WAITPOINT_KEY_MISMATCH"
    );
    assert_eq!(
        bad(&mut c, &["CONDITION", "TIMEOUT_ONLY"]),
        "TIMEOUT_ONLY_WITHOUT_DEADLINE"
    );
    // An hour ago is past the 10 minutes of tolerance; 1000 would be
    // refused earlier, as seconds where unix ms belong.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 3_600_000;
    assert_eq!(
        bad(&mut c, &["TIMEOUT_AT", &hour_ago.to_string()]),
        "TIMEOUT_AT_IN_PAST"
    );
    assert_eq!(bad(&mut c, &["TIMEOUT_AT", "1000"]), "ERR");
    let deep = [
        "WAITPOINT",
        "k",
        "CONDITION",
        "ALLOF",
        "1",
        "ALLOF",
        "1",
        "ALLOF",
        "1",
        "ALLOF",
        "1",
        "ALLOF",
        "1",
        "ONE",
        "k",
        "ANY",
    ];
    assert_eq!(bad(&mut c, &deep), "INVALID_RESUME_CONDITION");
    assert_eq!(s_(&get(&mut c, &j.id), "public_state"), "active");
}

#[test]
fn pending_waitpoint_buffers_and_may_be_satisfied_at_suspend() {
    let (_srv, mut c) = server();
    let j = job(&mut c, "q");
    let v: Vec<String> = fenced("FF.WAITPOINT", &j).query(&mut c).unwrap();
    let (pid, ptok) = (&v[0], &v[2]);
    assert!(v[1].starts_with("wpk:"));
    assert_eq!(
        effect(signal(
            &mut c,
            &j.id,
            pid,
            ptok,
            "callback_result",
            &["PAYLOAD", "{}"]
        )),
        "buffered_for_pending_waitpoint"
    );
    let s = suspend(
        &mut c,
        &j,
        &[
            "PENDING",
            pid,
            "REASON",
            "waiting_for_callback",
            "CONDITION",
            "SIGNAL",
            "callback_result",
        ],
    )
    .unwrap();
    assert_eq!(s.status, "already_satisfied");
    assert_eq!(s.wps[0][0], *pid);
    // The holder keeps its lease and goes on.
    assert_eq!(s_(&get(&mut c, &j.id), "public_state"), "active");
    let sigs: Vec<redis::Value> = redis::cmd("FF.SIGNALS").arg(&j.id).query(&mut c).unwrap();
    assert_eq!(sigs.len(), 1);
    complete(&mut c, &j, None).unwrap();
    // Not yet satisfied: buffered signals count, the rest must follow.
    let j = job(&mut c, "q");
    let v: Vec<String> = fenced("FF.WAITPOINT", &j)
        .arg("KEY")
        .arg("cb")
        .query(&mut c)
        .unwrap();
    effect(signal(&mut c, &j.id, &v[0], &v[2], "a", &[]));
    let s = suspend(
        &mut c,
        &j,
        &[
            "PENDING",
            &v[0],
            "CONDITION",
            "COUNT",
            "2",
            "SIGNALS",
            "ANY",
            "1",
            "cb",
        ],
    )
    .unwrap();
    assert_eq!(s.status, "suspended");
    assert_eq!(
        effect(signal(&mut c, &j.id, &v[0], &v[2], "b", &[])),
        "resume_condition_satisfied"
    );
}

#[test]
fn duplicates_return_the_first_signal() {
    let (_srv, mut c) = server();
    let j = job(&mut c, "q");
    let s = suspend(
        &mut c,
        &j,
        &[
            "CONDITION",
            "COUNT",
            "2",
            "SIGNALS",
            "ANY",
            "1",
            "k",
            "WAITPOINT",
            "k",
        ],
    )
    .unwrap();
    let (wp, tok) = (&s.wps[0][0], &s.wps[0][2]);
    let (first, e) = signal(&mut c, &j.id, wp, tok, "a", &["IDEMPOTENCY", "d1"]).unwrap();
    assert_eq!(e, "appended_to_waitpoint");
    let (again, e) = signal(&mut c, &j.id, wp, tok, "a", &["IDEMPOTENCY", "d1"]).unwrap();
    assert_eq!((again.as_str(), e.as_str()), (first.as_str(), "duplicate"));
    let (_, e) = signal(&mut c, &j.id, wp, tok, "a", &["IDEMPOTENCY", "d2"]).unwrap();
    assert_eq!(e, "resume_condition_satisfied");
    // A retry after the waitpoint closed still gets the first answer.
    let (again, e) = signal(&mut c, &j.id, wp, tok, "a", &["IDEMPOTENCY", "d1"]).unwrap();
    assert_eq!((again.as_str(), e.as_str()), (first.as_str(), "duplicate"));
    // Suspend idempotency: a retry with the same key and fence gets the
    // stored outcome.
    let r = claim(&mut c, "w", &["q"], &[]).unwrap();
    let a = suspend(&mut c, &r, &["IDEMPOTENCY", "s1"]).unwrap();
    let b = suspend(&mut c, &r, &["IDEMPOTENCY", "s1"]).unwrap();
    assert_eq!((a.id, a.wps), (b.id, b.wps));
    assert_eq!(
        suspend(&mut c, &r, &[])
            .err()
            .and_then(|e| e.code().map(str::to_string)),
        Some("EXECUTION_NOT_ACTIVE".into())
    );
}

#[test]
fn timeouts_do_what_their_behaviour_says() {
    let (_srv, mut c) = server();
    let mut cases = Vec::new();
    for (b, want) in [
        ("fail", "failed"),
        ("cancel", "cancelled"),
        ("expire", "expired"),
        ("auto_resume", "waiting"),
        ("escalate", "suspended"),
    ] {
        let j = job(&mut c, &format!("t-{b}"));
        suspend(&mut c, &j, &["TIMEOUT", "30", "ON_TIMEOUT", b]).unwrap();
        cases.push((j, b, want));
    }
    for (j, b, want) in &cases {
        wait_until(
            || {
                let f = get(&mut c, &j.id);
                s(&f, "public_state") == *want
                    && (*b != "escalate" || s(&f, "blocking_reason") == "paused_by_operator")
            },
            Duration::from_secs(3),
            b,
        );
    }
    // The escalated one waits for an operator.
    let (j, _, _) = &cases[4];
    let state: String = redis::cmd("FF.WAKE")
        .arg(&j.id)
        .arg("RESUME_DELAY")
        .arg(50)
        .query(&mut c)
        .unwrap();
    assert_eq!(state, "delayed");
    let r = claim(&mut c, "w", &["t-escalate"], &["BLOCK", "2000"])
        .expect("claimable after the resume delay");
    assert_eq!(n(&r.fields, "resumed"), 1);
    let again: redis::RedisResult<redis::Value> = redis::cmd("FF.WAKE").arg(&j.id).query(&mut c);
    assert_eq!(err_code(again), "EXECUTION_NOT_SUSPENDED");
}

#[test]
fn a_satisfying_signal_wakes_a_blocked_claimer() {
    let (srv, mut c) = server();
    let j = job(&mut c, "bq");
    let s = suspend(&mut c, &j, &[]).unwrap();
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut c = connect(port);
        claim(&mut c, "w2", &["bq"], &["BLOCK", "5000"]).map(|j| (j.id, n(&j.fields, "resumed")))
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        effect(signal(
            &mut c,
            &j.id,
            &s.wps[0][0],
            &s.wps[0][2],
            "any",
            &[]
        )),
        "resume_condition_satisfied"
    );
    assert_eq!(waiter.join().unwrap(), Some((j.id.clone(), 1)));
}

#[test]
fn approvals_and_closes_and_listings() {
    let (_srv, mut c) = server();
    let j = job(&mut c, "q");
    let s = suspend(&mut c, &j, &["REASON", "waiting_for_approval"]).unwrap();
    let wp = &s.wps[0][0];
    let listed: Vec<redis::Value> = redis::cmd("FF.SUSPENDED")
        .arg(tag_of(&j.id))
        .query(&mut c)
        .unwrap();
    let page: Vec<Vec<redis::Value>> = redis::from_redis_value(&listed[1]).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        redis::from_redis_value::<String>(&page[0][0]).unwrap(),
        j.id
    );
    assert_eq!(
        redis::from_redis_value::<String>(&page[0][2]).unwrap(),
        "waiting_for_approval"
    );
    let bad: redis::RedisResult<redis::Value> = redis::cmd("FF.APPROVE")
        .arg(&j.id)
        .arg(wp)
        .arg("approved")
        .arg("LANE")
        .arg("bogus")
        .query(&mut c);
    assert_eq!(err_code(bad), "LANE_MISMATCH");
    let (_, e): (String, String) = redis::cmd("FF.APPROVE")
        .arg(&j.id)
        .arg(wp)
        .arg("approved")
        .arg("LANE")
        .arg("q")
        .arg("IDEMPOTENCY")
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert_eq!(e, "resume_condition_satisfied");
    let closed: String = redis::cmd("FF.CLOSEWP")
        .arg(&j.id)
        .arg(wp)
        .query(&mut c)
        .unwrap();
    assert_eq!(closed, "already_closed");
    let r = claim(&mut c, "w", &["q"], &[]).unwrap();
    let v: Vec<String> = fenced("FF.WAITPOINT", &r).query(&mut c).unwrap();
    let closed: String = redis::cmd("FF.CLOSEWP")
        .arg(&j.id)
        .arg(&v[0])
        .query(&mut c)
        .unwrap();
    assert_eq!(closed, "closed");
    assert_eq!(
        signal(&mut c, &j.id, &v[0], &v[2], "x", &[])
            .unwrap_err()
            .code(),
        Some("WAITPOINT_CLOSED")
    );
    // Cancelling a suspended execution closes its waitpoints.
    let s = suspend(&mut c, &r, &[]).unwrap();
    let _: String = redis::cmd("FF.CANCEL").arg(&j.id).query(&mut c).unwrap();
    assert_eq!(
        signal(&mut c, &j.id, &s.wps[0][0], &s.wps[0][2], "x", &[])
            .unwrap_err()
            .code(),
        Some("TARGET_NOT_SIGNALABLE")
    );
}

#[test]
fn a_secret_from_the_module_config_mints_tokens_until_one_is_rotated_in() {
    let srv = Server::start(&["--flowfabric.waitpoint-secret", &format!("boot:{SECRET}")]);
    let mut c = srv.conn();
    let shown: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("flowfabric.waitpoint-secret")
        .query(&mut c)
        .unwrap();
    assert!(
        !shown.concat().contains(SECRET),
        "CONFIG GET shows no secret"
    );
    let j = job(&mut c, "q");
    let s = suspend(&mut c, &j, &[]).unwrap();
    assert!(s.wps[0][2].starts_with("boot:"));
    let r: Vec<redis::Value> = redis::cmd("FF.ROTATESECRET")
        .arg("k1")
        .arg(SECRET)
        .query(&mut c)
        .unwrap();
    assert_eq!(redis::from_redis_value::<String>(&r[0]).unwrap(), "rotated");
    // The rotated ring takes over: boot tokens are unknown to it.
    assert_eq!(
        signal(&mut c, &j.id, &s.wps[0][0], &s.wps[0][2], "x", &[])
            .unwrap_err()
            .code(),
        Some("INVALID_TOKEN")
    );
    let t: String = redis::cmd("FF.WPTOKEN")
        .arg(&j.id)
        .arg(&s.wps[0][0])
        .query(&mut c)
        .unwrap();
    assert_eq!(
        effect(signal(&mut c, &j.id, &s.wps[0][0], &t, "x", &[])),
        "resume_condition_satisfied"
    );
    // A malformed secret fails the start with a message.
    let mut bad = Server::spawn_raw(
        fresh_dir("badsecret"),
        &["--flowfabric.waitpoint-secret", "k:nothex"],
    );
    assert!(
        bad.wait_exit(Duration::from_secs(10)).is_some(),
        "a bad secret stops the start"
    );
    assert!(bad.log().contains("waitpoint-secret"), "{}", bad.log());
}
