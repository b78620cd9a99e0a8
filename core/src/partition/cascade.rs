//! Flow work on a partition's records: resolving the edges of a member
//! that ended, firing the edge groups they complete (a satisfied
//! downstream released, an impossible one skipped, which ends it and so
//! resolves its own edges in turn), cancelling the losing siblings of a
//! cancel-remaining group and the members of a cancelled flow.
//!
//! The command that ends an upstream runs this work before it returns, up
//! to a budget of units (one edge resolved or one member moved); what is
//! left stays in the index's work set and the node timer continues it in
//! batches. The set is derived from the records and flows, so a restart or
//! a replica finishes the same work in the same order.

use std::collections::HashMap;

use ahash::RandomState;
use smallvec::SmallVec;

use crate::base::ids::Uuid;
use crate::base::state::{EligibilityState, OwnershipState};
use crate::execution::record::Execution;
use crate::flows::{bucket_of, Bucket, CancelPolicy, EdgeState, Flow, GroupState};
use crate::partition::flow_index::Work;
use crate::partition::index::PartitionIndex;
use crate::partition::moves::{self, Env, FlowStep, OnMove};
use crate::partition::records::Partition;

/// The units of flow work one command does before leaving the rest to
/// the node timer: a unit costs a few microseconds with its effects (the
/// feed's entry, the claim board), so a command stays within a few ms.
pub const CASCADE_BUDGET: usize = 500;

/// The most units one work item does before the run looks at its time
/// bound again (the same on every node: a replica is told the units).
const CHUNK: usize = 128;

/// Why siblings a fired group cancels end.
const SIBLINGS_SATISFIED: &[u8] = b"sibling_quorum_satisfied";
const SIBLINGS_IMPOSSIBLE: &[u8] = b"sibling_quorum_impossible";

type Records = HashMap<Uuid, Box<Execution>, RandomState>;

/// Applies one step to a member and reports its move.
fn step(
    index: &mut PartitionIndex,
    records: &mut Records,
    uuid: Uuid,
    s: FlowStep,
    env: &Env,
    on_move: &mut OnMove,
) -> bool {
    let Some(e) = records.get_mut(&uuid) else {
        return false;
    };
    match moves::flow_step(index, e, s, env) {
        Some(m) => {
            on_move(index, e, m);
            true
        }
        None => false,
    }
}

/// Whether a cancelled flow's policy cancels this member now.
pub fn to_cancel(policy: CancelPolicy, e: &Execution) -> bool {
    !e.is_terminal()
        && match policy {
            CancelPolicy::FlowOnly => false,
            CancelPolicy::CancelAll => true,
            CancelPolicy::CancelPending => e.ownership != OwnershipState::Leased,
        }
}

impl Partition {
    /// Runs the flow work commands left: members revived or to recheck are
    /// settled at once, then up to `budget` units of work. Returns the
    /// units done.
    /// `stop` ends the run early (the timer's time bound); the units done
    /// are what a replica is told to do.
    pub fn run_flow_work(
        &mut self,
        env: &Env,
        budget: usize,
        stop: &mut dyn FnMut() -> bool,
        on_move: &mut OnMove,
    ) -> usize {
        self.settle_moved(env, on_move);
        let mut done = 0usize;
        while done < budget && !stop() {
            let Some(&w) = self.index.flows.work.first() else {
                break;
            };
            let left = (budget - done).min(CHUNK);
            let (used, finished) = match w {
                Work::Resolve(seq) => self.resolve_ended(seq, env, left, on_move),
                Work::CancelSiblings(seq) => self.cancel_siblings(seq, env, left, on_move),
                Work::CancelFlow(f) => self.cancel_members(f, env, left, on_move),
            };
            done = done.saturating_add(used);
            if finished || used == 0 {
                self.index.flows.work.remove(&w);
            }
        }
        // What the work itself moved (a released member is waiting again).
        self.settle_moved(env, on_move);
        done
    }

