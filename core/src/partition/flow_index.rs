//! What the partition's index knows of its flows: which flow each member
//! belongs to, each flow's members per public state, and the flow work
//! still to do. All derived from the records and flows (rebuilt as a flow
//! loads), so a restart or a replica that loaded the same data holds the
//! same work, in the same order.

use std::collections::{BTreeSet, HashMap};

use ahash::RandomState;

use crate::base::ids::Uuid;
use crate::base::state::{PublicState, StateCounts};
use crate::flows::Bucket;

/// A flow's members by public state, and whether it is cancelling them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub counts: StateCounts,
    /// Cancelled with a policy that cancels members: any member that
    /// moves may now be one to cancel.
    pub cancelling: bool,
}

/// A unit of flow work, ordered so every node takes them in the same
/// order: by kind, then the record's admission sequence (or flow id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// The member of this sequence has ended: resolve its pending edges.
    Resolve(u64),
    /// The downstream of this sequence fired a cancel-remaining group:
    /// cancel its upstreams still running.
    CancelSiblings(u64),
    /// Cancel this cancelled flow's remaining members.
    CancelFlow(Uuid),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowIndex {
    pub member_of: HashMap<Uuid, Uuid, RandomState>,
    pub tallies: HashMap<Uuid, Tally, RandomState>,
    /// Work not done yet. A unit may turn out to be empty (its edges were
    /// resolved meanwhile): it is dropped at no cost, so a set holding
    /// extra empty units does the same work as one without.
    pub work: BTreeSet<Work>,
    /// Members that left an end (a replay), and members whose hold may
    /// need a look (parked waiting for their children, or waiting again
    /// while their group is pending: a retry, a delay, an unblock), since
    /// the last drain, by sequence: settled at once by the command or
    /// batch that moved them, never left for later.
    pub revived: Vec<(u64, Bucket)>,
    pub recheck: Vec<u64>,
}

pub fn is_terminal(s: PublicState) -> bool {
    matches!(
        s,
        PublicState::Completed
            | PublicState::Failed
            | PublicState::Cancelled
            | PublicState::Expired
            | PublicState::Skipped
    )
}

impl FlowIndex {
    /// A member moved between public states (`None`: not counted).
    pub fn on_move(
        &mut self,
        member: Uuid,
        seq: u64,
        from: Option<PublicState>,
        to: Option<PublicState>,
    ) {
        let Some(flow) = self.member_of.get(&member) else {
            return;
        };
        if let Some(t) = self.tallies.get_mut(flow) {
            if let Some(c) = from.and_then(|s| t.counts.get_mut(s as usize)) {
                *c = c.saturating_sub(1);
            }
            if let Some(c) = to.and_then(|s| t.counts.get_mut(s as usize)) {
                *c = c.saturating_add(1);
            }
            if t.cancelling && to.is_some() {
                self.work.insert(Work::CancelFlow(*flow));
            }
        }
        let (was, is) = (from.is_some_and(is_terminal), to.is_some_and(is_terminal));
        if is && !was {
            self.work.insert(Work::Resolve(seq));
        }
        if was && to.is_some() && !is {
            // How its end counted (its edges from that end may still be
            // pending when a cascade runs in batches).
            let ended = match from {
                Some(PublicState::Completed) => Bucket::Succeeded,
                Some(PublicState::Skipped) => Bucket::Skipped,
                _ => Bucket::Failed,
            };
            self.revived.push((seq, ended));
        }
        let parked = from == Some(PublicState::Active) && to == Some(PublicState::WaitingChildren);
        let waiting = matches!(to, Some(PublicState::Waiting | PublicState::Delayed));
        if parked || waiting {
            self.recheck.push(seq);
        }
    }

    /// Adds a member counted in `state`.
    pub fn join(&mut self, member: Uuid, flow: Uuid, state: PublicState) {
        self.member_of.insert(member, flow);
        let t = self.tallies.entry(flow).or_default();
        if let Some(c) = t.counts.get_mut(state as usize) {
            *c = c.saturating_add(1);
        }
    }

    /// A member's placement changed without a change of public state (a
    /// lease lost while active, an operator's block lifted): a cancelling
    /// flow may cancel it now, and one that became claimable may be one
    /// its group holds.
    pub fn touched(&mut self, member: Uuid, seq: u64, now_claimable: bool) {
        let Some(flow) = self.member_of.get(&member) else {
            return;
        };
        if self.tallies.get(flow).is_some_and(|t| t.cancelling) {
            self.work.insert(Work::CancelFlow(*flow));
        }
        if now_claimable {
            self.recheck.push(seq);
        }
    }

    /// Whether the member's flow is cancelling its members (a claim
    /// leaves it for the cancel).
    pub fn is_cancelling(&self, member: Uuid) -> bool {
        self.member_of
            .get(&member)
            .and_then(|f| self.tallies.get(f))
            .is_some_and(|t| t.cancelling)
    }

    /// Whether anything waits for a drain.
    pub fn has_work(&self) -> bool {
        !self.work.is_empty() || !self.revived.is_empty() || !self.recheck.is_empty()
    }

    pub fn mem_usage(&self) -> usize {
        self.member_of.len() * 40 + self.tallies.len() * 160 + self.work.len() * 48
    }
}
