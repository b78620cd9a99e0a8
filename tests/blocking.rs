//! Blocking claims as BLPOP users expect them: claimers wait in the
//! module's own per-lane lists, one submit wakes one claimer (the longest
//! waiting that can take the work), timeouts reply nil, disconnects and
//! CLIENT UNBLOCK leave nothing behind, MULTI and scripts never block, a
//! write pause holds wake-ups, a paused lane wakes nobody, and a primary
//! turning replica releases its claimers with an error.
mod common;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// A claimer blocked in its own thread; its outcome arrives on `rx`.
struct Waiter {
    client_id: i64,
    handle: JoinHandle<()>,
}

type Outcome = (usize, redis::RedisResult<Option<String>>, Instant);

/// Starts claimer `n` blocking on `lanes`, and returns once the server
/// counts it blocked (so claimers start in a known order).
fn block(
    srv: &Server,
    n: usize,
    lanes: &[&str],
    extra: &[&str],
    tx: &mpsc::Sender<Outcome>,
) -> Waiter {
    let mut probe = srv.conn();
    let before = blocked_clients(&mut probe);
    let mut c = connect(srv.port);
    let client_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut c).unwrap();
    let lanes: Vec<String> = lanes.iter().map(|s| s.to_string()).collect();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let tx = tx.clone();
    let handle = std::thread::spawn(move || {
        let mut cmd = redis::cmd("FF.CLAIM");
        cmd.arg(format!("w{n}"))
            .arg(format!("w{n}-i"))
            .arg(lanes.len());
        for l in &lanes {
            cmd.arg(l);
        }
        for e in &extra {
            cmd.arg(e);
        }
        let r: redis::RedisResult<redis::Value> = cmd.query(&mut c);
        let r = r.map(|v| match v {
            redis::Value::Nil => None,
            v => Some(s(&claim_fields(v), "execution_id")),
        });
        let _ = tx.send((n, r, Instant::now()));
    });
    wait_until(
        || blocked_clients(&mut probe) > before,
        Duration::from_secs(5),
        "claimer to block",
    );
    Waiter { client_id, handle }
}

fn recv(rx: &mpsc::Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("a claimer answered")
}

fn state(c: &mut redis::Connection, id: &str) -> String {
    s(&get(c, id), "public_state")
}

#[test]
fn waiters_are_served_in_arrival_order_one_per_job() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<Waiter> = (0..5)
        .map(|n| block(&srv, n, &["q"], &["BLOCK", "0"], &tx))
        .collect();
    for want in 0..5 {
        let id = submit(&mut c, "q", "x", &[]);
        let (n, got, _) = recv(&rx);
        assert_eq!((n, got.unwrap()), (want, Some(id)), "FIFO among waiters");
        assert_eq!(blocked_clients(&mut c), 4 - want as u64);
    }
    for w in waiters {
        w.handle.join().unwrap();
    }
}

#[test]
fn one_submit_wakes_one_of_a_hundred() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<Waiter> = (0..100)
        .map(|n| block(&srv, n, &["q"], &["BLOCK", "0"], &tx))
        .collect();
    let id = submit(&mut c, "q", "x", &[]);
    let (n, got, _) = recv(&rx);
    assert_eq!((n, got.unwrap()), (0, Some(id.clone())));
    std::thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "nobody else woke");
    assert_eq!(blocked_clients(&mut c), 99);
    assert_eq!(state(&mut c, &id), "active");
    // Work on another lane, or that needs what they lack, wakes nobody.
    submit(&mut c, "other", "x", &[]);
    let gpu = submit(&mut c, "q", "x", &["CAPS", "gpu"]);
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err());
    assert_eq!(state(&mut c, &gpu), "waiting");
    for _ in 1..100 {
        submit(&mut c, "q", "x", &[]);
    }
    let mut served: Vec<usize> = (1..100).map(|_| recv(&rx).0).collect();
    served.sort_unstable();
    assert_eq!(served, (1..100).collect::<Vec<_>>());
    for w in waiters {
        w.handle.join().unwrap();
    }
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn capabilities_route_the_wake_up() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let plain = block(&srv, 0, &["q"], &["BLOCK", "0"], &tx);
    let gpu = block(&srv, 1, &["q"], &["CAPS", "gpu,cuda", "BLOCK", "0"], &tx);
    // Only the later, capable claimer can take this one.
    let needs = submit(&mut c, "q", "x", &["CAPS", "gpu"]);
    assert_eq!(recv(&rx).0, 1);
    assert_eq!(state(&mut c, &needs), "active");
    let any = submit(&mut c, "q", "y", &[]);
    let (n, got, _) = recv(&rx);
    assert_eq!((n, got.unwrap()), (0, Some(any)));
    plain.handle.join().unwrap();
    gpu.handle.join().unwrap();
}

