//! Whether replicating a write can reach anyone.
//!
//! `RM_Replicate` costs about as much as a whole list push even when the
//! server will drop what it builds: a standalone primary with AOF off and no
//! replication backlog propagates nothing. Such a node skips it. The rule is
//! conservative: in cluster mode, once AOF has been on, or once a
//! replication backlog has been seen (it appears when a replica first
//! syncs, before the fork whose snapshot carries every earlier write),
//! every write is replicated until restart. The backlog is checked when a fork child is born, when the
//! replication role changes, after loading, and at start.

use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::{raw, Context};

use crate::shell::globals::cluster_mode;

static BACKLOG_SEEN: AtomicBool = AtomicBool::new(false);
/// AOF seen on since start. Kept up to date from server events (a config
/// change, a fork, a load) rather than asked per write, which would cost
/// every command a flags lookup. AOF can only be switched on by CONFIG SET,
/// whose change event fires before any later command.
static AOF_SEEN: AtomicBool = AtomicBool::new(false);

/// True when this command's write must be replicated. Call once per write.
///
/// Replicating is also what counts a write as a change (`server.dirty`,
/// which drives RDB save points), so a write that is not replicated is
/// counted by `RM_ReplicateVerbatim`, which costs nothing when the server
/// propagates nothing. In the one moment it might propagate (a replica's
/// first sync has made a backlog but not yet forked), what it adds precedes
/// the fork's offset: the snapshot already holds the write and no replica
/// is sent that part of the stream.
pub fn needed(ctx: &Context) -> bool {
    if must_replicate() {
        return true;
    }
    if let Some(verbatim) = unsafe { raw::RedisModule_ReplicateVerbatim } {
        unsafe { verbatim(ctx.ctx) };
    }
    false
}

/// The same for the timer, which has no client command to count with: a
/// bare PING is replicated instead (harmless wherever it lands).
pub fn needed_outside_command(ctx: &Context) -> bool {
    if must_replicate() {
        return true;
    }
    if let Some(replicate) = unsafe { raw::RedisModule_Replicate } {
        unsafe { replicate(ctx.ctx, c"PING".as_ptr(), c"".as_ptr()) };
    }
    false
}

fn must_replicate() -> bool {
    BACKLOG_SEEN.load(Ordering::Relaxed) || AOF_SEEN.load(Ordering::Relaxed) || cluster_mode()
}

/// Latches AOF_SEEN on when the server says AOF is on.
fn check_aof(ctx: *mut raw::RedisModuleCtx) {
    let flags =
        unsafe { raw::RedisModule_GetContextFlags.map_or(u32::MAX as i32, |f| f(ctx)) } as u32;
    if flags & raw::REDISMODULE_CTX_FLAGS_AOF != 0 {
        AOF_SEEN.store(true, Ordering::Relaxed);
    }
}

/// Reads INFO replication; any sign of a backlog or replica latches
/// replication on.
fn check(ctx: *mut raw::RedisModuleCtx) {
    if BACKLOG_SEEN.load(Ordering::Relaxed) {
        return;
    }
    let seen = unsafe {
        let (Some(get), Some(field), Some(free)) = (
            raw::RedisModule_GetServerInfo,
            raw::RedisModule_ServerInfoGetFieldUnsigned,
            raw::RedisModule_FreeServerInfo,
        ) else {
            // Without the API we cannot prove silence: always replicate.
            BACKLOG_SEEN.store(true, Ordering::Relaxed);
            return;
        };
        let info = get(ctx, c"replication".as_ptr());
        if info.is_null() {
            true
        } else {
            let mut err = 0;
            let backlog = field(info, c"repl_backlog_active".as_ptr(), &mut err);
            let backlog_err = err;
            let replicas = field(info, c"connected_slaves".as_ptr(), &mut err);
            free(ctx, info);
            backlog_err != 0 || err != 0 || backlog != 0 || replicas != 0
        }
    };
    if seen {
        BACKLOG_SEEN.store(true, Ordering::Relaxed);
    }
}

unsafe extern "C" fn on_event(
    ctx: *mut raw::RedisModuleCtx,
    eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut std::os::raw::c_void,
) {
    check_aof(ctx);
    check(ctx);
    // One callback per event per module: the timer's needs ride along.
    // After a load (or a role change) arm for what the loaded data has due.
    if matches!(
        eid.id,
        raw::REDISMODULE_EVENT_LOADING | raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED
    ) {
        crate::shell::timer::rearm(&Context::new(ctx));
    }
}

/// Subscribes to the events after which a backlog may exist, and checks now.
pub fn init(ctx: &Context) {
    if let Some(sub) = unsafe { raw::RedisModule_SubscribeToServerEvent } {
        for id in [
            raw::REDISMODULE_EVENT_FORK_CHILD,
            raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
            raw::REDISMODULE_EVENT_LOADING,
            raw::REDISMODULE_EVENT_REPLICA_CHANGE,
            raw::REDISMODULE_EVENT_CONFIG,
        ] {
            let ev = raw::RedisModuleEvent { id, dataver: 1 };
            if unsafe { sub(ctx.ctx, ev, Some(on_event)) } != raw::REDISMODULE_OK as i32 {
                BACKLOG_SEEN.store(true, Ordering::Relaxed);
            }
        }
    } else {
        BACKLOG_SEEN.store(true, Ordering::Relaxed);
    }
    check_aof(ctx.ctx);
    check(ctx.ctx);
}
