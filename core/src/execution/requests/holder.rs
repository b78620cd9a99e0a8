//! The lease holder's fenced calls: FF.RENEW (and FF.WAITCHILDREN),
//! FF.COMPLETE, FF.FAIL, FF.CANCEL, FF.DELAY, FF.PROGRESS.

use super::{exec_and_fence, parse_fence, parse_lease, parse_reason};
use crate::base::args::{
    check_worker, keyword, options, parse_exec_id, parse_u64, pinned, Args, Origin,
};
use crate::base::blob::Blob;
use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::ExecId;
use crate::base::limits::{Limits, TIME_MAX_MS};
use crate::base::time::{check_absolute, span, When};
use crate::execution::attempt::Fence;
use crate::execution::failure::Failure;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renew {
    pub id: ExecId,
    pub fence: Fence,
    pub lease_ms: u64,
    pub at: Option<u64>,
}

/// `FF.RENEW id lease_id lease_epoch attempt_id [LEASE ms]`; without
/// `with_lease` (FF.WAITCHILDREN) just the fenced id.
pub fn parse_renew(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
    with_lease: bool,
) -> CmdResult<Renew> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let (mut lease_ms, mut at) = (limits.default_lease_ms, None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"LEASE" if with_lease => {
                lease_ms = parse_lease(a.next("LEASE")?)?;
                true
            }
            _ => false,
        })
    })?;
    Ok(Renew {
        id,
        fence,
        lease_ms,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complete {
    pub id: ExecId,
    pub fence: Fence,
    pub result: Option<Blob>,
    pub at: Option<u64>,
}

/// `FF.COMPLETE id lease_id lease_epoch attempt_id [RESULT payload]`.
/// `keep(i, bytes)` stores the result, argument `i`: the shell holds the
/// server's string instead of copying it (see `parse_submit_keeping`).
pub fn parse_complete(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
    keep: impl FnOnce(usize, &[u8]) -> Blob,
) -> CmdResult<Complete> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let (mut result, mut at) = (None, None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"RESULT" => {
                let r = a.next("RESULT")?;
                if r.len() > limits.max_payload_bytes {
                    return Err(CmdError::syntax(
                        "result is larger than flowfabric.max-payload-bytes",
                    ));
                }
                result = Some((a.position() - 1, r));
                true
            }
            _ => false,
        })
    })?;
    Ok(Complete {
        id,
        fence,
        result: result.map(|(i, r)| keep(i, r)),
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fail {
    pub id: ExecId,
    pub fence: Fence,
    pub reason: Option<Box<[u8]>>,
    /// `CATEGORY` and `NON_RETRYABLE`, when either was given.
    pub failure: Option<Failure>,
    pub at: Option<u64>,
    /// Pinned by the primary: `Some(0)` means no retry.
    pub retry_at: Option<u64>,
}

/// `FF.FAIL id lease_id lease_epoch attempt_id [REASON text]
/// [CATEGORY name] [NON_RETRYABLE]`.
pub fn parse_fail(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Fail> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let (mut reason, mut at, mut retry_at) = (None, None, None);
    let (mut category, mut non_retryable) = (None, false);
    options(&mut a, origin, &mut at, |k, a| {
        match k {
            b"REASON" => reason = Some(parse_reason(a, limits)?),
            b"CATEGORY" => category = Some(check_worker(a.next("CATEGORY")?, "CATEGORY")?),
            b"NON_RETRYABLE" => non_retryable = true,
            b"RETRY_AT" => pinned(a, origin, "RETRY_AT", &mut retry_at)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(Fail {
        id,
        fence,
        reason,
        failure: Failure::classify(category, non_retryable),
        at,
        retry_at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancel {
    pub id: ExecId,
    pub fence: Option<Fence>,
    pub reason: Option<Box<[u8]>>,
    pub at: Option<u64>,
}

/// `FF.CANCEL id [REASON text] [FENCE lease_id lease_epoch attempt_id]`.
pub fn parse_cancel(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Cancel> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let (mut fence, mut reason, mut at) = (None, None, None);
    options(&mut a, origin, &mut at, |k, a| {
        match k {
            b"REASON" => reason = Some(parse_reason(a, limits)?),
            b"FENCE" => fence = Some(parse_fence(a)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(Cancel {
        id,
        fence,
        reason,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delay {
    pub id: ExecId,
    pub fence: Fence,
    /// Until when: absolute, or from the command's (pinned) time.
    pub until: When,
    pub at: Option<u64>,
}

/// `FF.DELAY id lease_id lease_epoch attempt_id until_ms` or
/// `FF.DELAY id lease_id lease_epoch attempt_id FOR ms`.
pub fn parse_delay(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Delay> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let first = a.next("until")?;
    let until = if keyword(first).is_some_and(|k| &*k == b"FOR") {
        When::In(span(&mut a, "FOR")?)
    } else {
        let t = parse_u64(first, "until", TIME_MAX_MS)
            .map_err(|_| CmdError::syntax("until must be a time in unix ms, or FOR ms"))?;
        check_absolute(t, origin, "until")?;
        When::At(t)
    };
    let mut at = None;
    options(&mut a, origin, &mut at, |_, _| Ok(false))?;
    Ok(Delay {
        id,
        fence,
        until,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressReport {
    pub id: ExecId,
    pub fence: Fence,
    pub pct: u8,
    pub message: Box<[u8]>,
    pub at: Option<u64>,
}

/// `FF.PROGRESS id lease_id lease_epoch attempt_id percent [MESSAGE text]`.
pub fn parse_progress(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
) -> CmdResult<ProgressReport> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let pct = u8::try_from(a.next_u64("percent", 100)?).unwrap_or(100);
    let (mut message, mut at) = (Box::default(), None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"MESSAGE" => {
                message = parse_reason(a, limits)?;
                true
            }
            _ => false,
        })
    })?;
    Ok(ProgressReport {
        id,
        fence,
        pct,
        message,
        at,
    })
}
