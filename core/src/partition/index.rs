//! A partition's index: per-lane eligible queues (one per required
//! capability set, ordered by priority then age) and the due-time sets the
//! timers use. Claims pop the head of a queue in O(log n). The index is
//! derived from the partition's records (see `partition`): it is rebuilt on
//! load and never stored.

use std::collections::{BTreeMap, HashMap};

use ahash::RandomState;
use std::sync::Arc;

use crate::streams::EntryId;

use crate::base::caps::CapSet;
use crate::base::ids::Uuid;
use crate::base::state::{PublicState, StateCounts};
use crate::execution::record::Execution;
use crate::partition::flow_index::FlowIndex;
use crate::partition::queue::Due;
use crate::partition::queue::{DueSet, Head, Queue, QueueKey};

/// One lane of a partition: how many of its executions are in each public
/// state, and its eligible queues, one per required capability set. Kept
/// together so a transition finds both with one lookup. A lane exists while
/// it has executions.
#[derive(Clone, Debug, Default)]
pub struct Lane {
    pub counts: StateCounts,
    /// Hashed, not ordered: a lane may have thousands of capability sets,
    /// and every claim and submit looks one up.
    pub queues: HashMap<CapSet, Queue, RandomState>,
}

impl PartialEq for Lane {
    fn eq(&self, other: &Lane) -> bool {
        self.counts == other.counts && self.queues == other.queues
    }
}

impl Eq for Lane {}

impl Lane {
    fn is_unused(&self) -> bool {
        self.queues.is_empty() && self.counts.iter().all(|&c| c == 0)
    }
}

/// A change to a lane's queue membership. Entries leave under the key
/// they were queued with; they join under the record's current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOp {
    Keep,
    Add,
    Remove(QueueKey),
    /// Still queued, under a new key (a priority change).
    Move(QueueKey),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PartitionIndex {
    pub partition: u16,
    /// The partition count this index was created under; a server started
    /// with another count must not silently reuse it.
    pub partitions: u16,
    pub next_seq: u64,
    pub lanes: BTreeMap<Arc<str>, Lane>,
    pub delayed: DueSet,
    pub lease_expiry: DueSet,
    pub deadlines: DueSet,
    /// Terminal executions by the time they ended; retention removes them
    /// `flowfabric.retention-ms` later (a setting, applied when due, so the
    /// stored index is the same whatever the setting).
    pub retention: DueSet,
    /// Suspension timeouts and pending waitpoint expiries.
    pub waits: DueSet,
    /// Executions per public state, for INFO and listings (per lane in
    /// `lanes`).
    pub counts: StateCounts,
    /// Entries in the eligible queues, and the heap bytes of the records
    /// (`Execution::mem_usage`), kept as running counts so MEMORY USAGE is
    /// O(1) however many records the partition holds.
    pub queued: usize,
    pub record_bytes: usize,
    /// The id of the last event this partition's feed was given (not
    /// counted from the stream, which a client may change): the next
    /// event's id follows it, the same on every node.
    pub events_last: Option<EntryId>,
    /// Flow membership, tallies and pending flow work.
    pub flows: FlowIndex,
    /// The heap bytes of the flows (`Flow::mem_usage`), a running count.
    pub flow_bytes: usize,
}

impl PartitionIndex {
    pub fn new(partition: u16, partitions: u16) -> PartitionIndex {
        PartitionIndex {
            partition,
            partitions,
            ..Default::default()
        }
    }

