//! Command handlers: parse, open keys, apply a core transition, replicate
//! with the clock and minted ids pinned, reply.

use std::os::raw::c_int;

use redis_module::{raw, Context, ContextFlags};

use crate::core::args::{CmdError, CmdResult};
use crate::core::engine;
use crate::core::execution::{ClaimError, Execution, Grant};
use crate::core::ids::{idempotency_key, lane_partition, ExecId, SubmitTarget};
use crate::core::index::PartitionIndex;
use crate::core::requests::{self, Acquire, Claim, Origin};
use crate::shell::globals::{now_ms, with_hints, with_minter, with_ready_keys};
use crate::shell::keys::{self, wrongtype};
use crate::shell::reply::{Pairs, Reply};
use crate::shell::types::{self, EXEC_TYPE, INDEX_TYPE, TAG_EXEC, TAG_INDEX};
use crate::shell::{blocking, config};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// Replicates `name args…` with `first` replacing the first argument and
/// `AT now` appended unless the command already carried it.
fn replicate_pinned(
    ctx: &Context,
    name: &str,
    args: &[&[u8]],
    first: Option<&[u8]>,
    now: u64,
    pinned: bool,
) {
    let now_s = now.to_string();
    let mut out: Vec<&[u8]> = Vec::with_capacity(args.len() + 2);
    for (i, a) in args.iter().enumerate() {
        out.push(if i == 0 { first.unwrap_or(a) } else { a });
    }
    if !pinned {
        out.push(b"AT");
        out.push(now_s.as_bytes());
    }
    ctx.replicate(name, out.as_slice());
}

/// Tells blocked claimers that partition `p` has new eligible work.
fn signal_ready(ctx: &Context, p: u16) {
    with_ready_keys(|keys| {
        if let Some(&k) = keys.get(p as usize) {
            if let Some(f) = unsafe { raw::RedisModule_SignalKeyAsReady } {
                unsafe { f(ctx.ctx, k) };
            }
        }
    });
}

fn refresh_hint(db: c_int, idx: &PartitionIndex, lane: &str, caps: &crate::core::caps::CapSet) {
    let head = idx.head(lane, caps).map(|(k, _)| k);
    with_hints(|h| h.set(db, lane, caps, idx.partition, head));
}

pub fn submit(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let limits = config::limits();
    let origin = origin(ctx);
    let req = requests::parse_submit(args, &limits, origin)?;
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
    let idem = req.spec.idempotency.as_ref().map(|k| {
        (
            idempotency_key(partition, &req.spec.namespace, k),
            req.idempotency_ttl_ms.unwrap_or(1),
        )
    });
    if let Some((ik, _)) = &idem {
        if let Some(first) = keys::read_string(ctx, ik) {
            r.bulk(&first);
            return Ok(());
        }
    }
    let id = match req.target {
        SubmitTarget::Exact(id) => id,
        _ => ExecId {
            partition,
            uuid: with_minter(|m| m.uuid()),
        },
    };
    let id_text = id.key();
    let ekey = keys::open(ctx, id_text.as_bytes());
    if keys::exec(&ekey)?.is_some() {
        r.bulk(id_text.as_bytes());
        return Ok(());
    }
    let (_ikey, idx) = keys::index_or_create(ctx, partition, limits.partitions)?;
    let lane = req.spec.lane.clone();
    let caps = req.spec.caps.clone();
    let e = Execution::new(id, req.spec, idx.take_seq(), now);
    engine::admit(idx, &e);
    let eligible = e.is_eligible();
    ekey.set_value(&EXEC_TYPE, e).map_err(|_| wrongtype())?;
    if let Some((ik, ttl)) = idem {
        keys::write_expiring_string(ctx, &ik, id_text.as_bytes(), now.saturating_add(ttl));
    }
    if eligible {
        refresh_hint(db(ctx), idx, &lane, &caps);
        signal_ready(ctx, partition);
    }
    replicate_pinned(
        ctx,
        "FF.SUBMIT",
        args,
        Some(id_text.as_bytes()),
        now,
        req.at.is_some(),
    );
    r.bulk(id_text.as_bytes());
    Ok(())
}

