//! Node-wide and internal commands: lane pause/resume, the timer's
//! replicated batches, AOF records.

use super::*;

pub fn pause(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let changed = lanes::set_paused(lane, true);
    call.ctx.replicate_verbatim();
    Reply(call.ctx.ctx).uint(u64::from(changed));
    Ok(())
}

pub fn resume(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let changed = lanes::set_paused(lane, false);
    call.ctx.replicate_verbatim();
    if changed {
        // Waiting claimers may now take this lane's work.
        blocking::note_lane(lane);
    }
    Reply(call.ctx.ctx).uint(u64::from(changed));
    Ok(())
}

pub fn due(call: &Call) -> CmdResult<()> {
    internal_only(call.ctx, "FF.DUE")?;
    let batch = requests::parse_due(call.args, &config::limits())?;
    let n = timer::process_partition(call.ctx, db(call.ctx), &batch, None);
    call.ctx.replicate_verbatim();
    Reply(call.ctx.ctx).uint(n as u64);
    Ok(())
}

pub fn loadrec(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    internal_only(ctx, "FF.LOADREC")?;
    let ([_, blob], Some(&key_arg)) = (call.args, call.argv.first()) else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let bad = |e: DecodeError| CmdError::syntax(format!("record does not decode: {e}"));
    let key = keys::open_arg(ctx, key_arg);
    let (tag, body) = blob
        .split_first()
        .ok_or_else(|| CmdError::syntax("empty record"))?;
    let db = db(ctx);
    match *tag {
        TAG_PARTITION => {
            let (p, _) = Partition::decode_header(body).map_err(bad)?;
            if p.index.partitions != config::partitions() {
                return Err(CmdError::new(
                    "PARTITION_MISMATCH",
                    "record laid out for another partition count",
                ));
            }
            if !key.is_empty() {
                key.delete();
            }
            key.set_partition(p)?;
        }
        TAG_EXEC => {
            let p = keys::partition(&key)?
                .ok_or_else(|| CmdError::syntax("record before its partition header"))?;
            let e = p.load_record(body).map_err(bad)?;
            workers::leases_loaded(db, std::iter::once(e));
            types::register_hints(db, &p.index);
            timer::note_due(ctx, db, &p.index);
        }
        _ => return Err(CmdError::syntax("unknown record tag")),
    }
    ctx.replicate_verbatim();
    Reply(ctx.ctx).ok();
    Ok(())
}
