//! Unit tests of the flows room (written by a helper).

use crate::base::args::Origin;
use crate::base::codec::Writer;
use crate::base::errors::{CmdError, Code};
use crate::base::ids::{ExecId, Uuid};
use crate::base::testing::{split, L};
use crate::flows::requests::*;
use crate::flows::*;

// ---- helpers ---------------------------------------------------------------

const NOW: u64 = 100;

fn policy(kind: PolicyKind, k: u32, on_satisfied: OnSatisfied) -> Policy {
    Policy {
        kind,
        k,
        on_satisfied,
    }
}

/// A group of `n` edges under `p`, nothing resolved.
fn group(p: Policy, n: u32) -> Group {
    let mut g = Group::new(p, true);
    g.n = n;
    g
}

fn all_of(n: u32) -> Group {
    group(Policy::ALL_OF, n)
}

fn any_of(n: u32) -> Group {
    group(
        policy(PolicyKind::AnyOf, 1, OnSatisfied::CancelRemaining),
        n,
    )
}

fn quorum(k: u32, n: u32) -> Group {
    group(policy(PolicyKind::Quorum, k, OnSatisfied::LetRun), n)
}

use crate::flows::group::Bucket::{Failed as F, Skipped as K, Succeeded as S};

/// Resolves `bs` in turn (at times NOW, NOW+1, ...); returns what each
/// resolution fired.
fn resolve_all(g: &mut Group, bs: &[Bucket]) -> Vec<Option<GroupState>> {
    bs.iter()
        .enumerate()
        .map(|(i, &b)| g.resolve(b, NOW + i as u64))
        .collect()
}

fn edge(id: u128, up: u128, down: u128) -> Edge {
    Edge {
        id: Uuid(id),
        up: Uuid(up),
        down: Uuid(down),
        kind: DependencyKind::SuccessOnly,
        data_ref: None,
        state: EdgeState::Pending,
        created_at: NOW,
        resolved_at: None,
    }
}

/// A flow over members 11, 12, 13: edges 11→13 (resolved, with data) and
/// 12→13 (pending) into a fired any-of group, tags, and a cancellation.
fn sample_flow() -> Flow {
    let mut f = Flow::new(Uuid(1), b"etl"[..].into(), b"ns"[..].into(), 10);
    f.last_mutation_at = 40;
    f.revision = 5;
    f.tags.insert(b"a.b"[..].into(), b"one"[..].into());
    f.tags.insert(b"c.d"[..].into(), b""[..].into());
    f.members = vec![Uuid(11), Uuid(12), Uuid(13)];
    f.push_edge(Edge {
        data_ref: Some(b"out"[..].into()),
        state: EdgeState::Satisfied,
        resolved_at: Some(30),
        ..edge(21, 11, 13)
    });
    f.push_edge(edge(22, 12, 13));
    let mut g = group(
        policy(PolicyKind::AnyOf, 1, OnSatisfied::CancelRemaining),
        2,
    );
    g.succeeded = 1;
    g.state = GroupState::Satisfied;
    g.fired_at = Some(30);
    f.groups.insert(Uuid(13), g);
    f.cancel = Some(Cancellation {
        at: 50,
        reason: b"stop"[..].into(),
        policy: CancelPolicy::CancelPending,
    });
    f
}

fn encode(f: &Flow) -> Vec<u8> {
    let mut w = Writer::default();
    f.encode(&mut w);
    w.buf
}

/// What decoding `f`'s encoding refuses it with.
fn refusal(f: &Flow) -> &'static str {
    match Flow::decode(&encode(f)) {
        Ok(_) => panic!("decoded a corrupt flow"),
        Err(e) => e.0,
    }
}

fn id(partition: u16, n: u128) -> String {
    ExecId {
        partition,
        uuid: Uuid(n),
    }
    .key()
}

/// The flow `{fp:1}:..01` and its partition's members `{fp:1}:..0N`.
fn f1() -> String {
    id(1, 1)
}

fn m1(n: u128) -> String {
    id(1, n)
}

fn refused<T: std::fmt::Debug>(r: Result<T, CmdError>) -> CmdError {
    r.expect_err("accepted a bad request")
}

// ---- groups ----------------------------------------------------------------

