//! Property tests of every request parser and every decoder, on random
//! and on mutated input: none panics, and whatever decodes encodes back to
//! the same bytes. Partitions come from random histories of executions and
//! flows, their flow work drained a few units after every step (so
//! cascades are often left half done): they round-trip, and a reloaded
//! copy finishes the flow work as the live partition does.
//!
//! 256 cases per property by default; `PROPTEST_CASES=1000000 cargo test
//! --release -p flowfabric-core --test properties` runs a million each.

use std::sync::Arc;

use flowfabric_core::base::args::{parse_exec_id, Origin};
use flowfabric_core::base::blob::Blob;
use flowfabric_core::base::caps::CapSet;
use flowfabric_core::base::codec::{Reader, Writer};
use flowfabric_core::base::ids::{ExecId, SubmitTarget, Uuid};
use flowfabric_core::base::limits::Limits;
use flowfabric_core::claims::requests::parse_claim_with;
use flowfabric_core::execution::requests::{self as ex, Acquire};
use flowfabric_core::execution::{Execution, Failure, Fence, Grant};
use flowfabric_core::flows::requests as fr;
use flowfabric_core::flows::{DependencyKind, EdgeState, Flow, GroupState};
use flowfabric_core::partition::cascade::CASCADE_BUDGET;
use flowfabric_core::partition::codec::Layout;
use flowfabric_core::partition::flow_ops::NewEdge;
use flowfabric_core::partition::moves::{self, Env, Op};
use flowfabric_core::partition::requests::{parse_due, parse_list, partition_of_key};
use flowfabric_core::partition::Partition;
use flowfabric_core::streams::{EntryId, FrameMode, Mode};
use flowfabric_core::suspension::WaitpointState;
use flowfabric_core::workers::requests::{parse_register, split_pinned_at};
use flowfabric_core::workers::{NodeState, Registry, Worker};
use proptest::prelude::*;

/// When histories start: 2023-11-14, in unix ms.
const T0: u64 = 1_700_000_000_000;

const LIMITS: Limits = Limits {
    partitions: 8,
    max_payload_bytes: 64,
    default_lease_ms: 30_000,
    retention_ms: 1_000,
    max_reclaims: 3,
};

// ---- arguments --------------------------------------------------------

const UUID: &str = "00000000-0000-4000-8000-00000000002a";
const UUID2: &str = "00000000-0000-4000-8000-00000000002b";
/// A flow id and two member ids in partition 3 (the parsers also see
/// them split, `{fp:3}` then the uuid, and joined again).
const FID: &str = "{fp:3}:00000000-0000-4000-8000-00000000002a";
const M1: &str = "{fp:3}:00000000-0000-4000-8000-00000000002b";
const M2: &str = "{fp:3}:00000000-0000-4000-8000-00000000002c";

/// Words the parsers look for, and values that sit on their edges.
const WORDS: &[&str] = &[
    "AT",
    "ATTEMPT_TIMEOUT",
    "BACKOFF",
    "BLOCK",
    "CAPS",
    "COUNT",
    "CURSOR",
    "DEADLINE",
    "DEADLINE_IN",
    "DELAY",
    "DELAY_UNTIL",
    "FOR",
    "TIMEOUT_AT",
    "EXPIRES_AT",
    "CATEGORY",
    "NON_RETRYABLE",
    "permanent",
    "EXPONENTIAL",
    "FENCE",
    "FIXED",
    "IDEMPOTENCY",
    "JITTER",
    "KIND",
    "LANE",
    "LANES",
    "LEASE",
    "MAX_RETRIES",
    "MESSAGE",
    "NAMESPACE",
    "PRIORITY",
    "REASON",
    "RESULT",
    "RETRY_AT",
    "STATE",
    "TAG",
    "MAX_RECLAIMS",
    "NOREVOKE",
    "at",
    "lease",
    "0",
    "1",
    "-1",
    "7",
    "100",
    "2.5",
    "1.0001",
    "0.5",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "99999999999",
    "100000000000",
    "1700000000000",
    "-9223372036854775808",
    "99999999999999999999999",
    "1e3",
    "",
    " ",
    "*",
    "{fp:0}",
    "{fp:7}",
    "{fp:8}",
    "{fp:07}",
    "{fp:-1}",
    "{fp:}",
    "ff:idx:{fp:3}",
    "ff:idx:{fp:9}",
    "gpu",
    "gpu,cuda",
    ",",
    "gpu,,x",
    "a.b",
    "app.x",
    "waiting",
    "active",
    "completed",
    "q",
    "email",
    UUID,
    "00000000-0000-4000-8000-00000000002A",
    "{fp:3}:00000000-0000-4000-8000-00000000002a",
    "{fp:3}:zz",
    "\u{0}",
    "é",
    // Flows.
    "FLOW",
    "AFTER",
    "EDGE_ID",
    "DATA",
    "REVISION",
    "POLICY",
    "all_of",
    "ANY_OF",
    "quorum",
    "cancel_remaining",
    "let_run",
    "cancel_all",
    "cancel_pending",
    "flow_only",
    "success_only",
    "IN",
    "out",
    "10000",
    "10001",
    UUID2,
    M1,
    "{fp:4}:00000000-0000-4000-8000-00000000002b",
];

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::sample::select(WORDS).prop_map(|w| w.as_bytes().to_vec()),
        2 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => proptest::collection::vec(any::<u8>(), 60..80),
    ]
}

fn args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(arg(), 0..18)
}

/// Valid calls of every parser, to be mutated.
const SEEDS: &[&[&str]] = &[
    &[
        "{fp:3}",
        "q",
        "p",
        "PRIORITY",
        "5",
        "KIND",
        "k",
        "NAMESPACE",
        "n",
        "CAPS",
        "gpu",
        "TAG",
        "a.b",
        "v",
        "DELAY_UNTIL",
        "1700000000010",
        "DEADLINE",
        "1700000000020",
        "ATTEMPT_TIMEOUT",
        "5",
        "IDEMPOTENCY",
        "key",
        "100",
        "MAX_RETRIES",
        "3",
        "BACKOFF",
        "EXPONENTIAL",
        "10",
        "1000",
        "2.5",
        "JITTER",
    ],
    &["*", "q", "p", "BACKOFF", "FIXED", "50", "AT", "7"],
    &["*", "q", "p", "DELAY", "10", "DEADLINE_IN", "20", "AT", "7"],
    &["{fp:3}", UUID, UUID, "1", UUID, "FOR", "5", "AT", "9"],
    &["{fp:3}", UUID, UUID, "1", UUID, "1700000000000"],
    &[
        "{fp:3}",
        UUID,
        UUID,
        "1",
        UUID,
        "REASON",
        "r",
        "CATEGORY",
        "permanent",
        "NON_RETRYABLE",
    ],
    &["{fp:3}", UUID, UUID, "1", UUID, "LEASE", "500", "AT", "9"],
    &[
        "{fp:3}", UUID, UUID, "1", UUID, "RESULT", "done", "REASON", "r", "RETRY_AT", "4",
    ],
    &[
        "{fp:3}", UUID, "LEASE", UUID, "REASON", "why", "FENCE", UUID, "1", UUID,
    ],
    &[
        "{fp:3}", "w", "i", "2", "q", "r", "CAPS", "gpu,cuda", "LEASE", "100", "BLOCK", "0",
    ],
    &[
        "i", "w", "1000", "CAPS", "gpu", "LANES", "2", "q", "r", "AT", "5",
    ],
    &[
        "{fp:3}", "STATE", "waiting", "LANE", "q", "CURSOR", "3", "COUNT", "10",
    ],
    &["ff:idx:{fp:3}", "100", "10", "1000", "3"],
    &[
        "{fp:3}",
        UUID,
        UUID,
        "1",
        UUID,
        "WAITPOINT",
        "x",
        "WAITPOINT",
        "y",
        "CONDITION",
        "ALLOF",
        "2",
        "ONE",
        "x",
        "NAME",
        "a",
        "COUNT",
        "2",
        "SOURCES",
        "ANY",
        "1",
        "y",
        "TIMEOUT",
        "5",
        "ON_TIMEOUT",
        "escalate",
        "IDEMPOTENCY",
        "k",
        "PENDING",
        UUID,
    ],
    &[
        "{fp:3}",
        UUID,
        UUID,
        "k1:00",
        "name",
        "PAYLOAD",
        "p",
        "SOURCE",
        "t",
        "i",
        "IDEMPOTENCY",
        "d",
        "DEDUP_TTL",
        "5",
        "RESUME_DELAY",
        "3",
        "SIGNAL_ID",
        UUID,
    ],
    &[
        "k1",
        "00112233445566778899aabbccddeeff",
        "GRACE",
        "5",
        "AT",
        "3",
    ],
    &[
        "{fp:3}", "42", "MESSAGE", "half", "TAG", "a.b", "c", "AT", "1",
    ],
];

