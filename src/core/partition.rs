//! A partition: its executions and the index over them, in one value.
//!
//! Keeping the records inside the partition makes a partition the unit of
//! consistency: one key, one slot, so a command, a save, a dump/restore or
//! a slot migration always sees records and index together, and the server
//! does no keyspace work per execution. The index is a function of the
//! records, so only the records (and the queue sequence) are persisted; the
//! index is rebuilt when they load.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::core::codec::{DecodeError, Reader, Writer};
use crate::core::engine::{self, Moved};
use crate::core::execution::Execution;
use crate::core::ids::Uuid;
use crate::core::index::PartitionIndex;
use crate::core::state::PublicState;

#[derive(Clone, Debug, Default)]
pub struct Partition {
    pub index: PartitionIndex,
    /// In uuid order, so saves, digests and listings are deterministic.
    pub records: BTreeMap<Uuid, Box<Execution>>,
}

/// The header's encoding version (records carry their own).
const ENCODING: u8 = 1;

impl Partition {
    pub fn new(partition: u16, partitions: u16) -> Partition {
        Partition {
            index: PartitionIndex::new(partition, partitions),
            records: BTreeMap::new(),
        }
    }

    pub fn get(&self, uuid: Uuid) -> Option<&Execution> {
        self.records.get(&uuid).map(|b| &**b)
    }

    /// A record with the index, borrowed together for a transition.
    pub fn record_mut(&mut self, uuid: Uuid) -> Option<(&mut PartitionIndex, &mut Execution)> {
        let e = self.records.get_mut(&uuid)?;
        Some((&mut self.index, &mut **e))
    }

    /// Adds an execution under a new id, made with the partition's next
    /// queue sequence; `None` (and nothing taken) when the id exists. One
    /// search of the records serves both the check and the insert.
    pub fn admit_new(
        &mut self,
        uuid: Uuid,
        make: impl FnOnce(u64) -> Execution,
    ) -> Option<(Moved, &PartitionIndex, &mut Execution)> {
        let Entry::Vacant(v) = self.records.entry(uuid) else {
            return None;
        };
        let e = make(self.index.take_seq());
        debug_assert_eq!(e.id.uuid, uuid);
        let slot = v.insert(Box::new(e));
        let moved = engine::admit(&mut self.index, slot);
        Some((moved, &self.index, &mut **slot))
    }

    /// Removes a record and its index entries.
    pub fn remove(&mut self, uuid: Uuid) -> Option<Box<Execution>> {
        let e = self.records.remove(&uuid)?;
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

    /// Adds one persisted record; it must belong here and be new.
    pub fn load_record(&mut self, buf: &[u8]) -> Result<(), DecodeError> {
        let e = Execution::decode(buf)?;
        if e.id.partition != self.index.partition {
            return Err(DecodeError("record belongs to another partition"));
        }
        let Entry::Vacant(v) = self.records.entry(e.id.uuid) else {
            return Err(DecodeError("record appears twice"));
        };
        engine::admit(&mut self.index, v.insert(Box::new(e)));
        Ok(())
    }

    /// The whole partition in one buffer: header, then each record
    /// length-prefixed (digests and tests; RDB saves records one by one).
    pub fn encode(&self, w: &mut Writer) {
        self.encode_header(w);
        let mut rec = Writer::default();
        for e in self.records.values() {
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

    /// One page of a cursor listing, in uuid order: the matching ids after
    /// `cursor`, and where to continue (None when the listing is done).
    /// Like SCAN it reads a bounded window (`count`, four times that with a
    /// filter), so a page may hold fewer than `count` ids.
    pub fn list(
        &self,
        state: Option<PublicState>,
        lane: Option<&str>,
        cursor: Option<Uuid>,
        count: usize,
    ) -> (Vec<Uuid>, Option<Uuid>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let filtered = state.is_some() || lane.is_some();
        let window = if filtered {
            count.saturating_mul(4)
        } else {
            count
        };
        let from = cursor.map_or(Unbounded, Excluded);
        let mut ids = Vec::new();
        let mut last = None;
        for (seen, (u, e)) in self.records.range((from, Unbounded)).enumerate() {
            if seen == window || ids.len() == count {
                return (ids, last);
            }
            last = Some(*u);
            if state.is_none_or(|s| e.public == s) && lane.is_none_or(|l| *e.lane == *l) {
                ids.push(*u);
            }
        }
        (ids, None)
    }

    /// Approximate heap footprint, for MEMORY USAGE.
    pub fn mem_usage(&self) -> usize {
        self.index.mem_usage()
            + self
                .records
                .values()
                .map(|e| e.mem_usage() + 40)
                .sum::<usize>()
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
    }

    #[test]
    fn listing_pages_through_every_record_once() {
        let mut p = Partition::new(1, 4);
        for u in 1..=25 {
            exec(&mut p, u, 0, (u % 5 == 0).then_some(900));
        }
        for (state, want) in [(None, 25), (Some(PublicState::Delayed), 5)] {
            let (mut all, mut cursor) = (Vec::new(), None);
            loop {
                let (ids, next) = p.list(state, Some("l"), cursor, 3);
                all.extend(ids);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(all.len(), want);
            assert!(all.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(p.list(None, Some("other"), None, 10).0.is_empty());
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
