//! Atomic slot migration (Valkey 9 `CLUSTER MIGRATESLOTS`). The source
//! sends the migrating slots' keys as their AOF rewrite (FF.LOADREC
//! records) and then the keyed commands it propagates for those slots
//! (FF.SUBMIT, FF.ACQUIRE, FF.DUE, ...), all applied on the target by an
//! import client the module sees as replicated.
//!
//! While a slot imports, its keys are already there on the target and a
//! module can open them, though the node does not own them yet: the node's
//! claims, timer, wake-ups and lease index must leave them alone (the
//! source still runs them, and the import may be aborted and the keys
//! dropped). So the partitions of importing slots are kept out of the
//! claim board, the timer's due table and the lease index; when the import
//! completes they are entered from the partition values, as after a load.
//! On the source nothing special is needed: its writes are forwarded, its
//! timer pauses with the final write pause (see `timer`), and the migrated
//! keys are deleted by the server (stale hints are dropped when found).

use std::os::raw::{c_char, c_int, c_void};

use flowfabric_core::base::ids::partition_slot;
use redis_module::{raw, Context};

use crate::shell::call::select_db;
use crate::shell::guard::guard;
use crate::shell::node::set_importing;
use crate::shell::{config, effects, keys, schedule};

/// The server event, its sub-events and data (from Valkey 9's
/// valkeymodule.h, which the crate's bindings predate).
const EVENT_ATOMIC_SLOT_MIGRATION: u64 = 19;
const IMPORT_STARTED: u64 = 0;
const IMPORT_ABORTED: u64 = 2;
const IMPORT_COMPLETED: u64 = 4;
/// The module option that tells the server the module supports it.
pub const OPTION_HANDLE_ATOMIC_SLOT_MIGRATION: c_int = 1 << 5;

#[repr(C)]
struct SlotRange {
    start: c_int,
    end: c_int,
}

#[repr(C)]
struct MigrationInfo {
    version: u64,
    job_name: [c_char; 41],
    slot_ranges: *mut SlotRange,
    num_slot_ranges: u32,
}

/// The slot ranges of an event.
///
/// # Safety
/// `data` must be the event's `MigrationInfo` (or null).
unsafe fn ranges(data: *mut c_void) -> Vec<(u16, u16)> {
    // SAFETY: the function's contract: `data` is the event's info or null.
    let Some(info) = (unsafe { data.cast::<MigrationInfo>().as_ref() }) else {
        return Vec::new();
    };
    if info.slot_ranges.is_null() {
        return Vec::new();
    }
    let n = usize::try_from(info.num_slot_ranges).unwrap_or(0);
    // SAFETY: the server passes `num_slot_ranges` ranges, valid for the
    // callback's duration.
    let list = unsafe { std::slice::from_raw_parts(info.slot_ranges, n) };
    list.iter()
        .filter_map(|r| Some((u16::try_from(r.start).ok()?, u16::try_from(r.end).ok()?)))
        .collect()
}

/// The partitions whose slot falls in `ranges`.
fn partitions_in(ranges: &[(u16, u16)]) -> Vec<u16> {
    (0..config::partitions())
        .filter(|&p| {
            let s = partition_slot(p);
            ranges.iter().any(|&(a, b)| a <= s && s <= b)
        })
        .collect()
}

/// Enters imported partitions in the claim board, the timer and the lease
/// index, in every db, as a load does.
fn enter(ctx: &Context, parts: &[u16]) {
    for db in 0..config::databases() {
        if !select_db(ctx, db) {
            break;
        }
        for &p in parts {
            let mut key = keys::open_partition(ctx, p);
            let Ok(Some(part)) = key.partition() else {
                continue;
            };
            effects::register_hints(db, &part.index);
            let leased = part
                .index
                .lease_expiry
                .iter()
                .filter_map(|(_, u)| part.get(u));
            effects::leases_loaded(db, leased);
            schedule::record_loaded(db, &part.index);
        }
    }
    select_db(ctx, 0);
}

unsafe extern "C" fn on_event(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    // SAFETY: the server passes this event's data, valid for the call.
    let ranges = unsafe { ranges(data) };
    guard("a slot migration event", (), || {
        let parts = partitions_in(&ranges);
        match subevent {
            IMPORT_STARTED => set_importing(&parts, true),
            IMPORT_ABORTED => set_importing(&parts, false),
            IMPORT_COMPLETED => {
                set_importing(&parts, false);
                enter(&Context::new(ctx), &parts);
            }
            _ => {}
        }
    });
}

/// Subscribes to the migration event where the server has it.
pub fn init(ctx: &Context) {
    // SAFETY: a function pointer the server filled in at load.
    if let Some(sub) = unsafe { raw::RedisModule_SubscribeToServerEvent } {
        let ev = raw::RedisModuleEvent {
            id: EVENT_ATOMIC_SLOT_MIGRATION,
            dataver: 1,
        };
        // An older server does not know the event: nothing to follow then.
        // SAFETY: `ctx` is the load context; `on_event` is this module's.
        unsafe { sub(ctx.ctx, ev, Some(on_event)) };
    }
}
