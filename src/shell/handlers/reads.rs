//! Read-only commands: one execution, listings, node information.

use super::*;

pub fn get_tags(call: &Call) -> CmdResult<()> {
    let Some((id, wanted)) = call.args.split_first() else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (_k, e) = keys::require_exec_arg(call.ctx, call.argv.first(), &id)?;
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
    let ikey = keys::open_index(call.ctx, l.partition);
    let r = Reply(call.ctx.ctx);
    let Some(idx) = keys::index(&ikey)? else {
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return Ok(());
    };
    // With a lane filter records are opened to check it; scan a bounded
    // window either way.
    let scan = if l.lane.is_some() {
        l.count.saturating_mul(4)
    } else {
        l.count
    };
    let window = idx.members_after(l.state, l.cursor, scan);
    let mut ids = Vec::with_capacity(l.count.min(window.len()));
    let mut last = None;
    for &(st, uuid) in &window {
        if ids.len() >= l.count {
            break;
        }
        last = Some((st, uuid));
        let id = ExecId {
            partition: l.partition,
            uuid,
        };
        let key = id.key();
        if let Some(lane) = l.lane {
            let ekey = keys::open(call.ctx, key.as_bytes());
            match keys::exec(&ekey) {
                Ok(Some(e)) if e.lane.as_ref() == lane => {}
                _ => continue,
            }
        }
        ids.push(key);
    }
    let more = last.is_some() && (window.len() == scan || ids.len() >= l.count);
    let cursor = match (more, last) {
        (true, Some((st, u))) => {
            let name =
                crate::core::state::PublicState::from_u8(st).map_or("waiting", |s| s.as_str());
            format!("{name}:{u}")
        }
        _ => "0".to_string(),
    };
    r.array(2);
    r.bulk(cursor.as_bytes());
    r.array(ids.len());
    for id in &ids {
        r.bulk(id.as_bytes());
    }
    Ok(())
}

/// Lanes with their executions per public state, over the partitions this
/// node holds.
pub fn lanes_cmd(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let mut totals: std::collections::BTreeMap<Box<str>, [u64; 12]> =
        std::collections::BTreeMap::new();
    for p in 0..config::partitions() {
        let ikey = keys::open_index(call.ctx, p);
        if let Ok(Some(idx)) = keys::index(&ikey) {
            for (lane, counts) in &idx.lane_counts {
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
pub fn leases(call: &Call) -> CmdResult<()> {
    let [instance] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let mut found: Vec<(String, u64)> = Vec::new();
    for p in 0..config::partitions() {
        let ikey = keys::open_index(call.ctx, p);
        let Ok(Some(idx)) = keys::index(&ikey) else {
            continue;
        };
        for &(expires, uuid) in &idx.lease_expiry {
            let id = ExecId { partition: p, uuid }.key();
            let ekey = keys::open(call.ctx, id.as_bytes());
            if let Ok(Some(e)) = keys::exec(&ekey) {
                if e.current_attempt()
                    .is_some_and(|a| a.worker_instance_id.as_ref() == *instance)
                {
                    found.push((id, expires));
                }
            }
        }
    }
    let r = Reply(call.ctx.ctx);
    r.array(found.len() * 2);
    for (id, expires) in &found {
        r.bulk(id.as_bytes());
        r.uint(*expires);
    }
    Ok(())
}

fn read_exec<'a>(call: &Call) -> CmdResult<(redis_module::key::RedisKeyWritable, &'a Execution)> {
    let [id] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = requests::parse_exec_id(id, &config::limits())?;
    let (k, e) = keys::require_exec_arg(call.ctx, call.argv.first(), &id)?;
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
    Pairs::start(&r, 7)
        .bulk("version", VERSION.as_bytes())
        .uint("timer_firings", firings)
        .uint("timer_max_firing_us", max_firing)
        .uint("encoding", 1)
        .uint("partitions", u64::from(l.partitions))
        .uint("lease_ms", l.default_lease_ms)
        .uint("max_payload_bytes", l.max_payload_bytes as u64);
    Ok(())
}

pub fn partition(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let p = lane_partition(lane.as_bytes(), config::partitions());
    Reply(call.ctx.ctx).bulk(format!("{{fp:{p}}}").as_bytes());
    Ok(())
}
