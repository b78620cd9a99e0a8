//! The node's worker registry (FF.REGISTER, FF.HEARTBEAT, FF.MARKDEAD,
//! FF.WORKERS) and its per-worker lease index (FF.LEASES). Node-wide like
//! claims: in a cluster a worker registers with each primary it claims
//! from. Registry changes are replicated as the commands (time pinned) and
//! persisted with the paused lanes as RDB aux data.
//!
//! A worker that is marked dead (FF.MARKDEAD, or its heartbeat lapsed and
//! the timer noticed) loses its leases: a few at once, the rest in timer
//! batches, each revoke replicated as FF.REVOKE with its values pinned. The
//! registry change itself is replicated as `FF.MARKDEAD instance NOREVOKE
//! AT t`, so a replica or an AOF replay marks the worker and leaves the
//! revoking to the FF.REVOKEs that follow.

use std::collections::VecDeque;
use std::os::raw::c_int;

use redis_module::{raw, Context};

use crate::core::args::{CmdError, CmdResult};
use crate::core::engine;
use crate::core::execution::Execution;
use crate::core::ids::ExecId;
use crate::core::leases::{LeaseRef, WorkerLeases};
use crate::core::requests;
use crate::core::state::OwnershipState;
use crate::core::workers::{Registry, Worker};
use crate::shell::globals::{now_ms, SpinLock};
use crate::shell::handlers::{
    after_move, db, env_for, origin, pins, replicate_revoke, replicate_with,
};
use crate::shell::registry::Call;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::{keys, timer};

static REGISTRY: SpinLock<Option<Registry>> = SpinLock::new(None);
static LEASES: SpinLock<Option<WorkerLeases>> = SpinLock::new(None);
/// Dead workers whose leases are still being revoked, oldest first.
static REVOKING: SpinLock<VecDeque<Box<[u8]>>> = SpinLock::new(VecDeque::new());

/// Leases FF.MARKDEAD revokes itself; the rest go to the timer.
const REVOKE_INLINE: usize = 128;
/// Lapsed workers the timer marks dead per firing.
const LAPSES_PER_FIRING: usize = 64;

pub fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|r| f(r.get_or_insert_with(Registry::default)))
}

fn with_leases<R>(f: impl FnOnce(&mut WorkerLeases) -> R) -> R {
    LEASES.with(|l| f(l.get_or_insert_with(WorkerLeases::default)))
}

/// Follows a transition that gave `e`'s current attempt a lease (`gained`)
/// or took it away.
pub fn lease_moved(db: c_int, e: &Execution, gained: bool) {
    let Some(a) = e.current_attempt() else {
        return;
    };
    let r = (db, e.id.partition, e.id.uuid);
    with_leases(|l| {
        if gained {
            l.add(a.worker.instance(), r);
        } else {
            l.remove(a.worker.instance(), &r);
        }
    });
}

