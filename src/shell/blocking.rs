//! Blocking claims. A claimer that finds no work waits in the claim
//! board's per-lane waiter lists (`RM_BlockClient`, never blocked on keys:
//! a cluster asserts that a blocked client's keys share one slot). When a
//! transition makes work claimable, the command (or timer firing) that did
//! it hands the work to the longest-waiting claimer that can take it, as
//! an ordinary claim replicated as FF.ACQUIRE, and wakes only that one: the
//! server then sends the grant from the reply callback.
//!
//! Every way a wait ends frees the blocked client exactly once: a hand-off
//! unblocks it with its grant; a timeout, CLIENT UNBLOCK, a disconnect, or
//! the node turning replica (the server unblocks every blocked client with
//! an error) lands in `on_timeout` or `on_disconnect`, which take it off the
//! board. A grant whose client vanished before the reply went out is given
//! back by the node timer (its lease revoked), instead of waiting for the
//! lease to run out.

use std::collections::HashMap;
use std::os::raw::{c_int, c_void};

use flowfabric_core::base::ids::{ExecId, Uuid};
use flowfabric_core::claims::requests::Claim;
use flowfabric_core::claims::Waiter;
use flowfabric_core::execution::{Execution, Grant};
use flowfabric_core::partition::moves;
use redis_module::{raw, Context};
use smallvec::SmallVec;

use crate::shell::access::Access;
use crate::shell::call::{db, select_db};
use crate::shell::claiming::{reply_grant, try_claim};
use crate::shell::guard::guard;
use crate::shell::node::{is_paused, now_ms, with_board, Blocked, Handle, SpinLock};
use crate::shell::reply::Reply;
use crate::shell::{effects, keys, schedule};

/// Hand-offs one command or timer firing makes; the rest continue in the
/// next timer firing, so a burst of work and claimers cannot stall the
/// event loop.
const HANDOFFS_PER_FLUSH: usize = 256;

/// Waiter ids by blocked client, for the server's callbacks (which name
/// the client, not the waiter).
type ByClient = HashMap<Handle, u64, ahash::RandomState>;
static BY_CLIENT: SpinLock<Option<ByClient>> = SpinLock::new(None);

fn by_client<R>(f: impl FnOnce(&mut ByClient) -> R) -> R {
    BY_CLIENT.with(|m| f(m.get_or_insert_with(HashMap::default)))
}

/// Leases granted to clients that vanished before the reply went out.
static UNDELIVERED: SpinLock<Vec<(c_int, ExecId, Uuid)>> = SpinLock::new(Vec::new());

/// Blocking is not possible inside MULTI, scripts, or where the server
/// denies it; those claims reply nil at once, as BLPOP does.
pub fn allowed(ctx: &Context) -> bool {
    // SAFETY: `ctx` is the live context of the current command.
    let f = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |g| g(ctx.ctx)) };
    let deny = raw::REDISMODULE_CTX_FLAGS_MULTI
        | raw::REDISMODULE_CTX_FLAGS_LUA
        | raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING;
    (f as u32) & deny == 0
}

/// Blocks the calling client until work for `c` arrives on `lanes` (all
/// the lanes it asked for, paused ones included) or `timeout_ms` passes
/// (0: no timeout). `user` is its ACL user, whose key permissions decide
/// what it may be handed (`None`: anything).
pub fn block_claim(
    ctx: &Context,
    c: &Claim,
    lanes: &[&str],
    timeout_ms: u64,
    user: Option<Box<[u8]>>,
) {
    // SAFETY: function pointers the server filled in at load.
    let (Some(block), Some(on_disconnect_set)) =
        (unsafe { raw::RedisModule_BlockClient }, unsafe {
            raw::RedisModule_SetDisconnectCallback
        })
    else {
        Reply(ctx.ctx).null();
        return;
    };
    let timeout = i64::try_from(timeout_ms).unwrap_or(i64::MAX);
    // SAFETY: `ctx` is the live context of the current command; the
    // callbacks are this module's `extern "C"` functions.
    let bc = unsafe {
        block(
            ctx.ctx,
            Some(on_reply),
            Some(on_timeout),
            Some(on_free),
            timeout,
        )
    };
    if bc.is_null() {
        Reply(ctx.ctx).null();
        return;
    }
    // SAFETY: `bc` is the blocked client just created.
    unsafe { on_disconnect_set(bc, Some(on_disconnect)) };
    let handle = Handle(bc);
    let blocked = Blocked {
        handle,
        user,
        worker_id: c.worker_id.into(),
        worker_instance_id: c.worker_instance_id.into(),
        lease_ms: c.lease_ms,
    };
    let id = with_board(|b| b.add_waiter(db(ctx), lanes, &c.caps, blocked));
    by_client(|m| m.insert(handle, id));
}

