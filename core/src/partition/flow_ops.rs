//! A partition's flows as commands change them: created, joined by
//! members, given edges and edge-group policies, tagged, cancelled, and
//! loaded. Every refusal is decided before anything changes.

use crate::base::codec::DecodeError;
use crate::base::ids::Uuid;
use crate::base::limits::TAGS_MAX;
use crate::base::state::PublicState;
use crate::flows::{
    CancelPolicy, Cancellation, DependencyKind, Edge, EdgeState, Flow, FlowError, Group, Policy,
    EDGES_MAX, MEMBERS_MAX,
};
use crate::partition::flow_index::{is_terminal, Tally, Work};
use crate::partition::moves::{self, Env, FlowStep, OnMove};
use crate::partition::records::Partition;

/// An edge a command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEdge {
    pub flow: Uuid,
    pub id: Uuid,
    pub up: Uuid,
    pub down: Uuid,
    pub kind: DependencyKind,
    pub data_ref: Option<Box<[u8]>>,
    /// The graph revision the caller planned against, when it checks.
    pub expected_revision: Option<u64>,
}

/// What adding an edge did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeAdded {
    pub revision: u64,
    /// The downstream's edges not resolved yet.
    pub unsatisfied: u32,
    /// The same edge was there already (a retry).
    pub existed: bool,
}

/// What cancelling a flow did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowCancelled {
    pub policy: CancelPolicy,
    /// False when the flow was cancelled before (its first policy stands).
    pub now: bool,
}

/// A flow's state as its members make it: cancelled; completed or failed
/// once every member has ended (failed if any failed or expired);
/// running while any is active; blocked while every member still to run
/// waits on its dependencies or a signal; open otherwise (and while
/// empty).
pub fn flow_state(flow: &Flow, t: Option<&Tally>) -> &'static str {
    if flow.is_cancelled() {
        return "cancelled";
    }
    let Some(t) = t else { return "open" };
    let n = |s: PublicState| t.counts.get(s as usize).copied().unwrap_or(0);
    let total: u64 = t.counts.iter().sum();
    let ended: u64 = (0..PublicState::COUNT)
        .filter(|&i| {
            u8::try_from(i)
                .ok()
                .and_then(PublicState::from_u8)
                .is_some_and(is_terminal)
        })
        .map(|i| t.counts.get(i).copied().unwrap_or(0))
        .sum();
    if total == 0 {
        "open"
    } else if ended == total {
        if n(PublicState::Failed) + n(PublicState::Expired) > 0 {
            "failed"
        } else {
            "completed"
        }
    } else if n(PublicState::Active) > 0 {
        "running"
    } else if n(PublicState::WaitingChildren) + n(PublicState::Suspended) == total - ended {
        "blocked"
    } else {
        "open"
    }
}

/// Changes a flow with `f`, keeping the partition's running count of flow
/// bytes (`Flow::mem_usage`) in step.
fn change<T>(flow_bytes: &mut usize, flow: &mut Flow, f: impl FnOnce(&mut Flow) -> T) -> T {
    let before = flow.mem_usage();
    let out = f(flow);
    *flow_bytes = flow_bytes
        .saturating_sub(before)
        .saturating_add(flow.mem_usage());
    out
}

impl Partition {
    pub fn flow(&self, id: Uuid) -> Option<&Flow> {
        self.flows.get(&id).map(|b| &**b)
    }

    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    pub fn flow_tally(&self, id: Uuid) -> Option<&Tally> {
        self.index.flows.tallies.get(&id)
    }

