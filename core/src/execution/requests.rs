//! The execution domain's command requests, parsed. Parsing is pure and
//! total: a request either parses into a value the core can apply, or
//! yields the error reply. Every parser reads its options through the one
//! options loop (`base::args::options`).

use std::sync::Arc;

use crate::base::args::{
    check_name, check_worker, keyword, lane_str, options, parse_exec_id, parse_i64, parse_milli,
    parse_u64, parse_uuid, pinned, Args, Origin,
};
use crate::base::blob::Blob;
use crate::base::caps::CapSet;
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::ids::{ExecId, SubmitTarget, Uuid};
use crate::base::limits::*;
use crate::execution::attempt::Fence;
use crate::execution::record::{Spec, Tags};
use crate::execution::retry::{Backoff, RetryPolicy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submit {
    pub target: SubmitTarget,
    pub spec: Spec,
    pub idempotency_ttl_ms: Option<u64>,
    pub at: Option<u64>,
}

/// `FF.SUBMIT target lane payload [options]`, copying the payload (tests).
#[cfg(test)]
pub fn parse_submit(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Submit> {
    parse_submit_keeping(args, limits, origin, |_, p| Blob::copy(p), |l| Arc::from(l))
}

/// A submit's retry options, gathered before they become a policy.
#[derive(Default)]
struct RetryOptions {
    max_retries: Option<u32>,
    backoff: Option<Backoff>,
    jitter: bool,
}

impl RetryOptions {
    fn policy(self) -> CmdResult<Option<RetryPolicy>> {
        if self.max_retries.is_none() && self.backoff.is_none() && !self.jitter {
            return Ok(None);
        }
        let mut r = RetryPolicy::default();
        if let Some(m) = self.max_retries {
            r.max_retries = m;
        }
        if let Some(b) = self.backoff {
            r.backoff = b;
        }
        match &mut r.backoff {
            Backoff::Exponential { jitter, .. } => *jitter = self.jitter,
            Backoff::Fixed { .. } if self.jitter => {
                return Err(CmdError::syntax(
                    "JITTER applies to EXPONENTIAL backoff only",
                ))
            }
            Backoff::Fixed { .. } => {}
        }
        Ok(Some(r))
    }
}

fn parse_backoff(a: &mut Args) -> CmdResult<Backoff> {
    match keyword(a.next("BACKOFF kind")?).as_deref() {
        Some(b"FIXED") => Ok(Backoff::Fixed {
            delay_ms: a.next_u64("BACKOFF FIXED delay", TTL_MAX_MS)?,
        }),
        Some(b"EXPONENTIAL") => {
            let initial_ms = a.next_u64("BACKOFF initial", TTL_MAX_MS)?;
            let max_ms = a.next_u64("BACKOFF max", TTL_MAX_MS)?;
            let m = parse_milli(a.next("BACKOFF multiplier")?, "BACKOFF multiplier", 100_000)?;
            if m < 1000 || max_ms < initial_ms {
                return Err(CmdError::syntax(
                    "BACKOFF EXPONENTIAL needs multiplier >= 1 and max >= initial",
                ));
            }
            Ok(Backoff::Exponential {
                initial_ms,
                max_ms,
                multiplier_milli: u32::try_from(m).unwrap_or(1000),
                jitter: false,
            })
        }
        _ => Err(CmdError::syntax("BACKOFF must be FIXED or EXPONENTIAL")),
    }
}

/// Adds (or replaces) a submit's tag.
fn add_tag(tags: &mut Tags, k: &[u8], v: &[u8]) -> CmdResult<()> {
    if k.is_empty() || k.len() > NAME_MAX_BYTES || v.len() > TAG_VALUE_MAX_BYTES {
        return Err(CmdError::syntax(
            "TAG key must be 1 to 256 bytes and value at most 4096 bytes",
        ));
    }
    if let Some(slot) = tags.iter_mut().find(|(ek, _)| ek.as_ref() == k) {
        slot.1 = v.into();
        return Ok(());
    }
    if tags.len() >= TAGS_MAX {
        return Err(CmdError::syntax(format!("at most {TAGS_MAX} tags")));
    }
    tags.push((k.into(), v.into()));
    Ok(())
}

/// `FF.SUBMIT target lane payload [options]`, with `keep(i, bytes)`
/// deciding how the payload (argument `i`) is kept (the server holds its
/// argument string rather than copy it) and `lane_name` how the lane's name
/// is (shared by the lane's executions).
pub fn parse_submit_keeping(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
    keep: impl FnOnce(usize, &[u8]) -> Blob,
    lane_name: impl FnOnce(&str) -> Arc<str>,
) -> CmdResult<Submit> {
    let mut a = Args::new(args);
    let target_arg = a.next("target")?;
    let target = SubmitTarget::parse(target_arg, limits.partitions).ok_or_else(|| {
        CmdError::syntax(format!(
            "target must be *, {{fp:N}} or {{fp:N}}:<uuid> with N below {}",
            limits.partitions
        ))
    })?;
    let lane = lane_str(a.next("lane")?)?;
    let payload = a.next("payload")?;
    if payload.len() > limits.max_payload_bytes {
        return Err(CmdError::syntax(format!(
            "payload is larger than flowfabric.max-payload-bytes ({})",
            limits.max_payload_bytes
        )));
    }
    let mut spec = Spec {
        lane: lane_name(lane),
        payload: keep(a.position() - 1, payload),
        ..Spec::default()
    };
    let (mut ttl, mut at) = (None, None);
    let mut retry = RetryOptions::default();
    options(&mut a, origin, &mut at, |k, a| {
        match k {
            b"NAMESPACE" => {
                spec.namespace = check_name(a.next("NAMESPACE")?, "namespace")?;
                if spec.namespace.is_empty() {
                    return Err(CmdError::syntax("namespace must not be empty"));
                }
            }
            b"KIND" => spec.kind = check_name(a.next("KIND")?, "kind")?,
            b"PRIORITY" => {
                let p = parse_i64(a.next("PRIORITY")?, "PRIORITY")?;
                spec.priority = u16::try_from(p.clamp(0, PRIORITY_MAX)).unwrap_or(0);
            }
            b"DELAY_UNTIL" => spec.delay_until = Some(a.next_u64("DELAY_UNTIL", TIME_MAX_MS)?),
            b"DEADLINE" => spec.deadline_at = Some(a.next_u64("DEADLINE", TIME_MAX_MS)?),
            b"ATTEMPT_TIMEOUT" => {
                let t = a.next_u64("ATTEMPT_TIMEOUT", TTL_MAX_MS)?;
                if t == 0 {
                    return Err(CmdError::syntax("ATTEMPT_TIMEOUT must be at least 1 ms"));
                }
                spec.attempt_timeout_ms = Some(t);
            }
            b"CAPS" => {
                spec.caps = CapSet::parse_required(a.next("CAPS")?).map_err(|e| {
                    CmdError::new(
                        Code::InvalidCapabilities,
                        format!("required:{}", e.detail()),
                    )
                })?
            }
            b"MAX_RETRIES" => {
                let m = a.next_u64("MAX_RETRIES", MAX_RETRIES_MAX)?;
                retry.max_retries = Some(u32::try_from(m).unwrap_or(0));
            }
            b"BACKOFF" => retry.backoff = Some(parse_backoff(a)?),
            b"JITTER" => retry.jitter = true,
            b"TAG" => {
                let (k, v) = (a.next("TAG key")?, a.next("TAG value")?);
                add_tag(&mut spec.tags, k, v)?;
            }
            b"IDEMPOTENCY" => {
                let k = a.next("IDEMPOTENCY key")?;
                if k.is_empty() || k.len() > NAME_MAX_BYTES {
                    return Err(CmdError::syntax("IDEMPOTENCY key must be 1 to 256 bytes"));
                }
                spec.idempotency = Some(k.into());
                let t = a.next_u64("IDEMPOTENCY ttl", TTL_MAX_MS)?;
                if t == 0 {
                    return Err(CmdError::syntax("IDEMPOTENCY ttl must be at least 1 ms"));
                }
                ttl = Some(t);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    spec.retry = retry.policy()?;
    Ok(Submit {
        target,
        spec,
        idempotency_ttl_ms: ttl,
        at,
    })
}

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

fn parse_reason(a: &mut Args, limits: &Limits) -> CmdResult<Box<[u8]>> {
    let r = a.next("REASON")?;
    if r.len() > TAG_VALUE_MAX_BYTES.min(limits.max_payload_bytes.max(1)) {
        return Err(CmdError::syntax(format!(
            "REASON is longer than {TAG_VALUE_MAX_BYTES} bytes"
        )));
    }
    Ok(r.into())
}

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
    pub at: Option<u64>,
    /// Pinned by the primary: `Some(0)` means no retry.
    pub retry_at: Option<u64>,
}

/// `FF.FAIL id lease_id lease_epoch attempt_id [REASON text]`.
pub fn parse_fail(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Fail> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let (mut reason, mut at, mut retry_at) = (None, None, None);
    options(&mut a, origin, &mut at, |k, a| {
        match k {
            b"REASON" => reason = Some(parse_reason(a, limits)?),
            b"RETRY_AT" => pinned(a, origin, "RETRY_AT", &mut retry_at)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(Fail {
        id,
        fence,
        reason,
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
    pub until: u64,
    pub at: Option<u64>,
}

/// `FF.DELAY id lease_id lease_epoch attempt_id until_ms`.
pub fn parse_delay(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Delay> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let until = a.next_u64("until", TIME_MAX_MS)?;
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
pub struct Revoke {
    pub id: ExecId,
    pub lease_id: Option<Uuid>,
    pub at: Option<u64>,
}

/// `FF.REVOKE id [LEASE lease_id]`.
pub fn parse_revoke(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Revoke> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let (mut lease_id, mut at) = (None, None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"LEASE" => {
                lease_id = Some(parse_uuid(a.next("lease id")?, "lease id")?);
                true
            }
            _ => false,
        })
    })?;
    Ok(Revoke { id, lease_id, at })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priority {
    pub id: ExecId,
    pub priority: u16,
    pub at: Option<u64>,
}

/// `FF.PRIORITY id priority` (clamped to 0..=9000 like submit).
pub fn parse_priority(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Priority> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let p = parse_i64(a.next("priority")?, "priority")?;
    let mut at = None;
    options(&mut a, origin, &mut at, |_, _| Ok(false))?;
    Ok(Priority {
        id,
        priority: u16::try_from(p.clamp(0, PRIORITY_MAX)).unwrap_or(0),
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

/// A tag key is `<caller>.<field>`: a lowercase name, a dot, then at least
/// one character that is not a dot (the reference's rule).
pub fn valid_tag_key(k: &[u8]) -> bool {
    let Some(dot) = k.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (caller, rest) = k.split_at(dot);
    let first_ok = caller.first().is_some_and(u8::is_ascii_lowercase);
    let caller_ok = caller
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    let after_ok = rest.get(1).is_some_and(|&c| c != b'.');
    first_ok && caller_ok && after_ok && k.len() <= NAME_MAX_BYTES
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTags {
    pub id: ExecId,
    pub tags: Tags,
    pub at: Option<u64>,
}

/// `FF.SETTAGS id key value [key value ...]`: its arguments are pairs, not
/// options (only `AT`, from replication, is a keyword).
pub fn parse_set_tags(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<SetTags> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let (mut tags, mut at): (Tags, _) = (Vec::new(), None);
    while let Some(k) = a.peek() {
        a.next("tag key")?;
        if k == b"AT" {
            pinned(&mut a, origin, "AT", &mut at)?;
            continue;
        }
        if !valid_tag_key(k) {
            return Err(CmdError::new(
                Code::InvalidTagKey,
                "tag keys are <caller>.<field>: a lowercase name, a dot, a field",
            ));
        }
        let v = a.next("tag value")?;
        if v.len() > TAG_VALUE_MAX_BYTES {
            return Err(CmdError::syntax(format!(
                "tag value is longer than {TAG_VALUE_MAX_BYTES} bytes"
            )));
        }
        if tags.len() >= TAGS_MAX {
            return Err(CmdError::syntax(format!("at most {TAGS_MAX} tags")));
        }
        tags.push((k.into(), v.into()));
    }
    if tags.is_empty() {
        return Err(CmdError::syntax("give at least one key and value"));
    }
    Ok(SetTags { id, tags, at })
}

/// A command on one execution whose only options are `REASON` and the
/// pinned `AT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simple {
    pub id: ExecId,
    pub reason: Option<Box<[u8]>>,
    pub at: Option<u64>,
}

pub fn parse_simple(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
    with_reason: bool,
) -> CmdResult<Simple> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let (mut reason, mut at) = (None, None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"REASON" if with_reason => {
                reason = Some(parse_reason(a, limits)?);
                true
            }
            _ => false,
        })
    })?;
    Ok(Simple { id, reason, at })
}

/// The replicated outcome of a claim: which execution, under which ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquire<'a> {
    pub id: ExecId,
    pub worker_id: &'a [u8],
    pub worker_instance_id: &'a [u8],
    pub lease_ms: u64,
    pub lease_id: Uuid,
    pub attempt_id: Uuid,
    pub at: u64,
}

/// `FF.ACQUIRE id worker instance lease_ms lease_id attempt_id at`.
pub fn parse_acquire<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<Acquire<'a>> {
    let mut a = Args::new(args);
    let r = Acquire {
        id: parse_exec_id(a.next("execution id")?, limits)?,
        worker_id: check_worker(a.next("worker id")?, "worker id")?,
        worker_instance_id: check_worker(a.next("worker instance id")?, "worker instance id")?,
        lease_ms: parse_lease(a.next("lease ms")?)?,
        lease_id: parse_uuid(a.next("lease id")?, "lease id")?,
        attempt_id: parse_uuid(a.next("attempt id")?, "attempt id")?,
        at: a.next_u64("at", TIME_MAX_MS)?,
    };
    if !a.is_done() {
        return Err(CmdError::syntax("too many arguments"));
    }
    Ok(r)
}

impl Acquire<'_> {
    pub fn to_args(&self) -> Vec<Vec<u8>> {
        vec![
            self.id.key().into_bytes(),
            self.worker_id.to_vec(),
            self.worker_instance_id.to_vec(),
            self.lease_ms.to_string().into_bytes(),
            self.lease_id.to_string().into_bytes(),
            self.attempt_id.to_string().into_bytes(),
            self.at.to_string().into_bytes(),
        ]
    }
}
