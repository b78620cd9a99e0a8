//! An execution record's encoding (RDB, AOF's FF.LOADREC, digests).

use std::sync::Arc;

use crate::base::blob::Blob;
use crate::base::caps::CapSet;
use crate::base::codec::{DecodeError, Reader, Writer};
use crate::base::ids::{ExecId, Uuid};
use crate::base::state::{
    AttemptLifecycle, AttemptState, AttemptType, BlockingReason, EligibilityState, LifecyclePhase,
    OwnershipState, PublicState, TerminalOutcome,
};
use crate::execution::attempt::{Attempt, Lease, WorkerName};
use crate::execution::failure::Failure;
use crate::execution::record::Spec;
use crate::execution::record::{Execution, Extra, Progress};
use crate::execution::retry::{Backoff, RetryPolicy};
use crate::streams;
use crate::suspension::record::Waits;

/// The record's encoding version. Versions 1 to 3 were written only by
/// development builds before the first release (which wrote 4); they no
/// longer load. Decoding is strict, so every record that decodes encodes
/// back to the same bytes.
const ENCODING: u8 = 4;
/// Version 4 followed by the execution's waits (suspension, waitpoints,
/// signals): written only for records that have them, so a plain job's
/// record is unchanged.
const ENCODING_WAITS: u8 = 5;
/// Version 4 followed by a flags byte saying which of the waits (1), the
/// attempts' output streams (2) and the failure's classification (4)
/// follow, in that order: written only for records with output streams or
/// a classified failure, so every other record keeps its version 4 or 5
/// bytes. (Builds before the failure classification read flags 2 and 3
/// only, and refuse a record with 4.)
const ENCODING_TAIL: u8 = 6;
const TAIL_WAITS: u8 = 1;
const TAIL_OUTPUTS: u8 = 2;
const TAIL_FAILURE: u8 = 4;

fn put_str(w: &mut Writer, s: &[u8]) {
    w.bytes(s);
}

