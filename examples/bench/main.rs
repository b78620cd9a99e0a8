//! Benchmark: FlowFabric's lifecycle against a plain list queue on the same
//! server, in one run, plus blocking claims, capability routing, the node
//! timer and the operator tools on a big node. Server cost comes from INFO
//! commandstats (usec per call) and from the server main thread's CPU time
//! (/proc schedstat), which also counts the argument and reply work a
//! command does outside its own timing. Run through scripts/bench, which starts the server with the
//! durable configuration valkey.conf.example ships (AOF, fsync every
//! second).
//!
//! Last line of output: one JSON object for scripts to read.

mod claims;
mod flows;
mod lifecycle;
mod operators;
mod server;
mod streams;
mod suspension;
mod timers;

use lifecycle::{ff_run, list_run, median, retry_run, Run, PAYLOAD};

pub struct Opts {
    port: u16,
    jobs: usize,
    workers: usize,
    rounds: usize,
    delayed_jobs: usize,
    stall_jobs: usize,
    /// Blocked claimers for the wake-up latency, and how many wake-ups.
    waiters: usize,
    wakes: usize,
    /// Distinct capability sets on the lane for the routing claims.
    capsets: usize,
    /// Executions on the node while one worker holds 10,000 leases.
    lease_jobs: usize,
    /// Suspend → signal → resume cycles.
    cycles: usize,
    /// Frames appended per mode.
    frames: usize,
    /// Executions on the node the operator tools run against.
    operator_jobs: usize,
    /// Which phases run: `all`, `lifecycle` (scripts/profile: the
    /// instruction counts then cover exactly what the ratio compares) or
    /// one other phase by name, for profiling it alone.
    phases: String,
}

