//! The worker examples (examples/workers/) on a real server. The Python worker
//! (redis-py) runs submitted jobs to completion, keeps a lease shorter than its
//! job by renewing it, and drains on SIGTERM; its complete recognises its own
//! success after a lost reply and its producer's submit is idempotent. The
//! Node worker is syntax-checked where node is installed; the Rust one is
//! built by `cargo test` with the other examples.
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

fn workers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workers")
}

/// python3 with redis-py, or a clear failure (scripts/setup installs redis-py,
/// and CI runs it): this test must not pass by skipping.
fn python() -> Command {
    let ok = Command::new("python3")
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the Python worker example needs python3 with redis-py: run scripts/setup \
         (it installs redis-py), or python3 -m pip install redis"
    );
    let mut python = Command::new("python3");
    python.env("PYTHONDONTWRITEBYTECODE", "1"); // no __pycache__ in examples/
    python
}

/// The Python worker on `srv`, its stdout lines sent to the receiver.
fn worker(srv: &Server, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = python()
        .arg(workers_dir().join("worker.py"))
        .args(["--port", &srv.port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for the worker to exit; kills it and fails past `within`.
fn exit_of(child: &mut Child, within: Duration) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if t.elapsed() > within {
            let _ = child.kill();
            panic!("the worker did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state(c: &mut redis::Connection, id: &str) -> String {
    s(&get(c, id), "public_state")
}

#[test]
fn python_worker_runs_submitted_jobs() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    // The producer's submits are idempotent: submitting again returns the same ids.
    let produce = || {
        let out = python()
            .arg(workers_dir().join("worker.py"))
            .args([
                "--port",
                &srv.port.to_string(),
                "--lane",
                "ex",
                "--submit",
                "3",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = produce();
    assert_eq!(produce(), first);
    let ids: Vec<&str> = first.lines().collect();
    assert_eq!(ids.len(), 3);
    let (mut w, lines) = worker(&srv, &["--lane", "ex", "--max-jobs", "3"]);
    assert!(exit_of(&mut w, Duration::from_secs(60)).success());
    let said: Vec<String> = lines.try_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(said.contains(&format!("completed {id}")), "{said:?}");
        assert_eq!(state(&mut c, id), "completed");
        let result: String = redis::cmd("FF.RESULT").arg(*id).query(&mut c).unwrap();
        assert_eq!(result, format!(r#"{{"done": {{"n": {i}}}}}"#));
    }
    assert_eq!(said.last().map(String::as_str), Some("drained"));
    // It registered itself.
    let workers: Vec<redis::Value> = redis::cmd("FF.WORKERS").query(&mut c).unwrap();
    let w = pairs(workers.into_iter().next().unwrap());
    assert_eq!(s(&w, "worker_id"), "py-worker");
    let lanes: Vec<String> = redis::from_redis_value(&w["lanes"]).unwrap();
    assert_eq!(lanes, ["ex"]);
}

#[test]
fn python_worker_renews_its_lease_and_drains_on_sigterm() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    // A job of 2.5 s under a 1 s lease: only renewals let it complete.
    let long = submit(&mut c, "drain", r#"{"sleep": 2.5}"#, &[]);
    let next = submit(&mut c, "drain", r#"{"n": 1}"#, &[]);
    let (mut w, lines) = worker(&srv, &["--lane", "drain", "--lease-ms", "1000"]);
    let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(first, format!("claimed {long}"));
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", w.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    // It finishes the job in hand, claims no more, and exits cleanly.
    assert!(exit_of(&mut w, Duration::from_secs(20)).success());
    let said: Vec<String> = lines.try_iter().collect();
    assert_eq!(said, [format!("completed {long}"), "drained".to_string()]);
    assert_eq!(state(&mut c, &long), "completed");
    assert_eq!(state(&mut c, &next), "waiting");
}

#[test]
fn python_complete_survives_a_lost_reply() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    submit(&mut c, "lost", "{}", &[]);
    // The second complete is what a retry after a lost reply sends: it gets
    // EXECUTION_NOT_ACTIVE naming this attempt's success. Another attempt's
    // fence does not pass for it.
    let script = format!(
        "import sys; sys.path.insert(0, {dir:?}); import redis, worker\n\
         r = redis.Redis(port={port}, decode_responses=True)\n\
         job = worker.claim(r, 'lost-1', 'lost', 30000)\n\
         other = job[:4] + ['00000000-0000-4000-8000-000000000000'] + job[5:]\n\
         print(worker.complete(r, job, 'r'), worker.complete(r, job, 'r'), worker.complete(r, other, 'r'))",
        dir = workers_dir().to_string_lossy(),
        port = srv.port,
    );
    let out = python().args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True True False"
    );
}

/// The Rust example as `cargo test` builds it (beside this test's own binary).
#[test]
fn rust_worker_runs_jobs_and_drains_on_sigterm() {
    let exe = std::env::current_exe().unwrap();
    let Some(bin) = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("examples/worker"))
    else {
        panic!("no target directory above {exe:?}")
    };
    if !bin.exists() {
        // `cargo test` builds every example; `--test examples` alone does not.
        eprintln!("{bin:?} not built (run the whole suite or cargo build --example worker)");
        return;
    }
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let mut w = Command::new(&bin)
        .args([format!("127.0.0.1:{}", srv.port), "rs".into(), "2".into()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(w.stdout.take().unwrap()).lines();
    let mut line = || out.next().unwrap().unwrap();
    let ids = [line(), line()];
    for id in &ids {
        assert_eq!(line(), format!("claimed {id}"));
        assert_eq!(line(), format!("completed {id}"));
        assert_eq!(state(&mut c, id), "completed");
    }
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", w.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(exit_of(&mut w, Duration::from_secs(20)).success());
    assert_eq!(line(), "drained");
}

#[test]
fn node_worker_parses() {
    let Ok(node) = Command::new("node").arg("--version").output() else {
        eprintln!("node is not installed: examples/workers/worker.js not checked");
        return;
    };
    assert!(node.status.success());
    let out = Command::new("node")
        .arg("--check")
        .arg(workers_dir().join("worker.js"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
