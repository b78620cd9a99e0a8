//! FF.SUBMIT's request: the execution's spec and its options.

use std::sync::Arc;

use crate::base::args::{
    check_name, keyword, lane_str, options, parse_i64, parse_milli, Args, Origin,
};
use crate::base::blob::Blob;
use crate::base::caps::CapSet;
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::ids::{ExecId, SubmitTarget, Uuid};
use crate::base::limits::{
    Limits, MAX_RETRIES_MAX, NAME_MAX_BYTES, PRIORITY_MAX, TAGS_MAX, TAG_VALUE_MAX_BYTES,
    TTL_MAX_MS,
};
use crate::base::time::{pair, When};
use crate::execution::record::{Spec, Tags};
use crate::execution::retry::{Backoff, RetryPolicy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submit {
    pub target: SubmitTarget,
    pub spec: Spec,
    pub idempotency_ttl_ms: Option<u64>,
    /// The flow the new execution joins (in the flow's partition).
    pub flow: Option<ExecId>,
    /// Members of that flow it depends on: edges added with it.
    pub after: Vec<Uuid>,
    /// `DELAY_UNTIL` or `DELAY`, and `DEADLINE` or `DEADLINE_IN`: made
    /// absolute into the spec by `resolve_times`.
    pub delay: Option<When>,
    pub deadline: Option<When>,
    pub at: Option<u64>,
}

impl Submit {
    /// Turns the delay and deadline into the spec's absolute times from
    /// `now`, the command's (pinned) time. A client's deadline must be in
    /// the future; the primary's stream and the AOF carry what the primary
    /// accepted (and files from before this check), so they are not held
    /// to it. A delay already past makes the execution claimable at once.
    pub fn resolve_times(&mut self, now: u64, origin: Origin) -> CmdResult<()> {
        let deadline = self.deadline.map(|d| d.resolve(now));
        if let Some(d) = deadline {
            if d <= now && !origin.is_replicated() {
                return Err(CmdError::new(
                    Code::InvalidInput,
                    format!("the deadline {d} is not after the submit's time {now}: it has passed"),
                ));
            }
        }
        self.spec.deadline_at = deadline;
        self.spec.delay_until = self.delay.map(|d| d.resolve(now));
        Ok(())
    }
}

/// `FF.SUBMIT target lane payload [options]`, copying the payload (tests).
#[cfg(test)]
pub fn parse_submit(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Submit> {
    parse_submit_keeping(args, limits, origin, |_, p| Blob::copy(p), |l| Arc::from(l))
}

/// The most upstreams one submit names with AFTER.
pub const AFTER_MAX: usize = 64;

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
    let (mut ttl, mut at, mut flow) = (None, None, None);
    let (mut delay, mut deadline) = (None, None);
    let mut after = Vec::new();
    let mut retry = RetryOptions::default();
    options(&mut a, origin, &mut at, |k, a| {
        if pair(k, a, origin, ("DELAY_UNTIL", "DELAY"), &mut delay)?
            || pair(k, a, origin, ("DEADLINE", "DEADLINE_IN"), &mut deadline)?
        {
            if deadline == Some(When::In(0)) {
                return Err(CmdError::syntax("DEADLINE_IN must be at least 1 ms"));
            }
            return Ok(true);
        }
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
            b"AFTER" => {
                let u = a.next("AFTER")?;
                let id = ExecId::parse(u, limits.partitions).ok_or_else(|| {
                    CmdError::syntax("AFTER must be an execution id, {fp:N}:<uuid>")
                })?;
                if after.len() >= AFTER_MAX {
                    return Err(CmdError::syntax(format!(
                        "at most {AFTER_MAX} AFTER upstreams; add more with FF.EDGE"
                    )));
                }
                after.push(id);
            }
            b"FLOW" => {
                let f = a.next("FLOW")?;
                flow =
                    Some(ExecId::parse(f, limits.partitions).ok_or_else(|| {
                        CmdError::syntax("FLOW must be a flow id, {fp:N}:<uuid>")
                    })?);
            }
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
    let after = match (flow, after.is_empty()) {
        (_, true) => Vec::new(),
        (None, false) => return Err(CmdError::syntax("AFTER needs FLOW")),
        (Some(f), false) => {
            if after.iter().any(|u| u.partition != f.partition) {
                return Err(CmdError::new(
                    Code::PartitionMismatch,
                    "an AFTER upstream is not in the flow's partition",
                ));
            }
            after.iter().map(|u| u.uuid).collect()
        }
    };
    let target = match (flow, target) {
        (None, t) => t,
        // A member lives in its flow's partition (`*` picks it, where a
        // standalone server takes `*`).
        (Some(_), SubmitTarget::Auto) => target,
        (Some(f), SubmitTarget::Partition(p)) if p == f.partition => target,
        (Some(f), SubmitTarget::Exact(id)) if id.partition == f.partition => target,
        (Some(_), _) => {
            return Err(CmdError::new(
                Code::PartitionMismatch,
                "the target is not the flow's partition",
            ))
        }
    };
    Ok(Submit {
        target,
        spec,
        idempotency_ttl_ms: ttl,
        flow,
        after,
        delay,
        deadline,
        at,
    })
}
