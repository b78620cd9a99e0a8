//! The queue heads of one (db, lane, capability set) across partitions.

use crate::partition::queue::QueueKey;

/// The queue heads of one (db, lane, caps) across partitions: an indexed
/// min-heap on (head, partition), so the best is read in O(1) and a
/// partition's head moves in O(log partitions). A claim moves one head;
/// with the lane in one partition (the usual case) that is a single store.
#[derive(Default)]
pub struct Heads {
    heap: Vec<(QueueKey, u16)>,
    /// Heap position + 1 of each partition's entry (0: none), by partition.
    pos: Vec<u32>,
}

impl Heads {
    pub fn first(&self) -> Option<(QueueKey, u16)> {
        self.heap.first().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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

    /// Records partition's head (`None`: the partition has none).
    pub fn update(&mut self, partition: u16, head: Option<QueueKey>) {
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
    }

    /// The best head in a partition `allowed` accepts that is better than
    /// `bound`. Walks the heap from the top and stops under any entry at or
    /// past the best found so far (nothing below it can beat it), so
    /// `allowed` is asked only about heads that would be the answer; no
    /// allocation, and the recursion is as deep as the heap (at most 15
    /// levels for 16,384 partitions).
    pub fn best_where(
        &self,
        bound: Option<(QueueKey, u16)>,
        allowed: &mut impl FnMut(u16) -> bool,
    ) -> Option<(QueueKey, u16)> {
        let mut found = None;
        self.search(0, bound, &mut found, allowed);
        found
    }

    fn search(
        &self,
        i: usize,
        bound: Option<(QueueKey, u16)>,
        found: &mut Option<(QueueKey, u16)>,
        allowed: &mut impl FnMut(u16) -> bool,
    ) {
        let Some(&e) = self.heap.get(i) else {
            return;
        };
        // `found` is only ever set below `bound`, so it is the tighter limit.
        if found.or(bound).is_some_and(|limit| e >= limit) {
            return;
        }
        if allowed(e.1) {
            *found = Some(e);
            return;
        }
        let left = i.saturating_mul(2).saturating_add(1);
        self.search(left, bound, found, allowed);
        self.search(left.saturating_add(1), bound, found, allowed);
    }

    pub fn partitions(&self) -> impl Iterator<Item = u16> + '_ {
        self.heap.iter().map(|&(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// `best_where` is the best head a filter lets through, below a bound.
    #[test]
    fn best_where_agrees_with_a_filtered_scan() {
        let mut heads = Heads::default();
        let mut model: BTreeMap<u16, QueueKey> = BTreeMap::new();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for step in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = (x % 41) as u16;
            let key = QueueKey::new((x >> 16) as u16 % 3, (x >> 24) % 50, 0);
            if (x >> 8).is_multiple_of(5) {
                heads.update(p, None);
                model.remove(&p);
            } else {
                heads.update(p, Some(key));
                model.insert(p, key);
            }
            let modulus = 1 + (x >> 40) % 4;
            let bound = (x >> 32)
                .is_multiple_of(3)
                .then(|| (QueueKey::new(1, 25, 0), 20u16));
            let mut asked = 0;
            let got = heads.best_where(bound, &mut |p| {
                asked += 1;
                u64::from(p) % modulus == 0
            });
            let want = model
                .iter()
                .map(|(&p, &k)| (k, p))
                .filter(|&(_, p)| u64::from(p) % modulus == 0)
                .filter(|&e| bound.is_none_or(|b| e < b))
                .min();
            assert_eq!(got, want, "step {step}");
            if modulus == 1 && bound.is_none() {
                // Everything allowed: only the top is asked about.
                assert!(asked <= 1, "step {step}: asked {asked}");
            }
        }
    }

    #[test]
    fn heads_agree_with_an_ordered_set() {
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
            heads.update(p, head.then_some(key));
            if head {
                model.insert(p, key);
            } else {
                model.remove(&p);
            }
            let best = model.iter().map(|(&p, &k)| (k, p)).min();
            assert_eq!(heads.first(), best, "step {step}");
            assert_eq!(heads.is_empty(), model.is_empty());
            let mut ps: Vec<u16> = heads.partitions().collect();
            ps.sort_unstable();
            assert_eq!(ps, model.keys().copied().collect::<Vec<_>>());
        }
    }
}
