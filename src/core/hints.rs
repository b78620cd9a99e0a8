//! Node-wide claim hints: for each (db, lane, capability set), the head of
//! every partition's queue. A claim reads the best hint instead of visiting
//! every partition, then checks it against the partition's real index, so a
//! stale hint (key deleted, slot migrated away, flushed) is dropped, never
//! trusted. Hints are derived data and are not persisted; every path that
//! changes or loads an index refreshes them.

use std::collections::{BTreeSet, HashMap};

use ahash::RandomState;

use crate::core::caps::CapSet;
use crate::core::index::QueueKey;

#[derive(Default)]
struct Heads {
    ordered: BTreeSet<(QueueKey, u16)>,
    by_partition: HashMap<u16, QueueKey, RandomState>,
}

impl Heads {
    /// Records partition's head; true when no head is left at all.
    fn update(&mut self, partition: u16, head: Option<QueueKey>) -> bool {
        match (self.by_partition.get_mut(&partition), head) {
            (Some(old), Some(k)) => {
                if *old != k {
                    self.ordered.remove(&(*old, partition));
                    *old = k;
                    self.ordered.insert((k, partition));
                }
            }
            (Some(old), None) => {
                self.ordered.remove(&(*old, partition));
                self.by_partition.remove(&partition);
            }
            (None, Some(k)) => {
                self.by_partition.insert(partition, k);
                self.ordered.insert((k, partition));
            }
            (None, None) => {}
        }
        self.ordered.is_empty()
    }
}

type ByCaps = HashMap<CapSet, Heads, RandomState>;
type ByLane = HashMap<Box<str>, ByCaps, RandomState>;

#[derive(Default)]
pub struct ClaimHints {
    dbs: HashMap<i32, ByLane, RandomState>,
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
        let lanes = self.dbs.entry(db).or_default();
        // Hot path (every claim): one lookup per level when the entry exists.
        if let Some(heads) = lanes.get_mut(lane).and_then(|m| m.get_mut(caps)) {
            if !heads.update(partition, head) {
                return;
            }
            // The last head went: drop the empty entries.
            if let Some(by_caps) = lanes.get_mut(lane) {
                by_caps.remove(caps);
                if by_caps.is_empty() {
                    lanes.remove(lane);
                }
            }
            return;
        }
        if head.is_some() {
            let heads = lanes
                .entry(lane.into())
                .or_default()
                .entry(caps.clone())
                .or_default();
            heads.update(partition, head);
        }
    }

    /// The best head over `lanes` whose capability set the worker satisfies.
    pub fn best<'a>(
        &self,
        db: i32,
        lanes: impl Iterator<Item = &'a str>,
        worker: &CapSet,
    ) -> Option<Candidate<'a>> {
        let by_lane = self.dbs.get(&db)?;
        let mut best: Option<(QueueKey, u16, &'a str, &CapSet)> = None;
        for lane in lanes {
            let Some(by_caps) = by_lane.get(lane) else {
                continue;
            };
            for (caps, heads) in by_caps {
                if !caps.is_subset_of(worker) {
                    continue;
                }
                if let Some(&(k, p)) = heads.ordered.first() {
                    if best.is_none_or(|b| (k, p) < (b.0, b.1)) {
                        best = Some((k, p, lane, caps));
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
            .dbs
            .get(&db)
            .and_then(|l| l.get(lane))
            .map(|by_caps| {
                by_caps
                    .values()
                    .flat_map(|h| h.by_partition.keys().copied())
                    .collect()
            })
            .unwrap_or_default();
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
}
