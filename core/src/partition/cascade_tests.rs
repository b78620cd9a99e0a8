//! Unit tests of flow work on a partition.

use super::*;
use crate::base::codec::Writer;
use crate::base::ids::ExecId;
use crate::base::state::{PublicState, TerminalOutcome};
use crate::execution::requests::Acquire;
use crate::execution::{Fence, Spec};
use crate::flows::{DependencyKind, FlowError, OnSatisfied, Policy, PolicyKind};
use crate::partition::flow_ops::{EdgeAdded, NewEdge};
use crate::partition::moves::Op;

// ---- helpers ---------------------------------------------------------------

const NOW: u64 = 1_000;
const FLOW: Uuid = Uuid(0xF10F);
const LEASE_MS: u64 = 1_000_000;

fn env(now: u64) -> Env {
    Env {
        now,
        retention_ms: 0,
        max_reclaims: 1,
    }
}

fn u(n: u128) -> Uuid {
    Uuid(n)
}

fn admit(p: &mut Partition, n: u128) {
    let id = ExecId {
        partition: 0,
        uuid: u(n),
    };
    let spec = Spec {
        lane: "l".into(),
        payload: b"p".to_vec().into(),
        ..Spec::default()
    };
    assert!(p
        .admit_new(id.uuid, |seq| Execution::new(id, spec, seq, NOW))
        .is_some());
}

/// A partition holding one flow with executions 1..=n as its members.
fn setup(n: u128) -> Partition {
    let mut p = Partition::new(0, 1);
    assert!(p.create_flow(FLOW, b"k"[..].into(), b"ns"[..].into(), NOW));
    for m in 1..=n {
        admit(&mut p, m);
        assert_eq!(p.add_member(FLOW, u(m), NOW), Ok((true, m as usize)));
    }
    p
}

fn edge_id(up: u128, down: u128) -> Uuid {
    Uuid(0xE << 64 | up << 32 | down)
}

fn new_edge(up: u128, down: u128) -> NewEdge {
    NewEdge {
        flow: FLOW,
        id: edge_id(up, down),
        up: u(up),
        down: u(down),
        kind: DependencyKind::SuccessOnly,
        data_ref: None,
        expected_revision: None,
    }
}

fn add(p: &mut Partition, e: NewEdge) -> Result<EdgeAdded, FlowError> {
    p.add_edge(e, &env(NOW), &mut |_, _, _| {})
}

fn edge(p: &mut Partition, up: u128, down: u128) {
    add(p, new_edge(up, down)).unwrap();
}

fn set_policy(p: &mut Partition, down: u128, kind: PolicyKind, k: u32, on: OnSatisfied) {
    let policy = Policy {
        kind,
        k,
        on_satisfied: on,
    };
    assert_eq!(p.set_policy(FLOW, u(down), policy, NOW), Ok(true));
}

/// Claims execution `n` for a worker.
fn claim_for(p: &mut Partition, n: u128, lease_ms: u64, now: u64) -> Fence {
    let (idx, e) = p.record_mut(u(n)).unwrap();
    let tries = e.attempts.len() as u128;
    let a = Acquire {
        id: e.id,
        worker_id: b"w",
        worker_instance_id: b"i",
        lease_ms,
        lease_id: Uuid(1 << 100 | n << 8 | tries),
        attempt_id: Uuid(2 << 100 | n << 8 | tries),
        at: now,
    };
    moves::acquire(idx, e, &a).0.unwrap().fence()
}

fn claim(p: &mut Partition, n: u128) -> Fence {
    claim_for(p, n, LEASE_MS, NOW)
}

/// Claims `n` and completes it with `result`.
fn complete(p: &mut Partition, n: u128, result: &[u8]) {
    let f = claim(p, n);
    complete_claimed(p, n, &f, result);
}

fn complete_claimed(p: &mut Partition, n: u128, f: &Fence, result: &[u8]) {
    let (idx, e) = p.record_mut(u(n)).unwrap();
    let r = Some(result.to_vec().into());
    moves::complete(idx, e, f, r, &env(NOW)).0.unwrap();
}

/// Claims `n` and fails it for good.
fn fail(p: &mut Partition, n: u128) {
    let f = claim(p, n);
    let (idx, e) = p.record_mut(u(n)).unwrap();
    let r = moves::fail(idx, e, &f, Some(b"boom"[..].into()), None, None, &env(NOW));
    assert_eq!(r.0, Ok(None));
}

/// An operator cancels `n`.
fn cancel(p: &mut Partition, n: u128) {
    let (idx, e) = p.record_mut(u(n)).unwrap();
    moves::cancel(idx, e, None, Some(b"op"[..].into()), &env(NOW))
        .0
        .unwrap();
}

fn replay(p: &mut Partition, n: u128) {
    let (idx, e) = p.record_mut(u(n)).unwrap();
    let op = Op::Replay { max_replays: 5 };
    moves::operate(idx, e, op, None, &env(NOW)).0.unwrap();
}

fn drain_budget(p: &mut Partition, budget: usize) -> usize {
    p.run_flow_work(&env(NOW), budget, &mut || false, &mut |_, _, _| {})
}

fn drain(p: &mut Partition) -> usize {
    drain_budget(p, CASCADE_BUDGET)
}

fn state(p: &Partition, n: u128) -> PublicState {
    p.get(u(n)).unwrap().public
}

fn states(p: &Partition, ns: impl IntoIterator<Item = u128>) -> Vec<PublicState> {
    ns.into_iter().map(|n| state(p, n)).collect()
}

