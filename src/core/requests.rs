//! Parsed command requests. Parsing is pure and total: a request either
//! parses into a value the core can apply, or yields the error reply.

use std::sync::Arc;

use crate::core::args::{
    describe, keyword, parse_i64, parse_milli, parse_u64, Args, CmdError, CmdResult,
};
use crate::core::blob::Blob;
use crate::core::caps::{CapSet, CapsError};
use crate::core::execution::{Backoff, Fence, RetryPolicy, Spec, PRIORITY_MAX};
use crate::core::ids::{ExecId, SubmitTarget, Uuid};
use smallvec::SmallVec;

pub const LANE_MAX_BYTES: usize = 64;
pub const NAME_MAX_BYTES: usize = 256;
pub const TAG_VALUE_MAX_BYTES: usize = 4096;
pub const TAGS_MAX: usize = 64;
pub const LANES_MAX: u64 = 64;
pub const LEASE_MAX_MS: u64 = 7 * 24 * 3600 * 1000;
pub const TIME_MAX_MS: u64 = i64::MAX as u64 / 2;
pub const TTL_MAX_MS: u64 = 365 * 24 * 3600 * 1000;
pub const MAX_RETRIES_MAX: u64 = 10_000;

/// Limits that come from module configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub partitions: u16,
    pub max_payload_bytes: usize,
    pub default_lease_ms: u64,
    /// How long terminal executions are kept (0: forever).
    pub retention_ms: u64,
    /// How many times a lease may run out before the execution fails.
    pub max_reclaims: u32,
}

/// Where the command came from: only the primary's replication stream and
/// the AOF may pin the clock with `AT`. `Ask` finds out only when a pinned
/// value appears, since asking costs the server a flags lookup.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    Client,
    Replicated,
    Ask(&'a dyn AskOrigin),
}

/// What can say whether the current command came from replication or AOF.
pub trait AskOrigin {
    fn is_replicated(&self) -> bool;
}

impl Origin<'_> {
    pub fn is_replicated(self) -> bool {
        match self {
            Origin::Client => false,
            Origin::Replicated => true,
            Origin::Ask(a) => a.is_replicated(),
        }
    }
}

pub fn lane_str(lane: &[u8]) -> CmdResult<&str> {
    let err = || {
        CmdError::syntax(format!(
            "lane must be 1 to {LANE_MAX_BYTES} printable ASCII bytes"
        ))
    };
    if lane.is_empty()
        || lane.len() > LANE_MAX_BYTES
        || !lane.iter().all(|b| (0x20..=0x7e).contains(b))
    {
        return Err(err());
    }
    // SAFETY: every byte was just checked to be printable ASCII, which is
    // valid UTF-8 (every command parses lanes: the second check is skipped).
    Ok(unsafe { std::str::from_utf8_unchecked(lane) })
}

fn check_name(v: &[u8], what: &str) -> CmdResult<Box<[u8]>> {
    if v.len() > NAME_MAX_BYTES {
        return Err(CmdError::syntax(format!(
            "{what} is longer than {NAME_MAX_BYTES} bytes"
        )));
    }
    Ok(v.into())
}

fn check_worker<'a>(v: &'a [u8], what: &str) -> CmdResult<&'a [u8]> {
    if v.is_empty() || v.len() > NAME_MAX_BYTES || v.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(CmdError::syntax(format!(
            "{what} must be 1 to {NAME_MAX_BYTES} bytes without control bytes"
        )));
    }
    Ok(v)
}

fn pinned_time(a: &mut Args, origin: Origin, at: &mut Option<u64>) -> CmdResult<()> {
    if !origin.is_replicated() {
        return Err(CmdError::syntax("AT is reserved for replication and AOF"));
    }
    *at = Some(a.next_u64("AT", TIME_MAX_MS)?);
    Ok(())
}

fn unknown(arg: &[u8]) -> CmdError {
    CmdError::syntax(format!("unknown option {}", describe(arg)))
}

