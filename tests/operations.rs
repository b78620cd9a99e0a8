//! Operator and holder operations: progress, tags, replay, block/unblock.
mod common;

use common::*;

#[test]
fn progress_is_fenced_and_shown() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let ok: String = fenced("FF.PROGRESS", &j)
        .arg(40)
        .arg("MESSAGE")
        .arg("halfway-ish")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "progress_pct"), "40");
    assert_eq!(s(&f, "progress_message"), "halfway-ish");
    let e = redis::cmd("FF.PROGRESS")
        .arg(&j.id)
        .arg(&j.lease_id)
        .arg(j.epoch + 1)
        .arg(&j.attempt_id)
        .arg(50)
        .query::<String>(&mut c);
    assert_eq!(e.unwrap_err().code(), Some("STALE_LEASE"));
    let e = fenced("FF.PROGRESS", &j).arg(101).query::<String>(&mut c);
    assert!(e.is_err());
}

#[test]
fn tags_follow_the_caller_field_rule() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &["TAG", "app.a", "1"]);
    let n: i64 = redis::cmd("FF.SETTAGS")
        .arg(&id)
        .arg("app.b")
        .arg("2")
        .arg("app.a")
        .arg("3")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let all: Vec<String> = redis::cmd("FF.GETTAGS").arg(&id).query(&mut c).unwrap();
    assert_eq!(all, vec!["app.a", "3", "app.b", "2"]);
    let some: Vec<Option<String>> = redis::cmd("FF.GETTAGS")
        .arg(&id)
        .arg("app.b")
        .arg("app.zz")
        .query(&mut c)
        .unwrap();
    assert_eq!(some, vec![Some("2".to_string()), None]);
    for bad in ["app", "app.", "App.x", ".x", "app..x"] {
        let e = redis::cmd("FF.SETTAGS")
            .arg(&id)
            .arg(bad)
            .arg("v")
            .query::<i64>(&mut c)
            .unwrap_err();
        assert_eq!(e.code(), Some("INVALID_TAG_KEY"), "{bad}");
    }
    let e = redis::cmd("FF.SETTAGS")
        .arg(&id)
        .arg("app.x")
        .arg("v")
        .arg("app.y")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("tag value"), "{e}");
    assert!(redis::cmd("FF.SETTAGS")
        .arg(&id)
        .arg("app.x")
        .query::<i64>(&mut c)
        .is_err());
}

#[test]
fn replay_runs_a_terminal_execution_again() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let e = redis::cmd("FF.REPLAY")
        .arg(&id)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("EXECUTION_NOT_TERMINAL"));
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    complete(&mut c, &j, Some("first")).unwrap();
    let ok: String = redis::cmd("FF.REPLAY").arg(&id).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "waiting");
    assert_eq!(s(&f, "replay_count"), "1");
    let r: Option<String> = redis::cmd("FF.RESULT").arg(&id).query(&mut c).unwrap();
    assert_eq!(r, None);
    let k = claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(attempt_type(&mut c, &k.id), "replay");
    assert_eq!(n(&k.fields, "attempt_index"), 1);
    complete(&mut c, &k, Some("second")).unwrap();
    for _ in 1..10 {
        let _: String = redis::cmd("FF.REPLAY").arg(&id).query(&mut c).unwrap();
        let _: String = redis::cmd("FF.CANCEL").arg(&id).query(&mut c).unwrap();
    }
    let e = redis::cmd("FF.REPLAY")
        .arg(&id)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("MAX_REPLAYS_EXHAUSTED"));
}

#[test]
fn block_and_unblock_one_execution() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let ok: String = redis::cmd("FF.BLOCK")
        .arg(&id)
        .arg("REASON")
        .arg("hold on")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "eligibility_state"), "blocked_by_operator");
    assert_eq!(s(&f, "blocking_reason"), "paused_by_operator");
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    let e = redis::cmd("FF.BLOCK")
        .arg(&id)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("EXECUTION_NOT_ELIGIBLE"));
    let ok: String = redis::cmd("FF.UNBLOCK").arg(&id).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let e = redis::cmd("FF.UNBLOCK")
        .arg(&id)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("EXECUTION_NOT_BLOCKED"));
    assert_eq!(claim(&mut c, "w", &["q"], &[]).unwrap().id, id);
}

