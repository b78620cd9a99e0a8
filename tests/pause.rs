//! While the server avoids writes and replica traffic (CLIENT PAUSE WRITE,
//! FAILOVER, CLUSTER FAILOVER), the node timer changes nothing and
//! replicates nothing (replicating then trips a server assertion); what
//! fell due meanwhile is handled right after the pause, and replicas end
//! with the primary's digest.
mod common;

use std::time::{Duration, Instant};

use common::*;

fn server_ms(c: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

/// Leases, a delay and a worker TTL that all fall due about `in_ms` from
/// now; returns (leased ids, delayed id).
fn due_soon(c: &mut redis::Connection, in_ms: u64) -> (Vec<String>, String) {
    let mut leased = Vec::new();
    for i in 0..20 {
        submit(c, "q", &format!("job-{i}"), &[]);
    }
    let lease = in_ms.to_string();
    while let Some(j) = claim(c, "w", &["q"], &["LEASE", &lease]) {
        leased.push(j.id);
    }
    let at = (server_ms(c) + in_ms).to_string();
    let delayed = submit(c, "d", "later", &["DELAY_UNTIL", &at]);
    let _: () = redis::cmd("FF.REGISTER")
        .arg("inst-1")
        .arg("worker-1")
        .arg(in_ms)
        .query(c)
        .unwrap();
    (leased, delayed)
}

fn pause(c: &mut redis::Connection, ms: u64) {
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("WRITE")
        .query(c)
        .unwrap();
}

fn worker_dead(c: &mut redis::Connection) -> bool {
    let v: redis::Value = redis::cmd("FF.WORKERS").query(c).unwrap();
    let redis::Value::Array(ws) = v else { panic!() };
    ws.into_iter()
        .any(|w| !matches!(pairs(w).get("dead_at"), Some(redis::Value::Nil) | None))
}

/// The pause scenario on `srv` (which may have a replica): nothing moves
/// while writes are paused; everything due moves right after.
fn nothing_moves_during_a_pause(srv: &Server) {
    let mut c = srv.conn();
    let (leased, delayed) = due_soon(&mut c, 150);
    let before = digest(&mut c);
    pause(&mut c, 900);
    let paused_at = Instant::now();
    std::thread::sleep(Duration::from_millis(600));
    // Reads are allowed in a write pause: everything due is still as it was.
    assert_eq!(digest(&mut c), before, "data changed during the pause");
    assert_eq!(s(&get(&mut c, &delayed), "public_state"), "delayed");
    assert_eq!(s(&get(&mut c, &leased[0]), "ownership_state"), "leased");
    assert!(!worker_dead(&mut c));
    let left = Duration::from_millis(900).saturating_sub(paused_at.elapsed());
    std::thread::sleep(left);
    let after_pause = wait_until(
        || s(&get(&mut c, &delayed), "public_state") == "waiting",
        Duration::from_secs(3),
        "the delay to be promoted after the pause",
    );
    assert!(after_pause < Duration::from_millis(300), "{after_pause:?}");
    wait_until(
        || {
            leased
                .iter()
                .all(|id| s(&get(&mut c, id), "ownership_state") == "lease_expired_reclaimable")
                && worker_dead(&mut c)
        },
        Duration::from_secs(3),
        "leases and the worker to lapse after the pause",
    );
    assert!(srv.log().find("ASSERTION").is_none(), "{}", srv.log());
}

#[test]
fn write_pause_with_aof_and_a_replica() {
    let primary = Server::start(&["--appendonly", "yes"]);
    let replica = Server::start_replica(&primary, &[]);
    nothing_moves_during_a_pause(&primary);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut p).unwrap();
    wait_until(
        || digest(&mut p) == digest(&mut r),
        Duration::from_secs(10),
        "replica digest to match",
    );
}

#[test]
fn write_pause_with_aof_alone() {
    let mut srv = Server::start(&["--appendonly", "yes"]);
    nothing_moves_during_a_pause(&srv);
    let d = digest(&mut srv.conn());
    srv.kill();
    srv.restart();
    assert_eq!(digest(&mut srv.conn()), d, "the AOF replays the same steps");
}

#[test]
fn write_pause_without_persistence() {
    let srv = Server::start(&[]);
    nothing_moves_during_a_pause(&srv);
}

