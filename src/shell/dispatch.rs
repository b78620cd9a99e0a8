//! Where the server calls a command: every handler runs through `command`,
//! under the panic guard, followed by the hand-offs its transitions made
//! possible.

use std::os::raw::c_int;

use flowfabric_core::base::errors::CmdResult;
use redis_module::{raw, Context};

use crate::shell::call::{raw_strings, split_trailing, with_args, Asker, Call};
use crate::shell::guard::guard;
use crate::shell::{blocking, feed};

pub type Handler = fn(&Call) -> CmdResult<()>;

/// Runs a command: its handler, then the hand-offs its transitions made
/// possible (so what they replicate follows the command's own
/// replication). An error becomes the error reply.
///
/// # Safety
/// `argv` must be the server's argument vector of `argc` strings.
pub unsafe fn command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    h: Handler,
) -> c_int {
    let context = Context::new(ctx);
    // SAFETY: the caller passes the server's argument vector.
    let strings = unsafe { raw_strings(argv, argc) };
    let run = |args: &[&[u8]]| {
        let t = split_trailing(
            &context,
            args.get(1..).unwrap_or(&[]),
            strings.get(1..).unwrap_or(&[]),
        );
        let call = Call {
            ctx: &context,
            args: t.args,
            argv: t.argv,
            max_reclaims: t.max_reclaims,
            feed: t.feed,
            asker: Asker(&context),
        };
        let step = || {
            let scope = feed::scope(call.feed);
            let r = h(&call);
            drop(scope);
            // Hand-offs are this node's own decisions.
            blocking::flush(&context);
            r
        };
        match guard("a command", None, || Some(step())) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                context.reply_error_string(&e.reply().replace('\0', ""));
            }
            None => {
                context.reply_error_string(
                    "ERR internal error in flowfabric (a bug); the server log says where",
                );
            }
        }
    };
    // SAFETY: as above.
    unsafe { with_args(argv, argc, run) };
    raw::REDISMODULE_OK as c_int
}
