//! The earliest due time of every partition the node holds, by db, with
//! the node's earliest found without a pass over them: the node timer reads
//! it on every firing, and commands update it whenever a partition's
//! earliest due time moves.
//!
//! Per db, a tournament tree over the partitions (a flat array: leaves
//! hold each partition's due time, each inner slot the earlier of its two
//! children). An update rewrites a leaf and walks up only while the minimum
//! changes: O(log partitions) array writes at most, none of them
//! allocating. The earliest is at the root; finding which partition holds
//! it walks down, preferring the lower partition on a tie.

/// No due time.
const NONE: u64 = u64::MAX;

#[derive(Clone, Debug, Default)]
pub struct DueTable {
    /// Leaves (a power of two at least the partition count).
    width: usize,
    /// One tree per db, created when the db first has a due time.
    trees: Vec<Vec<u64>>,
}

impl DueTable {
    pub fn new(partitions: u16) -> DueTable {
        DueTable {
            width: usize::from(partitions).max(1).next_power_of_two(),
            trees: Vec::new(),
        }
    }

    /// Records partition `p`'s earliest due time in `db`; whether it changed.
    pub fn set(&mut self, db: usize, p: u16, due: Option<u64>) -> bool {
        let due = due.unwrap_or(NONE);
        let width = self.width;
        let p = usize::from(p);
        if p >= width {
            return false;
        }
        if self.trees.len() <= db {
            if due == NONE {
                return false;
            }
            self.trees.resize_with(db + 1, Vec::new);
        }
        let Some(tree) = self.trees.get_mut(db) else {
            return false;
        };
        if tree.is_empty() {
            if due == NONE {
                return false;
            }
            *tree = vec![NONE; 2 * width];
        }
        let mut i = width + p;
        match tree.get_mut(i) {
            Some(slot) if *slot != due => *slot = due,
            _ => return false,
        }
        while i > 1 {
            let sibling = tree.get(i ^ 1).copied().unwrap_or(NONE);
            let here = tree.get(i).copied().unwrap_or(NONE);
            i /= 2;
            let min = here.min(sibling);
            match tree.get_mut(i) {
                Some(parent) if *parent != min => *parent = min,
                _ => break,
            }
        }
        true
    }

    /// Partition `p`'s recorded due time in `db`.
    pub fn get(&self, db: usize, p: u16) -> Option<u64> {
        let t = self
            .trees
            .get(db)?
            .get(self.width + usize::from(p))
            .copied()?;
        (t != NONE).then_some(t)
    }

    /// The earliest due time and where: (due, db, partition), ties to the
    /// lowest db, then the lowest partition.
    pub fn first(&self) -> Option<(u64, usize, u16)> {
        let (db, tree, due) = self
            .trees
            .iter()
            .enumerate()
            .filter_map(|(db, t)| Some((db, t, t.get(1).copied().filter(|&d| d != NONE)?)))
            .min_by_key(|&(db, _, due)| (due, db))?;
        let mut i = 1;
        while i < self.width {
            i *= 2;
            if tree.get(i).copied() != Some(due) {
                i += 1;
            }
        }
        let p = u16::try_from(i.checked_sub(self.width)?).ok()?;
        Some((due, db, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Against a plain map, on a pseudo-random sequence of updates.
    #[test]
    fn matches_a_plain_map() {
        for partitions in [1u16, 3, 8, 256, 300] {
            let mut t = DueTable::new(partitions);
            let mut m: BTreeMap<(usize, u16), u64> = BTreeMap::new();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..5000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let db = (x % 3) as usize;
                let p = ((x >> 8) % u64::from(partitions)) as u16;
                let due = if (x >> 20).is_multiple_of(4) {
                    None
                } else {
                    Some((x >> 24) % 50)
                };
                let changed = t.set(db, p, due);
                let old = match due {
                    Some(d) => m.insert((db, p), d),
                    None => m.remove(&(db, p)),
                };
                assert_eq!(changed, old != due);
                assert_eq!(t.get(db, p), due);
                let want = m.iter().map(|(&(db, p), &d)| (d, db, p)).min();
                assert_eq!(t.first(), want);
            }
        }
        assert!(
            !DueTable::new(4).set(0, 4, Some(1)),
            "outside the partitions"
        );
    }
}
