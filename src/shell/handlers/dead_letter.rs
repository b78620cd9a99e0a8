//! The operator's tools for failed and stuck work, across the partitions
//! this node holds: FF.SCAN lists executions of a state (and lane, or
//! waiting for a reclaim) a page at a time with one cursor; FF.BULKREPLAY
//! and FF.BULKCANCEL act on such a page; FF.DELETE removes one finished
//! execution now rather than at the end of its retention.
//!
//! A page reads a bounded number of records (4×COUNT) and skips the
//! partitions whose counts show no match, so a call costs O(partitions +
//! COUNT) however many executions the node holds. Each execution a bulk
//! call acts on is replicated as its own FF.REPLAY or FF.CANCEL, so a
//! replica and the AOF take exactly the steps the primary took.

use flowfabric_core::base::errors::{CmdError, CmdResult, Code};
use flowfabric_core::base::ids::{idempotency_key, ExecId};
use flowfabric_core::base::limits::MAX_REPLAYS;
use flowfabric_core::execution::Execution;

use flowfabric_core::execution::requests::parse_simple;
use flowfabric_core::partition::moves::{self, Op};
use flowfabric_core::partition::requests::{parse_bulk, parse_scan};
use flowfabric_core::partition::{Env, Filter, NodeCursor, Partition};
use redis_module::Context;

use crate::shell::access::Access;
use crate::shell::call::{db, Call};
use crate::shell::effects::{self, Refusal};
use crate::shell::node::{is_importing, now_ms};
use crate::shell::reply::Reply;
use crate::shell::{config, feed, keys};

/// Walks this node's partitions from `from`, handing each that may hold a
/// match (and is not arriving by slot migration, and the caller's ACL key
/// patterns allow: see `access`) to `visit`, which pages
/// it from a sequence and says where its page ended and whether the call
/// is done. Returns the cursor to resume at, 0 when every partition is
/// done.
fn walk(
    ctx: &Context,
    filter: &Filter,
    from: NodeCursor,
    access: &mut Access,
    write: bool,
    mut visit: impl FnMut(&mut Partition, u64) -> (Option<u64>, bool),
) -> u64 {
    let partitions = config::partitions();
    let mut at = from;
    loop {
        // Looked at read-only (a key opened for writing is signalled
        // modified when it closes), reopened for writing only to act.
        let mut key = keys::open_partition_quiet(ctx, at.partition);
        let wanted = match key.partition() {
            Ok(Some(p)) => {
                !is_importing(at.partition)
                    && filter.may_match(&p.index)
                    && access.allows(at.partition)
            }
            _ => false,
        };
        if wanted && write {
            drop(key);
            key = keys::open_partition(ctx, at.partition);
        }
        let (next, full) = match key.partition() {
            Ok(Some(p)) if wanted => visit(p, at.seq),
            _ => (None, false),
        };
        match NodeCursor::after(at.partition, next, partitions) {
            None => return 0,
            Some(c) if full => return c.encode(),
            Some(c) => at = c,
        }
    }
}

/// `FF.SCAN [STATE s] [LANE l] [RECLAIMABLE] [CURSOR c] [COUNT n]`:
/// `[cursor, [ids]]`, like SCAN.
pub fn scan(call: &Call) -> CmdResult<()> {
    let limits = config::limits();
    let l = parse_scan(call.args, &limits)?;
    let from = NodeCursor::decode(l.cursor, limits.partitions).unwrap_or_default();
    let window = l.filter.window(l.count);
    let (mut ids, mut read) = (Vec::new(), 0usize);
    let mut access = Access::caller(call.ctx).reading().walking();
    let cursor = walk(call.ctx, &l.filter, from, &mut access, false, |p, seq| {
        let left = l.count.saturating_sub(ids.len());
        let page = p.scan(&l.filter, seq, left, window.saturating_sub(read));
        read = read.saturating_add(page.read);
        let partition = p.index.partition;
        ids.extend(page.ids.into_iter().map(|uuid| ExecId { partition, uuid }));
        (page.next, ids.len() >= l.count || read >= window)
    });
    let r = Reply(call.ctx.ctx);
    r.array(2);
    r.bulk(cursor.to_string().as_bytes());
    r.array(ids.len());
    for id in &ids {
        r.bulk(id.text().as_bytes());
    }
    Ok(())
}

/// What a bulk call does to each execution it selects.
#[derive(Clone, Copy)]
enum BulkOp {
    Cancel,
    Replay,
}

pub fn bulk_cancel(call: &Call) -> CmdResult<()> {
    bulk(call, BulkOp::Cancel)
}

pub fn bulk_replay(call: &Call) -> CmdResult<()> {
    bulk(call, BulkOp::Replay)
}