/// Valid calls of the flow parsers: FF.FLOWCREATE, FF.FLOWADD, FF.EDGE,
/// FF.EDGEPOLICY, FF.CANCELFLOW, FF.FLOWSETTAGS, FF.EDGEGET, FF.EDGES and
/// FF.EDGEGROUP, FF.FLOWS, and FF.SUBMIT into a flow after its members.
const FLOW_SEEDS: &[&[&str]] = &[
    &["{fp:3}", "KIND", "k", "NAMESPACE", "n", "AT", "5"],
    &[FID, "KIND", "k"],
    &["*", "NAMESPACE", "n"],
    &[FID, M1, "AT", "3"],
    &["{fp:3}", UUID, M1],
    &[
        FID,
        M1,
        M2,
        "EDGE_ID",
        UUID2,
        "KIND",
        "success_only",
        "DATA",
        "d",
        "REVISION",
        "4",
        "AT",
        "9",
    ],
    &["{fp:3}", UUID, M1, M2, "REVISION", "0"],
    &[FID, M2, "quorum", "2", "cancel_remaining", "AT", "1"],
    &[FID, M2, "any_of", "let_run"],
    &[FID, M2, "all_of"],
    &["{fp:3}", UUID, M2, "QUORUM", "10000", "LET_RUN"],
    &[FID, "POLICY", "cancel_pending", "REASON", "why", "AT", "2"],
    &["{fp:3}", UUID, "POLICY", "flow_only"],
    &[FID, "a.b", "v", "c.d", "", "AT", "4"],
    &["{fp:3}", UUID, "x.y", "z"],
    &[FID, UUID2],
    &[FID, M1, "IN"],
    &[FID, M1, "OUT"],
    &[FID, M1],
    &["{fp:3}", "AFTER", FID, "COUNT", "10"],
    &["{fp:3}", "COUNT", "10000"],
    &[
        "{fp:3}", "q", "p", "FLOW", FID, "AFTER", M1, "AFTER", M2, "PRIORITY", "2", "AT", "3",
    ],
    &["*", "q", "p", "AFTER", M1, "FLOW", FID],
    &["{fp:3}", UUID, "q", "p", "FLOW", FID, "AFTER", M1],
];

/// The first two arguments joined as `{fp:N}:uuid` when they look like a
/// split id, so fenced and flow parsers get further.
fn joined(v: &[Vec<u8>]) -> Vec<Vec<u8>> {
    match v {
        [p, u, rest @ ..] if p.starts_with(b"{fp:") => {
            let mut id = p.clone();
            id.push(b':');
            id.extend_from_slice(u);
            std::iter::once(id).chain(rest.iter().cloned()).collect()
        }
        _ => v.to_vec(),
    }
}

/// Every parser, on one argument list and origin; each returns whether it
/// accepted (only not panicking matters).
fn parse_all(v: &[Vec<u8>], replicated: bool) {
    let a: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
    let a = a.as_slice();
    let o = if replicated {
        Origin::Replicated
    } else {
        Origin::Client
    };
    let keep = |_: usize, p: &[u8]| Blob::copy(p);
    // Ids and fences take the execution id as `{fp:N}:uuid`: join the
    // first two arguments half the time so fenced parsers get further.
    let joined = joined(v);
    let j: Vec<&[u8]> = joined.iter().map(Vec::as_slice).collect();
    for a in [a, j.as_slice()] {
        let _ = ex::parse_submit_keeping(a, &LIMITS, o, keep, |l: &str| Arc::from(l));
        for with_lease in [true, false] {
            let _ = ex::parse_renew(a, &LIMITS, o, with_lease);
        }
        let _ = ex::parse_complete(a, &LIMITS, o, keep);
        let _ = ex::parse_fail(a, &LIMITS, o);
        let _ = ex::parse_cancel(a, &LIMITS, o);
        let _ = ex::parse_delay(a, &LIMITS, o);
        let _ = ex::parse_revoke(a, &LIMITS, o);
        let _ = ex::parse_priority(a, &LIMITS, o);
        let _ = ex::parse_progress(a, &LIMITS, o);
        let _ = ex::parse_set_tags(a, &LIMITS, o);
        for with_reason in [true, false] {
            let _ = ex::parse_simple(a, &LIMITS, o, with_reason);
        }
        let _ = ex::parse_acquire(a, &LIMITS);
        let _ = parse_claim_with(a, &LIMITS, CapSet::parse_worker);
        let _ = parse_list(a, &LIMITS);
        let _ = parse_due(a, &LIMITS);
        let _ = ex::parse_suspend(a, &LIMITS, o);
        let _ = ex::parse_create_waitpoint(a, &LIMITS, o);
        for approval in [true, false] {
            let _ = ex::parse_deliver(a, &LIMITS, o, approval);
        }
        let _ = ex::parse_wake(a, &LIMITS, o);
        let _ = ex::parse_waitpoint_ref(a, &LIMITS, o);
        let _ = ex::parse_rotate(a, o);
        let _ = ex::parse_append(a, &LIMITS, o);
        let _ = ex::parse_frames(a, &LIMITS);
        let _ = ex::parse_summary(a, &LIMITS);
        let _ = fr::parse_create_flow(a, &LIMITS, o);
        let _ = fr::parse_flow_member(a, &LIMITS, o);
        let _ = fr::parse_add_edge(a, &LIMITS, o);
        let _ = fr::parse_set_policy(a, &LIMITS, o);
        let _ = fr::parse_cancel_flow(a, &LIMITS, o);
        let _ = fr::parse_flow_tags(a, &LIMITS, o);
        let _ = fr::parse_edge_ref(a, &LIMITS);
        for with_side in [true, false] {
            let _ = fr::parse_edges_of(a, &LIMITS, with_side);
        }
        let _ = fr::parse_flows_page(a, &LIMITS);
        if let Ok((rest, _)) = split_pinned_at(a, o) {
            let _ = parse_register(rest);
        }
        for x in a {
            let _ = parse_exec_id(x, &LIMITS);
            let _ = partition_of_key(x, LIMITS.partitions);
            let _ = SubmitTarget::parse(x, LIMITS.partitions);
            let _ = CapSet::parse_required(x);
            let _ = CapSet::parse_worker(x);
            let _ = ex::parse_lease(x);
            let _ = fr::parse_flow_id(x, &LIMITS);
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Replace(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Remove(usize),
    Truncate(usize),
    Duplicate(usize),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), arg()).prop_map(|(i, a)| Mutation::Replace(i, a)),
        (any::<usize>(), arg()).prop_map(|(i, a)| Mutation::Insert(i, a)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
    ]
}

fn mutate_args(v: &mut Vec<Vec<u8>>, m: &Mutation) {
    let n = v.len().max(1);
    match m {
        Mutation::Replace(i, a) if !v.is_empty() => v[i % n] = a.clone(),
        Mutation::Insert(i, a) => v.insert(i % (v.len() + 1), a.clone()),
        Mutation::Remove(i) if !v.is_empty() => {
            v.remove(i % n);
        }
        Mutation::Truncate(i) => v.truncate(i % (v.len() + 1)),
        Mutation::Duplicate(i) if !v.is_empty() => {
            let x = v[i % n].clone();
            v.insert(i % n, x);
        }
        Mutation::Swap(i, j) if !v.is_empty() => v.swap(i % n, j % n),
        _ => {}
    }
}

// ---- encodings --------------------------------------------------------

/// One step of a partition's history.
#[derive(Clone, Debug)]
enum Step {
    Submit(Vec<Vec<u8>>),
    Claim(u8),
    Renew(u8),
    Complete(u8, bool),
    /// A failure retried after a delay or not, classified: 0 not, 1
    /// transient, 2 permanent, 3 an application's category made
    /// non-retryable.
    Fail(u8, Option<u64>, u8),
    Cancel(u8),
    Delay(u8, u64),
    Revoke(u8),
    Priority(u8, u16),
    Progress(u8, u8),
    Tags(u8),
    Operate(u8, u8),
    Due(u64),
    Tick(u64),
    /// Suspend with condition variant, timeout and behaviour.
    Suspend(u8, u8, Option<u64>, u8),
    /// A pending waitpoint.
    Pending(u8),
    /// A signal to the execution's waitpoint (by position), with a name.
    Signal(u8, u8, u8),
    Wake(u8),
    CloseWp(u8, u8),
    /// A frame in mode 0 (durable), 1 (summary) or 2 (best effort).
    Append(u8, u8),
    /// A flow in partition 3: variant 0 plain, 1 with a kind, 2 with a
    /// kind and namespace, 3 an existing flow's id again (a retry).
    CreateFlow(u8),
    /// A recorded execution (by position) joins a flow (by position).
    Join(u8, u8),
    /// A submit into a flow (by position) after some of its members (by
    /// position), as the shell runs it: checked, admitted, joined, edged.
    SubmitInto(Vec<Vec<u8>>, u8, Vec<u8>),
    /// An edge in a flow between two of its members (positions), with a
    /// data ref or not, and a revision variant: 0 unchecked, 1 the flow's
    /// revision, 2 a stale one, 3 an edge id already in the flow.
    Edge(u8, u8, u8, bool, u8),
    /// A policy on a member of a flow: kind 0 all_of, 1 any_of, 2 quorum
    /// of k, and cancel_remaining or let_run.
    Policy(u8, u8, u8, u8, bool),
    /// A submit into a flow (options, flow by position), a policy on the
    /// new member (as `Policy`'s), then edges into it from some members
    /// (the first with a data ref).
    FanIn(Vec<Vec<u8>>, u8, Vec<u8>, (u8, u8, bool)),
    /// Tags on a flow (by position): how many, from 1.
    FlowTags(u8, u8),
    /// Cancel a flow: 0 cancel_all, 1 cancel_pending, 2 flow_only.
    CancelFlow(u8, u8),
    /// A member of a flow (positions) ends: claimed if it holds no lease,
    /// then 0 completed with a result, 1 completed without, 2 failed, 3
    /// cancelled by an operator.
    Finish(u8, u8, u8),
}

fn submit_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let opt = prop_oneof![
        Just(vec!["PRIORITY", "9"]),
        Just(vec!["KIND", "mail"]),
        Just(vec!["NAMESPACE", "tenant"]),
        Just(vec!["NAMESPACE", "default"]),
        Just(vec!["CAPS", "gpu,cuda"]),
        Just(vec!["TAG", "a.b", "v"]),
        Just(vec!["DELAY_UNTIL", "1700000000050"]),
        Just(vec!["DELAY", "50"]),
        Just(vec!["DELAY", "0"]),
        Just(vec!["DEADLINE", "1700000000400"]),
        Just(vec!["DEADLINE_IN", "40"]),
        Just(vec!["ATTEMPT_TIMEOUT", "30"]),
        Just(vec!["IDEMPOTENCY", "k", "100"]),
        Just(vec!["MAX_RETRIES", "2", "BACKOFF", "FIXED", "5"]),
        Just(vec![
            "MAX_RETRIES",
            "1",
            "BACKOFF",
            "EXPONENTIAL",
            "1",
            "50",
            "1.5",
            "JITTER"
        ]),
    ];
    (
        proptest::sample::select(&["q", "r", "email"][..]),
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::collection::vec(opt, 0..5),
    )
        .prop_map(|(lane, payload, opts)| {
            let mut v = vec![b"{fp:3}".to_vec(), lane.as_bytes().to_vec(), payload];
            for o in opts {
                v.extend(o.into_iter().map(|s| s.as_bytes().to_vec()));
            }
            v
        })
}

