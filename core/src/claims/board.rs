//! The node's claim board: where claimable work is, and who waits for it.
//!
//! For each (db, lane) the board keeps the queue heads of every required
//! capability set across partitions (`Heads`), and one *view* per worker
//! capability set that has claimed or waited there: the sets that worker
//! can serve, ordered by their best head. A claim reads its view's first
//! entry, so its cost does not grow with the number of capability sets on
//! the lane, whether the worker matches all of them, one or none. A view is
//! built once (one pass over the lane's sets) the first time a worker
//! capability set shows up on a lane, and kept while it is used.
//!
//! Views are kept lazily: a set whose head gets *better* (a submit to an
//! empty queue, a higher priority) is pushed to every view that holds it; a
//! head that gets worse (a claim popped it) is not, and a view finds out
//! when it reads the stale entry, drops it and re-files the set under its
//! real head. Claims therefore cost the views nothing.
//!
//! Blocked claimers wait in the view of their capability set on each of
//! their lanes, in arrival order. When work becomes claimable on a set, the
//! longest-waiting claimer among the views that hold the set is the one to
//! serve; claimers whose capabilities cannot serve it are never looked at.
//!
//! Everything here is derived data: hints are checked against the
//! partition's real index before a claim trusts them, and nothing is
//! persisted.

use std::collections::{BTreeSet, HashMap};

use ahash::RandomState;
use smallvec::SmallVec;

use crate::base::caps::{CapSet, Offer};
use crate::claims::heads::Heads;
use crate::claims::slab::{Id, Slab};
use crate::partition::queue::QueueKey;

/// Views no claimer waits in are dropped, least recently used first, past
/// this many on one lane: a view costs one entry per set it holds.
pub const IDLE_VIEWS_MAX: usize = 256;

/// One required capability set of a lane: its heads, and the views that
/// hold it (the worker sets it is a subset of).
struct CapsSet {
    caps: CapSet,
    heads: Heads,
    views: SmallVec<[Id; 2]>,
}

/// What one worker capability set can claim on a lane, best first, and who
/// of its claimers waits there.
struct View {
    /// The worker set, split into tokens for checking sets against it.
    offer: Offer,
    /// (head, partition, set): at least one entry per set the view holds,
    /// at or before the set's real head (see the module comment).
    order: BTreeSet<(QueueKey, u16, Id)>,
    /// How many sets the view holds; when `order` outgrows it by far the
    /// view is refiled from scratch.
    holds: usize,
    /// Blocked claimers by arrival.
    waiters: BTreeSet<u64>,
    /// When a claim last read the view (the lane's own clock).
    used: u64,
}

/// The sets and views of one (db, lane).
#[derive(Default)]
struct Board {
    sets: Slab<CapsSet>,
    set_ids: HashMap<CapSet, Id, RandomState>,
    views: Slab<View>,
    view_ids: HashMap<CapSet, Id, RandomState>,
    /// Claimers waiting on this lane.
    waiting: usize,
    clock: u64,
}

impl Board {
    fn is_unused(&self) -> bool {
        self.sets.len == 0 && self.waiting == 0
    }

    /// Adds a set of required capabilities and files it in every view that
    /// can serve it (one pass over the lane's views).
    fn add_set(&mut self, caps: &CapSet) -> Id {
        let id = self.sets.insert(CapsSet {
            caps: caps.clone(),
            heads: Heads::default(),
            views: SmallVec::new(),
        });
        self.set_ids.insert(caps.clone(), id);
        let mut holders = SmallVec::new();
        for (vid, v) in self.views.iter() {
            if v.offer.covers(caps) {
                holders.push(vid);
            }
        }
        for &vid in &holders {
            if let Some(v) = self.views.get_mut(vid) {
                v.holds += 1;
            }
        }
        if let Some(s) = self.sets.get_mut(id) {
            s.views = holders;
        }
        id
    }

    fn remove_set(&mut self, id: Id) {
        let Some(s) = self.sets.remove(id) else {
            return;
        };
        self.set_ids.remove(&s.caps);
        // Its entries in the views go stale and are dropped when read.
        for vid in s.views {
            if let Some(v) = self.views.get_mut(vid) {
                v.holds = v.holds.saturating_sub(1);
            }
        }
    }

    /// The view of a worker capability set, built if it is new.
    fn view(&mut self, worker: &CapSet) -> Id {
        if let Some(&id) = self.view_ids.get(worker) {
            return id;
        }
        self.evict_idle_views();
        let id = self.views.insert(View {
            offer: Offer::new(worker),
            order: BTreeSet::new(),
            holds: 0,
            waiters: BTreeSet::new(),
            used: self.clock,
        });
        self.view_ids.insert(worker.clone(), id);
        self.refile(id);
        id
    }

