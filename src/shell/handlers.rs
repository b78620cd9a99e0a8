//! Command handlers: parse, open keys, apply a core transition, replicate
//! with the clock and minted ids pinned, reply.

use std::ffi::CStr;
use std::os::raw::c_int;

use redis_module::{raw, Context, ContextFlags};

use crate::core::args::{CmdError, CmdResult};
use crate::core::caps::CapSet;
use crate::core::codec::DecodeError;
use crate::core::engine::{self, Env, Moved};
use crate::core::execution::{
    ClaimError, Execution, Grant, LeaseError, OpError, RevokeError, DEFAULT_NAMESPACE,
};
use crate::core::ids::{idempotency_key, lane_partition, ExecId, SubmitTarget};
use crate::core::index::{PartitionIndex, QueueKey};
use crate::core::requests::{self, Acquire, Claim, Origin};
use crate::shell::globals::{now_ms, with_hints, with_minter, with_ready_keys};
use crate::shell::keys::{self, wrongtype};
use crate::shell::registry::Call;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::types::{self, EXEC_TYPE, INDEX_TYPE, TAG_EXEC, TAG_INDEX};
use crate::shell::{blocking, config, lanes, propagation, timer};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The name the call was made with (for replicating it).
pub fn current_name(call: &Call) -> String {
    call.ctx.current_command_name().unwrap_or_default()
}

/// Only the primary's stream and the AOF may carry pinned values.
pub fn origin(ctx: &Context) -> Origin {
    let f = ctx.get_flags();
    if f.contains(ContextFlags::REPLICATED) || f.contains(ContextFlags::LOADING) {
        Origin::Replicated
    } else {
        Origin::Client
    }
}

pub fn db(ctx: &Context) -> c_int {
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.ctx)) }
}

/// The values a replica must not compute itself: `AT now` unless the call
/// already carried its time, then any extra pinned values.
fn pins<'a>(at: Option<u64>, now: u64, extra: &[(&'a CStr, u64)]) -> Vec<(&'a CStr, u64)> {
    let mut v = Vec::with_capacity(1 + extra.len());
    if at.is_none() {
        v.push((c"AT", now));
    }
    v.extend_from_slice(extra);
    v
}

/// Replicates the call, its arguments passed by reference (client payloads
/// are not copied), with `first` replacing its first argument, followed by
/// the pinned values.
fn replicate_call(
    call: &Call,
    name: &CStr,
    first: Option<*mut raw::RedisModuleString>,
    pins: &[(&CStr, u64)],
) {
    if !propagation::needed(call.ctx) {
        return;
    }
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (ctx, name) = (call.ctx.ctx, name.as_ptr());
    let (head, rest) = match (first, call.argv.split_first()) {
        (Some(id), Some((_, rest))) => (Some(id), rest),
        _ => (None, call.argv),
    };
    let (v, n) = (rest.as_ptr(), rest.len());
    let val = |i: usize| {
        pins.get(i)
            .map_or(0, |p| i64::try_from(p.1).unwrap_or(i64::MAX))
    };
    let key = |i: usize| pins.get(i).map_or(c"".as_ptr(), |p| p.0.as_ptr());
    unsafe {
        match (head, pins.len()) {
            (Some(id), 0) => f(ctx, name, c"sv".as_ptr(), id, v, n),
            (Some(id), 1) => f(ctx, name, c"svcl".as_ptr(), id, v, n, key(0), val(0)),
            (Some(id), _) => f(
                ctx,
                name,
                c"svclcl".as_ptr(),
                id,
                v,
                n,
                key(0),
                val(0),
                key(1),
                val(1),
            ),
            (None, 0) => f(ctx, name, c"v".as_ptr(), v, n),
            (None, 1) => f(ctx, name, c"vcl".as_ptr(), v, n, key(0), val(0)),
            (None, _) => f(
                ctx,
                name,
                c"vclcl".as_ptr(),
                v,
                n,
                key(0),
                val(0),
                key(1),
                val(1),
            ),
        }
    };
}

fn replicate_with(call: &Call, name: &CStr, pins: &[(&CStr, u64)]) {
    replicate_call(call, name, None, pins);
}