    /// Members replayed, parked or waiting again since the last drain.
    fn settle_moved(&mut self, env: &Env, on_move: &mut OnMove) {
        // A settled member may ask for another look (a hold or release
        // moves it), which then finds nothing to do: a few rounds at most.
        for _ in 0..4 {
            if self.index.flows.revived.is_empty() && self.index.flows.recheck.is_empty() {
                return;
            }
            self.settle_round(env, on_move);
        }
    }

    fn settle_round(&mut self, env: &Env, on_move: &mut OnMove) {
        for (seq, ended) in std::mem::take(&mut self.index.flows.revived) {
            self.on_revived(seq, ended, env, on_move);
        }
        for seq in std::mem::take(&mut self.index.flows.recheck) {
            let Some(u) = self.at_seq(seq) else { continue };
            let g = self
                .flow_of(u)
                .and_then(|f| self.flows.get(&f))
                .and_then(|f| f.group(u));
            let Some(e) = self.records.get(&u) else {
                continue;
            };
            let held = e.eligibility == EligibilityState::BlockedByDependencies;
            let s = match g {
                Some(g) if g.state == GroupState::Satisfied && held => FlowStep::Release,
                Some(g) if g.state == GroupState::Pending && g.n > 0 && !held => FlowStep::Hold,
                _ => continue,
            };
            let (index, records) = (&mut self.index, &mut self.records);
            step(index, records, u, s, env, on_move);
        }
    }

    /// The flow member admitted with sequence `seq`, and its flow.
    fn member_at(&self, seq: u64) -> Option<(Uuid, Uuid)> {
        let u = self.at_seq(seq)?;
        Some((u, self.flow_of(u)?))
    }

    /// The flow a member belongs to.
    pub fn flow_of(&self, member: Uuid) -> Option<Uuid> {
        self.index.flows.member_of.get(&member).copied()
    }

    /// A member left its end (a replay). As a downstream, its group starts
    /// over: edges from upstreams still held go back to pending and are
    /// resolved again from what those upstreams are now. As an upstream,
    /// the edges it resolved into groups that have not fired are taken
    /// back, to be resolved when it ends again.
    fn on_revived(&mut self, seq: u64, ended: Bucket, env: &Env, on_move: &mut OnMove) {
        let Some((u, fid)) = self.member_at(seq) else {
            return;
        };
        let Partition {
            index,
            records,
            flows,
            ..
        } = self;
        let Some(flow) = flows.get_mut(&fid) else {
            return;
        };
        settle_out(flow, u, ended, env.now);
        let into: SmallVec<[u32; 8]> = flow.into_of(u).iter().copied().collect();
        if into.is_empty() {
            return;
        }
        let mut ended: SmallVec<[u64; 8]> = SmallVec::new();
        let Some(g) = flow.groups.get_mut(&u) else {
            return;
        };
        g.reset();
        for &i in &into {
            let Some(edge) = flow.edges.get_mut(i as usize) else {
                continue;
            };
            match records.get(&edge.up) {
                Some(up) => {
                    edge.state = EdgeState::Pending;
                    edge.resolved_at = None;
                    if up.is_terminal() {
                        ended.push(up.queue_seq);
                    }
                }
                // Its upstream is gone (retention): its resolution stands.
                None => {
                    if let Some(b) = edge.state.bucket() {
                        match b {
                            Bucket::Succeeded => g.succeeded += 1,
                            Bucket::Failed => g.failed += 1,
                            Bucket::Skipped => g.skipped += 1,
                        }
                    }
                }
            }
        }
        let fired = g.fire(env.now);
        let cancels = g.cancels_remaining();
        step(index, records, u, FlowStep::Hold, env, on_move);
        for s in ended {
            index.flows.work.insert(Work::Resolve(s));
        }
        if let Some(state) = fired {
            apply_fired(index, records, u, state, cancels, env, on_move);
        }
    }

