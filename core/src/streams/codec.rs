//! The encoding of an execution's attempt streams (inside its record,
//! version 6). Strict like the record's: what decodes encodes back to the
//! same bytes.

use crate::base::codec::{DecodeError, Reader, Writer};
use crate::streams::entry::EntryId;
use crate::streams::output::{CloseReason, Output, Summary};

/// Writes the outputs (at most one per attempt).
pub fn encode(outputs: &[Output], w: &mut Writer) {
    w.u32(outputs.len() as u32);
    for o in outputs {
        w.u32(o.attempt);
        w.u64(o.frames);
        w.u64(o.kept_frames);
        w.u64(o.kept_bytes);
        w.u8(u8::from(o.durable));
        match &o.summary {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.bytes(s.doc.as_bytes());
                w.u64(s.version);
                w.u64(s.first_at);
                w.u64(s.last_at);
            }
        }
        match o.closed {
            None => w.u8(0),
            Some((at, r)) => {
                w.u8(1);
                w.u64(at);
                w.u8(r as u8);
            }
        }
        match o.last {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                w.u64(l.ms);
                w.u64(l.seq);
            }
        }
    }
}

pub fn decode(r: &mut Reader) -> Result<Vec<Output>, DecodeError> {
    // An output takes at least 32 bytes.
    let n = r.count(32)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut o = Output::new(r.u32()?);
        o.frames = r.u64()?;
        o.kept_frames = r.u64()?;
        o.kept_bytes = r.u64()?;
        o.durable = r.bool()?;
        if r.bool()? {
            let doc = String::from_utf8(r.bytes()?)
                .map_err(|_| DecodeError("summary document is not UTF-8"))?;
            o.summary = Some(Box::new(Summary {
                doc: doc.into_boxed_str(),
                version: r.u64()?,
                first_at: r.u64()?,
                last_at: r.u64()?,
            }));
        }
        if r.bool()? {
            o.closed = Some((r.u64()?, r.enum_u8(CloseReason::from_u8)?));
        }
        if r.bool()? {
            o.last = Some(EntryId {
                ms: r.u64()?,
                seq: r.u64()?,
            });
        }
        if out.last().is_some_and(|p: &Output| p.attempt >= o.attempt) {
            return Err(DecodeError("attempt outputs out of order"));
        }
        out.push(o);
    }
    Ok(out)
}
