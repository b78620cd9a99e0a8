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
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::{raw, Context};
use smallvec::SmallVec;

use crate::core::caps::CapSet;
use crate::core::execution::{Execution, Grant};
use crate::core::ids::{ExecId, Uuid};
use crate::core::requests::Claim;
use crate::shell::globals::{now_ms, with_board, SpinLock};
use crate::shell::handlers::{db, reply_grant, try_claim};
use crate::shell::reply::Reply;
use crate::shell::{lanes, timer};

/// Hand-offs one command or timer firing makes; the rest continue in the
/// next timer firing, so a burst of work and claimers cannot stall the
/// event loop.
const HANDOFFS_PER_FLUSH: usize = 256;

/// The server's handle of a blocked client.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Handle(*mut raw::RedisModuleBlockedClient);
// SAFETY: handles are only used on the server's main thread.
unsafe impl Send for Handle {}

/// What the shell keeps about a blocked claimer besides where it waits.
pub struct Blocked {
    handle: Handle,
    worker_id: Box<[u8]>,
    worker_instance_id: Box<[u8]>,
    lease_ms: u64,
}

/// Waiter ids by blocked client, for the server's callbacks (which name
/// the client, not the waiter).
static BY_CLIENT: SpinLock<Option<HashMap<Handle, u64, ahash::RandomState>>> = SpinLock::new(None);

fn by_client<R>(f: impl FnOnce(&mut HashMap<Handle, u64, ahash::RandomState>) -> R) -> R {
    BY_CLIENT.with(|m| f(m.get_or_insert_with(HashMap::default)))
}

/// Work some blocked claimer may take: (db, lane, required caps).
type Wanted = (c_int, Box<str>, CapSet);

static PENDING: SpinLock<Vec<Wanted>> = SpinLock::new(Vec::new());
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// Leases granted to clients that vanished before the reply went out.
static UNDELIVERED: SpinLock<Vec<(c_int, ExecId, Uuid)>> = SpinLock::new(Vec::new());

/// Blocking is not possible inside MULTI, scripts, or where the server
/// denies it; those claims reply nil at once, as BLPOP does.
pub fn allowed(ctx: &Context) -> bool {
    let f = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |g| g(ctx.ctx)) };
    let deny = raw::REDISMODULE_CTX_FLAGS_MULTI
        | raw::REDISMODULE_CTX_FLAGS_LUA
        | raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING;
    (f as u32) & deny == 0
}

/// Blocks the calling client until work for `c` arrives on `lanes` (all
/// the lanes it asked for, paused ones included) or `timeout_ms` passes
/// (0: no timeout).
pub fn block_claim(ctx: &Context, c: &Claim, lanes: &[&str], timeout_ms: u64) {
    let (Some(block), Some(on_disconnect_set)) =
        (unsafe { raw::RedisModule_BlockClient }, unsafe {
            raw::RedisModule_SetDisconnectCallback
        })
    else {
        Reply(ctx.ctx).null();
        return;
    };
    let timeout = i64::try_from(timeout_ms).unwrap_or(i64::MAX);
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
    unsafe { on_disconnect_set(bc, Some(on_disconnect)) };
    let handle = Handle(bc);
    let blocked = Blocked {
        handle,
        worker_id: c.worker_id.into(),
        worker_instance_id: c.worker_instance_id.into(),
        lease_ms: c.lease_ms,
    };
    let id = with_board(|b| b.add_waiter(db(ctx), lanes, &c.caps, blocked));
    by_client(|m| m.insert(handle, id));
}

/// Notes that (db, lane, caps) has work a blocked claimer may take; the
/// hand-off happens in `flush`, after the command has replicated itself,
/// so FF.ACQUIRE follows what made the work claimable.
pub fn note_wanted(db: c_int, lane: &str, caps: &CapSet) {
    PENDING.with(|p| p.push((db, lane.into(), caps.clone())));
    ANY_PENDING.store(true, Ordering::Relaxed);
}

/// Notes every set of `lane` with work and claimers that can take it (a
/// lane was resumed).
pub fn note_lane(lane: &str) {
    for (db, caps) in with_board(|b| b.wanted_on(lane)) {
        note_wanted(db, lane, &caps);
    }
}

/// True when hand-offs are pending (cheap: one atomic load).
pub fn pending() -> bool {
    ANY_PENDING.load(Ordering::Relaxed)
}

/// Hands noted work to blocked claimers, longest-waiting first, at most
/// `HANDOFFS_PER_FLUSH` of them; the rest is left for the timer.
pub fn flush(ctx: &Context) {
    if !pending() {
        return;
    }
    let mut budget = HANDOFFS_PER_FLUSH;
    let home = db(ctx);
    loop {
        let next = PENDING.with(|p| {
            let n = p.pop();
            if p.is_empty() {
                ANY_PENDING.store(false, Ordering::Relaxed);
            }
            n
        });
        let Some((wdb, lane, caps)) = next else {
            break;
        };
        if lanes::is_paused(&lane) {
            continue;
        }
        if wdb != home {
            select_db(ctx, wdb);
        }
        while budget > 0 {
            let Some(id) = with_board(|b| b.waiter_for(wdb, &lane, &caps)) else {
                break;
            };
            budget -= 1;
            if !serve(ctx, id) {
                break;
            }
        }
        if wdb != home {
            select_db(ctx, home);
        }
        if budget == 0 {
            note_wanted(wdb, &lane, &caps);
            timer::soon(ctx);
            break;
        }
    }
}

fn select_db(ctx: &Context, db: c_int) {
    if let Some(select) = unsafe { raw::RedisModule_SelectDb } {
        unsafe { select(ctx.ctx, db) };
    }
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

/// Claims for waiter `id` and wakes it with the grant; false (and the
/// waiter keeps its place) when there was nothing to claim after all.
fn serve(ctx: &Context, id: u64) -> bool {
    let Some(w) = with_board(|b| b.remove_waiter(id)) else {
        return false;
    };
    let claimed = {
        let lanes: SmallVec<[&str; 4]> = w
            .lanes
            .iter()
            .map(|l| &**l)
            .filter(|l| !lanes::is_paused(l))
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
        try_claim(ctx, &c, now_ms(), granted)
    };
    match claimed {
        Ok(Some(outcome)) => {
            let handle = w.data.handle;
            by_client(|m| m.remove(&handle));
            if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
                let data = Box::into_raw(Box::new(outcome));
                unsafe { unblock(handle.0, data.cast()) };
            }
            true
        }
        _ => {
            with_board(|b| b.restore_waiter(id, w));
            false
        }
    }
}

/// Runs when the server replies to a woken claimer: sends its grant.
unsafe extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
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
    raw::REDISMODULE_OK as c_int
}

/// The wait ran out (or CLIENT UNBLOCK asked for a timeout): nil.
unsafe extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let bc = unsafe { raw::RedisModule_GetBlockedClientHandle.map(|f| f(ctx)) };
    if let Some(bc) = bc.filter(|b| !b.is_null()) {
        forget(bc);
    }
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
        forget(bc);
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
    let o = unsafe { Box::from_raw(data.cast::<Outcome>()) };
    if !o.delivered {
        UNDELIVERED.with(|u| u.push((o.db, o.exec, o.grant.lease_id)));
        timer::soon(&Context::new(ctx));
    }
}

/// Grants whose client vanished, to be revoked.
pub fn take_undelivered() -> Vec<(c_int, ExecId, Uuid)> {
    UNDELIVERED.with(std::mem::take)
}

pub fn has_undelivered() -> bool {
    UNDELIVERED.with(|u| !u.is_empty())
}
