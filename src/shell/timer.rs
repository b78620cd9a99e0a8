//! The node timer that replaces the reference's scanners. It sleeps until
//! the earliest due time among the partitions this node holds, handles a
//! bounded batch of due entries (delays, lease expiries, deadlines,
//! retention), replicates each partition's batch as `FF.DUE partition at
//! count` so replicas and the AOF replay exactly the same steps, and
//! re-arms. It acts only on a primary that is not loading.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_module::{raw, Context, ContextFlags};

use crate::core::engine::{self, DueEffect, Env};
use crate::core::index::PartitionIndex;
use crate::core::requests::DueBatch;
use crate::shell::globals::{now_ms, SpinLock};
use crate::shell::{blocking, handlers, keys, workers};

/// Due entries handled per firing, and the time a firing may take, so a
/// million due items never stall the event loop.
const BATCH: usize = 1000;
const BUDGET: Duration = Duration::from_millis(1);
/// How often a replica (or a loading server) looks again.
const IDLE_RECHECK_MS: u64 = 100;
/// How often a primary whose writes are paused looks again: what fell due
/// during the pause is handled within this of its end.
const PAUSED_RECHECK_MS: u64 = 5;

#[derive(Default)]
struct State {
    /// Earliest due time per partition, per db (`NONE`: nothing due).
    /// Flat tables: commands update them in O(1); a firing scans them.
    due: Vec<Vec<u64>>,
    /// The due time the armed timer fires at, and its id.
    armed: Option<(u64, raw::RedisModuleTimerID)>,
}

const NONE: u64 = u64::MAX;

impl State {
    /// Records `due` for a partition; whether it changed.
    fn set(&mut self, db: c_int, partition: u16, due: Option<u64>) -> bool {
        let due = due.unwrap_or(NONE);
        let Ok(d) = usize::try_from(db) else {
            return false;
        };
        if self.due.len() <= d {
            if due == NONE {
                return false;
            }
            self.due.resize_with(d + 1, Vec::new);
        }
        let Some(table) = self.due.get_mut(d) else {
            return false;
        };
        let i = usize::from(partition);
        if table.len() <= i {
            if due == NONE {
                return false;
            }
            table.resize(i + 1, NONE);
        }
        match table.get_mut(i) {
            Some(slot) if *slot != due => {
                *slot = due;
                true
            }
            _ => false,
        }
    }

    /// The earliest due time and where, ties to the lowest (db, partition).
    fn first(&self) -> Option<(u64, c_int, u16)> {
        let mut best: Option<(u64, c_int, u16)> = None;
        for (db, table) in self.due.iter().enumerate() {
            let db = c_int::try_from(db).unwrap_or(c_int::MAX);
            for (p, &d) in table.iter().enumerate() {
                let p = u16::try_from(p).unwrap_or(u16::MAX);
                if d != NONE && best.is_none_or(|b| (d, db, p) < b) {
                    best = Some((d, db, p));
                }
            }
        }
        best
    }
}

static STATE: SpinLock<Option<State>> = SpinLock::new(None);

/// The longest a timer firing has held the event loop (µs), and how many
/// firings did work: shown by FF.VERSION so the bound is observable.
pub static MAX_FIRING_US: AtomicU64 = AtomicU64::new(0);
/// The same in CPU time of the server's thread: a firing's own work,
/// without the time the machine gave other threads meanwhile.
pub static MAX_FIRING_CPU_US: AtomicU64 = AtomicU64::new(0);
pub static FIRINGS: AtomicU64 = AtomicU64::new(0);

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

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(s.get_or_insert_with(State::default)))
}

/// Records a partition's earliest due time and arms the timer for it.
pub fn note_due(ctx: &Context, db: c_int, idx: &PartitionIndex) {
    if let (true, Some(d)) = record_due(db, idx) {
        arm(ctx, d);
    }
}

/// Arms the timer for the earliest due time known (after a load, whose
/// callbacks record due times but cannot arm a timer).
pub fn rearm(ctx: &Context) {
    let first = with(|s| s.first().map(|(d, _, _)| d));
    if let Some(d) = first {
        arm(ctx, d);
    }
    note_workers_due(ctx);
    if blocking::pending() {
        soon(ctx);
    }
}

