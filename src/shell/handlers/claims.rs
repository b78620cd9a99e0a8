//! The claims domain's commands: FF.CLAIM picks the best claimable
//! execution for a worker (see `claiming`) or waits for one (`BLOCK`, see
//! `blocking`); FF.ACQUIRE is a decided claim as the primary replicates it.

use flowfabric_core::base::errors::CmdResult;
use flowfabric_core::claims::requests::parse_claim_with;
use flowfabric_core::execution::requests::parse_acquire;
use flowfabric_core::execution::{Execution, Grant};

use crate::shell::access::Access;
use crate::shell::call::{internal_only, Call};
use crate::shell::claiming::{acquire as apply_acquire, reply_grant, try_claim};
use crate::shell::node::{is_paused, now_ms, worker_caps};
use crate::shell::reply::Reply;
use crate::shell::{blocking, config, keys};

pub fn claim(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let mut c = parse_claim_with(call.args, &config::limits(), worker_caps)?;
    let asked = c.lanes.clone();
    c.lanes.retain(|l| !is_paused(l));
    let r = Reply(ctx.ctx);
    let granted = |id: &[u8], e: &Execution, g: &Grant| reply_grant(&r, id, &e.payload, g);
    // Only partitions the caller's ACL key patterns allow: the command
    // names no key, so the server cannot check them itself.
    let mut access = Access::caller(ctx);
    if try_claim(ctx, &c, now_ms(), &mut access, granted)?.is_some() {
        return Ok(());
    }
    match c.block_ms {
        // A paused lane is waited on too: FF.RESUME hands its work out.
        Some(ms) if blocking::allowed(ctx) => {
            blocking::block_claim(ctx, &c, &asked, ms, access.user_name());
        }
        _ => r.null(),
    }
    Ok(())
}

pub fn acquire(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    internal_only(ctx, "FF.ACQUIRE")?;
    let a = parse_acquire(call.args, &config::limits())?;
    let mut key = keys::open_partition(ctx, a.id.partition);
    let (idx, e) = keys::exec_in(&mut key, &a.id)?;
    let text = a.id.text();
    let g = apply_acquire(ctx, idx, e, &a, text.as_bytes())?;
    reply_grant(&Reply(ctx.ctx), text.as_bytes(), &e.payload, &g);
    Ok(())
}
