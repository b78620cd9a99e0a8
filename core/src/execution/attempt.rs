//! An execution's attempts and its lease: who holds it (worker and
//! instance, kept inline when short), until when, and the fence a holder's
//! calls carry.

use crate::base::ids::Uuid;
use crate::base::state::{AttemptLifecycle, AttemptType};

/// The current lease of an active execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub lease_id: Uuid,
    pub acquired_at: u64,
    pub expires_at: u64,
    pub last_renewed_at: u64,
    pub renewal_deadline: u64,
    pub expired_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub index: u32,
    pub attempt_id: Uuid,
    pub attempt_type: AttemptType,
    pub state: AttemptLifecycle,
    pub started_at: u64,
    pub ended_at: Option<u64>,
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub worker: WorkerName,
}

/// A worker's id and instance id, together. Kept inline when they are
/// short (most are), so a claim allocates nothing for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerName {
    Inline {
        /// Where the instance id starts, and the total length.
        split: u8,
        len: u8,
        buf: [u8; WorkerName::INLINE],
    },
    Heap {
        split: u32,
        bytes: Box<[u8]>,
    },
}

impl WorkerName {
    const INLINE: usize = 29;

    pub fn new(id: &[u8], instance: &[u8]) -> WorkerName {
        let total = id.len().saturating_add(instance.len());
        if let (true, Ok(split), Ok(len)) = (
            total <= Self::INLINE,
            u8::try_from(id.len()),
            u8::try_from(total),
        ) {
            let mut buf = [0; Self::INLINE];
            for (d, s) in buf.iter_mut().zip(id.iter().chain(instance)) {
                *d = *s;
            }
            return WorkerName::Inline { split, len, buf };
        }
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(instance);
        WorkerName::Heap {
            // Worker names are limited far below 4 GiB when parsed.
            split: u32::try_from(id.len()).unwrap_or(u32::MAX),
            bytes: bytes.into_boxed_slice(),
        }
    }

    fn parts(&self) -> (&[u8], usize) {
        match self {
            WorkerName::Inline { split, len, buf } => (
                buf.get(..usize::from(*len)).unwrap_or_default(),
                usize::from(*split),
            ),
            WorkerName::Heap { split, bytes } => (bytes, *split as usize),
        }
    }

    pub fn id(&self) -> &[u8] {
        let (b, split) = self.parts();
        b.get(..split).unwrap_or_default()
    }

    pub fn instance(&self) -> &[u8] {
        let (b, split) = self.parts();
        b.get(split..).unwrap_or_default()
    }

    /// Heap bytes beyond the struct, for MEMORY USAGE.
    pub fn heap_len(&self) -> usize {
        match self {
            WorkerName::Inline { .. } => 0,
            WorkerName::Heap { bytes, .. } => bytes.len(),
        }
    }
}

/// The lease fence every holder-only call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub attempt_id: Uuid,
}

/// What a successful claim hands the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub attempt_index: u32,
    pub attempt_id: Uuid,
    pub attempt_type: AttemptType,
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub lease_expires_at: u64,
    /// The claim resumed an interrupted attempt (after a suspension or a
    /// delay) instead of starting one.
    pub resumed: bool,
}

impl Grant {
    /// The fence the holder's calls carry.
    pub fn fence(&self) -> Fence {
        Fence {
            lease_id: self.lease_id,
            lease_epoch: self.lease_epoch,
            attempt_id: self.attempt_id,
        }
    }
}