fn reason(p: &Partition, n: u128) -> Option<&[u8]> {
    p.get(u(n)).unwrap().reason()
}

fn group(p: &Partition, down: u128) -> crate::flows::Group {
    *p.flow(FLOW).unwrap().group(u(down)).unwrap()
}

fn edge_state(p: &Partition, up: u128, down: u128) -> EdgeState {
    p.flow(FLOW).unwrap().between(u(up), u(down)).unwrap().state
}

fn encoding(p: &Partition) -> Vec<u8> {
    let mut w = Writer::default();
    p.encode(&mut w);
    w.buf
}

/// The partition as a restart loads it.
fn reloaded(p: &Partition) -> Partition {
    Partition::decode(&encoding(p)).unwrap()
}

/// Drains until no work is left; returns how many drains did some.
fn drain_all(p: &mut Partition, budget: usize) -> usize {
    let mut drains = 0;
    while p.index.flows.has_work() {
        drain_budget(p, budget);
        drains += 1;
        assert!(drains < 1000, "flow work never ends");
    }
    drains
}

use crate::base::state::PublicState::{
    Active, Cancelled, Completed, Failed as FailedState, Skipped, Waiting, WaitingChildren,
};

// ---- ordering and skips --------------------------------------------------------

#[test]
fn a_diamond_runs_in_order() {
    // 1 → 2, 1 → 3, 2 → 4, 3 → 4.
    let mut p = setup(4);
    for (a, b) in [(1, 2), (1, 3), (2, 4), (3, 4)] {
        edge(&mut p, a, b);
    }
    assert_eq!(
        states(&p, 1..=4),
        [Waiting, WaitingChildren, WaitingChildren, WaitingChildren]
    );
    assert_eq!(drain(&mut p), 0, "nothing has ended");
    complete(&mut p, 1, b"r1");
    drain(&mut p);
    assert_eq!(states(&p, 2..=4), [Waiting, Waiting, WaitingChildren]);
    complete(&mut p, 2, b"r2");
    drain(&mut p);
    assert_eq!(state(&p, 4), WaitingChildren, "3 has not completed");
    assert_eq!(group(&p, 4).succeeded, 1);
    complete(&mut p, 3, b"r3");
    drain(&mut p);
    assert_eq!(state(&p, 4), Waiting);
    assert_eq!(group(&p, 4).state, GroupState::Satisfied);
    assert!(!p.index.flows.has_work());
    // Released, it is claimable like any waiting execution.
    complete(&mut p, 4, b"r4");
    assert_eq!(p.flow(FLOW).unwrap().pending_edges(), 0);
}

#[test]
fn a_failed_head_skips_a_three_level_chain() {
    let mut p = setup(4);
    for (a, b) in [(1, 2), (2, 3), (3, 4)] {
        edge(&mut p, a, b);
    }
    fail(&mut p, 1);
    drain(&mut p);
    assert_eq!(state(&p, 1), FailedState);
    for n in 2..=4 {
        let e = p.get(u(n)).unwrap();
        assert_eq!(
            (e.public, e.terminal),
            (Skipped, TerminalOutcome::Skipped),
            "{n}"
        );
        assert_eq!(e.reason(), Some(&b"dependency_impossible"[..]));
    }
    assert_eq!(edge_state(&p, 1, 2), EdgeState::Failed);
    assert_eq!(edge_state(&p, 2, 3), EdgeState::Skipped);
    assert_eq!(edge_state(&p, 3, 4), EdgeState::Skipped);
    assert_eq!(group(&p, 4).state, GroupState::Impossible);
    assert!(!p.index.flows.has_work());
    assert_eq!(p.flow_tally(FLOW).unwrap().counts[Skipped as usize], 3);
}

#[test]
fn a_chain_skips_one_level_per_unit_of_budget() {
    let mut p = setup(4);
    for (a, b) in [(1, 2), (2, 3), (3, 4)] {
        edge(&mut p, a, b);
    }
    fail(&mut p, 1);
    assert_eq!(drain_budget(&mut p, 1), 1);
    assert_eq!(
        states(&p, 2..=4),
        [Skipped, WaitingChildren, WaitingChildren]
    );
    assert_eq!(drain_budget(&mut p, 1), 1);
    assert_eq!(states(&p, 2..=4), [Skipped, Skipped, WaitingChildren]);
    assert_eq!(drain_budget(&mut p, 1), 1);
    assert_eq!(state(&p, 4), Skipped);
    // 4's own (empty) resolution is left, and costs nothing.
    assert_eq!(drain_budget(&mut p, 1), 0);
    assert!(!p.index.flows.has_work());
}

// ---- any-of and quorum siblings ------------------------------------------------

/// Upstreams 1..=3 running, each with an edge into 4 under `policy`.
fn fan_in_running(kind: PolicyKind, k: u32, on: OnSatisfied) -> (Partition, Vec<Fence>) {
    let mut p = setup(4);
    set_policy(&mut p, 4, kind, k, on);
    for n in 1..=3 {
        edge(&mut p, n, 4);
    }
    let fences = (1..=3).map(|n| claim(&mut p, n)).collect();
    assert_eq!(states(&p, 1..=4), [Active, Active, Active, WaitingChildren]);
    (p, fences)
}

