//! FF.SUBMIT: create an execution, idempotently, and queue or schedule it.

use super::*;

pub fn submit(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let limits = config::limits();
    let req = requests::parse_submit_keeping(
        call.args,
        &limits,
        origin(ctx),
        |i, bytes| held::hold(call.argv.get(i), bytes),
        lane_name,
    )?;
    let now = req.at.unwrap_or_else(now_ms);
    let partition = match req.target {
        SubmitTarget::Auto => {
            if cluster_mode() {
                return Err(CmdError::syntax(
                    "* needs standalone mode; in a cluster pass the lane's {fp:N} (see FF.PARTITION)",
                ));
            }
            lane_partition(req.spec.lane.as_bytes(), limits.partitions)
        }
        SubmitTarget::Partition(p) => p,
        SubmitTarget::Exact(id) => id.partition,
    };
    let r = Reply(ctx.ctx);
    let namespace: &[u8] = if req.spec.namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        &req.spec.namespace
    };
    let idem = req.spec.idempotency.as_ref().map(|k| {
        (
            idempotency_key(partition, namespace, k),
            req.idempotency_ttl_ms.unwrap_or(1),
        )
    });
    if let Some((ik, _)) = &idem {
        if let Some(first) = keys::read_string(ctx, ik) {
            r.bulk(&first);
            return Ok(());
        }
    }
    let (id, minted) = match req.target {
        SubmitTarget::Exact(id) => (id, false),
        _ => {
            let uuid = with_minter(|m| m.uuid());
            (ExecId { partition, uuid }, true)
        }
    };
    let id_text = id.text();
    let (_key, p) = keys::partition_or_create(ctx, partition, limits.partitions)?;
    let Some((moved, idx, e)) = p.admit_new(id.uuid, |seq| Execution::new(id, req.spec, seq, now))
    else {
        r.bulk(id_text.as_bytes());
        return Ok(());
    };
    settle(ctx, idx, e, moved);
    if let Some((ik, ttl)) = idem {
        keys::write_expiring_string(ctx, &ik, id_text.as_bytes(), now.saturating_add(ttl));
    }
    replicate_call(
        call,
        c"FF.SUBMIT",
        minted.then_some(id_text.as_bytes()),
        &pins(req.at, now, &[]),
    );
    r.bulk(id_text.as_bytes());
    Ok(())
}