fn execution_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => submit_args().prop_map(Step::Submit),
        3 => any::<u8>().prop_map(Step::Claim),
        1 => any::<u8>().prop_map(Step::Renew),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(i, r)| Step::Complete(i, r)),
        2 => (any::<u8>(), proptest::option::of(0..500u64), 0..4u8)
            .prop_map(|(i, r, c)| Step::Fail(i, r, c)),
        1 => any::<u8>().prop_map(Step::Cancel),
        1 => (any::<u8>(), 0..500u64).prop_map(|(i, t)| Step::Delay(i, t)),
        1 => any::<u8>().prop_map(Step::Revoke),
        1 => (any::<u8>(), 0..100u16).prop_map(|(i, p)| Step::Priority(i, p)),
        1 => (any::<u8>(), 0..=100u8).prop_map(|(i, p)| Step::Progress(i, p)),
        1 => any::<u8>().prop_map(Step::Tags),
        1 => (any::<u8>(), 0..3u8).prop_map(|(i, o)| Step::Operate(i, o)),
        2 => (0..50u64).prop_map(Step::Due),
        2 => (1..200u64).prop_map(Step::Tick),
        2 => (any::<u8>(), 0..4u8, proptest::option::of(1..300u64), 0..5u8)
            .prop_map(|(i, c, t, b)| Step::Suspend(i, c, t, b)),
        1 => any::<u8>().prop_map(Step::Pending),
        3 => (any::<u8>(), 0..3u8, 0..3u8).prop_map(|(i, w, n)| Step::Signal(i, w, n)),
        1 => any::<u8>().prop_map(Step::Wake),
        1 => (any::<u8>(), 0..3u8).prop_map(|(i, w)| Step::CloseWp(i, w)),
        3 => (any::<u8>(), 0..3u8).prop_map(|(i, m)| Step::Append(i, m)),
    ]
}

/// A step of a history: one on executions, or one on flows.
fn step() -> impl Strategy<Value = Step> {
    prop_oneof![34 => execution_step(), 30 => flow_step()]
}

/// Flows made, joined, edged, ended, cancelled.
fn flow_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..4u8).prop_map(Step::CreateFlow),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(f, i)| Step::Join(f, i)),
        6 => (submit_args(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(v, f, ups)| Step::SubmitInto(v, f, ups)),
        4 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>(), 0..4u8)
            .prop_map(|(f, u, d, data, r)| Step::Edge(f, u, d, data, r)),
        3 => (any::<u8>(), any::<u8>(), 0..3u8, 1..5u8, any::<bool>())
            .prop_map(|(f, m, k, q, c)| Step::Policy(f, m, k, q, c)),
        3 => (
            submit_args(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 1..5),
            (0..3u8, 1..5u8, any::<bool>())
        )
            .prop_map(|(v, f, ups, pol)| Step::FanIn(v, f, ups, pol)),
        1 => (any::<u8>(), 1..4u8).prop_map(|(f, n)| Step::FlowTags(f, n)),
        1 => (any::<u8>(), 0..3u8).prop_map(|(f, c)| Step::CancelFlow(f, c)),
        5 => (any::<u8>(), any::<u8>(), 0..4u8).prop_map(|(f, m, o)| Step::Finish(f, m, o)),
    ]
}

/// The item at position `i`, most often one of the last three (steps then
/// meet on the same executions and flows), else any.
fn recent<T: Copy>(v: &[T], i: u8) -> Option<T> {
    let n = v.len();
    let at = match i {
        0..160 => n.checked_sub(1 + usize::from(i) % n.clamp(1, 3))?,
        _ => usize::from(i) % n.max(1),
    };
    v.get(at).copied()
}

/// A history of a partition: long enough that flows get members, edges
/// and ended upstreams besides everything else.
fn history() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 0..60)
}

/// A history mostly of flow steps, longer: flows with more members and
/// edges, and more often flow work left over.
fn flow_history() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(prop_oneof![1 => execution_step(), 3 => flow_step()], 0..80)
}

/// An id's text in partition 3.
fn id_text(uuid: Uuid) -> Vec<u8> {
    ExecId { partition: 3, uuid }.text().as_bytes().to_vec()
}

/// Parses a flow request the history builds (valid: a refusal here is a
/// parser bug).
fn parsed<T, E: std::fmt::Debug>(
    parse: impl FnOnce(&[&[u8]], &Limits, Origin) -> Result<T, E>,
    args: &[Vec<u8>],
) -> T {
    let a: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    parse(&a, &LIMITS, Origin::Client).expect("a valid flow request parses")
}

/// The budget of flow work drained after step `s`: 1 to 8 units, half the
/// time 1, so cascades are often left half done. Derived from the step
/// alone, so a shrunk history keeps the budgets of the steps it keeps.
fn budget_after(s: &Step) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{s:?}").hash(&mut h);
    [1, 1, 1, 1, 2, 3, 5, 8][(h.finish() >> 61) as usize]
}