fn opts() -> Opts {
    let mut o = Opts {
        port: 6379,
        jobs: 10_000,
        workers: 4,
        rounds: 3,
        delayed_jobs: 10_000,
        stall_jobs: 1_000_000,
        waiters: 1000,
        wakes: 2000,
        capsets: 10_000,
        lease_jobs: 1_000_000,
        phases: "all".into(),
        cycles: 10_000,
        frames: 40_000,
        operator_jobs: 200_000,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        let n = || v.parse::<usize>().expect("a number").max(1);
        match args[i].as_str() {
            "--port" => o.port = v.parse().expect("port"),
            "--jobs" => o.jobs = n(),
            "--workers" => o.workers = n(),
            "--rounds" => o.rounds = n(),
            "--delayed-jobs" => o.delayed_jobs = n(),
            "--stall-jobs" => o.stall_jobs = n(),
            "--waiters" => o.waiters = n(),
            "--wakes" => o.wakes = n(),
            "--cycles" => o.cycles = n().max(1),
            "--frames" => o.frames = n().max(4),
            "--capsets" => o.capsets = n().min(19_900),
            "--lease-jobs" => o.lease_jobs = n().max(10_000),
            "--operator-jobs" => o.operator_jobs = n().max(1000),
            "--phases" => {
                assert!(
                    [
                        "all",
                        "lifecycle",
                        "wake",
                        "capsets",
                        "leases",
                        "stall",
                        "suspend",
                        "frames",
                        "feed",
                        "flows",
                        "operators"
                    ]
                    .contains(&v.as_str()),
                    "--phases is all, lifecycle, wake, capsets, leases, stall, suspend, frames, feed, flows or operators, not {v}"
                );
                o.phases = v.clone();
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn print_flows(f: &flows::Flows) {
    println!(
        "flows: chain of 10 by blocked workers p50 {:.3} ms p99 {:.3} ms; 1,000-wide fan-out joined {:.3} ms after the last completion; quorum cancel-remaining over 100 p50 {:.3} ms p99 {:.3} ms; FF.COMPLETE {:.2} us plain, {:.2} us releasing a dependent ({:.2} us per promotion); longest command {:.3} ms; a 10,000-member flow cancelled: command {:.3} ms, all {:.1} ms",
        f.chain_p50_ms,
        f.chain_p99_ms,
        f.fanout_join_ms,
        f.quorum_cancel_p50_ms,
        f.quorum_cancel_p99_ms,
        f.complete_plain_us,
        f.complete_promoting_us,
        f.promotion_server_us,
        f.max_command_ms,
        f.cancel10k_command_ms,
        f.cancel10k_all_ms
    );
}

fn print_operators(p: &operators::Operators) {
    println!(
        "operators on {} executions ({} failed, {} completed), round trips (server per call mean / max): INFO flowfabric median {:.0} us, max {:.0} us ({:.1} / {} us); FF.SCAN STATE failed COUNT 100 to cursor 0: {} calls, p50 {:.0} us, max {:.0} us ({:.1} / {} us); FF.DELETE {:.0} us ({:.2} / {} us); FF.BULKREPLAY COUNT 1000 of {}: {} calls, p50 {} us, max {} us ({:.0} / {} us), {:.2} us server ({:.2} us CPU) per execution; FF.BULKCANCEL LANE COUNT 1000 of {}: {} calls, p50 {} us, max {} us ({:.0} / {} us), {:.2} us server ({:.2} us CPU) per execution; worst PING meanwhile {:.2} ms (idle {:.2} ms); node built in {:.1} s",
        p.executions,
        p.failed,
        p.completed,
        p.info_us,
        p.info_max_us,
        p.info_server_us,
        p.info_server_max_us,
        p.scan_calls,
        p.scan_p50_us,
        p.scan_max_us,
        p.scan_server_us,
        p.scan_server_max_us,
        p.delete_rtt_us,
        p.delete_us,
        p.delete_server_max_us,
        p.replay.acted,
        p.replay.calls,
        p.replay.p50_us,
        p.replay.max_us,
        p.replay.server_us_per_call,
        p.replay.server_max_us,
        p.replay.per_exec_us,
        p.replay.cpu_per_exec_us,
        p.cancel.acted,
        p.cancel.calls,
        p.cancel.p50_us,
        p.cancel.max_us,
        p.cancel.server_us_per_call,
        p.cancel.server_max_us,
        p.cancel.per_exec_us,
        p.cancel.cpu_per_exec_us,
        p.worst_ping_ms,
        p.idle_ping_ms,
        p.build_s
    );
}

/// The operators phase's keys of the final JSON line.
fn operators_json(p: &operators::Operators) -> Vec<(&'static str, String)> {
    vec![
        ("info_us", format!("{:.0}", p.info_us)),
        ("info_max_us", format!("{:.0}", p.info_max_us)),
        ("info_server_us", format!("{:.2}", p.info_server_us)),
        ("info_server_max_us", p.info_server_max_us.to_string()),
        ("scan_calls", p.scan_calls.to_string()),
        ("scan_p50_us", format!("{:.0}", p.scan_p50_us)),
        ("scan_max_us", format!("{:.0}", p.scan_max_us)),
        ("scan_server_us", format!("{:.2}", p.scan_server_us)),
        ("scan_server_max_us", p.scan_server_max_us.to_string()),
        (
            "bulk_replay_max_ms",
            format!("{:.3}", p.replay.max_us as f64 / 1000.0),
        ),
        (
            "bulk_cancel_max_ms",
            format!("{:.3}", p.cancel.max_us as f64 / 1000.0),
        ),
        (
            "bulk_replay_server_max_ms",
            format!("{:.3}", p.replay.server_max_us as f64 / 1000.0),
        ),
        (
            "bulk_cancel_server_max_ms",
            format!("{:.3}", p.cancel.server_max_us as f64 / 1000.0),
        ),
        ("bulk_per_exec_us", format!("{:.3}", p.bulk_per_exec_us)),
        ("delete_us", format!("{:.2}", p.delete_us)),
        ("operators_worst_ping_ms", format!("{:.3}", p.worst_ping_ms)),
    ]
}

fn main() {
    let o = opts();
    match o.phases.as_str() {
        "wake" => {
            let w = claims::wake_latency(&o);
            println!(
                "wake p50 {:.3} ms p99 {:.3} ms, unrelated ratio {:.3}",
                w.p50_ms, w.p99_ms, w.unrelated_ratio
            );
            return;
        }
        "suspend" => {
            let s = suspension::signal_resume(&o);
            println!(
                "signal to resumed claim p50 {:.3} ms p99 {:.3} ms, server {:.2} us per cycle alone, {:.2} with 16 workers",
                s.p50_ms, s.p99_ms, s.server_us, s.loaded_server_us
            );
            return;
        }
        "feed" => {
            ff_run(&o);
            let (quiet, loud) = lifecycle::feed_cost(&o);
            println!(
                "event feed: {:.2} server us/job on, {:.2} off; main-thread CPU {:.2} on, {:.2} off",
                loud.server_us_per_job, quiet.server_us_per_job, loud.cpu_us_per_job, quiet.cpu_us_per_job
            );
            return;
        }
        "flows" => {
            let f = flows::flows(&o);
            print_flows(&f);
            return;
        }
        "operators" => {
            let p = operators::operators(&o);
            print_operators(&p);
            let fields: Vec<String> = operators_json(&p)
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            println!("{{{}}}", fields.join(","));
            return;
        }
        "frames" => {
            let f = streams::frames(&o);
            println!(
                "frames: durable {:.2} us, summary {:.2} us per append; tail p50 {:.3} ms p99 {:.3} ms; a client XADD of an event {:.2} us",
                f.durable_us, f.summary_us, f.tail_p50_ms, f.tail_p99_ms, f.xadd_us
            );
            return;
        }
        "stall" => {
            let s = timers::timer_stall(&o);
            println!("stall: promoted in {} ms, worst ping {:.2} ms (idle {:.2}), longest firing {} us ({} us CPU), in time {}", s.promoted_ms, s.worst_ping_ms, s.idle_ping_ms, s.firing_us, s.firing_cpu_us, s.in_time);
            return;
        }
        "leases" => {
            let l = claims::leases(&o);
            println!("leases: big {:.0} us, none {:.1} us, MEMORY USAGE {:.1} us, MARKDEAD {:.0} us, all revoked in {:.0} ms, longest firing {} us", l.leases_big_us, l.leases_none_us, l.memory_usage_us, l.markdead_us, l.revoked_all_ms, l.timer_max_firing_us);
            return;
        }
        "capsets" => {
            let c = claims::capsets(&o);
            println!(
                "capsets all {:.2} one {:.2} none {:.2} first {:.0} us; plain lane {:.2}",
                c.all_us, c.one_us, c.none_us, c.first_claim_us, c.plain_us
            );
            return;
        }
        _ => {}
    }
    println!(
        "bench: {} jobs, {} B payload, {} worker connections, port {}",
        o.jobs, PAYLOAD, o.workers, o.port
    );
    // A first pass of each warms the server's heap, so neither measured pass
    // pays for growing it (page faults would land inside command time).
    ff_run(&o);
    list_run(&o);
    // Measured passes alternate so a noisy stretch of the machine hits both;
    // each side reports its median pass by server time.
    let mut ffs = Vec::new();
    let mut lists = Vec::new();
    for _ in 0..o.rounds {
        ffs.push(ff_run(&o));
        lists.push(list_run(&o));
    }
    let spread = |runs: &[Run]| {
        let v: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.2}/{:.2}", r.server_us_per_job, r.cpu_us_per_job))
            .collect();
        v.join(" ")
    };
    println!(
        "passes (server us/job, commandstats/CPU): flowfabric [{}], list [{}]",
        spread(&ffs),
        spread(&lists)
    );
    let ff = median(ffs);
    let list = median(lists);
    for (label, r) in [("flowfabric", &ff), ("list queue", &list)] {
        println!(
            "{label:>11}: {:.2} server us/job (commandstats), {:.2} us/job main-thread CPU, {:.0} jobs/s end to end, {:.0} B/pending job beyond payload",
            r.server_us_per_job, r.cpu_us_per_job, r.jobs_per_s, r.bytes_pending
        );
        for (k, us) in &r.breakdown {
            println!("             {k:<12} {us:.2} us/call");
        }
    }
    println!(
        "flowfabric: {:.0} B/completed job beyond payload and result",
        ff.bytes_done
    );
    let ratio = ff.server_us_per_job / list.server_us_per_job.max(1e-9);
    let cpu_ratio = ff.cpu_us_per_job / list.cpu_us_per_job.max(1e-9);
    println!(
        "ratio flowfabric/list: {ratio:.2} by commandstats, {cpu_ratio:.2} by main-thread CPU"
    );
    if o.phases == "lifecycle" {
        return;
    }
    let (quiet, loud) = lifecycle::feed_cost(&o);
    println!(
        "event feed: {:.2} server us/job on, {:.2} off ({:+.1}%); main-thread CPU {:.2} on, {:.2} off ({:+.1}%)",
        loud.server_us_per_job,
        quiet.server_us_per_job,
        (loud.server_us_per_job / quiet.server_us_per_job.max(1e-9) - 1.0) * 100.0,
        loud.cpu_us_per_job,
        quiet.cpu_us_per_job,
        (loud.cpu_us_per_job / quiet.cpu_us_per_job.max(1e-9) - 1.0) * 100.0
    );
    let wake = claims::wake_latency(&o);
    println!(
        "wake-up with {} claimers blocked on one lane: submit to reply p50 {:.3} ms, p99 {:.3} ms over {} wake-ups",
        o.waiters, wake.p50_ms, wake.p99_ms, o.wakes
    );
    println!(
        "submit to an unrelated lane: {:.3} us CPU with no claimers, {:.3} us with {} blocked elsewhere (ratio {:.3})",
        wake.unrelated_us_idle, wake.unrelated_us_waiting, o.waiters, wake.unrelated_ratio
    );
    let caps = claims::capsets(&o);
    println!(
        "claim on a lane with {} capability sets: {:.2} us (worker matching all), {:.2} us (one), {:.2} us (none); a new worker set's first claim {:.0} us; the same claims on a lane without sets {:.2} us",
        caps.sets, caps.all_us, caps.one_us, caps.none_us, caps.first_claim_us, caps.plain_us
    );
    let leases = claims::leases(&o);
    println!(
        "with {} executions and one worker holding 10,000 leases: FF.LEASES {:.0} us (that worker), {:.1} us (a worker with none); MEMORY USAGE of a partition {:.1} us; FF.MARKDEAD {:.0} us, every lease revoked {:.0} ms later; longest timer firing {} us",
        leases.executions, leases.leases_big_us, leases.leases_none_us, leases.memory_usage_us, leases.markdead_us, leases.revoked_all_ms, leases.timer_max_firing_us
    );
    let retry_us = retry_run(&o);
    println!("retry lifecycle (submit, claim, fail, claim, complete): {retry_us:.2} server us/job");
    let (p50, p99, max) = timers::delay_lateness(&o);
    println!(
        "timer lateness over {} delayed jobs: p50 {p50} ms, p99 {p99} ms, max {max} ms",
        o.delayed_jobs
    );
    let st = timers::timer_stall(&o);
    println!(
        "timer stall: {} jobs due at once promoted in {} ms; longest PING meanwhile {:.2} ms (idle server beforehand: {:.2} ms); longest timer firing {} us ({} us of the server thread's CPU){}",
        o.stall_jobs,
        st.promoted_ms,
        st.worst_ping_ms,
        st.idle_ping_ms,
        st.firing_us,
        st.firing_cpu_us,
        if st.in_time { "" } else { " (submission overran the due time)" }
    );
    let sr = suspension::signal_resume(&o);
    println!(
        "suspend/signal/resume x{}: signal to resumed claim p50 {:.3} ms p99 {:.3} ms, server {:.2} us per cycle alone, {:.2} with 16 workers",
        o.cycles, sr.p50_ms, sr.p99_ms, sr.server_us, sr.loaded_server_us
    );
    let fr = streams::frames(&o);
    println!(
        "output frames x{}: {:.2} server us per durable append, {:.2} per summary append; append to blocked XREAD reader p50 {:.3} ms p99 {:.3} ms; a client XADD of an event-sized entry {:.2} us",
        o.frames, fr.durable_us, fr.summary_us, fr.tail_p50_ms, fr.tail_p99_ms, fr.xadd_us
    );
    let fl = flows::flows(&o);
    print_flows(&fl);
    let op = operators::operators(&o);
    print_operators(&op);
    let mut json = vec![
        (
            "ff_server_us_per_job",
            format!("{:.3}", ff.server_us_per_job),
        ),
        (
            "list_server_us_per_job",
            format!("{:.3}", list.server_us_per_job),
        ),
        ("ff_list_ratio", format!("{ratio:.3}")),
        (
            "ff_server_cpu_us_per_job",
            format!("{:.3}", ff.cpu_us_per_job),
        ),
        (
            "list_server_cpu_us_per_job",
            format!("{:.3}", list.cpu_us_per_job),
        ),
        ("ff_list_cpu_ratio", format!("{cpu_ratio:.3}")),
        ("ff_jobs_per_s", format!("{:.0}", ff.jobs_per_s)),
        ("list_jobs_per_s", format!("{:.0}", list.jobs_per_s)),
        (
            "ff_bytes_per_pending_job",
            format!("{:.0}", ff.bytes_pending),
        ),
        (
            "ff_bytes_per_completed_job",
            format!("{:.0}", ff.bytes_done),
        ),
        (
            "list_bytes_per_pending_job",
            format!("{:.0}", list.bytes_pending),
        ),
        ("wake_p50_ms_1000_waiters", format!("{:.3}", wake.p50_ms)),
        ("wake_p99_ms_1000_waiters", format!("{:.3}", wake.p99_ms)),
        (
            "unrelated_submit_cpu_ratio",
            format!("{:.3}", wake.unrelated_ratio),
        ),
        ("claim_us_10k_capsets_all", format!("{:.3}", caps.all_us)),
        ("claim_us_10k_capsets_one", format!("{:.3}", caps.one_us)),
        ("claim_us_10k_capsets_none", format!("{:.3}", caps.none_us)),
        (
            "claim_us_10k_capsets_first",
            format!("{:.0}", caps.first_claim_us),
        ),
        ("claim_us_plain_lane", format!("{:.3}", caps.plain_us)),
        (
            "leases_us_10k_leases",
            format!("{:.1}", leases.leases_big_us),
        ),
        (
            "leases_us_no_leases",
            format!("{:.2}", leases.leases_none_us),
        ),
        (
            "memory_usage_us_1m_executions",
            format!("{:.2}", leases.memory_usage_us),
        ),
        (
            "markdead_us_10k_leases",
            format!("{:.1}", leases.markdead_us),
        ),
        (
            "markdead_all_revoked_ms",
            format!("{:.1}", leases.revoked_all_ms),
        ),
        (
            "markdead_timer_max_firing_ms",
            format!("{:.3}", leases.timer_max_firing_us as f64 / 1000.0),
        ),
        ("retry_server_us_per_job", format!("{retry_us:.3}")),
        ("delay_lateness_p50_ms", p50.to_string()),
        ("delay_lateness_p99_ms", p99.to_string()),
        ("delay_lateness_max_ms", max.to_string()),
        ("timer_stall_max_ms", format!("{:.3}", st.worst_ping_ms)),
        ("idle_ping_max_ms", format!("{:.3}", st.idle_ping_ms)),
        (
            "timer_max_firing_ms",
            format!("{:.3}", st.firing_us as f64 / 1000.0),
        ),
        ("signal_resume_p50_ms", format!("{:.3}", sr.p50_ms)),
        ("signal_resume_p99_ms", format!("{:.3}", sr.p99_ms)),
        ("suspend_cycle_server_us", format!("{:.3}", sr.server_us)),
        (
            "suspend_cycle_server_us_16_workers",
            format!("{:.3}", sr.loaded_server_us),
        ),
        (
            "ff_server_us_per_job_events_off",
            format!("{:.3}", quiet.server_us_per_job),
        ),
        (
            "ff_server_cpu_us_per_job_events_off",
            format!("{:.3}", quiet.cpu_us_per_job),
        ),
        (
            "ff_server_us_per_job_events_on",
            format!("{:.3}", loud.server_us_per_job),
        ),
        (
            "ff_server_cpu_us_per_job_events_on",
            format!("{:.3}", loud.cpu_us_per_job),
        ),
        ("frame_append_server_us", format!("{:.3}", fr.durable_us)),
        ("xadd_event_server_us", format!("{:.3}", fr.xadd_us)),
        ("summary_append_server_us", format!("{:.3}", fr.summary_us)),
        ("tail_latency_p50_ms", format!("{:.3}", fr.tail_p50_ms)),
        ("tail_latency_p99_ms", format!("{:.3}", fr.tail_p99_ms)),
        (
            "timer_max_firing_cpu_ms",
            format!("{:.3}", st.firing_cpu_us as f64 / 1000.0),
        ),
        ("flow_chain10_p50_ms", format!("{:.3}", fl.chain_p50_ms)),
        ("flow_chain10_p99_ms", format!("{:.3}", fl.chain_p99_ms)),
        ("fanout1000_join_ms", format!("{:.3}", fl.fanout_join_ms)),
        (
            "quorum_cancel_p99_ms",
            format!("{:.3}", fl.quorum_cancel_p99_ms),
        ),
        (
            "promotion_server_us",
            format!("{:.3}", fl.promotion_server_us),
        ),
        ("flow_max_command_ms", format!("{:.3}", fl.max_command_ms)),
        (
            "flow_cancel10k_all_ms",
            format!("{:.1}", fl.cancel10k_all_ms),
        ),
    ];
    json.extend(operators_json(&op));
    let fields: Vec<String> = json.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!("{{{}}}", fields.join(","));
}
