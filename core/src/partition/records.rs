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

use crate::base::codec::DecodeError;
use crate::base::ids::Uuid;
use crate::execution::record::Execution;
use crate::flows::Flow;
use crate::partition::index::PartitionIndex;
use crate::partition::moves::{self, Env, Moved, OnMove};

#[derive(Clone, Debug, Default)]
pub struct Partition {
    pub index: PartitionIndex,
    /// By uuid, hashed: every command on an execution finds it here, and a
    /// hash probe costs a fraction of a search through a tree of random
    /// 128-bit keys. The hasher's keys are random per partition, so
    /// client-chosen uuids cannot force collisions.
    pub(crate) records: HashMap<Uuid, Box<Execution>, RandomState>,
    /// Uuids by queue sequence, i.e. in admission order: the order of
    /// listings, saves and digests. Sequences only grow, so this is stored
    /// in reverse for the reason `index::Queue` is.
    pub(crate) order: BTreeMap<Reverse<u64>, Uuid>,
    /// Its flows, by id: the order of listings and saves.
    pub(crate) flows: BTreeMap<Uuid, Box<Flow>>,
}

/// Bytes a record costs beyond itself: its hash slot (with the table's
/// spare room) and its entry in the admission order.
const RECORD_OVERHEAD: usize = 40 + 48;

impl Partition {
    pub fn new(partition: u16, partitions: u16) -> Partition {
        Partition {
            index: PartitionIndex::new(partition, partitions),
            ..Partition::default()
        }
    }

    /// The uuid of the record admitted with sequence `seq`.
    pub fn at_seq(&self, seq: u64) -> Option<Uuid> {
        self.order.get(&Reverse(seq)).copied()
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
    ) -> Option<(Moved, &mut PartitionIndex, &mut Execution)> {
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
        let moved = moves::admit(&mut self.index, slot);
        Some((moved, &mut self.index, &mut **slot))
    }

    /// Removes a record; a flow member leaves its flow, and a flow left
    /// with no members goes with it.
    pub fn remove(&mut self, uuid: Uuid) -> Option<Box<Execution>> {
        let e = self.records.remove(&uuid)?;
        self.order.remove(&Reverse(e.queue_seq));
        moves::forget(&mut self.index, &e);
        if let Some(fid) = self.index.flows.member_of.remove(&uuid) {
            self.leave_flow(fid, uuid);
        }
        Some(e)
    }

    /// Removes a finished execution now, as retention would later (FF.DELETE
    /// and the timer): its flow's pending edges on it resolve first. None,
    /// and nothing changed, when it is not there or has not finished.
    pub fn remove_finished(
        &mut self,
        uuid: Uuid,
        env: &Env,
        on_move: &mut OnMove,
    ) -> Option<Box<Execution>> {
        if !self.get(uuid)?.is_terminal() {
            return None;
        }
        self.settle_before_removal(uuid, env, on_move);
        self.remove(uuid)
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
        // Records are written in admission order: any other order (or a
        // repeated sequence) is not a partition this code wrote.
        if self
            .order
            .keys()
            .next()
            .is_some_and(|Reverse(last)| e.queue_seq <= *last)
        {
            return Err(DecodeError("records out of admission order"));
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
        moves::admit(&mut self.index, e);
        Ok(e)
    }

    /// Approximate heap footprint, for MEMORY USAGE: O(1), from running
    /// counts.
    pub fn mem_usage(&self) -> usize {
        self.index.mem_usage()
            + self.index.record_bytes
            + self.records.len() * RECORD_OVERHEAD
            + self.index.flow_bytes
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
pub(crate) mod tests;