/// The distinct members of flow `fid` at positions `at`.
fn members_at(p: &Partition, fid: Uuid, at: &[u8]) -> Vec<Uuid> {
    let members = p
        .flow(fid)
        .map(|f| f.members.as_slice())
        .unwrap_or_default();
    let mut out: Vec<Uuid> = Vec::new();
    for &i in at {
        match members.get(usize::from(i) % members.len().max(1)) {
            Some(m) if !out.contains(m) => out.push(*m),
            _ => {}
        }
    }
    out
}

/// FF.SUBMIT (options `v`) into flow `fid` after `after`, as the shell runs
/// it: checked, admitted as `uuid`, joined, its AFTER edges added. Says
/// whether it was admitted.
fn submit_into(
    p: &mut Partition,
    v: &[Vec<u8>],
    fid: Uuid,
    after: &[Uuid],
    uuid: Uuid,
    now: u64,
) -> bool {
    let mut a = v.to_vec();
    a.extend([b"FLOW".to_vec(), id_text(fid)]);
    for m in after {
        a.extend([b"AFTER".to_vec(), id_text(*m)]);
    }
    let a: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
    let Ok(mut req) = ex::parse_submit_keeping(
        &a,
        &LIMITS,
        Origin::Client,
        |_, b| Blob::copy(b),
        |l: &str| Arc::from(l),
    ) else {
        return false;
    };
    if req.resolve_times(now, Origin::Client).is_err() {
        return false;
    }
    let (Some(flow), SubmitTarget::Partition(3)) = (req.flow, req.target) else {
        panic!("a submit into a flow of partition 3 targets partition 3");
    };
    assert_eq!(req.after, after, "the AFTER upstreams as given");
    if p.check_join_after(flow.uuid, uuid, &req.after).is_err() {
        return false;
    }
    let id = ExecId { partition: 3, uuid };
    if p.admit_new(uuid, |seq| Execution::new(id, req.spec, seq, now))
        .is_none()
    {
        return false;
    }
    p.add_member(flow.uuid, uuid, now)
        .expect("a checked member joins");
    let env = Env {
        now,
        retention_ms: LIMITS.retention_ms,
        max_reclaims: LIMITS.max_reclaims,
    };
    for (i, up) in req.after.iter().enumerate() {
        let edge = NewEdge {
            flow: flow.uuid,
            id: Partition::after_edge_id(uuid, i),
            up: *up,
            down: uuid,
            kind: DependencyKind::SuccessOnly,
            data_ref: None,
            expected_revision: None,
        };
        p.add_edge(edge, &env, &mut |_, _, _| {})
            .expect("a checked AFTER edge is added");
    }
    true
}

/// FF.EDGEPOLICY's arguments: kind 0 all_of, 1 any_of, 2 quorum of `k`.
fn policy_args(fid: Uuid, down: Uuid, kind: u8, k: u8, cancel: bool) -> Vec<Vec<u8>> {
    let on: &[u8] = if cancel {
        b"cancel_remaining"
    } else {
        b"let_run"
    };
    let mut a = vec![id_text(fid), id_text(down)];
    match kind {
        0 => a.push(b"all_of".to_vec()),
        1 => a.extend([b"any_of".to_vec(), on.to_vec()]),
        _ => a.extend([b"quorum".to_vec(), k.to_string().into_bytes(), on.to_vec()]),
    }
    a
}

/// The fence of `e`'s current lease, if it holds one.
fn fence_of(e: &Execution) -> Option<Fence> {
    let l = e.lease.as_ref()?;
    let a = e.current_attempt()?;
    Some(Fence {
        lease_id: l.lease_id,
        lease_epoch: e.lease_epoch,
        attempt_id: a.attempt_id,
    })
}

/// A partition after `steps`, with some worker registry beside it.
fn build(steps: &[Step]) -> (Partition, Registry) {
    let (p, reg, _) = build_at(steps);
    (p, reg)
}

/// A partition after `steps`, a worker registry beside it, and the time
/// the history ended at. Flow work is drained a little after every step
/// (`budget_after`), as the node timer would, so a history can end with
/// cascades half done.
fn build_at(steps: &[Step]) -> (Partition, Registry, u64) {
    build_seen(steps, &mut |_, _| {})
}

