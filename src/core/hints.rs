//! Node-wide claim hints: for each (lane, db, capability set), the head of
//! every partition's queue. A claim reads the best hint instead of visiting
//! every partition, then checks it against the partition's real index, so a
//! stale hint (key deleted, slot migrated away, flushed) is dropped, never
//! trusted. Hints are derived data and are not persisted; every path that
//! changes or loads an index refreshes them.

use std::collections::HashMap;

use ahash::RandomState;
use smallvec::SmallVec;

use crate::core::caps::CapSet;
use crate::core::index::QueueKey;

/// The queue heads of one (db, lane, caps) across partitions: an indexed
/// min-heap on (head, partition), so the best is read in O(1) and a
/// partition's head moves in O(log partitions). A claim moves one head;
/// with the lane in one partition (the usual case) that is a single store.
#[derive(Default)]
struct Heads {
    heap: Vec<(QueueKey, u16)>,
    /// Heap position + 1 of each partition's entry (0: none), by partition.
    pos: Vec<u32>,
}

impl Heads {
    fn first(&self) -> Option<(QueueKey, u16)> {
        self.heap.first().copied()
    }

    fn partitions(&self) -> impl Iterator<Item = u16> + '_ {
        self.heap.iter().map(|&(_, p)| p)
    }

    /// Where partition's entry sits in the heap.
    fn slot(&self, partition: u16) -> Option<usize> {
        match self.pos.get(usize::from(partition)) {
            Some(&i) if i > 0 => Some(i as usize - 1),
            _ => None,
        }
    }

    fn place(&mut self, i: usize) {
        if let Some(&(_, p)) = self.heap.get(i) {
            if let Some(s) = self.pos.get_mut(usize::from(p)) {
                *s = u32::try_from(i + 1).unwrap_or(0);
            }
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        // Callers pass positions inside the heap; checked all the same, as a
        // panic here would take the server down.
        if a.max(b) >= self.heap.len() {
            return;
        }
        self.heap.swap(a, b);
        self.place(a);
        self.place(b);
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap.get(i) >= self.heap.get(parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            for c in [l, r] {
                if c < self.heap.len() && self.heap.get(c) < self.heap.get(least) {
                    least = c;
                }
            }
            if least == i {
                return;
            }
            self.swap(i, least);
            i = least;
        }
    }

    /// Records partition's head; true when no head is left at all.
    fn update(&mut self, partition: u16, head: Option<QueueKey>) -> bool {
        match (self.slot(partition), head) {
            (Some(i), Some(k)) => {
                if let Some(e) = self.heap.get_mut(i) {
                    let old = std::mem::replace(&mut e.0, k);
                    if k < old {
                        self.sift_up(i);
                    } else {
                        self.sift_down(i);
                    }
                }
            }
            (Some(i), None) => {
                if i < self.heap.len() {
                    self.swap(i, self.heap.len() - 1);
                    self.heap.pop();
                }
                if let Some(s) = self.pos.get_mut(usize::from(partition)) {
                    *s = 0;
                }
                if i < self.heap.len() {
                    self.sift_down(i);
                    self.sift_up(i);
                }
            }
            (None, Some(k)) => {
                let p = usize::from(partition);
                if self.pos.len() <= p {
                    self.pos.resize(p + 1, 0);
                }
                self.heap.push((k, partition));
                let i = self.heap.len() - 1;
                self.place(i);
                self.sift_up(i);
            }
            (None, None) => {}
        }
        self.heap.is_empty()
    }
}

/// One lane's heads per (db, caps). A lane has few of these (usually one),
/// so a short list searched in place costs less than nested maps, and a
/// claim hashes the lane name once.
struct Slot {
    db: i32,
    caps: CapSet,
    heads: Heads,
}

#[derive(Default)]
pub struct ClaimHints {
    lanes: HashMap<Box<str>, SmallVec<[Slot; 1]>, RandomState>,
}

/// The best candidate a claim should check first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// One of the lanes the claim asked for.
    pub lane: &'a str,
    pub caps: CapSet,
    pub partition: u16,
    pub key: QueueKey,
}