/// `FF.BULKCANCEL|FF.BULKREPLAY STATE s [LANE l] [RECLAIMABLE] [CURSOR c]
/// [COUNT n] [REASON r]`: `[cursor, acted on, refused]`.
fn bulk(call: &Call, op: BulkOp) -> CmdResult<()> {
    let limits = config::limits();
    let b = parse_bulk(call.args, &limits, matches!(op, BulkOp::Cancel))?;
    let (filter, count) = (&b.listing.filter, b.listing.count);
    let window = filter.window(count);
    let now = now_ms();
    let env = effects::env_for(call, now);
    let (mut acted, mut refused, mut read) = (0usize, 0usize, 0usize);
    let mut access = Access::caller(call.ctx).walking();
    let cursor = walk(call.ctx, filter, b.cursor, &mut access, true, |p, seq| {
        let left = count.saturating_sub(acted + refused);
        let page = p.scan(filter, seq, left, window.saturating_sub(read));
        read = read.saturating_add(page.read);
        for uuid in page.ids {
            let id = ExecId {
                partition: p.index.partition,
                uuid,
            };
            match act(call.ctx, p, &id, op, b.reason.as_deref(), &env) {
                true => acted += 1,
                false => refused += 1,
            }
        }
        (page.next, acted + refused >= count || read >= window)
    });
    let r = Reply(call.ctx.ctx);
    r.array(3);
    r.bulk(cursor.to_string().as_bytes());
    r.uint(acted as u64);
    r.uint(refused as u64);
    Ok(())
}

/// One execution of a bulk call, exactly as the single command would do
/// it (its flow work drained after it, as the command's is), replicated as
/// that command when it changed anything. Whether it was done.
fn act(
    ctx: &Context,
    p: &mut Partition,
    id: &ExecId,
    op: BulkOp,
    reason: Option<&[u8]>,
    env: &Env,
) -> bool {
    let Some((idx, e)) = p.record_mut(id.uuid) else {
        return false;
    };
    let (done, changed, moved) = match op {
        BulkOp::Cancel => {
            let (r, moved) = moves::cancel(idx, e, None, reason.map(Into::into), env);
            (
                r.is_ok(),
                r.as_ref().map_or_else(Refusal::changed, |_| true),
                moved,
            )
        }
        BulkOp::Replay => {
            let replay = Op::Replay {
                max_replays: MAX_REPLAYS,
            };
            let (r, moved) = moves::operate(idx, e, replay, None, env);
            (r.is_ok(), r.is_ok(), moved)
        }
    };
    effects::settle(ctx, idx, e, moved);
    if changed {
        match (op, reason) {
            (BulkOp::Cancel, Some(r)) => {
                effects::replicate_on(ctx, "FF.CANCEL", id, &[b"REASON", r], env.now, None)
            }
            (BulkOp::Cancel, None) => {
                effects::replicate_on(ctx, "FF.CANCEL", id, &[], env.now, None)
            }
            (BulkOp::Replay, _) => effects::replicate_on(ctx, "FF.REPLAY", id, &[], env.now, None),
        }
        effects::drain_flows(ctx, p, env);
    }
    done
}

/// `FF.DELETE id`: removes a finished execution (its record, its output
/// streams, its idempotency key if it still names it) now; its flow's pending edges on it
/// resolve first, as when retention removes it.
pub fn delete(call: &Call) -> CmdResult<()> {
    let req = parse_simple(call.args, &config::limits(), call.origin(), false)?;
    let now = req.at.unwrap_or_else(now_ms);
    let env = effects::env_for(call, now);
    let mut key = keys::open_partition(call.ctx, req.id.partition);
    let (ctx, db) = (call.ctx, db(call.ctx));
    let p = key.partition()?.ok_or_else(keys::not_found)?;
    if p.get(req.id.uuid).is_none() {
        return Err(keys::not_found());
    }
    let mut on_move = |idx: &mut _, e: &_, moved| effects::after_move(ctx, db, idx, e, moved);
    let gone = p
        .remove_finished(req.id.uuid, &env, &mut on_move)
        .ok_or_else(|| {
            CmdError::new(
                Code::ExecutionNotTerminal,
                "only a finished execution can be deleted (cancel it first)",
            )
        })?;
    feed::drop_streams(ctx, &gone);
    drop_idempotency(ctx, &gone);
    effects::drain_flows(ctx, p, &env);
    effects::replicate_with(call, c"FF.DELETE", &effects::pins(req.at, now, &[]));
    Reply(ctx.ctx).ok();
    Ok(())
}

/// Deletes the idempotency key that still names a deleted execution, so a
/// submit with that key makes a new one rather than answer with an id
/// that no longer exists.
fn drop_idempotency(ctx: &Context, gone: &Execution) {
    let Some(k) = gone.idempotency() else {
        return;
    };
    let name = idempotency_key(gone.id.partition, gone.namespace(), k);
    let text = gone.id.text();
    if keys::read_string(ctx, &name).as_deref() == Some(text.as_bytes()) {
        keys::open(ctx, &name).delete();
    }
}