    /// Resolves the pending edges out of the ended member `seq`, at most
    /// `left` of them; says how many and whether none is left.
    fn resolve_ended(
        &mut self,
        seq: u64,
        env: &Env,
        left: usize,
        on_move: &mut OnMove,
    ) -> (usize, bool) {
        let Some((up, fid)) = self.member_at(seq) else {
            return (0, true);
        };
        let Partition {
            index,
            records,
            flows,
            ..
        } = self;
        let bucket = match records.get(&up) {
            Some(e) if e.is_terminal() => bucket_of(e.terminal),
            _ => return (0, true),
        };
        let Some(flow) = flows.get_mut(&fid) else {
            return (0, true);
        };
        let pending: SmallVec<[u32; 8]> = flow
            .out_of(up)
            .iter()
            .copied()
            .filter(|&i| {
                flow.edge_at(i)
                    .is_some_and(|e| e.state == EdgeState::Pending)
            })
            .collect();
        let mut used = 0;
        for &i in &pending {
            if used == left {
                return (used, false);
            }
            used += 1;
            let Some(edge) = flow.edges.get_mut(i as usize) else {
                continue;
            };
            edge.state = EdgeState::of(bucket);
            edge.resolved_at = Some(env.now);
            let down = edge.down;
            let passes = edge.data_ref.is_some() && bucket == Bucket::Succeeded;
            let Some(g) = flow.groups.get_mut(&down) else {
                continue;
            };
            let open = !g.is_fired();
            let fired = g.resolve(bucket, env.now);
            let cancels = g.cancels_remaining();
            if passes && open {
                let result = records.get(&up).and_then(|e| e.result.clone());
                let live = records.get(&down).is_some_and(|d| !d.is_terminal());
                if let (Some(r), true) = (result, live) {
                    step(index, records, down, FlowStep::Payload(r), env, on_move);
                }
            }
            if let Some(state) = fired {
                apply_fired(index, records, down, state, cancels, env, on_move);
            }
        }
        (used, true)
    }

    /// Resolves every pending edge out of the ended member `seq` now.
    pub(crate) fn resolve_now(&mut self, seq: u64, env: &Env, on_move: &mut OnMove) {
        self.resolve_ended(seq, env, usize::MAX, on_move);
    }

    /// Cancels the upstreams still running of the fired cancel-remaining
    /// group of downstream `seq`, at most `left` of them.
    fn cancel_siblings(
        &mut self,
        seq: u64,
        env: &Env,
        left: usize,
        on_move: &mut OnMove,
    ) -> (usize, bool) {
        let Some((down, fid)) = self.member_at(seq) else {
            return (0, true);
        };
        let Partition {
            index,
            records,
            flows,
            ..
        } = self;
        let Some(flow) = flows.get(&fid) else {
            return (0, true);
        };
        let reason = match flow.group(down) {
            Some(g) if g.cancels_remaining() && g.state == GroupState::Satisfied => {
                SIBLINGS_SATISFIED
            }
            Some(g) if g.cancels_remaining() => SIBLINGS_IMPOSSIBLE,
            _ => return (0, true),
        };
        let mut used = 0;
        for e in flow.into_of(down).iter().filter_map(|&i| flow.edge_at(i)) {
            if e.state != EdgeState::Pending || records.get(&e.up).is_none_or(|u| u.is_terminal()) {
                continue;
            }
            if used == left {
                return (used, false);
            }
            used += 1;
            step(
                index,
                records,
                e.up,
                FlowStep::Cancel(reason.into()),
                env,
                on_move,
            );
        }
        (used, true)
    }

