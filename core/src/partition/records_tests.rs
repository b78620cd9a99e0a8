use super::*;
use crate::base::caps::CapSet;
use crate::base::codec::Writer;
use crate::base::ids::ExecId;
use crate::execution::Spec;

fn exec(p: &mut Partition, uuid: u128, prio: u16, delay: Option<u64>) {
    exec_on(p, uuid, "l", prio, delay);
}

/// Admits execution `uuid` of partition 1 on `lane` (needing `gpu`).
pub(crate) fn exec_on(p: &mut Partition, uuid: u128, lane: &str, prio: u16, delay: Option<u64>) {
    let spec = Spec {
        lane: lane.into(),
        priority: prio,
        caps: CapSet::parse_required(b"gpu").unwrap(),
        delay_until: delay,
        payload: vec![7; 10].into(),
        ..Spec::default()
    };
    let id = ExecId {
        partition: 1,
        uuid: Uuid(uuid),
    };
    p.admit_new(id.uuid, |seq| Execution::new(id, spec, seq, 100));
}

fn sample() -> Partition {
    let mut p = Partition::new(1, 4);
    exec(&mut p, 5, 0, None);
    exec(&mut p, 3, 9, None);
    exec(&mut p, 9, 0, Some(500));
    p
}

#[test]
fn round_trip_rebuilds_the_same_index() {
    let p = sample();
    let mut w = Writer::default();
    p.encode(&mut w);
    let q = Partition::decode(&w.buf).unwrap();
    assert_eq!(q.index, p.index);
    assert_eq!(q.records, p.records);
    assert_eq!(
        q.index
            .head("l", &CapSet::parse_required(b"gpu").unwrap())
            .unwrap()
            .1,
        Uuid(3)
    );
    assert_eq!(q.index.delayed.len(), 1);
}

#[test]
fn the_index_after_transitions_is_the_rebuilt_one() {
    use crate::execution::requests::Acquire;
    use crate::partition::moves::{self, Env};
    let mut p = Partition::new(1, 4);
    for u in 1..=12 {
        exec(&mut p, u, (u % 3) as u16, (u % 4 == 0).then_some(900));
    }
    let env = Env {
        now: 200,
        retention_ms: 0,
        max_reclaims: 10,
    };
    for u in [1u128, 2, 3, 5, 6] {
        let (idx, e) = p.record_mut(Uuid(u)).unwrap();
        let a = Acquire {
            id: e.id,
            worker_id: b"w",
            worker_instance_id: b"i",
            lease_ms: 1000,
            lease_id: Uuid(100 + u),
            attempt_id: Uuid(200 + u),
            at: 200,
        };
        let g = moves::acquire(idx, e, &a).0.unwrap();
        let f = g.fence();
        match u {
            1 | 2 => assert!(moves::complete(idx, e, &f, None, &env).0.is_ok()),
            3 => assert!(moves::cancel(idx, e, Some(&f), None, &env).0.is_ok()),
            _ => {}
        }
    }
    p.remove(Uuid(2));
    p.remove(Uuid(7));
    p.remove(Uuid(8));
    let mut w = Writer::default();
    p.encode(&mut w);
    let q = Partition::decode(&w.buf).unwrap();
    assert_eq!(q.index, p.index);
    let counted: u64 = p.index.lanes.values().flat_map(|l| l.counts).sum();
    assert_eq!(counted, p.records.len() as u64);
    // The running counts MEMORY USAGE reads equal a recount.
    let bytes: usize = p.iter().map(Execution::mem_usage).sum();
    assert_eq!(p.index.record_bytes, bytes);
    let queued: usize = p
        .index
        .lanes
        .values()
        .flat_map(|l| l.queues.values())
        .map(|q| q.len())
        .sum();
    assert_eq!(p.index.queued, queued);
    p.remove(Uuid(1));
    for u in 3..=12 {
        p.remove(Uuid(u));
    }
    assert!(
        p.index.lanes.is_empty(),
        "a lane goes with its last execution"
    );
    assert_eq!(p.index.counts, [0; 12]);
}

#[test]
fn a_priority_change_moves_the_queue_entry() {
    use crate::partition::moves::{self, Env};
    use crate::partition::queue::{Head, QueueKey};
    let mut p = Partition::new(1, 4);
    for u in 1..=3 {
        exec(&mut p, u, 0, None);
    }
    let gpu = CapSet::parse_required(b"gpu").unwrap();
    let head = |p: &Partition| p.index.head("l", &gpu).map(|(_, u)| u);
    let env = Env {
        now: 300,
        retention_ms: 0,
        max_reclaims: 1,
    };
    let (idx, e) = p.record_mut(Uuid(3)).unwrap();
    let (r, moved) = moves::set_priority(idx, e, 5, &env);
    assert!(r.is_ok());
    assert_eq!(moved.head, Head::Now(Some(QueueKey::of(e))));
    assert_eq!(head(&p), Some(Uuid(3)));
    // Back below the others: the head is the oldest of them again.
    let first = p.get(Uuid(1)).map(QueueKey::of);
    let (idx, e) = p.record_mut(Uuid(3)).unwrap();
    let (_, moved) = moves::set_priority(idx, e, 0, &env);
    assert_eq!(moved.head, Head::Now(first));
    assert_eq!(head(&p), Some(Uuid(1)));
    let (idx, e) = p.record_mut(Uuid(2)).unwrap();
    let (_, moved) = moves::set_priority(idx, e, 0, &env);
    assert_eq!(moved.head, Head::Unchanged, "no change, no move");
    let mut w = Writer::default();
    p.encode(&mut w);
    assert_eq!(Partition::decode(&w.buf).unwrap().index, p.index);
}

#[test]
fn corrupt_input_is_an_error() {
    let p = sample();
    let mut w = Writer::default();
    p.encode(&mut w);
    for cut in 0..w.buf.len() {
        assert!(Partition::decode(&w.buf[..cut]).is_err());
    }
    for i in 0..w.buf.len() {
        let mut b = w.buf.clone();
        b[i] ^= 0x5a;
        let _ = Partition::decode(&b);
    }
}

#[test]
fn a_record_of_another_partition_or_twice_is_refused() {
    let mut p = sample();
    let mut w = Writer::default();
    p.get(Uuid(5)).unwrap().encode(&mut w);
    assert!(p.load_record(&w.buf).is_err());
    let mut other = Partition::new(2, 4);
    assert!(other.load_record(&w.buf).is_err());
    // A sequence the partition has not handed out yet would collide
    // with a later submit's.
    let mut fresh = Partition::new(1, 4);
    assert!(fresh.load_record(&w.buf).is_err());
    fresh.index.next_seq = 10;
    assert!(fresh.load_record(&w.buf).is_ok());
}

#[test]
fn remove_drops_index_entries() {
    let mut p = sample();
    p.remove(Uuid(9));
    assert!(p.index.delayed.is_empty());
    p.remove(Uuid(3));
    p.remove(Uuid(5));
    assert!(p.index.lanes.is_empty());
    assert_eq!(p.index.counts.iter().sum::<u64>(), 0);
}