#[test]
fn a_claimer_waiting_on_several_lanes_is_woken_once() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let w = block(&srv, 0, &["a", "b", "c"], &["BLOCK", "0"], &tx);
    let id = submit(&mut c, "b", "x", &[]);
    assert_eq!(recv(&rx).1.unwrap(), Some(id));
    w.handle.join().unwrap();
    // Nothing of it is left waiting on the other lanes.
    let a = submit(&mut c, "a", "x", &[]);
    assert_eq!(state(&mut c, &a), "waiting");
}

#[test]
fn timeouts_reply_nil_and_block_zero_waits() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let t = Instant::now();
    assert!(claim(&mut c, "w", &["q"], &["BLOCK", "100"]).is_none());
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(95), "{waited:?}");
    assert_eq!(blocked_clients(&mut c), 0);
    // The timed-out claimer left nothing behind.
    let id = submit(&mut c, "q", "x", &[]);
    assert_eq!(state(&mut c, &id), "waiting");
    let (tx, rx) = mpsc::channel();
    let w = block(&srv, 0, &["z"], &["BLOCK", "0"], &tx);
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "BLOCK 0 has no timeout");
    let z = submit(&mut c, "z", "x", &[]);
    assert_eq!(recv(&rx).1.unwrap(), Some(z));
    w.handle.join().unwrap();
}

#[test]
fn disconnect_and_client_unblock_leave_nothing_behind() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    // Plain CLIENT UNBLOCK: the claim answers nil, as on a timeout.
    let w = block(&srv, 0, &["q"], &["BLOCK", "0"], &tx);
    let n: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(w.client_id)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(recv(&rx).1.unwrap(), None);
    w.handle.join().unwrap();
    // CLIENT UNBLOCK ERROR: the claim fails with UNBLOCKED.
    let w = block(&srv, 1, &["q"], &["BLOCK", "0"], &tx);
    let _: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(w.client_id)
        .arg("ERROR")
        .query(&mut c)
        .unwrap();
    let err = recv(&rx).1.unwrap_err();
    assert_eq!(err.code(), Some("UNBLOCKED"), "{err}");
    w.handle.join().unwrap();
    // A killed connection.
    let w = block(&srv, 2, &["q"], &["BLOCK", "0"], &tx);
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(w.client_id)
        .query(&mut c)
        .unwrap();
    assert!(recv(&rx).1.is_err());
    w.handle.join().unwrap();
    assert_eq!(blocked_clients(&mut c), 0);
    // None of the three is still waiting for work.
    let id = submit(&mut c, "q", "x", &[]);
    assert_eq!(state(&mut c, &id), "waiting");
    assert!(srv.log().find("ASSERTION").is_none());
}

#[test]
fn a_grant_whose_client_vanished_is_given_back() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let w = block(&srv, 0, &["q"], &["BLOCK", "0", "LEASE", "3600000"], &tx);
    // The submit hands the job to the claimer; the claimer is killed in the
    // same transaction, before its reply can be sent.
    let (id, _): (String, i64) = redis::pipe()
        .atomic()
        .cmd("FF.SUBMIT")
        .arg("*")
        .arg("q")
        .arg("x")
        .cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(w.client_id)
        .query(&mut c)
        .unwrap();
    assert!(recv(&rx).1.is_err(), "the killed claimer got no grant");
    w.handle.join().unwrap();
    // Claimable again at once, not after the hour-long lease.
    let j = claim(&mut c, "w2", &["q"], &["BLOCK", "2000"]).expect("given back");
    assert_eq!(j.id, id);
    assert_eq!(attempt_type(&mut c, &id), "reclaim");
}

#[test]
fn multi_and_scripts_never_block() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let v: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("FF.CLAIM")
        .arg("w")
        .arg("i")
        .arg(1)
        .arg("q")
        .arg("BLOCK")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![redis::Value::Nil]);
    let t = Instant::now();
    let v: redis::Value = redis::cmd("EVAL")
        .arg("return redis.call('FF.CLAIM', 'w', 'i', '1', 'q', 'BLOCK', '5000')")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, redis::Value::Nil);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(blocked_clients(&mut c), 0);
    // Where there is work, both claim it.
    let id = submit(&mut c, "q", "x", &[]);
    let v: redis::Value = redis::cmd("EVAL")
        .arg("return redis.call('FF.CLAIM', 'w', 'i', '1', 'q', 'BLOCK', '0')")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(s(&claim_fields(v), "execution_id"), id);
}

