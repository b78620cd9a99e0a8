//! A three-primary Valkey Cluster on loopback: jobs submitted across many
//! partitions through a cluster-aware client are all claimed, once, by
//! workers connected to each primary.
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn cluster_submit_claim_complete_loses_nothing() {
    let nodes = form_cluster();
    let urls = node_urls(&nodes);
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut cc = client.get_connection().unwrap();

    let mut submitted = HashSet::new();
    for i in 0..600u32 {
        let tag = format!("{{fp:{}}}", i % 256);
        let lane = if i % 3 == 0 { "a" } else { "b" };
        let id: String = redis::cmd("FF.SUBMIT")
            .arg(&tag)
            .arg(lane)
            .arg(format!("job-{i}"))
            .query(&mut cc)
            .unwrap();
        assert!(id.starts_with(&tag));
        assert!(submitted.insert(id));
    }
    // '*' cannot be routed in a cluster: a clear error, nothing created.
    let e = redis::cmd("FF.SUBMIT")
        .arg("*")
        .arg("a")
        .arg("x")
        .query::<String>(&mut nodes[0].conn())
        .unwrap_err();
    assert!(e.to_string().contains("FF.PARTITION"), "{e}");
    // Per-execution reads route by the id.
    let any = submitted.iter().next().unwrap().clone();
    let f = pairs(redis::cmd("FF.GET").arg(&any).query(&mut cc).unwrap());
    assert_eq!(s(&f, "public_state"), "waiting");

    // Workers on every primary, claiming concurrently.
    let handles: Vec<_> = nodes
        .iter()
        .map(|n| {
            let port = n.port;
            std::thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let mut got = Vec::new();
                while let Some(j) = claim(&mut c, &format!("w{port}"), &["a", "b"], &[]) {
                    assert_eq!(complete(&mut c, &j, Some("ok")).unwrap(), "OK");
                    got.push(j.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = HashSet::new();
    let mut per_node = Vec::new();
    for h in handles {
        let got = h.join().unwrap();
        per_node.push(got.len());
        for id in got {
            assert!(claimed.insert(id), "claimed twice");
        }
    }
    assert_eq!(claimed, submitted, "every job claimed exactly once");
    assert!(
        per_node.iter().all(|&n| n > 0),
        "work spread over all primaries: {per_node:?}"
    );
    let f = pairs(redis::cmd("FF.GET").arg(&any).query(&mut cc).unwrap());
    assert_eq!(s(&f, "public_state"), "completed");
    // The feed and an attempt's stream live in the execution's slot: a
    // cluster client reads them by key, and a frame lands there.
    let events: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("ff:events:{}", tag_of(&any)))
        .arg("-")
        .arg("+")
        .query(&mut cc)
        .unwrap();
    let mine: Vec<&str> = events
        .iter()
        .filter(|(_, f)| f.iter().any(|(k, v)| k == "id" && *v == any))
        .filter_map(|(_, f)| {
            f.iter()
                .find(|(k, _)| k == "event")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    assert_eq!(mine, ["submitted", "claimed", "completed"]);
    let id: String = redis::cmd("FF.SUBMIT")
        .arg("{fp:9}")
        .arg("c")
        .arg("x")
        .query(&mut cc)
        .unwrap();
    let owner = nodes
        .iter()
        .find(|n| {
            let f: Result<redis::Value, _> = redis::cmd("FF.GET").arg(&id).query(&mut n.conn());
            f.is_ok()
        })
        .unwrap();
    let mut oc = owner.conn();
    let j = claim(&mut oc, "w", &["c"], &[]).unwrap();
    let _: redis::Value = fenced("FF.APPEND", &j)
        .arg("t")
        .arg("p")
        .query(&mut cc)
        .unwrap();
    let len: i64 = redis::cmd("XLEN")
        .arg(format!("ff:stream:{id}:0"))
        .query(&mut cc)
        .unwrap();
    assert_eq!(len, 1);
}

/// Blocked claimers on every primary (blocking never names keys, so no
/// slot assertion can fire), woken by submits across all partitions, with
/// timeouts and disconnects mixed in: every job is completed exactly once
/// and every node stays up.
#[test]
fn cluster_blocked_claimers_are_woken_and_survive() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let nodes = form_cluster();
    let urls = node_urls(&nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for (ni, n) in nodes.iter().enumerate() {
        for k in 0..6 {
            let (port, stop, done) = (n.port, stop.clone(), done.clone());
            workers.push(std::thread::spawn(move || {
                let mut c = connect(port);
                let block = ["200", "0", "1000"][k % 3];
                let lanes: &[&str] = if k % 2 == 0 { &["a", "b"] } else { &["b"] };
                let name = format!("w{ni}-{k}");
                while !stop.load(Ordering::Relaxed) {
                    let block = if block == "0" { "300" } else { block };
                    if let Some(j) = claim(&mut c, &name, lanes, &["BLOCK", block]) {
                        assert_eq!(complete(&mut c, &j, Some("ok")).unwrap(), "OK");
                        done.lock().unwrap().push(j.id);
                    }
                }
            }));
        }
        // Claimers that give up on the socket and vanish mid-wait.
        let (port, stop) = (n.port, stop.clone());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut c = connect(port);
                c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
                let _ = redis::cmd("FF.CLAIM")
                    .arg("flaky")
                    .arg("flaky-i")
                    .arg(1)
                    .arg("a")
                    .arg("LEASE")
                    .arg(500)
                    .arg("BLOCK")
                    .arg(0)
                    .query::<redis::Value>(&mut c);
                drop(c);
            }
        }));
    }
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut cc = client.get_connection().unwrap();
    let mut submitted = HashSet::new();
    for i in 0..900u32 {
        let tag = format!("{{fp:{}}}", (i * 7) % 256);
        let lane = if i % 3 == 0 { "a" } else { "b" };
        let id: String = redis::cmd("FF.SUBMIT")
            .arg(&tag)
            .arg(lane)
            .arg(format!("job-{i}"))
            .query(&mut cc)
            .unwrap();
        submitted.insert(id);
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let t = Instant::now();
    while done.lock().unwrap().len() < submitted.len() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "only {} of {} done",
            done.lock().unwrap().len(),
            submitted.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let done = done.lock().unwrap().clone();
    let unique: HashSet<String> = done.iter().cloned().collect();
    assert_eq!(unique.len(), done.len(), "a job was completed twice");
    assert_eq!(unique, submitted, "every job completed exactly once");
    for n in &nodes {
        let pong: String = redis::cmd("PING").query(&mut n.conn()).unwrap();
        assert_eq!(pong, "PONG");
        assert!(!n.log().contains("ASSERTION"), "{}", n.log());
    }
}
