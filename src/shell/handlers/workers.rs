//! The workers domain's commands: the node's registry (FF.REGISTER,
//! FF.HEARTBEAT, FF.MARKDEAD, FF.WORKERS) and the leases an instance holds
//! (FF.LEASES). Node-wide like claims: in a cluster a worker registers with
//! each primary it claims from. Registry changes are replicated as the
//! commands with their time pinned and persisted as RDB aux data (`aux`).

use flowfabric_core::base::errors::{CmdError, CmdResult};
use flowfabric_core::base::ids::ExecId;
use flowfabric_core::base::state::OwnershipState;
use flowfabric_core::workers::requests::{parse_register, split_pinned_at};
use flowfabric_core::workers::{LeaseRef, Worker};

use crate::shell::call::{db, Call};
use crate::shell::effects::{env_for, pins, replicate_with};
use crate::shell::node::{now_ms, with_leases, with_registry};
use crate::shell::reply::{Pairs, Reply};
use crate::shell::revocations::{continue_later, replicate_mark, revoke_some, REVOKE_INLINE};
use crate::shell::{keys, schedule};

/// `FF.REGISTER instance worker_id ttl_ms [CAPS csv] [LANES n lane ...]`.
pub fn register(call: &Call) -> CmdResult<()> {
    let (args, at) = split_pinned_at(call.args, call.origin())?;
    let now = at.unwrap_or_else(now_ms);
    let req = parse_register(args)?;
    let w = Worker {
        worker_id: req.worker_id.into(),
        lanes: req.lanes,
        caps: req.caps,
        ttl_ms: req.ttl_ms,
        registered_at: now,
        last_heartbeat: now,
        dead_at: None,
    };
    with_registry(|r| r.register(req.instance, w));
    schedule::note_workers_due(call.ctx);
    replicate_with(call, c"FF.REGISTER", &pins(at, now, &[]));
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.HEARTBEAT instance`.
pub fn heartbeat(call: &Call) -> CmdResult<()> {
    let (args, at) = split_pinned_at(call.args, call.origin())?;
    let now = at.unwrap_or_else(now_ms);
    let [instance] = args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    with_registry(|r| r.heartbeat(instance, now))?;
    schedule::note_workers_due(call.ctx);
    replicate_with(call, c"FF.HEARTBEAT", &pins(at, now, &[]));
    Reply(call.ctx.ctx).ok();
    Ok(())
}

/// `FF.MARKDEAD instance`: marks the worker dead and revokes its leases
/// (some now, the rest in the next timer firings); replies how many it
/// held. From the primary or the AOF (`NOREVOKE AT t`) only the mark.
pub fn mark_dead(call: &Call) -> CmdResult<()> {
    let (args, at) = split_pinned_at(call.args, call.origin())?;
    let now = at.unwrap_or_else(now_ms);
    let (instance, revoke) = match args {
        [instance] => (instance, true),
        [instance, flag] if flag.eq_ignore_ascii_case(b"NOREVOKE") && at.is_some() => {
            (instance, false)
        }
        _ => return Err(CmdError::syntax("wrong number of arguments")),
    };
    with_registry(|r| r.mark_dead(instance, now))?;
    schedule::note_workers_due(call.ctx);
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
                continue_later(call.ctx, instance);
            }
        }
    }
    Reply(call.ctx.ctx).uint(if revoke { held as u64 } else { 0 });
    Ok(())
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
            .as_mut()
            .and_then(|(_, k)| k.partition().ok().flatten());
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
    r.map(found.len());
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
    let workers = with_registry(|r| r.workers().clone());
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