#[test]
fn a_write_pause_holds_wake_ups_until_it_ends() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let w = block(&srv, 0, &["q"], &["BLOCK", "0"], &tx);
    let (s_, us): (u64, u64) = redis::cmd("TIME").query(&mut c).unwrap();
    let due = (s_ * 1000 + us / 1000 + 150).to_string();
    let id = submit(&mut c, "q", "x", &["DELAY_UNTIL", &due]);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(800)
        .arg("WRITE")
        .query(&mut c)
        .unwrap();
    let paused_at = Instant::now();
    // The delay falls due inside the pause: nobody is woken, nothing moves.
    let (n, got, at) = recv(&rx);
    assert_eq!((n, got.unwrap()), (0, Some(id.clone())));
    let held = at.duration_since(paused_at);
    assert!(
        held >= Duration::from_millis(700),
        "woken {held:?} into the pause"
    );
    w.handle.join().unwrap();
    assert_eq!(state(&mut c, &id), "active");
}

#[test]
fn a_paused_lane_wakes_nobody_until_resumed() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let _: i64 = redis::cmd("FF.PAUSE").arg("q").query(&mut c).unwrap();
    let (tx, rx) = mpsc::channel();
    let w = block(&srv, 0, &["q"], &["BLOCK", "0"], &tx);
    let id = submit(&mut c, "q", "x", &[]);
    std::thread::sleep(Duration::from_millis(150));
    assert!(rx.try_recv().is_err(), "paused lane woke a claimer");
    assert_eq!(state(&mut c, &id), "waiting");
    let _: i64 = redis::cmd("FF.RESUME").arg("q").query(&mut c).unwrap();
    assert_eq!(recv(&rx).1.unwrap(), Some(id));
    w.handle.join().unwrap();
}

#[test]
fn a_primary_turning_replica_releases_its_claimers() {
    let other = Server::start(&[]);
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let (tx, rx) = mpsc::channel();
    let w = block(&srv, 0, &["q"], &["BLOCK", "0"], &tx);
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(other.port)
        .query(&mut c)
        .unwrap();
    let err = recv(&rx).1.unwrap_err();
    assert_eq!(err.code(), Some("UNBLOCKED"), "{err}");
    w.handle.join().unwrap();
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn woken_claims_replicate_exactly() {
    let primary = Server::start(&["--flowfabric.lease-ms", "3600000"]);
    let replica = Server::start_replica(&primary, &["--flowfabric.lease-ms", "3600000"]);
    let mut p = primary.conn();
    let mut r = replica.conn();
    let (tx, rx) = mpsc::channel();
    let mut ids = Vec::new();
    for round in 0..4 {
        let waiters: Vec<Waiter> = (0..10)
            .map(|n| {
                let lanes: &[&str] = if n % 2 == 0 { &["a", "b"] } else { &["b", "a"] };
                block(&primary, round * 10 + n, lanes, &["BLOCK", "0"], &tx)
            })
            .collect();
        let (sec, us): (u64, u64) = redis::cmd("TIME").query(&mut p).unwrap();
        let soon = (sec * 1000 + us / 1000 + 30).to_string();
        for i in 0..10 {
            // Half are handed out by the submit, half by the timer.
            let lane = if i % 3 == 0 { "b" } else { "a" };
            let lane = if lane == "b" && round % 2 == 0 {
                "a"
            } else {
                lane
            };
            let extra: Vec<&str> = if i % 2 == 0 {
                vec![]
            } else {
                vec!["DELAY_UNTIL", &soon]
            };
            ids.push(submit(&mut p, lane, "x", &extra));
        }
        for _ in 0..10 {
            assert!(recv(&rx).1.unwrap().is_some());
        }
        for w in waiters {
            w.handle.join().unwrap();
        }
    }
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p).unwrap();
    wait_until(
        || digest(&mut p) == digest(&mut r),
        Duration::from_secs(10),
        "replica digest to match",
    );
    for id in &ids {
        assert_eq!(get(&mut p, id), get(&mut r, id));
        assert_eq!(state(&mut p, id), "active");
    }
}