    /// Cancels the members a cancelled flow's policy cancels, at most
    /// `left` of them.
    fn cancel_members(
        &mut self,
        fid: Uuid,
        env: &Env,
        left: usize,
        on_move: &mut OnMove,
    ) -> (usize, bool) {
        let Partition {
            index,
            records,
            flows,
            ..
        } = self;
        let Some(flow) = flows.get(&fid) else {
            return (0, true);
        };
        let Some(c) = &flow.cancel else {
            return (0, true);
        };
        let mut used = 0;
        for &m in &flow.members {
            if !records.get(&m).is_some_and(|e| to_cancel(c.policy, e)) {
                continue;
            }
            if used == left {
                return (used, false);
            }
            used += 1;
            step(
                index,
                records,
                m,
                FlowStep::Cancel(c.reason.clone()),
                env,
                on_move,
            );
        }
        (used, true)
    }

    /// The work a loaded flow leaves, exactly (no empty units): members
    /// ended with edges pending, fired cancel-remaining groups with
    /// upstreams still running, members a cancelled flow still cancels.
    pub(crate) fn derive_flow_work(&mut self, fid: Uuid) {
        let Some(flow) = self.flows.get(&fid) else {
            return;
        };
        let records = &self.records;
        let work = &mut self.index.flows.work;
        for &m in &flow.members {
            let Some(e) = records.get(&m) else { continue };
            let pending_out = || {
                flow.out_of(m)
                    .iter()
                    .filter_map(|&i| flow.edge_at(i))
                    .any(|x| x.state == EdgeState::Pending)
            };
            if e.is_terminal() && pending_out() {
                work.insert(Work::Resolve(e.queue_seq));
            }
            let running_sibling = || {
                flow.into_of(m)
                    .iter()
                    .filter_map(|&i| flow.edge_at(i))
                    .any(|x| {
                        x.state == EdgeState::Pending
                            && records.get(&x.up).is_some_and(|u| !u.is_terminal())
                    })
            };
            if flow.group(m).is_some_and(|g| g.cancels_remaining()) && running_sibling() {
                work.insert(Work::CancelSiblings(e.queue_seq));
            }
        }
        if self.members_to_cancel(fid) > 0 {
            self.index.flows.work.insert(Work::CancelFlow(fid));
        }
    }
}

/// A revived upstream's edges: those into groups that have fired keep
/// (or, still pending from a cascade run in batches, get) the resolution
/// of the end it left, which only counts; those into groups that have not
/// fired go back to pending, to be resolved when it ends again. So a
/// replay between two batches of a cascade ends the same as one after it,
/// and a reloaded copy derives no work the live partition does not hold.
fn settle_out(flow: &mut Flow, up: Uuid, ended: Bucket, now: u64) {
    let out: SmallVec<[u32; 8]> = flow.out_of(up).iter().copied().collect();
    for i in out {
        let Some(edge) = flow.edges.get_mut(i as usize) else {
            continue;
        };
        let Some(g) = flow.groups.get_mut(&edge.down) else {
            continue;
        };
        match (g.is_fired(), edge.state.bucket()) {
            (true, Some(_)) => {}
            (true, None) => {
                g.resolve(ended, now);
                edge.state = EdgeState::of(ended);
                edge.resolved_at = Some(now);
            }
            (false, Some(b)) => {
                g.unresolve(b);
                edge.state = EdgeState::Pending;
                edge.resolved_at = None;
            }
            (false, None) => {}
        }
    }
}

/// A group fired: its downstream is released or skipped, and a
/// cancel-remaining group's running siblings are queued for cancelling.
fn apply_fired(
    index: &mut PartitionIndex,
    records: &mut Records,
    down: Uuid,
    state: GroupState,
    cancels: bool,
    env: &Env,
    on_move: &mut OnMove,
) {
    let s = match state {
        GroupState::Satisfied => FlowStep::Release,
        GroupState::Impossible => FlowStep::Skip,
        GroupState::Pending => return,
    };
    step(index, records, down, s, env, on_move);
    if let (true, Some(d)) = (cancels, records.get(&down)) {
        index.flows.work.insert(Work::CancelSiblings(d.queue_seq));
    }
}

#[cfg(test)]
#[path = "cascade_tests.rs"]
mod tests;
