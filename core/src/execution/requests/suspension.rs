//! Requests of the suspension commands: FF.SUSPEND, FF.WAITPOINT,
//! FF.SIGNAL, FF.APPROVE, FF.WAKE, FF.CLOSEWP and the reads by
//! execution and waitpoint.

use super::exec_and_fence;
use crate::base::args::{options, parse_exec_id, parse_uuid, Args, Origin};
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::ids::{ExecId, Uuid};
use crate::base::limits::{Limits, NAME_MAX_BYTES, TTL_MAX_MS};
pub use crate::base::limits::{
    DEDUP_TTL_MS, PENDING_TTL_MS, SIGNALS_MAX, SIGNAL_PAYLOAD_MAX, WAITPOINTS_MAX,
};
use crate::base::time::pair;
use crate::execution::attempt::Fence;
use crate::suspension::condition::{parse_condition, Condition};
use crate::suspension::record::TimeoutBehavior;

fn name(a: &mut Args, what: &str, allow_empty: bool) -> CmdResult<Box<[u8]>> {
    let v = a.next(what)?;
    if (!allow_empty && v.is_empty()) || v.len() > NAME_MAX_BYTES {
        return Err(CmdError::syntax(format!(
            "{what} must be {} to {NAME_MAX_BYTES} bytes",
            u8::from(!allow_empty)
        )));
    }
    Ok(v.into())
}

/// One of a suspension's waitpoints: a fresh one with this key, or a
/// pending one made earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitpointSpec {
    Fresh(Box<[u8]>),
    Pending(Uuid),
}

/// When the timeout falls: absolute, or after the suspend.
pub use crate::base::time::When as Timeout;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspend {
    pub id: ExecId,
    pub fence: Fence,
    pub suspension_id: Option<Uuid>,
    pub waitpoints: Vec<WaitpointSpec>,
    pub reason: Box<[u8]>,
    /// `None`: any signal on the primary waitpoint. Keys left empty by
    /// `SIGNAL`/`ANY` mean the primary waitpoint's.
    pub condition: Option<Condition>,
    pub timeout: Option<Timeout>,
    pub behavior: TimeoutBehavior,
    pub resume_delay_ms: u64,
    pub idempotency: Option<Box<[u8]>>,
    pub at: Option<u64>,
}