/// `build_at`, showing `seen` the partition and time after every step.
fn build_seen(steps: &[Step], seen: &mut dyn FnMut(&Partition, u64)) -> (Partition, Registry, u64) {
    let mut p = Partition::new(3, LIMITS.partitions);
    let mut reg = Registry::default();
    let mut ids: Vec<Uuid> = Vec::new();
    let mut flows: Vec<Uuid> = Vec::new();
    // A realistic clock: a client's absolute times must look like unix
    // ms, so the histories' submits name them from here.
    let mut now = T0;
    let mut minted = 1u128;
    let mut mint = || {
        minted += 1;
        Uuid(minted << 64 | 0x4000_8000)
    };
    let env = |now: u64| Env {
        now,
        retention_ms: LIMITS.retention_ms,
        max_reclaims: LIMITS.max_reclaims,
    };
    for s in steps {
        'step: {
            let pick = |i: &u8| recent(&ids, *i);
            let live: Vec<Uuid> = flows
                .iter()
                .copied()
                .filter(|f| p.flow(*f).is_some())
                .collect();
            let pick_flow = |i: &u8| recent(&live, *i);
            match s {
                Step::Submit(v) => {
                    let a: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
                    let Ok(mut req) = ex::parse_submit_keeping(
                        &a,
                        &LIMITS,
                        Origin::Client,
                        |_, b| Blob::copy(b),
                        |l: &str| Arc::from(l),
                    ) else {
                        break 'step;
                    };
                    if req.resolve_times(now, Origin::Client).is_err() {
                        break 'step;
                    }
                    let uuid = mint();
                    let id = ExecId { partition: 3, uuid };
                    if p.admit_new(uuid, |seq| Execution::new(id, req.spec, seq, now))
                        .is_some()
                    {
                        ids.push(uuid);
                    }
                }
                Step::CreateFlow(v) => {
                    let mut a = vec![b"{fp:3}".to_vec()];
                    match (v, flows.last()) {
                        (1, _) => a.extend([b"KIND".to_vec(), b"etl".to_vec()]),
                        (2, _) => a.extend(
                            ["KIND", "etl", "NAMESPACE", "tenant"].map(|x| x.as_bytes().to_vec()),
                        ),
                        (3, Some(f)) => a = vec![id_text(*f)],
                        _ => {}
                    }
                    let req = parsed(fr::parse_create_flow, &a);
                    let id = match req.target {
                        SubmitTarget::Exact(id) => id.uuid,
                        _ => mint(),
                    };
                    if p.create_flow(id, req.kind, req.namespace, now) {
                        flows.push(id);
                    }
                }
                Step::Join(f, i) => {
                    let (Some(fid), Some(uuid)) = (pick_flow(f), pick(i)) else {
                        break 'step;
                    };
                    let req = parsed(fr::parse_flow_member, &[id_text(fid), id_text(uuid)]);
                    let _ = p.add_member(req.flow.uuid, req.member, now);
                }
                Step::SubmitInto(v, f, ups) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let after = members_at(&p, fid, ups);
                    let uuid = mint();
                    if submit_into(&mut p, v, fid, &after, uuid, now) {
                        ids.push(uuid);
                    }
                }
                Step::FanIn(v, f, ups, (kind, k, cancel)) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let ups = members_at(&p, fid, ups);
                    let uuid = mint();
                    if !submit_into(&mut p, v, fid, &[], uuid, now) {
                        break 'step;
                    }
                    ids.push(uuid);
                    let req = parsed(
                        fr::parse_set_policy,
                        &policy_args(fid, uuid, *kind, *k, *cancel),
                    );
                    p.set_policy(req.flow.uuid, req.down, req.policy, now)
                        .expect("a new member takes a policy");
                    // The first upstream hands its result on.
                    for (i, up) in ups.into_iter().enumerate() {
                        let edge = NewEdge {
                            flow: fid,
                            id: mint(),
                            up,
                            down: uuid,
                            kind: DependencyKind::SuccessOnly,
                            data_ref: (i == 0).then(|| b"in"[..].into()),
                            expected_revision: None,
                        };
                        let _ = p.add_edge(edge, &env(now), &mut |_, _, _| {});
                    }
                }
                Step::Edge(f, up, down, data, rev) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let Some(flow) = p.flow(fid) else { break 'step };
                    let m = &flow.members;
                    if m.is_empty() {
                        break 'step;
                    }
                    // Two distinct members but for a flow of one.
                    let i = usize::from(*up) % m.len();
                    let j = match m.len() {
                        1 => i,
                        n => (i + 1 + usize::from(*down) % (n - 1)) % n,
                    };
                    let (up, down_id) = (m[i], m[j]);
                    let id = match (rev, flow.edges.len()) {
                        (3, n) if n > 0 => flow.edges[usize::from(*down) % n].id,
                        _ => mint(),
                    };
                    let mut a = vec![id_text(fid), id_text(up), id_text(down_id)];
                    a.extend([b"EDGE_ID".to_vec(), id.text().to_vec()]);
                    if *data {
                        a.extend([b"DATA".to_vec(), b"d".to_vec()]);
                    }
                    match rev {
                        1 => {
                            a.extend([b"REVISION".to_vec(), flow.revision.to_string().into_bytes()])
                        }
                        2 => a.extend([
                            b"REVISION".to_vec(),
                            (flow.revision + 1).to_string().into_bytes(),
                        ]),
                        _ => {}
                    }
                    let req = parsed(fr::parse_add_edge, &a);
                    let edge = NewEdge {
                        flow: req.flow.uuid,
                        id: req.id.unwrap_or_else(&mut mint),
                        up: req.up,
                        down: req.down,
                        kind: req.kind,
                        data_ref: req.data_ref,
                        expected_revision: req.revision,
                    };
                    let _ = p.add_edge(edge, &env(now), &mut |_, _, _| {});
                }
                Step::Policy(f, m, kind, k, cancel) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let Some(down) = p
                        .flow(fid)
                        .and_then(|f| f.members.get(usize::from(*m) % f.members.len().max(1)))
                        .copied()
                    else {
                        break 'step;
                    };
                    let a = policy_args(fid, down, *kind, *k, *cancel);
                    let req = parsed(fr::parse_set_policy, &a);
                    let _ = p.set_policy(req.flow.uuid, req.down, req.policy, now);
                }
                Step::FlowTags(f, count) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let mut a = vec![id_text(fid)];
                    for t in 0..*count {
                        a.extend([format!("f.k{t}").into_bytes(), vec![b'v'; usize::from(t)]]);
                    }
                    let req = parsed(fr::parse_flow_tags, &a);
                    let _ = p.set_flow_tags(req.flow.uuid, req.tags, now);
                }
                Step::CancelFlow(f, policy) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let policy =
                        ["cancel_all", "cancel_pending", "flow_only"][usize::from(*policy) % 3];
                    let mut a = vec![id_text(fid), b"POLICY".to_vec(), policy.as_bytes().to_vec()];
                    if policy != "cancel_all" {
                        a.extend([b"REASON".to_vec(), b"stop".to_vec()]);
                    }
                    let req = parsed(fr::parse_cancel_flow, &a);
                    let _ = p.cancel_flow(req.flow.uuid, req.policy, req.reason, now);
                }
                Step::Finish(f, m, outcome) => {
                    let Some(fid) = pick_flow(f) else { break 'step };
                    let Some(uuid) = p
                        .flow(fid)
                        .and_then(|f| f.members.get(usize::from(*m) % f.members.len().max(1)))
                        .copied()
                    else {
                        break 'step;
                    };
                    let (lease_id, attempt_id) = (mint(), mint());
                    let env = env(now);
                    let cancelling = p.index.flows.is_cancelling(uuid);
                    let Some((idx, e)) = p.record_mut(uuid) else {
                        break 'step;
                    };
                    if *outcome == 3 {
                        let _ = moves::cancel(idx, e, None, Some(b"op"[..].into()), &env);
                        break 'step;
                    }
                    if e.lease.is_none() && !cancelling {
                        let a = Acquire {
                            id: e.id,
                            worker_id: b"w",
                            worker_instance_id: b"inst",
                            lease_ms: 100,
                            lease_id,
                            attempt_id,
                            at: now,
                        };
                        let _: (Result<Grant, _>, _) = moves::acquire(idx, e, &a);
                    }
                    let Some(f) = fence_of(e) else { break 'step };
                    if *outcome == 2 {
                        let _ = moves::fail(idx, e, &f, Some(b"boom"[..].into()), None, None, &env);
                    } else {
                        let result = (*outcome == 0).then(|| Blob::copy(b"out"));
                        let _ = moves::complete(idx, e, &f, result, &env);
                    }
                }
                Step::Tick(d) => now += d,
                Step::Due(count) => {
                    for _ in 0..*count {
                        let Some((kind, _, uuid)) = p.index.pop_due(now, LIMITS.retention_ms)
                        else {
                            break;
                        };
                        if let Some((idx, e)) = p.record_mut(uuid) {
                            if let moves::DueEffect::Remove = moves::on_due(idx, e, kind, &env(now))
                            {
                                // As the shell does: an ended member's edges
                                // resolve before retention removes it.
                                p.settle_before_removal(uuid, &env(now), &mut |_, _, _| {});
                                p.remove(uuid);
                            }
                        }
                    }
                }
                other => {
                    let i = match other {
                        Step::Claim(i)
                        | Step::Renew(i)
                        | Step::Complete(i, _)
                        | Step::Fail(i, ..)
                        | Step::Cancel(i)
                        | Step::Delay(i, _)
                        | Step::Revoke(i)
                        | Step::Priority(i, _)
                        | Step::Progress(i, _)
                        | Step::Tags(i)
                        | Step::Operate(i, _)
                        | Step::Suspend(i, ..)
                        | Step::Pending(i)
                        | Step::Signal(i, ..)
                        | Step::Wake(i)
                        | Step::CloseWp(i, _)
                        | Step::Append(i, _) => i,
                        _ => break 'step,
                    };
                    let Some(uuid) = pick(i) else { break 'step };
                    let (lease_id, attempt_id) = (mint(), mint());
                    // The shell claims no member of a flow it is cancelling.
                    let cancelling = p.index.flows.is_cancelling(uuid);
                    let Some((idx, e)) = p.record_mut(uuid) else {
                        break 'step;
                    };
                    let f = fence_of(e);
                    let env = env(now);
                    match (other, f) {
                        (Step::Claim(_), _) if cancelling => {}
                        (Step::Claim(_), _) => {
                            let a = Acquire {
                                id: e.id,
                                worker_id: b"w",
                                worker_instance_id: b"inst",
                                lease_ms: 100,
                                lease_id,
                                attempt_id,
                                at: now,
                            };
                            let _: (Result<Grant, _>, _) = moves::acquire(idx, e, &a);
                            reg.register(
                                b"inst",
                                Worker {
                                    worker_id: b"w"[..].into(),
                                    lanes: vec!["q".into()],
                                    caps: CapSet::default(),
                                    ttl_ms: 100,
                                    registered_at: now,
                                    last_heartbeat: now,
                                    dead_at: None,
                                },
                            );
                        }
                        (Step::Renew(_), Some(f)) => {
                            let _ = moves::renew(idx, e, &f, 100, &env);
                        }
                        (Step::Complete(_, r), Some(f)) => {
                            let result = r.then(|| Blob::copy(b"out"));
                            let _ = moves::complete(idx, e, &f, result, &env);
                        }
                        (Step::Fail(_, r, class), Some(f)) => {
                            let failure = match class {
                                1 => Failure::classify(Some(b"transient"), false),
                                2 => Failure::classify(Some(b"permanent"), false),
                                3 => Failure::classify(Some(b"validation"), true),
                                _ => None,
                            };
                            let at = r
                                .filter(|_| !failure.as_ref().is_some_and(|f| f.non_retryable))
                                .map(|d| now + d);
                            let reason = Some(b"boom"[..].into());
                            let _ = moves::fail(idx, e, &f, reason, failure, at, &env);
                        }
                        (Step::Cancel(_), f) => {
                            let _ = moves::cancel(idx, e, f.as_ref(), Some(b"no"[..].into()), &env);
                        }
                        (Step::Delay(_, t), Some(f)) => {
                            let _ = moves::delay(idx, e, &f, now + t, &env);
                        }
                        (Step::Revoke(_), _) => {
                            let _ = moves::revoke(idx, e, None, &env);
                        }
                        (Step::Priority(_, pr), _) => {
                            let _ = moves::set_priority(idx, e, *pr, &env);
                        }
                        (Step::Progress(_, pct), Some(f)) => {
                            let _ = moves::report_progress(idx, e, &f, *pct, b"m"[..].into(), &env);
                        }
                        (Step::Tags(_), _) => {
                            let tags = vec![(b"x.y"[..].into(), b"z"[..].into())];
                            let _ = moves::set_tags(idx, e, tags, &env);
                        }
                        (Step::Operate(_, o), _) => {
                            let op = match o {
                                0 => Op::Replay { max_replays: 2 },
                                1 => Op::Block,
                                _ => Op::Unblock,
                            };
                            let _ = moves::operate(idx, e, op, Some(b"op"[..].into()), &env);
                        }
                        (Step::Suspend(_, cond, timeout, behavior), Some(f)) => {
                            let pending: Vec<String> = e
                                .waits()
                                .map(|w| {
                                    w.open_waitpoints()
                                        .filter(|p| p.state == WaitpointState::Pending)
                                        .map(|p| String::from_utf8_lossy(&p.id.text()).into_owned())
                                        .collect()
                                })
                                .unwrap_or_default();
                            let mut a: Vec<String> =
                                vec!["{fp:3}:x".into(), UUID.into(), "1".into(), UUID.into()];
                            match (cond, pending.first()) {
                            (0, Some(p)) => a.extend(["PENDING".into(), p.clone()]),
                            (1, _) => a.extend(
                                "WAITPOINT x WAITPOINT y CONDITION ALLOF 2 ONE x NAME n0 COUNT 2 SOURCES ANY 1 y"
                                    .split(' ')
                                    .map(String::from),
                            ),
                            (2, _) => a.extend(["CONDITION".into(), "SIGNAL".into(), "n1".into()]),
                            _ => {}
                        }
                            if let Some(t) = timeout {
                                a.extend(["TIMEOUT".into(), t.to_string()]);
                            }
                            let b = ["fail", "cancel", "expire", "auto_resume", "escalate"]
                                [*behavior as usize % 5];
                            a.extend([
                                "ON_TIMEOUT".into(),
                                b.into(),
                                "IDEMPOTENCY".into(),
                                "k".into(),
                            ]);
                            let refs: Vec<&[u8]> = a.iter().map(|x| x.as_bytes()).collect();
                            let first: &[u8] = b"{fp:3}:00000000-0000-4000-8000-000000000001";
                            let joined: Vec<&[u8]> = std::iter::once(first)
                                .chain(refs.iter().skip(1).copied())
                                .collect();
                            if let Ok(mut req) = ex::parse_suspend(&joined, &LIMITS, Origin::Client)
                            {
                                req.id = e.id;
                                req.fence = f;
                                let _ = moves::suspend(idx, e, &req, mint(), &env);
                            }
                        }
                        (Step::Pending(_), Some(f)) => {
                            let req = ex::CreateWaitpoint {
                                id: e.id,
                                fence: f,
                                key: None,
                                waitpoint_id: None,
                                expires: ex::Timeout::In(150),
                                at: None,
                            };
                            let _ = moves::create_waitpoint(idx, e, &req, mint(), &env);
                        }
                        (Step::Signal(_, w, name), _) => {
                            let wp = e
                                .waits()
                                .and_then(|x| {
                                    x.waitpoints
                                        .get(usize::from(*w) % x.waitpoints.len().max(1))
                                })
                                .map(|p| p.id);
                            if let Some(wp) = wp {
                                let sig = ex::SignalIn {
                                    name: format!("n{name}").into_bytes().into(),
                                    source_type: b"u"[..].into(),
                                    source_identity: vec![b'a' + *name].into(),
                                    payload: (*name == 1).then(|| b"\x00p"[..].into()),
                                    idempotency: (*name == 2).then(|| b"d"[..].into()),
                                    dedup_ttl_ms: 100,
                                    ..Default::default()
                                };
                                let _ = moves::deliver(idx, e, wp, &sig, mint(), &env);
                            }
                        }
                        (Step::Wake(_), _) => {
                            let _ = moves::wake(idx, e, 0, &env);
                        }
                        (Step::CloseWp(_, w), _) => {
                            let wp = e
                                .waits()
                                .and_then(|x| {
                                    x.waitpoints
                                        .get(usize::from(*w) % x.waitpoints.len().max(1))
                                })
                                .map(|p| p.id);
                            if let Some(wp) = wp {
                                let _ = moves::close_waitpoint(idx, e, wp, &env);
                            }
                        }
                        (Step::Append(_, m), Some(f)) => {
                            let (mode, payload) = match m {
                                0 => (Mode::Durable, &b"tok\x00"[..]),
                                1 => (Mode::Summary, &br#"{"n":1,"o":{"k":"__ff_null__"}}"#[..]),
                                _ => (Mode::BestEffort, &b"live"[..]),
                            };
                            let req = ex::Append {
                                id: e.id,
                                fence: f,
                                frame_type: b"t",
                                payload,
                                mode: FrameMode {
                                    mode,
                                    maxlen: None,
                                    ttl_ms: (*m == 2).then_some(100),
                                },
                                encoding: None,
                                correlation: None,
                                source: None,
                                at: None,
                            };
                            let _ = moves::append(idx, e, &req, &env);
                        }
                        _ => {}
                    }
                }
            }
        }
        // What the step left of flow work, a few units of it.
        let budget = budget_after(s);
        p.run_flow_work(&env(now), budget, &mut || false, &mut |_, _, _| {});
        seen(&p, now);
    }
    if steps.len().is_multiple_of(3) {
        let _ = reg.mark_dead(b"inst", now);
    }
    // The feed's last event id (set by the shell as it writes events).
    if steps.len().is_multiple_of(2) {
        p.index.events_last = Some(EntryId { ms: now, seq: 3 });
    }
    (p, reg, now)
}

