//! Access control as operators set it up (the README's "Access control"):
//! every command is in `@flowfabric`; a worker-only user runs its loop and
//! nothing else; a claim takes work only from partitions the user's key
//! patterns allow (`{fp:N}:`, the execution-id form), directly, from a
//! script, and when a blocked claim is handed work.
mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// The worker's commands, as the README's `ACL SETUSER` line gives them.
const WORKER: &str = "+ff.claim +ff.renew +ff.complete +ff.fail +ff.progress +ff.delay \
    +ff.append +ff.suspend +ff.waitpoint +ff.waitchildren +ff.register +ff.heartbeat";

fn acl(c: &mut redis::Connection, user: &str, rules: &str) {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER")
        .arg(user)
        .arg("on")
        .arg(">pw")
        .arg("resetchannels");
    for r in rules.split_whitespace() {
        cmd.arg(r);
    }
    let _: () = cmd.query(c).unwrap();
}

/// The README's `ACL SETUSER` lines (its "Access control" section).
fn readme_users() -> Vec<String> {
    let readme = include_str!("../README.md");
    readme
        .lines()
        .filter(|l| l.starts_with("ACL SETUSER "))
        .map(str::to_string)
        .collect()
}

fn as_user(srv: &Server, user: &str) -> redis::Connection {
    as_user_with(srv, user, "pw")
}

