//! Read-only commands: one execution, listings, node information.

use super::*;

pub fn get_tags(call: &Call) -> CmdResult<()> {
    let Some((id, wanted)) = call.args.split_first() else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (_k, _, e) = keys::require_exec(call.ctx, &id)?;
    let r = Reply(call.ctx.ctx);
    if wanted.is_empty() {
        r.array(e.tags().len() * 2);
        for (k, v) in e.tags() {
            r.bulk(k);
            r.bulk(v);
        }
    } else {
        r.array(wanted.len());
        for w in wanted {
            match e.tags().iter().find(|(k, _)| k.as_ref() == *w) {
                Some((_, v)) => r.bulk(v),
                None => r.null(),
            }
        }
    }
    Ok(())
}

pub fn paused(call: &Call) -> CmdResult<()> {
    let list = lanes::paused();
    let r = Reply(call.ctx.ctx);
    r.array(list.len());
    for l in &list {
        r.bulk(l.as_bytes());
    }
    Ok(())
}

/// Cursor listing of a partition's executions.
pub fn list(call: &Call) -> CmdResult<()> {
    let l = requests::parse_list(call.args, &config::limits())?;
    let key = keys::open_partition(call.ctx, l.partition);
    let part = keys::partition(&key)?;
    let page = part.map(|p| p.list(l.state, l.lane, l.cursor, l.count));
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

/// Lanes with their executions per public state, over the partitions this
/// node holds.
pub fn lanes_cmd(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let mut totals: std::collections::BTreeMap<std::sync::Arc<str>, [u64; 12]> =
        std::collections::BTreeMap::new();
    for p in (0..config::partitions()).filter(|&p| !migration::is_importing(p)) {
        let key = keys::open_partition(call.ctx, p);
        if let Ok(Some(part)) = keys::partition(&key) {
            for (lane, counts) in part.index.lanes.iter().map(|(n, l)| (n, &l.counts)) {
                let t = totals.entry(lane.clone()).or_insert([0; 12]);
                for (a, b) in t.iter_mut().zip(counts) {
                    *a = a.saturating_add(*b);
                }
            }
        }
    }
    let r = Reply(call.ctx.ctx);
    r.array(totals.len() * 2);
    for (lane, counts) in &totals {
        r.bulk(lane.as_bytes());
        let nonzero: Vec<(usize, u64)> = counts
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c > 0)
            .collect();
        r.array(nonzero.len() * 2);
        for (i, c) in nonzero {
            let name = u8::try_from(i)
                .ok()
                .and_then(crate::core::state::PublicState::from_u8)
                .map_or("", |s| s.as_str());
            r.bulk(name.as_bytes());
            r.uint(c);
        }
    }
    Ok(())
}

/// The live leases a worker instance holds on this node.
fn read_exec<'a>(call: &Call) -> CmdResult<(keys::Key, &'a Execution)> {
    let [id] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (k, _, e) = keys::require_exec(call.ctx, &id)?;
    Ok((k, e))
}

pub fn get(call: &Call) -> CmdResult<()> {
    let (_k, e) = read_exec(call)?;
    crate::shell::describe::reply_execution(&Reply(call.ctx.ctx), e);
    Ok(())
}

pub fn result(call: &Call) -> CmdResult<()> {
    let (_k, e) = read_exec(call)?;
    let r = Reply(call.ctx.ctx);
    match &e.result {
        Some(b) => r.bulk(b),
        None => r.null(),
    }
    Ok(())
}

pub fn payload(call: &Call) -> CmdResult<()> {
    let (_k, e) = read_exec(call)?;
    Reply(call.ctx.ctx).bulk(&e.payload);
    Ok(())
}

pub fn version(call: &Call) -> CmdResult<()> {
    let l = config::limits();
    let r = Reply(call.ctx.ctx);
    let max_firing = timer::MAX_FIRING_US.load(std::sync::atomic::Ordering::Relaxed);
    let firings = timer::FIRINGS.load(std::sync::atomic::Ordering::Relaxed);
    let max_cpu = timer::MAX_FIRING_CPU_US.load(std::sync::atomic::Ordering::Relaxed);
    let counts = node_counts(call.ctx);
    let p = Pairs::start(&r, 9);
    p.bulk("version", VERSION.as_bytes())
        .uint("timer_firings", firings)
        .uint("timer_max_firing_us", max_firing)
        .uint("timer_max_firing_cpu_us", max_cpu)
        .uint("encoding", u64::from(types::ENCVER.unsigned_abs()))
        .uint("partitions", u64::from(l.partitions))
        .uint("lease_ms", l.default_lease_ms)
        .uint("max_payload_bytes", l.max_payload_bytes as u64);
    let by_state = p.key("executions");
    let states = Pairs::start(by_state, counts.len());
    for (i, n) in counts.iter().enumerate() {
        let name = u8::try_from(i)
            .ok()
            .and_then(PublicState::from_u8)
            .map_or("unknown", PublicState::as_str);
        states.uint(name, *n);
    }
    Ok(())
}

/// Executions per public state over the partitions this node holds (in
/// the current db): each partition keeps its counts, so one pass over the
/// partitions, not over the executions.
pub fn node_counts(ctx: &Context) -> [u64; 12] {
    let mut total = [0u64; 12];
    for p in (0..config::partitions()).filter(|&p| !migration::is_importing(p)) {
        let key = keys::open_partition(ctx, p);
        if let Ok(Some(part)) = keys::partition(&key) {
            for (t, n) in total.iter_mut().zip(part.index.counts) {
                *t = t.saturating_add(n);
            }
        }
    }
    total
}

pub fn partition(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let p = lane_partition(lane.as_bytes(), config::partitions());
    Reply(call.ctx.ctx).bulk(format!("{{fp:{p}}}").as_bytes());
    Ok(())
}