    pub fn take_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// Changes an execution's queue membership and moves it between public
    /// states (`None`: not counted) in the partition's and its lane's
    /// counts, with one lookup of the lane. Says how the queue head moved.
    pub fn update_lane(
        &mut self,
        e: &Execution,
        op: QueueOp,
        from: Option<PublicState>,
        to: Option<PublicState>,
    ) -> Head {
        let mut lane = match self.lanes.get_mut(&e.lane) {
            Some(l) => Some(l),
            None if op == QueueOp::Add || to.is_some() => {
                Some(self.lanes.entry(e.lane.clone()).or_default())
            }
            // Nothing of this lane is indexed: only the partition's counts.
            None => None,
        };
        match op {
            QueueOp::Add => self.queued = self.queued.saturating_add(1),
            QueueOp::Remove(_) => self.queued = self.queued.saturating_sub(1),
            QueueOp::Keep | QueueOp::Move(_) => {}
        }
        let head = match (op, lane.as_deref_mut()) {
            (QueueOp::Add, Some(l)) => lane_enqueue(l, &e.caps, QueueKey::of(e), e.id.uuid),
            (QueueOp::Remove(old), Some(l)) => lane_remove(l, &e.caps, &old),
            (QueueOp::Move(old), Some(l)) => {
                let removed = lane_remove(l, &e.caps, &old);
                // The entry is at the head now if it went first; otherwise
                // the head is whatever the removal left.
                match lane_enqueue(l, &e.caps, QueueKey::of(e), e.id.uuid) {
                    Head::Unchanged => removed,
                    added => added,
                }
            }
            _ => Head::Unchanged,
        };
        let lane_counts = lane.as_deref_mut().map(|l| &mut l.counts);
        count(&mut self.counts, lane_counts, from, to);
        if !self.flows.member_of.is_empty() && (from.is_some() || to.is_some()) {
            self.flows.on_move(e.id.uuid, e.queue_seq, from, to);
        }
        // Only leaving the lane (a state or a queue entry gone, nothing
        // counted in its place) can empty it.
        let shrank = to.is_none() && (matches!(op, QueueOp::Remove(_)) || from.is_some());
        if shrank && lane.is_some_and(|l| l.is_unused()) {
            self.lanes.remove(&e.lane);
        }
        head
    }

    #[cfg(test)]
    pub fn enqueue(&mut self, e: &Execution) -> Head {
        self.update_lane(e, QueueOp::Add, None, None)
    }

    #[cfg(test)]
    pub fn dequeue(&mut self, e: &Execution) -> Head {
        self.update_lane(e, QueueOp::Remove(QueueKey::of(e)), None, None)
    }

    /// Drops one queue entry (also an orphan whose record is gone or not
    /// eligible).
    pub fn remove_queued(&mut self, lane: &str, caps: &CapSet, key: &QueueKey) -> Head {
        let Some(l) = self.lanes.get_mut(lane) else {
            return Head::Unchanged;
        };
        let before = l.queues.get(caps).map_or(0, Queue::len);
        let head = lane_remove(l, caps, key);
        let after = l.queues.get(caps).map_or(0, Queue::len);
        self.queued = self.queued.saturating_sub(before - after.min(before));
        if l.is_unused() {
            self.lanes.remove(lane);
        }
        head
    }

    pub fn head(&self, lane: &str, caps: &CapSet) -> Option<(QueueKey, Uuid)> {
        self.lanes.get(lane)?.queues.get(caps)?.head()
    }

    /// Every (lane, caps, head) of this partition, for rebuilding claim hints.
    pub fn heads(&self) -> impl Iterator<Item = (&str, &CapSet, QueueKey)> {
        self.lanes.iter().flat_map(|(lane, l)| {
            l.queues
                .iter()
                .filter_map(move |(caps, q)| q.head().map(|(k, _)| (lane.as_ref(), caps, k)))
        })
    }

    /// The earliest time anything in this partition falls due; retention
    /// entries count only when `retention_ms` is set.
    pub fn next_due(&self, retention_ms: u64) -> Option<u64> {
        let retention = match (retention_ms, self.retention.first()) {
            (0, _) | (_, None) => None,
            (r, Some((t, _))) => Some(t.saturating_add(r)),
        };
        [
            &self.delayed,
            &self.lease_expiry,
            &self.deadlines,
            &self.waits,
        ]
        .into_iter()
        .filter_map(|set| set.first().map(|(t, _)| t))
        .chain(retention)
        // Flow work left over is due at once.
        .chain(self.flows.has_work().then_some(0))
        .min()
    }

    /// Removes and returns the earliest entry due at or before `now`, with
    /// the time it fell due. Ties go by kind, then uuid, so every replica
    /// picks the same order.
    pub fn pop_due(&mut self, now: u64, retention_ms: u64) -> Option<(Due, u64, Uuid)> {
        let mut best: Option<(u64, Due, u64, Uuid)> = None;
        for (kind, set, shift) in [
            (Due::Delay, &self.delayed, Some(0)),
            (Due::LeaseExpiry, &self.lease_expiry, Some(0)),
            (Due::Deadline, &self.deadlines, Some(0)),
            (Due::Waits, &self.waits, Some(0)),
            (
                Due::Retention,
                &self.retention,
                (retention_ms > 0).then_some(retention_ms),
            ),
        ] {
            let (Some((t, u)), Some(shift)) = (set.first(), shift) else {
                continue;
            };
            let due = t.saturating_add(shift);
            if due <= now && best.is_none_or(|b| (due, kind, u) < (b.0, b.1, b.3)) {
                best = Some((due, kind, t, u));
            }
        }
        let (due, kind, t, u) = best?;
        let set = match kind {
            Due::Delay => &mut self.delayed,
            Due::LeaseExpiry => &mut self.lease_expiry,
            Due::Deadline => &mut self.deadlines,
            Due::Retention => &mut self.retention,
            Due::Waits => &mut self.waits,
        };
        set.remove(t, u);
        Some((kind, due, u))
    }

