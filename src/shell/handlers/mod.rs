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
use crate::core::index::{Head, PartitionIndex};
use crate::core::partition::Partition;
use crate::core::requests::{self, Acquire, AskOrigin, Claim, Origin};
use crate::core::state::PublicState;
use crate::shell::globals::{
    cluster_mode, lane_name, now_ms, with_board, with_minter, worker_caps,
};
use crate::shell::keys;
use crate::shell::registry::Call;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::types::{self, TAG_EXEC, TAG_PARTITION};
use crate::shell::{blocking, config, held, lanes, migration, timer, workers};

mod claim;
mod node;
mod reads;
mod submit;
mod transitions;

pub use claim::{acquire, claim, reply_grant, try_claim};
pub use node::{due, loadrec, pause, resume};
pub use reads::{get, get_tags, lanes_cmd, list, partition, paused, payload, result, version};
pub use submit::submit;
pub use transitions::{
    block, cancel, complete, delay, fail, give_back, priority, progress, renew, replay,
    replicate_revoke, revoke, set_tags, unblock, wait_children,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Only the primary's stream and the AOF may carry pinned values.
pub fn replicated(ctx: &Context) -> bool {
    let f = ctx.get_flags();
    f.contains(ContextFlags::REPLICATED) || f.contains(ContextFlags::LOADING)
}

/// Refuses an internal command (`name`) unless the primary or the AOF sent it.
fn internal_only(ctx: &Context, name: &str) -> CmdResult<()> {
    if replicated(ctx) {
        return Ok(());
    }
    Err(CmdError::syntax(format!(
        "{name} is internal: only the primary and the AOF send it"
    )))
}

impl AskOrigin for Context {
    fn is_replicated(&self) -> bool {
        replicated(self)
    }
}

/// The call's origin, asked of the server only if a pinned value appears.
pub fn origin(ctx: &Context) -> Origin<'_> {
    Origin::Ask(ctx)
}

pub fn db(ctx: &Context) -> c_int {
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.ctx)) }
}

/// At most three pinned values (the time, one more, the reclaim limit),
/// in a fixed array: built on every write, replicated or not, so no growth
/// checks.
pub(crate) struct Pins<'a> {
    items: [(&'a CStr, u64); 3],
    len: usize,
}

impl<'a> std::ops::Deref for Pins<'a> {
    type Target = [(&'a CStr, u64)];
    fn deref(&self) -> &Self::Target {
        self.items.get(..self.len).unwrap_or_default()
    }
}

/// The values a replica must not compute itself: `AT now` unless the call
/// already carried its time, then any extra pinned values (one at most).
pub(crate) fn pins<'a>(at: Option<u64>, now: u64, extra: &[(&'a CStr, u64)]) -> Pins<'a> {
    debug_assert!(extra.len() <= 1, "one extra pinned value at most");
    let mut p = Pins {
        items: [(c"AT", now); 3],
        len: usize::from(at.is_none()),
    };
    if let Some(&x) = extra.first() {
        p.push(x);
    }
    p
}

impl<'a> Pins<'a> {
    fn push(&mut self, x: (&'a CStr, u64)) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = x;
            self.len += 1;
        }
    }

    /// Appends the reclaim limit the transition used (always last, where
    /// the replica's dispatch looks for it).
    pub(crate) fn with_max_reclaims(mut self, env: &Env) -> Pins<'a> {
        self.push((c"MAX_RECLAIMS", u64::from(env.max_reclaims)));
        self
    }
}

/// Settings for a transition made now by `call`: the configured ones, with
/// the reclaim limit the primary pinned when the call was replicated.
pub fn env_for(call: &Call, now: u64) -> Env {
    let mut env = timer::env(now);
    if let Some(m) = call.max_reclaims {
        env.max_reclaims = m;
    }
    env
}

