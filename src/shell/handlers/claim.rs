//! FF.CLAIM and its replicated outcome FF.ACQUIRE: pick the best claimable
//! execution through the claim board, check it against the partition's
//! index, and start its attempt under a new lease. A claim that finds
//! nothing may wait (`BLOCK`) among the board's blocked claimers.

use super::*;

/// A claim's reply, positional like BLPOP's so the hot path writes few
/// elements (each costs the server a few hundred instructions): execution
/// id, payload, attempt index, attempt id, lease id, lease epoch, lease
/// expiry (ms). The attempt's type is in FF.GET; index 0 is the first.
pub fn reply_grant(r: &Reply, id: &[u8], payload: &[u8], g: &Grant) {
    r.array(7);
    r.bulk(id);
    r.bulk(payload);
    r.uint(u64::from(g.attempt_index));
    r.bulk(&g.attempt_id.text());
    r.bulk(&g.lease_id.text());
    r.uint(g.lease_epoch);
    r.uint(g.lease_expires_at);
}

/// Replicates a decided claim as FF.ACQUIRE, formatting its values straight
/// into the server's strings.
fn replicate_acquire(ctx: &Context, a: &Acquire, id: &[u8]) {
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (lease, attempt) = (a.lease_id.text(), a.attempt_id.text());
    let lease_ms = i64::try_from(a.lease_ms).unwrap_or(i64::MAX);
    let at = i64::try_from(a.at).unwrap_or(i64::MAX);
    unsafe {
        f(
            ctx.ctx,
            c"FF.ACQUIRE".as_ptr(),
            c"bbblbbl".as_ptr(),
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
            at,
        )
    };
}

/// Applies a decided claim to the record and index and replicates it;
/// shared by the primary (after choosing) and by replicas and AOF
/// replaying FF.ACQUIRE. `granted` sees the result (to reply, or to hand
/// it to a blocked claimer).
fn apply_acquire<T>(
    ctx: &Context,
    idx: &mut PartitionIndex,
    e: &mut Execution,
    a: &Acquire,
    granted: impl FnOnce(&[u8], &Execution, &Grant) -> T,
) -> CmdResult<T> {
    let (g, moved) = engine::acquire(idx, e, a);
    let g = g.map_err(|err| match err {
        ClaimError::NotLeaseable => {
            CmdError::new("EXECUTION_NOT_LEASEABLE", "the execution is not eligible")
        }
        ClaimError::LeaseConflict => {
            CmdError::new("LEASE_CONFLICT", "the execution is already leased")
        }
    })?;
    settle(ctx, idx, e, moved);
    let id = a.id.text();
    replicate_acquire(ctx, a, id.as_bytes());
    Ok(granted(id.as_bytes(), e, &g))
}

/// How many stale hints or orphaned queue entries one claim may clear
/// before giving up; each is removed, so the work is amortised.
const MAX_PROBES: usize = 64;

/// Claims the best matching execution at `now`; `None` when there is none.
pub fn try_claim<T>(
    ctx: &Context,
    c: &Claim,
    now: u64,
    granted: impl FnOnce(&[u8], &Execution, &Grant) -> T,
) -> CmdResult<Option<T>> {
    let db = db(ctx);
    for _ in 0..MAX_PROBES {
        let Some(cand) = with_board(|h| h.best(db, c.lanes.iter().copied(), &c.caps)) else {
            return Ok(None);
        };
        let drop_hint = |head| {
            with_board(|h| h.set_head(db, cand.lane, &cand.caps, cand.partition, head));
        };
        let key = keys::open_partition(ctx, cand.partition);
        let Ok(Some(p)) = keys::partition(&key) else {
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
        let (idx, e) = match p.record_mut(uuid) {
            Some((idx, e)) if e.is_claimable() => (idx, e),
            _ => {
                // Cannot happen while the index is derived from the
                // records; drop the entry rather than loop on it.
                let idx = &mut p.index;
                idx.remove_queued(cand.lane, &cand.caps, &qkey);
                refresh_hint(db, idx, cand.lane, &cand.caps);
                continue;
            }
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
        return apply_acquire(ctx, idx, e, &a, granted).map(Some);
    }
    Ok(None)
}

pub fn claim(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let mut c = requests::parse_claim_with(call.args, &config::limits(), worker_caps)?;
    let asked = c.lanes.clone();
    c.lanes.retain(|l| !lanes::is_paused(l));
    let r = Reply(ctx.ctx);
    let granted = |id: &[u8], e: &Execution, g: &Grant| reply_grant(&r, id, &e.payload, g);
    if try_claim(ctx, &c, now_ms(), granted)?.is_some() {
        return Ok(());
    }
    match c.block_ms {
        // A paused lane is waited on too: FF.RESUME hands its work out.
        Some(ms) if blocking::allowed(ctx) => blocking::block_claim(ctx, &c, &asked, ms),
        _ => r.null(),
    }
    Ok(())
}

pub fn acquire(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    internal_only(ctx, "FF.ACQUIRE")?;
    let limits = config::limits();
    let a = requests::parse_acquire(call.args, &limits)?;
    let (_key, idx, e) = keys::require_exec(ctx, &a.id)?;
    let r = Reply(ctx.ctx);
    apply_acquire(ctx, idx, e, &a, |id, e, g| {
        reply_grant(&r, id, &e.payload, g)
    })
}
