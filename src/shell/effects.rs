//! What every transition is followed by, whoever made it (a command, the
//! timer, a load): the claim board and the per-worker lease index kept in
//! step, work a blocked claimer can take noted for hand-off, the timer told
//! of an earlier due time, and the call replicated with the values the
//! primary pinned (its clock, a drawn retry time, the reclaim limit).

use std::ffi::CStr;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use flowfabric_core::base::caps::CapSet;
use flowfabric_core::base::errors::{CmdError, CmdResult, Refused};
use flowfabric_core::base::ids::{ExecId, Uuid};
use flowfabric_core::base::state::OwnershipState;
use flowfabric_core::execution::suspend::SuspendError;
use flowfabric_core::execution::{Execution, LeaseError, OpError, RevokeError};
use flowfabric_core::partition::cascade::CASCADE_BUDGET;
use flowfabric_core::partition::{Env, Head, Moved, Partition, PartitionIndex, QueueKey};
use flowfabric_core::streams::StreamError;
use flowfabric_core::suspension::WaitError;
use redis_module::{raw, Context};

use crate::shell::call::{db, Call};
use crate::shell::node::{is_importing, now_ms, with_board, with_leases, SpinLock};
use crate::shell::{feed, keys, schedule};

// ---- the claim board, the lease index, wake-ups -------------------------

/// Work some blocked claimer may take: (db, lane, required caps), and the
/// claimer its hand-off resumes after (None: the longest-waiting first).
type Wanted = (c_int, Box<str>, CapSet, Option<u64>);

static PENDING: SpinLock<Vec<Wanted>> = SpinLock::new(Vec::new());
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// Notes that (db, lane, caps) has work a blocked claimer may take; the
/// hand-off happens in `blocking::flush`, after the command has replicated
/// itself, so FF.ACQUIRE follows what made the work claimable.
pub fn note_wanted(db: c_int, lane: &str, caps: &CapSet) {
    note(db, lane, caps, None);
}

/// Notes work whose hand-off ran out of refusals at claimer `after`: the
/// next flush goes on past it (new work noted meanwhile is handed from
/// the longest-waiting claimer again, its own note).
pub fn note_wanted_after(db: c_int, lane: &str, caps: &CapSet, after: u64) {
    note(db, lane, caps, Some(after));
}

fn note(db: c_int, lane: &str, caps: &CapSet, after: Option<u64>) {
    PENDING.with(|p| p.push((db, lane.into(), caps.clone(), after)));
    ANY_PENDING.store(true, Ordering::Relaxed);
}

/// True when hand-offs are noted (cheap: one atomic load).
pub fn wanted_pending() -> bool {
    ANY_PENDING.load(Ordering::Relaxed)
}

/// The next noted hand-off, if any.
pub fn next_wanted() -> Option<Wanted> {
    PENDING.with(|p| {
        let n = p.pop();
        if p.is_empty() {
            ANY_PENDING.store(false, Ordering::Relaxed);
        }
        n
    })
}

/// Records a queue head in the claim board; notes a hand-off (and says
/// so) if a blocked claimer can now take the set's work.
pub fn set_hint(
    db: c_int,
    partition: u16,
    lane: &str,
    caps: &CapSet,
    head: Option<QueueKey>,
) -> bool {
    let wanted = with_board(|h| h.set_head(db, lane, caps, partition, head));
    if wanted {
        note_wanted(db, lane, caps);
    }
    wanted
}

/// Re-reads a set's head from the index into the claim board.
pub fn refresh_hint(db: c_int, idx: &PartitionIndex, lane: &str, caps: &CapSet) {
    let head = idx.head(lane, caps).map(|(k, _)| k);
    set_hint(db, idx.partition, lane, caps, head);
}

/// Makes a loaded (or imported) index's queue heads claimable; work a
/// blocked claimer can take (a partition arriving by slot migration) is
/// handed out by the timer, as loading runs outside any command.
pub fn register_hints(db: c_int, idx: &PartitionIndex) {
    if is_importing(idx.partition) {
        return;
    }
    let mut wanted = false;
    for (lane, caps, head) in idx.heads() {
        wanted |= set_hint(db, idx.partition, lane, caps, Some(head));
    }
    if wanted {
        schedule::request_soon();
    }
}

