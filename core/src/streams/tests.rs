use serde_json::{json, Value};

use crate::base::args::Origin;
use crate::base::codec::{Reader, Writer};
use crate::base::ids::{ExecId, Uuid};
use crate::base::limits::{
    ATTEMPT_FRAMES_MAX, ATTEMPT_FRAME_BYTES_MAX, BEST_EFFORT_MAXLEN, FRAME_PAYLOAD_MAX,
    SUMMARY_BYTES_MAX, SUMMARY_WINDOW,
};
use crate::base::testing::{split, L};
use crate::execution::requests::{
    parse_append, parse_frames, parse_summary, Acquire, Append, Bound, ReadFrames,
    FRAMES_COUNT_DEFAULT,
};
use crate::execution::{Execution, Fence, Grant, Spec};
use crate::partition::moves::{self, Env, Moved};
use crate::partition::PartitionIndex;
use crate::streams::merge_patch::{merge, parse_patch, PatchError, PATCH_DEPTH_MAX};
use crate::streams::{
    codec, CloseReason, Event, FrameMode, Mode, Output, StreamError, Summary, Trim,
};

// ---- merge patch ----

fn merged(doc: &str, patch: &str) -> Value {
    let out = merge(doc, patch.as_bytes()).unwrap();
    serde_json::from_str(&out).unwrap()
}

