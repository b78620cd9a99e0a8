//! The `INFO flowfabric` section: what an operator's scraper (redis_exporter
//! and the like) exports as it is, every field a number: executions per
//! public state and lanes per partition over the partitions this node
//! holds (all dbs),
//! live leases, blocked claimers, workers live and dead, the node timer
//! (next due time, how far behind it is, its longest firing), the event
//! feed's length, and the events raised on this node since it started.
//!
//! The server's INFO callback gets no context to open keys with, so the
//! module keeps a detached one (made at load) and reads each partition
//! through it on the server thread, O(partitions × dbs holding data); a
//! crash report reads nothing but counters (a lock may be held).

use std::os::raw::{c_int, c_longlong};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use flowfabric_core::base::state::PublicState;
use flowfabric_core::streams::Event;
use redis_module::{raw, Context, InfoContext};

use crate::shell::call::select_db;
use crate::shell::guard::guard;
use crate::shell::node::{is_importing, now_ms, with_board, with_registry, EVENTS_RAISED};
use crate::shell::{config, keys, node, schedule};

/// The context the INFO callback reads the keyspace with.
static READER: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

/// Makes the reading context and registers the INFO callback (in place of
/// the module crate's empty one, which its `redis_module!` registers
/// before `init` runs).
pub fn init(ctx: &Context) {
    // SAFETY: function pointers the server filled in at load; `ctx` is the
    // load context. The detached context lives as long as the module.
    if let Some(f) = unsafe { raw::RedisModule_GetDetachedThreadSafeContext } {
        READER.store(unsafe { f(ctx.ctx) }, Ordering::Relaxed);
    }
    if let Some(register) = unsafe { raw::RedisModule_RegisterInfoFunc } {
        unsafe { register(ctx.ctx, Some(on_info)) };
    }
}

unsafe extern "C" fn on_info(ctx: *mut raw::RedisModuleInfoCtx, for_crash_report: c_int) {
    let info_ctx = InfoContext::new(ctx);
    guard("INFO", (), || info(&info_ctx, for_crash_report != 0));
}

/// What the walk over the partitions adds up.
#[derive(Default)]
struct Totals {
    executions: [u64; PublicState::COUNT],
    /// (partition, lane) pairs holding executions: counting distinct
    /// lanes would cost O(lanes × partitions) a scrape (FF.LANES does).
    partition_lanes: u64,
    leases: u64,
    partitions: u64,
    feed_entries: u64,
}

fn walk(ctx: &Context) -> Totals {
    let mut t = Totals::default();
    for db in 0..config::databases() {
        if !select_db(ctx, db) {
            continue;
        }
        // SAFETY: a function pointer the server filled in at load.
        if unsafe { raw::RedisModule_DbSize.map_or(0, |f| f(ctx.ctx)) } == 0 {
            continue;
        }
        keys::each_partition(ctx, |p| {
            t.partitions += 1;
            for (a, b) in t.executions.iter_mut().zip(p.index.counts) {
                *a = a.saturating_add(b);
            }
            t.partition_lanes = t.partition_lanes.saturating_add(p.index.lanes.len() as u64);
            t.leases = t.leases.saturating_add(p.index.lease_expiry.len() as u64);
        });
        for p in (0..config::partitions()).filter(|&p| !is_importing(p)) {
            t.feed_entries = t.feed_entries.saturating_add(feed_length(ctx, p));
        }
    }
    select_db(ctx, 0);
    t
}

/// The length of a partition's event stream (0 when it has none).
fn feed_length(ctx: &Context, p: u16) -> u64 {
    let Some(name) = node::events_key_string(p) else {
        return 0;
    };
    let key = keys::open_arg_quiet(ctx, name);
    if key.key_type() != raw::REDISMODULE_KEYTYPE_STREAM as c_int {
        return 0;
    }
    // SAFETY: an open stream key.
    unsafe { raw::RedisModule_ValueLength.map_or(0, |f| f(key.raw())) as u64 }
}

/// Adds one numeric field (the server prefixes it with `flowfabric_`).
fn field(ctx: &InfoContext, name: &str, v: u64) {
    let Ok(name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: a function pointer the server filled in at load; `ctx` is
    // the callback's.
    if let Some(f) = unsafe { raw::RedisModule_InfoAddFieldLongLong } {
        unsafe {
            f(
                ctx.ctx,
                name.as_ptr(),
                c_longlong::try_from(v).unwrap_or(c_longlong::MAX),
            )
        };
    }
}

/// The module's INFO section.
fn info(ctx: &InfoContext, for_crash_report: bool) {
    // SAFETY: as above; a null name is the module's own section.
    if let Some(f) = unsafe { raw::RedisModule_InfoAddSection } {
        unsafe { f(ctx.ctx, std::ptr::null_mut()) };
    }
    field(ctx, "partitions", u64::from(config::partitions()));
    let reader = READER.load(Ordering::Relaxed);
    if !for_crash_report && !reader.is_null() {
        let reader = Context::new(reader);
        let loading = reader
            .get_flags()
            .contains(redis_module::ContextFlags::LOADING);
        field(ctx, "loading", u64::from(loading));
        if !loading {
            node_fields(ctx, &reader);
        }
    }
    timer_fields(ctx);
    for (name, n) in Event::NAMES.iter().zip(EVENTS_RAISED.iter()) {
        field(
            ctx,
            &format!("events_{name}_total"),
            n.load(Ordering::Relaxed),
        );
    }
}

/// Counts that read the keyspace and the node's tables.
fn node_fields(ctx: &InfoContext, reader: &Context) {
    let t = walk(reader);
    field(ctx, "partitions_holding_data", t.partitions);
    let total = t.executions.iter().fold(0u64, |a, b| a.saturating_add(*b));
    field(ctx, "executions", total);
    for (i, n) in t.executions.iter().enumerate() {
        field(ctx, &format!("executions_{}", PublicState::name_of(i)), *n);
    }
    field(ctx, "partition_lanes", t.partition_lanes);
    field(ctx, "leases_live", t.leases);
    field(ctx, "feed_entries", t.feed_entries);
    field(ctx, "blocked_claimers", with_board(|b| b.waiting()) as u64);
    let (live, dead) = with_registry(|r| {
        let dead = r.workers().values().filter(|w| w.dead_at.is_some()).count();
        (r.workers().len().saturating_sub(dead), dead)
    });
    field(ctx, "workers_live", live as u64);
    field(ctx, "workers_dead", dead as u64);
    let next = schedule::first().map(|(due, _, _)| due);
    field(ctx, "timer_next_due_ms", next.unwrap_or(0));
    let behind = next.map_or(0, |d| now_ms().saturating_sub(d));
    field(ctx, "timer_behind_ms", behind);
}

/// The timer's own counters (atomics: safe in a crash report too).
fn timer_fields(ctx: &InfoContext) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    field(ctx, "timer_firings", load(&schedule::FIRINGS));
    field(ctx, "timer_max_firing_us", load(&schedule::MAX_FIRING_US));
    field(
        ctx,
        "timer_max_firing_cpu_us",
        load(&schedule::MAX_FIRING_CPU_US),
    );
}