#[test]
fn all_of_is_satisfied_by_every_success_and_impossible_at_one_failure() {
    let mut g = all_of(3);
    assert_eq!(g.needed(), 3);
    assert_eq!(
        resolve_all(&mut g, &[S, S, S]),
        [None, None, Some(GroupState::Satisfied)]
    );
    assert_eq!(
        (g.state, g.fired_at),
        (GroupState::Satisfied, Some(NOW + 2))
    );

    let mut g = all_of(3);
    assert_eq!(
        resolve_all(&mut g, &[S, F]),
        [None, Some(GroupState::Impossible)]
    );
    assert_eq!(g.running(), 1);
    // A skip counts like a failure.
    let mut g = all_of(3);
    assert_eq!(g.resolve(K, NOW), Some(GroupState::Impossible));
    // All-of never cancels its upstreams.
    assert!(!g.cancels_remaining());
}

#[test]
fn any_of_is_satisfied_by_the_first_success_and_impossible_when_all_fail() {
    let mut g = any_of(3);
    assert_eq!(g.resolve(S, NOW), Some(GroupState::Satisfied));
    assert!(g.cancels_remaining());
    assert_eq!(g.running(), 2);

    let mut g = any_of(3);
    assert_eq!(
        resolve_all(&mut g, &[F, F, F]),
        [None, None, Some(GroupState::Impossible)]
    );
    let mut g = any_of(3);
    assert_eq!(
        resolve_all(&mut g, &[F, K, S]),
        [None, None, Some(GroupState::Satisfied)]
    );
}

#[test]
fn quorum_three_of_five() {
    let mut g = quorum(3, 5);
    assert_eq!(resolve_all(&mut g, &[F, F]), [None, None]);
    assert_eq!(g.decide(), GroupState::Pending);

    let mut g = quorum(3, 5);
    assert_eq!(
        resolve_all(&mut g, &[S, S, F, F, S]),
        [None, None, None, None, Some(GroupState::Satisfied)]
    );

    let mut g = quorum(3, 5);
    assert_eq!(
        resolve_all(&mut g, &[S, S, F, F, F]),
        [None, None, None, None, Some(GroupState::Impossible)]
    );
    // Let-run: a fired quorum cancels none.
    assert!(!g.cancels_remaining());
}

#[test]
fn quorum_of_all_is_impossible_at_one_failure() {
    let mut g = quorum(3, 3);
    assert_eq!(g.resolve(F, NOW), Some(GroupState::Impossible));
}

#[test]
fn a_fired_group_only_counts_later_resolutions() {
    let mut g = any_of(4);
    assert_eq!(g.resolve(S, 7), Some(GroupState::Satisfied));
    assert_eq!(resolve_all(&mut g, &[F, S, K]), [None, None, None]);
    assert_eq!((g.succeeded, g.failed, g.skipped), (2, 1, 1));
    assert_eq!((g.state, g.fired_at), (GroupState::Satisfied, Some(7)));
    // Every edge is resolved: a further resolution is not even counted.
    assert_eq!(g.resolve(S, 99), None);
    assert_eq!(g.resolved(), 4);
    assert_eq!(g.fire(99), None, "fires once");

    // An impossible group stays impossible whatever comes after.
    let mut g = all_of(2);
    assert_eq!(g.resolve(F, 3), Some(GroupState::Impossible));
    assert_eq!(g.resolve(S, 4), None);
    assert_eq!((g.state, g.fired_at), (GroupState::Impossible, Some(3)));
}

#[test]
fn a_quorum_above_its_edges_waits_for_more_edges() {
    let mut g = quorum(3, 2);
    assert_eq!(resolve_all(&mut g, &[S, S]), [None, None]);
    assert_eq!(g.decide(), GroupState::Pending);
    // Failures decide nothing either while more edges may come.
    let mut h = quorum(3, 2);
    assert_eq!(resolve_all(&mut h, &[F, F]), [None, None]);
    // A third edge: its success reaches the quorum.
    g.n += 1;
    assert_eq!(g.resolve(S, 50), Some(GroupState::Satisfied));
    assert_eq!(g.fired_at, Some(50));
    // With two failures, a third edge makes the quorum impossible at its
    // resolution, even a success.
    h.n += 1;
    assert_eq!(h.resolve(S, 60), Some(GroupState::Impossible));
}

#[test]
fn an_empty_group_decides_nothing() {
    assert_eq!(all_of(0).decide(), GroupState::Pending);
    assert_eq!(all_of(0).resolve(S, NOW), None);
    assert_eq!(any_of(0).decide(), GroupState::Pending);
}

#[test]
fn unresolve_and_reset() {
    let mut g = quorum(2, 3);
    assert_eq!(resolve_all(&mut g, &[S, F]), [None, None]);
    g.unresolve(F);
    assert_eq!((g.succeeded, g.failed, g.running()), (1, 0, 2));
    g.unresolve(K);
    assert_eq!(g.skipped, 0, "never below zero");
    assert_eq!(g.resolve(S, 9), Some(GroupState::Satisfied));

    g.reset();
    assert_eq!(
        g,
        quorum(2, 3),
        "pending with nothing resolved, policy and n kept"
    );
    assert_eq!(g.fired_at, None);
    assert_eq!(
        resolve_all(&mut g, &[F, F]),
        [None, Some(GroupState::Impossible)]
    );
}

