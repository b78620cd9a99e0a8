//! Server events the module follows: after a load (RDB, AOF, a full sync)
//! or a role change, the node timer is armed for what the data has due (a
//! load callback cannot arm it), and a new primary's timer takes over.
//!
//! Every write the module makes is replicated with its values pinned,
//! whatever the server's configuration: the server drops what nobody needs
//! (no AOF, no replicas). An earlier rule skipped replication on a node
//! with neither until it had *seen* a backlog, and sent non-deterministic
//! commands verbatim meanwhile; it rested on orderings inside the server
//! that nothing documents, so it is gone.

use redis_module::{raw, Context};

unsafe extern "C" fn on_event(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut std::os::raw::c_void,
) {
    crate::shell::timer::rearm(&Context::new(ctx));
}

/// Subscribes to loading and role changes.
pub fn init(ctx: &Context) {
    let Some(sub) = (unsafe { raw::RedisModule_SubscribeToServerEvent }) else {
        return;
    };
    for id in [
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        raw::REDISMODULE_EVENT_LOADING,
    ] {
        let ev = raw::RedisModuleEvent { id, dataver: 1 };
        unsafe { sub(ctx.ctx, ev, Some(on_event)) };
    }
}
