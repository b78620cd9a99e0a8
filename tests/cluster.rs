//! A three-primary Valkey Cluster on loopback: jobs submitted across many
//! partitions through a cluster-aware client are all claimed, once, by
//! workers connected to each primary.
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

fn cluster_info(srv: &Server) -> String {
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut srv.conn())
        .unwrap()
}

fn form_cluster() -> Vec<Server> {
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            Server::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ])
        })
        .collect();
    let mut first = nodes[0].conn();
    for n in &nodes[1..] {
        let _: () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(n.port)
            .query(&mut first)
            .unwrap();
    }
    for (n, (lo, hi)) in nodes.iter().zip([(0, 5460), (5461, 10922), (10923, 16383)]) {
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(lo)
            .arg(hi)
            .query(&mut n.conn())
            .unwrap();
    }
    let t = Instant::now();
    while !nodes
        .iter()
        .all(|n| cluster_info(n).contains("cluster_state:ok"))
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "cluster did not become ok"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes
}

#[test]
fn cluster_submit_claim_complete_loses_nothing() {
    let nodes = form_cluster();
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port))
        .collect();
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
}