// ---- edges -----------------------------------------------------------------

#[test]
fn only_success_satisfies_an_edge() {
    use crate::base::state::TerminalOutcome as T;
    assert_eq!(bucket_of(T::Success), S);
    assert_eq!(bucket_of(T::Skipped), K);
    for t in [T::Failed, T::Cancelled, T::Expired] {
        assert_eq!(bucket_of(t), F);
    }
    for b in [S, F, K] {
        assert_eq!(EdgeState::of(b).bucket(), Some(b));
    }
    assert_eq!(EdgeState::Pending.bucket(), None);
}

// ---- the flow record -------------------------------------------------------

#[test]
fn flow_codec_round_trips() {
    let f = sample_flow();
    let g = Flow::decode(&encode(&f)).unwrap();
    assert_eq!(g, f);
    assert_eq!(
        g.edge(Uuid(21)).unwrap().data_ref.as_deref(),
        Some(&b"out"[..])
    );
    assert_eq!(g.into_of(Uuid(13)).len(), 2);
    assert_eq!(g.between(Uuid(12), Uuid(13)).unwrap().id, Uuid(22));
    assert_eq!(encode(&g), encode(&f), "re-encodes to the same bytes");

    // An empty flow and one that is not cancelled.
    let mut e = Flow::new(Uuid(2), Box::default(), Box::default(), 1);
    assert_eq!(Flow::decode(&encode(&e)).unwrap(), e);
    e.members.push(Uuid(3));
    assert_eq!(Flow::decode(&encode(&e)).unwrap(), e);
}

