//! The ordered sets a partition's index is made of: eligible queues (by
//! priority, then age) and due-time sets, both stored in reverse so the
//! newest entry, nearly every insert, is one comparison per tree level.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::base::ids::Uuid;
use crate::base::limits::PRIORITY_MAX;
use crate::execution::record::Execution;

/// Queue order: higher priority first, then older, then submit order.
/// Packed into one integer (rank, 48 bits of creation time, sequence)
/// because queue searches compare keys at every tree level: one 128-bit
/// comparison instead of three. Creation times past the year 10889
/// saturate, which only ties such absurd times with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey(u128);

impl QueueKey {
    pub(crate) const TIME_MAX: u64 = (1 << 48) - 1;

    pub fn new(rank: u16, created_at: u64, seq: u64) -> QueueKey {
        QueueKey(
            u128::from(rank) << 112
                | u128::from(created_at.min(Self::TIME_MAX)) << 64
                | u128::from(seq),
        )
    }

    pub fn of(e: &Execution) -> QueueKey {
        let prio = u16::try_from(PRIORITY_MAX).unwrap_or(u16::MAX);
        QueueKey::new(prio.saturating_sub(e.priority), e.created_at, e.queue_seq)
    }
}

/// An eligible queue, head (best key) first.
///
/// Stored in reverse because a B-tree searches each node from its left end
/// and almost every insert is the newest key yet: reversed, a submit stops
/// at the first key of each node instead of comparing against all of them,
/// and the head is the tree's last entry, reached without comparisons.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Queue(BTreeMap<Reverse<QueueKey>, Uuid>);

impl Queue {
    pub fn head(&self) -> Option<(QueueKey, Uuid)> {
        self.0.last_key_value().map(|(k, u)| (k.0, *u))
    }

    /// Adds an entry; true when it is the new head.
    pub(crate) fn insert(&mut self, key: QueueKey, uuid: Uuid) -> bool {
        let first = self.head().is_none_or(|(h, _)| key < h);
        self.0.insert(Reverse(key), uuid);
        first
    }

    /// Removes an entry; true when it was the head.
    pub(crate) fn remove(&mut self, key: QueueKey) -> bool {
        match self.0.last_entry() {
            Some(head) if head.key().0 == key => {
                head.remove();
                true
            }
            _ => {
                self.0.remove(&Reverse(key));
                false
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Due times and their executions, earliest first. Stored in reverse for
/// the reason `Queue` is: a new lease or retention entry is nearly always
/// the latest time yet.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DueSet(BTreeSet<Reverse<(u64, Uuid)>>);

impl DueSet {
    pub fn first(&self) -> Option<(u64, Uuid)> {
        self.0.last().map(|r| r.0)
    }

    /// Adds an entry; true when it is now the earliest.
    pub fn insert(&mut self, t: u64, uuid: Uuid) -> bool {
        self.0.insert(Reverse((t, uuid)));
        self.first() == Some((t, uuid))
    }

    /// Removes an entry. The earliest, the usual one (a lease ending in
    /// claim order), is popped without a search.
    pub fn remove(&mut self, t: u64, uuid: Uuid) {
        if self.first() == Some((t, uuid)) {
            self.0.pop_last();
        } else {
            self.0.remove(&Reverse((t, uuid)));
        }
    }

    pub fn contains(&self, t: u64, uuid: Uuid) -> bool {
        self.0.contains(&Reverse((t, uuid)))
    }

    /// Earliest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Uuid)> + '_ {
        self.0.iter().rev().map(|r| r.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A queue's head after a change to it: claim hints follow heads, and most
/// changes (a submit behind others, a cancel in the middle) leave it alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Head {
    #[default]
    Unchanged,
    /// The head changed; `None` when the queue is now empty.
    Now(Option<QueueKey>),
}

/// The kinds of due-time entries a partition keeps for the node timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Due {
    Delay,
    LeaseExpiry,
    Deadline,
    Retention,
    /// A suspension timeout or a pending waitpoint's expiry.
    Waits,
}
