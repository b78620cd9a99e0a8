//! Test harness: a real valkey-server with the module loaded, on a free
//! loopback port, in a fresh directory, killed when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn valkey_server() -> String {
    if let Ok(v) = std::env::var("VALKEY_SERVER") {
        return v;
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/valkey-server-path");
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .expect("run scripts/test (or scripts/setup) so a valkey-server is found")
}

pub fn module_path() -> String {
    std::env::var("FF_MODULE").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/release/libflowfabric.so")
            .to_string_lossy()
            .into_owned()
    })
}

pub fn free_port() -> u16 {
    // Bind port 0 and release it; retried by the caller if it races.
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static DIR_SEQ: AtomicU32 = AtomicU32::new(0);

pub fn fresh_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ff-test-{}-{}-{}",
        tag,
        std::process::id(),
        DIR_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Self::start_in(fresh_dir("srv"), extra)
    }

    /// A replica of `primary`, returned once its link to the primary is up.
    pub fn start_replica(primary: &Server, extra: &[&str]) -> Server {
        let port = primary.port.to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
        args.extend_from_slice(extra);
        let replica = Server::start(&args);
        let mut r = replica.conn();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut r)
                .unwrap_or_default();
            if info.contains("master_link_status:up") {
                return replica;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("replica link did not come up; log: {}", replica.log());
    }

    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Server {
        let mut s = Server {
            port: 0,
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        for attempt in 0..5 {
            // A restart tries its old port first; if another test took it
            // meanwhile, any free port will do (the data dir is what counts).
            let port = if self.port == 0 || attempt > 0 {
                free_port()
            } else {
                self.port
            };
            let mut cmd = Command::new(valkey_server());
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--dir")
                .arg(&self.dir)
                .arg("--save")
                .arg("")
                .arg("--enable-debug-command")
                .arg("yes")
                .arg("--logfile")
                .arg("valkey.log")
                .arg("--loadmodule")
                .arg(module_path());
            for a in &self.extra {
                cmd.arg(a);
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn valkey-server");
            self.child = Some(child);
            self.port = port;
            if self.wait_ready(Duration::from_secs(10)) {
                return;
            }
            self.kill();
            self.port = 0;
        }
        panic!("valkey-server did not start; log: {}", self.log());
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return false;
                }
            }
            // Answering is not enough: parallel tests race for free ports,
            // so make sure the server on this port is our own process.
            if let Ok(mut c) = self.try_conn() {
                let info: Result<String, _> = redis::cmd("INFO").arg("server").query(&mut c);
                if let (Ok(info), Some(child)) = (info, self.child.as_ref()) {
                    let pid = format!("process_id:{}", child.id());
                    // Nor is our own process answering: a restart must have
                    // finished loading its data (DEBUG DIGEST and INFO answer
                    // while loading, over a partial dataset).
                    let mut loaded = || {
                        redis::cmd("INFO")
                            .arg("persistence")
                            .query::<String>(&mut c)
                            .is_ok_and(|p| p.lines().any(|l| l.trim() == "loading:0"))
                    };
                    if info.lines().any(|l| l.trim() == pid) && loaded() {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        c.get_connection_with_timeout(Duration::from_millis(500))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("valkey.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server cleanly (SHUTDOWN with the given mode) and waits.
    pub fn shutdown(&mut self, mode: &str) {
        if let Ok(mut c) = self.try_conn() {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg(mode).query(&mut c);
        }
        if let Some(mut c) = self.child.take() {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and directory (a process still
    /// running is killed first: two would share the directory, and the old
    /// one would outlive the test).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts again in the same directory with other extra arguments.
    #[allow(dead_code)]
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.kill();
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    /// Waits for the process to exit by itself; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(Some(s)) = c.try_wait() {
                self.child = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts a server expected to fail while loading; returns it unstarted-checked.
    pub fn spawn_raw(dir: PathBuf, extra: &[&str]) -> Server {
        let port = free_port();
        let mut cmd = Command::new(valkey_server());
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&dir);
        cmd.arg("--logfile")
            .arg("valkey.log")
            .arg("--loadmodule")
            .arg(module_path());
        for a in extra {
            cmd.arg(a);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        Server {
            port,
            dir,
            child: Some(child),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A claim reply as a map from field to value.
pub type Fields = std::collections::HashMap<String, redis::Value>;

pub fn pairs(v: redis::Value) -> Fields {
    let redis::Value::Array(items) = v else {
        panic!("expected array, got {v:?}")
    };
    let mut m = Fields::new();
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let k: String = redis::from_redis_value(&k).unwrap();
        m.insert(k, v);
    }
    m
}

/// FF.CLAIM's positional reply, named.
pub const CLAIM_FIELDS: [&str; 8] = [
    "execution_id",
    "payload",
    "lease_id",
    "lease_epoch",
    "attempt_id",
    "attempt_index",
    "lease_expires_at",
    "resumed",
];

pub fn claim_fields(v: redis::Value) -> Fields {
    let redis::Value::Array(items) = v else {
        panic!("expected array, got {v:?}")
    };
    assert_eq!(items.len(), CLAIM_FIELDS.len());
    CLAIM_FIELDS
        .iter()
        .map(|k| k.to_string())
        .zip(items)
        .collect()
}

pub fn s(f: &Fields, k: &str) -> String {
    match f.get(k) {
        Some(redis::Value::Nil) | None => String::new(),
        Some(v) => redis::from_redis_value(v).unwrap_or_else(|_| panic!("field {k}: {v:?}")),
    }
}

pub fn n(f: &Fields, k: &str) -> i64 {
    redis::from_redis_value(f.get(k).unwrap_or_else(|| panic!("missing {k}"))).unwrap()
}

pub struct Job {
    pub id: String,
    pub lease_id: String,
    pub epoch: i64,
    pub attempt_id: String,
    pub payload: Vec<u8>,
    pub fields: Fields,
}

pub fn claim(
    c: &mut redis::Connection,
    worker: &str,
    lanes: &[&str],
    extra: &[&str],
) -> Option<Job> {
    let mut cmd = redis::cmd("FF.CLAIM");
    cmd.arg(worker).arg(format!("{worker}-i")).arg(lanes.len());
    for l in lanes {
        cmd.arg(*l);
    }
    for e in extra {
        cmd.arg(*e);
    }
    let v: redis::Value = cmd.query(c).unwrap();
    if v == redis::Value::Nil {
        return None;
    }
    let f = claim_fields(v);
    Some(Job {
        id: s(&f, "execution_id"),
        lease_id: s(&f, "lease_id"),
        epoch: n(&f, "lease_epoch"),
        attempt_id: s(&f, "attempt_id"),
        payload: redis::from_redis_value(f.get("payload").unwrap()).unwrap(),
        fields: f,
    })
}

pub fn submit(c: &mut redis::Connection, lane: &str, payload: &str, extra: &[&str]) -> String {
    let mut cmd = redis::cmd("FF.SUBMIT");
    cmd.arg("*").arg(lane).arg(payload);
    for e in extra {
        cmd.arg(*e);
    }
    cmd.query(c).unwrap()
}

pub fn complete(
    c: &mut redis::Connection,
    j: &Job,
    result: Option<&str>,
) -> redis::RedisResult<String> {
    let mut cmd = fenced("FF.COMPLETE", j);
    if let Some(r) = result {
        cmd.arg("RESULT").arg(r);
    }
    cmd.query(c)
}

/// A holder's fenced call on `j` (`name id lease_id epoch attempt_id`);
/// options go after.
pub fn fenced(name: &str, j: &Job) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(&j.id)
        .arg(&j.lease_id)
        .arg(j.epoch)
        .arg(&j.attempt_id);
    cmd
}

pub fn get(c: &mut redis::Connection, id: &str) -> Fields {
    pairs(redis::cmd("FF.GET").arg(id).query(c).unwrap())
}

/// The type of an execution's latest attempt, from FF.GET.
pub fn attempt_type(c: &mut redis::Connection, id: &str) -> String {
    let redis::Value::Array(attempts) = get(c, id).remove("attempts").unwrap() else {
        panic!("attempts is not an array")
    };
    s(&pairs(attempts.into_iter().last().unwrap()), "attempt_type")
}

pub fn err_code(r: redis::RedisResult<redis::Value>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            if code.is_empty() {
                e.to_string()
            } else {
                code
            }
        }
    }
}

pub fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
}

/// The `{fp:N}` tag of an execution id.
pub fn tag_of(id: &str) -> String {
    id.find("}:")
        .map_or_else(String::new, |i| id[..=i].to_string())
}

/// How many executions a partition holds, paging through FF.LIST.
pub fn records_in(c: &mut redis::Connection, tag: &str) -> usize {
    let (mut cursor, mut n) = ("0".to_string(), 0);
    loop {
        let (next, ids): (String, Vec<String>) = redis::cmd("FF.LIST")
            .arg(tag)
            .arg("CURSOR")
            .arg(&cursor)
            .query(c)
            .unwrap();
        n += ids.len();
        if next == "0" {
            return n;
        }
        cursor = next;
    }
}

/// Polls `f` every 2 ms until it holds; panics after `within`.
pub fn wait_until(mut f: impl FnMut() -> bool, within: Duration, what: &str) -> Duration {
    let t = Instant::now();
    while t.elapsed() < within {
        if f() {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("{what} did not happen within {within:?}");
}

/// An `INFO` field as a number (0 when absent).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// How many clients the server holds blocked.
pub fn blocked_clients(c: &mut redis::Connection) -> u64 {
    info_field(c, "clients", "blocked_clients")
}

/// A fresh connection to a port.
pub fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

pub fn cluster_info(srv: &Server) -> String {
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut srv.conn())
        .unwrap()
}

/// The client URLs of a cluster's nodes.
pub fn node_urls(nodes: &[Server]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port))
        .collect()
}

pub fn form_cluster() -> Vec<Server> {
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

/// A cluster node started as a replica of `primary`, returned once its
/// replication link is up.
pub fn add_cluster_replica(nodes: &[Server], primary: &Server) -> Server {
    let r = Server::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
    ]);
    let mut c = r.conn();
    let _: () = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(nodes[0].port)
        .query(&mut c)
        .unwrap();
    let id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut primary.conn())
        .unwrap();
    let t = Instant::now();
    loop {
        let known: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
        if known.contains(&id) {
            let ok: redis::RedisResult<()> = redis::cmd("CLUSTER")
                .arg("REPLICATE")
                .arg(&id)
                .query(&mut c);
            if ok.is_ok() {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "replica did not join"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(
        || {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
            info.contains("master_link_status:up")
        },
        Duration::from_secs(30),
        "cluster replica link",
    );
    r
}