/// Indexes the live leases of records just loaded (or imported).
pub fn leases_loaded<'a>(db: c_int, records: impl Iterator<Item = &'a Execution>) {
    with_leases(|l| {
        for e in records {
            if is_importing(e.id.partition) {
                continue;
            }
            if let (Some(_), OwnershipState::Leased, Some(a)) =
                (&e.lease, e.ownership, e.current_attempt())
            {
                l.add(a.worker.instance(), (db, e.id.partition, e.id.uuid));
            }
        }
    });
}

/// Keeps the claim board and the per-worker lease index in step with a
/// transition of `e`, and notes work a blocked claimer can take.
pub fn after_move(ctx: &Context, db: c_int, idx: &mut PartitionIndex, e: &Execution, moved: Moved) {
    feed::after_transition(ctx, idx, e, &moved);
    if is_importing(idx.partition) {
        // Entered when the import completes (see `migration`).
        return;
    }
    if let (Some(gained), Some(a)) = (moved.leased, e.current_attempt()) {
        let r = (db, e.id.partition, e.id.uuid);
        with_leases(|l| match gained {
            true => l.add(a.worker.instance(), r),
            false => l.remove(a.worker.instance(), &r),
        });
    }
    let (lane, caps) = (&*e.lane, &e.caps);
    match moved.head {
        Head::Now(head) => {
            set_hint(db, idx.partition, lane, caps, head);
        }
        // More work behind an unchanged head: a second claimer may take it.
        Head::Unchanged if moved.now_claimable => {
            if with_board(|h| h.wants(db, lane, caps)) {
                note_wanted(db, lane, caps);
            }
        }
        Head::Unchanged => {}
    }
}

/// After a command's transition: the board, waiters, and the timer when a
/// due time may have moved earlier.
pub fn settle(ctx: &Context, idx: &mut PartitionIndex, e: &Execution, moved: Moved) {
    let db = db(ctx);
    after_move(ctx, db, idx, e, moved);
    if moved.due {
        schedule::note_due(ctx, db, idx);
    }
}

/// Runs the flow work a command left on its partition (a member ended, was
/// replayed or parked, an edge or a cancel queued work), up to the
/// command's budget, settling every record it moves; what is left is due
/// at once for the node timer. A replica runs the same work from the same
/// replicated command.
pub fn drain_flows(ctx: &Context, p: &mut Partition, env: &Env) -> usize {
    if !p.index.flows.has_work() {
        return 0;
    }
    let db = db(ctx);
    let done = p.run_flow_work(env, CASCADE_BUDGET, &mut || false, &mut |idx, e, moved| {
        after_move(ctx, db, idx, e, moved)
    });
    schedule::note_due(ctx, db, &p.index);
    done
}

/// Drains the flow work of the partition an open key holds.
pub fn drain_key(ctx: &Context, key: &mut keys::Key, env: &Env) {
    if let Ok(Some(p)) = key.partition() {
        drain_flows(ctx, p, env);
    }
}

// ---- replication with pinned values --------------------------------------

/// At most three pinned values (the time, one more, the reclaim limit),
/// in a fixed array: built on every write, replicated or not, so no growth
/// checks.
pub struct Pins<'a> {
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
pub fn pins<'a>(at: Option<u64>, now: u64, extra: &[(&'a CStr, u64)]) -> Pins<'a> {
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
    pub fn with_max_reclaims(mut self, env: &Env) -> Pins<'a> {
        self.push((c"MAX_RECLAIMS", u64::from(env.max_reclaims)));
        self
    }
}

/// Settings for a transition made now by `call`: the configured ones, with
/// the reclaim limit the primary pinned when the call was replicated.
pub fn env_for(call: &Call, now: u64) -> Env {
    let mut env = schedule::env(now);
    if let Some(m) = call.max_reclaims {
        env.max_reclaims = m;
    }
    env
}

