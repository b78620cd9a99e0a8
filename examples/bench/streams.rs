//! Output streams: server µs per appended frame (durable and summary
//! modes, token-sized frames as an LLM worker streams them, 4 workers at
//! once so caches stay warm as in the lifecycle passes), and the tail
//! latency from sending an append to a reader blocked in XREAD getting it.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::server::*;
use crate::Opts;

/// A stream entry as XREAD returns it.
type Entry = (String, Vec<(String, String)>);

pub struct Frames {
    /// A client's XADD of an event-sized entry (the feed's five fields), for
    /// scale: what one event costs the server at the least.
    pub xadd_us: f64,
    pub durable_us: f64,
    pub summary_us: f64,
    pub tail_p50_ms: f64,
    pub tail_p99_ms: f64,
}

/// A claimed job of `lane`: id, lease id, epoch, attempt id.
fn claimed(c: &mut redis::Connection, lane: &str) -> [String; 4] {
    let _: String = redis::cmd("FF.SUBMIT")
        .arg("*")
        .arg(lane)
        .arg("x")
        .query(c)
        .unwrap();
    let v: Vec<redis::Value> = redis::cmd("FF.CLAIM")
        .arg("fw")
        .arg("i")
        .arg(1)
        .arg(lane)
        .query(c)
        .unwrap();
    let s = |i: usize| match &v[i] {
        redis::Value::Int(n) => n.to_string(),
        x => redis::from_redis_value(x).unwrap(),
    };
    [s(0), s(2), s(3), s(4)]
}

fn append(f: &[String; 4], payload: &str, mode: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("FF.APPEND");
    cmd.arg(&f[0])
        .arg(&f[1])
        .arg(&f[2])
        .arg(&f[3])
        .arg("token")
        .arg(payload)
        .arg("MODE")
        .arg(mode);
    cmd
}

/// Server µs per FF.APPEND in `mode`, `frames` appends over 4 workers.
fn append_us(o: &Opts, mode: &'static str, frames: usize) -> f64 {
    let mut c = conn(o.port);
    reset(&mut c);
    let per = frames / 4;
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let port = o.port;
            std::thread::spawn(move || {
                let mut c = conn(port);
                let lane = format!("fr{w}");
                let mut f = claimed(&mut c, &lane);
                let mut pipe = redis::pipe();
                for i in 0..per {
                    // A new attempt's stream every 10,000 frames keeps each
                    // within the attempt's limits.
                    if i > 0 && i % 10_000 == 0 {
                        pipe.query::<()>(&mut c).unwrap();
                        pipe = redis::pipe();
                        let mut done = redis::cmd("FF.COMPLETE");
                        done.arg(&f[0]).arg(&f[1]).arg(&f[2]).arg(&f[3]);
                        let _: String = done.query(&mut c).unwrap();
                        f = claimed(&mut c, &lane);
                    }
                    let payload = if mode == "summary" {
                        format!(r#"{{"tokens":{i},"last":"tok{i}","usage":{{"out":{i}}}}}"#)
                    } else {
                        format!("tok{i} ")
                    };
                    pipe.add_command(append(&f, &payload, mode)).ignore();
                    if pipe.cmd_iter().count() >= 100 {
                        pipe.query::<()>(&mut c).unwrap();
                        pipe = redis::pipe();
                    }
                }
                pipe.query::<()>(&mut c).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = commandstats(&mut c);
    let (us, calls) = stats.get("ff.append").copied().unwrap_or((0, 1));
    us as f64 / calls.max(1) as f64
}

/// Append to a reader's reply: the reader blocks in XREAD on the stream,
/// the writer appends once it is blocked.
fn tail_latency(o: &Opts, samples: usize) -> (f64, f64) {
    let mut c = conn(o.port);
    reset(&mut c);
    let f = claimed(&mut c, "tail");
    let (got_tx, got_rx) = mpsc::channel::<Instant>();
    let port = o.port;
    let reader_key = format!("ff:stream:{}:0", f[0]);
    let reader = std::thread::spawn(move || {
        let mut r = conn(port);
        let mut last = "0-0".to_string();
        for _ in 0..samples {
            let v: Vec<(String, Vec<Entry>)> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(10_000)
                .arg("STREAMS")
                .arg(&reader_key)
                .arg(&last)
                .query(&mut r)
                .unwrap();
            got_tx.send(Instant::now()).unwrap();
            last = v[0].1.last().unwrap().0.clone();
        }
    });
    let mut lat = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        while info(&mut c, "clients")["blocked_clients"] != "1" {
            assert!(t.elapsed() < Duration::from_secs(5), "reader did not block");
            std::hint::spin_loop();
        }
        let sent = Instant::now();
        let _: redis::Value = append(&f, &format!("t{i}"), "durable")
            .query(&mut c)
            .unwrap();
        let got = got_rx.recv_timeout(Duration::from_secs(10)).expect("read");
        lat.push(got.duration_since(sent).as_micros() as u64);
    }
    reader.join().unwrap();
    lat.sort_unstable();
    (
        percentile(&lat, 0.5) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
    )
}

/// Server µs per client XADD of an event's five fields.
fn xadd_us(o: &Opts, n: usize) -> f64 {
    let mut c = conn(o.port);
    reset(&mut c);
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("XADD")
            .arg("bench:events")
            .arg("*")
            .arg("event")
            .arg("completed")
            .arg("id")
            .arg(format!("{{fp:7}}:00000000-0000-4000-8000-{i:012x}"))
            .arg("lane")
            .arg("bench")
            .arg("attempt")
            .arg("0")
            .arg("detail")
            .arg("")
            .ignore();
        if i % 100 == 99 {
            pipe.query::<()>(&mut c).unwrap();
            pipe = redis::pipe();
        }
    }
    pipe.query::<()>(&mut c).unwrap();
    let stats = commandstats(&mut c);
    let (us, calls) = stats.get("xadd").copied().unwrap_or((0, 1));
    us as f64 / calls.max(1) as f64
}

pub fn frames(o: &Opts) -> Frames {
    let n = o.frames;
    // A first pass warms the server's heap.
    append_us(o, "durable", n / 4);
    let durable_us = append_us(o, "durable", n);
    let summary_us = append_us(o, "summary", n);
    let (tail_p50_ms, tail_p99_ms) = tail_latency(o, 2000);
    let xadd_us = xadd_us(o, n);
    Frames {
        xadd_us,
        durable_us,
        summary_us,
        tail_p50_ms,
        tail_p99_ms,
    }
}