fn reply_grant(ctx: &Context, e: &Execution, g: &Grant) {
    let r = Reply(ctx.ctx);
    let p = Pairs::start(&r, 9);
    p.bulk("execution_id", e.id.key().as_bytes())
        .bulk("lane", e.spec.lane.as_bytes())
        .bulk("payload", &e.spec.payload)
        .uint("attempt_index", u64::from(g.attempt_index))
        .bulk("attempt_type", g.attempt_type.as_str().as_bytes())
        .bulk("attempt_id", g.attempt_id.to_string().as_bytes())
        .bulk("lease_id", g.lease_id.to_string().as_bytes())
        .uint("lease_epoch", g.lease_epoch)
        .uint("lease_expires_at", g.lease_expires_at);
}

/// Applies a decided claim to the record and index; shared by the primary
/// (after choosing) and by replicas and AOF replaying FF.ACQUIRE.
fn apply_acquire(
    ctx: &Context,
    idx: &mut PartitionIndex,
    e: &mut Execution,
    a: &Acquire,
) -> CmdResult<()> {
    let g = engine::acquire(
        idx,
        e,
        &a.worker_id,
        &a.worker_instance_id,
        a.lease_ms,
        a.lease_id,
        a.attempt_id,
        a.at,
    )
    .map_err(|err| match err {
        ClaimError::NotLeaseable => {
            CmdError::new("EXECUTION_NOT_LEASEABLE", "the execution is not eligible")
        }
        ClaimError::LeaseConflict => {
            CmdError::new("LEASE_CONFLICT", "the execution is already leased")
        }
    })?;
    refresh_hint(db(ctx), idx, &e.spec.lane, &e.spec.caps);
    let args = a.to_args();
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    ctx.replicate("FF.ACQUIRE", refs.as_slice());
    reply_grant(ctx, e, &g);
    Ok(())
}

/// How many stale hints or orphaned queue entries one claim may clear
/// before giving up; each is removed, so the work is amortised.
const MAX_PROBES: usize = 64;