fn encoded(p: &Partition) -> Vec<u8> {
    let mut w = Writer::default();
    p.encode(&mut w);
    w.buf
}

/// Every decoder on `bytes`; whatever decodes must encode to `bytes`.
fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(p) = Partition::decode(bytes) {
        prop_assert_eq!(encoded(&p), bytes, "partition");
    }
    if let Ok(e) = Execution::decode(bytes) {
        let mut w = Writer::default();
        e.encode(&mut w);
        prop_assert_eq!(w.buf, bytes, "execution");
    }
    if let Ok(f) = Flow::decode(bytes) {
        let mut w = Writer::default();
        f.encode(&mut w);
        prop_assert_eq!(w.buf, bytes, "flow");
    }
    if let Ok(s) = NodeState::decode(bytes) {
        let mut w = Writer::default();
        s.encode(&mut w);
        // Versions 1 (no registry) and 2 (no key ring) load as version 3.
        if bytes.first() == Some(&3) {
            prop_assert_eq!(w.buf, bytes, "node state");
        }
    }
    let mut r = Reader::new(bytes);
    if let Ok(reg) = Registry::decode(&mut r) {
        if r.finish().is_ok() {
            let mut w = Writer::default();
            reg.encode(&mut w);
            prop_assert_eq!(w.buf, bytes, "registry");
        }
    }
    for layout in [Layout::Untagged, Layout::Tagged] {
        if let Ok((mut p, _)) = Partition::load_header(layout, bytes) {
            let _ = p.load_next(layout, bytes);
        }
    }
    let mut p = Partition::new(3, LIMITS.partitions);
    p.index.next_seq = u64::MAX;
    let _ = p.load_item(bytes);
    let _ = p.load_record(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = CapSet::from_canonical(s.to_string());
    }
    Ok(())
}

fn mutate_bytes(b: &mut Vec<u8>, ops: &[(usize, u8, u8)]) {
    for &(at, kind, v) in ops {
        let n = b.len().max(1);
        match kind % 5 {
            0 if !b.is_empty() => b[at % n] = v,
            1 if !b.is_empty() => b[at % n] ^= 1 << (v % 8),
            2 => b.insert(at % (b.len() + 1), v),
            3 if !b.is_empty() => {
                b.remove(at % n);
            }
            4 => b.truncate(at % (b.len() + 1)),
            _ => {}
        }
    }
}

