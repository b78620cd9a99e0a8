//! The flows domain: creating flows, adding members, edges and edge-group
//! policies, tags, cancelling a flow, and the reads that describe them.
//! Writes that move executions (an edge holding its downstream back or
//! resolved at once, a cancel) settle each moved record like any
//! transition and then drain the flow work they queued.

use flowfabric_core::base::errors::{CmdError, CmdResult};
use flowfabric_core::base::ids::{ExecId, SubmitTarget, Uuid};
use flowfabric_core::flows::requests::{
    parse_add_edge, parse_cancel_flow, parse_create_flow, parse_edge_ref, parse_edges_of,
    parse_flow_id, parse_flow_member, parse_flow_tags, parse_flows_page, parse_set_policy, Side,
};
use flowfabric_core::flows::{Edge, Flow, FlowError, Group};
use flowfabric_core::partition::flow_ops::{flow_state, NewEdge};
use flowfabric_core::partition::Partition;

use crate::shell::call::{db, Call};
use crate::shell::config;
use crate::shell::effects::{
    after_move, drain_flows, env_for, pins, replicate_call, replicate_minted, replicate_with,
};
use crate::shell::keys::{self, Key};
use crate::shell::node::{cluster_mode, now_ms, with_minter};
use crate::shell::reply::{Pairs, Reply};

/// The partition holding flow `fid`, which must exist.
fn flow_partition<'k>(key: &'k mut Key, fid: &ExecId) -> CmdResult<&'k mut Partition> {
    match key.partition()? {
        Some(p) if p.flow(fid.uuid).is_some() => Ok(p),
        _ => Err(FlowError::FlowNotFound.into()),
    }
}