    pub fn eligible_len(&self) -> usize {
        self.queued
    }

    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<PartitionIndex>()
            + self.queued * 64
            + (self.delayed.len()
                + self.lease_expiry.len()
                + self.deadlines.len()
                + self.retention.len()
                + self.waits.len())
                * 40
            + self.flows.mem_usage()
    }
}

/// Moves one execution between public states in the partition's counts
/// and, when given, its lane's.
fn count(
    all: &mut StateCounts,
    lane: Option<&mut StateCounts>,
    from: Option<PublicState>,
    to: Option<PublicState>,
) {
    let step = |counts: &mut StateCounts| {
        if let Some(c) = from.and_then(|s| counts.get_mut(s as usize)) {
            *c = c.saturating_sub(1);
        }
        if let Some(c) = to.and_then(|s| counts.get_mut(s as usize)) {
            *c = c.saturating_add(1);
        }
    };
    step(all);
    if let Some(l) = lane {
        step(l);
    }
}

/// Adds a queue entry; the head moves when the entry goes first.
fn lane_enqueue(lane: &mut Lane, caps: &CapSet, key: QueueKey, uuid: Uuid) -> Head {
    let q = match lane.queues.get_mut(caps) {
        Some(q) => q,
        None => lane.queues.entry(caps.clone()).or_default(),
    };
    if q.insert(key, uuid) {
        Head::Now(Some(key))
    } else {
        Head::Unchanged
    }
}

/// Removes a queue entry; taking the head, as a claim does, pops it.
fn lane_remove(lane: &mut Lane, caps: &CapSet, key: &QueueKey) -> Head {
    let Some(q) = lane.queues.get_mut(caps) else {
        return Head::Unchanged;
    };
    let head = if q.remove(*key) {
        Head::Now(q.head().map(|(k, _)| k))
    } else {
        Head::Unchanged
    };
    if q.is_empty() {
        lane.queues.remove(caps);
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::ids::ExecId;
    use crate::execution::Spec;

    fn exec(uuid: u128, prio: u16, now: u64, seq: u64, caps: &str) -> Execution {
        let spec = Spec {
            lane: "l".into(),
            priority: prio,
            caps: CapSet::parse_required(caps.as_bytes()).unwrap(),
            ..Spec::default()
        };
        Execution::new(
            ExecId {
                partition: 1,
                uuid: Uuid(uuid),
            },
            spec,
            seq,
            now,
        )
    }

    #[test]
    fn priority_then_age_then_seq() {
        let mut idx = PartitionIndex::new(1, 4);
        let a = exec(1, 0, 10, 0, "");
        let b = exec(2, 5, 20, 1, "");
        let c = exec(3, 5, 20, 2, "");
        for e in [&a, &b, &c] {
            idx.enqueue(e);
        }
        assert_eq!(idx.head("l", &CapSet::empty()).unwrap().1, Uuid(2));
        idx.dequeue(&b);
        assert_eq!(idx.head("l", &CapSet::empty()).unwrap().1, Uuid(3));
        idx.dequeue(&c);
        idx.dequeue(&a);
        assert!(idx.lanes.is_empty());
    }

    #[test]
    fn packed_key_orders_as_the_triple() {
        let ranks = [0u16, 1, 9000, u16::MAX];
        let times = [0u64, 1, 1_795_463_239_210, QueueKey::TIME_MAX - 1];
        let seqs = [0u64, 1, u64::MAX - 1, u64::MAX];
        let mut all = Vec::new();
        for r in ranks {
            for t in times {
                for q in seqs {
                    all.push(((r, t, q), QueueKey::new(r, t, q)));
                }
            }
        }
        for (a, ka) in &all {
            for (b, kb) in &all {
                assert_eq!(a.cmp(b), ka.cmp(kb), "{a:?} vs {b:?}");
            }
        }
        // Absurd times saturate rather than wrap into another rank.
        assert!(QueueKey::new(0, u64::MAX, 0) < QueueKey::new(1, 0, 0));
    }
}