    /// Rebuilds a view's order from the lane's sets.
    fn refile(&mut self, vid: Id) {
        let Some(offer) = self.views.get(vid).map(|v| v.offer.clone()) else {
            return;
        };
        let mut entries = Vec::new();
        let mut held: Vec<Id> = Vec::new();
        for (sid, s) in self.sets.iter() {
            if offer.covers(&s.caps) {
                held.push(sid);
                if let Some((k, p)) = s.heads.first() {
                    entries.push((k, p, sid));
                }
            }
        }
        let holds = held.len();
        // Built from sorted entries in one pass, not one insert at a time.
        entries.sort_unstable();
        let order: BTreeSet<_> = entries.into_iter().collect();
        for sid in held {
            if let Some(s) = self.sets.get_mut(sid) {
                if !s.views.contains(&vid) {
                    s.views.push(vid);
                }
            }
        }
        if let Some(v) = self.views.get_mut(vid) {
            v.order = order;
            v.holds = holds;
        }
    }

    /// Drops the least recently used views nobody waits in, past the cap.
    fn evict_idle_views(&mut self) {
        loop {
            let idle = || self.views.iter().filter(|(_, v)| v.waiters.is_empty());
            if idle().count() < IDLE_VIEWS_MAX {
                return;
            }
            let Some(oldest) = idle().min_by_key(|(_, v)| v.used).map(|(id, _)| id) else {
                return;
            };
            let Some(v) = self.views.remove(oldest) else {
                return;
            };
            self.view_ids.remove(v.offer.caps());
            // Every set the view holds has an entry in its order.
            for (_, _, sid) in v.order {
                if let Some(s) = self.sets.get_mut(sid) {
                    s.views.retain(|x| *x != oldest);
                }
            }
        }
    }

    /// The view's best real head, dropping stale entries on the way.
    fn view_first(&mut self, vid: Id) -> Option<(QueueKey, u16, Id)> {
        let Board { sets, views, .. } = self;
        let v = views.get_mut(vid)?;
        while let Some(&(k, p, sid)) = v.order.first() {
            let real = sets.get(sid).and_then(|s| s.heads.first());
            if real == Some((k, p)) {
                return Some((k, p, sid));
            }
            v.order.pop_first();
            // The set's head moved (got worse: improvements are pushed) or
            // the set is gone: re-file it under its real head.
            if let Some((rk, rp)) = real {
                v.order.insert((rk, rp, sid));
            }
        }
        None
    }

    /// The best head of view `vid` in a partition `allowed` accepts that is
    /// better than `bound`. The view's entries are, in order, lower bounds
    /// of their sets' heads, so the walk ends at the first entry at or past
    /// the best found: sets past it cannot beat it.
    fn view_best_where(
        &self,
        vid: Id,
        bound: Option<(QueueKey, u16)>,
        allowed: &mut impl FnMut(u16) -> bool,
    ) -> Option<(QueueKey, u16, Id)> {
        let v = self.views.get(vid)?;
        let mut found: Option<(QueueKey, u16, Id)> = None;
        for &(k, p, sid) in &v.order {
            let limit = found.map(|(fk, fp, _)| (fk, fp)).or(bound);
            if limit.is_some_and(|l| (k, p) >= l) {
                break;
            }
            let Some(s) = self.sets.get(sid) else {
                continue;
            };
            if let Some((hk, hp)) = s.heads.best_where(limit, allowed) {
                found = Some((hk, hp, sid));
            }
        }
        found
    }

    /// The longest-waiting claimer among the views that hold set `sid`.
    fn first_waiter(&self, sid: Id) -> Option<u64> {
        self.waiter_after(sid, None)
    }

    /// The longest-waiting claimer among the views that hold set `sid`
    /// that came after claimer `after` (all of them for None).
    fn waiter_after(&self, sid: Id, after: Option<u64>) -> Option<u64> {
        let s = self.sets.get(sid)?;
        let from = after.map_or(0, |a| a.saturating_add(1));
        s.views
            .iter()
            .filter_map(|&vid| self.views.get(vid)?.waiters.range(from..).next().copied())
            .min()
    }
}

/// A blocked claimer: where it waits, and the shell's own data about it.
pub struct Waiter<T> {
    pub db: i32,
    pub lanes: SmallVec<[Box<str>; 2]>,
    pub caps: CapSet,
    pub data: T,
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

/// A lane's boards, one per db that has it (nearly always just db 0).
type LaneBoards = SmallVec<[(i32, Board); 1]>;

/// The node's claim board (see the module comment).
pub struct ClaimBoard<T> {
    lanes: HashMap<Box<str>, LaneBoards, RandomState>,
    waiters: HashMap<u64, Waiter<T>, RandomState>,
    next_waiter: u64,
}

impl<T> Default for ClaimBoard<T> {
    fn default() -> Self {
        ClaimBoard {
            lanes: HashMap::default(),
            waiters: HashMap::default(),
            next_waiter: 0,
        }
    }
}

impl<T> ClaimBoard<T> {
    fn board(&self, db: i32, lane: &str) -> Option<&Board> {
        self.lanes
            .get(lane)?
            .iter()
            .find(|(d, _)| *d == db)
            .map(|(_, b)| b)
    }

