//! When the node timer fires next: each partition's earliest due time (by
//! db, in the core's `DueTable`, which has the earliest at hand), and the
//! one armed server timer. Commands and loads record due times here; the
//! firing itself (`timer`) is registered at load, so this knows it only as
//! a callback.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use flowfabric_core::partition::{DueTable, Env, PartitionIndex};
use redis_module::{raw, Context};

use crate::shell::call::select_db;
use crate::shell::node::{is_importing, now_ms, with_registry, SpinLock};
use crate::shell::{config, keys};

struct State {
    /// Earliest due time per (db, partition), the earliest at hand.
    due: DueTable,
    /// The due time the armed timer fires at, and its id.
    armed: Option<(u64, raw::RedisModuleTimerID)>,
}

static STATE: SpinLock<Option<State>> = SpinLock::new(None);

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| {
        f(s.get_or_insert_with(|| State {
            due: DueTable::new(config::partitions()),
            armed: None,
        }))
    })
}

/// A db's index in the table (dbs are never negative).
fn db_slot(db: c_int) -> usize {
    usize::try_from(db).unwrap_or(0)
}

/// The firing the armed timer calls (set once at load).
type Firing = unsafe extern "C" fn(*mut raw::RedisModuleCtx, *mut c_void);
static FIRING: OnceLock<Firing> = OnceLock::new();

pub fn init(firing: Firing) {
    // Loaded once per process: a second set cannot happen and is ignored.
    let _ = FIRING.set(firing);
}

/// The longest a timer firing has held the event loop (µs), the same in
/// the server thread's CPU time (a firing's own work, without what the
/// machine gave other threads meanwhile), and how many firings ran: shown
/// by FF.VERSION so the bound is observable.
pub static MAX_FIRING_US: AtomicU64 = AtomicU64::new(0);
pub static MAX_FIRING_CPU_US: AtomicU64 = AtomicU64::new(0);
pub static FIRINGS: AtomicU64 = AtomicU64::new(0);

/// Records a partition's earliest due time and arms the timer for it.
pub fn note_due(ctx: &Context, db: c_int, idx: &PartitionIndex) {
    if let (true, Some(d)) = record_due(db, idx) {
        arm(ctx, d);
    }
}

/// Records a partition's earliest due time; says whether it changed.
pub fn record_due(db: c_int, idx: &PartitionIndex) -> (bool, Option<u64>) {
    if is_importing(idx.partition) {
        // The source's timer runs it until the import completes.
        return (false, None);
    }
    let due = idx.next_due(config::retention_ms());
    let changed = with(|s| s.due.set(db_slot(db), idx.partition, due));
    (changed, due)
}

/// Forgets a partition's due time (its key is gone).
pub fn forget(db: c_int, partition: u16) {
    with(|s| s.due.set(db_slot(db), partition, None));
}

/// The earliest (due time, db, partition) recorded.
pub fn first() -> Option<(u64, c_int, u16)> {
    let (due, db, p) = with(|s| s.due.first())?;
    Some((due, c_int::try_from(db).ok()?, p))
}

/// The armed timer has fired: nothing is armed now.
pub fn fired() {
    with(|s| s.armed = None);
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

/// Whether a firing was asked for since the last look (cron), or the
/// retention changed.
pub fn take_request() -> bool {
    NEED_REARM.swap(false, Ordering::Relaxed) || config::RETENTION_CHANGED.load(Ordering::Relaxed)
}

/// Arms the timer to fire about now: hand-offs left over from a command,
/// grants to give back. A millisecond out, so a firing that re-arms this
/// way never chains with itself inside one event-loop turn.
pub fn soon(ctx: &Context) {
    arm(ctx, now_ms().saturating_add(1));
}

/// Arms the timer for the earliest due time known and the next worker
/// lapse (after a load, whose callbacks record due times but cannot arm a
/// timer, or a role change).
pub fn rearm(ctx: &Context) {
    if config::RETENTION_CHANGED.swap(false, Ordering::Relaxed) {
        record_all(ctx);
    }
    if let Some((d, _, _)) = first() {
        arm(ctx, d);
    }
    note_workers_due(ctx);
}

/// Records every partition's due time again (after a retention change:
/// O(partitions) per db holding data, once per change).
fn record_all(ctx: &Context) {
    for db in 0..config::databases() {
        // SAFETY: a function pointer the server filled in at load.
        let holds_data = || unsafe { raw::RedisModule_DbSize.map_or(0, |f| f(ctx.ctx)) } > 0;
        if select_db(ctx, db) && holds_data() {
            keys::each_partition(ctx, |p| {
                record_due(db, &p.index);
            });
        }
    }
    select_db(ctx, 0);
}

/// Arms the timer for the earliest lapse of a worker's heartbeat.
pub fn note_workers_due(ctx: &Context) {
    if let Some(d) = with_registry(|r| r.next_due()) {
        arm(ctx, d);
    }
}

/// Arms the timer to fire at `due` unless it already fires sooner.
pub fn arm(ctx: &Context, due: u64) {
    // SAFETY: function pointers the server filled in at load.
    let (Some(create), Some(stop), Some(&firing)) = (
        unsafe { raw::RedisModule_CreateTimer },
        unsafe { raw::RedisModule_StopTimer },
        FIRING.get(),
    ) else {
        return;
    };
    with(|s| {
        if s.armed.is_some_and(|(at, _)| at <= due) {
            return;
        }
        if let Some((_, id)) = s.armed.take() {
            let mut data: *mut c_void = std::ptr::null_mut();
            // SAFETY: a timer this module created; its data is null.
            unsafe { stop(ctx.ctx, id, &mut data) };
        }
        let delay = due.saturating_sub(now_ms());
        let delay = i64::try_from(delay).unwrap_or(i64::MAX);
        // SAFETY: `firing` is an `extern "C"` timer callback of this module.
        let id = unsafe { create(ctx.ctx, delay, Some(firing), std::ptr::null_mut()) };
        s.armed = Some((due, id));
    });
}

/// Settings for a transition made now by a command.
pub fn env(now: u64) -> Env {
    let c = config::limits();
    Env {
        now,
        retention_ms: c.retention_ms,
        max_reclaims: c.max_reclaims,
    }
}