/// Notes every set of `lane` with work and claimers that can take it (a
/// lane was resumed).
pub fn note_lane(lane: &str) {
    for (db, caps) in with_board(|b| b.wanted_on(lane)) {
        effects::note_wanted(db, lane, &caps);
    }
}

/// Hands noted work to blocked claimers, longest-waiting first, at most
/// `HANDOFFS_PER_FLUSH` of them; the rest is left for the timer. A claimer
/// whose ACL allows none of the work stays blocked and the next one is
/// tried (at most `HANDOFFS_PER_FLUSH` refusals a flush, after which the
/// timer goes on past the claimers refused so far).
pub fn flush(ctx: &Context) {
    if !effects::wanted_pending() {
        return;
    }
    let mut budget = HANDOFFS_PER_FLUSH;
    let mut refusals = HANDOFFS_PER_FLUSH;
    let home = db(ctx);
    while let Some((wdb, lane, caps, resume)) = effects::next_wanted() {
        if is_paused(&lane) {
            continue;
        }
        if wdb != home {
            select_db(ctx, wdb);
        }
        // Past the claimers an earlier flush found refused for this work.
        let mut after = resume;
        let mut exhausted = false;
        while budget > 0 {
            let Some(id) = with_board(|b| b.waiter_after(wdb, &lane, &caps, after)) else {
                break;
            };
            match serve(ctx, id) {
                Served::Yes => budget -= 1,
                Served::Nothing => break,
                Served::Refused(w) => {
                    // Back in its place (its id keeps its turn); the next
                    // claimer after it is tried.
                    with_board(|b| b.restore_waiter(id, w));
                    after = Some(id);
                    refusals = refusals.saturating_sub(1);
                    if refusals == 0 {
                        exhausted = true;
                        break;
                    }
                }
            }
        }
        if wdb != home {
            select_db(ctx, home);
        }
        if budget == 0 {
            effects::note_wanted(wdb, &lane, &caps);
            schedule::soon(ctx);
            break;
        }
        if exhausted {
            // The timer goes on with this work past the claimers refused
            // so far, and with any other noted work.
            match after {
                Some(id) => effects::note_wanted_after(wdb, &lane, &caps, id),
                None => effects::note_wanted(wdb, &lane, &caps),
            }
            schedule::soon(ctx);
            break;
        }
    }
}

/// What serving a blocked claimer came to.
enum Served {
    /// It was handed work and woken.
    Yes,
    /// There was nothing to claim after all; it keeps its place.
    Nothing,
    /// Its ACL allows none of the work there is: still blocked, but off
    /// the board for the caller to put back, so the next claimer is tried.
    Refused(Waiter<Blocked>),
}

/// What a woken claimer is sent.
struct Outcome {
    id: Vec<u8>,
    payload: Vec<u8>,
    grant: Grant,
    db: c_int,
    exec: ExecId,
    delivered: bool,
}

/// Claims for waiter `id`, within its user's key permissions, and wakes
/// it with the grant.
fn serve(ctx: &Context, id: u64) -> Served {
    let Some(w) = with_board(|b| b.remove_waiter(id)) else {
        return Served::Nothing;
    };
    let mut access = Access::named(w.data.user.as_deref());
    let claimed = {
        let lanes: SmallVec<[&str; 4]> = w
            .lanes
            .iter()
            .map(|l| &**l)
            .filter(|l| !is_paused(l))
            .collect();
        let c = Claim {
            worker_id: &w.data.worker_id,
            worker_instance_id: &w.data.worker_instance_id,
            lanes,
            caps: w.caps.clone(),
            lease_ms: w.data.lease_ms,
            block_ms: None,
        };
        let granted = |id: &[u8], e: &Execution, g: &Grant| Outcome {
            id: id.to_vec(),
            payload: e.payload.to_vec(),
            grant: g.clone(),
            db: w.db,
            exec: e.id,
            delivered: false,
        };
        try_claim(ctx, &c, now_ms(), &mut access, granted)
    };
    match claimed {
        Ok(Some(outcome)) => {
            let handle = w.data.handle;
            by_client(|m| m.remove(&handle));
            // SAFETY: a function pointer the server filled in at load.
            if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
                let data = Box::into_raw(Box::new(outcome));
                // SAFETY: `handle` is a client still blocked (it was on the
                // board); the server passes `data` to `on_reply` and
                // `on_free`, which takes it back.
                unsafe { unblock(handle.0, data.cast()) };
            }
            Served::Yes
        }
        _ if access.refused() => Served::Refused(w),
        _ => {
            with_board(|b| b.restore_waiter(id, w));
            Served::Nothing
        }
    }
}