#[test]
fn flow_codec_refuses_truncated_or_extended_input() {
    let buf = encode(&sample_flow());
    for cut in 0..buf.len() {
        assert!(Flow::decode(&buf[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = buf.clone();
    long.push(0);
    assert!(Flow::decode(&long).is_err());
    for i in 0..buf.len() {
        let mut b = buf.clone();
        b[i] ^= 0x5a;
        let _ = Flow::decode(&b); // never panics
    }
}

#[test]
fn flow_codec_refuses_an_unknown_version() {
    let mut buf = encode(&sample_flow());
    buf[0] = 2;
    assert_eq!(Flow::decode(&buf).unwrap_err().0, "unknown flow encoding");
    buf[0] = 0;
    assert!(Flow::decode(&buf).is_err());
}

#[test]
fn flow_codec_refuses_group_counts_that_disagree_with_edges() {
    // More edges counted than the flow has.
    let mut f = sample_flow();
    f.groups.get_mut(&Uuid(13)).unwrap().n = 3;
    assert_eq!(refusal(&f), "flow group counts exceed its edges");
    // More resolved than counted.
    let mut f = sample_flow();
    f.groups.get_mut(&Uuid(13)).unwrap().failed = 2;
    assert_eq!(refusal(&f), "flow group counts exceed its edges");
    // Fewer counted than the edges into it.
    let mut f = sample_flow();
    f.groups.get_mut(&Uuid(13)).unwrap().n = 1;
    assert_eq!(
        refusal(&f),
        "a flow group's edge count disagrees with its edges"
    );
    // An edge whose downstream has no group.
    let mut f = sample_flow();
    f.groups.clear();
    assert_eq!(refusal(&f), "a flow edge's downstream has no group");
    // A quorum of 0.
    let mut f = sample_flow();
    f.groups.get_mut(&Uuid(13)).unwrap().policy =
        policy(PolicyKind::Quorum, 0, OnSatisfied::LetRun);
    assert_eq!(refusal(&f), "flow group quorum out of range");
}

#[test]
fn flow_codec_refuses_a_duplicate_edge_id_and_a_self_edge() {
    let mut f = sample_flow();
    f.edges[1].id = f.edges[0].id;
    assert_eq!(refusal(&f), "a flow edge id appears twice");

    let mut f = Flow::new(Uuid(1), Box::default(), Box::default(), 0);
    f.members = vec![Uuid(11)];
    f.push_edge(edge(21, 11, 11));
    f.groups.insert(Uuid(11), all_of(1));
    assert_eq!(refusal(&f), "a flow edge joins an execution to itself");
}

#[test]
fn flow_codec_refuses_a_bad_cancellation_flag() {
    let f = Flow::new(Uuid(1), Box::default(), Box::default(), 0);
    let mut buf = encode(&f);
    // version, id, kind, namespace, three u64s, then the flag.
    let at = 1 + 16 + 4 + 4 + 24;
    assert_eq!(buf[at], 0);
    buf[at] = 2;
    assert_eq!(
        Flow::decode(&buf).unwrap_err().0,
        "bad flow cancellation flag"
    );
}

#[test]
fn reaches_follows_edges_and_detects_cycles() {
    let mut f = Flow::new(Uuid(1), Box::default(), Box::default(), 0);
    f.push_edge(edge(21, 1, 2));
    f.push_edge(edge(22, 2, 3));
    f.push_edge(edge(23, 1, 4));
    assert!(f.reaches(Uuid(1), Uuid(3)));
    assert!(f.reaches(Uuid(2), Uuid(3)));
    assert!(f.reaches(Uuid(5), Uuid(5)), "a node reaches itself");
    assert!(!f.reaches(Uuid(3), Uuid(1)));
    assert!(!f.reaches(Uuid(4), Uuid(2)));
    // An edge 3→1 would close a cycle: 1 reaches 3.
    assert!(f.reaches(Uuid(1), Uuid(3)));
    // A diamond is no cycle.
    f.push_edge(edge(24, 4, 3));
    assert!(!f.reaches(Uuid(3), Uuid(4)));
    f.push_edge(edge(25, 3, 1));
    assert!(f.reaches(Uuid(3), Uuid(2)), "through the cycle");
}

#[test]
fn index_edges_rebuilds_the_adjacency() {
    let f = sample_flow();
    let mut g = f.clone();
    g.index_edges();
    assert_eq!(g, f);
    assert_eq!(f.out_of(Uuid(11)), &[0]);
    assert_eq!(f.into_of(Uuid(13)), &[0, 1]);
    assert!(f.out_of(Uuid(13)).is_empty());
    assert_eq!(f.pending_edges(), 1);
    assert!(f.is_cancelled());
    assert_eq!(f.check_open(), Err(FlowError::FlowAlreadyTerminal));
}

// ---- requests ---------------------------------------------------------------

#[test]
fn set_policy_parses_each_variant() {
    let (f, d) = (f1(), m1(2));
    let parse = |tail: &str| {
        let s = format!("{f} {d} {tail}");
        parse_set_policy(&split(&s), &L, Origin::Client)
    };
    assert_eq!(parse("ALL_OF").unwrap().policy, Policy::ALL_OF);
    assert_eq!(
        parse("any_of cancel_remaining").unwrap().policy,
        policy(PolicyKind::AnyOf, 1, OnSatisfied::CancelRemaining)
    );
    let r = parse("QUORUM 3 let_run").unwrap();
    assert_eq!(r.policy, policy(PolicyKind::Quorum, 3, OnSatisfied::LetRun));
    assert_eq!(
        (r.flow.partition, r.flow.uuid, r.down),
        (1, Uuid(1), Uuid(2))
    );
    assert_eq!(parse("quorum 10000 let_run").unwrap().policy.k, QUORUM_MAX);
}

#[test]
fn set_policy_refusals() {
    let (f, d) = (f1(), m1(2));
    let parse = |tail: &str| {
        let s = format!("{f} {d} {tail}");
        refused(parse_set_policy(&split(&s), &L, Origin::Client))
    };
    let e = parse("quorum 0 cancel_remaining");
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::InvalidInput, "quorum k must be >= 1")
    );
    let e = parse("quorum 10001 let_run");
    assert_eq!(e.code, Code::InvalidInput);
    assert!(e.message.contains("exceeds"), "{e}");
    for tail in ["any_of", "quorum 2", "any_of sometimes"] {
        let e = parse(tail);
        assert_eq!(e.code, Code::InvalidInput, "{tail}");
        assert!(
            e.message.starts_with("on_satisfied required"),
            "{tail}: {e}"
        );
    }
    let e = parse("some_of let_run");
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::InvalidInput, "unsupported_policy_variant: some_of")
    );
    assert_eq!(parse("quorum x let_run").code, Code::Err);
    // A downstream of another partition.
    let s = format!("{f} {} all_of", id(2, 2));
    let e = refused(parse_set_policy(&split(&s), &L, Origin::Client));
    assert_eq!(e.code, Code::PartitionMismatch);
}