/// Calls `RedisModule_Replicate` with the format `$fmt` and its arguments,
/// then each pinned value as `name number` ("cl"): the variadic call
/// needs its arity at compile time, so one arm per count of pins (at most
/// four: the three of `Pins` and the feed's).
macro_rules! replicate_pinned {
    ($f:expr, $ctx:expr, $name:expr, $pins:expr, $fmt:literal $(, $arg:expr)*) => {{
        let pins: &[(&CStr, u64)] = $pins;
        let val = |i: usize| {
            pins.get(i)
                .map_or(0, |p| i64::try_from(p.1).unwrap_or(i64::MAX))
        };
        let key = |i: usize| pins.get(i).map_or(c"".as_ptr(), |p| p.0.as_ptr());
        let (k0, v0, k1, v1, k2, v2) = (key(0), val(0), key(1), val(1), key(2), val(2));
        let (k3, v3) = (key(3), val(3));
        let fmt = |s: &'static str| s.as_ptr().cast::<std::os::raw::c_char>();
        // SAFETY: each format letter matches the argument after it ("b":
        // pointer and length, "v": the call's own argument vector and
        // count, "c": a NUL-terminated name, "l": a long long), all alive
        // for the call; the server copies what it keeps.
        unsafe {
            match pins.len() {
                0 => $f($ctx, $name, fmt(concat!($fmt, "\0")) $(, $arg)*),
                1 => $f($ctx, $name, fmt(concat!($fmt, "cl\0")) $(, $arg)*, k0, v0),
                2 => $f($ctx, $name, fmt(concat!($fmt, "clcl\0")) $(, $arg)*, k0, v0, k1, v1),
                3 => $f(
                    $ctx,
                    $name,
                    fmt(concat!($fmt, "clclcl\0"))
                    $(, $arg)*,
                    k0,
                    v0,
                    k1,
                    v1,
                    k2,
                    v2
                ),
                _ => $f(
                    $ctx,
                    $name,
                    fmt(concat!($fmt, "clclclcl\0"))
                    $(, $arg)*,
                    k0,
                    v0,
                    k1,
                    v1,
                    k2,
                    v2,
                    k3,
                    v3
                ),
            }
        }
    }};
}
pub(crate) use replicate_pinned;