#[test]
fn any_of_cancel_remaining_releases_on_the_first_success_and_cancels_siblings() {
    let (mut p, fences) = fan_in_running(PolicyKind::AnyOf, 1, OnSatisfied::CancelRemaining);
    complete_claimed(&mut p, 2, &fences[1], b"won");
    drain(&mut p);
    assert_eq!(state(&p, 4), Waiting);
    for n in [1, 3] {
        assert_eq!(state(&p, n), Cancelled, "{n}");
        assert_eq!(reason(&p, n), Some(SIBLINGS_SATISFIED));
    }
    // The cancelled siblings' edges are counted into the fired group.
    let g = group(&p, 4);
    assert_eq!(
        (g.state, g.succeeded, g.failed),
        (GroupState::Satisfied, 1, 2)
    );
    assert!(!p.index.flows.has_work());
}

#[test]
fn any_of_let_run_cancels_none() {
    let (mut p, fences) = fan_in_running(PolicyKind::AnyOf, 1, OnSatisfied::LetRun);
    complete_claimed(&mut p, 1, &fences[0], b"won");
    drain(&mut p);
    assert_eq!(states(&p, 1..=4), [Completed, Active, Active, Waiting]);
    // The others finish and only count.
    complete_claimed(&mut p, 3, &fences[2], b"late");
    drain(&mut p);
    let g = group(&p, 4);
    assert_eq!(
        (g.state, g.succeeded, g.running()),
        (GroupState::Satisfied, 2, 1)
    );
    assert_eq!(state(&p, 2), Active);
}

#[test]
fn an_impossible_quorum_skips_and_cancels_the_rest() {
    // Quorum 3 of 5 (upstreams 1..=5 into 6), cancel remaining.
    let mut p = setup(6);
    set_policy(
        &mut p,
        6,
        PolicyKind::Quorum,
        3,
        OnSatisfied::CancelRemaining,
    );
    for n in 1..=5 {
        edge(&mut p, n, 6);
    }
    complete(&mut p, 1, b"ok");
    fail(&mut p, 2);
    drain(&mut p);
    assert_eq!(state(&p, 6), WaitingChildren, "1 of 2 failed: undecided");
    claim(&mut p, 4);
    fail(&mut p, 3);
    drain(&mut p);
    assert_eq!(state(&p, 6), WaitingChildren);
    fail(&mut p, 5);
    drain(&mut p);
    // Failed 3 of 5: at most 2 can succeed.
    let e = p.get(u(6)).unwrap();
    assert_eq!((e.public, e.terminal), (Skipped, TerminalOutcome::Skipped));
    assert_eq!(state(&p, 4), Cancelled, "the running sibling");
    assert_eq!(reason(&p, 4), Some(SIBLINGS_IMPOSSIBLE));
    assert_eq!(group(&p, 6).state, GroupState::Impossible);
    assert!(!p.index.flows.has_work());
}

#[test]
fn a_satisfied_quorum_cancels_waiting_and_held_siblings_too() {
    // 1, 2, 3 → 4 (quorum 1, cancel remaining); 3 is itself held by 5.
    let mut p = setup(5);
    set_policy(
        &mut p,
        4,
        PolicyKind::Quorum,
        1,
        OnSatisfied::CancelRemaining,
    );
    for n in 1..=3 {
        edge(&mut p, n, 4);
    }
    edge(&mut p, 5, 3);
    assert_eq!(state(&p, 3), WaitingChildren);
    complete(&mut p, 1, b"ok");
    drain(&mut p);
    assert_eq!(
        states(&p, 1..=5),
        [Completed, Cancelled, Cancelled, Waiting, Waiting]
    );
    assert_eq!(reason(&p, 3), Some(SIBLINGS_SATISFIED));
}

// ---- edges ----------------------------------------------------------------------

#[test]
fn an_edge_from_a_completed_upstream_resolves_on_the_next_drain() {
    let mut p = setup(2);
    complete(&mut p, 1, b"done");
    drain(&mut p);
    let added = add(&mut p, new_edge(1, 2)).unwrap();
    assert_eq!((added.unsatisfied, added.existed), (1, false));
    assert_eq!(state(&p, 2), WaitingChildren, "held until the drain");
    assert!(p.index.flows.has_work());
    drain(&mut p);
    assert_eq!(state(&p, 2), Waiting);
    assert_eq!(edge_state(&p, 1, 2), EdgeState::Satisfied);

    // From a failed upstream: skipped at the next drain.
    let mut p = setup(2);
    fail(&mut p, 1);
    edge(&mut p, 1, 2);
    drain(&mut p);
    assert_eq!(state(&p, 2), Skipped);
}

#[test]
fn an_edge_into_a_running_downstream_does_not_hold_it() {
    let mut p = setup(2);
    claim(&mut p, 2);
    edge(&mut p, 1, 2);
    assert_eq!(state(&p, 2), Active);
    fail(&mut p, 1);
    drain(&mut p);
    // Impossible: it ends skipped, its attempt cancelled.
    assert_eq!(state(&p, 2), Skipped);
}

/// The partition's encoding and index, to compare before and after.
fn snapshot(p: &Partition) -> (Vec<u8>, crate::partition::PartitionIndex) {
    (encoding(p), p.index.clone())
}