impl Execution {
    pub fn encode(&self, w: &mut Writer) {
        let waits = self.waits().filter(|x| !x.is_empty());
        let outputs = self.outputs();
        let failure = self.failure();
        let tail = if waits.is_some() { TAIL_WAITS } else { 0 }
            | if outputs.is_empty() { 0 } else { TAIL_OUTPUTS }
            | if failure.is_some() { TAIL_FAILURE } else { 0 };
        let version = if tail & (TAIL_OUTPUTS | TAIL_FAILURE) != 0 {
            ENCODING_TAIL
        } else if waits.is_some() {
            ENCODING_WAITS
        } else {
            ENCODING
        };
        w.u8(version);
        w.u16(self.id.partition);
        w.u128(self.id.uuid.0);
        put_str(w, self.lane.as_bytes());
        put_str(w, self.namespace());
        put_str(w, self.kind());
        w.u16(self.priority);
        w.bytes(&self.payload);
        put_str(w, self.caps.as_str().as_bytes());
        match self.retry() {
            None => w.u8(0),
            Some(r) => {
                w.u8(1);
                w.u32(r.max_retries);
                match r.backoff {
                    Backoff::Fixed { delay_ms } => {
                        w.u8(0);
                        w.u64(delay_ms);
                    }
                    Backoff::Exponential {
                        initial_ms,
                        max_ms,
                        multiplier_milli,
                        jitter,
                    } => {
                        w.u8(1);
                        w.u64(initial_ms);
                        w.u64(max_ms);
                        w.u32(multiplier_milli);
                        w.u8(u8::from(jitter));
                    }
                }
            }
        }
        w.u32(self.tags().len() as u32);
        for (k, v) in self.tags() {
            w.bytes(k);
            w.bytes(v);
        }
        w.opt_u64(self.delay_until());
        w.opt_u64(self.deadline_at());
        w.opt_bytes(self.idempotency());
        w.opt_bytes(self.result.as_deref());
        for b in [
            self.lifecycle as u8,
            self.ownership as u8,
            self.eligibility as u8,
            self.blocking as u8,
            self.terminal as u8,
            self.attempt_state as u8,
            self.public as u8,
        ] {
            w.u8(b);
        }
        w.u32(self.retry_count);
        w.u32(self.replay_count);
        w.u32(self.reclaim_count);
        w.u64(self.lease_epoch);
        match &self.lease {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                w.u128(l.lease_id.0);
                w.u64(l.acquired_at);
                w.u64(l.expires_at);
                w.u64(l.last_renewed_at);
                w.u64(l.renewal_deadline);
                w.opt_u64(l.expired_at);
                w.opt_u64(l.revoked_at);
            }
        }
        w.u32(self.attempts.len() as u32);
        for a in &self.attempts {
            w.u32(a.index);
            w.u128(a.attempt_id.0);
            w.u8(a.attempt_type as u8);
            w.u8(a.state as u8);
            w.u64(a.started_at);
            w.opt_u64(a.ended_at);
            w.u128(a.lease_id.0);
            w.u64(a.lease_epoch);
            w.bytes(a.worker.id());
            w.bytes(a.worker.instance());
        }
        w.u64(self.created_at);
        w.opt_u64(self.started_at);
        w.opt_u64(self.completed_at);
        w.u64(self.last_transition_at);
        w.u64(self.last_mutation_at);
        w.u64(self.queue_seq);
        w.opt_bytes(self.reason());
        match self.extra.as_ref().and_then(|x| x.progress.as_ref()) {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                w.u8(p.pct);
                w.bytes(&p.message);
                w.u64(p.at);
            }
        }
        w.opt_u64(self.extra.as_ref().and_then(|x| x.attempt_timeout_ms));
        if version == ENCODING_TAIL {
            w.u8(tail);
        }
        if let Some(x) = waits {
            x.encode(w);
        }
        if !outputs.is_empty() {
            streams::codec::encode(outputs, w);
        }
        if let Some(f) = failure {
            w.bytes(&f.category);
            w.u8(u8::from(f.non_retryable));
        }
    }

    pub fn decode(buf: &[u8]) -> Result<Execution, DecodeError> {
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if !matches!(version, ENCODING | ENCODING_WAITS | ENCODING_TAIL) {
            return Err(DecodeError("unknown execution encoding"));
        }
        let id = ExecId {
            partition: r.u16()?,
            uuid: Uuid(r.u128()?),
        };
        let lane = Arc::from(r.string()?);
        let namespace = r.bytes()?.into_boxed_slice();
        if namespace.is_empty() {
            // Written as `default` when none was given.
            return Err(DecodeError("empty namespace"));
        }
        let kind = r.bytes()?.into_boxed_slice();
        let priority = r.u16()?;
        let payload = r.bytes()?;
        let caps =
            CapSet::from_canonical(r.string()?).map_err(|_| DecodeError("bad capability set"))?;
        let retry = match r.u8()? {
            0 => None,
            1 => {
                let max_retries = r.u32()?;
                let backoff = match r.u8()? {
                    0 => Backoff::Fixed { delay_ms: r.u64()? },
                    1 => Backoff::Exponential {
                        initial_ms: r.u64()?,
                        max_ms: r.u64()?,
                        multiplier_milli: r.u32()?,
                        jitter: r.bool()?,
                    },
                    _ => return Err(DecodeError("unknown backoff kind")),
                };
                Some(RetryPolicy {
                    max_retries,
                    backoff,
                })
            }
            _ => return Err(DecodeError("bad retry flag")),
        };
        let n = r.count(8)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            tags.push((r.bytes()?.into_boxed_slice(), r.bytes()?.into_boxed_slice()));
        }
        let delay_until = r.opt_u64()?;
        let spec = Spec {
            lane,
            namespace,
            kind,
            priority,
            payload: payload.into(),
            caps,
            retry,
            tags,
            delay_until,
            deadline_at: r.opt_u64()?,
            idempotency: r.opt_bytes()?.map(Vec::into_boxed_slice),
            attempt_timeout_ms: None,
        };
        let result = r.opt_bytes()?.map(Blob::from);
        let lifecycle = r.enum_u8(LifecyclePhase::from_u8)?;
        let ownership = r.enum_u8(OwnershipState::from_u8)?;
        let eligibility = r.enum_u8(EligibilityState::from_u8)?;
        let blocking = r.enum_u8(BlockingReason::from_u8)?;
        let terminal = r.enum_u8(TerminalOutcome::from_u8)?;
        let attempt_state = r.enum_u8(AttemptState::from_u8)?;
        let public = r.enum_u8(PublicState::from_u8)?;
        let retry_count = r.u32()?;
        let replay_count = r.u32()?;
        let reclaim_count = r.u32()?;
        let lease_epoch = r.u64()?;
        let lease = match r.u8()? {
            0 => None,
            1 => Some(Lease {
                lease_id: Uuid(r.u128()?),
                acquired_at: r.u64()?,
                expires_at: r.u64()?,
                last_renewed_at: r.u64()?,
                renewal_deadline: r.u64()?,
                expired_at: r.opt_u64()?,
                revoked_at: r.opt_u64()?,
            }),
            _ => return Err(DecodeError("bad lease flag")),
        };
        let n = r.count(60)?;
        let mut attempts = Vec::with_capacity(n);
        for _ in 0..n {
            attempts.push(Attempt {
                index: r.u32()?,
                attempt_id: Uuid(r.u128()?),
                attempt_type: r.enum_u8(AttemptType::from_u8)?,
                state: r.enum_u8(AttemptLifecycle::from_u8)?,
                started_at: r.u64()?,
                ended_at: r.opt_u64()?,
                lease_id: Uuid(r.u128()?),
                lease_epoch: r.u64()?,
                worker: {
                    let id = r.bytes()?;
                    WorkerName::new(&id, &r.bytes()?)
                },
            });
        }
        let mut e = Execution::new(id, spec, 0, 0);
        // Stored state wins over what `new` derives from the spec.
        match (delay_until, e.extra.as_mut()) {
            (None, None) => {}
            (d, Some(x)) => x.delay_until = d,
            (d, None) => e.extra.get_or_insert_with(Box::default).delay_until = d,
        }
        if e.extra.as_deref().is_some_and(Extra::is_default) {
            e.extra = None;
        }
        let e = Execution {
            result,
            lifecycle,
            ownership,
            eligibility,
            blocking,
            terminal,
            attempt_state,
            public,
            retry_count,
            replay_count,
            reclaim_count,
            lease_epoch,
            lease,
            attempts,
            created_at: r.u64()?,
            started_at: r.opt_u64()?,
            completed_at: r.opt_u64()?,
            last_transition_at: r.u64()?,
            last_mutation_at: r.u64()?,
            queue_seq: r.u64()?,
            ..e
        };
        let mut e = e;
        e.set_reason(r.opt_bytes()?.map(Vec::into_boxed_slice));
        if r.bool()? {
            let p = Progress {
                pct: r.u8()?,
                message: r.bytes()?.into_boxed_slice(),
                at: r.u64()?,
            };
            e.extra.get_or_insert_with(Box::default).progress = Some(p);
        }
        if let Some(t) = r.opt_u64()? {
            e.extra.get_or_insert_with(Box::default).attempt_timeout_ms = Some(t);
        }
        let tail = match version {
            ENCODING_WAITS => TAIL_WAITS,
            ENCODING_TAIL => match r.u8()? {
                f if f & !(TAIL_WAITS | TAIL_OUTPUTS | TAIL_FAILURE) == 0
                    && f & (TAIL_OUTPUTS | TAIL_FAILURE) != 0 =>
                {
                    f
                }
                _ => return Err(DecodeError("bad record tail flags")),
            },
            _ => 0,
        };
        if tail & TAIL_WAITS != 0 {
            let waits = Waits::decode(&mut r)?;
            e.extra.get_or_insert_with(Box::default).waits = Some(Box::new(waits));
        }
        if tail & TAIL_OUTPUTS != 0 {
            let outputs = streams::codec::decode(&mut r)?;
            if outputs.is_empty() {
                return Err(DecodeError("an output tail with no outputs"));
            }
            e.extra.get_or_insert_with(Box::default).outputs = outputs;
        }
        if tail & TAIL_FAILURE != 0 {
            let failure = Failure {
                category: r.bytes()?.into_boxed_slice(),
                non_retryable: r.bool()?,
            };
            e.extra.get_or_insert_with(Box::default).failure = Some(failure);
        }
        r.finish()?;
        Ok(e)
    }
}