impl ClaimHints {
    /// Records `head` as partition's current head for (db, lane, caps);
    /// `None` removes it.
    pub fn set(
        &mut self,
        db: i32,
        lane: &str,
        caps: &CapSet,
        partition: u16,
        head: Option<QueueKey>,
    ) {
        if let Some(slots) = self.lanes.get_mut(lane) {
            if let Some(i) = slots.iter().position(|s| s.db == db && s.caps == *caps) {
                let emptied = slots
                    .get_mut(i)
                    .is_some_and(|s| s.heads.update(partition, head));
                if emptied {
                    slots.swap_remove(i);
                    if slots.is_empty() {
                        self.lanes.remove(lane);
                    }
                }
                return;
            }
        }
        if head.is_some() {
            let mut heads = Heads::default();
            heads.update(partition, head);
            self.lanes.entry(lane.into()).or_default().push(Slot {
                db,
                caps: caps.clone(),
                heads,
            });
        }
    }

    /// The best head over `lanes` whose capability set the worker satisfies.
    pub fn best<'a>(
        &self,
        db: i32,
        lanes: impl Iterator<Item = &'a str>,
        worker: &CapSet,
    ) -> Option<Candidate<'a>> {
        let mut best: Option<(QueueKey, u16, &'a str, &CapSet)> = None;
        for lane in lanes {
            let Some(slots) = self.lanes.get(lane) else {
                continue;
            };
            for s in slots {
                if s.db != db || !s.caps.is_subset_of(worker) {
                    continue;
                }
                if let Some((k, p)) = s.heads.first() {
                    if best.is_none_or(|b| (k, p) < (b.0, b.1)) {
                        best = Some((k, p, lane, &s.caps));
                    }
                }
            }
        }
        best.map(|(key, partition, lane, caps)| Candidate {
            lane,
            caps: caps.clone(),
            partition,
            key,
        })
    }

    /// The partitions that have queued work on `lane`.
    pub fn partitions_with(&self, db: i32, lane: &str) -> Vec<u16> {
        let mut out: Vec<u16> = self
            .lanes
            .get(lane)
            .into_iter()
            .flatten()
            .filter(|s| s.db == db)
            .flat_map(|s| s.heads.partitions())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(rank: u16, t: u64) -> QueueKey {
        QueueKey::new(rank, t, 0)
    }

    #[test]
    fn best_respects_caps_priority_and_lanes() {
        let mut h = ClaimHints::default();
        let gpu = CapSet::parse_required(b"gpu").unwrap();
        let none = CapSet::empty();
        h.set(0, "a", &none, 1, Some(k(10, 5)));
        h.set(0, "a", &none, 2, Some(k(10, 3)));
        h.set(0, "a", &gpu, 3, Some(k(1, 1)));
        h.set(0, "b", &none, 4, Some(k(0, 0)));
        let plain = CapSet::empty();
        let c = h.best(0, ["a"].into_iter(), &plain).unwrap();
        assert_eq!((c.partition, c.key), (2, k(10, 3)));
        let c = h.best(0, ["a"].into_iter(), &gpu).unwrap();
        assert_eq!(c.partition, 3);
        let c = h.best(0, ["a", "b"].into_iter(), &plain).unwrap();
        assert_eq!(c.partition, 4);
        assert!(h.best(1, ["a"].into_iter(), &plain).is_none());
        h.set(0, "a", &none, 2, None);
        h.set(0, "a", &none, 1, Some(k(10, 9)));
        let c = h.best(0, ["a"].into_iter(), &plain).unwrap();
        assert_eq!((c.partition, c.key), (1, k(10, 9)));
        h.set(0, "a", &none, 1, None);
        assert!(h.best(0, ["a"].into_iter(), &plain).is_none());
    }

    #[test]
    fn heads_agree_with_an_ordered_set() {
        use std::collections::BTreeMap;
        let mut heads = Heads::default();
        let mut model: BTreeMap<u16, QueueKey> = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = (x % 37) as u16;
            let head = !(x >> 8).is_multiple_of(4);
            let key = QueueKey::new((x >> 16) as u16 % 3, (x >> 24) % 50, 0);
            let empty = heads.update(p, head.then_some(key));
            if head {
                model.insert(p, key);
            } else {
                model.remove(&p);
            }
            let best = model.iter().map(|(&p, &k)| (k, p)).min();
            assert_eq!(heads.first(), best, "step {step}");
            assert_eq!(empty, model.is_empty());
            let mut ps: Vec<u16> = heads.partitions().collect();
            ps.sort_unstable();
            assert_eq!(ps, model.keys().copied().collect::<Vec<_>>());
        }
    }
}