proptest! {
    #[test]
    fn parsers_never_panic_on_random_arguments(v in args(), replicated in any::<bool>()) {
        parse_all(&v, replicated);
    }

    #[test]
    fn parsers_never_panic_on_mutated_calls(
        seed in proptest::sample::select(
            SEEDS.iter().chain(FLOW_SEEDS).copied().collect::<Vec<_>>()
        ),
        ms in proptest::collection::vec(mutation(), 1..6),
        replicated in any::<bool>(),
    ) {
        let mut v: Vec<Vec<u8>> = seed.iter().map(|s| s.as_bytes().to_vec()).collect();
        for m in &ms {
            mutate_args(&mut v, m);
        }
        parse_all(&v, replicated);
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_all(&b)?;
    }

    #[test]
    fn partitions_reencode_to_the_same_bytes(steps in prop_oneof![history(), flow_history()]) {
        let (p, reg) = build(&steps);
        let bytes = encoded(&p);
        let back = Partition::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(encoded(&back), bytes.clone());
        // Item by item, as an RDB load or an AOF's FF.LOADREC reads them.
        let mut items = Vec::new();
        p.for_each_item(|i| items.push(i.to_vec()));
        let (mut q, count) = Partition::load_header(Layout::Tagged, &items[0])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(count as usize, items.len() - 1);
        for i in &items[1..] {
            q.load_next(Layout::Tagged, i).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert_eq!(encoded(&q), bytes);
        let state = NodeState {
            paused: ["a".into(), "b".into()].into(),
            registry: reg,
            keyring: ring(),
        };
        let mut w = Writer::default();
        state.encode(&mut w);
        prop_assert_eq!(NodeState::decode(&w.buf).ok(), Some(state));
    }

    /// A restart (or a replica loading the primary's data) derives the flow
    /// work the live partition holds: drained alike, in the same budgets,
    /// the two end alike after every drain and do the same units of work
    /// (a live partition may hold units that do nothing; those count 0),
    /// and the index a load derives is the live one.
    /// Checked at the history's end and after every step that left work.
    #[test]
    fn a_reloaded_partition_finishes_flow_work_as_the_live_one_does(
        steps in flow_history(),
        budgets in proptest::collection::vec(1..12usize, 0..6),
        later in 0..300u64,
    ) {
        restarts_alike(&steps, &budgets, later)?;
    }

    #[test]
    fn decoders_never_panic_on_mutated_encodings(
        steps in proptest::collection::vec(step(), 0..25),
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        which in 0..4u8,
        item in any::<usize>(),
    ) {
        decode_all(&mutated_encoding(&steps, &ops, which, item))?;
    }

}

/// An encoding after `steps`, mutated by `ops`: 0 the partition, 1 its last
/// item untagged (its last flow's, if it has flows), 2 one of its items
/// tagged, 3 a node state.
fn mutated_encoding(steps: &[Step], ops: &[(usize, u8, u8)], which: u8, item: usize) -> Vec<u8> {
    let (p, reg) = build(steps);
    let mut b = match which {
        0 => encoded(&p),
        1 => {
            let mut items = Vec::new();
            p.for_each_item(|i| items.push(i[1..].to_vec()));
            items.pop().unwrap_or_default()
        }
        2 => {
            let mut items = Vec::new();
            p.for_each_item(|i| items.push(i.to_vec()));
            let n = items.len();
            items.swap_remove(item % n)
        }
        _ => {
            let mut w = Writer::default();
            NodeState {
                paused: ["q".into()].into(),
                registry: reg,
                keyring: ring(),
            }
            .encode(&mut w);
            w.buf
        }
    };
    mutate_bytes(&mut b, ops);
    b
}

/// The partition after `steps` and after every step of them that left flow
/// work, each reloaded and drained alike (`reloaded_drains_alike`) at
/// `later` ms past its time.
fn restarts_alike(steps: &[Step], budgets: &[usize], later: u64) -> Result<(), TestCaseError> {
    let (mut states, mut at) = (Vec::new(), 0);
    let (p, _, now) = build_seen(steps, &mut |p, now| {
        at += 1;
        if p.index.flows.has_work() {
            states.push((at, p.clone(), now));
        }
    });
    states.push((steps.len(), p, now));
    for (at, p, now) in states {
        reloaded_drains_alike(p, now + later, budgets)
            .map_err(|e| TestCaseError::fail(format!("restarted after step {at}: {e}")))?;
    }
    Ok(())
}

/// The index `loaded` derived is `live`'s: the flow work a load derives is
/// the live work but for units that would do nothing, and the records'
/// byte count may differ (heap capacities a live record and a loaded one
/// need not share).
fn same_index(live: &Partition, loaded: &Partition) -> Result<(), TestCaseError> {
    let (mut live, mut loaded) = (live.index.clone(), loaded.index.clone());
    prop_assert!(
        loaded.flows.work.is_subset(&live.flows.work),
        "loaded work {:?}, live {:?}",
        loaded.flows.work,
        live.flows.work
    );
    live.flows.work.clear();
    loaded.flows.work.clear();
    loaded.record_bytes = live.record_bytes;
    prop_assert_eq!(live, loaded);
    Ok(())
}

/// Drains `p` and its reloaded copy alike, in `budgets` then fully, at
/// `now`; their encodings must agree after each drain, and the units done.
fn reloaded_drains_alike(
    mut p: Partition,
    now: u64,
    budgets: &[usize],
) -> Result<(), TestCaseError> {
    let bytes = encoded(&p);
    let mut q = Partition::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    same_index(&p, &q)?;
    let env = Env {
        now,
        retention_ms: LIMITS.retention_ms,
        max_reclaims: LIMITS.max_reclaims,
    };
    let drain = |x: &mut Partition, budget: usize| {
        x.run_flow_work(&env, budget, &mut || false, &mut |_, _, _| {})
    };
    for (i, &b) in budgets.iter().enumerate() {
        let (dp, dq) = (drain(&mut p, b), drain(&mut q, b));
        prop_assert_eq!(encoded(&p), encoded(&q), "after drain {} of {} units", i, b);
        prop_assert_eq!(dp, dq, "units done by drain {} of {}", i, b);
    }
    for round in 0.. {
        if !p.index.flows.has_work() && !q.index.flows.has_work() {
            break;
        }
        prop_assert!(round < 100, "flow work never ends");
        let (dp, dq) = (drain(&mut p, CASCADE_BUDGET), drain(&mut q, CASCADE_BUDGET));
        prop_assert_eq!(dp, dq, "units done by full drain {}", round);
    }
    prop_assert_eq!(encoded(&p), encoded(&q), "drained fully");
    prop_assert_eq!(&p.index.flows.member_of, &q.index.flows.member_of);
    prop_assert_eq!(&p.index.flows.tallies, &q.index.flows.tallies);
    prop_assert_eq!(p.index.flow_bytes, q.index.flow_bytes);
    same_index(&p, &q)?;
    Ok(())
}

/// A key ring with a current key and one in grace.
fn ring() -> flowfabric_core::suspension::Keyring {
    let mut k = flowfabric_core::suspension::Keyring::default();
    let _ = k.rotate(b"k1", b"00112233445566778899aabbccddeeff", 0, 0);
    let _ = k.rotate(b"k2", b"ffeeddccbbaa99887766554433221100", 50, 10);
    k
}

/// The histories the properties build reach every kind of record the
/// encoding has: otherwise the round trip would test little.
#[test]
fn histories_reach_every_kind_of_record() {
    use flowfabric_core::base::state::PublicState;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    let (mut progress, mut tags, mut leased, mut results) = (false, false, false, false);
    let (mut signals, mut pending) = (false, false);
    let (mut summaries, mut closed) = (false, false);
    let (mut edges, mut data, mut satisfied, mut impossible) = (false, false, false, false);
    let (mut cancelled, mut cancel_remaining, mut left_over) = (false, false, false);
    let mut classified = false;
    for _ in 0..500 {
        let steps = history().new_tree(&mut runner).unwrap().current();
        let (p, _) = build(&steps);
        left_over |= p.index.flows.has_work();
        for f in p.flows() {
            edges |= !f.edges.is_empty();
            data |= f
                .edges
                .iter()
                .any(|e| e.data_ref.is_some() && e.state == EdgeState::Satisfied);
            satisfied |= f.groups.values().any(|g| g.state == GroupState::Satisfied);
            impossible |= f.groups.values().any(|g| g.state == GroupState::Impossible);
            cancel_remaining |= f.groups.values().any(|g| g.cancels_remaining());
            cancelled |= f.is_cancelled();
        }
        for e in p.iter() {
            seen.insert(e.public.as_str());
            progress |= e.extra.as_ref().is_some_and(|x| x.progress.is_some());
            classified |= e.failure().is_some();
            tags |= !e.tags().is_empty();
            leased |= e.lease.is_some();
            results |= e.result.is_some();
            signals |= e.waits().is_some_and(|w| !w.signals.is_empty());
            summaries |= e.outputs().iter().any(|o| o.summary.is_some());
            closed |= e.outputs().iter().any(|o| o.closed.is_some());
            pending |= e.waits().is_some_and(|w| {
                w.waitpoints
                    .iter()
                    .any(|p| p.state == WaitpointState::Pending)
            });
        }
    }
    for s in [
        PublicState::Waiting,
        PublicState::Delayed,
        PublicState::Active,
        PublicState::Completed,
        PublicState::Failed,
        PublicState::Cancelled,
        PublicState::Expired,
        PublicState::Suspended,
        PublicState::WaitingChildren,
        PublicState::Skipped,
    ] {
        assert!(
            seen.contains(s.as_str()),
            "no {} record in {seen:?}",
            s.as_str()
        );
    }
    assert!(progress && tags && leased && results);
    assert!(classified, "no classified failure");
    assert!(signals && pending, "no signals or pending waitpoints");
    assert!(summaries && closed, "no summaries or closed output streams");
    assert!(edges && data, "no flows with edges, or no data handed on");
    assert!(
        satisfied && impossible,
        "no satisfied or no impossible group"
    );
    assert!(cancel_remaining, "no fired cancel-remaining group");
    assert!(cancelled, "no cancelled flow");
    assert!(left_over, "no history leaves flow work undone");
}

/// The flow seeds are valid calls of a flow parser, as they are or with
/// their split id joined (mutations start from calls that parse).
#[test]
fn flow_seeds_parse() {
    let o = Origin::Replicated;
    let keep = |_: usize, p: &[u8]| Blob::copy(p);
    for s in FLOW_SEEDS {
        let v: Vec<Vec<u8>> = s.iter().map(|x| x.as_bytes().to_vec()).collect();
        let accepted = [v.clone(), joined(&v)].iter().any(|v| {
            let a: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
            let a = a.as_slice();
            fr::parse_create_flow(a, &LIMITS, o).is_ok()
                || fr::parse_flow_member(a, &LIMITS, o).is_ok()
                || fr::parse_add_edge(a, &LIMITS, o).is_ok()
                || fr::parse_set_policy(a, &LIMITS, o).is_ok()
                || fr::parse_cancel_flow(a, &LIMITS, o).is_ok()
                || fr::parse_flow_tags(a, &LIMITS, o).is_ok()
                || fr::parse_edge_ref(a, &LIMITS).is_ok()
                || fr::parse_edges_of(a, &LIMITS, true).is_ok()
                || fr::parse_edges_of(a, &LIMITS, false).is_ok()
                || fr::parse_flows_page(a, &LIMITS).is_ok()
                || ex::parse_submit_keeping(a, &LIMITS, o, keep, |l: &str| Arc::from(l))
                    .is_ok_and(|r| !r.after.is_empty())
        });
        assert!(accepted, "flow seed {s:?} parses nowhere");
    }
}

// ---- flow decoding is canonical -------------------------------------------

/// A flow's encoding with its bytes `from` (once) replaced by `to`.
fn flow_bytes_with(f: &Flow, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    f.encode(&mut w);
    let at = w
        .buf
        .windows(from.len())
        .position(|x| x == from)
        .expect("the bytes to replace");
    assert_eq!(w.buf.windows(from.len()).filter(|x| *x == from).count(), 1);
    w.buf[at..at + from.len()].copy_from_slice(to);
    w.buf
}

/// Whatever `Flow::decode` accepts encodes back to the same bytes.
fn assert_canonical(bytes: &[u8]) {
    if let Ok(f) = Flow::decode(bytes) {
        let mut w = Writer::default();
        f.encode(&mut w);
        assert_eq!(w.buf, bytes, "a decoded flow encodes to other bytes");
    }
}

#[test]
fn flow_groups_out_of_order_do_not_decode() {
    let policy = flowfabric_core::flows::Policy::ALL_OF;
    let mut f = Flow::new(Uuid(7), b"k"[..].into(), b"n"[..].into(), 1);
    // Two policies set before any edge (two groups of no edges).
    f.set_policy(Uuid(0xAAAA_0001), policy);
    f.set_policy(Uuid(0xAAAA_0002), policy);
    let bytes = flow_bytes_with(
        &f,
        &0xAAAA_0001u128.to_le_bytes(),
        &0xAAAA_0003u128.to_le_bytes(),
    );
    assert_canonical(&bytes);
}

#[test]
fn flow_tags_out_of_order_do_not_decode() {
    let mut f = Flow::new(Uuid(7), b"k"[..].into(), b"n"[..].into(), 1);
    f.tags.insert(b"t.a"[..].into(), b"1"[..].into());
    f.tags.insert(b"t.b"[..].into(), b"2"[..].into());
    assert_canonical(&flow_bytes_with(&f, b"t.a", b"t.z"));
}

// ---- a replayed sibling --------------------------------------------------

#[test]
fn a_replayed_sibling_is_cancelled_alike_live_and_reloaded() {
    use flowfabric_core::flows::{OnSatisfied, Policy, PolicyKind};
    let env = Env {
        now: 10,
        retention_ms: LIMITS.retention_ms,
        max_reclaims: LIMITS.max_reclaims,
    };
    let drain = |p: &mut Partition, budget: usize| {
        p.run_flow_work(&env, budget, &mut || false, &mut |_, _, _| {})
    };
    let (flow, up1, up2, down) = (Uuid(0xF << 64), Uuid(1 << 64), Uuid(2 << 64), Uuid(3 << 64));
    let mut p = Partition::new(3, LIMITS.partitions);
    assert!(p.create_flow(flow, b"k"[..].into(), b"n"[..].into(), 1));
    for uuid in [up1, up2, down] {
        let id = ExecId { partition: 3, uuid };
        let spec = flowfabric_core::execution::Spec {
            lane: "q".into(),
            ..Default::default()
        };
        assert!(p
            .admit_new(uuid, |seq| Execution::new(id, spec, seq, 1))
            .is_some());
        p.add_member(flow, uuid, 1).unwrap();
    }
    // `down` needs any one of its upstreams, and cancels the others.
    let any_of = Policy {
        kind: PolicyKind::AnyOf,
        k: 1,
        on_satisfied: OnSatisfied::CancelRemaining,
    };
    p.set_policy(flow, down, any_of, 1).unwrap();
    for (i, up) in [up1, up2].into_iter().enumerate() {
        let edge = NewEdge {
            flow,
            id: Uuid(0xE << 64 | i as u128),
            up,
            down,
            kind: DependencyKind::SuccessOnly,
            data_ref: None,
            expected_revision: None,
        };
        p.add_edge(edge, &env, &mut |_, _, _| {}).unwrap();
    }
    // up1 completes: the group is satisfied, up2 is to be cancelled.
    let (idx, e) = p.record_mut(up1).unwrap();
    let a = Acquire {
        id: e.id,
        worker_id: b"w",
        worker_instance_id: b"i",
        lease_ms: 100,
        lease_id: Uuid(5),
        attempt_id: Uuid(6),
        at: 10,
    };
    let _: (Result<Grant, _>, _) = moves::acquire(idx, e, &a);
    let f = fence_of(e).unwrap();
    moves::complete(idx, e, &f, None, &env).0.unwrap();
    assert_eq!(drain(&mut p, 1), 1); // up1's edge: the group fires
    assert_eq!(drain(&mut p, 1), 1); // up2 cancelled as a sibling
    assert_eq!(p.get(up2).unwrap().public.as_str(), "cancelled");
    // An operator replays up2 before its edge is resolved (its Resolve
    // unit is still queued).
    let (idx, e) = p.record_mut(up2).unwrap();
    moves::operate(idx, e, Op::Replay { max_replays: 2 }, None, &env)
        .0
        .unwrap();
    drain(&mut p, CASCADE_BUDGET);
    assert!(!p.index.flows.has_work());
    assert_eq!(p.get(up2).unwrap().public.as_str(), "waiting");
    // A restart now: the reloaded copy finds work the live one has not.
    let mut q = Partition::decode(&encoded(&p)).unwrap();
    drain(&mut q, CASCADE_BUDGET);
    assert_eq!(
        q.get(up2).unwrap().public.as_str(),
        p.get(up2).unwrap().public.as_str(),
        "up2 after a restart"
    );
    assert!(encoded(&q) == encoded(&p), "the partition after a restart");
}