#[test]
fn flow_tags_need_pairs_and_valid_keys() {
    let f = f1();
    let parse = |tail: &str, origin| {
        let s = format!("{f} {tail}").trim_end().to_string();
        parse_flow_tags(&split(&s), &L, origin).map(|t| (t.tags, t.at))
    };
    let (tags, at) = parse("a.b 1 c_2.d x", Origin::Client).unwrap();
    type Tag = (Box<[u8]>, Box<[u8]>);
    let want: Vec<Tag> = vec![
        (b"a.b"[..].into(), b"1"[..].into()),
        (b"c_2.d"[..].into(), b"x"[..].into()),
    ];
    assert_eq!(tags, want);
    assert_eq!(at, None);
    for odd in ["a.b", "a.b 1 c.d", ""] {
        let e = refused(parse(odd, Origin::Client));
        assert_eq!(e.code, Code::InvalidInput, "{odd:?}");
    }
    for bad in ["Bad.key 1", "nodot 1", "a. 1", "a.. 1", ".b 1"] {
        let e = refused(parse(bad, Origin::Client));
        assert_eq!(e.code, Code::InvalidTagKey, "{bad}");
        assert!(e.message.starts_with("invalid_tag_key"), "{bad}");
    }
    // AT is the primary's.
    assert!(parse("a.b 1 AT 5", Origin::Client).is_err());
    assert_eq!(parse("a.b 1 AT 5", Origin::Replicated).unwrap().1, Some(5));
}

#[test]
fn add_edge_parses_options_and_checks_partitions() {
    let (f, u, d) = (f1(), m1(2), m1(3));
    let s = format!(
        "{f} {u} {d} EDGE_ID {} KIND success_only DATA ref REVISION 4",
        Uuid(9)
    );
    let r = parse_add_edge(&split(&s), &L, Origin::Client).unwrap();
    assert_eq!((r.up, r.down, r.id), (Uuid(2), Uuid(3), Some(Uuid(9))));
    assert_eq!(r.kind, DependencyKind::SuccessOnly);
    assert_eq!(r.data_ref.as_deref(), Some(&b"ref"[..]));
    assert_eq!(r.revision, Some(4));
    let s = format!("{f} {u} {d}");
    let r = parse_add_edge(&split(&s), &L, Origin::Client).unwrap();
    assert_eq!((r.id, r.data_ref, r.revision), (None, None, None));

    for (up, down) in [(id(2, 2), d.clone()), (u.clone(), id(0, 3))] {
        let s = format!("{f} {up} {down}");
        let e = refused(parse_add_edge(&split(&s), &L, Origin::Client));
        assert_eq!(e.code, Code::PartitionMismatch, "{s}");
    }
    let s = format!("{f} {u} {d} KIND any");
    let e = refused(parse_add_edge(&split(&s), &L, Origin::Client));
    assert_eq!(e.code, Code::InvalidInput);
    let s = format!("{f} {u} {d} COLOUR red");
    assert_eq!(
        refused(parse_add_edge(&split(&s), &L, Origin::Client)).code,
        Code::Err
    );
}

#[test]
fn cancel_flow_parses_its_policy() {
    let f = f1();
    let parse = |tail: &str| {
        let s = format!("{f} {tail}").trim_end().to_string();
        parse_cancel_flow(&split(&s), &L, Origin::Client)
    };
    let r = parse("").unwrap();
    assert_eq!(r.policy, CancelPolicy::CancelAll, "the default");
    assert_eq!(&*r.reason, FLOW_CANCELLED);
    let r = parse("POLICY cancel_pending REASON why").unwrap();
    assert_eq!(
        (r.policy, &*r.reason),
        (CancelPolicy::CancelPending, &b"why"[..])
    );
    assert_eq!(
        parse("policy FLOW_ONLY").unwrap().policy,
        CancelPolicy::FlowOnly
    );
    let e = refused(parse("POLICY nope"));
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::InvalidInput, "unknown cancellation policy: nope")
    );
    assert!(parse("POLICY").is_err());
}

#[test]
fn flow_ids_and_members_parse() {
    let s = format!("{} {}", f1(), m1(7));
    let r = parse_flow_member(&split(&s), &L, Origin::Client).unwrap();
    assert_eq!((r.flow.uuid, r.member, r.at), (Uuid(1), Uuid(7), None));
    let s = format!("{} {}", f1(), id(3, 7));
    assert_eq!(
        refused(parse_flow_member(&split(&s), &L, Origin::Client)).code,
        Code::PartitionMismatch
    );
    assert!(parse_flow_id(b"{fp:1}", &L).is_err());
    assert!(parse_flow_id(id(300, 1).as_bytes(), &L).is_err());
    let r = parse_create_flow(&split("{fp:4} KIND etl NAMESPACE ns"), &L, Origin::Client).unwrap();
    assert_eq!((&*r.kind, &*r.namespace), (&b"etl"[..], &b"ns"[..]));
}
