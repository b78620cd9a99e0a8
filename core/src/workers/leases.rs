//! Which live leases each worker instance holds on this node, so FF.LEASES
//! and revoking a dead worker's leases cost what that worker holds, not a
//! pass over every lease. Derived data, like the claim board: kept in step
//! by every transition that gives or takes a lease, rebuilt when partitions
//! load, and checked against the record before it is trusted (a partition
//! deleted or migrated away leaves entries behind, dropped when found).

use std::collections::{BTreeSet, HashMap};

use ahash::RandomState;

use crate::base::ids::Uuid;

/// Where a lease's execution lives: (db, partition, uuid).
pub type LeaseRef = (i32, u16, Uuid);

#[derive(Default)]
pub struct WorkerLeases {
    by_instance: HashMap<Box<[u8]>, BTreeSet<LeaseRef>, RandomState>,
}

impl WorkerLeases {
    pub fn add(&mut self, instance: &[u8], lease: LeaseRef) {
        match self.by_instance.get_mut(instance) {
            Some(set) => {
                set.insert(lease);
            }
            None => {
                self.by_instance
                    .insert(instance.into(), BTreeSet::from([lease]));
            }
        }
    }

    pub fn remove(&mut self, instance: &[u8], lease: &LeaseRef) {
        if let Some(set) = self.by_instance.get_mut(instance) {
            set.remove(lease);
            if set.is_empty() {
                self.by_instance.remove(instance);
            }
        }
    }

    /// Up to `max` of `instance`'s leases, from `after` on (exclusive), in
    /// (db, partition, uuid) order: a page of a listing or of a batch.
    pub fn page(&self, instance: &[u8], after: Option<LeaseRef>, max: usize) -> Vec<LeaseRef> {
        let Some(set) = self.by_instance.get(instance) else {
            return Vec::new();
        };
        let from = match after {
            Some(a) => set.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => set.range(..),
        };
        from.take(max).copied().collect()
    }

    pub fn count(&self, instance: &[u8]) -> usize {
        self.by_instance.get(instance).map_or(0, BTreeSet::len)
    }

    /// Every lease of every instance, for INFO.
    pub fn total(&self) -> usize {
        self.by_instance.values().map(BTreeSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_removal() {
        let mut l = WorkerLeases::default();
        for u in 0..10u128 {
            l.add(b"a", (0, (u % 3) as u16, Uuid(u)));
        }
        l.add(b"b", (0, 0, Uuid(99)));
        assert_eq!(l.count(b"a"), 10);
        let first = l.page(b"a", None, 4);
        assert_eq!(first.len(), 4);
        let rest = l.page(b"a", first.last().copied(), 100);
        assert_eq!(rest.len(), 6);
        for r in first.iter().chain(&rest) {
            l.remove(b"a", r);
        }
        assert_eq!(l.count(b"a"), 0);
        assert!(l.page(b"a", None, 1).is_empty());
        assert_eq!(l.total(), 1);
    }
}