/// The feed's pin alone (for calls with no other pins), if it has one.
pub fn feed_pin(ctx: &Context) -> Option<[(&'static CStr, u64); 1]> {
    feed::pin(ctx).map(|c| [(c"FEED", c)])
}

/// Replicates the call, its arguments passed by reference (client payloads
/// are not copied), with `first` replacing its first argument, followed by
/// the pinned values.
pub fn replicate_call(call: &Call, name: &CStr, first: Option<&[u8]>, pins: &[(&CStr, u64)]) {
    // SAFETY: a function pointer the server filled in at load.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (all, n) = with_feed(call.ctx, pins);
    let pins = all.get(..n).unwrap_or_default();
    let (ctx, name) = (call.ctx.ctx, name.as_ptr());
    match (first, call.argv.split_first()) {
        (Some(id), Some((_, rest))) => {
            let (v, n) = (rest.as_ptr(), rest.len());
            replicate_pinned!(f, ctx, name, pins, "bv", id.as_ptr(), id.len(), v, n)
        }
        _ => {
            let (v, n) = (call.argv.as_ptr(), call.argv.len());
            replicate_pinned!(f, ctx, name, pins, "v", v, n)
        }
    };
}

/// Replicates the call followed by a minted id (`key` and its text) and
/// the pinned values, its arguments passed by reference.
pub fn replicate_minted(
    call: &Call,
    name: &CStr,
    minted: Option<(&CStr, &[u8])>,
    pins: &[(&CStr, u64)],
) {
    let Some((key, id)) = minted else {
        return replicate_call(call, name, None, pins);
    };
    // SAFETY: a function pointer the server filled in at load.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (all, count) = with_feed(call.ctx, pins);
    let pins = all.get(..count).unwrap_or_default();
    let (ctx, name) = (call.ctx.ctx, name.as_ptr());
    let (v, n) = (call.argv.as_ptr(), call.argv.len());
    replicate_pinned!(
        f,
        ctx,
        name,
        pins,
        "vcb",
        v,
        n,
        key.as_ptr(),
        id.as_ptr(),
        id.len()
    );
}

/// The pins followed by the feed's (`FEED n`) when its settings are not
/// the defaults: a replica and the AOF then raise the events the primary
/// raised, whatever their own settings.
fn with_feed<'a>(ctx: &Context, pins: &[(&'a CStr, u64)]) -> ([(&'a CStr, u64); 4], usize) {
    let mut all = [(c"", 0u64); 4];
    let mut n = 0;
    for (slot, p) in all.iter_mut().zip(pins.iter().take(3)) {
        *slot = *p;
        n += 1;
    }
    if let (Some(code), Some(slot)) = (feed::pin(ctx), all.get_mut(n)) {
        *slot = (c"FEED", code);
        n += 1;
    }
    (all, n)
}

pub fn replicate_with(call: &Call, name: &CStr, pins: &[(&CStr, u64)]) {
    replicate_call(call, name, None, pins);
}

/// Replicates a revoke the node made itself (a vanished claimer's grant, a
/// dead worker's lease) as FF.REVOKE with the lease, time and reclaim limit
/// pinned.
pub fn replicate_revoke(ctx: &Context, id: &ExecId, lease: Uuid, env: &Env) {
    let lease = lease.text();
    let args: [&[u8]; 2] = [b"LEASE", &lease];
    replicate_on(ctx, "FF.REVOKE", id, &args, env.now, Some(env.max_reclaims));
}

/// Replicates a step the node took on one execution of its own accord (a
/// revoke, one execution of a bulk operation) as the single command
/// `name id args... AT now [MAX_RECLAIMS n] [FEED n]` (the pins last, in
/// the order a replica's dispatch takes them off).
pub fn replicate_on(
    ctx: &Context,
    name: &str,
    id: &ExecId,
    args: &[&[u8]],
    now: u64,
    max_reclaims: Option<u32>,
) {
    let (text, at) = (id.text(), now.to_string());
    let max = max_reclaims.map(|m| m.to_string()).unwrap_or_default();
    let code = feed::pin(ctx).map(|c| c.to_string()).unwrap_or_default();
    let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 7);
    all.push(text.as_bytes());
    all.extend_from_slice(args);
    all.extend_from_slice(&[b"AT", at.as_bytes()]);
    if max_reclaims.is_some() {
        all.extend_from_slice(&[b"MAX_RECLAIMS", max.as_bytes()]);
    }
    if !code.is_empty() {
        all.extend_from_slice(&[b"FEED", code.as_bytes()]);
    }
    ctx.replicate(name, &all[..]);
}

// ---- one transition on one execution -------------------------------------

/// Why a transition was refused, and whether the record changed anyway
/// (a fenced call settles a lease that ran out on the way).
pub trait Refusal {
    fn error(&self) -> CmdError;
    fn changed(&self) -> bool {
        false
    }
}

impl Refusal for (LeaseError, bool) {
    fn error(&self) -> CmdError {
        CmdError::new(self.0.code(), self.0.message())
    }
    fn changed(&self) -> bool {
        self.1
    }
}

impl Refusal for (SuspendError, bool) {
    fn error(&self) -> CmdError {
        match &self.0 {
            SuspendError::Lease(e) => CmdError::new(e.code(), e.message()),
            SuspendError::Wait(e) => CmdError::new(e.code(), e.message()),
        }
    }
    fn changed(&self) -> bool {
        self.1
    }
}

impl Refusal for (StreamError, bool) {
    fn error(&self) -> CmdError {
        CmdError::new(self.0.code(), self.0.message())
    }
    fn changed(&self) -> bool {
        self.1
    }
}

/// A refusal that never changes the record.
macro_rules! unchanged_refusal {
    ($($t:ty),+) => {$(
        impl Refusal for $t {
            fn error(&self) -> CmdError {
                CmdError::new(self.code(), self.message())
            }
        }
    )+};
}

unchanged_refusal!(LeaseError, RevokeError, OpError, WaitError);

/// After a fenced transition: the board, the timer, and replication with
/// the pinned values when anything changed.
pub fn finish(
    call: &Call,
    name: &CStr,
    idx: &mut PartitionIndex,
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

/// Runs one transition on one execution: opens it and its index, applies
/// `op`, keeps the board and the timer in step, and replicates the call
/// with its time pinned when anything changed, and the reclaim limit when
/// the step may have consulted it: a refusal that changed the record (a
/// lease found run out), or any step of a transition that
/// `consults_reclaims`.
pub fn transition_cmd<T, E: Refusal>(
    call: &Call,
    name: &CStr,
    id: &ExecId,
    at: Option<u64>,
    consults_reclaims: bool,
    op: impl FnOnce(&mut PartitionIndex, &mut Execution, &Env) -> (Result<T, E>, Moved),
) -> CmdResult<T> {
    let now = at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, id.partition);
    let (idx, e) = keys::exec_in(&mut key, id)?;
    let env = env_for(call, now);
    let (r, moved) = op(idx, e, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    let mut p = pins(at, now, &[]);
    if consults_reclaims || r.is_err() {
        p = p.with_max_reclaims(&env);
    }
    finish(call, name, idx, e, moved, changed, &p);
    if changed {
        drain_key(call.ctx, &mut key, &env);
    }
    r.map_err(|err| err.error())
}