#[test]
fn refused_edges_change_nothing() {
    let mut p = setup(7);
    edge(&mut p, 1, 2);
    edge(&mut p, 2, 3);
    // 4 → 5 fired (satisfied); 6 ended.
    edge(&mut p, 4, 5);
    complete(&mut p, 4, b"x");
    cancel(&mut p, 6);
    drain(&mut p);
    assert_eq!(group(&p, 5).state, GroupState::Satisfied);
    admit(&mut p, 8); // not a member
    let revision = p.flow(FLOW).unwrap().revision;
    let stale = NewEdge {
        expected_revision: Some(revision - 1),
        ..new_edge(1, 7)
    };
    let taken = NewEdge {
        id: edge_id(1, 2),
        ..new_edge(1, 7)
    };
    let other_id = NewEdge {
        id: Uuid(77),
        ..new_edge(1, 2)
    };
    let no_flow = NewEdge {
        flow: Uuid(5),
        ..new_edge(1, 7)
    };
    let cases: Vec<(&str, NewEdge, FlowError)> = vec![
        ("self edge", new_edge(3, 3), FlowError::SelfEdge),
        ("cycle", new_edge(3, 1), FlowError::Cycle),
        ("reverse edge", new_edge(2, 1), FlowError::Cycle),
        (
            "stale revision",
            stale,
            FlowError::StaleRevision {
                expected: revision - 1,
                current: revision,
            },
        ),
        (
            "duplicate pair",
            other_id,
            FlowError::DependencyExists(
                String::from_utf8_lossy(&edge_id(1, 2).text()).into_owned(),
            ),
        ),
        ("edge id taken", taken, FlowError::EdgeIdTaken),
        ("group fired", new_edge(7, 5), FlowError::GroupFired),
        (
            "downstream ended",
            new_edge(7, 6),
            FlowError::DownstreamEnded,
        ),
        (
            "not a member",
            new_edge(8, 7),
            FlowError::NotInFlow("upstream"),
        ),
        ("no flow", no_flow, FlowError::FlowNotFound),
    ];
    for (what, e, want) in cases {
        let before = snapshot(&p);
        assert_eq!(add(&mut p, e), Err(want), "{what}");
        assert!(snapshot(&p) == before, "{what} changed the partition");
    }
    // A retry of an edge already there changes nothing either.
    let before = snapshot(&p);
    let again = add(&mut p, new_edge(1, 2)).unwrap();
    assert!(again.existed);
    assert_eq!(again.revision, revision);
    assert!(snapshot(&p) == before);
    // A revision that matches is taken.
    let ok = NewEdge {
        expected_revision: Some(revision),
        ..new_edge(1, 7)
    };
    assert_eq!(add(&mut p, ok).unwrap().revision, revision + 1);
}

#[test]
fn refused_policies_change_nothing() {
    let mut p = setup(3);
    edge(&mut p, 1, 2);
    set_policy(&mut p, 3, PolicyKind::AnyOf, 1, OnSatisfied::LetRun);
    let any = Policy {
        kind: PolicyKind::AnyOf,
        k: 1,
        on_satisfied: OnSatisfied::LetRun,
    };
    let before = snapshot(&p);
    assert_eq!(
        p.set_policy(FLOW, u(2), any, NOW),
        Err(FlowError::PolicyFixed)
    );
    assert_eq!(
        p.set_policy(FLOW, u(3), Policy::ALL_OF, NOW),
        Err(FlowError::PolicyChanged)
    );
    assert_eq!(
        p.set_policy(FLOW, u(3), any, NOW),
        Ok(false),
        "the same again"
    );
    assert_eq!(
        p.set_policy(FLOW, u(9), any, NOW),
        Err(FlowError::NotInFlow("downstream"))
    );
    assert!(snapshot(&p) == before);
}

// ---- cancelling a flow --------------------------------------------------------

/// Members: 1 waiting, 2 running, 3 completed, 4 held by 1.
fn mixed() -> Partition {
    let mut p = setup(4);
    edge(&mut p, 1, 4);
    claim(&mut p, 2);
    complete(&mut p, 3, b"done");
    drain(&mut p);
    assert_eq!(
        states(&p, 1..=4),
        [Waiting, Active, Completed, WaitingChildren]
    );
    p
}

fn cancel_flow(p: &mut Partition, policy: CancelPolicy) {
    let r = p.cancel_flow(FLOW, policy, b"flow_cancelled"[..].into(), NOW);
    assert!(r.unwrap().now);
}

#[test]
fn cancel_all_cancels_every_member_not_ended() {
    let mut p = mixed();
    cancel_flow(&mut p, CancelPolicy::CancelAll);
    assert!(p.index.flows.is_cancelling(u(1)));
    drain(&mut p);
    assert_eq!(
        states(&p, 1..=4),
        [Cancelled, Cancelled, Completed, Cancelled]
    );
    for n in [1, 2, 4] {
        assert_eq!(reason(&p, n), Some(&b"flow_cancelled"[..]), "{n}");
    }
    assert_eq!(p.members_to_cancel(FLOW), 0);
    assert!(!p.flow_cascading(FLOW));
    assert!(!p.index.flows.has_work());
    // A second cancel keeps the first policy.
    let again = p.cancel_flow(FLOW, CancelPolicy::FlowOnly, b"x"[..].into(), NOW);
    assert_eq!(
        again,
        Ok(crate::partition::flow_ops::FlowCancelled {
            policy: CancelPolicy::CancelAll,
            now: false
        })
    );
}

#[test]
fn cancel_pending_leaves_a_leased_member_running() {
    let mut p = mixed();
    cancel_flow(&mut p, CancelPolicy::CancelPending);
    drain(&mut p);
    assert_eq!(states(&p, 1..=4), [Cancelled, Active, Completed, Cancelled]);
    assert_eq!(p.members_to_cancel(FLOW), 0);
    assert!(!p.index.flows.has_work());
}

