//! Server events the module follows. After a load (RDB, AOF, a full sync)
//! or a role change the node timer is armed for what the data has due and
//! for hand-offs noted meanwhile (a load callback cannot arm a timer), and
//! a new primary's timer takes over; the cron tick arms it for data that
//! arrived outside a command (a slot's keys restored during migration).
//!
//! Every write the module makes is replicated with its values pinned,
//! whatever the server's configuration: the server drops what nobody needs
//! (no AOF, no replicas).

use std::os::raw::c_void;

use redis_module::{raw, Context};

use crate::shell::guard::guard;
use crate::shell::{effects, schedule};

/// Arms the timer for everything known to be due.
fn rearm(ctx: &Context) {
    schedule::rearm(ctx);
    if effects::wanted_pending() {
        schedule::soon(ctx);
    }
}

unsafe extern "C" fn on_load_or_role(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    guard("a load or role change", (), || rearm(&Context::new(ctx)));
}

/// Runs every server cron tick: one atomic load unless a load asked for
/// the timer.
unsafe extern "C" fn on_cron(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    if schedule::take_request() {
        guard("the cron tick", (), || rearm(&Context::new(ctx)));
    }
}

/// Subscribes to loading, role changes and the cron tick.
pub fn init(ctx: &Context) {
    // SAFETY: a function pointer the server filled in at load.
    let Some(sub) = (unsafe { raw::RedisModule_SubscribeToServerEvent }) else {
        return;
    };
    let events: [(u64, raw::RedisModuleEventCallback); 3] = [
        (
            raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
            Some(on_load_or_role),
        ),
        (raw::REDISMODULE_EVENT_LOADING, Some(on_load_or_role)),
        (raw::REDISMODULE_EVENT_CRON_LOOP, Some(on_cron)),
    ];
    for (id, callback) in events {
        let ev = raw::RedisModuleEvent { id, dataver: 1 };
        // SAFETY: `ctx` is the load context; the callbacks are this
        // module's `extern "C"` functions.
        unsafe { sub(ctx.ctx, ev, callback) };
    }
}