/// Indexes the live leases of a partition that was just loaded.
pub fn leases_loaded<'a>(db: c_int, records: impl Iterator<Item = &'a Execution>) {
    with_leases(|l| {
        for e in records {
            if crate::shell::migration::is_importing(e.id.partition) {
                continue;
            }
            if let (Some(_), OwnershipState::Leased) = (&e.lease, e.ownership) {
                if let Some(a) = e.current_attempt() {
                    l.add(a.worker.instance(), (db, e.id.partition, e.id.uuid));
                }
            }
        }
    });
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

/// `FF.MARKDEAD instance`: marks the worker dead and revokes its leases
/// (some now, the rest in the next timer firings); replies how many it
/// held. From the primary or the AOF (`NOREVOKE AT t`) only the mark.
pub fn mark_dead(call: &Call) -> CmdResult<()> {
    let (args, at) = requests::split_pinned_at(call.args, origin(call.ctx))?;
    let now = at.unwrap_or_else(now_ms);
    let (instance, revoke) = match args {
        [instance] => (instance, true),
        [instance, flag] if flag.eq_ignore_ascii_case(b"NOREVOKE") && at.is_some() => {
            (instance, false)
        }
        _ => return Err(CmdError::syntax("wrong number of arguments")),
    };
    with(|r| r.mark_dead(instance, now)).map_err(|e| CmdError(e.message().into()))?;
    timer::note_workers_due(call.ctx);
    let held = with_leases(|l| l.count(instance));
    let env = env_for(call, now);
    match (revoke, at) {
        (false, _) => call.ctx.replicate_verbatim(),
        // An AOF written before revocations were replicated one by one:
        // revoke them all here, as that version did.
        (true, Some(_)) => {
            revoke_some(call.ctx, instance, usize::MAX, &env, None, false);
            call.ctx.replicate_verbatim();
        }
        (true, None) => {
            replicate_mark(call.ctx, instance, now);
            if revoke_some(call.ctx, instance, REVOKE_INLINE, &env, None, true) {
                REVOKING.with(|q| q.push_back(instance.as_ref().into()));
                timer::soon(call.ctx);
            }
        }
    }
    Reply(call.ctx.ctx).uint(if revoke { held as u64 } else { 0 });
    Ok(())
}

fn replicate_mark(ctx: &Context, instance: &[u8], now: u64) {
    let at = now.to_string();
    ctx.replicate(
        "FF.MARKDEAD",
        &[instance, b"NOREVOKE", b"AT", at.as_bytes()][..],
    );
}

fn select_db(ctx: &Context, db: c_int) {
    if let Some(select) = unsafe { raw::RedisModule_SelectDb } {
        unsafe { select(ctx.ctx, db) };
    }
}

/// Revokes up to `max` of `instance`'s live leases (stopping early at
/// `until`), each replicated as FF.REVOKE when `replicate`; true when some
/// are left.
fn revoke_some(
    ctx: &Context,
    instance: &[u8],
    max: usize,
    env: &engine::Env,
    until: Option<std::time::Instant>,
    replicate: bool,
) -> bool {
    let home = db(ctx);
    let batch = with_leases(|l| l.page(instance, None, max));
    for (i, &(rdb, partition, uuid)) in batch.iter().enumerate() {
        if i % 16 == 0 && until.is_some_and(|t| std::time::Instant::now() >= t) {
            break;
        }
        if rdb != db(ctx) {
            select_db(ctx, rdb);
        }
        let id = ExecId { partition, uuid };
        let held = keys::require_exec(ctx, &id).ok().and_then(|(key, idx, e)| {
            let lease = e.lease.as_ref().map(|l| l.lease_id)?;
            let ours = e.ownership == OwnershipState::Leased
                && e.current_attempt()
                    .is_some_and(|a| a.worker.instance() == instance);
            ours.then_some((key, idx, e, lease))
        });
        let Some((_key, idx, e, lease)) = held else {
            // Gone, or no longer this worker's: a stale entry.
            with_leases(|l| l.remove(instance, &(rdb, partition, uuid)));
            continue;
        };
        let (r, moved) = engine::revoke(idx, e, Some(lease), env);
        after_move(rdb, idx, e, moved);
        if moved.due {
            timer::note_due(ctx, rdb, idx);
        }
        if r.is_ok() {
            if replicate {
                replicate_revoke(ctx, &id, lease, env);
            }
        } else {
            with_leases(|l| l.remove(instance, &(rdb, partition, uuid)));
        }
    }
    if db(ctx) != home {
        select_db(ctx, home);
    }
    with_leases(|l| l.count(instance)) > 0
}

/// Called by the timer on the primary: marks lapsed workers dead (a
/// bounded number per firing), and continues revoking dead workers'
/// leases until `until`. True when work is left for the next firing.
pub fn run_due(ctx: &Context, now: u64, until: std::time::Instant) -> bool {
    let lapsed = with(|r| r.lapsed(now, LAPSES_PER_FIRING));
    let more_lapsed = lapsed.len() == LAPSES_PER_FIRING;
    for instance in lapsed {
        if with(|r| r.mark_dead(&instance, now)).is_ok() {
            replicate_mark(ctx, &instance, now);
            REVOKING.with(|q| q.push_back(instance));
        }
    }
    let env = timer::env(now);
    while let Some(instance) = REVOKING.with(|q| q.front().cloned()) {
        if std::time::Instant::now() >= until {
            return true;
        }
        if revoke_some(ctx, &instance, 256, &env, Some(until), true) {
            continue;
        }
        REVOKING.with(|q| q.pop_front());
    }
    more_lapsed
}

/// `FF.LEASES instance`: the live leases `instance` holds in this db, each
/// checked against its record.
pub fn leases(call: &Call) -> CmdResult<()> {
    let [instance] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let here = db(call.ctx);
    let refs = with_leases(|l| l.page(instance, None, usize::MAX));
    let mut found: Vec<(ExecId, u64)> = Vec::with_capacity(refs.len());
    let mut stale: Vec<LeaseRef> = Vec::new();
    // Sorted by (db, partition): each partition is opened once.
    let mut open: Option<(u16, keys::Key)> = None;
    for r @ (rdb, partition, uuid) in refs {
        if rdb != here {
            continue;
        }
        if open.as_ref().is_none_or(|(p, _)| *p != partition) {
            open = Some((partition, keys::open_partition(call.ctx, partition)));
        }
        let part = open
            .as_ref()
            .and_then(|(_, k)| keys::partition(k).ok().flatten());
        let live = part.and_then(|p| p.get(uuid)).and_then(|e| {
            let held = e.ownership == OwnershipState::Leased
                && e.current_attempt()
                    .is_some_and(|a| a.worker.instance() == *instance);
            e.lease.as_ref().filter(|_| held).map(|l| l.expires_at)
        });
        match live {
            Some(expires) => found.push((ExecId { partition, uuid }, expires)),
            None => stale.push(r),
        }
    }
    with_leases(|l| {
        for r in &stale {
            l.remove(instance, r);
        }
    });
    let r = Reply(call.ctx.ctx);
    r.array(found.len() * 2);
    for (id, expires) in &found {
        r.bulk(id.text().as_bytes());
        r.uint(*expires);
    }
    Ok(())
}

/// `FF.WORKERS`: every registered instance.
pub fn list(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let workers = with(|r| r.workers().clone());
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
