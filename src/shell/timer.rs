//! The node timer's firing, in place of the reference's scanners. It runs
//! when the earliest due time among the partitions this node holds has
//! come, handles a bounded batch of due entries (delays, lease expiries,
//! deadlines, retention: at most 1,000 or 1 ms), replicates each
//! partition's batch as `FF.DUE` so replicas and the AOF replay exactly the
//! same steps, hands what it made claimable to blocked claimers, marks
//! lapsed workers dead and revokes their leases, then re-arms (see
//! `schedule`). It acts only on a primary that is not loading and whose
//! writes are not paused.

use std::os::raw::c_void;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flowfabric_core::partition::requests::DueBatch;
use redis_module::{raw, Context, ContextFlags};

use crate::shell::call::select_db;
use crate::shell::guard::guard;
use crate::shell::node::{now_ms, with_registry};
use crate::shell::schedule::{self, arm, soon};
use crate::shell::{blocking, config, due, effects, feed, revocations};

/// Due entries handled per firing, and the time a firing may take, so a
/// million due items never stall the event loop.
const BATCH: usize = 1000;
const BUDGET: Duration = Duration::from_millis(1);
/// How often a replica (or a loading server) looks again.
const IDLE_RECHECK_MS: u64 = 100;
/// How often a primary whose writes are paused looks again: what fell due
/// during the pause is handled within this of its end.
const PAUSED_RECHECK_MS: u64 = 5;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: std::os::raw::c_int, ts: *mut Timespec) -> std::os::raw::c_int;
}

/// CPU time of the calling thread, in µs.
fn thread_cpu_us() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: std::os::raw::c_int = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0) / 1000)
}

/// Records the firing's duration (wall and CPU) when it ends, whichever
/// way it returns.
struct Measure(Instant, u64);

impl Measure {
    fn start() -> Measure {
        Measure(Instant::now(), thread_cpu_us())
    }
}

impl Drop for Measure {
    fn drop(&mut self) {
        let us = u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX);
        schedule::MAX_FIRING_US.fetch_max(us, Ordering::Relaxed);
        let cpu = thread_cpu_us().saturating_sub(self.1);
        schedule::MAX_FIRING_CPU_US.fetch_max(cpu, Ordering::Relaxed);
        schedule::FIRINGS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server calls this when the armed timer fires.
pub(crate) unsafe extern "C" fn on_timer(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    guard("the node timer", (), || fire(&Context::new(ctx)));
}

fn fire(ctx: &Context) {
    schedule::fired();
    // What the timer decides follows the node's own feed settings.
    let _feed = feed::scope(None);
    let flags = ctx.get_flags();
    // SAFETY: a function pointer the server filled in at load.
    let paused = unsafe { raw::RedisModule_AvoidReplicaTraffic.is_some_and(|f| f() != 0) };
    if !flags.contains(ContextFlags::MASTER) || flags.contains(ContextFlags::LOADING) || paused {
        // Replicas apply the primary's FF.DUE; a paused server (CLIENT
        // PAUSE WRITE, a failover) must not write or replicate. Look again
        // later, when it may be a primary free to write.
        let recheck = if paused {
            PAUSED_RECHECK_MS
        } else {
            IDLE_RECHECK_MS
        };
        let later = now_ms().saturating_add(recheck);
        if let Some((d, _, _)) = schedule::first() {
            arm(ctx, d.max(later));
        }
        if effects::wanted_pending() || blocking::has_undelivered() {
            arm(ctx, later);
        }
        if let Some(d) = with_registry(|r| r.next_due()).filter(|_| paused) {
            arm(ctx, d.max(later));
        }
        return;
    }
    let measure = Measure::start();
    let started = measure.0;
    let now = now_ms();
    let mut budget = BATCH;
    blocking::give_back(ctx, now);
    blocking::flush(ctx);
    if revocations::run_due(ctx, now, started + BUDGET) {
        soon(ctx);
    }
    schedule::note_workers_due(ctx);
    loop {
        let Some((at, db, partition)) = schedule::first() else {
            return;
        };
        if at > now {
            arm(ctx, at);
            return;
        }
        if budget == 0 || started.elapsed() >= BUDGET {
            // More is due: continue a millisecond later. Not at once: the
            // server runs every module timer that is due in one go, so a
            // zero delay would chain firings and starve clients.
            soon(ctx);
            return;
        }
        select_db(ctx, db);
        let limits = config::limits();
        let mut batch = DueBatch {
            partition,
            at: now,
            count: budget,
            retention_ms: limits.retention_ms,
            max_reclaims: limits.max_reclaims,
        };
        let ran = due::run(ctx, db, &batch, Some(started + BUDGET));
        budget = budget.saturating_sub(ran.n);
        if ran.changed() {
            batch.count = ran.n;
            due::replicate(ctx, &batch);
        }
        // Work the batch made claimable goes to blocked claimers now,
        // after the batch itself is replicated.
        blocking::flush(ctx);
    }
}