/// `FF.SUSPEND id lease_id lease_epoch attempt_id [REASON code]
/// [WAITPOINT key]... [PENDING waitpoint_id]... [CONDITION ...]
/// [TIMEOUT ms | TIMEOUT_AT ms] [ON_TIMEOUT behavior] [RESUME_DELAY ms]
/// [IDEMPOTENCY key] [SUSPENSION_ID uuid]`.
pub fn parse_suspend(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Suspend> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let mut r = Suspend {
        id,
        fence,
        suspension_id: None,
        waitpoints: Vec::new(),
        reason: b"waiting_for_signal"[..].into(),
        condition: None,
        timeout: None,
        behavior: TimeoutBehavior::Fail,
        resume_delay_ms: 0,
        idempotency: None,
        at: None,
    };
    let mut at = None;
    options(&mut a, origin, &mut at, |k, a| {
        if pair(k, a, origin, ("TIMEOUT_AT", "TIMEOUT"), &mut r.timeout)? {
            return Ok(true);
        }
        match k {
            b"REASON" => r.reason = name(a, "REASON", false)?,
            b"WAITPOINT" => {
                r.waitpoints
                    .push(WaitpointSpec::Fresh(name(a, "waitpoint key", false)?))
            }
            b"PENDING" => r.waitpoints.push(WaitpointSpec::Pending(parse_uuid(
                a.next("PENDING")?,
                "PENDING",
            )?)),
            b"CONDITION" => r.condition = Some(parse_condition(a, b"")?),
            b"ON_TIMEOUT" => {
                r.behavior = TimeoutBehavior::from_arg(a.next("ON_TIMEOUT")?).ok_or_else(|| {
                    CmdError::syntax("ON_TIMEOUT is fail, cancel, expire, auto_resume or escalate")
                })?
            }
            b"RESUME_DELAY" => r.resume_delay_ms = a.next_u64("RESUME_DELAY", TTL_MAX_MS)?,
            b"IDEMPOTENCY" => r.idempotency = Some(name(a, "IDEMPOTENCY", false)?),
            b"SUSPENSION_ID" => {
                r.suspension_id = Some(parse_uuid(a.next("SUSPENSION_ID")?, "SUSPENSION_ID")?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    r.at = at;
    if r.waitpoints.len() > WAITPOINTS_MAX {
        return Err(CmdError::new(
            Code::InvalidInput,
            format!("a suspension has at most {WAITPOINTS_MAX} waitpoints"),
        ));
    }
    Ok(r)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateWaitpoint {
    pub id: ExecId,
    pub fence: Fence,
    pub key: Option<Box<[u8]>>,
    pub waitpoint_id: Option<Uuid>,
    pub expires: Timeout,
    pub at: Option<u64>,
}

/// `FF.WAITPOINT id lease_id lease_epoch attempt_id [KEY key]
/// [EXPIRES_IN ms | EXPIRES_AT ms] [WAITPOINT_ID uuid]`.
pub fn parse_create_waitpoint(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
) -> CmdResult<CreateWaitpoint> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let mut r = CreateWaitpoint {
        id,
        fence,
        key: None,
        waitpoint_id: None,
        expires: Timeout::In(PENDING_TTL_MS),
        at: None,
    };
    let (mut at, mut expires) = (None, None);
    options(&mut a, origin, &mut at, |k, a| {
        if pair(k, a, origin, ("EXPIRES_AT", "EXPIRES_IN"), &mut expires)? {
            return Ok(true);
        }
        match k {
            b"KEY" => r.key = Some(name(a, "KEY", false)?),
            b"WAITPOINT_ID" => {
                r.waitpoint_id = Some(parse_uuid(a.next("WAITPOINT_ID")?, "WAITPOINT_ID")?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    r.at = at;
    if let Some(e) = expires {
        r.expires = e;
    }
    Ok(r)
}

/// A signal as a sender describes it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SignalIn {
    pub name: Box<[u8]>,
    pub category: Box<[u8]>,
    pub source_type: Box<[u8]>,
    pub source_identity: Box<[u8]>,
    pub correlation: Box<[u8]>,
    pub payload: Option<Box<[u8]>>,
    pub idempotency: Option<Box<[u8]>>,
    pub dedup_ttl_ms: u64,
    pub resume_delay_ms: Option<u64>,
    pub signal_id: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deliver {
    pub id: ExecId,
    pub waitpoint: Uuid,
    /// `None` for an operator's approval (FF.APPROVE).
    pub token: Option<Box<[u8]>>,
    pub lane: Option<Box<[u8]>>,
    pub signal: SignalIn,
    pub at: Option<u64>,
}

/// `FF.SIGNAL id waitpoint_id token name [PAYLOAD bytes] [CATEGORY c]
/// [SOURCE type identity] [CORRELATION id] [IDEMPOTENCY key]
/// [DEDUP_TTL ms] [RESUME_DELAY ms] [SIGNAL_ID uuid]`; with `approval`
/// (FF.APPROVE) there is no token and the options are
/// `[IDEMPOTENCY suffix] [LANE lane] [DEDUP_TTL ms] [SIGNAL_ID uuid]`.
pub fn parse_deliver(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
    approval: bool,
) -> CmdResult<Deliver> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let waitpoint = parse_uuid(a.next("waitpoint id")?, "waitpoint id")?;
    let token = if approval {
        None
    } else {
        let t = a.next("token")?;
        if t.len() > 256 {
            return Err(CmdError::new(Code::InvalidToken, "the token is too long"));
        }
        Some(t.into())
    };
    let mut s = SignalIn {
        name: name(&mut a, "signal name", false)?,
        dedup_ttl_ms: DEDUP_TTL_MS,
        ..SignalIn::default()
    };
    let mut lane = None;
    let mut at = None;
    let max_payload = SIGNAL_PAYLOAD_MAX.min(limits.max_payload_bytes.max(1));
    options(&mut a, origin, &mut at, |k, a| {
        match k {
            b"PAYLOAD" if !approval => {
                let p = a.next("PAYLOAD")?;
                if p.len() > max_payload {
                    return Err(CmdError::new(
                        Code::PayloadTooLarge,
                        format!("a signal payload is at most {max_payload} bytes"),
                    ));
                }
                s.payload = Some(p.into());
            }
            b"CATEGORY" if !approval => s.category = name(a, "CATEGORY", true)?,
            b"SOURCE" if !approval => {
                s.source_type = name(a, "source type", true)?;
                s.source_identity = name(a, "source identity", true)?;
            }
            b"CORRELATION" if !approval => s.correlation = name(a, "CORRELATION", true)?,
            b"RESUME_DELAY" if !approval => {
                s.resume_delay_ms = Some(a.next_u64("RESUME_DELAY", TTL_MAX_MS)?)
            }
            b"IDEMPOTENCY" => s.idempotency = Some(name(a, "IDEMPOTENCY", false)?),
            b"DEDUP_TTL" => s.dedup_ttl_ms = a.next_u64("DEDUP_TTL", TTL_MAX_MS)?,
            b"LANE" if approval => lane = Some(name(a, "LANE", false)?),
            b"SIGNAL_ID" => s.signal_id = Some(parse_uuid(a.next("SIGNAL_ID")?, "SIGNAL_ID")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if approval {
        s.category = b"approval"[..].into();
        s.source_type = b"operator"[..].into();
        if let Some(suffix) = s.idempotency.take() {
            let mut k = b"approval:".to_vec();
            k.extend_from_slice(&s.name);
            k.push(b':');
            k.extend_from_slice(&suffix);
            s.idempotency = Some(k.into());
        }
    }
    Ok(Deliver {
        id,
        waitpoint,
        token,
        lane,
        signal: s,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wake {
    pub id: ExecId,
    pub resume_delay_ms: u64,
    pub at: Option<u64>,
}

/// `FF.WAKE id [RESUME_DELAY ms]`.
pub fn parse_wake(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<Wake> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let (mut delay, mut at) = (0, None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"RESUME_DELAY" => {
                delay = a.next_u64("RESUME_DELAY", TTL_MAX_MS)?;
                true
            }
            _ => false,
        })
    })?;
    Ok(Wake {
        id,
        resume_delay_ms: delay,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitpointRef {
    pub id: ExecId,
    pub waitpoint: Uuid,
    pub at: Option<u64>,
}

/// `FF.CLOSEWP id waitpoint_id`, `FF.WPTOKEN id waitpoint_id`.
pub fn parse_waitpoint_ref(
    args: &[&[u8]],
    limits: &Limits,
    origin: Origin,
) -> CmdResult<WaitpointRef> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let waitpoint = parse_uuid(a.next("waitpoint id")?, "waitpoint id")?;
    let mut at = None;
    options(&mut a, origin, &mut at, |_, _| Ok(false))?;
    Ok(WaitpointRef { id, waitpoint, at })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotate {
    pub kid: Box<[u8]>,
    pub secret_hex: Box<[u8]>,
    pub grace_ms: u64,
    pub at: Option<u64>,
}

/// `FF.ROTATESECRET kid secret_hex [GRACE ms]` (the default grace is a
/// day, the reference server's).
pub fn parse_rotate(args: &[&[u8]], origin: Origin) -> CmdResult<Rotate> {
    let mut a = Args::new(args);
    let kid = a.next("kid")?.into();
    let secret_hex = a.next("secret")?.into();
    let (mut grace, mut at) = (86_400_000, None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"GRACE" => {
                let v = a.next("GRACE")?;
                grace = crate::base::args::parse_u64(v, "GRACE", u64::MAX).map_err(|_| {
                    CmdError::new(Code::InvalidGraceMs, "GRACE must be 0 to 2^53-1 ms")
                })?;
                true
            }
            _ => false,
        })
    })?;
    Ok(Rotate {
        kid,
        secret_hex,
        grace_ms: grace,
        at,
    })
}
