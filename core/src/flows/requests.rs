//! The flow commands' requests, parsed (pure and total, like every
//! domain's: a request parses into a value the core applies, or into the
//! error reply). Flow ids are `{fp:N}:<uuid>` like execution ids; every
//! execution named with a flow must be in the flow's partition.

use crate::base::args::{
    check_name, describe, options, parse_exec_id, parse_u64, parse_uuid, valid_tag_key, Args,
    Origin,
};
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::ids::{ExecId, SubmitTarget, Uuid};
use crate::base::limits::{Limits, LIST_COUNT_MAX, TAGS_MAX, TAG_VALUE_MAX_BYTES};
use crate::flows::edge::DependencyKind;
use crate::flows::flow::CancelPolicy;
use crate::flows::group::{OnSatisfied, Policy, PolicyKind, QUORUM_MAX};

fn invalid(m: impl std::fmt::Display) -> CmdError {
    CmdError::new(Code::InvalidInput, m)
}

pub fn parse_flow_id(arg: &[u8], limits: &Limits) -> CmdResult<ExecId> {
    ExecId::parse(arg, limits.partitions).ok_or_else(|| {
        CmdError::syntax(format!(
            "flow id must be {{fp:N}}:<uuid> with N below {}",
            limits.partitions
        ))
    })
}

/// An execution named with a flow: in the flow's partition.
fn member_of(flow: &ExecId, arg: &[u8], limits: &Limits) -> CmdResult<Uuid> {
    let id = parse_exec_id(arg, limits)?;
    if id.partition != flow.partition {
        return Err(CmdError::new(
            Code::PartitionMismatch,
            format!(
                "execution partition {} is not the flow's partition {}",
                id.partition, flow.partition
            ),
        ));
    }
    Ok(id.uuid)
}

