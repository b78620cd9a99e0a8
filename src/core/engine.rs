//! Transitions that change an execution and its partition index together,
//! so the two can never disagree: the index's queues, due-time sets and
//! per-state counts move in the same step as the record.

use crate::core::execution::{ClaimError, Execution, Fence, Grant, LeaseError};
use crate::core::ids::Uuid;
use crate::core::index::PartitionIndex;
use crate::core::requests::Acquire;

/// Places a freshly created execution in the index.
pub fn admit(idx: &mut PartitionIndex, e: &Execution) {
    if e.is_eligible() {
        idx.enqueue(e);
    } else if let Some(d) = e.delay_until() {
        idx.delayed.insert((d, e.id.uuid));
    }
    if let Some(d) = e.deadline_at() {
        idx.deadlines.insert((d, e.id.uuid));
    }
    idx.count_state(None, Some(e.public));
}

fn lease_expiry(e: &Execution) -> Option<(u64, Uuid)> {
    e.lease.as_ref().map(|l| (l.expires_at, e.id.uuid))
}

/// Claims an eligible execution for a worker, as decided by `a`.
pub fn acquire(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    a: &Acquire,
) -> Result<Grant, ClaimError> {
    let before = e.public;
    let g = e.claim(
        a.worker_id,
        a.worker_instance_id,
        a.lease_ms,
        a.lease_id,
        a.attempt_id,
        a.at,
    )?;
    idx.dequeue(e);
    if let Some(k) = lease_expiry(e) {
        idx.lease_expiry.insert(k);
    }
    idx.count_state(Some(before), Some(e.public));
    Ok(g)
}

pub fn renew(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    lease_ms: u64,
    now: u64,
) -> Result<u64, (LeaseError, bool)> {
    let old = lease_expiry(e);
    let r = e.renew(fence, lease_ms, now);
    if r.is_ok() {
        if let Some(k) = old {
            idx.lease_expiry.remove(&k);
        }
        if let Some(k) = lease_expiry(e) {
            idx.lease_expiry.insert(k);
        }
    }
    r
}

pub fn complete(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    fence: &Fence,
    result: Option<Box<[u8]>>,
    now: u64,
) -> Result<(), (LeaseError, bool)> {
    let before = e.public;
    let old = lease_expiry(e);
    e.complete(fence, result, now)?;
    if let Some(k) = old {
        idx.lease_expiry.remove(&k);
    }
    if let Some(d) = e.deadline_at() {
        idx.deadlines.remove(&(d, e.id.uuid));
    }
    idx.count_state(Some(before), Some(e.public));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::caps::CapSet;
    use crate::core::execution::Spec;
    use crate::core::ids::ExecId;
    use crate::core::state::PublicState;

    #[test]
    fn index_follows_the_record() {
        let mut idx = PartitionIndex::new(0, 1);
        let spec = Spec {
            lane: "l".into(),
            deadline_at: Some(99),
            ..Spec::default()
        };
        let seq = idx.take_seq();
        let mut e = Execution::new(
            ExecId {
                partition: 0,
                uuid: Uuid(1),
            },
            spec,
            seq,
            10,
        );
        admit(&mut idx, &e);
        assert_eq!(idx.eligible_len(), 1);
        assert_eq!(idx.counts[PublicState::Waiting as usize], 1);
        let a = Acquire {
            id: e.id,
            worker_id: b"w",
            worker_instance_id: b"i",
            lease_ms: 100,
            lease_id: Uuid(2),
            attempt_id: Uuid(3),
            at: 20,
        };
        let g = acquire(&mut idx, &mut e, &a).unwrap();
        assert_eq!(idx.eligible_len(), 0);
        assert!(idx.head("l", &CapSet::empty()).is_none());
        assert!(idx.lease_expiry.contains(&(120, Uuid(1))));
        let f = Fence {
            lease_id: g.lease_id,
            lease_epoch: g.lease_epoch,
            attempt_id: g.attempt_id,
        };
        assert_eq!(renew(&mut idx, &mut e, &f, 100, 50), Ok(150));
        assert!(idx.lease_expiry.contains(&(150, Uuid(1))) && idx.lease_expiry.len() == 1);
        complete(&mut idx, &mut e, &f, None, 60).unwrap();
        assert!(idx.lease_expiry.is_empty() && idx.deadlines.is_empty());
        assert_eq!(idx.counts[PublicState::Completed as usize], 1);
        assert_eq!(idx.counts[PublicState::Active as usize], 0);
    }
}
