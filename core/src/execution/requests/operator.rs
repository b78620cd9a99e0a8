//! An operator's requests on one execution: FF.REVOKE, FF.PRIORITY,
//! FF.SETTAGS, and FF.REPLAY / FF.BLOCK / FF.UNBLOCK (`Simple`).

use super::{parse_reason, valid_tag_key};
use crate::base::args::{options, parse_exec_id, parse_i64, parse_uuid, pinned, Args, Origin};
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::ids::{ExecId, Uuid};
use crate::base::limits::{Limits, PRIORITY_MAX, TAGS_MAX, TAG_VALUE_MAX_BYTES};
use crate::execution::record::Tags;

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
