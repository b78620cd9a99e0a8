//! The execution domain's writes: FF.SUBMIT creates an execution; the
//! holder's fenced calls (renew, complete, fail, cancel, delay, wait for
//! children, progress) and an operator's transitions (revoke, priority,
//! tags, replay, block, unblock) move it. Each parses its request, applies
//! the core transition through `effects::transition_cmd`, and replies.

use std::ffi::CStr;

use flowfabric_core::base::errors::{CmdError, CmdResult};
use flowfabric_core::base::ids::{idempotency_key, lane_partition, ExecId, SubmitTarget};
use flowfabric_core::base::limits::MAX_REPLAYS;
use flowfabric_core::execution::requests;
use flowfabric_core::execution::{Execution, DEFAULT_NAMESPACE};
use flowfabric_core::flows::{DependencyKind, FlowError};
use flowfabric_core::partition::flow_ops::NewEdge;
use flowfabric_core::partition::moves::{self, Op};
use flowfabric_core::partition::Partition;
use flowfabric_core::streams::Event;

use crate::shell::call::{self, Call};
use crate::shell::effects::{
    env_for, finish, pins, replicate_call, settle, transition_cmd, Refusal,
};
use crate::shell::node::{cluster_mode, lane_name, now_ms, with_minter};
use crate::shell::reply::Reply;
use crate::shell::streams::Field;
use crate::shell::{config, effects, feed, held, keys};

/// `FF.SUBMIT target lane payload [options]`: creates an execution,
/// idempotently, and queues or schedules it.
pub fn submit(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let limits = config::limits();
    let mut req = requests::parse_submit_keeping(
        call.args,
        &limits,
        call.origin(),
        |i, bytes| held::hold(call.argv.get(i), bytes),
        lane_name,
    )?;
    let now = req.at.unwrap_or_else(now_ms);
    req.resolve_times(now, call.origin())?;
    let partition = match req.target {
        SubmitTarget::Auto => {
            if cluster_mode() {
                return Err(CmdError::syntax(
                    "* needs standalone mode; in a cluster pass the lane's {fp:N} (see FF.PARTITION)",
                ));
            }
            match &req.flow {
                Some(f) => f.partition,
                None => lane_partition(req.spec.lane.as_bytes(), limits.partitions),
            }
        }
        SubmitTarget::Partition(p) => p,
        SubmitTarget::Exact(id) => id.partition,
    };
    let r = Reply(ctx.ctx);
    let namespace: &[u8] = if req.spec.namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        &req.spec.namespace
    };
    let idem = req.spec.idempotency.as_ref().map(|k| {
        (
            idempotency_key(partition, namespace, k),
            req.idempotency_ttl_ms.unwrap_or(1),
        )
    });
    if let Some((ik, _)) = &idem {
        if let Some(first) = keys::read_string(ctx, ik) {
            r.bulk(&first);
            return Ok(());
        }
    }
    let (id, minted) = match req.target {
        SubmitTarget::Exact(id) => (id, false),
        _ => {
            let uuid = with_minter(|m| m.uuid());
            (ExecId { partition, uuid }, true)
        }
    };
    let id_text = id.text();
    let mut key = keys::open_partition(ctx, partition);
    if let Some(f) = &req.flow {
        // Into a flow that exists and takes members, or nothing changes.
        let flow_error = |e: FlowError| CmdError::from(e);
        match key.partition()? {
            Some(p) if p.get(id.uuid).is_none() => p
                .check_join_after(f.uuid, id.uuid, &req.after)
                .map_err(flow_error)?,
            Some(_) => {}
            None => return Err(flow_error(FlowError::FlowNotFound)),
        }
    }
    let p = keys::partition_or_create(&mut key, partition, limits.partitions)?;
    let Some((moved, idx, e)) = p.admit_new(id.uuid, |seq| Execution::new(id, req.spec, seq, now))
    else {
        r.bulk(id_text.as_bytes());
        return Ok(());
    };
    settle(ctx, idx, e, moved);
    if let Some(f) = &req.flow {
        p.add_member(f.uuid, id.uuid, now).map_err(CmdError::from)?;
        let env = env_for(call, now);
        let db = call::db(ctx);
        for (i, up) in req.after.iter().enumerate() {
            let edge = NewEdge {
                flow: f.uuid,
                id: Partition::after_edge_id(id.uuid, i),
                up: *up,
                down: id.uuid,
                kind: DependencyKind::SuccessOnly,
                data_ref: None,
                expected_revision: None,
            };
            p.add_edge(edge, &env, &mut |idx, e, moved| {
                effects::after_move(ctx, db, idx, e, moved)
            })
            .map_err(CmdError::from)?;
        }
        effects::drain_flows(ctx, p, &env);
    }
    if let Some((ik, ttl)) = idem {
        keys::write_expiring_string(ctx, &ik, id_text.as_bytes(), now.saturating_add(ttl));
    }
    replicate_call(
        call,
        c"FF.SUBMIT",
        minted.then_some(id_text.as_bytes()),
        &pins(req.at, now, &[]),
    );
    r.bulk(id_text.as_bytes());
    Ok(())
}

pub fn renew(call: &Call) -> CmdResult<()> {
    let req = requests::parse_renew(call.args, &config::limits(), call.origin(), true)?;
    let expires = transition_cmd(call, c"FF.RENEW", &req.id, req.at, false, |idx, e, env| {
        let out = moves::renew(idx, e, &req.fence, req.lease_ms, env);
        feed::on_ok(call.ctx, idx, e, Event::Renewed, &out.0, Vec::new);
        out
    })?;
    Reply(call.ctx.ctx).uint(expires);
    Ok(())
}