/// Tells blocked claimers that partition `p` has new eligible work.
fn signal_ready(ctx: &Context, p: u16) {
    with_ready_keys(|keys| {
        if let (Some(&k), Some(f)) = (keys.get(p as usize), unsafe {
            raw::RedisModule_SignalKeyAsReady
        }) {
            unsafe { f(ctx.ctx, k) };
        }
    });
}

fn refresh_hint(db: c_int, idx: &PartitionIndex, lane: &str, caps: &CapSet) {
    let head = idx.head(lane, caps).map(|(k, _)| k);
    with_hints(|h| h.set(db, lane, caps, idx.partition, head));
}

/// Keeps claim hints and blocked claimers in step with a transition.
pub fn after_move(
    ctx: &Context,
    db: c_int,
    idx: &PartitionIndex,
    lane: &str,
    caps: &CapSet,
    moved: Moved,
) {
    if moved.queue {
        refresh_hint(db, idx, lane, caps);
    }
    if moved.now_claimable {
        signal_ready(ctx, idx.partition);
    }
}

pub fn submit(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let limits = config::limits();
    let origin = origin(ctx);
    let req = requests::parse_submit(call.args, &limits, origin)?;
    let now = req.at.unwrap_or_else(now_ms);
    let partition = match req.target {
        SubmitTarget::Auto => {
            if ctx.get_flags().contains(ContextFlags::CLUSTER) {
                return Err(CmdError::syntax(
                    "* needs standalone mode; in a cluster pass the lane's {fp:N} (see FF.PARTITION)",
                ));
            }
            lane_partition(req.spec.lane.as_bytes(), limits.partitions)
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
    let (id, id_string) = match req.target {
        SubmitTarget::Exact(id) => (id, None),
        _ => {
            let id = ExecId {
                partition,
                uuid: with_minter(|m| m.uuid()),
            };
            (id, Some(ctx.create_string(id.key().as_bytes())))
        }
    };
    let name = match (&id_string, call.argv.first()) {
        (Some(s), _) => s.inner,
        (None, Some(&arg)) => arg,
        (None, None) => return Err(CmdError::syntax("missing target")),
    };
    let ekey = keys::open_arg(ctx, name);
    let id_text = unsafe { keys::string_bytes(name) };
    if keys::exec(&ekey)?.is_some() {
        r.bulk(id_text);
        return Ok(());
    }
    let (_ikey, idx) = keys::index_or_create(ctx, partition, limits.partitions)?;
    let e = Execution::new(id, req.spec, idx.take_seq(), now);
    let moved = engine::admit(idx, &e, &timer::env(now));
    let db = db(ctx);
    if moved.now_claimable {
        // Only a new queue head changes what claims should look at.
        if idx
            .head(&e.lane, &e.caps)
            .is_some_and(|(k, _)| k == QueueKey::of(&e))
        {
            refresh_hint(db, idx, &e.lane, &e.caps);
        }
        signal_ready(ctx, partition);
    }
    timer::note_due(ctx, db, idx);
    ekey.set_value(&EXEC_TYPE, e).map_err(|_| wrongtype())?;
    if let Some((ik, ttl)) = idem {
        keys::write_expiring_string(ctx, &ik, id_text, now.saturating_add(ttl));
    }
    replicate_call(
        call,
        c"FF.SUBMIT",
        id_string.as_ref().map(|s| s.inner),
        &pins(req.at, now, &[]),
    );
    r.bulk(id_text);
    Ok(())
}

/// A claim's reply, positional like BLPOP's so the hot path writes few
/// elements: execution id, payload, attempt index, attempt type, attempt id,
/// lease id, lease epoch, lease expiry (ms).
fn reply_grant(ctx: &Context, e: &Execution, g: &Grant, name: *mut raw::RedisModuleString) {
    let r = Reply(ctx.ctx);
    r.array(8);
    r.bulk(unsafe { keys::string_bytes(name) });
    r.bulk(&e.payload);
    r.uint(u64::from(g.attempt_index));
    r.bulk(g.attempt_type.as_str().as_bytes());
    r.bulk(&g.attempt_id.text());
    r.bulk(&g.lease_id.text());
    r.uint(g.lease_epoch);
    r.uint(g.lease_expires_at);
}

/// Replicates a decided claim as FF.ACQUIRE, formatting its values straight
/// into the server's strings.
fn replicate_acquire(ctx: &Context, a: &Acquire, name: *mut raw::RedisModuleString) {
    if !propagation::needed(ctx) {
        return;
    }
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (lease, attempt) = (a.lease_id.text(), a.attempt_id.text());
    let lease_ms = i64::try_from(a.lease_ms).unwrap_or(i64::MAX);
    let at = i64::try_from(a.at).unwrap_or(i64::MAX);
    unsafe {
        f(
            ctx.ctx,
            c"FF.ACQUIRE".as_ptr(),
            c"sbblbbl".as_ptr(),
            name,
            a.worker_id.as_ptr(),
            a.worker_id.len(),
            a.worker_instance_id.as_ptr(),
            a.worker_instance_id.len(),
            lease_ms,
            lease.as_ptr(),
            lease.len(),
            attempt.as_ptr(),
            attempt.len(),
            at,
        )
    };
}

/// Applies a decided claim to the record and index; shared by the primary
/// (after choosing) and by replicas and AOF replaying FF.ACQUIRE.
fn apply_acquire(
    ctx: &Context,
    idx: &mut PartitionIndex,
    e: &mut Execution,
    a: &Acquire,
    name: *mut raw::RedisModuleString,
) -> CmdResult<()> {
    let (g, moved) = engine::acquire(idx, e, a, &timer::env(a.at));
    let g = g.map_err(|err| match err {
        ClaimError::NotLeaseable => {
            CmdError::new("EXECUTION_NOT_LEASEABLE", "the execution is not eligible")
        }
        ClaimError::LeaseConflict => {
            CmdError::new("LEASE_CONFLICT", "the execution is already leased")
        }
    })?;
    let db = db(ctx);
    after_move(ctx, db, idx, &e.lane, &e.caps, moved);
    timer::note_due(ctx, db, idx);
    replicate_acquire(ctx, a, name);
    reply_grant(ctx, e, &g, name);
    Ok(())
}

/// How many stale hints or orphaned queue entries one claim may clear
/// before giving up; each is removed, so the work is amortised.
const MAX_PROBES: usize = 64;

/// Claims the best matching execution; false when there is none.
pub fn try_claim(ctx: &Context, c: &Claim) -> CmdResult<bool> {
    let db = db(ctx);
    for _ in 0..MAX_PROBES {
        let Some(cand) = with_hints(|h| h.best(db, c.lanes.iter().copied(), &c.caps)) else {
            return Ok(false);
        };
        let drop_hint =
            |head| with_hints(|h| h.set(db, &cand.lane, &cand.caps, cand.partition, head));
        let ikey = keys::open_index(ctx, cand.partition);
        let Ok(Some(idx)) = keys::index(&ikey) else {
            drop_hint(None);
            continue;
        };
        let (qkey, uuid) = match idx.head(&cand.lane, &cand.caps) {
            Some((k, u)) if k == cand.key => (k, u),
            other => {
                drop_hint(other.map(|(k, _)| k));
                continue;
            }
        };
        let id = ExecId {
            partition: cand.partition,
            uuid,
        };
        let name = ctx.create_string(id.key().as_bytes());
        let ekey = keys::open_arg(ctx, name.inner);
        let e = match keys::exec(&ekey) {
            Ok(Some(e)) if e.is_claimable() => e,
            _ => {
                idx.remove_queued(&cand.lane, &cand.caps, &qkey);
                refresh_hint(db, idx, &cand.lane, &cand.caps);
                continue;
            }
        };
        let (lease_id, attempt_id) = with_minter(|m| (m.uuid(), m.uuid()));
        let a = Acquire {
            id,
            worker_id: c.worker_id,
            worker_instance_id: c.worker_instance_id,
            lease_ms: c.lease_ms,
            lease_id,
            attempt_id,
            at: now_ms(),
        };
        apply_acquire(ctx, idx, e, &a, name.inner)?;
        return Ok(true);
    }
    Ok(false)
}

pub fn claim(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let mut c = requests::parse_claim(call.args, &config::limits())?;
    c.lanes.retain(|l| !lanes::is_paused(l));
    if try_claim(ctx, &c)? {
        return Ok(());
    }
    match c.block_ms {
        Some(ms) if blocking::allowed(ctx) => blocking::block_claim(ctx, ms),
        _ => Reply(ctx.ctx).null(),
    }
    Ok(())
}

pub fn acquire(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    if origin(ctx) != Origin::Replicated {
        return Err(CmdError::syntax(
            "FF.ACQUIRE is internal: only the primary and the AOF send it",
        ));
    }
    let limits = config::limits();
    let a = requests::parse_acquire(call.args, &limits)?;
    let Some(&name) = call.argv.first() else {
        return Err(CmdError::syntax("missing execution id"));
    };
    let (_ekey, e) = keys::require_exec_arg(ctx, Some(&name), &a.id)?;
    let (_ikey, idx) = keys::index_or_create(ctx, a.id.partition, limits.partitions)?;
    apply_acquire(ctx, idx, e, &a, name)
}

/// Opens what a fenced call on one execution needs.
fn open_for<'a>(
    call: &Call,
    id: &ExecId,
) -> CmdResult<(
    redis_module::key::RedisKeyWritable,
    &'a mut Execution,
    redis_module::key::RedisKeyWritable,
    &'a mut PartitionIndex,
)> {
    let (ekey, e) = keys::require_exec_arg(call.ctx, call.argv.first(), id)?;
    let (ikey, idx) = keys::index_or_create(call.ctx, id.partition, config::partitions())?;
    Ok((ekey, e, ikey, idx))
}

/// After a fenced transition: hints, timer, and replication with the
/// pinned values when anything changed.
fn finish(
    call: &Call,
    name: &CStr,
    idx: &PartitionIndex,
    e: &Execution,
    moved: Moved,
    changed: bool,
    pins: &[(&CStr, u64)],
) {
    let db = db(call.ctx);
    after_move(call.ctx, db, idx, &e.lane, &e.caps, moved);
    timer::note_due(call.ctx, db, idx);
    if changed {
        replicate_with(call, name, pins);
    }
}

/// Why a transition was refused, and whether the record changed anyway
/// (a fenced call marks an expired lease on the way).
trait Refusal {
    fn message(&self) -> String;
    fn changed(&self) -> bool {
        false
    }
}

impl Refusal for (LeaseError, bool) {
    fn message(&self) -> String {
        self.0.message()
    }
    fn changed(&self) -> bool {
        self.1
    }
}

impl Refusal for LeaseError {
    fn message(&self) -> String {
        LeaseError::message(self)
    }
}

impl Refusal for RevokeError {
    fn message(&self) -> String {
        RevokeError::message(self).into()
    }
}

impl Refusal for OpError {
    fn message(&self) -> String {
        OpError::message(self).into()
    }
}

/// Runs one transition on one execution: opens it and its index, applies
/// `op`, keeps hints and the timer in step, and replicates the call with
/// its time pinned when anything changed.
fn transition_cmd<T, E: Refusal>(
    call: &Call,
    name: &CStr,
    id: &ExecId,
    at: Option<u64>,
    op: impl FnOnce(&mut PartitionIndex, &mut Execution, &Env) -> (Result<T, E>, Moved),
) -> CmdResult<T> {
    let now = at.unwrap_or_else(now_ms);
    let (_ekey, e, _ikey, idx) = open_for(call, id)?;
    let (r, moved) = op(idx, e, &timer::env(now));
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    finish(call, name, idx, e, moved, changed, &pins(at, now, &[]));
    r.map_err(|err| CmdError(err.message()))
}

pub fn renew(call: &Call) -> CmdResult<()> {
    let req = requests::parse_renew(call.args, &config::limits(), origin(call.ctx))?;
    let expires = transition_cmd(call, c"FF.RENEW", &req.id, req.at, |idx, e, env| {
        engine::renew(idx, e, &req.fence, req.lease_ms, env)
    })?;
    Reply(call.ctx.ctx).uint(expires);
    Ok(())
}

pub fn complete(call: &Call) -> CmdResult<()> {
    let req = requests::parse_complete(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.COMPLETE", &req.id, req.at, |idx, e, env| {
        engine::complete(idx, e, &req.fence, req.result, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn fail(call: &Call) -> CmdResult<()> {
    let req = requests::parse_fail(call.args, &config::limits(), origin(call.ctx))?;
    let now = req.at.unwrap_or_else(now_ms);
    let (_ekey, e, _ikey, idx) = open_for(call, &req.id)?;
    // The primary draws the backoff (with its jitter) once; replicas get the
    // resulting time pinned.
    let retry_at = match req.retry_at {
        Some(0) => None,
        Some(at) => Some(at),
        None => e
            .retry_delay(with_minter(|m| m.uuid().0 as u64))
            .map(|d| now.saturating_add(d)),
    };
    let (r, moved) = engine::fail(idx, e, &req.fence, req.reason, retry_at, &timer::env(now));
    let changed = r.as_ref().map_or_else(|(_, changed)| *changed, |_| true);
    let extra = [(c"RETRY_AT", retry_at.unwrap_or(0))];
    let pinned_extra: &[(&CStr, u64)] = if req.retry_at.is_some() { &[] } else { &extra };
    finish(
        call,
        c"FF.FAIL",
        idx,
        e,
        moved,
        changed,
        &pins(req.at, now, pinned_extra),
    );
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
    transition_cmd(call, c"FF.CANCEL", &req.id, req.at, |idx, e, env| {
        engine::cancel(idx, e, req.fence.as_ref(), req.reason, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn delay(call: &Call) -> CmdResult<()> {
    let req = requests::parse_delay(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.DELAY", &req.id, req.at, |idx, e, env| {
        engine::delay(idx, e, &req.fence, req.until, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn wait_children(call: &Call) -> CmdResult<()> {
    let req = requests::parse_renew(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.WAITCHILDREN", &req.id, req.at, |idx, e, env| {
        engine::wait_for_children(idx, e, &req.fence, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn revoke(call: &Call) -> CmdResult<()> {
    let req = requests::parse_revoke(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.REVOKE", &req.id, req.at, |idx, e, env| {
        engine::revoke(idx, e, req.lease_id, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn priority(call: &Call) -> CmdResult<()> {
    let req = requests::parse_priority(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.PRIORITY", &req.id, req.at, |idx, e, env| {
        engine::set_priority(idx, e, req.priority, env)
    })?;
    Reply(call.ctx.ctx).uint(u64::from(req.priority));
    Ok(())
}

pub fn progress(call: &Call) -> CmdResult<()> {
    let req = requests::parse_progress(call.args, &config::limits(), origin(call.ctx))?;
    transition_cmd(call, c"FF.PROGRESS", &req.id, req.at, |idx, e, env| {
        engine::report_progress(idx, e, &req.fence, req.pct, req.message, env)
    })?;
    Reply(call.ctx.ctx).ok();
    Ok(())
}

pub fn set_tags(call: &Call) -> CmdResult<()> {
    let req = requests::parse_set_tags(call.args, &config::limits(), origin(call.ctx))?;
    let now = req.at.unwrap_or_else(now_ms);
    let (_ekey, e) = keys::require_exec_arg(call.ctx, call.argv.first(), &req.id)?;
    let n = e
        .set_tags(req.tags, now)
        .map_err(|err| CmdError(err.message().into()))?;
    replicate_with(call, c"FF.SETTAGS", &pins(req.at, now, &[]));
    Reply(call.ctx.ctx).uint(n as u64);
    Ok(())
}

pub fn get_tags(call: &Call) -> CmdResult<()> {
    let Some((id, wanted)) = call.args.split_first() else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (_k, e) = keys::require_exec_arg(call.ctx, call.argv.first(), &id)?;
    let r = Reply(call.ctx.ctx);
    if wanted.is_empty() {
        r.array(e.tags().len() * 2);
        for (k, v) in e.tags() {
            r.bulk(k);
            r.bulk(v);
        }
    } else {
        r.array(wanted.len());
        for w in wanted {
            match e.tags().iter().find(|(k, _)| k.as_ref() == *w) {
                Some((_, v)) => r.bulk(v),
                None => r.null(),
            }
        }
    }
    Ok(())
}

/// Replay, block and unblock: operator transitions on one execution.
fn operate(call: &Call, name: &CStr, op: engine::Op, with_reason: bool) -> CmdResult<()> {
    let req = requests::parse_simple(call.args, &config::limits(), origin(call.ctx), with_reason)?;
    transition_cmd(call, name, &req.id, req.at, |idx, e, env| {
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

fn lane_arg<'a>(call: &Call<'a>) -> CmdResult<&'a str> {
    let [lane] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    requests::lane_str(lane)
}

pub fn pause(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let changed = lanes::set_paused(lane, true);
    if propagation::needed(call.ctx) {
        call.ctx.replicate_verbatim();
    }
    Reply(call.ctx.ctx).uint(u64::from(changed));
    Ok(())
}

pub fn resume(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let changed = lanes::set_paused(lane, false);
    if propagation::needed(call.ctx) {
        call.ctx.replicate_verbatim();
    }
    if changed {
        // Waiting claimers may now take this lane's work.
        let db = db(call.ctx);
        let parts = with_hints(|h| h.partitions_with(db, lane));
        for p in parts {
            signal_ready(call.ctx, p);
        }
    }
    Reply(call.ctx.ctx).uint(u64::from(changed));
    Ok(())
}

pub fn paused(call: &Call) -> CmdResult<()> {
    let list = lanes::paused();
    let r = Reply(call.ctx.ctx);
    r.array(list.len());
    for l in &list {
        r.bulk(l.as_bytes());
    }
    Ok(())
}

/// Cursor listing of a partition's executions.
pub fn list(call: &Call) -> CmdResult<()> {
    let l = requests::parse_list(call.args, &config::limits())?;
    let ikey = keys::open_index(call.ctx, l.partition);
    let r = Reply(call.ctx.ctx);
    let Some(idx) = keys::index(&ikey)? else {
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return Ok(());
    };
    // With a lane filter records are opened to check it; scan a bounded
    // window either way.
    let scan = if l.lane.is_some() {
        l.count.saturating_mul(4)
    } else {
        l.count
    };
    let window = idx.members_after(l.state, l.cursor, scan);
    let mut ids = Vec::with_capacity(l.count.min(window.len()));
    let mut last = None;
    for &(st, uuid) in &window {
        if ids.len() >= l.count {
            break;
        }
        last = Some((st, uuid));
        let id = ExecId {
            partition: l.partition,
            uuid,
        };
        let key = id.key();
        if let Some(lane) = l.lane {
            let ekey = keys::open(call.ctx, key.as_bytes());
            match keys::exec(&ekey) {
                Ok(Some(e)) if e.lane.as_ref() == lane => {}
                _ => continue,
            }
        }
        ids.push(key);
    }
    let more = last.is_some() && (window.len() == scan || ids.len() >= l.count);
    let cursor = match (more, last) {
        (true, Some((st, u))) => {
            let name =
                crate::core::state::PublicState::from_u8(st).map_or("waiting", |s| s.as_str());
            format!("{name}:{u}")
        }
        _ => "0".to_string(),
    };
    r.array(2);
    r.bulk(cursor.as_bytes());
    r.array(ids.len());
    for id in &ids {
        r.bulk(id.as_bytes());
    }
    Ok(())
}

/// Lanes with their executions per public state, over the partitions this
/// node holds.
pub fn lanes_cmd(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let mut totals: std::collections::BTreeMap<Box<str>, [u64; 12]> =
        std::collections::BTreeMap::new();
    for p in 0..config::partitions() {
        let ikey = keys::open_index(call.ctx, p);
        if let Ok(Some(idx)) = keys::index(&ikey) {
            for (lane, counts) in &idx.lane_counts {
                let t = totals.entry(lane.clone()).or_insert([0; 12]);
                for (a, b) in t.iter_mut().zip(counts) {
                    *a = a.saturating_add(*b);
                }
            }
        }
    }
    let r = Reply(call.ctx.ctx);
    r.array(totals.len() * 2);
    for (lane, counts) in &totals {
        r.bulk(lane.as_bytes());
        let nonzero: Vec<(usize, u64)> = counts
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c > 0)
            .collect();
        r.array(nonzero.len() * 2);
        for (i, c) in nonzero {
            let name = u8::try_from(i)
                .ok()
                .and_then(crate::core::state::PublicState::from_u8)
                .map_or("", |s| s.as_str());
            r.bulk(name.as_bytes());
            r.uint(c);
        }
    }
    Ok(())
}

/// The live leases a worker instance holds on this node.
pub fn leases(call: &Call) -> CmdResult<()> {
    let [instance] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let mut found: Vec<(String, u64)> = Vec::new();
    for p in 0..config::partitions() {
        let ikey = keys::open_index(call.ctx, p);
        let Ok(Some(idx)) = keys::index(&ikey) else {
            continue;
        };
        for &(expires, uuid) in &idx.lease_expiry {
            let id = ExecId { partition: p, uuid }.key();
            let ekey = keys::open(call.ctx, id.as_bytes());
            if let Ok(Some(e)) = keys::exec(&ekey) {
                if e.current_attempt()
                    .is_some_and(|a| a.worker_instance_id.as_ref() == *instance)
                {
                    found.push((id, expires));
                }
            }
        }
    }
    let r = Reply(call.ctx.ctx);
    r.array(found.len() * 2);
    for (id, expires) in &found {
        r.bulk(id.as_bytes());
        r.uint(*expires);
    }
    Ok(())
}

pub fn due(call: &Call) -> CmdResult<()> {
    if origin(call.ctx) != Origin::Replicated {
        return Err(CmdError::syntax(
            "FF.DUE is internal: only the primary and the AOF send it",
        ));
    }
    let batch = requests::parse_due(call.args, &config::limits())?;
    let n = timer::process_partition(call.ctx, db(call.ctx), &batch, None);
    if propagation::needed(call.ctx) {
        call.ctx.replicate_verbatim();
    }
    Reply(call.ctx.ctx).uint(n as u64);
    Ok(())
}

fn read_exec<'a>(call: &Call) -> CmdResult<(redis_module::key::RedisKeyWritable, &'a Execution)> {
    let [id] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (k, e) = keys::require_exec_arg(call.ctx, call.argv.first(), &id)?;
    Ok((k, e))
}

pub fn get(call: &Call) -> CmdResult<()> {
    let (_k, e) = read_exec(call)?;
    crate::shell::describe::reply_execution(&Reply(call.ctx.ctx), e);
    Ok(())
}

pub fn result(call: &Call) -> CmdResult<()> {
    let (_k, e) = read_exec(call)?;
    let r = Reply(call.ctx.ctx);
    match &e.result {
        Some(b) => r.bulk(b),
        None => r.null(),
    }
    Ok(())
}

pub fn payload(call: &Call) -> CmdResult<()> {
    let (_k, e) = read_exec(call)?;
    Reply(call.ctx.ctx).bulk(&e.payload);
    Ok(())
}

pub fn version(call: &Call) -> CmdResult<()> {
    let l = config::limits();
    let r = Reply(call.ctx.ctx);
    let max_firing = timer::MAX_FIRING_US.load(std::sync::atomic::Ordering::Relaxed);
    let firings = timer::FIRINGS.load(std::sync::atomic::Ordering::Relaxed);
    Pairs::start(&r, 7)
        .bulk("version", VERSION.as_bytes())
        .uint("timer_firings", firings)
        .uint("timer_max_firing_us", max_firing)
        .uint("encoding", 1)
        .uint("partitions", u64::from(l.partitions))
        .uint("lease_ms", l.default_lease_ms)
        .uint("max_payload_bytes", l.max_payload_bytes as u64);
    Ok(())
}

pub fn partition(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let p = lane_partition(lane.as_bytes(), config::partitions());
    Reply(call.ctx.ctx).bulk(format!("{{fp:{p}}}").as_bytes());
    Ok(())
}

pub fn loadrec(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    if origin(ctx) != Origin::Replicated {
        return Err(CmdError::syntax(
            "FF.LOADREC is internal: only AOF loading and the primary send it",
        ));
    }
    let ([_, blob], Some(&key_arg)) = (call.args, call.argv.first()) else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let bad = |e: DecodeError| CmdError::syntax(format!("record does not decode: {e}"));
    let key = keys::open_arg(ctx, key_arg);
    let (tag, body) = blob
        .split_first()
        .ok_or_else(|| CmdError::syntax("empty record"))?;
    match *tag {
        TAG_EXEC => {
            let e = Execution::decode(body).map_err(bad)?;
            if !key.is_empty() {
                let _ = key.delete();
            }
            key.set_value(&EXEC_TYPE, e).map_err(|_| wrongtype())?;
        }
        TAG_INDEX => {
            let idx = PartitionIndex::decode(body).map_err(bad)?;
            if idx.partitions != config::partitions() {
                return Err(CmdError::new(
                    "PARTITION_MISMATCH",
                    "record laid out for another partition count",
                ));
            }
            types::register_hints(db(ctx), &idx);
            if !key.is_empty() {
                let _ = key.delete();
            }
            key.set_value(&INDEX_TYPE, idx).map_err(|_| wrongtype())?;
        }
        _ => return Err(CmdError::syntax("unknown record tag")),
    }
    if propagation::needed(ctx) {
        ctx.replicate_verbatim();
    }
    Reply(ctx.ctx).ok();
    Ok(())
}