#[test]
fn paused_lane_is_skipped_until_resumed_and_survives_restart() {
    let mut srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "x", &[]);
    let n: i64 = redis::cmd("FF.PAUSE").arg("q").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: String = redis::cmd("FF.REGISTER")
        .arg("kept-i")
        .arg("kept")
        .arg(3_600_000)
        .query(&mut c)
        .unwrap();
    assert!(
        claim(&mut c, "w", &["q"], &[]).is_none(),
        "paused lane is skipped"
    );
    let listed: Vec<String> = redis::cmd("FF.PAUSED").query(&mut c).unwrap();
    assert_eq!(listed, vec!["q"]);
    // The pause is kept across a restart from RDB.
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(c);
    srv.kill();
    srv.restart();
    let mut c = srv.conn();
    let listed: Vec<String> = redis::cmd("FF.PAUSED").query(&mut c).unwrap();
    assert_eq!(listed, vec!["q"]);
    let workers: Vec<redis::Value> = redis::cmd("FF.WORKERS").query(&mut c).unwrap();
    assert_eq!(
        workers.len(),
        1,
        "the worker registry is kept across a restart too"
    );
    // A claimer blocked on the paused lane is woken by the resume.
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        claim(&mut c, "w", &["q"], &["BLOCK", "5000"]).map(|j| j.id)
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let n: i64 = redis::cmd("FF.RESUME").arg("q").query(&mut c).unwrap();
    assert_eq!(n, 1);
    assert_eq!(waiter.join().unwrap(), Some(id));
    let n: i64 = redis::cmd("FF.RESUME").arg("q").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn listings_page_through_states_lanes_and_leases() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let tag = "{fp:9}";
    let mut waiting = Vec::new();
    for i in 0..7 {
        let lane = if i % 2 == 0 { "even" } else { "odd" };
        let id: String = redis::cmd("FF.SUBMIT")
            .arg(tag)
            .arg(lane)
            .arg("x")
            .query(&mut c)
            .unwrap();
        waiting.push(id);
    }
    let j = claim(&mut c, "w", &["odd"], &[]).unwrap();
    // Page through waiting executions three at a time.
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, ids): (String, Vec<String>) = redis::cmd("FF.LIST")
            .arg(tag)
            .arg("STATE")
            .arg("waiting")
            .arg("CURSOR")
            .arg(&cursor)
            .arg("COUNT")
            .arg(3)
            .query(&mut c)
            .unwrap();
        assert!(ids.len() <= 3);
        seen.extend(ids);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    seen.sort();
    let mut expected: Vec<String> = waiting.iter().filter(|id| **id != j.id).cloned().collect();
    expected.sort();
    assert_eq!(seen, expected);
    let (_, active): (String, Vec<String>) = redis::cmd("FF.LIST")
        .arg(tag)
        .arg("STATE")
        .arg("active")
        .query(&mut c)
        .unwrap();
    assert_eq!(active, vec![j.id.clone()]);
    let (_, even): (String, Vec<String>) = redis::cmd("FF.LIST")
        .arg(tag)
        .arg("LANE")
        .arg("even")
        .query(&mut c)
        .unwrap();
    assert_eq!(even.len(), 4);
    // Lanes with counts per state.
    let v: redis::Value = redis::cmd("FF.LANES").query(&mut c).unwrap();
    let lanes = pairs(v);
    let odd = pairs(lanes["odd"].clone());
    assert_eq!(n(&odd, "waiting"), 2);
    assert_eq!(n(&odd, "active"), 1);
    assert_eq!(n(&pairs(lanes["even"].clone()), "waiting"), 4);
    // The worker's own leases.
    let mine: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("w-i").query(&mut c).unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(redis::from_redis_value::<String>(&mine[0]).unwrap(), j.id);
    let none: Vec<redis::Value> = redis::cmd("FF.LEASES").arg("other").query(&mut c).unwrap();
    assert!(none.is_empty());
    for bad in [
        &["{fp:9}", "STATE", "nope"][..],
        &["x"],
        &["{fp:9}", "CURSOR", "junk"],
        &["{fp:9}", "COUNT", "0"],
    ] {
        let mut cmd = redis::cmd("FF.LIST");
        for a in bad {
            cmd.arg(*a);
        }
        assert!(cmd.query::<redis::Value>(&mut c).is_err(), "{bad:?}");
    }
}

#[test]
fn waiting_for_children_parks_until_released() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let id = submit(&mut c, "q", "parent", &[]);
    let j = claim(&mut c, "w", &["q"], &[]).unwrap();
    let ok: String = fenced("FF.WAITCHILDREN", &j).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let f = get(&mut c, &id);
    assert_eq!(s(&f, "public_state"), "waiting_children");
    assert_eq!(s(&f, "blocking_reason"), "waiting_for_children");
    assert!(claim(&mut c, "w", &["q"], &[]).is_none());
    let _: String = redis::cmd("FF.UNBLOCK").arg(&id).query(&mut c).unwrap();
    let k = claim(&mut c, "w", &["q"], &[]).unwrap();
    assert_eq!(k.attempt_id, j.attempt_id, "the parent's attempt resumes");
}
