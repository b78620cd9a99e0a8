//! The node timer: how late delayed jobs become claimable, and how long
//! the event loop stalls when a million jobs fall due at once.

use crate::server::*;
use crate::Opts;

/// Timer lateness: jobs due over two seconds; how long after its due time
/// each became claimable (the promotion time the server recorded).
pub fn delay_lateness(o: &Opts) -> (u64, u64, u64) {
    let mut c = conn(o.port);
    reset(&mut c);
    let start = server_ms(&mut c) + 1000;
    let mut due = Vec::with_capacity(o.delayed_jobs);
    let mut ids = Vec::with_capacity(o.delayed_jobs);
    for chunk in (0..o.delayed_jobs).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for &i in chunk {
            let at = start + (i as u64 * 2000) / o.delayed_jobs as u64;
            due.push(at);
            p.cmd("FF.SUBMIT")
                .arg("*")
                .arg("late")
                .arg("x")
                .arg("DELAY_UNTIL")
                .arg(at);
        }
        let got: Vec<String> = p.query(&mut c).unwrap();
        ids.extend(got);
    }
    while server_ms(&mut c) < start + 2200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut late = Vec::with_capacity(ids.len());
    for (chunk, dues) in ids.chunks(500).zip(due.chunks(500)) {
        let mut p = redis::pipe();
        for id in chunk {
            p.cmd("FF.GET").arg(id);
        }
        let all: Vec<redis::Value> = p.query(&mut c).unwrap();
        for (v, &d) in all.iter().zip(dues) {
            let redis::Value::Array(f) = v else {
                panic!("{v:?}")
            };
            let get = |k: &str| -> String {
                let i = f
                    .chunks(2)
                    .position(|p| redis::from_redis_value::<String>(&p[0]).unwrap() == k)
                    .unwrap();
                redis::from_redis_value(&f[i * 2 + 1]).unwrap()
            };
            assert_eq!(
                get("public_state"),
                "waiting",
                "every delayed job was promoted"
            );
            let at: u64 = get("last_transition_at").parse().unwrap();
            late.push(at.saturating_sub(d));
        }
    }
    late.sort_unstable();
    (
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late.last().copied().unwrap_or(0),
    )
}

/// Event-loop stall: many jobs due at the same instant; the longest PING
/// round trip a concurrent client sees while the timer promotes them all.
/// Returns (worst ping ms, ms until the last sampled job was promoted,
/// whether submission finished before the due time).
pub struct Stall {
    pub worst_ping_ms: f64,
    pub idle_ping_ms: f64,
    pub promoted_ms: u64,
    pub in_time: bool,
    /// The longest timer firing since the server started, by the clock and
    /// in the server thread's CPU time.
    pub firing_us: u64,
    pub firing_cpu_us: u64,
}

pub fn timer_stall(o: &Opts) -> Stall {
    let mut c = conn(o.port);
    reset(&mut c);
    // The same PING loop on the idle server first: the machine's own noise.
    let mut idle_worst = 0f64;
    let mut ping = conn(o.port);
    let idle_start = std::time::Instant::now();
    while idle_start.elapsed() < std::time::Duration::from_secs(2) {
        let t = std::time::Instant::now();
        let _: String = redis::cmd("PING").query(&mut ping).unwrap();
        idle_worst = idle_worst.max(t.elapsed().as_secs_f64() * 1000.0);
    }
    let at = server_ms(&mut c) + 2000 + (o.stall_jobs as u64) / 150;
    let mut sample = Vec::new();
    for chunk in (0..o.stall_jobs).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        for _ in chunk {
            p.cmd("FF.SUBMIT")
                .arg("*")
                .arg("stall")
                .arg("x")
                .arg("DELAY_UNTIL")
                .arg(at);
        }
        let ids: Vec<String> = p.query(&mut c).unwrap();
        sample.extend(ids.into_iter().step_by(97));
    }
    let in_time = server_ms(&mut c) < at;
    let mut ping = conn(o.port);
    while server_ms(&mut c) + 20 < at {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Ping through the whole promotion window; nothing else talks to the
    // server meanwhile.
    let window = std::time::Duration::from_millis(3000 + (o.stall_jobs as u64) / 100);
    let mut worst = 0f64;
    let started = std::time::Instant::now();
    while started.elapsed() < window {
        let t = std::time::Instant::now();
        let _: String = redis::cmd("PING").query(&mut ping).unwrap();
        worst = worst.max(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut last_promoted = 0u64;
    for chunk in sample.chunks(500) {
        let mut p = redis::pipe();
        for id in chunk {
            p.cmd("FF.GET").arg(id);
        }
        let all: Vec<redis::Value> = p.query(&mut c).unwrap();
        for v in all {
            let redis::Value::Array(f) = v else {
                panic!("{v:?}")
            };
            let state: String = redis::from_redis_value(&f[11]).unwrap();
            assert_eq!(state, "waiting", "promoted within the window");
            let t: String = redis::from_redis_value(&f[37]).unwrap();
            last_promoted = last_promoted.max(t.parse().unwrap_or(0));
        }
    }
    let v: redis::Value = redis::cmd("FF.VERSION").query(&mut c).unwrap();
    let redis::Value::Array(f) = v else { panic!() };
    let field = |name: &str| -> u64 {
        let i = f
            .chunks(2)
            .position(|p| redis::from_redis_value::<String>(&p[0]).unwrap() == name)
            .unwrap();
        redis::from_redis_value(&f[i * 2 + 1]).unwrap()
    };
    Stall {
        worst_ping_ms: worst,
        idle_ping_ms: idle_worst,
        promoted_ms: last_promoted.saturating_sub(at),
        in_time,
        firing_us: field("timer_max_firing_us"),
        firing_cpu_us: field("timer_max_firing_cpu_us"),
    }
}