/// Replicates the call, its arguments passed by reference (client payloads
/// are not copied), with `first` replacing its first argument, followed by
/// the pinned values.
fn replicate_call(call: &Call, name: &CStr, first: Option<&[u8]>, pins: &[(&CStr, u64)]) {
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (ctx, name) = (call.ctx.ctx, name.as_ptr());
    let (head, rest) = match (first, call.argv.split_first()) {
        (Some(id), Some((_, rest))) => (Some((id.as_ptr(), id.len())), rest),
        _ => (None, call.argv),
    };
    let (v, n) = (rest.as_ptr(), rest.len());
    let val = |i: usize| {
        pins.get(i)
            .map_or(0, |p| i64::try_from(p.1).unwrap_or(i64::MAX))
    };
    let key = |i: usize| pins.get(i).map_or(c"".as_ptr(), |p| p.0.as_ptr());
    let (k0, v0, k1, v1, k2, v2) = (key(0), val(0), key(1), val(1), key(2), val(2));
    unsafe {
        match (head, pins.len()) {
            (Some((id, len)), 0) => f(ctx, name, c"bv".as_ptr(), id, len, v, n),
            (Some((id, len)), 1) => f(ctx, name, c"bvcl".as_ptr(), id, len, v, n, k0, v0),
            (Some((id, len)), 2) => f(ctx, name, c"bvclcl".as_ptr(), id, len, v, n, k0, v0, k1, v1),
            (Some((id, len)), _) => f(
                ctx,
                name,
                c"bvclclcl".as_ptr(),
                id,
                len,
                v,
                n,
                k0,
                v0,
                k1,
                v1,
                k2,
                v2,
            ),
            (None, 0) => f(ctx, name, c"v".as_ptr(), v, n),
            (None, 1) => f(ctx, name, c"vcl".as_ptr(), v, n, k0, v0),
            (None, 2) => f(ctx, name, c"vclcl".as_ptr(), v, n, k0, v0, k1, v1),
            (None, _) => f(ctx, name, c"vclclcl".as_ptr(), v, n, k0, v0, k1, v1, k2, v2),
        }
    };
}

pub(crate) fn replicate_with(call: &Call, name: &CStr, pins: &[(&CStr, u64)]) {
    replicate_call(call, name, None, pins);
}

fn refresh_hint(db: c_int, idx: &PartitionIndex, lane: &str, caps: &CapSet) {
    let head = idx.head(lane, caps).map(|(k, _)| k);
    let wanted = with_board(|h| h.set_head(db, lane, caps, idx.partition, head));
    if wanted {
        blocking::note_wanted(db, lane, caps);
    }
}

/// Keeps the claim board and the per-worker lease index in step with a
/// transition of `e`, and notes work a blocked claimer can take (handed
/// out by `blocking::flush`).
pub fn after_move(db: c_int, idx: &PartitionIndex, e: &Execution, moved: Moved) {
    if migration::is_importing(idx.partition) {
        // Entered when the import completes.
        return;
    }
    if let Some(gained) = moved.leased {
        workers::lease_moved(db, e, gained);
    }
    let (lane, caps) = (&*e.lane, &e.caps);
    let wanted = match moved.head {
        Head::Now(head) => with_board(|h| h.set_head(db, lane, caps, idx.partition, head)),
        // More work behind an unchanged head: a second claimer may take it.
        Head::Unchanged if moved.now_claimable => with_board(|h| h.wants(db, lane, caps)),
        Head::Unchanged => false,
    };
    if wanted {
        blocking::note_wanted(db, lane, caps);
    }
}

/// After a command's transition: hints, waiters, and the timer when a due
/// time may have moved.
fn settle(ctx: &Context, idx: &PartitionIndex, e: &Execution, moved: Moved) {
    let db = db(ctx);
    after_move(db, idx, e, moved);
    if moved.due {
        timer::note_due(ctx, db, idx);
    }
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
    settle(call.ctx, idx, e, moved);
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
/// its time pinned when anything changed, and the reclaim limit when the
/// step may have consulted it: a refusal that changed the record (a lease
/// found run out), or any step of a transition that `consults_reclaims`.
fn transition_cmd<T, E: Refusal>(
    call: &Call,
    name: &CStr,
    id: &ExecId,
    at: Option<u64>,
    consults_reclaims: bool,
    op: impl FnOnce(&mut PartitionIndex, &mut Execution, &Env) -> (Result<T, E>, Moved),
) -> CmdResult<T> {
    let now = at.unwrap_or_else(now_ms);
    let (_key, idx, e) = keys::require_exec(call.ctx, id)?;
    let env = env_for(call, now);
    let (r, moved) = op(idx, e, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    let mut p = pins(at, now, &[]);
    if consults_reclaims || r.is_err() {
        p = p.with_max_reclaims(&env);
    }
    finish(call, name, idx, e, moved, changed, &p);
    r.map_err(|err| CmdError(err.message()))
}

fn lane_arg<'a>(call: &Call<'a>) -> CmdResult<&'a str> {
    let [lane] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    requests::lane_str(lane)
}