#[test]
fn cancel_pending_cancels_a_running_member_once_it_parks() {
    let mut p = setup(2);
    let f = claim(&mut p, 2);
    cancel_flow(&mut p, CancelPolicy::CancelPending);
    drain(&mut p);
    assert_eq!(states(&p, 1..=2), [Cancelled, Active]);
    // The holder delays its execution: no longer under a live lease.
    let (idx, e) = p.record_mut(u(2)).unwrap();
    moves::delay(idx, e, &f, NOW + 50, &env(NOW)).0.unwrap();
    drain(&mut p);
    assert_eq!(state(&p, 2), Cancelled);
}

#[test]
fn cancel_pending_lets_a_running_member_complete() {
    let mut p = setup(2);
    let f = claim(&mut p, 2);
    cancel_flow(&mut p, CancelPolicy::CancelPending);
    drain(&mut p);
    complete_claimed(&mut p, 2, &f, b"done");
    drain(&mut p);
    assert_eq!(states(&p, 1..=2), [Cancelled, Completed]);
    assert!(!p.index.flows.has_work());
}

/// A member of a cancel_pending flow whose lease runs out is no longer
/// running under a live lease, so the policy cancels it; but its public
/// state stays `active`, the flow index sees no move, and no CancelFlow
/// work is queued. A reloaded copy derives the work and cancels it.
#[test]
fn cancel_pending_cancels_a_member_whose_lease_ran_out() {
    let mut p = setup(2);
    let f = claim_for(&mut p, 2, 100, NOW);
    cancel_flow(&mut p, CancelPolicy::CancelPending);
    drain(&mut p);
    assert_eq!(states(&p, 1..=2), [Cancelled, Active]);
    // The holder renews too late: the lease is settled as run out.
    let later = Env {
        now: NOW + 500,
        ..env(NOW)
    };
    let (idx, e) = p.record_mut(u(2)).unwrap();
    let r = moves::renew(idx, e, &f, 100, &later);
    assert!(r.0.is_err());
    assert!(e.is_reclaimable());
    assert_eq!(p.members_to_cancel(FLOW), 1);
    let mut q = reloaded(&p);
    drain(&mut q);
    assert_eq!(state(&q, 2), Cancelled, "the reloaded partition cancels it");
    drain(&mut p);
    assert_eq!(state(&p, 2), Cancelled, "the live partition leaves it");
}

#[test]
fn flow_only_cancels_no_member() {
    let mut p = mixed();
    let before = p.records.clone();
    cancel_flow(&mut p, CancelPolicy::FlowOnly);
    assert!(!p.index.flows.is_cancelling(u(1)));
    assert_eq!(drain(&mut p), 0);
    assert_eq!(p.records, before);
    assert!(p.flow(FLOW).unwrap().is_cancelled());
    // It takes no more members or edges.
    admit(&mut p, 5);
    assert_eq!(
        p.add_member(FLOW, u(5), NOW),
        Err(FlowError::FlowAlreadyTerminal)
    );
    assert_eq!(
        add(&mut p, new_edge(2, 1)),
        Err(FlowError::FlowAlreadyTerminal)
    );
    // Its edges still resolve.
    complete(&mut p, 1, b"x");
    drain(&mut p);
    assert_eq!(state(&p, 4), Waiting);
}

// ---- budgets and restarts --------------------------------------------------------

/// Upstreams 1..=50 completed, each with an edge into 51 (all-of).
fn fan_in_50() -> Partition {
    let mut p = setup(51);
    for n in 1..=50 {
        edge(&mut p, n, 51);
    }
    for n in 1..=50 {
        complete(&mut p, n, b"r");
    }
    p
}

#[test]
fn a_fan_in_over_small_budgets_ends_as_one_drain_does() {
    let mut whole = fan_in_50();
    assert_eq!(drain_budget(&mut whole, 1000), 50);
    assert_eq!(state(&whole, 51), Waiting);

    let mut p = fan_in_50();
    for round in 1..=4 {
        assert_eq!(drain_budget(&mut p, 10), 10, "round {round}");
        assert_eq!(state(&p, 51), WaitingChildren, "round {round}");
        assert_eq!(group(&p, 51).succeeded, 10 * round);
    }
    assert_eq!(drain_budget(&mut p, 10), 10);
    assert_eq!(state(&p, 51), Waiting);
    assert_eq!(drain_budget(&mut p, 10), 0);
    assert!(!p.index.flows.has_work());
    assert!(encoding(&p) == encoding(&whole));
}

#[test]
fn a_fan_in_reloaded_midway_finishes_the_same() {
    let mut whole = fan_in_50();
    drain(&mut whole);

    let mut p = fan_in_50();
    drain_budget(&mut p, 10);
    drain_budget(&mut p, 10);
    let mut q = reloaded(&p);
    assert_eq!(
        q.index.flows.work, p.index.flows.work,
        "the same work derived"
    );
    assert!(p.flow_cascading(FLOW) && q.flow_cascading(FLOW));
    assert_eq!(drain_all(&mut q, 10), 3);
    assert_eq!(drain_all(&mut p, 10), 3);
    assert_eq!(state(&q, 51), Waiting);
    assert!(encoding(&q) == encoding(&whole));
    assert!(encoding(&p) == encoding(&whole));
}

#[test]
fn cancel_all_over_small_budgets_ends_as_one_drain_does() {
    let build = || {
        let mut p = setup(30);
        cancel_flow(&mut p, CancelPolicy::CancelAll);
        p
    };
    let mut whole = build();
    assert_eq!(drain(&mut whole), 30);
    assert!((1..=30).all(|n| state(&whole, n) == Cancelled));

    let mut p = build();
    assert_eq!(drain_budget(&mut p, 7), 7);
    assert_eq!(p.members_to_cancel(FLOW), 23);
    assert_eq!(drain_budget(&mut p, 7), 7);
    // Reloaded after two drains: the rest is derived and done the same.
    let mut q = reloaded(&p);
    assert!(q.index.flows.work.contains(&Work::CancelFlow(FLOW)));
    assert_eq!(drain_all(&mut p, 7), 3);
    assert_eq!(drain_all(&mut q, 7), 3);
    assert_eq!(p.members_to_cancel(FLOW), 0);
    let end = encoding(&whole);
    assert!(encoding(&p) == end);
    assert!(encoding(&q) == end);
}