/// Leases run out continuously while the primary hands over to its
/// replica: the old primary must not write during the failover's pause.
#[test]
fn failover_while_leases_expire() {
    let primary = Server::start(&["--appendonly", "yes"]);
    let replica = Server::start_replica(&primary, &[]);
    let mut p = primary.conn();
    for i in 0..200 {
        submit(&mut p, "q", &format!("job-{i}"), &[]);
    }
    for i in 0..200u64 {
        let lease = (100 + i * 3).to_string();
        claim(&mut p, "w", &["q"], &["LEASE", &lease]).unwrap();
    }
    let _: () = redis::cmd("FF.REGISTER")
        .arg("inst-1")
        .arg("worker-1")
        .arg(300)
        .query(&mut p)
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let _: () = redis::cmd("FAILOVER").query(&mut p).unwrap();
    let mut r = replica.conn();
    wait_until(
        || info_string(&mut r).contains("role:master"),
        Duration::from_secs(10),
        "the replica to take over",
    );
    wait_until(
        || info_string(&mut p).contains("master_link_status:up"),
        Duration::from_secs(10),
        "the old primary to follow the new one",
    );
    // The new primary's timer finishes the expiries; the old one follows.
    wait_until(
        || records_in_state(&mut r, "q") == 200,
        Duration::from_secs(5),
        "every lease to run out on the new primary",
    );
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut r).unwrap();
    wait_until(
        || digest(&mut p) == digest(&mut r),
        Duration::from_secs(10),
        "the old primary's digest to match",
    );
    assert!(
        primary.log().find("ASSERTION").is_none(),
        "{}",
        primary.log()
    );
    assert!(
        replica.log().find("ASSERTION").is_none(),
        "{}",
        replica.log()
    );
}

fn info_string(c: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("replication").query(c).unwrap()
}

/// How many executions of `lane` (all in its own partition) wait for a
/// reclaim because their lease ran out.
fn records_in_state(c: &mut redis::Connection, lane: &str) -> u64 {
    let tag: String = redis::cmd("FF.PARTITION").arg(lane).query(c).unwrap();
    let (_, ids): (String, Vec<String>) = redis::cmd("FF.LIST")
        .arg(tag)
        .arg("COUNT")
        .arg(1000)
        .query(c)
        .unwrap();
    ids.iter()
        .filter(|id| s(&get(c, id), "ownership_state") == "lease_expired_reclaimable")
        .count() as u64
}

/// A manual cluster failover pauses the primary's clients while its
/// replica catches up; leases expiring on the primary meanwhile must not
/// make it write.
#[test]
fn cluster_failover_while_leases_expire() {
    let nodes = form_cluster();
    let replica = add_cluster_replica(&nodes, &nodes[0]);
    let mut p = nodes[0].conn();
    // A partition whose slot the first primary serves.
    let tag = (0..256)
        .map(|n| format!("{{fp:{n}}}"))
        .find(|t| {
            let slot: i64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(t)
                .query(&mut p)
                .unwrap();
            slot <= 5460
        })
        .unwrap();
    for i in 0..200 {
        let _: String = redis::cmd("FF.SUBMIT")
            .arg(&tag)
            .arg("q")
            .arg(format!("job-{i}"))
            .query(&mut p)
            .unwrap();
    }
    for i in 0..200u64 {
        let lease = (100 + i * 4).to_string();
        claim(&mut p, "w", &["q"], &["LEASE", &lease]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(150));
    let mut r = replica.conn();
    let _: () = redis::cmd("CLUSTER").arg("FAILOVER").query(&mut r).unwrap();
    wait_until(
        || info_string(&mut r).contains("role:master"),
        Duration::from_secs(15),
        "the replica to take over",
    );
    std::thread::sleep(Duration::from_millis(1200));
    let pong: String = redis::cmd("PING").query(&mut nodes[0].conn()).unwrap();
    assert_eq!(pong, "PONG", "the old primary is alive");
    assert!(
        nodes[0].log().find("ASSERTION").is_none(),
        "{}",
        nodes[0].log()
    );
    let mut p = nodes[0].conn();
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut r).unwrap();
    wait_until(
        || digest(&mut p) == digest(&mut r),
        Duration::from_secs(10),
        "the old primary's digest to match",
    );
}