/// Set when data arrives outside a command (RDB load, RESTORE during slot
/// migration): its due times are recorded but no timer could be armed.
static NEED_REARM: AtomicBool = AtomicBool::new(false);

/// Records the due time of an index that was just loaded or restored and
/// asks for the timer to be armed at the next server cron tick.
pub fn record_loaded(db: c_int, idx: &PartitionIndex) {
    record_due(db, idx);
    request_soon();
}

/// Asks for a firing at the next server cron tick, from where no timer can
/// be armed (a load callback).
pub fn request_soon() {
    NEED_REARM.store(true, Ordering::Relaxed);
}

/// Arms the timer to fire about now: hand-offs left over from a command,
/// grants to give back. A millisecond out, so a firing that re-arms this
/// way never chains with itself inside one event-loop turn.
pub fn soon(ctx: &Context) {
    arm(ctx, now_ms().saturating_add(1));
}

unsafe extern "C" fn on_cron(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    if NEED_REARM.swap(false, Ordering::Relaxed) {
        rearm(&Context::new(ctx));
    }
}

/// Subscribes to the server's cron tick, used only to arm the timer for
/// loaded data (one atomic load per tick otherwise).
pub fn init(ctx: &Context) {
    if let Some(sub) = unsafe { raw::RedisModule_SubscribeToServerEvent } {
        let ev = raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_CRON_LOOP,
            dataver: 1,
        };
        unsafe { sub(ctx.ctx, ev, Some(on_cron)) };
    }
}

/// Records a partition's earliest due time; says whether it changed.
pub fn record_due(db: c_int, idx: &PartitionIndex) -> (bool, Option<u64>) {
    if crate::shell::migration::is_importing(idx.partition) {
        // The source's timer runs it until the import completes.
        return (false, None);
    }
    let due = idx.next_due(crate::shell::config::retention_ms());
    let changed = with(|s| s.set(db, idx.partition, due));
    (changed, due)
}

/// Arms the timer for the earliest lapse of a worker's heartbeat.
pub fn note_workers_due(ctx: &Context) {
    if let Some(d) = workers::with(|r| r.next_due()) {
        arm(ctx, d);
    }
}

/// Arms the timer to fire at `due` unless it already fires sooner.
fn arm(ctx: &Context, due: u64) {
    let (Some(create), Some(stop)) = (unsafe { raw::RedisModule_CreateTimer }, unsafe {
        raw::RedisModule_StopTimer
    }) else {
        return;
    };
    with(|s| {
        if s.armed.is_some_and(|(at, _)| at <= due) {
            return;
        }
        if let Some((_, id)) = s.armed.take() {
            let mut data: *mut c_void = std::ptr::null_mut();
            unsafe { stop(ctx.ctx, id, &mut data) };
        }
        let delay = due.saturating_sub(now_ms());
        let delay = i64::try_from(delay).unwrap_or(i64::MAX);
        let id = unsafe { create(ctx.ctx, delay, Some(on_timer), std::ptr::null_mut()) };
        s.armed = Some((due, id));
    });
}

/// Settings for a transition made now by a command.
pub fn env(now: u64) -> Env {
    let c = crate::shell::config::limits();
    Env {
        now,
        retention_ms: c.retention_ms,
        max_reclaims: c.max_reclaims,
    }
}

/// Handles up to `b.count` due entries of one partition at time `b.at`;
/// the same batch on a replica, given the same state, does the same.
///
/// The primary also passes the time its firing must end by; it stops early
/// then and replicates the count it actually handled.
pub fn process_partition(ctx: &Context, db: c_int, b: &DueBatch, until: Option<Instant>) -> usize {
    let key = keys::open_partition(ctx, b.partition);
    let Ok(Some(part)) = keys::partition(&key) else {
        with(|s| s.set(db, b.partition, None));
        return 0;
    };
    let env = Env {
        now: b.at,
        retention_ms: b.retention_ms,
        max_reclaims: b.max_reclaims,
    };
    let mut n = 0;
    while n < b.count {
        // The clock is read before every entry (about 20 ns): an entry
        // costs about a microsecond, but many times that when its pages are
        // copied on write under a background save's or rewrite's fork.
        if until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let Some((kind, _, uuid)) = part.index.pop_due(b.at, b.retention_ms) else {
            break;
        };
        n += 1;
        let Some((idx, e)) = part.record_mut(uuid) else {
            continue;
        };
        match engine::on_due(idx, e, kind, &env) {
            DueEffect::Nothing => {}
            DueEffect::Changed(moved) => handlers::after_move(db, idx, e, moved),
            DueEffect::Remove => {
                part.remove(uuid);
            }
        }
    }
    note_due(ctx, db, &part.index);
    n
}

