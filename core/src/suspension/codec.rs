//! The encoding of an execution's waits (inside its record, version 5).
//! Strict like the record's: what decodes encodes back to the same bytes.

use crate::base::codec::{DecodeError, Reader, Writer};
use crate::base::ids::Uuid;
use crate::base::limits::{SIGNALS_MAX, WAITPOINTS_MAX};
use crate::suspension::condition::{Condition, Effect};
use crate::suspension::record::{
    CloseReason, Signal, Suspension, TimeoutBehavior, Waitpoint, WaitpointState, Waits,
};

fn put_closed(w: &mut Writer, c: Option<(u64, CloseReason)>) {
    match c {
        None => w.u8(0),
        Some((at, r)) => {
            w.u8(1);
            w.u64(at);
            w.u8(r as u8);
        }
    }
}

fn get_closed(r: &mut Reader) -> Result<Option<(u64, CloseReason)>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some((r.u64()?, r.enum_u8(CloseReason::from_u8)?))),
        _ => Err(DecodeError("bad close flag")),
    }
}

impl Waits {
    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.waitpoints.len() as u32);
        for p in &self.waitpoints {
            w.u128(p.id.0);
            w.bytes(&p.key);
            w.u8(p.state as u8);
            w.u32(p.attempt_index);
            w.u64(p.created_at);
            w.opt_u64(p.expires_at);
            w.opt_u64(p.activated_at);
            put_closed(w, p.closed);
        }
        match &self.suspension {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.u128(s.id.0);
                w.u32(s.attempt_index);
                w.u128(s.lease_id.0);
                w.u64(s.lease_epoch);
                w.u128(s.attempt_id.0);
                w.opt_bytes(s.idempotency.as_deref());
                w.bytes(&s.reason);
                w.u64(s.created_at);
                w.opt_u64(s.timeout_at);
                w.u8(s.behavior as u8);
                w.u64(s.resume_delay_ms);
                s.condition.encode(w);
                w.u32(s.waitpoints.len() as u32);
                for id in &s.waitpoints {
                    w.u128(id.0);
                }
                put_closed(w, s.closed);
                match s.closer {
                    None => w.u8(0),
                    Some(c) => {
                        w.u8(1);
                        w.u128(c.0);
                    }
                }
            }
        }
        w.u32(self.signals.len() as u32);
        for g in &self.signals {
            w.u128(g.id.0);
            w.u128(g.waitpoint.0);
            for b in [
                &g.name,
                &g.category,
                &g.source_type,
                &g.source_identity,
                &g.correlation,
            ] {
                w.bytes(b);
            }
            w.opt_bytes(g.payload.as_deref());
            w.opt_bytes(g.idempotency.as_deref());
            w.u64(g.dedup_until);
            w.u64(g.accepted_at);
            w.u8(g.effect as u8);
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Waits, DecodeError> {
        let n = r.count(40)?;
        if n > 2 * WAITPOINTS_MAX {
            return Err(DecodeError("too many waitpoints"));
        }
        let mut waitpoints = Vec::with_capacity(n);
        for _ in 0..n {
            let p = Waitpoint {
                id: Uuid(r.u128()?),
                key: r.bytes()?.into_boxed_slice(),
                state: r.enum_u8(WaitpointState::from_u8)?,
                attempt_index: r.u32()?,
                created_at: r.u64()?,
                expires_at: r.opt_u64()?,
                activated_at: r.opt_u64()?,
                closed: get_closed(r)?,
            };
            if (p.state == WaitpointState::Closed) != p.closed.is_some() {
                return Err(DecodeError("waitpoint state and close disagree"));
            }
            waitpoints.push(p);
        }
        let suspension = match r.u8()? {
            0 => None,
            1 => {
                let id = Uuid(r.u128()?);
                let attempt_index = r.u32()?;
                let lease_id = Uuid(r.u128()?);
                let lease_epoch = r.u64()?;
                let attempt_id = Uuid(r.u128()?);
                let idempotency = r.opt_bytes()?.map(Vec::into_boxed_slice);
                let reason = r.bytes()?.into_boxed_slice();
                let created_at = r.u64()?;
                let timeout_at = r.opt_u64()?;
                let behavior = r.enum_u8(TimeoutBehavior::from_u8)?;
                let resume_delay_ms = r.u64()?;
                let condition = Condition::decode(r)?;
                let k = r.count(16)?;
                if k == 0 || k > WAITPOINTS_MAX {
                    return Err(DecodeError("bad suspension waitpoints"));
                }
                let mut ids = Vec::with_capacity(k);
                for _ in 0..k {
                    let id = Uuid(r.u128()?);
                    if !waitpoints.iter().any(|p: &Waitpoint| p.id == id) {
                        return Err(DecodeError("suspension names an unknown waitpoint"));
                    }
                    ids.push(id);
                }
                let closed = get_closed(r)?;
                let closer = match r.u8()? {
                    0 => None,
                    1 => Some(Uuid(r.u128()?)),
                    _ => return Err(DecodeError("bad closer flag")),
                };
                Some(Suspension {
                    id,
                    attempt_index,
                    lease_id,
                    lease_epoch,
                    attempt_id,
                    idempotency,
                    reason,
                    created_at,
                    timeout_at,
                    behavior,
                    resume_delay_ms,
                    condition,
                    waitpoints: ids,
                    closed,
                    closer,
                })
            }
            _ => return Err(DecodeError("bad suspension flag")),
        };
        let n = r.count(60)?;
        if n > SIGNALS_MAX {
            return Err(DecodeError("too many signals"));
        }
        let mut signals = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Uuid(r.u128()?);
            let waitpoint = Uuid(r.u128()?);
            if !waitpoints.iter().any(|p| p.id == waitpoint) {
                return Err(DecodeError("signal for an unknown waitpoint"));
            }
            let mut b = || r.bytes().map(Vec::into_boxed_slice);
            let (name, category, source_type, source_identity, correlation) =
                (b()?, b()?, b()?, b()?, b()?);
            signals.push(Signal {
                id,
                waitpoint,
                name,
                category,
                source_type,
                source_identity,
                correlation,
                payload: r.opt_bytes()?.map(Vec::into_boxed_slice),
                idempotency: r.opt_bytes()?.map(Vec::into_boxed_slice),
                dedup_until: r.u64()?,
                accepted_at: r.u64()?,
                effect: r.enum_u8(Effect::from_u8)?,
            });
        }
        let w = Waits {
            waitpoints,
            suspension,
            signals,
        };
        if w.is_empty() {
            return Err(DecodeError("empty waits"));
        }
        Ok(w)
    }
}