    fn board_mut(&mut self, db: i32, lane: &str) -> Option<&mut Board> {
        self.lanes
            .get_mut(lane)?
            .iter_mut()
            .find(|(d, _)| *d == db)
            .map(|(_, b)| b)
    }

    /// The board of (db, lane), created if missing (always `Some`).
    fn board_or_new(&mut self, db: i32, lane: &str) -> Option<&mut Board> {
        let boards = match self.lanes.contains_key(lane) {
            true => self.lanes.get_mut(lane)?,
            false => self.lanes.entry(lane.into()).or_default(),
        };
        if !boards.iter().any(|(d, _)| *d == db) {
            boards.push((db, Board::default()));
        }
        boards.iter_mut().find(|(d, _)| *d == db).map(|(_, b)| b)
    }

    /// Drops a lane's board once it holds no work and nobody waits on it.
    fn tidy(&mut self, db: i32, lane: &str) {
        let Some(boards) = self.lanes.get_mut(lane) else {
            return;
        };
        boards.retain(|(d, b)| *d != db || !b.is_unused());
        if boards.is_empty() {
            self.lanes.remove(lane);
        }
    }

    /// Records `head` as partition's current head for (db, lane, caps)
    /// (`None`: it has none). Says whether a blocked claimer can now take
    /// work of this set.
    pub fn set_head(
        &mut self,
        db: i32,
        lane: &str,
        caps: &CapSet,
        partition: u16,
        head: Option<QueueKey>,
    ) -> bool {
        let board = match (self.board_mut(db, lane).is_some(), head) {
            (true, _) => self.board_mut(db, lane),
            (false, Some(_)) => self.board_or_new(db, lane),
            (false, None) => None,
        };
        let Some(board) = board else {
            return false;
        };
        let sid = match (board.set_ids.get(caps).copied(), head) {
            (Some(sid), _) => sid,
            (None, Some(_)) => board.add_set(caps),
            (None, None) => return false,
        };
        let Some(s) = board.sets.get_mut(sid) else {
            return false;
        };
        let before = s.heads.first();
        s.heads.update(partition, head);
        let after = s.heads.first();
        let emptied = s.heads.is_empty();
        if let Some(a) = after {
            if before.is_none_or(|b| a < b) {
                // Better than every view knew: tell them now.
                let Board { sets, views, .. } = &mut *board;
                if let Some(s) = sets.get(sid) {
                    for &vid in &s.views {
                        if let Some(v) = views.get_mut(vid) {
                            v.order.insert((a.0, a.1, sid));
                        }
                    }
                }
            }
        }
        let wake = !emptied && board.waiting > 0 && board.first_waiter(sid).is_some();
        if emptied {
            board.remove_set(sid);
            self.tidy(db, lane);
        }
        wake
    }

    /// Whether a blocked claimer could take work of (db, lane, caps) now.
    pub fn wants(&self, db: i32, lane: &str, caps: &CapSet) -> bool {
        self.waiter_for(db, lane, caps).is_some()
    }