#[test]
fn merge_patch_rfc7396_object_examples() {
    for [doc, patch, want] in [
        [r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#],
        [r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#],
        [r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#],
        [r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#],
        [r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#],
        [r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#],
        [
            r#"{"a":{"b":"c"}}"#,
            r#"{"a":{"b":"d","c":null}}"#,
            r#"{"a":{"b":"d"}}"#,
        ],
        [r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#],
        [r#"{"e":null}"#, r#"{"a":1}"#, r#"{"a":1,"e":null}"#],
        [
            r#"{"a":"foo"}"#,
            r#"{"a":{"bb":{"ccc":null}}}"#,
            r#"{"a":{"bb":{}}}"#,
        ],
        [
            r#"{}"#,
            r#"{"a":{"bb":{"ccc":null}}}"#,
            r#"{"a":{"bb":{}}}"#,
        ],
        [r#"{"a":"b"}"#, r#"{"a":{"c":1}}"#, r#"{"a":{"c":1}}"#],
        ["", r#"{"a":1}"#, r#"{"a":1}"#],
    ] {
        let want: Value = serde_json::from_str(want).unwrap();
        assert_eq!(merged(doc, patch), want, "{doc} + {patch}");
    }
}

#[test]
fn merge_patch_sentinel_stores_null_also_inside_arrays() {
    let s = "__ff_null__";
    let one = merged(r#"{"a":1}"#, &format!(r#"{{"a":"{s}"}}"#));
    assert_eq!(one, json!({"a":null}));
    let deep = format!(r#"{{"x":{{"y":"{s}"}},"l":[1,"{s}",["{s}"]]}}"#);
    let want = json!({"x":{"y":null},"l":[1,null,[null]]});
    assert_eq!(merged("", &deep), want);
    // A real null still deletes.
    assert_eq!(merged(r#"{"a":1,"b":2}"#, r#"{"a":null}"#), json!({"b":2}));
}

#[test]
fn merge_patch_rejects_non_object_patches() {
    for patch in ["[1,2]", "\"s\"", "42", "true", "null"] {
        let r = merge("{}", patch.as_bytes());
        assert_eq!(r, Err(PatchError::NotObject), "{patch}");
    }
    for patch in ["{", "", "{\"a\":1} x", "{'a':1}"] {
        let r = merge("{}", patch.as_bytes());
        assert_eq!(r, Err(PatchError::NotJson), "{patch}");
    }
}

/// A patch whose root holds `levels` objects nested in one another
/// (`object_depth` counts the objects below the root).
fn nested(levels: usize) -> String {
    let (open, close) = ("{\"a\":".repeat(levels), "}".repeat(levels));
    format!("{open}{{\"v\":1}}{close}")
}

#[test]
fn merge_patch_depth_limit() {
    assert_eq!(PATCH_DEPTH_MAX, 16);
    assert!(parse_patch(nested(0).as_bytes()).is_ok());
    assert!(parse_patch(nested(PATCH_DEPTH_MAX).as_bytes()).is_ok());
    assert_eq!(
        parse_patch(nested(PATCH_DEPTH_MAX + 1).as_bytes()),
        Err(PatchError::TooDeep)
    );
    // Arrays do not count as nesting, and only the deepest branch counts.
    let deep = nested(PATCH_DEPTH_MAX - 1);
    let wide = format!(r#"{{"l":[[[[{{}}]]]],"b":{deep}}}"#);
    assert!(parse_patch(wide.as_bytes()).is_ok());
}

#[test]
fn refused_merge_leaves_doc_unchanged() {
    let doc = r#"{"a":1}"#.to_string();
    let before = doc.clone();
    assert!(merge(&doc, b"[1]").is_err());
    assert!(merge(&doc, nested(17).as_bytes()).is_err());
    assert_eq!(doc, before);
    assert_eq!(merge("[1]", b"{}"), Err(PatchError::CorruptDocument));
    assert_eq!(merge("not json", b"{}"), Err(PatchError::CorruptDocument));
}

// ---- Output::append ----

fn frame_mode(mode: Mode, maxlen: Option<u64>, ttl_ms: Option<u64>) -> FrameMode {
    FrameMode {
        mode,
        maxlen,
        ttl_ms,
    }
}

fn fm(mode: Mode) -> FrameMode {
    frame_mode(mode, None, None)
}

fn to(maxlen: u64, min_ms: Option<u64>) -> Trim {
    Trim::To { maxlen, min_ms }
}

fn doc_of(o: &Output) -> Value {
    serde_json::from_str(&o.summary.as_ref().unwrap().doc).unwrap()
}

#[test]
fn durable_counts_frames_and_kept_bytes() {
    let mut o = Output::new(0);
    let a = o.append(&fm(Mode::Durable), b"abc", 10).unwrap();
    assert_eq!((a.frames, a.version, a.trim), (1, None, Trim::Keep));
    let a = o.append(&fm(Mode::Durable), b"de", 11).unwrap();
    assert_eq!(a.frames, 2);
    assert_eq!((o.frames, o.kept_frames, o.kept_bytes), (2, 2, 5));
    assert!(o.durable && o.summary.is_none() && o.closed.is_none());
}

#[test]
fn summary_versions_increment_and_doc_merges() {
    let mut o = Output::new(0);
    let (p1, p2) = (br#"{"a":1,"b":{"c":2}}"#, br#"{"a":null,"b":{"d":3}}"#);
    let a = o.append(&fm(Mode::Summary), p1, 10).unwrap();
    assert_eq!(a.version, Some(1));
    assert_eq!(a.trim, to(SUMMARY_WINDOW, None));
    let a = o.append(&fm(Mode::Summary), p2, 20).unwrap();
    assert_eq!((a.frames, a.version), (2, Some(2)));
    assert_eq!(doc_of(&o), json!({"b":{"c":2,"d":3}}));
    let s = o.summary.as_ref().unwrap();
    assert_eq!((s.version, s.first_at, s.last_at), (2, 10, 20));
    assert_eq!((o.kept_frames, o.kept_bytes), (0, 0), "summary frames trim");
}

#[test]
fn best_effort_trim_uses_default_maxlen_and_ttl() {
    let mut o = Output::new(0);
    let be = |maxlen, ttl| frame_mode(Mode::BestEffort, maxlen, ttl);
    for (m, want) in [
        (be(None, None), to(BEST_EFFORT_MAXLEN, None)),
        (be(Some(100), Some(1500)), to(100, Some(3500))),
        (be(Some(100), Some(9000)), to(100, Some(0))),
    ] {
        assert_eq!(o.append(&m, b"x", 5000).unwrap().trim, want);
    }
    assert_eq!((o.frames, o.kept_frames, o.durable), (3, 0, false));
}

#[test]
fn durable_stream_never_trims_later_frames() {
    let mut o = Output::new(0);
    o.append(&fm(Mode::Durable), b"d", 1).unwrap();
    let m = frame_mode(Mode::BestEffort, Some(64), Some(1));
    assert_eq!(o.append(&m, b"be", 2).unwrap().trim, Trim::Keep);
    let s = o.append(&fm(Mode::Summary), b"{}", 3).unwrap();
    assert_eq!(s.trim, Trim::Keep);
    assert_eq!((o.frames, o.kept_frames, o.kept_bytes), (3, 3, 5));
}

#[test]
fn oversized_frame_refused_without_change() {
    let mut o = Output::new(0);
    let before = o.clone();
    let big = vec![b'x'; FRAME_PAYLOAD_MAX + 1];
    for mode in [Mode::Durable, Mode::Summary, Mode::BestEffort] {
        let r = o.append(&fm(mode), &big, 1);
        assert_eq!(r, Err(StreamError::FrameTooLarge));
    }
    assert_eq!(o, before);
    let at_max = &big[..FRAME_PAYLOAD_MAX];
    assert!(o.append(&fm(Mode::Durable), at_max, 1).is_ok());
}

#[test]
fn kept_limits_refused_without_change() {
    let full = Err(StreamError::AttemptFull);
    let mut o = Output::new(0);
    o.append(&fm(Mode::Durable), b"a", 1).unwrap();
    o.kept_bytes = ATTEMPT_FRAME_BYTES_MAX - 2;
    let before = o.clone();
    assert_eq!(o.append(&fm(Mode::Durable), b"abc", 2), full);
    // A durable stream keeps (and counts) best-effort frames too.
    assert_eq!(o.append(&fm(Mode::BestEffort), b"abc", 2), full);
    assert_eq!(o, before);
    assert!(o.append(&fm(Mode::Durable), b"ab", 2).is_ok());

    o.kept_frames = ATTEMPT_FRAMES_MAX;
    o.kept_bytes = 0;
    let before = o.clone();
    assert_eq!(o.append(&fm(Mode::Durable), b"a", 2), full);
    assert_eq!(o, before);

    // A stream without durable frames is never full.
    let mut o = Output::new(0);
    o.kept_frames = ATTEMPT_FRAMES_MAX;
    assert!(o.append(&fm(Mode::BestEffort), b"a", 1).is_ok());
}

#[test]
fn closed_stream_refused_and_closes_once() {
    let mut o = Output::new(2);
    o.append(&fm(Mode::Durable), b"a", 1).unwrap();
    assert!(o.close(CloseReason::Failed, 5));
    assert!(!o.close(CloseReason::Completed, 6));
    assert_eq!(o.closed, Some((5, CloseReason::Failed)));
    let before = o.clone();
    for mode in [Mode::Durable, Mode::Summary, Mode::BestEffort] {
        assert_eq!(o.append(&fm(mode), b"{}", 7), Err(StreamError::Closed));
    }
    assert_eq!(o, before);
}

#[test]
fn summary_limits_and_bad_patches_refused_without_change() {
    let mut o = Output::new(0);
    let half = "x".repeat(SUMMARY_BYTES_MAX / 2 + 10);
    let a = format!(r#"{{"a":"{half}"}}"#);
    let b = format!(r#"{{"b":"{half}"}}"#);
    let swap = format!(r#"{{"a":null,"b":"{half}"}}"#);
    o.append(&fm(Mode::Summary), a.as_bytes(), 1).unwrap();
    let before = o.clone();
    let r = o.append(&fm(Mode::Summary), b.as_bytes(), 2);
    assert_eq!(r, Err(StreamError::SummaryFull));
    for (bad, e) in [
        ("[1]", PatchError::NotObject),
        ("{", PatchError::NotJson),
        (nested(17).as_str(), PatchError::TooDeep),
    ] {
        let r = o.append(&fm(Mode::Summary), bad.as_bytes(), 2);
        assert_eq!(r, Err(StreamError::Patch(e)));
    }
    assert_eq!(o, before);
    // Replacing the big member keeps it under the limit.
    let r = o.append(&fm(Mode::Summary), swap.as_bytes(), 3).unwrap();
    assert_eq!(r.version, Some(2));
}

// ---- codec ----

fn round_trip(outs: &[Output]) -> Vec<u8> {
    let mut w = Writer::default();
    codec::encode(outs, &mut w);
    let mut r = Reader::new(&w.buf);
    assert_eq!(codec::decode(&mut r).unwrap(), outs);
    r.finish().unwrap();
    w.buf
}

fn sample_outputs() -> Vec<Output> {
    let mut a = Output::new(0);
    a.append(&fm(Mode::Durable), b"abc", 1).unwrap();
    a.close(CloseReason::LeaseExpired, 9);
    let mut b = Output::new(1);
    let patch = br#"{"k":[1,"__ff_null__"]}"#;
    b.append(&fm(Mode::Summary), patch, 10).unwrap();
    b.append(&fm(Mode::BestEffort), b"z", 11).unwrap();
    let mut c = Output::new(4);
    c.summary = Some(Box::new(Summary {
        doc: "{}".into(),
        version: 7,
        first_at: 1,
        last_at: 2,
    }));
    c.close(CloseReason::Reclaimed, 3);
    vec![a, b, c]
}

#[test]
fn codec_round_trips() {
    round_trip(&[]);
    round_trip(&[Output::new(0)]);
    round_trip(&sample_outputs());
}

#[test]
fn codec_rejects_truncated_bytes() {
    let bytes = round_trip(&sample_outputs());
    for n in 0..bytes.len() {
        let r = codec::decode(&mut Reader::new(&bytes[..n]));
        assert!(r.is_err(), "a prefix of {n} bytes decoded");
    }
}

#[test]
fn codec_rejects_out_of_order_and_bad_bytes() {
    let mut swapped = sample_outputs();
    swapped.swap(0, 1);
    for outs in [swapped, vec![Output::new(3), Output::new(3)]] {
        let mut w = Writer::default();
        codec::encode(&outs, &mut w);
        assert!(codec::decode(&mut Reader::new(&w.buf)).is_err());
    }
    // A bad boolean, an unknown close reason, a huge count: errors only.
    let good = round_trip(&[Output::new(0)]);
    let mut bad = good.clone();
    bad[32] = 2; // the durable flag: after the count, attempt and three u64s
    assert!(codec::decode(&mut Reader::new(&bad)).is_err());
    let mut closed = Output::new(0);
    closed.close(CloseReason::Completed, 1);
    let mut bad = round_trip(&[closed]);
    *bad.last_mut().unwrap() = 200;
    assert!(codec::decode(&mut Reader::new(&bad)).is_err());
    let mut bad = good;
    bad[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(codec::decode(&mut Reader::new(&bad)).is_err());
}

// ---- events ----

macro_rules! events {
    ($($v:ident)*) => { [$(Event::$v),*] };
}

/// Every variant, in declaration order (as `NAMES`).
const ALL_EVENTS: [Event; 21] = events!(
    Submitted Claimed Reclaimed Resumed Renewed Progress Completed Failed
    RetryScheduled Cancelled Expired Skipped Delayed Suspended LeaseExpired
    LeaseRevoked Waiting Blocked WaitingChildren Signal TagsSet
);

#[test]
fn event_names_unique_and_match_variants() {
    let mut names = Event::NAMES.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Event::NAMES.len(), "duplicate event name");
    assert_eq!(ALL_EVENTS.len(), Event::NAMES.len());
    for (e, name) in ALL_EVENTS.iter().zip(Event::NAMES) {
        assert_eq!(e.as_str(), *name);
    }
}

#[test]
fn notification_is_ff_dot_name() {
    for e in ALL_EVENTS {
        let n = e.notification().to_str().unwrap();
        assert_eq!(n, format!("ff.{}", e.as_str()));
    }
}

// ---- request parsers ----

const ID: &str = "{fp:3}:00000000-0000-4000-8000-000000000009";

fn append_line(rest: &str) -> String {
    format!("{ID} {} 1 {} t {rest}", Uuid(1), Uuid(2))
}

#[test]
fn parse_append_accepts_modes_and_options() {
    let line = append_line("payload");
    let w = split(&line);
    let a = parse_append(&w, &L, Origin::Client).unwrap();
    assert_eq!((a.frame_type, a.payload), (&b"t"[..], &b"payload"[..]));
    assert_eq!(a.mode, fm(Mode::Durable));
    assert_eq!(a.fence.lease_epoch, 1);
    let opts = "MODE best-effort MAXLEN 64 TTL 5 ENCODING json SOURCE s CORRELATION c";
    let line = append_line(&format!("p {opts}"));
    let w = split(&line);
    let a = parse_append(&w, &L, Origin::Client).unwrap();
    assert_eq!(a.mode, frame_mode(Mode::BestEffort, Some(64), Some(5)));
    assert_eq!(
        (a.encoding, a.source, a.correlation),
        (Some(&b"json"[..]), Some(&b"s"[..]), Some(&b"c"[..]))
    );
    let line = append_line("{} MODE SUMMARY");
    let w = split(&line);
    let a = parse_append(&w, &L, Origin::Client).unwrap();
    assert_eq!(a.mode, fm(Mode::Summary));
}

#[test]
fn parse_append_rejects_bad_options() {
    for rest in [
        "p MODE lossy",
        "p MODE best_effort MAXLEN 63",
        "p MODE best_effort MAXLEN 16385",
        "p MAXLEN 100",
        "p MODE summary TTL 10",
        "p MODE best_effort TTL 0",
        "p BOGUS 1",
        "p MODE",
        "",
    ] {
        let line = append_line(rest);
        let w = split(line.trim_end());
        assert!(parse_append(&w, &L, Origin::Client).is_err(), "{rest}");
    }
}

fn bound(ms: u64, seq: u64) -> Bound {
    Bound { ms, seq }
}

fn frames(opts: &str) -> Option<ReadFrames> {
    parse_frames(&split(&format!("{ID} {opts}")), &L).unwrap()
}

#[test]
fn parse_frames_bounds_and_count() {
    let r = frames("0").unwrap();
    assert_eq!((r.attempt, r.count), (0, FRAMES_COUNT_DEFAULT));
    assert_eq!((r.from, r.to), (bound(0, 0), bound(u64::MAX, u64::MAX)));
    assert!(!r.durable_only);
    let r = frames("2 FROM (5-0 TO 9 COUNT 7 DURABLE_ONLY").unwrap();
    assert_eq!((r.from, r.to), (bound(5, 1), bound(9, u64::MAX)));
    assert_eq!((r.attempt, r.count, r.durable_only), (2, 7, true));
    let r = frames("0 FROM 3 TO (4-0").unwrap();
    assert_eq!((r.from, r.to), (bound(3, 0), bound(3, u64::MAX)));
    // As XRANGE: an incomplete id is completed first, then stepped inward.
    let r = frames("0 FROM (7 TO (9").unwrap();
    assert_eq!((r.from, r.to), (bound(7, 1), bound(9, u64::MAX - 1)));
    let r = frames("0 FROM (7-18446744073709551615").unwrap();
    assert_eq!(r.from, bound(8, 0));
    // Nothing lies inward of an extreme exclusive bound.
    assert_eq!(frames("0 TO (0-0"), None);
    let bad = "COUNT 0|COUNT 10001|FROM x|FROM 1-|TO -1|FROM (|FROM 1-2-3|FROM";
    for bad in bad.split('|') {
        let line = format!("{ID} 0 {bad}");
        assert!(parse_frames(&split(&line), &L).is_err(), "{bad}");
    }
}

#[test]
fn parse_summary_takes_id_and_attempt_only() {
    let (id, attempt) = parse_summary(&split(&format!("{ID} 4")), &L).unwrap();
    assert_eq!((id.partition, attempt), (3, 4));
    for bad in ["", " 4 x", " -1", " 4294967296"] {
        let line = format!("{ID}{bad}");
        assert!(parse_summary(&split(&line), &L).is_err(), "{bad}");
    }
    assert!(parse_summary(&split("{fp:3}:x 1"), &L).is_err());
}

// ---- through the partition's transitions ----

fn env(now: u64) -> Env {
    Env {
        now,
        retention_ms: 0,
        max_reclaims: 1,
    }
}

fn acq(id: ExecId, lease: u128, attempt: u128, at: u64) -> Acquire<'static> {
    Acquire {
        id,
        worker_id: b"w",
        worker_instance_id: b"i",
        lease_ms: 1000,
        lease_id: Uuid(lease),
        attempt_id: Uuid(attempt),
        at,
    }
}

fn fence(g: &Grant) -> Fence {
    g.fence()
}

/// A submitted execution claimed at 20 under a 1000 ms lease.
fn claimed(idx: &mut PartitionIndex) -> (Execution, Fence) {
    let id = ExecId {
        partition: 0,
        uuid: Uuid(1),
    };
    let spec = Spec {
        lane: "l".into(),
        ..Spec::default()
    };
    let seq = idx.take_seq();
    let mut e = Execution::new(id, spec, seq, 10);
    moves::admit(idx, &e);
    let (g, m) = moves::acquire(idx, &mut e, &acq(id, 2, 3, 20));
    assert_eq!(m.event, Some(Event::Claimed));
    (e, fence(&g.unwrap()))
}

fn req(id: ExecId, fence: Fence, payload: &[u8]) -> Append<'_> {
    Append {
        id,
        fence,
        frame_type: b"t",
        payload,
        mode: fm(Mode::Durable),
        encoding: None,
        correlation: None,
        source: None,
        at: None,
    }
}

type Refusal = Result<(), (StreamError, bool)>;

/// Appends through the partition: the refusal, if any, and the feed's view.
fn append(
    idx: &mut PartitionIndex,
    e: &mut Execution,
    f: Fence,
    payload: &[u8],
    now: u64,
) -> (Refusal, Moved) {
    let id = e.id;
    let (r, m) = moves::append(idx, e, &req(id, f, payload), &env(now));
    (r.map(|_| ()), m)
}

#[test]
fn append_then_complete_closes_the_stream() {
    let mut idx = PartitionIndex::new(0, 1);
    let (mut e, f) = claimed(&mut idx);
    let (r, m) = append(&mut idx, &mut e, f, b"hi", 30);
    assert_eq!((r, m.event, m.closed), (Ok(()), None, None));
    assert_eq!(e.output(0).map(|o| o.frames), Some(1));
    let (r, m) = moves::complete(&mut idx, &mut e, &f, None, &env(40));
    r.unwrap();
    assert_eq!(m.event, Some(Event::Completed));
    assert_eq!(m.closed, Some((0, CloseReason::Completed)));
    let closed = e.output(0).unwrap().closed;
    assert_eq!(closed, Some((40, CloseReason::Completed)));
    let (r, _) = append(&mut idx, &mut e, f, b"late", 50);
    assert_eq!(r, Err((StreamError::Closed, false)));
    assert_eq!(e.output(0).map(|o| o.frames), Some(1));
}

#[test]
fn append_with_stale_fence_is_refused_and_leaves_no_trace() {
    let mut idx = PartitionIndex::new(0, 1);
    let (mut e, f) = claimed(&mut idx);
    let before = e.clone();
    let mut stale = [f; 3];
    stale[0].lease_epoch += 1;
    stale[1].lease_id = Uuid(99);
    stale[2].attempt_id = Uuid(99);
    for stale in stale {
        let (r, m) = append(&mut idx, &mut e, stale, b"x", 30);
        assert_eq!((r, m.event), (Err((StreamError::StaleOwner, false)), None));
    }
    assert_eq!(e, before);
    // A refused first frame leaves no output either.
    let big = vec![b'x'; FRAME_PAYLOAD_MAX + 1];
    let (r, _) = append(&mut idx, &mut e, f, &big, 30);
    assert_eq!(r, Err((StreamError::FrameTooLarge, false)));
    assert!(e.outputs().is_empty());
    assert_eq!(e, before);
    // A complete without any frame closes nothing.
    let (_, m) = moves::complete(&mut idx, &mut e, &f, None, &env(40));
    assert_eq!((m.event, m.closed), (Some(Event::Completed), None));
}

#[test]
fn expired_lease_refuses_append_and_reclaim_starts_a_new_stream() {
    let mut idx = PartitionIndex::new(0, 1);
    let (mut e, f) = claimed(&mut idx);
    append(&mut idx, &mut e, f, b"hi", 30).0.unwrap();
    // The lease ran out at 1020: settled first, then the holder is refused.
    let (r, m) = append(&mut idx, &mut e, f, b"x", 5000);
    assert_eq!(r, Err((StreamError::StaleOwner, true)));
    assert_eq!(m.event, Some(Event::LeaseExpired));
    assert_eq!(e.output(0).map(|o| o.frames), Some(1));
    let reclaim = acq(e.id, 5, 6, 6000);
    let (g, m) = moves::acquire(&mut idx, &mut e, &reclaim);
    let g = g.unwrap();
    assert_eq!(m.event, Some(Event::Reclaimed));
    assert!(e.output(0).unwrap().closed.is_some(), "the old attempt's");
    let (r, _) = append(&mut idx, &mut e, fence(&g), b"y", 6001);
    assert_eq!(r, Ok(()));
    assert_eq!(e.outputs().len(), 2);
    assert_eq!(e.outputs()[1].attempt, g.attempt_index);
    let (r, _) = append(&mut idx, &mut e, f, b"z", 6002);
    assert_eq!(r, Err((StreamError::StaleOwner, false)));
}

// ---- entry ids and trims ---------------------------------------------------

#[test]
fn next_entry_id_follows_the_clock_then_the_sequence() {
    use crate::streams::EntryId;
    let id = |ms, seq| EntryId { ms, seq };
    assert_eq!(EntryId::next_after(None, 5), Some(id(5, 0)));
    assert_eq!(EntryId::next_after(None, 0), Some(id(1, 0)));
    assert_eq!(EntryId::next_after(Some(id(5, 3)), 9), Some(id(9, 0)));
    assert_eq!(EntryId::next_after(Some(id(5, 3)), 5), Some(id(5, 4)));
    // A clock behind the last entry keeps counting after it.
    assert_eq!(EntryId::next_after(Some(id(5, 3)), 2), Some(id(5, 4)));
    assert_eq!(
        EntryId::next_after(Some(id(5, u64::MAX)), 5),
        Some(id(6, 0))
    );
    assert_eq!(EntryId::next_after(Some(id(u64::MAX, u64::MAX)), 5), None);
    assert_eq!(id(1, 2).text(), "1-2");
}

#[test]
fn trims_fall_due_past_the_slack_and_go_back_to_the_limit() {
    use crate::streams::entry::{slack, trim_due};
    assert_eq!(slack(64), 16);
    assert_eq!(slack(10_000), 1250);
    assert_eq!(trim_due(80, 64), None);
    assert_eq!(trim_due(81, 64), Some(64));
    assert_eq!(trim_due(11_250, 10_000), None);
    assert_eq!(trim_due(11_251, 10_000), Some(10_000));
    assert_eq!(trim_due(u64::MAX, u64::MAX), None);
}

#[test]
fn feed_settings_survive_their_pin() {
    use crate::streams::settings::FeedSettings;
    let off = FeedSettings {
        on: false,
        ..FeedSettings::DEFAULT
    };
    assert_eq!(off.code(), 0);
    assert!(!FeedSettings::from_code(0).on);
    for s in [
        FeedSettings::DEFAULT,
        FeedSettings {
            on: true,
            maxlen: 1,
            renewals: true,
        },
        FeedSettings {
            on: true,
            maxlen: 100_000_000,
            renewals: false,
        },
    ] {
        assert_ne!(s.code(), 0);
        assert_eq!(FeedSettings::from_code(s.code()), s);
    }
}
