//! The node's worker registry (FF.REGISTER, FF.HEARTBEAT, FF.MARKDEAD,
//! FF.WORKERS). Node-wide like claims: in a cluster a worker registers with
//! each primary it claims from. Replicated as the commands (time pinned),
//! persisted with the paused lanes as RDB aux data. A worker whose heartbeat
//! lapses is marked dead by the node timer, which revokes its leases here.

use std::os::raw::c_int;

use redis_module::Context;

use crate::core::args::{parse_u64, Args, CmdError, CmdResult};
use crate::core::caps::CapSet;
use crate::core::engine;
use crate::core::requests::{self, Origin};
use crate::core::workers::{Registry, Worker};
use crate::shell::globals::{now_ms, SpinLock};
use crate::shell::handlers::{after_move, db, origin, pins, replicate_with};
use crate::shell::registry::Call;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::{config, keys, propagation, timer};

static REGISTRY: SpinLock<Option<Registry>> = SpinLock::new(None);

pub fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|r| f(r.get_or_insert_with(Registry::default)))
}

const TTL_MAX_MS: u64 = 7 * 24 * 3600 * 1000;

/// Splits off a trailing pinned `AT ms` (only from the primary or AOF).
fn pinned_at<'a>(args: &'a [&'a [u8]], origin: Origin) -> CmdResult<(&'a [&'a [u8]], Option<u64>)> {
    match args {
        [rest @ .., at, t] if at.eq_ignore_ascii_case(b"AT") => {
            if !origin.is_replicated() {
                return Err(CmdError::syntax("AT is reserved for replication and AOF"));
            }
            Ok((rest, Some(parse_u64(t, "AT", requests::TIME_MAX_MS)?)))
        }
        _ => Ok((args, None)),
    }
}

fn instance_arg(v: &[u8]) -> CmdResult<&[u8]> {
    if v.is_empty()
        || v.len() > requests::NAME_MAX_BYTES
        || v.iter().any(|&b| b < 0x20 || b == 0x7f)
    {
        return Err(CmdError::syntax(
            "worker instance id must be 1 to 256 bytes without control bytes",
        ));
    }
    Ok(v)
}

/// `FF.REGISTER instance worker_id ttl_ms [CAPS csv] [LANES n lane ...]`.
pub fn register(call: &Call) -> CmdResult<()> {
    let (args, at) = pinned_at(call.args, origin(call.ctx))?;
    let now = at.unwrap_or_else(now_ms);
    let mut a = Args::new(args);
    let instance = instance_arg(a.next("worker instance id")?)?;
    let worker_id = instance_arg(a.next("worker id")?)?;
    let ttl_ms = a.next_u64("ttl", TTL_MAX_MS)?;
    if ttl_ms == 0 {
        return Err(CmdError::syntax("ttl must be at least 1 ms"));
    }
    let mut w = Worker {
        worker_id: worker_id.into(),
        lanes: Vec::new(),
        caps: CapSet::empty(),
        ttl_ms,
        registered_at: now,
        last_heartbeat: now,
        dead_at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match crate::core::args::keyword(opt).as_deref() {
            Some("CAPS") => {
                w.caps = CapSet::parse_worker(a.next("CAPS")?).map_err(|e| {
                    CmdError::new("INVALID_CAPABILITIES", format!("worker:{}", e.detail()))
                })?
            }
            Some("LANES") => {
                let n = a.next_u64("numlanes", requests::LANES_MAX)?;
                for _ in 0..n {
                    w.lanes.push(requests::lane_str(a.next("lane")?)?.into());
                }
            }
            _ => return Err(CmdError::syntax("unknown option")),
        }
    }
    with(|r| r.register(instance, w));
    timer::note_workers_due(call.ctx);
    replicate_with(call, c"FF.REGISTER", &pins(at, now, &[]));
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.HEARTBEAT instance`.
pub fn heartbeat(call: &Call) -> CmdResult<()> {
    let (args, at) = pinned_at(call.args, origin(call.ctx))?;
    let now = at.unwrap_or_else(now_ms);
    let [instance] = args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    with(|r| r.heartbeat(instance, now)).map_err(|e| CmdError(e.message().into()))?;
    timer::note_workers_due(call.ctx);
    replicate_with(call, c"FF.HEARTBEAT", &pins(at, now, &[]));
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.MARKDEAD instance`: marks the worker dead and revokes its leases.
pub fn mark_dead(call: &Call) -> CmdResult<()> {
    let (args, at) = pinned_at(call.args, origin(call.ctx))?;
    let now = at.unwrap_or_else(now_ms);
    let [instance] = args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    with(|r| r.mark_dead(instance, now)).map_err(|e| CmdError(e.message().into()))?;
    let revoked = revoke_leases_of(call.ctx, instance, now);
    timer::note_workers_due(call.ctx);
    replicate_with(call, c"FF.MARKDEAD", &pins(at, now, &[]));
    Reply(call.ctx.ctx).uint(revoked as u64);
    Ok(())
}

/// Revokes every live lease `instance` holds on this node; deterministic
/// (partition order, then lease-expiry order) so replicas do the same.
pub fn revoke_leases_of(ctx: &Context, instance: &[u8], now: u64) -> usize {
    let db: c_int = db(ctx);
    let env = timer::env(now);
    let mut n = 0;
    for p in 0..config::partitions() {
        let key = keys::open_partition(ctx, p);
        let Ok(Some(part)) = keys::partition(&key) else {
            continue;
        };
        let held: Vec<_> = part.index.lease_expiry.iter().map(|(_, u)| u).collect();
        for uuid in held {
            let Some((idx, e)) = part.record_mut(uuid) else {
                continue;
            };
            if e.current_attempt()
                .is_none_or(|a| a.worker.instance() != instance)
            {
                continue;
            }
            let (r, moved) = engine::revoke(idx, e, None, &env);
            if r.is_ok() {
                n += 1;
                after_move(ctx, db, idx, &e.lane, &e.caps, moved);
            }
        }
        timer::note_due(ctx, db, &part.index);
    }
    n
}

/// Called by the timer on the primary: marks lapsed workers dead, revokes
/// their leases, and replicates each as FF.MARKDEAD with the time pinned.
pub fn expire_lapsed(ctx: &Context, now: u64) {
    let lapsed = with(|r| r.lapsed(now));
    for instance in lapsed {
        if with(|r| r.mark_dead(&instance, now)).is_ok() {
            revoke_leases_of(ctx, &instance, now);
            if propagation::needed_outside_command(ctx) {
                let at = now.to_string();
                ctx.replicate("FF.MARKDEAD", &[&instance[..], b"AT", at.as_bytes()][..]);
            }
        }
    }
}

/// `FF.WORKERS`: every registered instance.
pub fn list(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let workers = with(|r| r.workers.clone());
    let r = Reply(call.ctx.ctx);
    r.array(workers.len());
    for (instance, w) in &workers {
        let p = Pairs::start(&r, 8);
        p.bulk("worker_instance_id", instance)
            .bulk("worker_id", &w.worker_id)
            .bulk("capabilities", w.caps.as_str().as_bytes())
            .uint("ttl_ms", w.ttl_ms)
            .uint("registered_at", w.registered_at)
            .uint("last_heartbeat_at", w.last_heartbeat)
            .opt_uint("dead_at", w.dead_at);
        let lanes = p.key("lanes");
        lanes.array(w.lanes.len());
        for l in &w.lanes {
            lanes.bulk(l.as_bytes());
        }
    }
    Ok(())
}
