//! FF.SUBMIT: create an execution, idempotently, and queue or schedule it.

use super::*;

pub fn submit(call: &Call) -> CmdResult<()> {
    let ctx = call.ctx;
    let limits = config::limits();
    let origin = origin(ctx);
    let req = requests::parse_submit(call.args, &limits, origin)?;
    let now = req.at.unwrap_or_else(now_ms);
    let partition = match req.target {
        SubmitTarget::Auto => {
            if ctx.get_flags().contains(ContextFlags::CLUSTER) {
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
    let (id, id_string) = match req.target {
        SubmitTarget::Exact(id) => (id, None),
        _ => {
            let id = ExecId {
                partition,
                uuid: with_minter(|m| m.uuid()),
            };
            (id, Some(ctx.create_string(id.key().as_bytes())))
        }
    };
    let name = match (&id_string, call.argv.first()) {
        (Some(s), _) => s.inner,
        (None, Some(&arg)) => arg,
        (None, None) => return Err(CmdError::syntax("missing target")),
    };
    let ekey = keys::open_arg(ctx, name);
    let id_text = unsafe { keys::string_bytes(name) };
    if keys::exec(&ekey)?.is_some() {
        r.bulk(id_text);
        return Ok(());
    }
    let (_ikey, idx) = keys::index_or_create(ctx, partition, limits.partitions)?;
    let e = Execution::new(id, req.spec, idx.take_seq(), now);
    let moved = engine::admit(idx, &e, &timer::env(now));
    let db = db(ctx);
    if moved.now_claimable {
        // Only a new queue head changes what claims should look at.
        if idx
            .head(&e.lane, &e.caps)
            .is_some_and(|(k, _)| k == QueueKey::of(&e))
        {
            refresh_hint(db, idx, &e.lane, &e.caps);
        }
        signal_ready(ctx, partition);
    }
    timer::note_due(ctx, db, idx);
    ekey.set_value(&EXEC_TYPE, e).map_err(|_| wrongtype())?;
    if let Some((ik, ttl)) = idem {
        keys::write_expiring_string(ctx, &ik, id_text, now.saturating_add(ttl));
    }
    replicate_call(
        call,
        c"FF.SUBMIT",
        id_string.as_ref().map(|s| s.inner),
        &pins(req.at, now, &[]),
    );
    r.bulk(id_text);
    Ok(())
}