#[test]
fn a_sibling_cancel_reloaded_midway_finishes_the_same() {
    // 1..=20 running into 21 (any-of, cancel remaining); 1 wins.
    let build = || {
        let mut p = setup(21);
        set_policy(
            &mut p,
            21,
            PolicyKind::AnyOf,
            1,
            OnSatisfied::CancelRemaining,
        );
        for n in 1..=20 {
            edge(&mut p, n, 21);
        }
        for n in 2..=20 {
            claim(&mut p, n);
        }
        complete(&mut p, 1, b"won");
        p
    };
    let mut whole = build();
    drain(&mut whole);
    assert!((2..=20).all(|n| state(&whole, n) == Cancelled));

    let mut p = build();
    drain_budget(&mut p, 5);
    assert_eq!(state(&p, 21), Waiting);
    let mut q = reloaded(&p);
    assert!(q
        .index
        .flows
        .work
        .iter()
        .any(|w| matches!(w, Work::CancelSiblings(_))));
    assert_eq!(q.index.flows.work, p.index.flows.work);
    drain_all(&mut p, 5);
    drain_all(&mut q, 5);
    let end = encoding(&whole);
    assert!(encoding(&p) == end);
    assert!(encoding(&q) == end);
}

#[test]
fn a_reloaded_partition_rebuilds_the_flow_index() {
    let mut p = setup(4);
    for (a, b) in [(1, 2), (1, 3), (2, 4), (3, 4)] {
        edge(&mut p, a, b);
    }
    complete(&mut p, 1, b"r");
    let q = reloaded(&p);
    assert_eq!(q.index.flows.member_of, p.index.flows.member_of);
    assert_eq!(q.index.flows.tallies, p.index.flows.tallies);
    assert_eq!(q.index.flows.work, p.index.flows.work);
    assert_eq!(q.flow(FLOW), p.flow(FLOW));
    assert!(encoding(&q) == encoding(&p));
}

/// The running count of flow bytes is documented as the flows'
/// `Flow::mem_usage`; set_policy adds a flat 64 and cancel_flow adds the
/// reason's length + 32, neither of which is what mem_usage counts, so
/// a live partition and its reloaded copy report different sizes.
#[test]
fn the_flow_byte_count_is_the_flows_mem_usage() {
    let mut p = setup(3);
    let sum = |p: &Partition| p.flows().map(Flow::mem_usage).sum::<usize>();
    edge(&mut p, 1, 2);
    assert_eq!(p.index.flow_bytes, sum(&p), "after members and edges");
    set_policy(&mut p, 3, PolicyKind::AnyOf, 1, OnSatisfied::LetRun);
    assert_eq!(p.index.flow_bytes, sum(&p), "after set_policy");
    cancel_flow(&mut p, CancelPolicy::FlowOnly);
    assert_eq!(p.index.flow_bytes, sum(&p), "after cancel_flow");
    assert_eq!(reloaded(&p).index.flow_bytes, p.index.flow_bytes);
}

// ---- replays and parked members --------------------------------------------------------

#[test]
fn a_replayed_skipped_downstream_is_skipped_again_while_its_upstream_failed() {
    let mut p = setup(2);
    edge(&mut p, 1, 2);
    fail(&mut p, 1);
    drain(&mut p);
    assert_eq!(state(&p, 2), Skipped);
    replay(&mut p, 2);
    assert_eq!(p.index.flows.revived.len(), 1);
    drain(&mut p);
    let e = p.get(u(2)).unwrap();
    assert_eq!((e.public, e.replay_count), (Skipped, 1));
    assert_eq!(group(&p, 2).state, GroupState::Impossible);
    assert_eq!(group(&p, 2).failed, 1, "counted once after the reset");
}

#[test]
fn a_replayed_skipped_downstream_re_resolves_from_its_upstreams_now() {
    // 1, 3 → 2; 1 fails so 2 is skipped; 1 is replayed and completes,
    // then 2 is replayed: both edges satisfy it now.
    let mut p = setup(3);
    edge(&mut p, 1, 2);
    edge(&mut p, 3, 2);
    complete(&mut p, 3, b"three");
    fail(&mut p, 1);
    drain(&mut p);
    assert_eq!(state(&p, 2), Skipped);
    replay(&mut p, 1);
    drain(&mut p);
    assert_eq!(
        group(&p, 2).state,
        GroupState::Impossible,
        "a fired group stays"
    );
    complete(&mut p, 1, b"one");
    drain(&mut p);
    assert_eq!(
        edge_state(&p, 1, 2),
        EdgeState::Failed,
        "resolved before the replay"
    );
    replay(&mut p, 2);
    drain(&mut p);
    assert_eq!(state(&p, 2), Waiting);
    let g = group(&p, 2);
    assert_eq!(
        (g.state, g.succeeded, g.failed),
        (GroupState::Satisfied, 2, 0)
    );
    assert_eq!(edge_state(&p, 1, 2), EdgeState::Satisfied);
    assert_eq!(edge_state(&p, 3, 2), EdgeState::Satisfied);
}