pub fn parse_exec_id(arg: &[u8], limits: &Limits) -> CmdResult<ExecId> {
    ExecId::parse(arg, limits.partitions).ok_or_else(|| {
        CmdError::syntax(format!(
            "execution id must be {{fp:N}}:<uuid> with N below {}",
            limits.partitions
        ))
    })
}

fn parse_uuid(arg: &[u8], what: &str) -> CmdResult<Uuid> {
    Uuid::parse(arg).ok_or_else(|| CmdError::syntax(format!("{what} must be a UUID")))
}

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
    let mut ttl = None;
    let mut at = None;
    let mut max_retries: Option<u32> = None;
    let mut backoff: Option<Backoff> = None;
    let mut jitter = false;
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("NAMESPACE") => {
                spec.namespace = check_name(a.next("NAMESPACE")?, "namespace")?;
                if spec.namespace.is_empty() {
                    return Err(CmdError::syntax("namespace must not be empty"));
                }
            }
            Some("KIND") => spec.kind = check_name(a.next("KIND")?, "kind")?,
            Some("PRIORITY") => {
                let p = parse_i64(a.next("PRIORITY")?, "PRIORITY")?;
                spec.priority = u16::try_from(p.clamp(0, PRIORITY_MAX)).unwrap_or(0);
            }
            Some("DELAY_UNTIL") => spec.delay_until = Some(a.next_u64("DELAY_UNTIL", TIME_MAX_MS)?),
            Some("DEADLINE") => spec.deadline_at = Some(a.next_u64("DEADLINE", TIME_MAX_MS)?),
            Some("ATTEMPT_TIMEOUT") => {
                let t = a.next_u64("ATTEMPT_TIMEOUT", TTL_MAX_MS)?;
                if t == 0 {
                    return Err(CmdError::syntax("ATTEMPT_TIMEOUT must be at least 1 ms"));
                }
                spec.attempt_timeout_ms = Some(t);
            }
            Some("CAPS") => {
                spec.caps = CapSet::parse_required(a.next("CAPS")?).map_err(|e| {
                    CmdError::new("INVALID_CAPABILITIES", format!("required:{}", e.detail()))
                })?
            }
            Some("MAX_RETRIES") => {
                max_retries =
                    Some(u32::try_from(a.next_u64("MAX_RETRIES", MAX_RETRIES_MAX)?).unwrap_or(0))
            }
            Some("BACKOFF") => {
                backoff = Some(match keyword(a.next("BACKOFF kind")?).as_deref() {
                    Some("FIXED") => Backoff::Fixed {
                        delay_ms: a.next_u64("BACKOFF FIXED delay", TTL_MAX_MS)?,
                    },
                    Some("EXPONENTIAL") => {
                        let initial_ms = a.next_u64("BACKOFF initial", TTL_MAX_MS)?;
                        let max_ms = a.next_u64("BACKOFF max", TTL_MAX_MS)?;
                        let m = parse_milli(
                            a.next("BACKOFF multiplier")?,
                            "BACKOFF multiplier",
                            100_000,
                        )?;
                        if m < 1000 || max_ms < initial_ms {
                            return Err(CmdError::syntax(
                                "BACKOFF EXPONENTIAL needs multiplier >= 1 and max >= initial",
                            ));
                        }
                        Backoff::Exponential {
                            initial_ms,
                            max_ms,
                            multiplier_milli: u32::try_from(m).unwrap_or(1000),
                            jitter: false,
                        }
                    }
                    _ => return Err(CmdError::syntax("BACKOFF must be FIXED or EXPONENTIAL")),
                })
            }
            Some("JITTER") => jitter = true,
            Some("TAG") => {
                let k = a.next("TAG key")?;
                let v = a.next("TAG value")?;
                if k.is_empty() || k.len() > NAME_MAX_BYTES || v.len() > TAG_VALUE_MAX_BYTES {
                    return Err(CmdError::syntax(
                        "TAG key must be 1 to 256 bytes and value at most 4096 bytes",
                    ));
                }
                if let Some(slot) = spec.tags.iter_mut().find(|(ek, _)| ek.as_ref() == k) {
                    slot.1 = v.into();
                } else {
                    if spec.tags.len() >= TAGS_MAX {
                        return Err(CmdError::syntax(format!("at most {TAGS_MAX} tags")));
                    }
                    spec.tags.push((k.into(), v.into()));
                }
            }
            Some("IDEMPOTENCY") => {
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
            Some("AT") => pinned_time(&mut a, origin, &mut at)?,
            _ => return Err(unknown(opt)),
        }
    }
    if max_retries.is_some() || backoff.is_some() || jitter {
        let mut r = RetryPolicy::default();
        if let Some(m) = max_retries {
            r.max_retries = m;
        }
        if let Some(b) = backoff {
            r.backoff = b;
        }
        if let Backoff::Exponential { jitter: j, .. } = &mut r.backoff {
            *j = jitter;
        } else if jitter {
            return Err(CmdError::syntax(
                "JITTER applies to EXPONENTIAL backoff only",
            ));
        }
        spec.retry = Some(r);
    }
    Ok(Submit {
        target,
        spec,
        idempotency_ttl_ms: ttl,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    pub worker_id: &'a [u8],
    pub worker_instance_id: &'a [u8],
    pub lanes: SmallVec<[&'a str; 4]>,
    pub caps: CapSet,
    pub lease_ms: u64,
    /// `None`: do not block; `Some(0)`: block until work arrives.
    pub block_ms: Option<u64>,
}

/// `FF.CLAIM worker instance numlanes lane [lane ...] [CAPS csv] [LEASE ms] [BLOCK ms]`.
#[cfg(test)]
pub fn parse_claim<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<Claim<'a>> {
    parse_claim_with(args, limits, CapSet::parse_worker)
}

/// `FF.CLAIM ...`, with `worker_caps` turning the CAPS bytes into a set
/// (the shell remembers the sets its workers send).
pub fn parse_claim_with<'a>(
    args: &'a [&'a [u8]],
    limits: &Limits,
    worker_caps: impl FnOnce(&[u8]) -> Result<CapSet, CapsError>,
) -> CmdResult<Claim<'a>> {
    let mut a = Args::new(args);
    let worker_id = check_worker(a.next("worker id")?, "worker id")?;
    let worker_instance_id = check_worker(a.next("worker instance id")?, "worker instance id")?;
    let n = a.next_u64("numlanes", LANES_MAX)?;
    if n == 0 {
        return Err(CmdError::syntax("numlanes must be at least 1"));
    }
    let mut lanes = SmallVec::new();
    for _ in 0..n {
        let l = lane_str(a.next("lane")?)?;
        if !lanes.contains(&l) {
            lanes.push(l);
        }
    }
    let mut c = Claim {
        worker_id,
        worker_instance_id,
        lanes,
        caps: CapSet::empty(),
        lease_ms: limits.default_lease_ms,
        block_ms: None,
    };
    let mut caps = None;
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("CAPS") => caps = Some(a.next("CAPS")?),
            Some("LEASE") => c.lease_ms = parse_lease(a.next("LEASE")?)?,
            Some("BLOCK") => c.block_ms = Some(a.next_u64("BLOCK", TIME_MAX_MS)?),
            _ => return Err(unknown(opt)),
        }
    }
    if let Some(csv) = caps {
        c.caps = worker_caps(csv)
            .map_err(|e| CmdError::new("INVALID_CAPABILITIES", format!("worker:{}", e.detail())))?;
    }
    Ok(c)
}