/// The time pinned by replication, for requests with no other options.
fn only_at(a: &mut Args, origin: Origin) -> CmdResult<Option<u64>> {
    let mut at = None;
    options(a, origin, &mut at, |_, _| Ok(false))?;
    Ok(at)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateFlow {
    pub target: SubmitTarget,
    pub kind: Box<[u8]>,
    pub namespace: Box<[u8]>,
    pub at: Option<u64>,
}

/// `FF.FLOWCREATE target [KIND k] [NAMESPACE ns]`: target `{fp:N}` (the
/// module mints the id), a full flow id (idempotent), or `*`.
pub fn parse_create_flow(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<CreateFlow> {
    let mut a = Args::new(args);
    let t = a.next("target")?;
    let target = SubmitTarget::parse(t, limits.partitions).ok_or_else(|| {
        CmdError::syntax(format!(
            "target must be *, {{fp:N}} or {{fp:N}}:<uuid> with N below {}",
            limits.partitions
        ))
    })?;
    let (mut kind, mut namespace, mut at) = (Box::default(), Box::default(), None);
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"KIND" => {
                kind = check_name(a.next("KIND")?, "KIND")?;
                true
            }
            b"NAMESPACE" => {
                namespace = check_name(a.next("NAMESPACE")?, "NAMESPACE")?;
                true
            }
            _ => false,
        })
    })?;
    Ok(CreateFlow {
        target,
        kind,
        namespace,
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMember {
    pub flow: ExecId,
    pub member: Uuid,
    pub at: Option<u64>,
}

/// `FF.FLOWADD flow execution`.
pub fn parse_flow_member(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<FlowMember> {
    let mut a = Args::new(args);
    let flow = parse_flow_id(a.next("flow id")?, limits)?;
    let member = member_of(&flow, a.next("execution id")?, limits)?;
    let at = only_at(&mut a, origin)?;
    Ok(FlowMember { flow, member, at })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddEdge {
    pub flow: ExecId,
    pub up: Uuid,
    pub down: Uuid,
    pub id: Option<Uuid>,
    pub kind: DependencyKind,
    pub data_ref: Option<Box<[u8]>>,
    pub revision: Option<u64>,
    pub at: Option<u64>,
}

/// `FF.EDGE flow upstream downstream [EDGE_ID uuid] [KIND success_only]
/// [DATA ref] [REVISION n]`.
pub fn parse_add_edge(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<AddEdge> {
    let mut a = Args::new(args);
    let flow = parse_flow_id(a.next("flow id")?, limits)?;
    let up = member_of(&flow, a.next("upstream id")?, limits)?;
    let down = member_of(&flow, a.next("downstream id")?, limits)?;
    let mut r = AddEdge {
        flow,
        up,
        down,
        id: None,
        kind: DependencyKind::SuccessOnly,
        data_ref: None,
        revision: None,
        at: None,
    };
    let mut at = None;
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"EDGE_ID" => {
                r.id = Some(parse_uuid(a.next("EDGE_ID")?, "EDGE_ID")?);
                true
            }
            b"KIND" => {
                let v = a.next("KIND")?;
                r.kind = DependencyKind::parse(v).ok_or_else(|| {
                    invalid(format!("unsupported dependency kind: {}", describe(v)))
                })?;
                true
            }
            b"DATA" => {
                let v = a.next("DATA")?;
                if v.is_empty() || v.len() > TAG_VALUE_MAX_BYTES {
                    return Err(invalid(format!(
                        "DATA must be 1 to {TAG_VALUE_MAX_BYTES} bytes"
                    )));
                }
                r.data_ref = Some(v.into());
                true
            }
            b"REVISION" => {
                r.revision = Some(a.next_u64("REVISION", u64::MAX)?);
                true
            }
            _ => false,
        })
    })?;
    r.at = at;
    Ok(r)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetPolicy {
    pub flow: ExecId,
    pub down: Uuid,
    pub policy: Policy,
    pub at: Option<u64>,
}

/// `FF.EDGEPOLICY flow downstream ALL_OF | ANY_OF on_satisfied |
/// QUORUM k on_satisfied`, where on_satisfied is `cancel_remaining` or
/// `let_run`.
pub fn parse_set_policy(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<SetPolicy> {
    let mut a = Args::new(args);
    let flow = parse_flow_id(a.next("flow id")?, limits)?;
    let down = member_of(&flow, a.next("downstream id")?, limits)?;
    let v = a.next("policy")?;
    let kind = PolicyKind::parse(v)
        .ok_or_else(|| invalid(format!("unsupported_policy_variant: {}", describe(v))))?;
    let k = match kind {
        PolicyKind::Quorum => {
            let k = parse_u64(a.next("quorum k")?, "quorum k", u64::MAX)?;
            if k == 0 {
                return Err(invalid("quorum k must be >= 1"));
            }
            if k > u64::from(QUORUM_MAX) {
                return Err(invalid(format!(
                    "quorum k exceeds supported maximum {QUORUM_MAX}"
                )));
            }
            u32::try_from(k).unwrap_or(QUORUM_MAX)
        }
        PolicyKind::AnyOf => 1,
        PolicyKind::AllOf => 0,
    };
    let on_satisfied = match kind {
        PolicyKind::AllOf => OnSatisfied::LetRun,
        _ => {
            let on = a.peek().and_then(OnSatisfied::parse).ok_or_else(|| {
                invalid("on_satisfied required for any_of/quorum: cancel_remaining | let_run")
            })?;
            a.next("on_satisfied")?;
            on
        }
    };
    let at = only_at(&mut a, origin)?;
    Ok(SetPolicy {
        flow,
        down,
        policy: Policy {
            kind,
            k,
            on_satisfied,
        },
        at,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelFlow {
    pub flow: ExecId,
    pub policy: CancelPolicy,
    pub reason: Box<[u8]>,
    pub at: Option<u64>,
}

/// The reason a cancelled flow's members carry unless the caller gives
/// one.
pub const FLOW_CANCELLED: &[u8] = b"flow_cancelled";

/// `FF.CANCELFLOW flow [POLICY cancel_all|cancel_pending|flow_only]
/// [REASON r]` (the policy defaults to cancel_all).
pub fn parse_cancel_flow(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<CancelFlow> {
    let mut a = Args::new(args);
    let flow = parse_flow_id(a.next("flow id")?, limits)?;
    let mut r = CancelFlow {
        flow,
        policy: CancelPolicy::CancelAll,
        reason: FLOW_CANCELLED.into(),
        at: None,
    };
    let mut at = None;
    options(&mut a, origin, &mut at, |k, a| {
        Ok(match k {
            b"POLICY" => {
                let v = a.next("POLICY")?;
                r.policy = CancelPolicy::parse(v).ok_or_else(|| {
                    invalid(format!("unknown cancellation policy: {}", describe(v)))
                })?;
                true
            }
            b"REASON" => {
                let v = a.next("REASON")?;
                if v.is_empty() || v.len() > TAG_VALUE_MAX_BYTES {
                    return Err(CmdError::syntax(format!(
                        "REASON must be 1 to {TAG_VALUE_MAX_BYTES} bytes"
                    )));
                }
                r.reason = v.into();
                true
            }
            _ => false,
        })
    })?;
    r.at = at;
    Ok(r)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTags {
    pub flow: ExecId,
    pub tags: crate::execution::Tags,
    pub at: Option<u64>,
}

/// `FF.FLOWSETTAGS flow key value [key value ...]`.
pub fn parse_flow_tags(args: &[&[u8]], limits: &Limits, origin: Origin) -> CmdResult<FlowTags> {
    let mut a = Args::new(args);
    let flow = parse_flow_id(a.next("flow id")?, limits)?;
    let (mut tags, mut at) = (Vec::new(), None);
    while let Some(k) = a.peek() {
        a.next("tag key")?;
        if k == b"AT" {
            crate::base::args::pinned(&mut a, origin, "AT", &mut at)?;
            continue;
        }
        let Some(v) = a.peek() else {
            return Err(invalid(
                "tags must be non-empty even-length key/value pairs",
            ));
        };
        a.next("tag value")?;
        if !valid_tag_key(k) {
            return Err(CmdError::new(
                Code::InvalidTagKey,
                format!("invalid_tag_key {}", describe(k)),
            ));
        }
        if v.len() > TAG_VALUE_MAX_BYTES {
            return Err(CmdError::syntax(format!(
                "tag values are at most {TAG_VALUE_MAX_BYTES} bytes"
            )));
        }
        tags.push((k.into(), v.into()));
    }
    if tags.is_empty() {
        return Err(invalid(
            "tags must be non-empty even-length key/value pairs",
        ));
    }
    if tags.len() > TAGS_MAX {
        return Err(CmdError::syntax(format!("at most {TAGS_MAX} tags")));
    }
    Ok(FlowTags { flow, tags, at })
}

/// `FF.EDGEGET flow edge_id`.
pub fn parse_edge_ref(args: &[&[u8]], limits: &Limits) -> CmdResult<(ExecId, Uuid)> {
    match args {
        [f, e] => Ok((parse_flow_id(f, limits)?, parse_uuid(e, "edge id")?)),
        _ => Err(CmdError::syntax("wrong number of arguments")),
    }
}

/// Which side of an execution `FF.EDGES` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    In,
    Out,
}

/// `FF.EDGES flow execution IN|OUT`, and `FF.EDGEGROUP flow execution`
/// (no side).
pub fn parse_edges_of(
    args: &[&[u8]],
    limits: &Limits,
    with_side: bool,
) -> CmdResult<(ExecId, Uuid, Side)> {
    let mut a = Args::new(args);
    let flow = parse_flow_id(a.next("flow id")?, limits)?;
    let member = member_of(&flow, a.next("execution id")?, limits)?;
    let side = if with_side {
        let v = a.next("IN or OUT")?;
        if v.eq_ignore_ascii_case(b"IN") {
            Side::In
        } else if v.eq_ignore_ascii_case(b"OUT") {
            Side::Out
        } else {
            return Err(CmdError::syntax("side must be IN or OUT"));
        }
    } else {
        Side::In
    };
    if !a.is_done() {
        return Err(CmdError::syntax("too many arguments"));
    }
    Ok((flow, member, side))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowsPage {
    pub partition: u16,
    pub after: Option<Uuid>,
    pub count: usize,
}

/// `FF.FLOWS {fp:N} [AFTER flow] [COUNT n]` (COUNT ≤ 10,000, default 100).
pub fn parse_flows_page(args: &[&[u8]], limits: &Limits) -> CmdResult<FlowsPage> {
    let mut a = Args::new(args);
    let t = a.next("partition")?;
    let partition = match SubmitTarget::parse(t, limits.partitions) {
        Some(SubmitTarget::Partition(p)) => p,
        _ => {
            return Err(CmdError::syntax(format!(
                "partition must be {{fp:N}} with N below {}",
                limits.partitions
            )))
        }
    };
    let mut page = FlowsPage {
        partition,
        after: None,
        count: 100,
    };
    let mut at = None;
    options(&mut a, Origin::Client, &mut at, |k, a| {
        Ok(match k {
            b"AFTER" => {
                let v = a.next("AFTER")?;
                let id = parse_flow_id(v, limits)?;
                if id.partition != partition {
                    return Err(CmdError::syntax("AFTER names a flow of another partition"));
                }
                page.after = Some(id.uuid);
                true
            }
            b"COUNT" => {
                let n = a.next_u64("COUNT", LIST_COUNT_MAX)?;
                if n == 0 {
                    return Err(CmdError::syntax("COUNT must be at least 1"));
                }
                page.count = usize::try_from(n).unwrap_or(1);
                true
            }
            _ => false,
        })
    })?;
    Ok(page)
}
