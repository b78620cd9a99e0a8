//! Talking to the bench server: connections, INFO, commandstats, and the
//! server main thread's CPU time from /proc (which also counts the work a
//! command does outside its own timing: argument parsing, replies, timer
//! callbacks).

use std::collections::HashMap;

pub fn conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

pub fn info(c: &mut redis::Connection, section: &str) -> HashMap<String, String> {
    let s: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    s.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

pub fn used_memory(c: &mut redis::Connection) -> i64 {
    info(c, "memory")["used_memory"].parse().unwrap()
}

/// Total usec and calls per command since the last CONFIG RESETSTAT.
pub fn commandstats(c: &mut redis::Connection) -> HashMap<String, (u64, u64)> {
    let mut out = HashMap::new();
    for (k, v) in info(c, "commandstats") {
        let Some(name) = k.strip_prefix("cmdstat_") else {
            continue;
        };
        let mut calls = 0;
        let mut usec = 0;
        for kv in v.split(',') {
            match kv.split_once('=') {
                Some(("calls", n)) => calls = n.parse().unwrap_or(0),
                Some(("usec", n)) => usec = n.parse().unwrap_or(0),
                _ => {}
            }
        }
        out.insert(name.to_lowercase(), (usec, calls));
    }
    out
}

pub fn usec_of(stats: &HashMap<String, (u64, u64)>, names: &[&str]) -> u64 {
    names.iter().map(|n| stats.get(*n).map_or(0, |s| s.0)).sum()
}

/// Server microseconds per call of each named command.
pub fn per_call(stats: &HashMap<String, (u64, u64)>, names: &[&str]) -> Vec<(String, f64)> {
    names
        .iter()
        .map(|k| {
            let (us, calls) = stats.get(*k).copied().unwrap_or((0, 0));
            (k.to_string(), us as f64 / calls.max(1) as f64)
        })
        .collect()
}

pub fn reset(c: &mut redis::Connection) {
    let _: () = redis::cmd("FLUSHALL").arg("SYNC").query(c).unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
}

pub fn settle_memory(c: &mut redis::Connection) -> i64 {
    std::thread::sleep(std::time::Duration::from_millis(200));
    used_memory(c)
}

pub fn server_ms(c: &mut redis::Connection) -> u64 {
    let (sec, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    sec * 1000 + us / 1000
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

/// The server's main thread, for its CPU time.
#[derive(Clone, Copy)]
pub struct MainThread(u32);

impl MainThread {
    pub fn of(c: &mut redis::Connection) -> MainThread {
        MainThread(info(c, "server")["process_id"].parse().unwrap())
    }

    /// Nanoseconds the main thread has run (first field of schedstat).
    pub fn cpu_ns(self) -> u64 {
        let p = format!("/proc/{0}/task/{0}/schedstat", self.0);
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}
