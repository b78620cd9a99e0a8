//! The node's worker registry (FF.REGISTER, FF.HEARTBEAT, FF.MARKDEAD,
//! FF.WORKERS). Node-wide like claims: in a cluster a worker registers with
//! each primary it claims from. Replicated as the commands (time pinned),
//! persisted with the paused lanes as RDB aux data. A worker whose heartbeat
//! lapses is marked dead by the node timer, which revokes its leases here.

use std::os::raw::c_int;

use redis_module::Context;

use crate::core::args::{CmdError, CmdResult};
use crate::core::engine;
use crate::core::requests;
use crate::core::workers::{Registry, Worker};
use crate::shell::globals::{now_ms, SpinLock};
use crate::shell::handlers::{after_move, db, origin, pins, replicate_with};
use crate::shell::registry::Call;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::{config, keys, timer};

static REGISTRY: SpinLock<Option<Registry>> = SpinLock::new(None);

pub fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|r| f(r.get_or_insert_with(Registry::default)))
}

/// `FF.REGISTER instance worker_id ttl_ms [CAPS csv] [LANES n lane ...]`.
pub fn register(call: &Call) -> CmdResult<()> {
    let (args, at) = requests::split_pinned_at(call.args, origin(call.ctx))?;
    let now = at.unwrap_or_else(now_ms);
    let req = requests::parse_register(args)?;
    let w = Worker {
        worker_id: req.worker_id.into(),
        lanes: req.lanes,
        caps: req.caps,
        ttl_ms: req.ttl_ms,
        registered_at: now,
        last_heartbeat: now,
        dead_at: None,
    };
    with(|r| r.register(req.instance, w));
    timer::note_workers_due(call.ctx);
    replicate_with(call, c"FF.REGISTER", &pins(at, now, &[]));
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.HEARTBEAT instance`.
pub fn heartbeat(call: &Call) -> CmdResult<()> {
    let (args, at) = requests::split_pinned_at(call.args, origin(call.ctx))?;
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
    let (args, at) = requests::split_pinned_at(call.args, origin(call.ctx))?;
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
                after_move(db, idx, &e.lane, &e.caps, moved);
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
            let at = now.to_string();
            ctx.replicate("FF.MARKDEAD", &[&instance[..], b"AT", at.as_bytes()][..]);
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
