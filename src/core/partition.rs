//! A partition: its executions and the index over them, in one value.
//!
//! Keeping the records inside the partition makes a partition the unit of
//! consistency: one key, one slot, so a command, a save, a dump/restore or
//! a slot migration always sees records and index together, and the server
//! does no keyspace work per execution. The index is a function of the
//! records, so only the records (and the queue sequence) are persisted; the
//! index is rebuilt when they load.

use std::cmp::Reverse;
use std::collections::{btree_map, hash_map, BTreeMap, HashMap};

use ahash::RandomState;

use crate::core::codec::{DecodeError, Reader, Writer};
use crate::core::engine::{self, Moved};
use crate::core::execution::Execution;
use crate::core::ids::Uuid;
use crate::core::index::PartitionIndex;
use crate::core::state::PublicState;

#[derive(Clone, Debug, Default)]
pub struct Partition {
    pub index: PartitionIndex,
    /// By uuid, hashed: every command on an execution finds it here, and a
    /// hash probe costs a fraction of a search through a tree of random
    /// 128-bit keys. The hasher's keys are random per partition, so
    /// client-chosen uuids cannot force collisions.
    records: HashMap<Uuid, Box<Execution>, RandomState>,
    /// Uuids by queue sequence, i.e. in admission order: the order of
    /// listings, saves and digests. Sequences only grow, so this is stored
    /// in reverse for the reason `index::Queue` is.
    order: BTreeMap<Reverse<u64>, Uuid>,
}

/// Bytes a record costs beyond itself: its hash slot (with the table's
/// spare room) and its entry in the admission order.
const RECORD_OVERHEAD: usize = 40 + 48;

/// The header's encoding version (records carry their own).
const ENCODING: u8 = 1;

impl Partition {
    pub fn new(partition: u16, partitions: u16) -> Partition {
        Partition {
            index: PartitionIndex::new(partition, partitions),
            ..Partition::default()
        }
    }

    pub fn get(&self, uuid: Uuid) -> Option<&Execution> {
        self.records.get(&uuid).map(|b| &**b)
    }

    pub fn record_mut(&mut self, uuid: Uuid) -> Option<(&mut PartitionIndex, &mut Execution)> {
        let e = self.records.get_mut(&uuid)?;
        Some((&mut self.index, &mut **e))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record, in admission order.
    pub fn iter(&self) -> impl Iterator<Item = &Execution> + '_ {
        self.order.values().rev().filter_map(|u| self.get(*u))
    }

    /// Creates the record `make` builds (given its queue sequence) and
    /// places it in the index; None when the uuid is taken. One probe of
    /// the records serves both the check and the insert.
    pub fn admit_new(
        &mut self,
        uuid: Uuid,
        make: impl FnOnce(u64) -> Execution,
    ) -> Option<(Moved, &PartitionIndex, &mut Execution)> {
        let hash_map::Entry::Vacant(v) = self.records.entry(uuid) else {
            return None;
        };
        // Sequences are unique (loading checks each is below `next_seq`),
        // so the slot is free; refuse rather than overwrite if it is not.
        let seq = self.index.next_seq;
        let btree_map::Entry::Vacant(o) = self.order.entry(Reverse(seq)) else {
            return None;
        };
        self.index.take_seq();
        o.insert(uuid);
        let e = make(seq);
        debug_assert_eq!((e.id.uuid, e.queue_seq), (uuid, seq));
        let slot = v.insert(Box::new(e));
        let moved = engine::admit(&mut self.index, slot);
        Some((moved, &self.index, &mut **slot))
    }

    pub fn remove(&mut self, uuid: Uuid) -> Option<Box<Execution>> {
        let e = self.records.remove(&uuid)?;
        self.order.remove(&Reverse(e.queue_seq));
        engine::forget(&mut self.index, &e);
        Some(e)
    }

    /// What is persisted besides the records.
    pub fn encode_header(&self, w: &mut Writer) {
        w.u8(ENCODING);
        w.u16(self.index.partition);
        w.u16(self.index.partitions);
        w.u64(self.index.next_seq);
        w.u64(self.records.len() as u64);
    }