#[test]
fn a_replayed_upstream_takes_back_its_resolution_from_a_pending_group() {
    // 1, 2 → 3 (all-of): 1 completes, is replayed, then fails.
    let mut p = setup(3);
    edge(&mut p, 1, 3);
    edge(&mut p, 2, 3);
    complete(&mut p, 1, b"r");
    drain(&mut p);
    assert_eq!(group(&p, 3).succeeded, 1);
    replay(&mut p, 1);
    drain(&mut p);
    assert_eq!(group(&p, 3).succeeded, 0);
    assert_eq!(edge_state(&p, 1, 3), EdgeState::Pending);
    fail(&mut p, 1);
    drain(&mut p);
    assert_eq!(state(&p, 3), Skipped);
}

#[test]
fn a_parked_member_whose_group_is_satisfied_is_released() {
    let mut p = setup(2);
    edge(&mut p, 1, 2);
    complete(&mut p, 1, b"r");
    drain(&mut p);
    assert_eq!(state(&p, 2), Waiting);
    let f = claim(&mut p, 2);
    let (idx, e) = p.record_mut(u(2)).unwrap();
    moves::wait_for_children(idx, e, &f, &env(NOW)).0.unwrap();
    assert_eq!(state(&p, 2), WaitingChildren);
    assert_eq!(p.index.flows.recheck.len(), 1);
    drain(&mut p);
    assert_eq!(state(&p, 2), Waiting);
    assert!(!p.index.flows.has_work());
    // It resumes its attempt at the next claim.
    let f = claim(&mut p, 2);
    complete_claimed(&mut p, 2, &f, b"done");
    assert_eq!(p.get(u(2)).unwrap().attempts.len(), 1);
}

#[test]
fn a_parked_member_waits_for_its_group() {
    let mut p = setup(2);
    let f = claim(&mut p, 2);
    edge(&mut p, 1, 2);
    let (idx, e) = p.record_mut(u(2)).unwrap();
    moves::wait_for_children(idx, e, &f, &env(NOW)).0.unwrap();
    drain(&mut p);
    assert_eq!(state(&p, 2), WaitingChildren, "its group is pending");
    complete(&mut p, 1, b"r");
    drain(&mut p);
    assert_eq!(state(&p, 2), Waiting);
}

// ---- data and retention ---------------------------------------------------------------

#[test]
fn an_edge_with_data_hands_the_result_on() {
    let mut p = setup(4);
    add(
        &mut p,
        NewEdge {
            data_ref: Some(b"out"[..].into()),
            ..new_edge(1, 2)
        },
    )
    .unwrap();
    edge(&mut p, 3, 4);
    complete(&mut p, 1, b"hello");
    complete(&mut p, 3, b"ignored");
    drain(&mut p);
    let down = p.get(u(2)).unwrap();
    assert_eq!((down.public, &*down.payload), (Waiting, &b"hello"[..]));
    assert_eq!(&*p.get(u(4)).unwrap().payload, b"p", "no data on the edge");
    // The payload survives a reload.
    assert_eq!(&*reloaded(&p).get(u(2)).unwrap().payload, b"hello");
}

#[test]
fn a_failed_upstream_hands_no_data_on() {
    let mut p = setup(2);
    add(
        &mut p,
        NewEdge {
            data_ref: Some(b"out"[..].into()),
            ..new_edge(1, 2)
        },
    )
    .unwrap();
    fail(&mut p, 1);
    drain(&mut p);
    assert_eq!(&*p.get(u(2)).unwrap().payload, b"p");
}

#[test]
fn removing_the_last_member_removes_the_flow() {
    let mut p = setup(2);
    edge(&mut p, 1, 2);
    complete(&mut p, 1, b"r");
    // Retention removes 1 before any drain: its edges resolve first.
    p.settle_before_removal(u(1), &env(NOW), &mut |_, _, _| {});
    assert!(p.remove(u(1)).is_some());
    assert_eq!(state(&p, 2), Waiting);
    assert_eq!(p.flow(FLOW).unwrap().members, [u(2)]);
    assert_eq!(p.flow_of(u(2)), Some(FLOW));
    drain(&mut p);
    assert!(!p.index.flows.has_work());
    // The partition still reloads (an edge names a removed record).
    assert!(encoding(&reloaded(&p)) == encoding(&p));
    complete(&mut p, 2, b"r");
    drain(&mut p);
    assert!(p.remove(u(2)).is_some());
    assert!(p.flow(FLOW).is_none());
    assert_eq!(p.flow_count(), 0);
    assert!(p.flow_tally(FLOW).is_none());
    assert!(p.index.flows.member_of.is_empty());
    assert_eq!(p.index.flow_bytes, 0);
    assert!(encoding(&reloaded(&p)) == encoding(&p));
}

#[test]
fn a_replay_after_the_upstream_was_removed_keeps_its_resolution() {
    let mut p = setup(3);
    edge(&mut p, 1, 3);
    edge(&mut p, 2, 3);
    complete(&mut p, 1, b"r");
    fail(&mut p, 2);
    drain(&mut p);
    assert_eq!(state(&p, 3), Skipped);
    p.remove(u(1));
    replay(&mut p, 2);
    drain(&mut p);
    complete(&mut p, 2, b"r");
    drain(&mut p);
    assert_eq!(state(&p, 3), Skipped, "its group has fired");
    replay(&mut p, 3);
    drain(&mut p);
    // 1's success stands; 2's is resolved again.
    assert_eq!(state(&p, 3), Waiting);
    assert_eq!(group(&p, 3).succeeded, 2);
}