/// Runs when the server replies to a woken claimer: sends its grant.
unsafe extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    guard("a blocked claim's reply", (), || {
        // SAFETY: `ctx` is the reply callback's context; its private data is
        // the `Outcome` `serve` passed, alive until `on_free`.
        let data = unsafe { raw::RedisModule_GetBlockedClientPrivateData.map(|f| f(ctx)) };
        let outcome = data.and_then(|d| unsafe { d.cast::<Outcome>().as_mut() });
        let r = Reply(ctx);
        match outcome {
            Some(o) => {
                reply_grant(&r, &o.id, &o.payload, &o.grant);
                o.delivered = true;
            }
            None => r.null(),
        }
    });
    raw::REDISMODULE_OK as c_int
}

/// The wait ran out (or CLIENT UNBLOCK asked for a timeout): nil.
unsafe extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    guard("a blocked claim's timeout", (), || {
        // SAFETY: `ctx` is the timeout callback's context.
        let bc = unsafe { raw::RedisModule_GetBlockedClientHandle.map(|f| f(ctx)) };
        if let Some(bc) = bc.filter(|b| !b.is_null()) {
            forget(bc);
        }
    });
    raw::reply_with_null(ctx);
    raw::REDISMODULE_OK as c_int
}

/// The client went away, or was unblocked with an error (CLIENT UNBLOCK
/// ERROR, or the node turning replica): the server has replied.
unsafe extern "C" fn on_disconnect(
    _ctx: *mut raw::RedisModuleCtx,
    bc: *mut raw::RedisModuleBlockedClient,
) {
    if !bc.is_null() {
        guard("a blocked claim's disconnect", (), || forget(bc));
    }
}

/// Takes a waiting client off the board and lets the server free its
/// handle. A client already woken (its grant on the way) is left alone:
/// its handle is freed with the grant.
fn forget(bc: *mut raw::RedisModuleBlockedClient) {
    let Some(id) = by_client(|m| m.remove(&Handle(bc))) else {
        return;
    };
    with_board(|b| b.remove_waiter(id));
    // SAFETY: a function pointer the server filled in at load; `bc` is
    // blocked and was not unblocked before (it was still in `BY_CLIENT`).
    if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
        unsafe { unblock(bc, std::ptr::null_mut()) };
    }
}

/// Frees a woken claimer's grant; one that never reached its client is
/// given back by the timer.
unsafe extern "C" fn on_free(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: `data` is the `Outcome` boxed in `serve`; the server frees
    // each blocked client's data once.
    let o = unsafe { Box::from_raw(data.cast::<Outcome>()) };
    guard("freeing a blocked claim", (), || {
        if !o.delivered {
            UNDELIVERED.with(|u| u.push((o.db, o.exec, o.grant.lease_id)));
            schedule::soon(&Context::new(ctx));
        }
    });
}

pub fn has_undelivered() -> bool {
    UNDELIVERED.with(|u| !u.is_empty())
}

/// Revokes leases granted to blocked claimers that vanished before their
/// reply went out (from the timer), replicated as FF.REVOKE with the lease
/// and time pinned: the work is claimable again at once rather than when
/// the lease runs out.
pub fn give_back(ctx: &Context, now: u64) {
    let grants = UNDELIVERED.with(std::mem::take);
    if grants.is_empty() {
        return;
    }
    let env = schedule::env(now);
    let home = db(ctx);
    for (gdb, id, lease) in grants {
        select_db(ctx, gdb);
        let mut key = keys::open_partition(ctx, id.partition);
        let Ok((idx, e)) = keys::exec_in(&mut key, &id) else {
            continue;
        };
        let (r, moved) = moves::revoke(idx, e, Some(lease), &env);
        effects::after_move(ctx, gdb, idx, e, moved);
        if moved.due {
            schedule::note_due(ctx, gdb, idx);
        }
        if r.is_ok() {
            effects::replicate_revoke(ctx, &id, lease, &env);
            effects::drain_key(ctx, &mut key, &env);
        }
    }
    select_db(ctx, home);
}
