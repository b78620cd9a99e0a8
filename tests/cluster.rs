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

/// An execution's public state, read through the cluster client.
fn state(cc: &mut redis::cluster::ClusterConnection, id: &str) -> String {
    s(
        &pairs(redis::cmd("FF.GET").arg(id).query(cc).unwrap()),
        "public_state",
    )
}

/// A flow on each primary, driven through the cluster client: every flow
/// command names its flow (or partition tag) first, so the client routes
/// it by key, and the completing command on the upstream's node releases
/// the downstream. `*` names no partition and is refused.
#[test]
fn cluster_flow_runs_through_a_cluster_client() {
    let nodes = form_cluster();
    let client = redis::cluster::ClusterClient::new(node_urls(&nodes)).unwrap();
    let mut cc = client.get_connection().unwrap();
    let slot_of = |key: &str| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut nodes[0].conn())
            .unwrap()
    };
    // form_cluster's slot ranges: a partition whose tag each primary owns.
    let owner_of = |slot: i64| match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    };
    let mut tags: [Option<String>; 3] = [None, None, None];
    for p in 0..256 {
        let tag = format!("{{fp:{p}}}");
        let i = owner_of(slot_of(&tag));
        if tags[i].is_none() {
            tags[i] = Some(tag);
        }
    }
    let mut flows = Vec::new();
    for (ni, tag) in tags.iter().enumerate() {
        let tag = tag.as_deref().expect("a partition on every primary");
        let (f, created): (String, i64) = redis::cmd("FF.FLOWCREATE")
            .arg(tag)
            .arg("KIND")
            .arg("dag")
            .query(&mut cc)
            .unwrap();
        assert_eq!(created, 1);
        assert!(f.starts_with(&format!("{tag}:")), "{f}");
        let (up_lane, down_lane) = (format!("cf-up-{ni}"), format!("cf-down-{ni}"));
        let member = |cc: &mut redis::cluster::ClusterConnection, lane: &str| -> String {
            redis::cmd("FF.SUBMIT")
                .arg(tag)
                .arg(lane)
                .arg(format!("payload-{lane}"))
                .arg("FLOW")
                .arg(&f)
                .query(cc)
                .unwrap()
        };
        let up = member(&mut cc, &up_lane);
        let down = member(&mut cc, &down_lane);
        assert_eq!(tag_of(&up), tag);
        let (edge_id, rev, unsatisfied, created): (String, i64, i64, i64) = redis::cmd("FF.EDGE")
            .arg(&f)
            .arg(&up)
            .arg(&down)
            .arg("DATA")
            .arg("artifact://up")
            .query(&mut cc)
            .unwrap();
        assert_eq!((rev, unsatisfied, created), (3, 1, 1));
        let n_tags: i64 = redis::cmd("FF.FLOWSETTAGS")
            .arg(&f)
            .arg("app.node")
            .arg(ni)
            .query(&mut cc)
            .unwrap();
        assert_eq!(n_tags, 1);
        let fg = pairs(redis::cmd("FF.FLOWGET").arg(&f).query(&mut cc).unwrap());
        assert_eq!(s(&fg, "flow_id"), f);
        assert_eq!((n(&fg, "node_count"), n(&fg, "edge_count")), (2, 1));
        let e = pairs(
            redis::cmd("FF.EDGEGET")
                .arg(&f)
                .arg(&edge_id)
                .query(&mut cc)
                .unwrap(),
        );
        assert_eq!(s(&e, "upstream_execution_id"), up);
        assert_eq!(s(&e, "edge_state"), "pending");
        let out: Vec<redis::Value> = redis::cmd("FF.EDGES")
            .arg(&f)
            .arg(&up)
            .arg("OUT")
            .query(&mut cc)
            .unwrap();
        assert_eq!(out.len(), 1);
        let (_, page): (Option<String>, Vec<(String, i64, String)>) =
            redis::cmd("FF.FLOWS").arg(tag).query(&mut cc).unwrap();
        assert!(page.iter().any(|(id, _, _)| *id == f), "{page:?}");
        let down_state = state(&mut cc, &down);
        assert_eq!(down_state, "waiting_children");
        flows.push((ni, tag.to_string(), f, up, down, up_lane, down_lane));
    }

    for (ni, _, f, up, down, up_lane, down_lane) in &flows {
        // FF.CLAIM names no key: a worker claims on the node holding the
        // partition, found as the one that answers FF.GET for the id.
        let owner = nodes
            .iter()
            .position(|n| {
                redis::cmd("FF.GET")
                    .arg(up)
                    .query::<redis::Value>(&mut n.conn())
                    .is_ok()
            })
            .unwrap();
        assert_eq!(owner, *ni, "the partition lives where its slot is");
        let mut oc = nodes[owner].conn();
        assert!(
            claim(&mut oc, "w", &[down_lane], &[]).is_none(),
            "the downstream is held back"
        );
        let j = claim(&mut oc, "w", &[up_lane], &[]).expect("the upstream is claimable");
        assert_eq!(&j.id, up);
        // Completed through the cluster client, routed by the id.
        let ok: String = fenced("FF.COMPLETE", &j)
            .arg("RESULT")
            .arg("result-of-up")
            .query(&mut cc)
            .unwrap();
        assert_eq!(ok, "OK");
        assert_eq!(state(&mut cc, down), "waiting");
        let payload: Vec<u8> = redis::cmd("FF.PAYLOAD").arg(down).query(&mut cc).unwrap();
        assert_eq!(payload, b"result-of-up", "DATA handed the result on");
        let g = pairs(
            redis::cmd("FF.EDGEGROUP")
                .arg(f)
                .arg(down)
                .query(&mut cc)
                .unwrap(),
        );
        assert_eq!(s(&g, "group_state"), "satisfied");
        let fg = pairs(redis::cmd("FF.FLOWGET").arg(f).query(&mut cc).unwrap());
        assert_eq!(s(&fg, "state"), "open");
        let j = claim(&mut oc, "w", &[down_lane], &[]).expect("the downstream is released");
        assert_eq!(&j.id, down);
        let ok: String = fenced("FF.COMPLETE", &j).query(&mut cc).unwrap();
        assert_eq!(ok, "OK");
        let fg = pairs(redis::cmd("FF.FLOWGET").arg(f).query(&mut cc).unwrap());
        assert_eq!(s(&fg, "state"), "completed");
        assert_eq!(n(&fg, "cascading"), 0);
        let tags = pairs(fg["tags"].clone());
        assert_eq!(s(&tags, "app.node"), ni.to_string());
    }

    // '*' names no partition: refused in cluster mode with an ERR, through
    // the cluster client and on every node (the owner of the slot of "*"
    // says ERR; the others may redirect first), and nothing is created.
    let e = redis::cmd("FF.FLOWCREATE")
        .arg("*")
        .query::<redis::Value>(&mut cc)
        .unwrap_err();
    assert_eq!(e.code(), Some("ERR"), "{e}");
    assert!(e.to_string().contains("standalone"), "{e}");
    for n in &nodes {
        let e = redis::cmd("FF.FLOWCREATE")
            .arg("*")
            .arg("KIND")
            .arg("dag")
            .query::<redis::Value>(&mut n.conn())
            .unwrap_err();
        assert!(matches!(e.code(), Some("ERR") | Some("MOVED")), "{e}");
    }
    let star_owner = owner_of(slot_of("*"));
    let e = redis::cmd("FF.FLOWCREATE")
        .arg("*")
        .query::<redis::Value>(&mut nodes[star_owner].conn())
        .unwrap_err();
    assert_eq!(e.code(), Some("ERR"), "{e}");
    for (_, tag, ..) in &flows {
        let (_, page): (Option<String>, Vec<(String, i64, String)>) =
            redis::cmd("FF.FLOWS").arg(tag).query(&mut cc).unwrap();
        assert_eq!(page.len(), 1, "no flow was created by '*'");
    }

    // FF.SUBMIT * ... FLOW <flow> is refused too and creates nothing, on
    // the node that owns both the slot of "*" and the flow's partition.
    let (_, _, f, ..) = &flows[star_owner];
    let r = redis::cmd("FF.SUBMIT")
        .arg("*")
        .arg("cf-star")
        .arg("p")
        .arg("FLOW")
        .arg(f)
        .query::<redis::Value>(&mut nodes[star_owner].conn());
    assert!(r.is_err(), "{r:?}");
    assert_eq!(err_code(r), "ERR");
    let fg = pairs(redis::cmd("FF.FLOWGET").arg(f).query(&mut cc).unwrap());
    assert_eq!(n(&fg, "node_count"), 2, "nothing joined the flow");
    assert!(
        claim(&mut nodes[star_owner].conn(), "w", &["cf-star"], &[]).is_none(),
        "nothing was created"
    );
    for n in &nodes {
        let pong: String = redis::cmd("PING").query(&mut n.conn()).unwrap();
        assert_eq!(pong, "PONG");
        assert!(!n.log().contains("ASSERTION"), "{}", n.log());
    }
}
