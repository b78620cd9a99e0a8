//! Claiming: the best claimable execution for a worker, found through the
//! claim board, checked against its partition's real index (a stale hint
//! is dropped, never trusted), and started under a new lease; the decided
//! claim is replicated as FF.ACQUIRE with its values pinned. Only
//! partitions the claimer's ACL key patterns allow are considered
//! (`access`). Used by
//! FF.CLAIM and by the hand-off to a blocked claimer.

use flowfabric_core::base::errors::{CmdError, CmdResult};
use flowfabric_core::base::ids::ExecId;
use flowfabric_core::claims::requests::Claim;
use flowfabric_core::execution::requests::Acquire;
use flowfabric_core::execution::{Execution, Grant};
use flowfabric_core::partition::{moves, PartitionIndex};
use redis_module::{raw, Context};

use crate::shell::access::Access;
use crate::shell::call::db;
use crate::shell::node::{with_board, with_minter};
use crate::shell::reply::Reply;
use std::ffi::CStr;

use crate::shell::effects::replicate_pinned;
use crate::shell::{effects, keys};

/// A claim's reply, positional like BLPOP's so the hot path writes few
/// elements (each costs the server a few hundred instructions): execution
/// id, payload, then the fence (lease id, lease epoch, attempt id) in the
/// order fenced commands take it, attempt index, lease expiry (ms), resumed.
/// The attempt's type is in FF.GET; index 0 is the first.
pub fn reply_grant(r: &Reply, id: &[u8], payload: &[u8], g: &Grant) {
    r.array(8);
    r.bulk(id);
    r.bulk(payload);
    r.bulk(&g.lease_id.text());
    r.uint(g.lease_epoch);
    r.bulk(&g.attempt_id.text());
    r.uint(u64::from(g.attempt_index));
    r.uint(g.lease_expires_at);
    r.uint(u64::from(g.resumed));
}

/// Replicates a decided claim as FF.ACQUIRE, formatting its values straight
/// into the server's strings.
fn replicate_acquire(ctx: &Context, a: &Acquire, id: &[u8]) {
    // SAFETY: a function pointer the server filled in at load.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (lease, attempt) = (a.lease_id.text(), a.attempt_id.text());
    let lease_ms = i64::try_from(a.lease_ms).unwrap_or(i64::MAX);
    let at = i64::try_from(a.at).unwrap_or(i64::MAX);
    let feed = effects::feed_pin(ctx);
    let pins: &[(&CStr, u64)] = feed.as_ref().map_or(&[], |p| &p[..]);
    let (ctx, name) = (ctx.ctx, c"FF.ACQUIRE".as_ptr());
    replicate_pinned!(
        f,
        ctx,
        name,
        pins,
        "bbblbbl",
        id.as_ptr(),
        id.len(),
        a.worker_id.as_ptr(),
        a.worker_id.len(),
        a.worker_instance_id.as_ptr(),
        a.worker_instance_id.len(),
        lease_ms,
        lease.as_ptr(),
        lease.len(),
        attempt.as_ptr(),
        attempt.len(),
        at
    );
}

/// Applies a decided claim to the record and index and replicates it;
/// shared by the primary (after choosing) and by replicas and AOF
/// replaying FF.ACQUIRE. `id` is the execution id's text.
pub fn acquire(
    ctx: &Context,
    idx: &mut PartitionIndex,
    e: &mut Execution,
    a: &Acquire,
    id: &[u8],
) -> CmdResult<Grant> {
    let (g, moved) = moves::acquire(idx, e, a);
    let g = g.map_err(CmdError::from)?;
    effects::settle(ctx, idx, e, moved);
    replicate_acquire(ctx, a, id);
    Ok(g)
}

/// How many stale hints or orphaned queue entries one claim may clear
/// before giving up; each is removed, so the work is amortised.
const MAX_PROBES: usize = 64;

/// Claims the best matching execution at `now` in a partition `access`
/// allows; `None` when there is none.
pub fn try_claim<T>(
    ctx: &Context,
    c: &Claim,
    now: u64,
    access: &mut Access,
    granted: impl FnOnce(&[u8], &Execution, &Grant) -> T,
) -> CmdResult<Option<T>> {
    let db = db(ctx);
    let mut allowed = |p| access.allows(p);
    for _ in 0..MAX_PROBES {
        let Some(cand) = with_board(|h| h.best(db, c.lanes.iter().copied(), &c.caps, &mut allowed))
        else {
            return Ok(None);
        };
        let drop_hint = |head| {
            effects::set_hint(db, cand.partition, cand.lane, &cand.caps, head);
        };
        let mut key = keys::open_partition(ctx, cand.partition);
        let Ok(Some(p)) = key.partition() else {
            drop_hint(None);
            continue;
        };
        let (qkey, uuid) = match p.index.head(cand.lane, &cand.caps) {
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
        let (lease_id, attempt_id) = with_minter(|m| (m.uuid(), m.uuid()));
        let a = Acquire {
            id,
            worker_id: c.worker_id,
            worker_instance_id: c.worker_instance_id,
            lease_ms: c.lease_ms,
            lease_id,
            attempt_id,
            at: now,
        };
        if p.index.flows.is_cancelling(uuid) {
            // Its flow is being cancelled in timer batches: not claimable,
            // and gone from the queue within a firing or two.
            return Ok(None);
        }
        let text = id.text();
        let claimed = match p.record_mut(uuid) {
            Some((idx, e)) if e.is_claimable() => match acquire(ctx, idx, e, &a, text.as_bytes()) {
                Ok(g) => Some((g, e)),
                Err(_) => None,
            },
            _ => None,
        };
        match claimed {
            Some((g, e)) => return Ok(Some(granted(text.as_bytes(), e, &g))),
            None => {
                // Cannot happen while the index is derived from the
                // records; drop the entry rather than loop on it.
                let idx = &mut p.index;
                idx.remove_queued(cand.lane, &cand.caps, &qkey);
                effects::refresh_hint(db, idx, cand.lane, &cand.caps);
            }
        }
    }
    Ok(None)
}