    /// Every flow, by id.
    pub fn flows(&self) -> impl Iterator<Item = &Flow> + '_ {
        self.flows.values().map(|b| &**b)
    }

    /// One page of flows by id: up to `count` after `after`, and the id
    /// the next page starts after (None at the end).
    pub fn flows_page(&self, after: Option<Uuid>, count: usize) -> (Vec<&Flow>, Option<Uuid>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        let mut page = Vec::new();
        for f in self.flows.range((lower, Unbounded)).map(|(_, f)| &**f) {
            if page.len() == count {
                let next = page.last().map(|f: &&Flow| f.id);
                return (page, next);
            }
            page.push(f);
        }
        (page, None)
    }

    /// Creates a flow; false when the id is taken (the call is a retry).
    pub fn create_flow(
        &mut self,
        id: Uuid,
        kind: Box<[u8]>,
        namespace: Box<[u8]>,
        now: u64,
    ) -> bool {
        if self.flows.contains_key(&id) {
            return false;
        }
        let f = Flow::new(id, kind, namespace, now);
        self.index.flow_bytes = self.index.flow_bytes.saturating_add(f.mem_usage());
        self.index.flows.tallies.insert(id, Tally::default());
        self.flows.insert(id, Box::new(f));
        true
    }

    /// Whether `fid` can take a new member (checked before a submit
    /// creates one into it).
    pub fn check_joinable(&self, fid: Uuid) -> Result<(), FlowError> {
        let f = self.flow(fid).ok_or(FlowError::FlowNotFound)?;
        f.check_open()?;
        if f.members.len() >= MEMBERS_MAX {
            return Err(FlowError::Limit("members", MEMBERS_MAX));
        }
        Ok(())
    }

    /// The id of the edge a submit's `i`th AFTER upstream gets: derived
    /// from the new member's id, so every node derives the same.
    pub fn after_edge_id(member: Uuid, i: usize) -> Uuid {
        Uuid(member.0 ^ ((i as u128 + 1) << 64))
    }

    /// Whether a new member `member` can join `fid` after `ups` (checked
    /// before a submit creates it, so the submit either does all of it or
    /// nothing): the flow takes members and edges, each upstream is a
    /// member, none twice, the derived edge ids are free.
    pub fn check_join_after(&self, fid: Uuid, member: Uuid, ups: &[Uuid]) -> Result<(), FlowError> {
        self.check_joinable(fid)?;
        let f = self.flow(fid).ok_or(FlowError::FlowNotFound)?;
        if f.edges.len().saturating_add(ups.len()) > EDGES_MAX {
            return Err(FlowError::Limit("edges", EDGES_MAX));
        }
        for (i, up) in ups.iter().enumerate() {
            if *up == member {
                return Err(FlowError::SelfEdge);
            }
            if self.flow_of(*up) != Some(fid) {
                return Err(FlowError::NotInFlow("upstream"));
            }
            if ups.get(..i).is_some_and(|before| before.contains(up)) {
                let text = String::from_utf8_lossy(&up.text()).into_owned();
                return Err(FlowError::Invalid(format!("AFTER names {text} twice")));
            }
            if f.edge(Partition::after_edge_id(member, i)).is_some() {
                return Err(FlowError::EdgeIdTaken);
            }
        }
        Ok(())
    }

    /// Adds an execution to a flow; says whether it joined now (false: it
    /// was a member already) and how many members the flow has.
    pub fn add_member(
        &mut self,
        fid: Uuid,
        member: Uuid,
        now: u64,
    ) -> Result<(bool, usize), FlowError> {
        let f = self.flow(fid).ok_or(FlowError::FlowNotFound)?;
        f.check_open()?;
        let state = self
            .get(member)
            .map(|e| e.public)
            .ok_or(FlowError::ExecutionNotFound)?;
        match self.flow_of(member) {
            Some(other) if other == fid => return Ok((false, f.members.len())),
            Some(other) => {
                let id = crate::base::ids::ExecId {
                    partition: self.index.partition,
                    uuid: other,
                };
                let text = String::from_utf8_lossy(id.text().as_bytes()).into_owned();
                return Err(FlowError::OtherFlow(text));
            }
            None => {}
        }
        self.check_joinable(fid)?;
        let f = self.flows.get_mut(&fid).ok_or(FlowError::FlowNotFound)?;
        let n = change(&mut self.index.flow_bytes, f, |f| {
            f.members.push(member);
            f.revision += 1;
            f.last_mutation_at = now;
            f.members.len()
        });
        self.index.flows.join(member, fid, state);
        Ok((true, n))
    }

    /// Stages and applies an edge: checks it (the reference's order), adds
    /// it to the downstream's group, holds the downstream back, and queues
    /// its resolution at once if the upstream has already ended.
    pub fn add_edge(
        &mut self,
        req: NewEdge,
        env: &Env,
        on_move: &mut OnMove,
    ) -> Result<EdgeAdded, FlowError> {
        if req.up == req.down {
            return Err(FlowError::SelfEdge);
        }
        let f = self.flow(req.flow).ok_or(FlowError::FlowNotFound)?;
        f.check_open()?;
        if let Some(e) = f.edge(req.id) {
            if (e.up, e.down) == (req.up, req.down) {
                let unsatisfied = f.group(req.down).map_or(0, |g| g.running());
                return Ok(EdgeAdded {
                    revision: f.revision,
                    unsatisfied,
                    existed: true,
                });
            }
            return Err(FlowError::EdgeIdTaken);
        }
        if let Some(expected) = req.expected_revision {
            if expected != f.revision {
                return Err(FlowError::StaleRevision {
                    expected,
                    current: f.revision,
                });
            }
        }
        for (who, which) in [(req.up, "upstream"), (req.down, "downstream")] {
            if self.flow_of(who) != Some(req.flow) {
                return Err(FlowError::NotInFlow(which));
            }
        }
        if let Some(e) = f.between(req.up, req.down) {
            let text = String::from_utf8_lossy(&e.id.text()).into_owned();
            return Err(FlowError::DependencyExists(text));
        }
        if f.edges.len() >= EDGES_MAX {
            return Err(FlowError::Limit("edges", EDGES_MAX));
        }
        if f.reaches(req.down, req.up) {
            return Err(FlowError::Cycle);
        }
        let (down_ended, up_ended) = match (self.get(req.down), self.get(req.up)) {
            (Some(d), Some(u)) => (d.is_terminal(), u.is_terminal().then_some(u.queue_seq)),
            _ => return Err(FlowError::ExecutionNotFound),
        };
        if down_ended {
            return Err(FlowError::DownstreamEnded);
        }
        if f.group(req.down).is_some_and(Group::is_fired) {
            return Err(FlowError::GroupFired);
        }
        // Checked: apply.
        let Partition {
            index,
            records,
            flows,
            ..
        } = self;
        let Some(f) = flows.get_mut(&req.flow) else {
            return Err(FlowError::FlowNotFound);
        };
        let (revision, unsatisfied) = change(&mut index.flow_bytes, f, |f| {
            let g = f
                .groups
                .entry(req.down)
                .or_insert_with(|| Group::new(Policy::ALL_OF, false));
            g.n += 1;
            let unsatisfied = g.running();
            f.push_edge(Edge {
                id: req.id,
                up: req.up,
                down: req.down,
                kind: req.kind,
                data_ref: req.data_ref,
                state: EdgeState::Pending,
                created_at: env.now,
                resolved_at: None,
            });
            f.revision += 1;
            f.last_mutation_at = env.now;
            (f.revision, unsatisfied)
        });
        if let Some(e) = records.get_mut(&req.down) {
            if let Some(m) = moves::flow_step(index, e, FlowStep::Hold, env) {
                on_move(index, e, m);
            }
        }
        if let Some(seq) = up_ended {
            index.flows.work.insert(Work::Resolve(seq));
        }
        Ok(EdgeAdded {
            revision,
            unsatisfied,
            existed: false,
        })
    }

    /// Sets a downstream's edge-group policy before its first edge; false
    /// when the same policy is already set.
    pub fn set_policy(
        &mut self,
        fid: Uuid,
        down: Uuid,
        p: Policy,
        now: u64,
    ) -> Result<bool, FlowError> {
        let f = self.flow(fid).ok_or(FlowError::FlowNotFound)?;
        f.check_open()?;
        if self.flow_of(down) != Some(fid) {
            return Err(FlowError::NotInFlow("downstream"));
        }
        if let Some(g) = f.group(down) {
            if g.policy == p {
                return Ok(false);
            }
            return Err(if g.n > 0 {
                FlowError::PolicyFixed
            } else {
                FlowError::PolicyChanged
            });
        }
        let f = self.flows.get_mut(&fid).ok_or(FlowError::FlowNotFound)?;
        change(&mut self.index.flow_bytes, f, |f| {
            f.set_policy(down, p);
            f.last_mutation_at = now;
        });
        Ok(true)
    }

    /// Sets (or replaces) flow tags; returns how many the flow has.
    pub fn set_flow_tags(
        &mut self,
        fid: Uuid,
        tags: crate::execution::Tags,
        now: u64,
    ) -> Result<usize, FlowError> {
        let f = self.flow(fid).ok_or(FlowError::FlowNotFound)?;
        let new = tags.iter().filter(|(k, _)| !f.tags.contains_key(k)).count();
        if f.tags.len().saturating_add(new) > TAGS_MAX {
            return Err(FlowError::Limit("tags", TAGS_MAX));
        }
        let Some(f) = self.flows.get_mut(&fid) else {
            return Err(FlowError::FlowNotFound);
        };
        Ok(change(&mut self.index.flow_bytes, f, |f| {
            f.tags.extend(tags);
            f.last_mutation_at = now;
            f.tags.len()
        }))
    }

    /// Cancels a flow: it takes no more members or edges, and its policy's
    /// members are queued for cancelling (the caller drains the work). A
    /// flow cancelled before keeps its first policy and reason.
    pub fn cancel_flow(
        &mut self,
        fid: Uuid,
        policy: CancelPolicy,
        reason: Box<[u8]>,
        now: u64,
    ) -> Result<FlowCancelled, FlowError> {
        let f = self.flows.get_mut(&fid).ok_or(FlowError::FlowNotFound)?;
        if let Some(c) = &f.cancel {
            return Ok(FlowCancelled {
                policy: c.policy,
                now: false,
            });
        }
        change(&mut self.index.flow_bytes, f, |f| {
            f.cancel = Some(Cancellation {
                at: now,
                reason,
                policy,
            });
            f.last_mutation_at = now;
        });
        if policy != CancelPolicy::FlowOnly {
            if let Some(t) = self.index.flows.tallies.get_mut(&fid) {
                t.cancelling = true;
            }
            self.index.flows.work.insert(Work::CancelFlow(fid));
        }
        Ok(FlowCancelled { policy, now: true })
    }

    /// Members still to cancel of a cancelling flow.
    pub fn members_to_cancel(&self, fid: Uuid) -> usize {
        let Some(f) = self.flow(fid) else { return 0 };
        let Some(c) = &f.cancel else { return 0 };
        f.members
            .iter()
            .filter(|m| {
                self.get(**m)
                    .is_some_and(|e| crate::partition::cascade::to_cancel(c.policy, e))
            })
            .count()
    }

    /// Whether flow work for this flow is still queued: edges of ended
    /// members not resolved yet, or members of a cancelled flow still to
    /// cancel (O(edges + members) of the flow).
    pub fn flow_cascading(&self, fid: Uuid) -> bool {
        let Some(f) = self.flow(fid) else {
            return false;
        };
        let unresolved = f.edges.iter().any(|e| {
            e.state == EdgeState::Pending && self.get(e.up).is_some_and(|u| u.is_terminal())
        });
        unresolved || self.members_to_cancel(fid) > 0
    }

    /// A removed member leaves its flow; the last one takes the flow.
    pub(crate) fn leave_flow(&mut self, fid: Uuid, member: Uuid) {
        let Some(f) = self.flows.get_mut(&fid) else {
            return;
        };
        let empty = change(&mut self.index.flow_bytes, f, |f| {
            f.members.retain(|m| *m != member);
            f.members.is_empty()
        });
        if empty {
            if let Some(f) = self.flows.remove(&fid) {
                self.index.flow_bytes = self.index.flow_bytes.saturating_sub(f.mem_usage());
            }
            self.index.flows.tallies.remove(&fid);
        }
    }

    /// Resolves an ended member's pending edges before retention removes
    /// it (bounded by the flow's edges), so no edge waits on a record that
    /// is gone.
    pub fn settle_before_removal(&mut self, member: Uuid, env: &Env, on_move: &mut OnMove) {
        let Some(seq) = self.get(member).map(|e| e.queue_seq) else {
            return;
        };
        if self.flow_of(member).is_some() {
            self.resolve_now(seq, env, on_move);
        }
    }

    /// Adds one persisted flow (after the executions it joins), checks its
    /// members, and derives its index entries and work.
    pub fn load_flow(&mut self, buf: &[u8]) -> Result<(), DecodeError> {
        let f = Flow::decode(buf)?;
        if self.flows.contains_key(&f.id) {
            return Err(DecodeError("a flow appears twice"));
        }
        if self
            .flows
            .last_key_value()
            .is_some_and(|(last, _)| *last > f.id)
        {
            return Err(DecodeError("flows out of order"));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &f.members {
            if !seen.insert(*m) {
                return Err(DecodeError("a flow member appears twice"));
            }
            if self.get(*m).is_none() {
                return Err(DecodeError("a flow member has no record"));
            }
            if self.flow_of(*m).is_some() {
                return Err(DecodeError("an execution is a member of two flows"));
            }
        }
        let fid = f.id;
        let cancelling = f
            .cancel
            .as_ref()
            .is_some_and(|c| c.policy != CancelPolicy::FlowOnly);
        self.index.flow_bytes = self.index.flow_bytes.saturating_add(f.mem_usage());
        self.index.flows.tallies.insert(
            fid,
            Tally {
                cancelling,
                ..Tally::default()
            },
        );
        for m in &f.members {
            if let Some(state) = self.get(*m).map(|e| e.public) {
                self.index.flows.join(*m, fid, state);
            }
        }
        self.flows.insert(fid, Box::new(f));
        self.derive_flow_work(fid);
        Ok(())
    }
}
