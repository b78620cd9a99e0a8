//! A flow: a DAG of executions of one partition, its edges and the edge
//! group of each downstream. The adjacency is derived from the edges (and
//! rebuilt when a flow loads), so only the edges are persisted.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ahash::RandomState;
use smallvec::SmallVec;

use crate::base::ids::Uuid;
use crate::base::state::byte_enum;
use crate::flows::edge::Edge;
use crate::flows::errors::FlowError;
use crate::flows::group::{Group, Policy};

byte_enum!(
    /// What cancelling a flow does to its members: `flow_only` only the
    /// flow (it takes no more members or edges); `cancel_all` every member
    /// not yet ended; `cancel_pending` every member not ended and not
    /// running under a live lease (running work finishes).
    CancelPolicy {
        FlowOnly = 0 => "flow_only",
        CancelAll = 1 => "cancel_all",
        CancelPending = 2 => "cancel_pending",
    }
);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    pub at: u64,
    pub reason: Box<[u8]>,
    pub policy: CancelPolicy,
}

/// The most members and edges one flow holds: what a command walking a
/// flow (a cycle check, a replay's reset, a listing) can touch.
pub const MEMBERS_MAX: usize = 10_000;
pub const EDGES_MAX: usize = 10_000;

pub type Tags = BTreeMap<Box<[u8]>, Box<[u8]>>;

/// Positions in `Flow::edges`.
type EdgeList = SmallVec<[u32; 2]>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub id: Uuid,
    pub kind: Box<[u8]>,
    pub namespace: Box<[u8]>,
    pub created_at: u64,
    pub last_mutation_at: u64,
    /// +1 for each member or edge added: an edge names the revision it
    /// was planned against.
    pub revision: u64,
    pub cancel: Option<Cancellation>,
    pub tags: Tags,
    /// In the order they joined.
    pub members: Vec<Uuid>,
    /// In the order they were added.
    pub edges: Vec<Edge>,
    /// By downstream execution.
    pub groups: BTreeMap<Uuid, Group>,
    // Derived from `edges`:
    pub(crate) by_id: HashMap<Uuid, u32, RandomState>,
    pub(crate) out: HashMap<Uuid, EdgeList, RandomState>,
    pub(crate) into: HashMap<Uuid, EdgeList, RandomState>,
}

fn pos(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Flow {
    pub fn new(id: Uuid, kind: Box<[u8]>, namespace: Box<[u8]>, now: u64) -> Flow {
        Flow {
            id,
            kind,
            namespace,
            created_at: now,
            last_mutation_at: now,
            ..Flow::default()
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some()
    }

    pub fn check_open(&self) -> Result<(), FlowError> {
        if self.is_cancelled() {
            return Err(FlowError::FlowAlreadyTerminal);
        }
        Ok(())
    }

    /// Rebuilds the adjacency from the edges (after a load).
    pub fn index_edges(&mut self) {
        self.by_id.clear();
        self.out.clear();
        self.into.clear();
        for (i, e) in self.edges.iter().enumerate() {
            self.by_id.insert(e.id, pos(i));
            self.out.entry(e.up).or_default().push(pos(i));
            self.into.entry(e.down).or_default().push(pos(i));
        }
    }

    pub fn edge(&self, id: Uuid) -> Option<&Edge> {
        self.edges.get(*self.by_id.get(&id)? as usize)
    }

    pub fn edge_at(&self, i: u32) -> Option<&Edge> {
        self.edges.get(i as usize)
    }

    /// Positions of the edges out of `up` (in the order they were added).
    pub fn out_of(&self, up: Uuid) -> &[u32] {
        self.out.get(&up).map_or(&[], |v| v.as_slice())
    }

    /// Positions of the edges into `down`.
    pub fn into_of(&self, down: Uuid) -> &[u32] {
        self.into.get(&down).map_or(&[], |v| v.as_slice())
    }

    /// The edge already joining `up` to `down`, if any.
    pub fn between(&self, up: Uuid, down: Uuid) -> Option<&Edge> {
        self.out_of(up)
            .iter()
            .filter_map(|&i| self.edge_at(i))
            .find(|e| e.down == down)
    }

    /// Whether `to` can be reached from `from` along edges: a breadth-first
    /// walk bounded by the flow's edges, failing closed past them.
    pub fn reaches(&self, from: Uuid, to: Uuid) -> bool {
        let mut seen: std::collections::HashSet<Uuid, RandomState> = Default::default();
        let mut todo = VecDeque::from([from]);
        let mut steps = 0usize;
        while let Some(n) = todo.pop_front() {
            if n == to {
                return true;
            }
            for &i in self.out_of(n) {
                steps += 1;
                if steps > EDGES_MAX {
                    return true;
                }
                if let Some(e) = self.edge_at(i) {
                    if seen.insert(e.down) {
                        todo.push_back(e.down);
                    }
                }
            }
        }
        false
    }

    /// Adds a checked edge (its group exists) and indexes it.
    pub fn push_edge(&mut self, e: Edge) {
        let i = pos(self.edges.len());
        self.by_id.insert(e.id, i);
        self.out.entry(e.up).or_default().push(i);
        self.into.entry(e.down).or_default().push(i);
        self.edges.push(e);
    }

    pub fn group(&self, down: Uuid) -> Option<&Group> {
        self.groups.get(&down)
    }

    /// Sets a downstream's policy (the partition checks it may).
    pub fn set_policy(&mut self, down: Uuid, p: Policy) {
        self.groups.insert(down, Group::new(p, true));
    }

    /// Edges still pending (tests look at what a cascade left).
    #[cfg(test)]
    pub fn pending_edges(&self) -> usize {
        self.edges
            .iter()
            .filter(|e| e.state == crate::flows::EdgeState::Pending)
            .count()
    }

    /// Approximate heap footprint, O(1) but for the tags (at most 64):
    /// edges count at their fixed size plus their adjacency entries.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Flow>()
            + self.kind.len()
            + self.namespace.len()
            + self
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
            + self.members.capacity() * 16
            + self.edges.capacity() * std::mem::size_of::<Edge>()
            + self.edges.len() * 3 * 40
            + self.groups.len() * (std::mem::size_of::<Group>() + 16 + 32)
            + self.cancel.as_ref().map_or(0, |c| c.reason.len())
    }
}