pub fn complete(call: &Call) -> CmdResult<()> {
    let req = requests::parse_complete(call.args, &config::limits(), call.origin(), |i, bytes| {
        held::hold(call.argv.get(i), bytes)
    })?;
    transition_cmd(
        call,
        c"FF.COMPLETE",
        &req.id,
        req.at,
        false,
        |idx, e, env| moves::complete(idx, e, &req.fence, req.result, env),
    )?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.FAIL`: the primary decides whether the failure retries (its
/// classification, then the policy) and draws the retry time (backoff with
/// its jitter) once; replicas get it pinned as `RETRY_AT` (0: no retry).
pub fn fail(call: &Call) -> CmdResult<()> {
    let req = requests::parse_fail(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.id.partition);
    let (idx, e) = keys::exec_in(&mut key, &req.id)?;
    let retry_at = match req.retry_at {
        Some(0) => None,
        Some(at) => Some(at),
        None => e
            .retry_delay(req.failure.as_ref(), with_minter(|m| m.uuid().0 as u64))
            .map(|d| now.saturating_add(d)),
    };
    let env = env_for(call, now);
    let (r, moved) = moves::fail(idx, e, &req.fence, req.reason, req.failure, retry_at, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    let extra = [(c"RETRY_AT", retry_at.unwrap_or(0))];
    let pinned_extra: &[(&CStr, u64)] = if req.retry_at.is_some() { &[] } else { &extra };
    let mut p = pins(req.at, now, pinned_extra);
    if r.is_err() {
        p = p.with_max_reclaims(&env);
    }
    finish(call, c"FF.FAIL", idx, e, moved, changed, &p);
    if changed {
        effects::drain_key(call.ctx, &mut key, &env);
    }
    let outcome = r.map_err(|err| err.error())?;
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
    let req = requests::parse_cancel(call.args, &config::limits(), call.origin())?;
    transition_cmd(call, c"FF.CANCEL", &req.id, req.at, false, |idx, e, env| {
        moves::cancel(idx, e, req.fence.as_ref(), req.reason, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.DELAY`: until a time, or `FOR` a span from the command's (pinned)
/// time.
pub fn delay(call: &Call) -> CmdResult<()> {
    let req = requests::parse_delay(call.args, &config::limits(), call.origin())?;
    transition_cmd(call, c"FF.DELAY", &req.id, req.at, false, |idx, e, env| {
        moves::delay(idx, e, &req.fence, req.until.resolve(env.now), env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn wait_children(call: &Call) -> CmdResult<()> {
    let req = requests::parse_renew(call.args, &config::limits(), call.origin(), false)?;
    transition_cmd(
        call,
        c"FF.WAITCHILDREN",
        &req.id,
        req.at,
        false,
        |idx, e, env| moves::wait_for_children(idx, e, &req.fence, env),
    )?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn progress(call: &Call) -> CmdResult<()> {
    let req = requests::parse_progress(call.args, &config::limits(), call.origin())?;
    transition_cmd(
        call,
        c"FF.PROGRESS",
        &req.id,
        req.at,
        false,
        |idx, e, env| {
            let out = moves::report_progress(idx, e, &req.fence, req.pct, req.message, env);
            feed::on_ok(call.ctx, idx, e, Event::Progress, &out.0, || {
                vec![
                    feed::name(call.ctx, feed::Name::Pct),
                    Field::uint(call.ctx, u64::from(req.pct)),
                ]
            });
            out
        },
    )?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.REVOKE`: an operator takes the lease away; it counts toward the
/// reclaim limit, so the limit is pinned.
pub fn revoke(call: &Call) -> CmdResult<()> {
    let req = requests::parse_revoke(call.args, &config::limits(), call.origin())?;
    transition_cmd(call, c"FF.REVOKE", &req.id, req.at, true, |idx, e, env| {
        moves::revoke(idx, e, req.lease_id, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn priority(call: &Call) -> CmdResult<()> {
    let req = requests::parse_priority(call.args, &config::limits(), call.origin())?;
    transition_cmd(
        call,
        c"FF.PRIORITY",
        &req.id,
        req.at,
        false,
        |idx, e, env| moves::set_priority(idx, e, req.priority, env),
    )?;
    Reply(call.ctx.ctx).uint(u64::from(req.priority));
    Ok(())
}

pub fn set_tags(call: &Call) -> CmdResult<()> {
    let req = requests::parse_set_tags(call.args, &config::limits(), call.origin())?;
    let n = transition_cmd(
        call,
        c"FF.SETTAGS",
        &req.id,
        req.at,
        false,
        |idx, e, env| {
            let out = moves::set_tags(idx, e, req.tags, env);
            feed::on_ok(call.ctx, idx, e, Event::TagsSet, &out.0, Vec::new);
            out
        },
    )?;
    Reply(call.ctx.ctx).uint(n as u64);
    Ok(())
}

/// Replay, block and unblock: operator transitions on one execution.
fn operate(call: &Call, name: &CStr, op: Op, with_reason: bool) -> CmdResult<()> {
    let req = requests::parse_simple(call.args, &config::limits(), call.origin(), with_reason)?;
    transition_cmd(call, name, &req.id, req.at, false, |idx, e, env| {
        moves::operate(idx, e, op, req.reason, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn replay(call: &Call) -> CmdResult<()> {
    let op = Op::Replay {
        max_replays: MAX_REPLAYS,
    };
    operate(call, c"FF.REPLAY", op, false)
}

pub fn block(call: &Call) -> CmdResult<()> {
    operate(call, c"FF.BLOCK", Op::Block, true)
}

pub fn unblock(call: &Call) -> CmdResult<()> {
    operate(call, c"FF.UNBLOCK", Op::Unblock, false)
}