/// Claims the best matching execution; false when there is none.
pub fn try_claim(ctx: &Context, c: &Claim) -> CmdResult<bool> {
    let db = db(ctx);
    for _ in 0..MAX_PROBES {
        let Some(cand) = with_hints(|h| h.best(db, c.lanes.iter().map(|l| l.as_ref()), &c.caps))
        else {
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
        let ekey = keys::open_exec(ctx, &id);
        let e = match keys::exec(&ekey) {
            Ok(Some(e)) if e.is_eligible() => e,
            _ => {
                idx.remove_queued(&cand.lane, &cand.caps, &qkey);
                refresh_hint(db, idx, &cand.lane, &cand.caps);
                continue;
            }
        };
        let (lease_id, attempt_id) = with_minter(|m| (m.uuid(), m.uuid()));
        let a = Acquire {
            id,
            worker_id: c.worker_id.clone(),
            worker_instance_id: c.worker_instance_id.clone(),
            lease_ms: c.lease_ms,
            lease_id,
            attempt_id,
            at: now_ms(),
        };
        apply_acquire(ctx, idx, e, &a)?;
        return Ok(true);
    }
    Ok(false)
}

pub fn claim(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let c = requests::parse_claim(args, &config::limits())?;
    if try_claim(ctx, &c)? {
        return Ok(());
    }
    match c.block_ms {
        Some(ms) if blocking::allowed(ctx) => blocking::block_claim(ctx, ms),
        _ => Reply(ctx.ctx).null(),
    }
    Ok(())
}

pub fn acquire(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    if origin(ctx) != Origin::Replicated {
        return Err(CmdError::syntax(
            "FF.ACQUIRE is internal: only the primary and the AOF send it",
        ));
    }
    let limits = config::limits();
    let a = requests::parse_acquire(args, &limits)?;
    let (_ekey, e) = keys::require_exec(ctx, &a.id)?;
    let (_ikey, idx) = keys::index_or_create(ctx, a.id.partition, limits.partitions)?;
    apply_acquire(ctx, idx, e, &a)
}

pub fn renew(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let limits = config::limits();
    let req = requests::parse_renew(args, &limits, origin(ctx))?;
    let now = req.at.unwrap_or_else(now_ms);
    let (_ekey, e) = keys::require_exec(ctx, &req.id)?;
    let (_ikey, idx) = keys::index_or_create(ctx, req.id.partition, limits.partitions)?;
    match engine::renew(idx, e, &req.fence, req.lease_ms, now) {
        Ok(expires) => {
            replicate_pinned(ctx, "FF.RENEW", args, None, now, req.at.is_some());
            Reply(ctx.ctx).uint(expires);
            Ok(())
        }
        Err((err, changed)) => {
            if changed {
                replicate_pinned(ctx, "FF.RENEW", args, None, now, req.at.is_some());
            }
            Err(CmdError(err.message()))
        }
    }
}

pub fn complete(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let limits = config::limits();
    let req = requests::parse_complete(args, &limits, origin(ctx))?;
    let now = req.at.unwrap_or_else(now_ms);
    let (_ekey, e) = keys::require_exec(ctx, &req.id)?;
    let (_ikey, idx) = keys::index_or_create(ctx, req.id.partition, limits.partitions)?;
    match engine::complete(idx, e, &req.fence, req.result, now) {
        Ok(()) => {
            replicate_pinned(ctx, "FF.COMPLETE", args, None, now, req.at.is_some());
            Reply(ctx.ctx).ok();
            Ok(())
        }
        Err((err, changed)) => {
            if changed {
                replicate_pinned(ctx, "FF.COMPLETE", args, None, now, req.at.is_some());
            }
            Err(CmdError(err.message()))
        }
    }
}

fn read_exec<'a>(
    ctx: &Context,
    args: &[&[u8]],
) -> CmdResult<(redis_module::key::RedisKeyWritable, &'a Execution)> {
    let [id] = args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (k, e) = keys::require_exec(ctx, &id)?;
    Ok((k, e))
}

pub fn get(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let (_k, e) = read_exec(ctx, args)?;
    crate::shell::describe::reply_execution(&Reply(ctx.ctx), e);
    Ok(())
}

pub fn result(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let (_k, e) = read_exec(ctx, args)?;
    let r = Reply(ctx.ctx);
    match &e.result {
        Some(b) => r.bulk(b),
        None => r.null(),
    }
    Ok(())
}

pub fn payload(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let (_k, e) = read_exec(ctx, args)?;
    Reply(ctx.ctx).bulk(&e.spec.payload);
    Ok(())
}

pub fn version(ctx: &Context, _args: &[&[u8]]) -> CmdResult<()> {
    let l = config::limits();
    let r = Reply(ctx.ctx);
    Pairs::start(&r, 5)
        .bulk("version", VERSION.as_bytes())
        .uint("encoding", 1)
        .uint("partitions", u64::from(l.partitions))
        .uint("lease_ms", l.default_lease_ms)
        .uint("max_payload_bytes", l.max_payload_bytes as u64);
    Ok(())
}

pub fn partition(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    let [lane] = args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let s = requests::parse_submit(&[b"*", lane, b""], &config::limits(), Origin::Client)?;
    let p = lane_partition(s.spec.lane.as_bytes(), config::partitions());
    Reply(ctx.ctx).bulk(format!("{{fp:{p}}}").as_bytes());
    Ok(())
}

pub fn loadrec(ctx: &Context, args: &[&[u8]]) -> CmdResult<()> {
    if origin(ctx) != Origin::Replicated {
        return Err(CmdError::syntax(
            "FF.LOADREC is internal: only AOF loading and the primary send it",
        ));
    }
    let [name, blob] = args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let bad = |e: crate::core::codec::DecodeError| {
        CmdError::syntax(format!("record does not decode: {e}"))
    };
    let key = keys::open(ctx, name);
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
    ctx.replicate_verbatim();
    Reply(ctx.ctx).ok();
    Ok(())
}
