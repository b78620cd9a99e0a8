use super::*;
use crate::partition::records::tests::exec_on;

fn exec(p: &mut Partition, uuid: u128, lane: &str, delay: Option<u64>) {
    exec_on(p, uuid, lane, 0, delay);
}

fn all_of(p: &Partition, f: &Filter) -> Vec<Uuid> {
    let (mut all, mut cursor) = (Vec::new(), 0);
    loop {
        let (ids, next) = p.list(f, cursor, 3);
        all.extend(ids);
        match next {
            Some(c) => cursor = c,
            None => return all,
        }
    }
}

#[test]
fn listing_pages_through_every_record_once() {
    let mut p = Partition::new(1, 4);
    for u in 1..=25 {
        exec(&mut p, u, "l", (u % 5 == 0).then_some(900));
    }
    for (state, want) in [(None, 25), (Some(PublicState::Delayed), 5)] {
        let f = Filter {
            state,
            lane: Some("l"),
            ..Filter::default()
        };
        let all = all_of(&p, &f);
        assert_eq!(all.len(), want);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }
    let other = Filter {
        lane: Some("other"),
        ..Filter::default()
    };
    assert!(p.list(&other, 0, 10).0.is_empty());
}

#[test]
fn a_filtered_page_reads_at_most_four_times_its_count() {
    let mut p = Partition::new(1, 4);
    for u in 1..=100 {
        exec(&mut p, u, "l", (u == 90).then_some(900));
    }
    let f = Filter {
        state: Some(PublicState::Delayed),
        ..Filter::default()
    };
    let page = p.scan(&f, 0, 2, f.window(2));
    assert_eq!((page.ids.len(), page.read), (0, 8));
    assert_eq!(page.next, Some(8));
    assert_eq!(all_of(&p, &f), vec![Uuid(90)]);
}

#[test]
fn counts_tell_which_partitions_may_match() {
    let mut p = Partition::new(1, 4);
    exec(&mut p, 1, "a", None);
    exec(&mut p, 2, "b", Some(900));
    let with = |state, lane, reclaimable| Filter {
        state,
        lane,
        reclaimable,
    };
    assert!(with(None, None, false).may_match(&p.index));
    assert!(with(Some(PublicState::Delayed), Some("b"), false).may_match(&p.index));
    assert!(!with(Some(PublicState::Delayed), Some("a"), false).may_match(&p.index));
    assert!(!with(None, Some("c"), false).may_match(&p.index));
    // Nothing is active, so nothing waits for a reclaim.
    assert!(!with(None, None, true).may_match(&p.index));
    assert!(!with(Some(PublicState::Delayed), None, true).may_match(&p.index));
    assert!(!Partition::new(2, 4).index.counts.iter().any(|&n| n > 0));
    assert!(!with(None, None, false).may_match(&Partition::new(2, 4).index));
}

#[test]
fn node_cursors_round_trip_and_move_on() {
    let c = NodeCursor {
        partition: 7,
        seq: 12345,
    };
    assert_eq!(NodeCursor::decode(c.encode(), 8), Some(c));
    assert_eq!(NodeCursor::decode(c.encode(), 7), None);
    assert_eq!(NodeCursor::decode(u64::MAX, 16384), None);
    assert_eq!(NodeCursor::decode(0, 1), Some(NodeCursor::default()));
    assert_eq!(
        NodeCursor::after(7, Some(3), 8),
        Some(NodeCursor {
            partition: 7,
            seq: 3
        })
    );
    assert_eq!(
        NodeCursor::after(6, None, 8),
        Some(NodeCursor {
            partition: 7,
            seq: 0
        })
    );
    assert_eq!(NodeCursor::after(7, None, 8), None);
    assert_eq!(NodeCursor::after(u16::MAX, None, u16::MAX), None);
    assert_eq!(
        NodeCursor::after(2, Some(1 << 50), 8),
        Some(NodeCursor {
            partition: 3,
            seq: 0
        })
    );
}