    /// An empty partition from its header, and how many records follow.
    pub fn decode_header(buf: &[u8]) -> Result<(Partition, u64), DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8()? != ENCODING {
            return Err(DecodeError("unknown partition encoding"));
        }
        let (partition, partitions) = (r.u16()?, r.u16()?);
        if partition >= partitions {
            return Err(DecodeError("partition outside its partition count"));
        }
        let mut p = Partition::new(partition, partitions);
        p.index.next_seq = r.u64()?;
        let count = r.u64()?;
        r.finish()?;
        Ok((p, count))
    }

    /// Adds one persisted record (after the header) and indexes it;
    /// returns the record.
    pub fn load_record(&mut self, buf: &[u8]) -> Result<&Execution, DecodeError> {
        let mut e = Execution::decode(buf)?;
        if e.id.partition != self.index.partition {
            return Err(DecodeError("record belongs to another partition"));
        }
        if e.queue_seq >= self.index.next_seq {
            return Err(DecodeError("record sequence beyond the partition's"));
        }
        let hash_map::Entry::Vacant(v) = self.records.entry(e.id.uuid) else {
            return Err(DecodeError("record appears twice"));
        };
        let btree_map::Entry::Vacant(o) = self.order.entry(Reverse(e.queue_seq)) else {
            return Err(DecodeError("two records share a sequence"));
        };
        o.insert(e.id.uuid);
        // Share the lane's name with its other loaded executions.
        if let Some((name, _)) = self.index.lanes.get_key_value(&*e.lane) {
            e.lane = name.clone();
        }
        let e = v.insert(Box::new(e));
        engine::admit(&mut self.index, e);
        Ok(e)
    }

    /// The header then every record in admission order, each
    /// length-prefixed (digests and tests; RDB saves records one by one).
    pub fn encode(&self, w: &mut Writer) {
        self.encode_header(w);
        let mut rec = Writer::default();
        for e in self.iter() {
            rec.buf.clear();
            e.encode(&mut rec);
            w.bytes(&rec.buf);
        }
    }

    pub fn decode(buf: &[u8]) -> Result<Partition, DecodeError> {
        const HEADER: usize = 1 + 2 + 2 + 8 + 8;
        let head = buf.get(..HEADER).ok_or(DecodeError("short partition"))?;
        let (mut p, count) = Partition::decode_header(head)?;
        let mut r = Reader::new(buf.get(HEADER..).unwrap_or_default());
        for _ in 0..count {
            p.load_record(&r.bytes()?)?;
        }
        r.finish()?;
        Ok(p)
    }

    /// One page of a listing in admission order: up to `count` matching
    /// uuids from the sequence `from` on, reading at most 4×`count`
    /// records when filtered, and where the next page starts (None at the
    /// end).
    pub fn list(
        &self,
        state: Option<PublicState>,
        lane: Option<&str>,
        from: u64,
        count: usize,
    ) -> (Vec<Uuid>, Option<u64>) {
        let filtered = state.is_some() || lane.is_some();
        let window = if filtered {
            count.saturating_mul(4)
        } else {
            count
        };
        let mut ids = Vec::new();
        for (seen, (seq, u)) in self.order.range(..=Reverse(from)).rev().enumerate() {
            if seen == window || ids.len() == count {
                return (ids, Some(seq.0));
            }
            let Some(e) = self.get(*u) else { continue };
            if state.is_none_or(|s| e.public == s) && lane.is_none_or(|l| *e.lane == *l) {
                ids.push(*u);
            }
        }
        (ids, None)
    }

    /// Approximate heap footprint, for MEMORY USAGE: O(1), from running
    /// counts.
    pub fn mem_usage(&self) -> usize {
        self.index.mem_usage() + self.index.record_bytes + self.records.len() * RECORD_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::caps::CapSet;
    use crate::core::execution::Spec;
    use crate::core::ids::ExecId;

    fn exec(p: &mut Partition, uuid: u128, prio: u16, delay: Option<u64>) {
        let spec = Spec {
            lane: "l".into(),
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
        use crate::core::engine::{self, Env};
        use crate::core::execution::Fence;
        use crate::core::requests::Acquire;
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
            let g = engine::acquire(idx, e, &a).0.unwrap();
            let f = Fence {
                lease_id: g.lease_id,
                lease_epoch: g.lease_epoch,
                attempt_id: g.attempt_id,
            };
            match u {
                1 | 2 => assert!(engine::complete(idx, e, &f, None, &env).0.is_ok()),
                3 => assert!(engine::cancel(idx, e, Some(&f), None, &env).0.is_ok()),
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
        use crate::core::engine::{self, Env};
        use crate::core::index::{Head, QueueKey};
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
        let (r, moved) = engine::set_priority(idx, e, 5, &env);
        assert!(r.is_ok());
        assert_eq!(moved.head, Head::Now(Some(QueueKey::of(e))));
        assert_eq!(head(&p), Some(Uuid(3)));
        // Back below the others: the head is the oldest of them again.
        let first = p.get(Uuid(1)).map(QueueKey::of);
        let (idx, e) = p.record_mut(Uuid(3)).unwrap();
        let (_, moved) = engine::set_priority(idx, e, 0, &env);
        assert_eq!(moved.head, Head::Now(first));
        assert_eq!(head(&p), Some(Uuid(1)));
        let (idx, e) = p.record_mut(Uuid(2)).unwrap();
        let (_, moved) = engine::set_priority(idx, e, 0, &env);
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
    fn listing_pages_through_every_record_once() {
        let mut p = Partition::new(1, 4);
        for u in 1..=25 {
            exec(&mut p, u, 0, (u % 5 == 0).then_some(900));
        }
        for (state, want) in [(None, 25), (Some(PublicState::Delayed), 5)] {
            let (mut all, mut cursor) = (Vec::new(), 0);
            loop {
                let (ids, next) = p.list(state, Some("l"), cursor, 3);
                all.extend(ids);
                match next {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
            assert_eq!(all.len(), want);
            assert!(all.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(p.list(None, Some("other"), 0, 10).0.is_empty());
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
}