unsafe extern "C" fn on_timer(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    let ctx = Context::new(ctx);
    with(|s| s.armed = None);
    let flags = ctx.get_flags();
    let paused = unsafe { raw::RedisModule_AvoidReplicaTraffic.is_some_and(|f| f() != 0) };
    if !flags.contains(ContextFlags::MASTER) || flags.contains(ContextFlags::LOADING) || paused {
        // Replicas apply the primary's FF.DUE; a paused server (CLIENT
        // PAUSE WRITE, a failover) must not write or replicate. Look again
        // later, when it may be a primary free to write.
        let first = with(|s| s.first().map(|(d, _, _)| d));
        let recheck = if paused {
            PAUSED_RECHECK_MS
        } else {
            IDLE_RECHECK_MS
        };
        let later = now_ms().saturating_add(recheck);
        if let Some(d) = first {
            arm(&ctx, d.max(later));
        }
        if blocking::pending() || blocking::has_undelivered() {
            arm(&ctx, later);
        }
        if let Some(d) = workers::with(|r| r.next_due()).filter(|_| paused) {
            arm(&ctx, d.max(later));
        }
        return;
    }
    let measure = Measure::start();
    let started = measure.0;
    let now = now_ms();
    let mut budget = BATCH;
    handlers::give_back(&ctx, blocking::take_undelivered(), now);
    blocking::flush(&ctx);
    if workers::run_due(&ctx, now, started + BUDGET) {
        soon(&ctx);
    }
    note_workers_due(&ctx);
    loop {
        let Some((due, db, partition)) = with(|s| s.first()) else {
            return;
        };
        if due > now {
            arm(&ctx, due);
            return;
        }
        if budget == 0 || started.elapsed() >= BUDGET {
            // More is due: continue a millisecond later. Not at once: the
            // server runs every module timer that is due in one go, so a
            // zero delay would chain firings and starve clients.
            arm(&ctx, now_ms().saturating_add(1));
            return;
        }
        if let Some(select) = raw::RedisModule_SelectDb {
            select(ctx.ctx, db);
        }
        let limits = crate::shell::config::limits();
        let mut batch = DueBatch {
            partition,
            at: now,
            count: budget,
            retention_ms: limits.retention_ms,
            max_reclaims: limits.max_reclaims,
        };
        let n = process_partition(&ctx, db, &batch, Some(started + BUDGET));
        budget = budget.saturating_sub(n);
        if n > 0 {
            batch.count = n;
            replicate_due(&ctx, &batch);
        }
        // Work the batch made claimable goes to blocked claimers now,
        // after the batch itself is replicated.
        blocking::flush(&ctx);
    }
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
        MAX_FIRING_US.fetch_max(us, Ordering::Relaxed);
        let cpu = thread_cpu_us().saturating_sub(self.1);
        MAX_FIRING_CPU_US.fetch_max(cpu, Ordering::Relaxed);
        FIRINGS.fetch_add(1, Ordering::Relaxed);
    }
}

fn replicate_due(ctx: &Context, b: &DueBatch) {
    if let Some(f) = unsafe { raw::RedisModule_Replicate } {
        let v = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        let key = crate::core::ids::index_key(b.partition);
        unsafe {
            f(
                ctx.ctx,
                c"FF.DUE".as_ptr(),
                c"bllll".as_ptr(),
                key.as_ptr(),
                key.len(),
                v(b.at),
                v(b.count as u64),
                v(b.retention_ms),
                i64::from(b.max_reclaims),
            )
        };
    }
}
