//! Blocking claims: a claimer with no work waits on the partition index
//! keys and is served when a submit signals one, like BLPOP, without polling.

use std::os::raw::c_int;

use redis_module::{raw, Context};

use crate::core::requests;
use crate::shell::globals::ready_keys;
use crate::shell::handlers::try_claim;
use crate::shell::{config, registry};

/// Blocking is not possible inside MULTI, scripts, or where the server
/// denies it; those claims reply nil at once.
pub fn allowed(ctx: &Context) -> bool {
    let f = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |g| g(ctx.ctx)) };
    let deny = raw::REDISMODULE_CTX_FLAGS_MULTI
        | raw::REDISMODULE_CTX_FLAGS_LUA
        | raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING;
    (f as u32) & deny == 0
}

pub fn block_claim(ctx: &Context, timeout_ms: u64) {
    let timeout = i64::try_from(timeout_ms).unwrap_or(i64::MAX);
    let keys = ready_keys();
    if let Some(block) = unsafe { raw::RedisModule_BlockClientOnKeys } {
        // The server only reads the array (it takes its own references).
        unsafe {
            block(
                ctx.ctx,
                Some(on_ready),
                Some(on_timeout),
                None,
                timeout,
                keys.as_ptr().cast_mut(),
                c_int::try_from(keys.len()).unwrap_or(0),
                std::ptr::null_mut(),
            );
        }
    }
}

/// Called when a partition key is signalled: re-parses the original
/// command and claims; returning an error keeps the client blocked.
unsafe extern "C" fn on_ready(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        registry::with_args(argv, argc, |args| {
            let rest = args.get(1..).unwrap_or(&[]);
            match requests::parse_claim(rest, &config::limits()) {
                Ok(mut c) => {
                    c.lanes.retain(|l| !crate::shell::lanes::is_paused(l));
                    matches!(try_claim(&context, &c), Ok(true))
                }
                Err(_) => false,
            }
        })
    }));
    if matches!(served, Ok(true)) {
        raw::REDISMODULE_OK as c_int
    } else {
        raw::REDISMODULE_ERR as c_int
    }
}

unsafe extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    raw::reply_with_null(ctx);
    raw::REDISMODULE_OK as c_int
}
