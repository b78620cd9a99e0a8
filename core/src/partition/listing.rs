//! Listings: which executions a filter selects (public state, lane, a
//! lease waiting for reclaim), a page at a time in admission order, within
//! one partition or across a node's partitions with one cursor.
//!
//! A page reads a bounded number of records (4×COUNT when filtered), so a
//! page may hold fewer ids than asked, like SCAN; a partition whose counts
//! show no match is skipped without reading its records.

use std::cmp::Reverse;

use crate::base::ids::Uuid;
use crate::base::state::PublicState;
use crate::execution::record::Execution;
use crate::partition::index::PartitionIndex;
use crate::partition::records::Partition;

/// What a listing selects; an empty filter selects everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    pub state: Option<PublicState>,
    pub lane: Option<&'a str>,
    /// Only executions whose lease ran out or was revoked and that wait
    /// for a claim to reclaim them (their public state stays `active`).
    pub reclaimable: bool,
}

impl Filter<'_> {
    pub fn is_filtered(&self) -> bool {
        self.state.is_some() || self.lane.is_some() || self.reclaimable
    }

    pub fn matches(&self, e: &Execution) -> bool {
        self.state.is_none_or(|s| e.public == s)
            && self.lane.is_none_or(|l| *e.lane == *l)
            && (!self.reclaimable || e.is_reclaimable())
    }

    /// Whether the partition can hold a match at all, from its running
    /// counts (O(log lanes)): a node-wide listing skips the others.
    pub fn may_match(&self, idx: &PartitionIndex) -> bool {
        let counts = match self.lane {
            Some(l) => match idx.lanes.get(l) {
                Some(lane) => &lane.counts,
                None => return false,
            },
            None => &idx.counts,
        };
        let state = match (self.state, self.reclaimable) {
            (Some(s), true) if s != PublicState::Active => return false,
            (_, true) => Some(PublicState::Active),
            (s, false) => s,
        };
        match state {
            Some(s) => counts.get(s as usize).is_some_and(|&n| n > 0),
            None => counts.iter().any(|&n| n > 0),
        }
    }

    /// How many records a page of `count` ids may read.
    pub fn window(&self, count: usize) -> usize {
        if self.is_filtered() {
            count.saturating_mul(4)
        } else {
            count
        }
    }
}

/// One page of one partition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub ids: Vec<Uuid>,
    /// The sequence the next page starts at; None at the partition's end.
    pub next: Option<u64>,
    /// Records read (the page's cost).
    pub read: usize,
}

impl Partition {
    /// Up to `count` matching uuids from the sequence `from` on, reading at
    /// most `window` records.
    pub fn scan(&self, f: &Filter, from: u64, count: usize, window: usize) -> Page {
        let mut page = Page::default();
        for (seq, u) in self.order.range(..=Reverse(from)).rev() {
            if page.read >= window || page.ids.len() >= count {
                page.next = Some(seq.0);
                return page;
            }
            page.read += 1;
            if self.get(*u).is_some_and(|e| f.matches(e)) {
                page.ids.push(*u);
            }
        }
        page
    }

    /// One page of a listing in admission order: up to `count` matching
    /// uuids from the sequence `from` on, reading at most 4×`count`
    /// records when filtered, and where the next page starts (None at the
    /// end).
    pub fn list(&self, f: &Filter, from: u64, count: usize) -> (Vec<Uuid>, Option<u64>) {
        let page = self.scan(f, from, count, f.window(count));
        (page.ids, page.next)
    }
}

/// A node-wide cursor: the partition in the high 16 bits, the sequence to
/// resume at in the low 48 (a partition admits fewer than 2^48 executions
/// in any real life; a later sequence resumes at the next partition's
/// start rather than wrap). 0 is the start, and the end, as for SCAN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCursor {
    pub partition: u16,
    pub seq: u64,
}

const SEQ_BITS: u32 = 48;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

impl NodeCursor {
    /// The cursor's number, as a client passes it back.
    pub fn encode(self) -> u64 {
        (u64::from(self.partition) << SEQ_BITS) | (self.seq & SEQ_MASK)
    }

    /// A cursor a client sent: None when it names no partition of this
    /// node's `partitions`.
    pub fn decode(n: u64, partitions: u16) -> Option<NodeCursor> {
        let partition = u16::try_from(n >> SEQ_BITS).ok()?;
        (partition < partitions).then_some(NodeCursor {
            partition,
            seq: n & SEQ_MASK,
        })
    }

    /// Where a page that ended with `next` in `partition` leaves the walk:
    /// None when the node's last partition is done.
    pub fn after(partition: u16, next: Option<u64>, partitions: u16) -> Option<NodeCursor> {
        match next {
            Some(seq) if seq <= SEQ_MASK => Some(NodeCursor { partition, seq }),
            _ => partition
                .checked_add(1)
                .filter(|&p| p < partitions)
                .map(|partition| NodeCursor { partition, seq: 0 }),
        }
    }
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
