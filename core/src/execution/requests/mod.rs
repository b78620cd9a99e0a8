//! The execution domain's command requests, parsed. Parsing is pure and
//! total: a request either parses into a value the core can apply, or
//! yields the error reply. Every parser reads its options through the one
//! options loop (`base::args::options`). FF.SUBMIT's request is in
//! `submit`, the holder's fenced calls in `holder`, an operator's in
//! `operator`, a decided claim (FF.ACQUIRE) in `acquire`; what they share
//! is here.

mod acquire;
mod frames;
mod holder;
mod operator;
mod submit;
mod suspension;

pub use acquire::*;
pub use frames::*;
pub use holder::*;
pub use operator::*;
pub use submit::*;
pub use suspension::*;

use crate::base::args::{parse_exec_id, parse_u64, parse_uuid, Args};
use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::ExecId;
use crate::base::limits::{Limits, LEASE_MAX_MS, TAG_VALUE_MAX_BYTES};
use crate::execution::attempt::Fence;

/// A lease length: 1 ms to a week.
pub fn parse_lease(arg: &[u8]) -> CmdResult<u64> {
    let v = parse_u64(arg, "LEASE", LEASE_MAX_MS)?;
    if v == 0 {
        return Err(CmdError::syntax("LEASE must be at least 1 ms"));
    }
    Ok(v)
}

pub fn parse_fence(a: &mut Args) -> CmdResult<Fence> {
    let lease_id = parse_uuid(a.next("lease id")?, "lease id")?;
    let lease_epoch = a.next_u64("lease epoch", u64::MAX)?;
    let attempt_id = parse_uuid(a.next("attempt id")?, "attempt id")?;
    Ok(Fence {
        lease_id,
        lease_epoch,
        attempt_id,
    })
}

/// An execution id and, for a holder's call, its fence: how every
/// single-execution command starts.
fn exec_and_fence<'a>(
    args: &'a [&'a [u8]],
    limits: &Limits,
) -> CmdResult<(Args<'a>, ExecId, Fence)> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let fence = parse_fence(&mut a)?;
    Ok((a, id, fence))
}

pub(crate) fn parse_reason(a: &mut Args, limits: &Limits) -> CmdResult<Box<[u8]>> {
    let r = a.next("REASON")?;
    if r.len() > TAG_VALUE_MAX_BYTES.min(limits.max_payload_bytes.max(1)) {
        return Err(CmdError::syntax(format!(
            "REASON is longer than {TAG_VALUE_MAX_BYTES} bytes"
        )));
    }
    Ok(r.into())
}

pub use crate::base::args::valid_tag_key;
