//! The partition domain's commands: listings (FF.LIST, FF.LANES), which
//! partition a lane lives in (FF.PARTITION), and the internal ones that
//! rebuild or advance a partition: FF.LOADREC (an AOF rewrite's items) and
//! FF.DUE (a timer batch the primary ran).

use std::collections::BTreeMap;
use std::sync::Arc;

use flowfabric_core::base::codec::DecodeError;
use flowfabric_core::base::errors::{CmdError, CmdResult, Code};
use flowfabric_core::base::ids::{lane_partition, ExecId};
use flowfabric_core::base::state::{PublicState, StateCounts};
use flowfabric_core::partition::codec::{TAG_EXEC, TAG_FLOW, TAG_PARTITION};
use flowfabric_core::partition::requests::{parse_due, parse_list};
use flowfabric_core::partition::Partition;

use crate::shell::call::{db, internal_only, lane_arg, Call};
use crate::shell::reply::Reply;
use crate::shell::{config, due, effects, keys, schedule};

/// `FF.LIST {fp:N} [options]`: a cursor listing of a partition's executions.
pub fn list(call: &Call) -> CmdResult<()> {
    let l = parse_list(call.args, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, l.partition);
    let (f, c) = (&l.listing, l.listing.cursor);
    let page = key.partition()?.map(|p| p.list(&f.filter, c, f.count));
    let (ids, next) = page.unwrap_or_default();
    let r = Reply(call.ctx.ctx);
    r.array(2);
    r.bulk(next.unwrap_or(0).to_string().as_bytes());
    r.array(ids.len());
    for uuid in ids {
        let id = ExecId {
            partition: l.partition,
            uuid,
        };
        r.bulk(id.text().as_bytes());
    }
    Ok(())
}

/// `FF.LANES`: lanes with their executions per public state, over the
/// partitions this node holds (each partition keeps its counts: one pass
/// over the partitions, not over the executions).
pub fn lanes(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let mut totals: BTreeMap<Arc<str>, StateCounts> = BTreeMap::new();
    keys::each_partition(call.ctx, |part| {
        for (lane, counts) in part.index.lanes.iter().map(|(n, l)| (n, &l.counts)) {
            let t = totals
                .entry(lane.clone())
                .or_insert([0; PublicState::COUNT]);
            for (a, b) in t.iter_mut().zip(counts) {
                *a = a.saturating_add(*b);
            }
        }
    });
    let r = Reply(call.ctx.ctx);
    r.map(totals.len());
    for (lane, counts) in &totals {
        r.bulk(lane.as_bytes());
        let nonzero: Vec<(usize, u64)> = counts
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c > 0)
            .collect();
        r.map(nonzero.len());
        for (i, c) in nonzero {
            r.bulk(PublicState::name_of(i).as_bytes());
            r.uint(c);
        }
    }
    Ok(())
}

/// `FF.PARTITION lane`: the `{fp:N}` tag of the lane's partition.
pub fn partition(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let p = lane_partition(lane.as_bytes(), config::partitions());
    Reply(call.ctx.ctx).bulk(format!("{{fp:{p}}}").as_bytes());
    Ok(())
}

/// `FF.DUE key at count retention max_reclaims`: a timer batch the primary
/// ran, replayed step for step.
pub fn due(call: &Call) -> CmdResult<()> {
    internal_only(call.ctx, "FF.DUE")?;
    let batch = parse_due(call.args, &config::limits())?;
    let ran = due::run(call.ctx, db(call.ctx), &batch, None);
    call.ctx.replicate_verbatim();
    Reply(call.ctx.ctx).uint(ran.n as u64);
    Ok(())
}

/// `FF.LOADREC key item`: one item of an AOF rewrite, a partition header
/// (which empties the key) or a record.
pub fn loadrec(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    internal_only(ctx, "FF.LOADREC")?;
    let ([_, item], Some(&key_arg)) = (call.args, call.argv.first()) else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let bad = |e: DecodeError| CmdError::syntax(format!("record does not decode: {e}"));
    let mut key = keys::open_arg(ctx, key_arg);
    let db = db(ctx);
    match item.first() {
        Some(&TAG_PARTITION) => {
            let (p, _) = Partition::decode_tagged_header(item).map_err(bad)?;
            if p.index.partitions != config::partitions() {
                return Err(CmdError::new(
                    Code::PartitionMismatch,
                    "record laid out for another partition count",
                ));
            }
            if !key.is_empty() {
                key.delete();
            }
            key.set_partition(p)?;
        }
        Some(&TAG_EXEC) | Some(&TAG_FLOW) => {
            let p = key
                .partition()?
                .ok_or_else(|| CmdError::syntax("record before its partition header"))?;
            let e = p.load_item(item).map_err(bad)?;
            effects::leases_loaded(db, e.into_iter());
            effects::register_hints(db, &p.index);
            schedule::note_due(ctx, db, &p.index);
        }
        Some(_) => return Err(CmdError::syntax("unknown record tag")),
        None => return Err(CmdError::syntax("empty record")),
    }
    ctx.replicate_verbatim();
    Reply(ctx.ctx).ok();
    Ok(())
}
