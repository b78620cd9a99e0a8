use crate::base::args::Args;
use crate::base::codec::{Reader, Writer};
use crate::base::ids::Uuid;
use crate::suspension::condition::{parse_condition, Condition, Effect, Seen};
use crate::suspension::record::waitpoint_id;

fn cond(text: &str) -> Condition {
    let words: Vec<&[u8]> = text.split(' ').map(str::as_bytes).collect();
    let mut a = Args::new(&words);
    let c = parse_condition(&mut a, b"p").unwrap();
    assert!(a.is_done(), "{text}: left over");
    c
}

fn sig<'a>(key: &'a [u8], n: u128, name: &'a [u8], src: &'a [u8]) -> Seen<'a> {
    Seen {
        key,
        waitpoint: u128::from(key.first().copied().unwrap_or(0)),
        signal: n,
        name,
        source: (b"user", src),
    }
}

/// Feeds signals in order; the effects.
fn feed(c: &Condition, signals: &[Seen]) -> Vec<Effect> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut out = Vec::new();
    for s in signals {
        let mut with = seen.clone();
        with.push(*s);
        let e = c.effect(s, &seen, &with);
        if e.counted() {
            seen = with;
        }
        out.push(e);
    }
    out
}

#[test]
fn nested_allof_allof_count_resolves() {
    let c = cond("ALLOF 2 ONE x ANY ALLOF 1 COUNT 2 SOURCES NAME ok 1 y");
    let e = feed(
        &c,
        &[
            sig(b"y", 1, b"ok", b"alice"),
            sig(b"y", 2, b"ok", b"alice"),
            sig(b"y", 3, b"ok", b"bob"),
            sig(b"x", 4, b"any", b""),
        ],
    );
    assert_eq!(
        e,
        [
            Effect::Appended,
            Effect::Duplicate,
            Effect::Appended,
            Effect::Satisfied
        ]
    );
}

#[test]
fn counts_do_not_leak_between_nodes() {
    // The reference counted both nodes' signals in one pool.
    let c = cond("ALLOF 2 COUNT 2 SIGNALS NAME x 1 a COUNT 2 SIGNALS NAME y 1 b");
    let e = feed(
        &c,
        &[
            sig(b"a", 1, b"x", b""),
            sig(b"a", 2, b"x", b""),
            sig(b"a", 3, b"x", b""),
        ],
    );
    // The third finds its count reached: it adds nothing.
    assert_eq!(e, [Effect::Appended, Effect::Appended, Effect::Duplicate]);
    let e = feed(
        &c,
        &[
            sig(b"a", 1, b"x", b""),
            sig(b"a", 2, b"x", b""),
            sig(b"b", 3, b"y", b""),
            sig(b"b", 4, b"y", b""),
        ],
    );
    assert_eq!(e.last(), Some(&Effect::Satisfied));
}

#[test]
fn effects_name_what_happened() {
    let c = cond("ALLOF 2 ONE a NAME go COUNT 1 WAITPOINTS ANY 2 b c");
    let e = feed(
        &c,
        &[
            sig(b"z", 1, b"go", b""),
            sig(b"a", 2, b"stop", b""),
            sig(b"a", 3, b"go", b""),
            sig(b"a", 4, b"go", b""),
            sig(b"c", 5, b"anything", b""),
        ],
    );
    assert_eq!(
        e,
        [
            Effect::NotInCondition,
            Effect::MatcherFailed,
            Effect::Appended,
            Effect::Duplicate,
            Effect::Satisfied
        ]
    );
    // The shorthands act on the primary waitpoint.
    let c = cond("SIGNAL approve");
    assert_eq!(
        feed(&c, &[sig(b"p", 1, b"approve", b"")]),
        [Effect::Satisfied]
    );
    for c in [cond("OPERATOR"), cond("TIMEOUT_ONLY")] {
        assert_eq!(
            feed(&c, &[sig(b"p", 1, b"__operator_only__", b"")]),
            [Effect::NotInCondition],
            "no signal, whatever its name, satisfies these"
        );
    }
}

#[test]
fn bad_conditions_are_refused() {
    for bad in [
        "COUNT 0 SIGNALS ANY 1 k",
        "COUNT 1 SIGNALS ANY 0",
        "COUNT 3 WAITPOINTS ANY 2 a b",
        "ALLOF 0",
        "ALLOF 1 ALLOF 1 ALLOF 1 ALLOF 1 ALLOF 1 ONE k ANY",
        "ONE k",
        "ONE k NAME",
        "COUNT 1 PEOPLE ANY 1 k",
        "COUNT 10001 SIGNALS ANY 1 k",
        "NOPE",
        "ALLOF 2 ONE a ANY",
    ] {
        let words: Vec<&[u8]> = bad.split(' ').map(str::as_bytes).collect();
        assert!(
            parse_condition(&mut Args::new(&words), b"p").is_err(),
            "{bad}"
        );
    }
    // Four composite levels are allowed, as in the reference.
    cond("ALLOF 1 ALLOF 1 ALLOF 1 COUNT 1 SIGNALS ANY 1 k");
    cond("ALLOF 1 ALLOF 1 ALLOF 1 ALLOF 1 ONE k ANY");
}

#[test]
fn conditions_round_trip() {
    for text in [
        "SIGNAL a",
        "ANY",
        "OPERATOR",
        "TIMEOUT_ONLY",
        "ALLOF 2 ONE x ANY ALLOF 1 COUNT 2 SOURCES NAME ok 2 y z",
    ] {
        let c = cond(text);
        let mut w = Writer::default();
        c.encode(&mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(Condition::decode(&mut r).unwrap(), c);
        r.finish().unwrap();
        for cut in 0..w.buf.len() {
            let mut r = Reader::new(&w.buf[..cut]);
            assert!(Condition::decode(&mut r).is_err());
        }
    }
}

#[test]
fn waitpoint_ids_are_distinct_and_uuid_shaped() {
    let s = Uuid(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
    let ids: Vec<Uuid> = (0..16).map(|i| waitpoint_id(s, i)).collect();
    for (i, a) in ids.iter().enumerate() {
        assert_eq!((a.0 >> 76) & 0xf, 4, "version 4");
        assert_eq!((a.0 >> 62) & 0x3, 2, "variant");
        assert!(ids.iter().skip(i + 1).all(|b| b != a));
    }
    assert_eq!(waitpoint_id(s, 3), ids[3], "deterministic");
}
