use super::*;
use std::collections::BTreeMap;

fn k(rank: u16, t: u64) -> QueueKey {
    QueueKey::new(rank, t, 0)
}

fn caps(s: &str) -> CapSet {
    CapSet::parse_worker(s.as_bytes()).unwrap()
}

#[test]
fn best_respects_caps_priority_and_lanes() {
    let mut h: ClaimBoard<()> = ClaimBoard::default();
    let gpu = caps("gpu");
    let none = CapSet::empty();
    h.set_head(0, "a", &none, 1, Some(k(10, 5)));
    h.set_head(0, "a", &none, 2, Some(k(10, 3)));
    h.set_head(0, "a", &gpu, 3, Some(k(1, 1)));
    h.set_head(0, "b", &none, 4, Some(k(0, 0)));
    let c = h.best(0, ["a"].into_iter(), &none, &mut |_| true).unwrap();
    assert_eq!((c.partition, c.key), (2, k(10, 3)));
    let c = h.best(0, ["a"].into_iter(), &gpu, &mut |_| true).unwrap();
    assert_eq!(c.partition, 3);
    let c = h
        .best(0, ["a", "b"].into_iter(), &none, &mut |_| true)
        .unwrap();
    assert_eq!(c.partition, 4);
    assert!(h.best(1, ["a"].into_iter(), &none, &mut |_| true).is_none());
    h.set_head(0, "a", &none, 2, None);
    h.set_head(0, "a", &none, 1, Some(k(10, 9)));
    let c = h.best(0, ["a"].into_iter(), &none, &mut |_| true).unwrap();
    assert_eq!((c.partition, c.key), (1, k(10, 9)));
    h.set_head(0, "a", &none, 1, None);
    assert!(h.best(0, ["a"].into_iter(), &none, &mut |_| true).is_none());
    assert_eq!(h.partitions_with(0, "a"), vec![3]);
}

/// Random heads, claims and waiters against a brute-force model: every
/// answer the board gives is the one a scan of everything would give.
#[test]
fn the_board_agrees_with_a_scan_of_everything() {
    let tokens = ["a", "b", "c", "d"];
    let mut sets: Vec<CapSet> = Vec::new();
    for mask in 0u32..16 {
        let t: Vec<&str> = (0..4)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| tokens[i])
            .collect();
        sets.push(caps(&t.join(",")));
    }
    let lanes = ["x", "y"];
    let mut board: ClaimBoard<u64> = ClaimBoard::default();
    // (lane, set index, partition) -> head
    let mut model: BTreeMap<(usize, usize, u16), QueueKey> = BTreeMap::new();
    let mut waiting: BTreeMap<u64, (Vec<usize>, usize)> = BTreeMap::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for step in 0..60_000 {
        match rnd(10) {
            0..=5 => {
                let (l, s, p) = (rnd(2) as usize, rnd(16) as usize, rnd(5) as u16);
                let head = (rnd(4) != 0).then(|| QueueKey::new(rnd(3) as u16, rnd(40), 0));
                let wake = board.set_head(0, lanes[l], &sets[s], p, head);
                match head {
                    Some(h) => model.insert((l, s, p), h),
                    None => model.remove(&(l, s, p)),
                };
                let want = model.keys().any(|&(ml, ms, _)| ml == l && ms == s)
                    && waiting
                        .values()
                        .any(|(wl, ws)| wl.contains(&l) && sets[s].is_subset_of(&sets[*ws]));
                assert_eq!(wake, want, "step {step}: wake");
            }
            6 | 7 => {
                let w = rnd(16) as usize;
                let ls: Vec<usize> = match rnd(3) {
                    0 => vec![0],
                    1 => vec![1],
                    _ => vec![0, 1],
                };
                let names: Vec<&str> = ls.iter().map(|&l| lanes[l]).collect();
                // Half the claims may use every partition, half only some
                // (as a user whose ACL allows a few partitions).
                let mask = if rnd(2) == 0 { 0b11111 } else { rnd(32) };
                let mut asked = 0;
                let got = board.best(0, names.iter().copied(), &sets[w], &mut |p| {
                    asked += 1;
                    mask & (1 << p) != 0
                });
                let want = model
                    .iter()
                    .filter(|((l, s, _), _)| ls.contains(l) && sets[*s].is_subset_of(&sets[w]))
                    .filter(|((_, _, p), _)| mask & (1 << p) != 0)
                    .map(|((_, _, p), h)| (*h, *p))
                    .min();
                assert_eq!(
                    got.as_ref().map(|c| (c.key, c.partition)),
                    want,
                    "step {step}: best"
                );
                if mask == 0b11111 {
                    assert!(
                        asked <= 1,
                        "step {step}: an unrestricted claim asked {asked}"
                    );
                }
                if let Some(c) = got {
                    let real = model.get(&(
                        lanes.iter().position(|l| *l == c.lane).unwrap(),
                        sets.iter().position(|s| *s == c.caps).unwrap(),
                        c.partition,
                    ));
                    assert_eq!(real, Some(&c.key), "step {step}: the candidate's set");
                }
            }
            8 => {
                let w = rnd(16) as usize;
                let ls: Vec<usize> = if rnd(2) == 0 { vec![0] } else { vec![0, 1] };
                let names: Vec<&str> = ls.iter().map(|&l| lanes[l]).collect();
                let id = board.add_waiter(0, &names, &sets[w], 7);
                waiting.insert(id, (ls, w));
            }
            _ => {
                if let Some(&id) = waiting.keys().nth(rnd(4) as usize) {
                    assert_eq!(board.remove_waiter(id).map(|w| w.data), Some(7));
                    waiting.remove(&id);
                }
            }
        }
        // Who should be served for each (lane, set) with work.
        for (l, lane) in lanes.iter().enumerate() {
            for s in 0..16 {
                let got = board.waiter_for(0, lane, &sets[s]);
                let has_work = model.keys().any(|&(ml, ms, _)| ml == l && ms == s);
                let want = waiting
                    .iter()
                    .filter(|(_, (wl, ws))| wl.contains(&l) && sets[s].is_subset_of(&sets[*ws]))
                    .map(|(id, _)| *id)
                    .next()
                    .filter(|_| has_work);
                assert_eq!(got, want, "step {step}: waiter for {l}/{s}");
            }
        }
        assert_eq!(board.waiting(), waiting.len());
    }
    for id in waiting.keys() {
        board.remove_waiter(*id);
    }
    for ((l, s, p), _) in std::mem::take(&mut model) {
        board.set_head(0, lanes[l], &sets[s], p, None);
    }
    assert!(
        board.lanes.is_empty(),
        "a lane goes with its last set and waiter"
    );
}

#[test]
fn idle_views_are_capped_and_waited_views_kept() {
    let mut board: ClaimBoard<()> = ClaimBoard::default();
    board.set_head(0, "l", &CapSet::empty(), 0, Some(k(0, 1)));
    let waited = caps("w");
    board.add_waiter(0, &["l"], &waited, ());
    for i in 0..IDLE_VIEWS_MAX + 50 {
        let c = caps(&format!("t{i}"));
        assert!(board
            .best(0, ["l"].into_iter(), &c, &mut |_| true)
            .is_some());
    }
    let b = board.board(0, "l").unwrap();
    assert_eq!(
        b.views.len,
        IDLE_VIEWS_MAX + 1,
        "idle views plus the waited one"
    );
    assert!(b.view_ids.contains_key(&waited));
    assert!(board.wants(0, "l", &CapSet::empty()));
}