// ---- holds and retries ----------------------------------------------------------------

/// Fires the partition's due entries up to `at` (delays, leases), as the
/// timer would.
fn fire_due(p: &mut Partition, at: u64) {
    while let Some((kind, _, who)) = p.index.pop_due(at, 0) {
        let (idx, e) = p.record_mut(who).unwrap();
        moves::on_due(idx, e, kind, &env(at));
    }
}

#[test]
fn a_delayed_downstream_is_held_then_delayed_again() {
    let mut p = setup(1);
    let id = ExecId {
        partition: 0,
        uuid: u(2),
    };
    let spec = Spec {
        lane: "l".into(),
        delay_until: Some(NOW + 500),
        ..Spec::default()
    };
    p.admit_new(id.uuid, |seq| Execution::new(id, spec, seq, NOW));
    p.add_member(FLOW, u(2), NOW).unwrap();
    assert_eq!(state(&p, 2), PublicState::Delayed);
    edge(&mut p, 1, 2);
    assert_eq!(state(&p, 2), WaitingChildren);
    assert!(p.index.delayed.is_empty(), "held, not due");
    complete(&mut p, 1, b"r");
    drain(&mut p);
    assert_eq!(
        state(&p, 2),
        PublicState::Delayed,
        "its delay is still ahead"
    );
    fire_due(&mut p, NOW + 500);
    assert_eq!(state(&p, 2), Waiting);
}

#[test]
fn an_upstream_retrying_leaves_its_edge_pending() {
    let mut p = setup(2);
    edge(&mut p, 1, 2);
    let f = claim(&mut p, 1);
    let (idx, e) = p.record_mut(u(1)).unwrap();
    moves::fail(idx, e, &f, None, None, Some(NOW + 10), &env(NOW))
        .0
        .unwrap();
    drain(&mut p);
    assert_eq!(state(&p, 1), PublicState::Delayed);
    assert_eq!(edge_state(&p, 1, 2), EdgeState::Pending);
    assert_eq!(state(&p, 2), WaitingChildren);
    fire_due(&mut p, NOW + 10);
    complete(&mut p, 1, b"second try");
    drain(&mut p);
    assert_eq!(state(&p, 2), Waiting);
}

/// An edge into an operator-blocked downstream does not hold it (the
/// hold only applies to a waiting or delayed execution), and nothing holds
/// it later: unblocked, it is claimable while its group is still pending.
#[test]
fn an_unblocked_downstream_is_still_held_by_its_pending_edges() {
    let mut p = setup(2);
    let (idx, e) = p.record_mut(u(2)).unwrap();
    moves::operate(idx, e, Op::Block, None, &env(NOW))
        .0
        .unwrap();
    edge(&mut p, 1, 2);
    let (idx, e) = p.record_mut(u(2)).unwrap();
    moves::operate(idx, e, Op::Unblock, None, &env(NOW))
        .0
        .unwrap();
    drain(&mut p);
    assert_eq!(group(&p, 2).state, GroupState::Pending);
    let e = p.get(u(2)).unwrap();
    assert!(!e.is_claimable(), "claimable before its upstream ended");
    assert_eq!(e.public, WaitingChildren);
}

/// The same gap for a downstream that was running when its edge came: a
/// retry (or FF.DELAY) puts it back in the queue with its group pending.
#[test]
fn a_retried_downstream_is_held_by_its_pending_edges() {
    let mut p = setup(2);
    let f = claim(&mut p, 2);
    edge(&mut p, 1, 2);
    let (idx, e) = p.record_mut(u(2)).unwrap();
    moves::fail(idx, e, &f, None, None, Some(NOW + 10), &env(NOW))
        .0
        .unwrap();
    drain(&mut p);
    fire_due(&mut p, NOW + 10);
    drain(&mut p);
    assert_eq!(group(&p, 2).state, GroupState::Pending);
    assert!(!p.get(u(2)).unwrap().is_claimable());
}

// ---- the flow's state -------------------------------------------------------------------

fn flow_state(p: &Partition) -> &'static str {
    crate::partition::flow_ops::flow_state(p.flow(FLOW).unwrap(), p.flow_tally(FLOW))
}

#[test]
fn a_flow_state_follows_its_members() {
    let mut p = setup(0);
    assert_eq!(flow_state(&p), "open", "empty");
    admit(&mut p, 1);
    admit(&mut p, 2);
    p.add_member(FLOW, u(1), NOW).unwrap();
    p.add_member(FLOW, u(2), NOW).unwrap();
    edge(&mut p, 1, 2);
    assert_eq!(flow_state(&p), "open");
    let f = claim(&mut p, 1);
    assert_eq!(flow_state(&p), "running");
    let (idx, e) = p.record_mut(u(1)).unwrap();
    moves::wait_for_children(idx, e, &f, &env(NOW)).0.unwrap();
    drain(&mut p);
    assert_eq!(flow_state(&p), "blocked", "every member waits on others");
    let (idx, e) = p.record_mut(u(1)).unwrap();
    moves::operate(idx, e, Op::Unblock, None, &env(NOW))
        .0
        .unwrap();
    complete(&mut p, 1, b"r");
    drain(&mut p);
    complete(&mut p, 2, b"r");
    assert_eq!(flow_state(&p), "completed");

    let mut q = setup(2);
    edge(&mut q, 1, 2);
    fail(&mut q, 1);
    drain(&mut q);
    assert_eq!(flow_state(&q), "failed");
    cancel_flow(&mut q, CancelPolicy::FlowOnly);
    assert_eq!(flow_state(&q), "cancelled");
}
