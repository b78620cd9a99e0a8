//! Commands that move one execution from state to state: the holder's
//! fenced calls and the operator's transitions.

use super::*;

pub fn renew(call: &Call) -> CmdResult<()> {
    let req = requests::parse_renew(call.args, &config::limits(), origin(call.ctx), true)?;
    let expires = transition_cmd(call, c"FF.RENEW", &req.id, req.at, false, |idx, e, env| {
        engine::renew(idx, e, &req.fence, req.lease_ms, env)
    })?;
    Reply(call.ctx.ctx).uint(expires);
    Ok(())
}

pub fn complete(call: &Call) -> CmdResult<()> {
    let req = requests::parse_complete(
        call.args,
        &config::limits(),
        origin(call.ctx),
        |i, bytes| held::hold(call.argv.get(i), bytes),
    )?;
    transition_cmd(
        call,
        c"FF.COMPLETE",
        &req.id,
        req.at,
        false,
        |idx, e, env| engine::complete(idx, e, &req.fence, req.result, env),
    )?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn fail(call: &Call) -> CmdResult<()> {
    let req = requests::parse_fail(call.args, &config::limits(), origin(call.ctx))?;
    let now = req.at.unwrap_or_else(now_ms);
    let (_key, idx, e) = keys::require_exec(call.ctx, &req.id)?;
    // The primary draws the backoff (with its jitter) once; replicas get the
    // resulting time pinned.
    let retry_at = match req.retry_at {
        Some(0) => None,
        Some(at) => Some(at),
        None => e
            .retry_delay(with_minter(|m| m.uuid().0 as u64))
            .map(|d| now.saturating_add(d)),
    };
    let env = env_for(call, now);
    let (r, moved) = engine::fail(idx, e, &req.fence, req.reason, retry_at, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    let extra = [(c"RETRY_AT", retry_at.unwrap_or(0))];
    let pinned_extra: &[(&CStr, u64)] = if req.retry_at.is_some() { &[] } else { &extra };
    let mut p = pins(req.at, now, pinned_extra);
    if r.is_err() {
        p = p.with_max_reclaims(&env);
    }
    finish(call, c"FF.FAIL", idx, e, moved, changed, &p);
    let outcome = r.map_err(|(err, _)| CmdError(err.message()))?;
    let reply = Reply(call.ctx.ctx);
    match outcome {
        Some(at) => {
            reply.array(2);
            reply.bulk(b"retry_scheduled");
            reply.uint(at);
        }
        None => {
            reply.array(1);
            reply.bulk(b"failed");
        }
    }
    Ok(())
}

pub fn cancel(call: &Call) -> CmdResult<()> {
    let req = requests::parse_cancel(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.CANCEL", &req.id, req.at, false, |idx, e, env| {
        engine::cancel(idx, e, req.fence.as_ref(), req.reason, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn delay(call: &Call) -> CmdResult<()> {
    let req = requests::parse_delay(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.DELAY", &req.id, req.at, false, |idx, e, env| {
        engine::delay(idx, e, &req.fence, req.until, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn wait_children(call: &Call) -> CmdResult<()> {
    let req = requests::parse_renew(call.args, &config::limits(), origin(call.ctx), false)?;
    transition_cmd(
        call,
        c"FF.WAITCHILDREN",
        &req.id,
        req.at,
        false,
        |idx, e, env| engine::wait_for_children(idx, e, &req.fence, env),
    )?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn revoke(call: &Call) -> CmdResult<()> {
    let req = requests::parse_revoke(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.REVOKE", &req.id, req.at, true, |idx, e, env| {
        engine::revoke(idx, e, req.lease_id, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn priority(call: &Call) -> CmdResult<()> {
    let req = requests::parse_priority(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(
        call,
        c"FF.PRIORITY",
        &req.id,
        req.at,
        false,
        |idx, e, env| engine::set_priority(idx, e, req.priority, env),
    )?;
    Reply(call.ctx.ctx).uint(u64::from(req.priority));
    Ok(())
}

pub fn progress(call: &Call) -> CmdResult<()> {
    let req = requests::parse_progress(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(
        call,
        c"FF.PROGRESS",
        &req.id,
        req.at,
        false,
        |idx, e, env| engine::report_progress(idx, e, &req.fence, req.pct, req.message, env),
    )?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn set_tags(call: &Call) -> CmdResult<()> {
    let req = requests::parse_set_tags(call.args, &config::limits(), origin(call.ctx))?;
    let n = transition_cmd(
        call,
        c"FF.SETTAGS",
        &req.id,
        req.at,
        false,
        |idx, e, env| engine::set_tags(idx, e, req.tags, env),
    )?;
    Reply(call.ctx.ctx).uint(n as u64);
    Ok(())
}

/// Replay, block and unblock: operator transitions on one execution.
fn operate(call: &Call, name: &CStr, op: engine::Op, with_reason: bool) -> CmdResult<()> {
    let req = requests::parse_simple(call.args, &config::limits(), origin(call.ctx), with_reason)?;
    transition_cmd(call, name, &req.id, req.at, false, |idx, e, env| {
        engine::operate(idx, e, op, req.reason, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// How many times one execution may be replayed (the reference's default).
const MAX_REPLAYS: u32 = 10;

pub fn replay(call: &Call) -> CmdResult<()> {
    operate(
        call,
        c"FF.REPLAY",
        engine::Op::Replay {
            max_replays: MAX_REPLAYS,
        },
        false,
    )
}

pub fn block(call: &Call) -> CmdResult<()> {
    operate(call, c"FF.BLOCK", engine::Op::Block, true)
}

pub fn unblock(call: &Call) -> CmdResult<()> {
    operate(call, c"FF.UNBLOCK", engine::Op::Unblock, false)
}

/// Revokes leases granted to blocked claimers that vanished before their
/// reply went out (from the timer), replicated as FF.REVOKE with the lease
/// and time pinned: the work is claimable again at once rather than when
/// the lease runs out.
pub fn give_back(ctx: &Context, grants: Vec<(c_int, ExecId, crate::core::ids::Uuid)>, now: u64) {
    let env = timer::env(now);
    for (db, id, lease) in grants {
        if let Some(select) = unsafe { raw::RedisModule_SelectDb } {
            unsafe { select(ctx.ctx, db) };
        }
        let Ok((_key, idx, e)) = keys::require_exec(ctx, &id) else {
            continue;
        };
        let (r, moved) = engine::revoke(idx, e, Some(lease), &env);
        after_move(db, idx, e, moved);
        if moved.due {
            timer::note_due(ctx, db, idx);
        }
        if r.is_ok() {
            replicate_revoke(ctx, &id, lease, &env);
        }
    }
}

/// Replicates a revoke the node made itself (a vanished claimer's grant, a
/// dead worker's lease) as FF.REVOKE with the lease, time and reclaim limit
/// pinned.
pub fn replicate_revoke(ctx: &Context, id: &ExecId, lease: crate::core::ids::Uuid, env: &Env) {
    let (text, lease) = (id.text(), lease.text());
    let (at, max) = (env.now.to_string(), env.max_reclaims.to_string());
    let args: [&[u8]; 7] = [
        text.as_bytes(),
        b"LEASE",
        &lease,
        b"AT",
        at.as_bytes(),
        b"MAX_RECLAIMS",
        max.as_bytes(),
    ];
    ctx.replicate("FF.REVOKE", &args[..]);
}
