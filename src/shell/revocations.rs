//! Taking leases away from dead workers. A worker that is marked dead
//! (FF.MARKDEAD, or its heartbeat lapsed and the timer noticed) loses its
//! leases: a few at once, the rest in timer batches, each revoke
//! replicated as FF.REVOKE with its values pinned. The registry change is
//! replicated as `FF.MARKDEAD instance NOREVOKE AT t`, so a replica or an
//! AOF replay marks the worker and leaves the revoking to the FF.REVOKEs
//! that follow.

use std::collections::VecDeque;
use std::time::Instant;

use flowfabric_core::base::ids::ExecId;
use flowfabric_core::base::state::OwnershipState;
use flowfabric_core::partition::{moves, Env};
use redis_module::Context;

use crate::shell::call::{db, select_db};
use crate::shell::node::{with_leases, with_registry, SpinLock};
use crate::shell::{effects, keys, schedule};

/// Dead workers whose leases are still being revoked, oldest first.
static REVOKING: SpinLock<VecDeque<Box<[u8]>>> = SpinLock::new(VecDeque::new());

/// Leases FF.MARKDEAD revokes itself; the rest go to the timer.
pub const REVOKE_INLINE: usize = 128;
/// Lapsed workers the timer marks dead per firing.
const LAPSES_PER_FIRING: usize = 64;
/// Leases one timer step revokes before it looks at the clock again.
const REVOKE_PER_STEP: usize = 256;

/// Leaves the rest of `instance`'s leases to the timer.
pub fn continue_later(ctx: &Context, instance: &[u8]) {
    REVOKING.with(|q| q.push_back(instance.into()));
    schedule::soon(ctx);
}

/// Replicates a registry mark without its revokes (they follow one by one).
pub fn replicate_mark(ctx: &Context, instance: &[u8], now: u64) {
    let at = now.to_string();
    ctx.replicate(
        "FF.MARKDEAD",
        &[instance, b"NOREVOKE", b"AT", at.as_bytes()][..],
    );
}

/// Revokes up to `max` of `instance`'s live leases (stopping early at
/// `until`), each replicated as FF.REVOKE when `replicate`; true when some
/// are left.
pub fn revoke_some(
    ctx: &Context,
    instance: &[u8],
    max: usize,
    env: &Env,
    until: Option<Instant>,
    replicate: bool,
) -> bool {
    let home = db(ctx);
    let mut current = home;
    let batch = with_leases(|l| l.page(instance, None, max));
    for (i, &(rdb, partition, uuid)) in batch.iter().enumerate() {
        if i % 16 == 0 && until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        if rdb != current {
            select_db(ctx, rdb);
            current = rdb;
        }
        let id = ExecId { partition, uuid };
        let mut key = keys::open_partition(ctx, partition);
        let held = keys::exec_in(&mut key, &id).ok().and_then(|(idx, e)| {
            let lease = e.lease.as_ref().map(|l| l.lease_id)?;
            let ours = e.ownership == OwnershipState::Leased
                && e.current_attempt()
                    .is_some_and(|a| a.worker.instance() == instance);
            ours.then_some((idx, e, lease))
        });
        let Some((idx, e, lease)) = held else {
            // Gone, or no longer this worker's: a stale entry.
            with_leases(|l| l.remove(instance, &(rdb, partition, uuid)));
            continue;
        };
        let (r, moved) = moves::revoke(idx, e, Some(lease), env);
        effects::after_move(ctx, rdb, idx, e, moved);
        if moved.due {
            schedule::note_due(ctx, rdb, idx);
        }
        if r.is_ok() {
            if replicate {
                effects::replicate_revoke(ctx, &id, lease, env);
            }
            effects::drain_key(ctx, &mut key, env);
        } else {
            with_leases(|l| l.remove(instance, &(rdb, partition, uuid)));
        }
    }
    if current != home {
        select_db(ctx, home);
    }
    with_leases(|l| l.count(instance)) > 0
}

/// Called by the timer on the primary: marks lapsed workers dead (a
/// bounded number per firing), and continues revoking dead workers'
/// leases until `until`. True when work is left for the next firing.
pub fn run_due(ctx: &Context, now: u64, until: Instant) -> bool {
    let lapsed = with_registry(|r| r.lapsed(now, LAPSES_PER_FIRING));
    let more_lapsed = lapsed.len() == LAPSES_PER_FIRING;
    for instance in lapsed {
        if with_registry(|r| r.mark_dead(&instance, now)).is_ok() {
            replicate_mark(ctx, &instance, now);
            REVOKING.with(|q| q.push_back(instance));
        }
    }
    let env = schedule::env(now);
    while let Some(instance) = REVOKING.with(|q| q.front().cloned()) {
        if Instant::now() >= until {
            return true;
        }
        if revoke_some(ctx, &instance, REVOKE_PER_STEP, &env, Some(until), true) {
            continue;
        }
        REVOKING.with(|q| q.pop_front());
    }
    more_lapsed
}
