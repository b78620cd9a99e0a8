//! Node-wide commands: lane pause and resume (claims on this node skip a
//! paused lane), the paused list, and FF.VERSION (build, settings, the
//! timer's bounds, executions per state).

use std::sync::atomic::Ordering;

use flowfabric_core::base::errors::CmdResult;
use flowfabric_core::base::state::{PublicState, StateCounts};
use redis_module::Context;

use crate::shell::call::{lane_arg, Call};
use crate::shell::node::{paused_lanes, set_paused};
use crate::shell::persistence::ENCVER;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::{blocking, config, keys, schedule};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn pause(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let changed = set_paused(lane, true);
    call.ctx.replicate_verbatim();
    Reply(call.ctx.ctx).uint(u64::from(changed));
    Ok(())
}

pub fn resume(call: &Call) -> CmdResult<()> {
    let lane = lane_arg(call)?;
    let changed = set_paused(lane, false);
    call.ctx.replicate_verbatim();
    if changed {
        // Waiting claimers may now take this lane's work.
        blocking::note_lane(lane);
    }
    Reply(call.ctx.ctx).uint(u64::from(changed));
    Ok(())
}

pub fn paused(call: &Call) -> CmdResult<()> {
    let list = paused_lanes();
    let r = Reply(call.ctx.ctx);
    r.array(list.len());
    for l in &list {
        r.bulk(l.as_bytes());
    }
    Ok(())
}

pub fn version(call: &Call) -> CmdResult<()> {
    let l = config::limits();
    let r = Reply(call.ctx.ctx);
    let max_firing = schedule::MAX_FIRING_US.load(Ordering::Relaxed);
    let firings = schedule::FIRINGS.load(Ordering::Relaxed);
    let max_cpu = schedule::MAX_FIRING_CPU_US.load(Ordering::Relaxed);
    let counts = node_counts(call.ctx);
    let p = Pairs::start(&r, 9);
    p.bulk("version", VERSION.as_bytes())
        .uint("timer_firings", firings)
        .uint("timer_max_firing_us", max_firing)
        .uint("timer_max_firing_cpu_us", max_cpu)
        .uint("encoding", u64::from(ENCVER.unsigned_abs()))
        .uint("partitions", u64::from(l.partitions))
        .uint("lease_ms", l.default_lease_ms)
        .uint("max_payload_bytes", l.max_payload_bytes as u64);
    let by_state = p.key("executions");
    let states = Pairs::start(by_state, counts.len());
    for (i, n) in counts.iter().enumerate() {
        states.uint(PublicState::name_of(i), *n);
    }
    Ok(())
}

/// Executions per public state over the partitions this node holds (in
/// the current db): each partition keeps its counts, so one pass over the
/// partitions, not over the executions.
pub fn node_counts(ctx: &Context) -> StateCounts {
    let mut total = [0u64; PublicState::COUNT];
    keys::each_partition(ctx, |part| {
        for (t, n) in total.iter_mut().zip(part.index.counts) {
            *t = t.saturating_add(n);
        }
    });
    total
}