fn parse_lease(arg: &[u8]) -> CmdResult<u64> {
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
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let fence = parse_fence(&mut a)?;
    let mut r = Renew {
        id,
        fence,
        lease_ms: limits.default_lease_ms,
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("LEASE") if with_lease => r.lease_ms = parse_lease(a.next("LEASE")?)?,
            Some("AT") => pinned_time(&mut a, origin, &mut r.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(r)
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
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let fence = parse_fence(&mut a)?;
    let (mut result, mut at) = (None, None);
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("RESULT") => {
                let r = a.next("RESULT")?;
                if r.len() > limits.max_payload_bytes {
                    return Err(CmdError::syntax(
                        "result is larger than flowfabric.max-payload-bytes",
                    ));
                }
                result = Some((a.position() - 1, r));
            }
            Some("AT") => pinned_time(&mut a, origin, &mut at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(Complete {
        id,
        fence,
        result: result.map(|(i, r)| keep(i, r)),
        at,
    })
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
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let fence = parse_fence(&mut a)?;
    let mut f = Fail {
        id,
        fence,
        reason: None,
        at: None,
        retry_at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("REASON") => f.reason = Some(parse_reason(&mut a, limits)?),
            Some("AT") => pinned_time(&mut a, origin, &mut f.at)?,
            Some("RETRY_AT") => pinned_time(&mut a, origin, &mut f.retry_at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(f)
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
    let mut c = Cancel {
        id,
        fence: None,
        reason: None,
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("REASON") => c.reason = Some(parse_reason(&mut a, limits)?),
            Some("FENCE") => c.fence = Some(parse_fence(&mut a)?),
            Some("AT") => pinned_time(&mut a, origin, &mut c.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(c)
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
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let fence = parse_fence(&mut a)?;
    let until = a.next_u64("until", TIME_MAX_MS)?;
    let mut d = Delay {
        id,
        fence,
        until,
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("AT") => pinned_time(&mut a, origin, &mut d.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(d)
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
    let mut r = Revoke {
        id,
        lease_id: None,
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("LEASE") => r.lease_id = Some(parse_uuid(a.next("lease id")?, "lease id")?),
            Some("AT") => pinned_time(&mut a, origin, &mut r.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(r)
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
    let mut r = Priority {
        id,
        priority: u16::try_from(p.clamp(0, PRIORITY_MAX)).unwrap_or(0),
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("AT") => pinned_time(&mut a, origin, &mut r.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(r)
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
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let fence = parse_fence(&mut a)?;
    let pct = u8::try_from(a.next_u64("percent", 100)?).unwrap_or(100);
    let mut p = ProgressReport {
        id,
        fence,
        pct,
        message: Box::default(),
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("MESSAGE") => p.message = parse_reason(&mut a, limits)?,
            Some("AT") => pinned_time(&mut a, origin, &mut p.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(p)
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
    pub tags: crate::core::execution::Tags,
    pub at: Option<u64>,
}

/// `FF.SETTAGS id key value [key value ...]`.
pub fn parse_set_tags(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<SetTags> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let mut t = SetTags {
        id,
        tags: Vec::new(),
        at: None,
    };
    while let Some(k) = a.peek() {
        a.next("tag key")?;
        if k == b"AT" {
            pinned_time(&mut a, origin, &mut t.at)?;
            continue;
        }
        if !valid_tag_key(k) {
            return Err(CmdError::new(
                "INVALID_TAG_KEY",
                "tag keys are <caller>.<field>: a lowercase name, a dot, a field",
            ));
        }
        let v = a.next("tag value")?;
        if v.len() > TAG_VALUE_MAX_BYTES {
            return Err(CmdError::syntax(format!(
                "tag value is longer than {TAG_VALUE_MAX_BYTES} bytes"
            )));
        }
        if t.tags.len() >= TAGS_MAX {
            return Err(CmdError::syntax(format!("at most {TAGS_MAX} tags")));
        }
        t.tags.push((k.into(), v.into()));
    }
    if t.tags.is_empty() {
        return Err(CmdError::syntax("give at least one key and value"));
    }
    Ok(t)
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
    let mut s = Simple {
        id,
        reason: None,
        at: None,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("REASON") if with_reason => s.reason = Some(parse_reason(&mut a, limits)?),
            Some("AT") => pinned_time(&mut a, origin, &mut s.at)?,
            _ => return Err(unknown(opt)),
        }
    }
    Ok(s)
}

/// The longest heartbeat lapse a worker may register with.
const WORKER_TTL_MAX_MS: u64 = 7 * 24 * 3600 * 1000;

/// Splits off the trailing pinned `AT ms` the worker commands carry (only
/// from the primary or the AOF).
pub fn split_pinned_at<'a>(
    args: &'a [&'a [u8]],
    origin: Origin,
) -> CmdResult<(&'a [&'a [u8]], Option<u64>)> {
    match args {
        [rest @ .., at, t] if at.eq_ignore_ascii_case(b"AT") => {
            if !origin.is_replicated() {
                return Err(CmdError::syntax("AT is reserved for replication and AOF"));
            }
            Ok((rest, Some(parse_u64(t, "AT", TIME_MAX_MS)?)))
        }
        _ => Ok((args, None)),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register<'a> {
    pub instance: &'a [u8],
    pub worker_id: &'a [u8],
    pub ttl_ms: u64,
    pub caps: CapSet,
    pub lanes: Vec<Box<str>>,
}

/// `FF.REGISTER instance worker_id ttl_ms [CAPS csv] [LANES n lane ...]`
/// (after `split_pinned_at`).
pub fn parse_register<'a>(args: &'a [&'a [u8]]) -> CmdResult<Register<'a>> {
    let mut a = Args::new(args);
    let instance = check_worker(a.next("worker instance id")?, "worker instance id")?;
    let worker_id = check_worker(a.next("worker id")?, "worker id")?;
    let ttl_ms = a.next_u64("ttl", WORKER_TTL_MAX_MS)?;
    if ttl_ms == 0 {
        return Err(CmdError::syntax("ttl must be at least 1 ms"));
    }
    let mut r = Register {
        instance,
        worker_id,
        ttl_ms,
        caps: CapSet::empty(),
        lanes: Vec::new(),
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("CAPS") => {
                r.caps = CapSet::parse_worker(a.next("CAPS")?).map_err(|e| {
                    CmdError::new("INVALID_CAPABILITIES", format!("worker:{}", e.detail()))
                })?
            }
            Some("LANES") => {
                let n = a.next_u64("numlanes", LANES_MAX)?;
                for _ in 0..n {
                    r.lanes.push(lane_str(a.next("lane")?)?.into());
                }
            }
            _ => return Err(unknown(opt)),
        }
    }
    Ok(r)
}

/// Where a listing resumes: the admission sequence of the next record to
/// read (0, the start, for the first page).
pub type ListCursor = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List<'a> {
    pub partition: u16,
    pub state: Option<crate::core::state::PublicState>,
    pub lane: Option<&'a str>,
    pub cursor: ListCursor,
    pub count: usize,
}

pub const LIST_COUNT_MAX: u64 = 10_000;

/// `FF.LIST {fp:N} [STATE state] [LANE lane] [CURSOR cursor] [COUNT n]`.
pub fn parse_list<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<List<'a>> {
    use crate::core::state::PublicState;
    let mut a = Args::new(args);
    let partition = match SubmitTarget::parse(a.next("partition")?, limits.partitions) {
        Some(SubmitTarget::Partition(p)) => p,
        _ => return Err(CmdError::syntax("partition must be {fp:N}")),
    };
    let mut l = List {
        partition,
        state: None,
        lane: None,
        cursor: 0,
        count: 100,
    };
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt).as_deref() {
            Some("STATE") => {
                l.state = Some(
                    PublicState::parse(a.next("STATE")?)
                        .ok_or_else(|| CmdError::syntax("unknown STATE"))?,
                )
            }
            Some("LANE") => l.lane = Some(lane_str(a.next("LANE")?)?),
            Some("CURSOR") => {
                l.cursor = a.next_u64("CURSOR", u64::MAX)?;
            }
            Some("COUNT") => {
                let n = a.next_u64("COUNT", LIST_COUNT_MAX)?;
                if n == 0 {
                    return Err(CmdError::syntax("COUNT must be from 1 to 10000"));
                }
                l.count = usize::try_from(n).unwrap_or(100);
            }
            _ => return Err(unknown(opt)),
        }
    }
    Ok(l)
}

/// One batch of the node timer, with every setting it depends on pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueBatch {
    pub partition: u16,
    pub at: u64,
    pub count: usize,
    pub retention_ms: u64,
    pub max_reclaims: u32,
}

/// `FF.DUE partition at count retention_ms max_reclaims`.
/// The partition is named by its key (`ff:idx:{fp:N}`), so the command is
/// routed with its slot (atomic slot migration forwards keyed commands
/// only); an AOF written before names it by number, still accepted.
pub fn parse_due(args: &[&[u8]], limits: &Limits) -> CmdResult<DueBatch> {
    let mut a = Args::new(args);
    let first = a.next("partition")?;
    let p = match partition_of_key(first, limits.partitions) {
        Some(p) => p,
        None => {
            let max = u64::from(limits.partitions.saturating_sub(1));
            u16::try_from(parse_u64(first, "partition", max)?).unwrap_or(0)
        }
    };
    let b = DueBatch {
        partition: p,
        at: a.next_u64("at", TIME_MAX_MS)?,
        count: usize::try_from(a.next_u64("count", 1_000_000)?).unwrap_or(0),
        retention_ms: a.next_u64("retention", i64::MAX as u64)?,
        max_reclaims: u32::try_from(a.next_u64("max reclaims", 1_000_000)?).unwrap_or(0),
    };
    if !a.is_done() {
        return Err(CmdError::syntax("too many arguments"));
    }
    Ok(b)
}

/// The partition whose index key is `key` (`ff:idx:{fp:N}`, N below
/// `partitions`).
pub fn partition_of_key(key: &[u8], partitions: u16) -> Option<u16> {
    let n = key.strip_prefix(b"ff:idx:{fp:")?.strip_suffix(b"}")?;
    if n.is_empty()
        || n.len() > 5
        || !n.iter().all(u8::is_ascii_digit)
        || (n.len() > 1 && n[0] == b'0')
    {
        return None;
    }
    let v: u32 = std::str::from_utf8(n).ok()?.parse().ok()?;
    u16::try_from(v).ok().filter(|&p| p < partitions)
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

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        partitions: 256,
        max_payload_bytes: 1024,
        default_lease_ms: 30_000,
        retention_ms: 0,
        max_reclaims: 100,
    };

    fn split(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(|x| x.as_bytes()).collect()
    }

    #[test]
    fn submit_options() {
        let s = parse_submit(
            &split("* q payload PRIORITY 99999 CAPS b,a TAG x.y 1 MAX_RETRIES 5 BACKOFF EXPONENTIAL 10 100 1.5 JITTER IDEMPOTENCY k 1000"),
            &L,
            Origin::Client,
        )
        .unwrap();
        assert_eq!(s.spec.priority, 9000);
        assert_eq!(s.spec.caps.as_str(), "a,b");
        assert_eq!(s.idempotency_ttl_ms, Some(1000));
        let r = s.spec.retry.unwrap();
        assert_eq!(r.max_retries, 5);
        assert_eq!(
            r.backoff,
            Backoff::Exponential {
                initial_ms: 10,
                max_ms: 100,
                multiplier_milli: 1500,
                jitter: true
            }
        );
        assert_eq!(
            parse_submit(&split("* q p PRIORITY -5"), &L, Origin::Client)
                .unwrap()
                .spec
                .priority,
            0
        );
    }

    #[test]
    fn submit_rejects() {
        for bad in [
            "",
            "*",
            "* q",
            "x q p",
            "{fp:256} q p",
            "* q p PRIORITY",
            "* q p PRIORITY 1.5",
            "* q p PRIORITY 99999999999999999999",
            "* q p NOPE 1",
            "* q p AT 5",
            "* q p CAPS a,,b",
            "* q p IDEMPOTENCY k 0",
            "* q p DELAY_UNTIL -1",
            "* q p BACKOFF FIXED 10 JITTER",
            "* q p BACKOFF EXPONENTIAL 10 5 2",
        ] {
            assert!(
                parse_submit(&split(bad), &L, Origin::Client).is_err(),
                "{bad}"
            );
        }
        assert!(parse_submit(&split("* q p AT 5"), &L, Origin::Replicated).is_ok());
        let big = vec![b'x'; 1025];
        assert!(parse_submit(&[b"*", b"q", &big], &L, Origin::Client).is_err());
        let long_lane = vec![b'l'; 65];
        assert!(parse_submit(&[b"*", &long_lane, b"p"], &L, Origin::Client).is_err());
    }

    #[test]
    fn tag_keys() {
        for ok in ["app.x", "a1_b.c.d", "z.9"] {
            assert!(valid_tag_key(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "app", "app.", "app..x", ".x", "App.x", "1a.x", "a-b.x"] {
            assert!(!valid_tag_key(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn worker_registration() {
        let words = split("i w 500 CAPS gpu,cuda LANES 2 a b AT 7");
        let (rest, at) = split_pinned_at(&words, Origin::Replicated).unwrap();
        assert_eq!(at, Some(7));
        let r = parse_register(rest).unwrap();
        assert_eq!(
            (r.instance, r.worker_id, r.ttl_ms),
            (&b"i"[..], &b"w"[..], 500)
        );
        assert_eq!(r.lanes, vec![Box::from("a"), Box::from("b")]);
        assert!(split_pinned_at(&words, Origin::Client).is_err());
        for bad in ["i w 0", "i w 10 LANES 2 a", "i w 10 BOGUS", " w 10"] {
            assert!(parse_register(&split(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn due_names_its_partition_by_key_or_number() {
        assert_eq!(partition_of_key(b"ff:idx:{fp:7}", 256), Some(7));
        assert_eq!(partition_of_key(b"ff:idx:{fp:255}", 256), Some(255));
        for bad in [
            "ff:idx:{fp:256}",
            "ff:idx:{fp:07}",
            "ff:idx:{fp:}",
            "ff:idx:{fp:1}x",
            "{fp:1}",
        ] {
            assert_eq!(partition_of_key(bad.as_bytes(), 256), None, "{bad}");
        }
        let new = split("ff:idx:{fp:3} 100 5 0 10");
        assert_eq!(parse_due(&new, &L).unwrap().partition, 3);
        let old = split("3 100 5 0 10");
        assert_eq!(parse_due(&old, &L).unwrap(), parse_due(&new, &L).unwrap());
        assert!(parse_due(&split("ff:idx:{fp:999} 100 5 0 10"), &L).is_err());
    }

    #[test]
    fn claim_and_fence() {
        let words = split("w i 2 a b CAPS gpu LEASE 100 BLOCK 0");
        let c = parse_claim(&words, &L).unwrap();
        assert_eq!(c.lanes.len(), 2);
        assert_eq!(c.block_ms, Some(0));
        for bad in [
            "w i 0",
            "w i 2 a",
            "w i 1 a LEASE 0",
            "w i 1 a BLOCK -1",
            "w i 65 a",
        ] {
            assert!(parse_claim(&split(bad), &L).is_err(), "{bad}");
        }
        let a = Acquire {
            id: ExecId {
                partition: 3,
                uuid: Uuid(5),
            },
            worker_id: b"w",
            worker_instance_id: b"i",
            lease_ms: 10,
            lease_id: Uuid(6),
            attempt_id: Uuid(7),
            at: 8,
        };
        let args = a.to_args();
        let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
        assert_eq!(parse_acquire(&refs, &L).unwrap(), a);
    }
}