/// `FF.FLOWCREATE target [KIND k] [NAMESPACE ns]`: `[flow id, created]`.
pub fn create(call: &Call) -> CmdResult<()> {
    let limits = config::limits();
    let req = parse_create_flow(call.args, &limits, call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let (id, minted) = match req.target {
        SubmitTarget::Exact(id) => (id, false),
        SubmitTarget::Partition(partition) => {
            let uuid = with_minter(|m| m.uuid());
            (ExecId { partition, uuid }, true)
        }
        SubmitTarget::Auto => {
            if cluster_mode() {
                return Err(CmdError::syntax(
                    "* needs standalone mode; in a cluster pass {fp:N}",
                ));
            }
            let uuid = with_minter(|m| m.uuid());
            let partition =
                u16::try_from(uuid.0 % u128::from(limits.partitions.max(1))).unwrap_or(0);
            (ExecId { partition, uuid }, true)
        }
    };
    let text = id.text();
    let mut key = keys::open_partition(call.ctx, id.partition);
    let p = keys::partition_or_create(&mut key, id.partition, limits.partitions)?;
    let created = p.create_flow(id.uuid, req.kind, req.namespace, now);
    if created {
        let first = minted.then_some(text.as_bytes());
        replicate_call(call, c"FF.FLOWCREATE", first, &pins(req.at, now, &[]));
    }
    let r = Reply(call.ctx.ctx);
    r.array(2);
    r.bulk(text.as_bytes());
    r.uint(u64::from(created));
    Ok(())
}

/// `FF.FLOWADD flow execution`: `[members, added]`.
pub fn add(call: &Call) -> CmdResult<()> {
    let req = parse_flow_member(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.flow.partition);
    let p = flow_partition(&mut key, &req.flow)?;
    let (added, n) = p.add_member(req.flow.uuid, req.member, now)?;
    if added {
        replicate_with(call, c"FF.FLOWADD", &pins(req.at, now, &[]));
    }
    let r = Reply(call.ctx.ctx);
    r.array(2);
    r.uint(n as u64);
    r.uint(u64::from(added));
    Ok(())
}

/// `FF.EDGE flow upstream downstream [options]`: `[edge id, revision,
/// unsatisfied, created]`.
pub fn edge(call: &Call) -> CmdResult<()> {
    let req = parse_add_edge(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let edge_id = req.id.unwrap_or_else(|| with_minter(|m| m.uuid()));
    let mut key = keys::open_partition(call.ctx, req.flow.partition);
    let p = flow_partition(&mut key, &req.flow)?;
    let env = env_for(call, now);
    let ctx = call.ctx;
    let db = db(ctx);
    let added = p.add_edge(
        NewEdge {
            flow: req.flow.uuid,
            id: edge_id,
            up: req.up,
            down: req.down,
            kind: req.kind,
            data_ref: req.data_ref,
            expected_revision: req.revision,
        },
        &env,
        &mut |idx, e, moved| after_move(ctx, db, idx, e, moved),
    )?;
    if !added.existed {
        let text = edge_id.text();
        let minted = req.id.is_none().then_some((c"EDGE_ID", &text[..]));
        replicate_minted(call, c"FF.EDGE", minted, &pins(req.at, now, &[]));
        drain_flows(ctx, p, &env);
    }
    let r = Reply(ctx.ctx);
    r.array(4);
    r.bulk(&edge_id.text());
    r.uint(added.revision);
    r.uint(u64::from(added.unsatisfied));
    r.uint(u64::from(!added.existed));
    Ok(())
}

/// `FF.EDGEPOLICY flow downstream policy`: `set` or `already_set`.
pub fn policy(call: &Call) -> CmdResult<()> {
    let req = parse_set_policy(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.flow.partition);
    let p = flow_partition(&mut key, &req.flow)?;
    let set = p.set_policy(req.flow.uuid, req.down, req.policy, now)?;
    if set {
        replicate_with(call, c"FF.EDGEPOLICY", &pins(req.at, now, &[]));
    }
    Reply(call.ctx.ctx).bulk(if set { b"set" } else { b"already_set" });
    Ok(())
}

/// `FF.FLOWSETTAGS flow key value [...]`: how many tags the flow has.
pub fn set_tags(call: &Call) -> CmdResult<()> {
    let req = parse_flow_tags(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.flow.partition);
    let p = flow_partition(&mut key, &req.flow)?;
    let n = p.set_flow_tags(req.flow.uuid, req.tags, now)?;
    replicate_with(call, c"FF.FLOWSETTAGS", &pins(req.at, now, &[]));
    Reply(call.ctx.ctx).uint(n as u64);
    Ok(())
}

/// `FF.CANCELFLOW flow [POLICY p] [REASON r]`: `[policy, cancelled now,
/// members cancelled by this command, members left for the timer]`.
pub fn cancel(call: &Call) -> CmdResult<()> {
    let req = parse_cancel_flow(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.flow.partition);
    let p = flow_partition(&mut key, &req.flow)?;
    let c = p.cancel_flow(req.flow.uuid, req.policy, req.reason, now)?;
    let (mut cancelled, mut left) = (0, 0);
    if c.now {
        replicate_with(call, c"FF.CANCELFLOW", &pins(req.at, now, &[]));
        let before = p.members_to_cancel(req.flow.uuid);
        drain_flows(call.ctx, p, &env_for(call, now));
        left = p.members_to_cancel(req.flow.uuid);
        cancelled = before.saturating_sub(left);
    }
    let r = Reply(call.ctx.ctx);
    r.array(4);
    r.bulk(c.policy.as_str().as_bytes());
    r.uint(u64::from(c.now));
    r.uint(cancelled as u64);
    r.uint(left as u64);
    Ok(())
}

// ---- reads ----------------------------------------------------------------

/// The fields FF.FLOWGET replies.
const FLOW_FIELDS: usize = 15;

/// `FF.FLOWGET flow`: the flow as field/value pairs, or nil.
pub fn get(call: &Call) -> CmdResult<()> {
    let [fid] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let fid = parse_flow_id(fid, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, fid.partition);
    let r = Reply(call.ctx.ctx);
    let Some(p) = key.partition()? else {
        r.null();
        return Ok(());
    };
    let Some(f) = p.flow(fid.uuid) else {
        r.null();
        return Ok(());
    };
    let tally = p.flow_tally(fid.uuid);
    let cancel = f.cancel.as_ref();
    let pairs = Pairs::start(&r, FLOW_FIELDS);
    pairs
        .bulk("flow_id", fid.text().as_bytes())
        .bulk("kind", &f.kind)
        .bulk("namespace", &f.namespace)
        .bulk("state", flow_state(f, tally).as_bytes())
        .uint("revision", f.revision)
        .uint("node_count", f.members.len() as u64)
        .uint("edge_count", f.edges.len() as u64)
        .uint("created_at", f.created_at)
        .uint("last_mutation_at", f.last_mutation_at)
        .opt_uint("cancelled_at", cancel.map(|c| c.at));
    let opt_bulk = |k: &str, v: Option<&[u8]>| match v {
        Some(v) => {
            pairs.bulk(k, v);
        }
        None => pairs.key(k).null(),
    };
    opt_bulk("cancel_reason", cancel.map(|c| &c.reason[..]));
    opt_bulk(
        "cancellation_policy",
        cancel.map(|c| c.policy.as_str().as_bytes()),
    );
    pairs.uint("cascading", u64::from(p.flow_cascading(fid.uuid)));
    let counts: Vec<(usize, u64)> = tally
        .map(|t| {
            t.counts
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| (i, n))
                .collect()
        })
        .unwrap_or_default();
    pairs.key("members").map(counts.len());
    for (i, n) in counts {
        r.bulk(flowfabric_core::base::state::PublicState::name_of(i).as_bytes());
        r.uint(n);
    }
    pairs.key("tags").map(f.tags.len());
    for (k, v) in &f.tags {
        r.bulk(k);
        r.bulk(v);
    }
    Ok(())
}

/// `FF.FLOWS {fp:N} [AFTER flow] [COUNT n]`: `[next, [[id, created_at,
/// state], ...]]`.
pub fn list(call: &Call) -> CmdResult<()> {
    let page = parse_flows_page(call.args, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, page.partition);
    let r = Reply(call.ctx.ctx);
    let Some(p) = key.partition()? else {
        r.array(2);
        r.null();
        r.array(0);
        return Ok(());
    };
    let (flows, next) = p.flows_page(page.after, page.count);
    let id = |uuid: Uuid| ExecId {
        partition: page.partition,
        uuid,
    };
    r.array(2);
    match next {
        Some(n) => r.bulk(id(n).text().as_bytes()),
        None => r.null(),
    }
    r.array(flows.len());
    for f in flows {
        r.array(3);
        r.bulk(id(f.id).text().as_bytes());
        r.uint(f.created_at);
        r.bulk(flow_state(f, p.flow_tally(f.id)).as_bytes());
    }
    Ok(())
}

/// An edge's fields.
fn reply_edge(r: &Reply, flow: &ExecId, e: &Edge) {
    let exec = |uuid: Uuid| ExecId {
        partition: flow.partition,
        uuid,
    };
    let pairs = Pairs::start(r, 11);
    pairs
        .bulk("edge_id", &e.id.text())
        .bulk("flow_id", flow.text().as_bytes())
        .bulk("upstream_execution_id", exec(e.up).text().as_bytes())
        .bulk("downstream_execution_id", exec(e.down).text().as_bytes())
        .bulk("dependency_kind", e.kind.as_str().as_bytes())
        .bulk("satisfaction_condition", b"all_required");
    match &e.data_ref {
        Some(d) => {
            pairs.bulk("data_passing_ref", d);
        }
        None => pairs.key("data_passing_ref").null(),
    }
    pairs
        .bulk("edge_state", e.state.as_str().as_bytes())
        .uint("created_at", e.created_at)
        .opt_uint("resolved_at", e.resolved_at)
        .bulk("created_by", b"engine");
}

/// Runs `f` on the flow named, if it exists (None when not).
fn with_flow(call: &Call, fid: &ExecId, f: impl FnOnce(Option<&Flow>, &Reply)) -> CmdResult<()> {
    let mut key = keys::open_partition_read(call.ctx, fid.partition);
    let r = Reply(call.ctx.ctx);
    let flow = key.partition()?.and_then(|p| p.flow(fid.uuid));
    f(flow, &r);
    Ok(())
}

/// `FF.EDGEGET flow edge`: the edge, or nil.
pub fn edge_get(call: &Call) -> CmdResult<()> {
    let (fid, eid) = parse_edge_ref(call.args, &config::limits())?;
    with_flow(call, &fid, |f, r| match f.and_then(|f| f.edge(eid)) {
        Some(e) => reply_edge(r, &fid, e),
        None => r.null(),
    })
}

/// `FF.EDGES flow execution IN|OUT`: the edges on that side.
pub fn edges(call: &Call) -> CmdResult<()> {
    let (fid, member, side) = parse_edges_of(call.args, &config::limits(), true)?;
    with_flow(call, &fid, |f, r| {
        let Some(f) = f else {
            r.array(0);
            return;
        };
        let at = match side {
            Side::In => f.into_of(member),
            Side::Out => f.out_of(member),
        };
        r.array(at.len());
        for e in at.iter().filter_map(|&i| f.edge_at(i)) {
            reply_edge(r, &fid, e);
        }
    })
}

/// A group's fields.
fn reply_group(r: &Reply, flow: &ExecId, down: Uuid, g: &Group) {
    let exec = ExecId {
        partition: flow.partition,
        uuid: down,
    };
    Pairs::start(r, 11)
        .bulk("downstream_execution_id", exec.text().as_bytes())
        .bulk("policy", g.policy.kind.as_str().as_bytes())
        .uint("k", u64::from(g.needed()))
        .bulk("on_satisfied", g.policy.on_satisfied.as_str().as_bytes())
        .uint("total_deps", u64::from(g.n))
        .uint("satisfied_count", u64::from(g.succeeded))
        .uint("failed_count", u64::from(g.failed))
        .uint("skipped_count", u64::from(g.skipped))
        .uint("running_count", u64::from(g.running()))
        .bulk("group_state", g.state.as_str().as_bytes())
        .opt_uint("fired_at", g.fired_at);
}

/// `FF.EDGEGROUP flow downstream`: its edge group, or nil.
pub fn group(call: &Call) -> CmdResult<()> {
    let (fid, down, _) = parse_edges_of(call.args, &config::limits(), false)?;
    with_flow(call, &fid, |f, r| match f.and_then(|f| f.group(down)) {
        Some(g) => reply_group(r, &fid, down, g),
        None => r.null(),
    })
}