fn as_user_with(srv: &Server, user: &str, password: &str) -> redis::Connection {
    redis::Client::open(format!("redis://{user}:{password}@127.0.0.1:{}/", srv.port))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn submit_to(c: &mut redis::Connection, target: &str, lane: &str, priority: u32) -> String {
    redis::cmd("FF.SUBMIT")
        .arg(target)
        .arg(lane)
        .arg("x")
        .arg("PRIORITY")
        .arg(priority)
        .query(c)
        .unwrap()
}

fn state(c: &mut redis::Connection, id: &str) -> String {
    s(&get(c, id), "public_state")
}

fn noperm(r: redis::RedisResult<redis::Value>) -> bool {
    matches!(r, Err(e) if e.code() == Some("NOPERM"))
}

/// The README's users, as it writes them: a worker runs its loop and is
/// refused the rest; the operator runs operator commands.
#[test]
fn a_worker_user_runs_its_loop_and_nothing_else() {
    let srv = Server::start(&[]);
    let mut admin = srv.conn();
    let lines = readme_users();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let _: () = redis::cmd(words[0])
            .arg(&words[1..])
            .query(&mut admin)
            .unwrap();
        // The worker lines give the commands this file's users get.
        if words[2].starts_with("worker") {
            assert!(line.ends_with(&WORKER.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    let mut w = as_user_with(&srv, "worker", "worker-secret");

    let id = submit(&mut admin, "q", "job", &[]);
    let _: () = redis::cmd("FF.REGISTER")
        .arg("w-i")
        .arg("w")
        .arg(60_000)
        .query(&mut w)
        .unwrap();
    let j = claim(&mut w, "w", &["q"], &[]).expect("the worker claims");
    assert_eq!(j.id, id);
    let _: i64 = fenced("FF.RENEW", &j).query(&mut w).unwrap();
    let _: () = fenced("FF.PROGRESS", &j).arg(50).query(&mut w).unwrap();
    assert_eq!(complete(&mut w, &j, Some("done")).unwrap(), "OK");
    let _: () = redis::cmd("FF.HEARTBEAT").arg("w-i").query(&mut w).unwrap();

    // Operator and producer commands are refused by the server itself.
    let refused: [&[&str]; 7] = [
        &["FF.PAUSE", "q"],
        &["FF.MARKDEAD", "w-i"],
        &["FF.SUBMIT", "*", "q", "x"],
        &["FF.CANCEL", &id],
        &["FF.ROTATESECRET", "k1", "s"],
        &["FF.GET", &id],
        &["GET", "ff:idx:{fp:0}"],
    ];
    for args in refused {
        let r = redis::cmd(args[0]).arg(&args[1..]).query(&mut w);
        assert!(noperm(r), "{args:?} is refused");
    }

    // The admin user can run them.
    let mut a = as_user_with(&srv, "ff-admin", "admin-secret");
    let paused: i64 = redis::cmd("FF.PAUSE").arg("q").query(&mut a).unwrap();
    assert_eq!(paused, 1);
    let _: i64 = redis::cmd("FF.RESUME").arg("q").query(&mut a).unwrap();
    let _: i64 = redis::cmd("FF.MARKDEAD").arg("w-i").query(&mut a).unwrap();
    assert_eq!(state(&mut a, &id), "completed");
    let _: redis::Value = redis::cmd("FF.LANES").query(&mut a).unwrap();
    // ... but not the internal commands: its ACL leaves them out, and they
    // refuse any client anyway (only the primary and the AOF send them).
    let due = |c: &mut redis::Connection| -> redis::RedisResult<redis::Value> {
        redis::cmd("FF.DUE")
            .arg("ff:idx:{fp:0}")
            .arg(1)
            .arg(1)
            .arg(1)
            .arg(1)
            .query(c)
    };
    assert!(noperm(due(&mut a)));
    assert!(due(&mut admin)
        .unwrap_err()
        .to_string()
        .contains("internal"));
}

#[test]
fn acl_cat_flowfabric_lists_every_command() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let mut listed: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg("flowfabric")
        .query(&mut c)
        .unwrap();
    listed.iter_mut().for_each(|s| *s = s.to_uppercase());
    listed.sort();
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/commands"))
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.trim_end_matches(".json").to_uppercase()
            })
            .collect();
    files.sort();
    assert_eq!(listed, files);
    // Tips reach COMMAND INFO (tests/docs.rs checks every command).
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("FF.PAUSE")
        .query(&mut c)
        .unwrap();
    let text = format!("{info:?}");
    assert!(text.contains("request_policy:all_shards"), "{text}");
    assert!(text.contains("response_policy:all_succeeded"), "{text}");
}

/// A user whose key patterns allow partition 1 claims only there: not
/// partition 8 (even at a higher priority), not partition 10 (which
/// `{fp:1}*` must not match); from a script too.
#[test]
fn a_claim_takes_work_only_from_allowed_partitions() {
    let srv = Server::start(&[]);
    let mut admin = srv.conn();
    acl(
        &mut admin,
        "p1",
        &format!("~{{fp:1}}* -@all {WORKER} +eval"),
    );
    acl(&mut admin, "p1wide", &format!("~*{{fp:1}}* -@all {WORKER}"));
    let high = submit_to(&mut admin, "{fp:8}", "q", 100);
    let ten = submit_to(&mut admin, "{fp:10}", "q", 50);
    let mine = submit_to(&mut admin, "{fp:1}", "q", 0);
    let mine2 = submit_to(&mut admin, "{fp:1}", "q", 0);

    let mut p1 = as_user(&srv, "p1");
    let j = claim(&mut p1, "w", &["q"], &[]).expect("the partition-1 job");
    assert_eq!(j.id, mine);
    // From a script: the script's client runs as its caller.
    let v: redis::Value = redis::cmd("EVAL")
        .arg("return redis.call('FF.CLAIM', 'w', 'i', '1', 'q')")
        .arg(0)
        .query(&mut p1)
        .unwrap();
    assert_eq!(s(&claim_fields(v), "execution_id"), mine2);
    assert!(claim(&mut p1, "w", &["q"], &[]).is_none(), "nothing else");
    let mut wide = as_user(&srv, "p1wide");
    assert!(claim(&mut wide, "w", &["q"], &[]).is_none());
    // The partition-1 user's keyed calls on its job work; on others not.
    assert_eq!(complete(&mut p1, &j, None).unwrap(), "OK");
    let r: redis::RedisResult<redis::Value> = redis::cmd("FF.RENEW")
        .arg(&high)
        .arg("x")
        .arg(1)
        .arg("y")
        .query(&mut p1);
    assert!(noperm(r));

    assert_eq!(state(&mut admin, &high), "waiting");
    assert_eq!(state(&mut admin, &ten), "waiting");
    // The default user is not restricted: best first.
    let j = claim(&mut admin, "w", &["q"], &[]).unwrap();
    assert_eq!(j.id, high);
    let j = claim(&mut admin, "w", &["q"], &[]).unwrap();
    assert_eq!(j.id, ten);
}

type Handed = (&'static str, Option<String>);

/// `user` claims on lane q, blocking, in a thread of its own; returns once
/// the server counts it blocked (so claimers queue in a known order).
fn blocked(
    srv: &Server,
    user: &str,
    tag: &'static str,
    tx: &mpsc::Sender<Handed>,
) -> std::thread::JoinHandle<()> {
    let mut probe = srv.conn();
    let before = blocked_clients(&mut probe);
    let mut c = as_user(srv, user);
    let tx = tx.clone();
    let t = std::thread::spawn(move || {
        let j = claim(&mut c, "w", &["q"], &["BLOCK", "10000"]).map(|j| j.id);
        let _ = tx.send((tag, j));
    });
    wait_until(
        || blocked_clients(&mut probe) > before,
        Duration::from_secs(5),
        "claimer to block",
    );
    t
}

/// A blocked claim is handed only work its user may take: a submit to
/// partition 8 passes over it (to the next claimer, or stays queued), a
/// submit to partition 1 wakes it.
#[test]
fn a_blocked_claim_is_handed_only_allowed_work() {
    let srv = Server::start(&[]);
    let mut admin = srv.conn();
    acl(&mut admin, "p1", &format!("~{{fp:1}}* -@all {WORKER}"));
    let (tx, rx) = mpsc::channel();
    acl(&mut admin, "any", &format!("~* -@all {WORKER}"));
    let _p1 = blocked(&srv, "p1", "p1", &tx);
    let eight = submit_to(&mut admin, "{fp:8}", "q", 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx.try_recv().is_err(), "p1 is not handed partition 8's job");
    assert_eq!(state(&mut admin, &eight), "waiting");
    assert_eq!(blocked_clients(&mut admin), 1);

    // A user who may take it claims it at once.
    let mut any = as_user(&srv, "any");
    let j = claim(&mut any, "w", &["q"], &["BLOCK", "10000"]).unwrap();
    assert_eq!(j.id, eight);
    // A claimer that may take the next one, behind p1 in line, is handed it.
    let _any = blocked(&srv, "any", "any", &tx);
    let other = submit_to(&mut admin, "{fp:8}", "q", 0);
    let (tag, got) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((tag, got.as_deref()), ("any", Some(other.as_str())));
    assert_eq!(blocked_clients(&mut admin), 1);

    // Partition 8's best job stays queued; partition 1's goes to p1.
    let queued = submit_to(&mut admin, "{fp:8}", "q", 100);
    let one = submit_to(&mut admin, "{fp:1}", "q", 0);
    let (tag, got) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((tag, got.as_deref()), ("p1", Some(one.as_str())));
    assert_eq!(blocked_clients(&mut admin), 0);
    assert_eq!(state(&mut admin, &queued), "waiting");
}

#[test]
fn node_wide_listings_and_bulk_calls_stay_inside_allowed_partitions() {
    let srv = Server::start(&[]);
    let mut admin = srv.conn();
    acl(
        &mut admin,
        "ops1",
        "~{fp:1}* -@all +ff.scan +ff.bulkcancel +ff.bulkreplay",
    );
    acl(
        &mut admin,
        "reader1",
        "%R~{fp:1}* -@all +ff.scan +ff.bulkcancel",
    );
    let mine = submit_to(&mut admin, "{fp:1}", "q", 0);
    let other = submit_to(&mut admin, "{fp:8}", "q", 0);
    let scan = |c: &mut redis::Connection| -> Vec<String> {
        let (_, ids): (String, Vec<String>) = redis::cmd("FF.SCAN")
            .arg("STATE")
            .arg("waiting")
            .arg("COUNT")
            .arg(100)
            .query(c)
            .unwrap();
        ids
    };
    let mut ops = as_user(&srv, "ops1");
    assert_eq!(scan(&mut ops), vec![mine.clone()]);
    let mut reader = as_user(&srv, "reader1");
    assert_eq!(
        scan(&mut reader),
        vec![mine.clone()],
        "reading is enough to list"
    );
    // A bulk call writes: a read-only user acts on nothing.
    let (_, acted, _): (String, i64, i64) = redis::cmd("FF.BULKCANCEL")
        .arg("STATE")
        .arg("waiting")
        .query(&mut reader)
        .unwrap();
    assert_eq!(acted, 0);
    let (_, acted, _): (String, i64, i64) = redis::cmd("FF.BULKCANCEL")
        .arg("STATE")
        .arg("waiting")
        .query(&mut ops)
        .unwrap();
    assert_eq!(acted, 1);
    assert_eq!(state(&mut admin, &mine), "cancelled");
    assert_eq!(state(&mut admin, &other), "waiting");
    assert_eq!(scan(&mut admin), vec![other]);
}

/// More refused claimers than one flush tries (64) stand before one that
/// may take the work: the hand-off goes on past them and reaches it.
#[test]
fn a_claimer_behind_many_refused_ones_is_reached() {
    let srv = Server::start(&[]);
    let mut admin = srv.conn();
    acl(&mut admin, "p1", &format!("~{{fp:1}}* -@all {WORKER}"));
    acl(&mut admin, "any", &format!("~* -@all {WORKER}"));
    let (tx, rx) = mpsc::channel();
    let refused: Vec<_> = (0..150).map(|_| blocked(&srv, "p1", "p1", &tx)).collect();
    let _any = blocked(&srv, "any", "any", &tx);
    let eight = submit_to(&mut admin, "{fp:8}", "q", 0);
    let (tag, got) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((tag, got.as_deref()), ("any", Some(eight.as_str())));
    // The refused ones still wait, and take their own partition's work.
    assert_eq!(blocked_clients(&mut admin), 150);
    let one = submit_to(&mut admin, "{fp:1}", "q", 0);
    let (tag, got) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((tag, got.as_deref()), ("p1", Some(one.as_str())));
    drop(refused);
}