    /// The best head over `lanes` whose capability set the worker
    /// satisfies, in a partition `allowed` accepts (the caller's ACL key
    /// permissions). `allowed` is asked about the best head first; only
    /// when it refuses that one does the search go on, partition by
    /// partition, for the best head it accepts. So a caller allowed
    /// everywhere pays one question per claim, and a refused partition
    /// never hides work in an allowed one.
    pub fn best<'a, L>(
        &mut self,
        db: i32,
        lanes: L,
        worker: &CapSet,
        allowed: &mut impl FnMut(u16) -> bool,
    ) -> Option<Candidate<'a>>
    where
        L: Iterator<Item = &'a str> + Clone,
    {
        let first = self.best_anywhere(db, lanes.clone(), worker)?;
        if allowed(first.partition) {
            return Some(first);
        }
        let mut best: Option<(QueueKey, u16, &'a str, Id)> = None;
        for lane in lanes {
            let Some(board) = self.board(db, lane) else {
                continue;
            };
            let Some(&vid) = board.view_ids.get(worker) else {
                continue;
            };
            let bound = best.map(|(k, p, _, _)| (k, p));
            if let Some((k, p, sid)) = board.view_best_where(vid, bound, allowed) {
                best = Some((k, p, lane, sid));
            }
        }
        let (key, partition, lane, sid) = best?;
        let caps = self.board(db, lane)?.sets.get(sid)?.caps.clone();
        Some(Candidate {
            lane,
            caps,
            partition,
            key,
        })
    }

    /// The best head over `lanes` whose capability set the worker
    /// satisfies, in any partition.
    fn best_anywhere<'a>(
        &mut self,
        db: i32,
        lanes: impl Iterator<Item = &'a str>,
        worker: &CapSet,
    ) -> Option<Candidate<'a>> {
        let mut best: Option<(QueueKey, u16, &'a str, CapSet)> = None;
        for lane in lanes {
            let Some(board) = self.board_mut(db, lane) else {
                continue;
            };
            let vid = board.view(worker);
            board.clock = board.clock.wrapping_add(1);
            let clock = board.clock;
            if let Some(v) = board.views.get_mut(vid) {
                v.used = clock;
                if v.order.len() > v.holds.saturating_mul(2).saturating_add(16) {
                    board.refile(vid);
                }
            }
            let Some((k, p, sid)) = board.view_first(vid) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| (k, p) < (b.0, b.1)) {
                let caps = board.sets.get(sid).map(|s| s.caps.clone());
                if let Some(caps) = caps {
                    best = Some((k, p, lane, caps));
                }
            }
        }
        best.map(|(key, partition, lane, caps)| Candidate {
            lane,
            caps,
            partition,
            key,
        })
    }

    /// The partitions that have queued work on `lane` in `db`.
    pub fn partitions_with(&self, db: i32, lane: &str) -> Vec<u16> {
        let mut out: Vec<u16> = self
            .board(db, lane)
            .into_iter()
            .flat_map(|b| b.sets.iter().flat_map(|(_, s)| s.heads.partitions()))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every (db, caps) of `lane` that has work a blocked claimer can take.
    pub fn wanted_on(&self, lane: &str) -> Vec<(i32, CapSet)> {
        let mut out = Vec::new();
        for (db, b) in self.lanes.get(lane).into_iter().flatten() {
            if b.waiting == 0 {
                continue;
            }
            for (sid, s) in b.sets.iter() {
                if b.first_waiter(sid).is_some() {
                    out.push((*db, s.caps.clone()));
                }
            }
        }
        out
    }

    /// Queues a blocked claimer on each of its lanes; returns its id
    /// (ids grow, so they order claimers by arrival).
    pub fn add_waiter(&mut self, db: i32, lanes: &[&str], caps: &CapSet, data: T) -> u64 {
        let id = self.next_waiter;
        self.next_waiter = self.next_waiter.wrapping_add(1);
        let w = Waiter {
            db,
            lanes: lanes.iter().map(|&l| l.into()).collect(),
            caps: caps.clone(),
            data,
        };
        self.restore_waiter(id, w);
        id
    }

    /// Takes a claimer off every lane it waits on.
    pub fn remove_waiter(&mut self, id: u64) -> Option<Waiter<T>> {
        let w = self.waiters.remove(&id)?;
        for lane in &w.lanes {
            if let Some(board) = self.board_mut(w.db, lane) {
                if let Some(vid) = board.view_ids.get(&w.caps).copied() {
                    if let Some(v) = board.views.get_mut(vid) {
                        if v.waiters.remove(&id) {
                            board.waiting = board.waiting.saturating_sub(1);
                        }
                    }
                }
            }
            self.tidy(w.db, lane);
        }
        Some(w)
    }

    /// Queues claimer `id` on each of its lanes; also puts one taken off by
    /// `remove_waiter` back in its old place (its id keeps its turn).
    pub fn restore_waiter(&mut self, id: u64, w: Waiter<T>) {
        for lane in &w.lanes {
            let Some(board) = self.board_or_new(w.db, lane) else {
                continue;
            };
            let vid = board.view(&w.caps);
            if let Some(v) = board.views.get_mut(vid) {
                if v.waiters.insert(id) {
                    board.waiting += 1;
                }
            }
        }
        self.waiters.insert(id, w);
    }

    /// The longest-waiting claimer that can take work of (db, lane, caps).
    pub fn waiter_for(&self, db: i32, lane: &str, caps: &CapSet) -> Option<u64> {
        self.waiter_after(db, lane, caps, None)
    }

    /// The next claimer for work of `caps` on `lane` after claimer `after`
    /// (ids order claimers by arrival): a hand-off resumes past claimers
    /// whose ACL refused the work.
    pub fn waiter_after(
        &self,
        db: i32,
        lane: &str,
        caps: &CapSet,
        after: Option<u64>,
    ) -> Option<u64> {
        let b = self.board(db, lane)?;
        if b.waiting == 0 {
            return None;
        }
        let sid = b.set_ids.get(caps).copied()?;
        b.waiter_after(sid, after)
    }

    pub fn waiter(&self, id: u64) -> Option<&Waiter<T>> {
        self.waiters.get(&id)
    }

    /// How many claimers are blocked on this node.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
#[path = "board_tests.rs"]
mod tests;
