//! Resume conditions: what must arrive before a suspension resumes. A
//! condition is a tree of at most four levels: a leaf waits for one
//! matching signal on one waitpoint; `Count` waits for `n` distinct
//! waitpoints, signals or sources among matching signals on its
//! waitpoints; `AllOf` waits for all of its members. `OperatorOnly` and
//! `TimeoutOnly` no signal satisfies.
//!
//! Evaluation is from the accepted signals themselves, bottom up, every
//! time: no satisfied-markers that could go stale (the reference's nested
//! `AllOf` never resolved, and its counts leaked between nodes).

use crate::base::args::{keyword, Args};
use crate::base::codec::{DecodeError, Reader, Writer};
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::limits::{NAME_MAX_BYTES, SIGNALS_MAX};

/// The deepest composite a condition may nest (the root is depth 1).
pub const MAX_DEPTH: usize = 4;
/// The most nodes one condition may hold, so evaluating it is bounded.
pub const MAX_NODES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Any,
    Name(Box<[u8]>),
}

impl Matcher {
    pub fn accepts(&self, name: &[u8]) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Name(n) => **n == *name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountKind {
    Waitpoints = 0,
    Signals = 1,
    Sources = 2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// One matching signal on the waitpoint with this key.
    One {
        key: Box<[u8]>,
        matcher: Matcher,
    },
    AllOf(Vec<Node>),
    Count {
        n: u32,
        kind: CountKind,
        matcher: Matcher,
        keys: Vec<Box<[u8]>>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Signals(Node),
    /// Only an operator's FF.WAKE resumes it.
    OperatorOnly,
    /// Only its timeout ends it.
    TimeoutOnly,
}

/// One accepted signal as the evaluator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    /// The key of the waitpoint it arrived on.
    pub key: &'a [u8],
    pub waitpoint: u128,
    pub signal: u128,
    pub name: &'a [u8],
    pub source: (&'a [u8], &'a [u8]),
}

/// What a new signal does to a condition (the reference's effect names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Satisfied = 0,
    Appended = 1,
    Duplicate = 2,
    NotInCondition = 3,
    MatcherFailed = 4,
    Buffered = 5,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Satisfied => "resume_condition_satisfied",
            Effect::Appended => "appended_to_waitpoint",
            Effect::Duplicate => "appended_to_waitpoint_duplicate",
            Effect::NotInCondition => "signal_ignored_not_in_condition",
            Effect::MatcherFailed => "signal_ignored_matcher_failed",
            Effect::Buffered => "buffered_for_pending_waitpoint",
        }
    }
    pub fn from_u8(b: u8) -> Option<Effect> {
        [
            Effect::Satisfied,
            Effect::Appended,
            Effect::Duplicate,
            Effect::NotInCondition,
            Effect::MatcherFailed,
            Effect::Buffered,
        ]
        .into_iter()
        .find(|e| *e as u8 == b)
    }
    /// The signal counts towards the condition.
    pub fn counted(self) -> bool {
        matches!(self, Effect::Satisfied | Effect::Appended)
    }
}

fn bad(code: Code, msg: impl std::fmt::Display) -> CmdError {
    CmdError::new(code, msg)
}

fn parse_name(a: &mut Args, what: &str) -> CmdResult<Box<[u8]>> {
    let v = a.next(what)?;
    if v.is_empty() || v.len() > NAME_MAX_BYTES {
        return Err(CmdError::syntax(format!(
            "{what} must be 1 to {NAME_MAX_BYTES} bytes"
        )));
    }
    Ok(v.into())
}

fn parse_matcher(a: &mut Args) -> CmdResult<Matcher> {
    match keyword(a.next("matcher (NAME name | ANY)")?).as_deref() {
        Some(b"ANY") => Ok(Matcher::Any),
        Some(b"NAME") => Ok(Matcher::Name(parse_name(a, "signal name")?)),
        _ => Err(CmdError::syntax("a matcher is NAME <name> or ANY")),
    }
}

fn parse_node(a: &mut Args, depth: usize, nodes: &mut usize) -> CmdResult<Node> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(bad(
            Code::InvalidResumeCondition,
            format!("a condition holds at most {MAX_NODES} nodes"),
        ));
    }
    let k = keyword(a.next("condition node (ONE, ALLOF, COUNT)")?);
    match k.as_deref() {
        Some(b"ONE") => {
            let key = parse_name(a, "waitpoint key")?;
            Ok(Node::One {
                key,
                matcher: parse_matcher(a)?,
            })
        }
        Some(b"ALLOF") | Some(b"COUNT") if depth > MAX_DEPTH => Err(bad(
            Code::InvalidResumeCondition,
            format!("composite nesting exceeds cap of {MAX_DEPTH}"),
        )),
        Some(b"ALLOF") => {
            let n = a.next_u64("ALLOF member count", MAX_NODES as u64)?;
            if n == 0 {
                return Err(bad(
                    Code::InvalidResumeCondition,
                    "allof_empty: ALLOF needs members",
                ));
            }
            let mut members = Vec::new();
            for _ in 0..n {
                members.push(parse_node(a, depth + 1, nodes)?);
            }
            Ok(Node::AllOf(members))
        }
        Some(b"COUNT") => {
            // More than a suspension can receive could never be reached.
            let n = a.next_u64("COUNT n", SIGNALS_MAX as u64)?;
            if n == 0 {
                return Err(bad(
                    Code::InvalidResumeCondition,
                    "count_n_zero: COUNT n must be at least 1",
                ));
            }
            let kind = match keyword(a.next("COUNT kind")?).as_deref() {
                Some(b"WAITPOINTS") => CountKind::Waitpoints,
                Some(b"SIGNALS") => CountKind::Signals,
                Some(b"SOURCES") => CountKind::Sources,
                _ => {
                    return Err(CmdError::syntax(
                        "COUNT counts WAITPOINTS, SIGNALS or SOURCES",
                    ))
                }
            };
            let matcher = parse_matcher(a)?;
            let k = a.next_u64("COUNT waitpoint count", MAX_NODES as u64)?;
            if k == 0 {
                return Err(bad(
                    Code::InvalidResumeCondition,
                    "count_waitpoints_empty: COUNT needs waitpoint keys",
                ));
            }
            let mut keys = Vec::new();
            for _ in 0..k {
                keys.push(parse_name(a, "waitpoint key")?);
            }
            if kind == CountKind::Waitpoints && n > k {
                return Err(bad(
                    Code::InvalidResumeCondition,
                    "COUNT n WAITPOINTS exceeds its waitpoints",
                ));
            }
            Ok(Node::Count {
                n: u32::try_from(n).unwrap_or(u32::MAX),
                kind,
                matcher,
                keys,
            })
        }
        _ => Err(CmdError::syntax("a condition node is ONE, ALLOF or COUNT")),
    }
}

/// Reads a condition after `CONDITION`: `SIGNAL name` and `ANY` (on the
/// primary waitpoint, key `primary`), `OPERATOR`, `TIMEOUT_ONLY`, or a
/// tree of `ONE key matcher`, `ALLOF n node...`, `COUNT n kind matcher k
/// key...` (matcher: `NAME name` or `ANY`).
pub fn parse_condition(a: &mut Args, primary: &[u8]) -> CmdResult<Condition> {
    let Some(first) = a.peek() else {
        return Err(CmdError::syntax("missing condition"));
    };
    match keyword(first).as_deref() {
        Some(b"SIGNAL") => {
            a.next("SIGNAL")?;
            Ok(Condition::Signals(Node::One {
                key: primary.into(),
                matcher: Matcher::Name(parse_name(a, "signal name")?),
            }))
        }
        Some(b"ANY") => {
            a.next("ANY")?;
            Ok(Condition::Signals(Node::One {
                key: primary.into(),
                matcher: Matcher::Any,
            }))
        }
        Some(b"OPERATOR") => {
            a.next("OPERATOR")?;
            Ok(Condition::OperatorOnly)
        }
        Some(b"TIMEOUT_ONLY") => {
            a.next("TIMEOUT_ONLY")?;
            Ok(Condition::TimeoutOnly)
        }
        _ => Ok(Condition::Signals(parse_node(a, 1, &mut 0)?)),
    }
}

impl Node {
    /// Every waitpoint key the node names.
    pub fn keys(&self, out: &mut Vec<Box<[u8]>>) {
        match self {
            Node::One { key, .. } => out.push(key.clone()),
            Node::AllOf(m) => m.iter().for_each(|n| n.keys(out)),
            Node::Count { keys, .. } => out.extend(keys.iter().cloned()),
        }
    }

    fn names(&self, key: &[u8]) -> bool {
        match self {
            Node::One { key: k, .. } => **k == *key,
            Node::AllOf(m) => m.iter().any(|n| n.names(key)),
            Node::Count { keys, .. } => keys.iter().any(|k| **k == *key),
        }
    }

    fn accepts(&self, s: &Seen) -> bool {
        match self {
            Node::One { key, matcher } => **key == *s.key && matcher.accepts(s.name),
            Node::AllOf(m) => m.iter().any(|n| n.accepts(s)),
            Node::Count { matcher, keys, .. } => {
                keys.iter().any(|k| **k == *s.key) && matcher.accepts(s.name)
            }
        }
    }

    fn count(kind: CountKind, matcher: &Matcher, keys: &[Box<[u8]>], seen: &[Seen]) -> usize {
        let hits = seen
            .iter()
            .filter(|s| keys.iter().any(|k| **k == *s.key) && matcher.accepts(s.name));
        let mut ids: Vec<(u128, &[u8], &[u8])> = hits
            .map(|s| match kind {
                CountKind::Waitpoints => (s.waitpoint, &[][..], &[][..]),
                CountKind::Signals => (s.signal, &[][..], &[][..]),
                CountKind::Sources => (0, s.source.0, s.source.1),
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    pub fn satisfied(&self, seen: &[Seen]) -> bool {
        match self {
            Node::One { key, matcher } => seen
                .iter()
                .any(|s| **key == *s.key && matcher.accepts(s.name)),
            Node::AllOf(m) => m.iter().all(|n| n.satisfied(seen)),
            Node::Count {
                n,
                kind,
                matcher,
                keys,
            } => Node::count(*kind, matcher, keys, seen) >= *n as usize,
        }
    }

    /// Whether adding `s` to `seen` changes any leaf that accepts it.
    fn adds(&self, s: &Seen, seen: &[Seen], with: &[Seen]) -> bool {
        match self {
            Node::One { .. } => self.accepts(s) && !self.satisfied(seen),
            Node::AllOf(m) => m.iter().any(|n| n.adds(s, seen, with)),
            // A count already reached takes nothing more: the signals
            // that count stay bounded by the condition, not the sender.
            Node::Count {
                n,
                kind,
                matcher,
                keys,
            } => {
                let before = Node::count(*kind, matcher, keys, seen);
                self.accepts(s)
                    && before < *n as usize
                    && Node::count(*kind, matcher, keys, with) > before
            }
        }
    }

    fn depth(&self) -> usize {
        match self {
            Node::One { .. } => 0,
            Node::AllOf(m) => 1 + m.iter().map(Node::depth).max().unwrap_or(0),
            Node::Count { .. } => 1,
        }
    }

    fn size(&self) -> usize {
        match self {
            Node::AllOf(m) => 1 + m.iter().map(Node::size).sum::<usize>(),
            _ => 1,
        }
    }
}

impl Condition {
    /// What signal `s` (its waitpoint's key in `s.key`) does, given the
    /// signals `seen` that already count (`with` is `seen` plus `s`).
    pub fn effect(&self, s: &Seen, seen: &[Seen], with: &[Seen]) -> Effect {
        let Condition::Signals(root) = self else {
            return Effect::NotInCondition;
        };
        if !root.names(s.key) {
            return Effect::NotInCondition;
        }
        if !root.accepts(s) {
            return Effect::MatcherFailed;
        }
        if !root.adds(s, seen, with) {
            return Effect::Duplicate;
        }
        if root.satisfied(with) {
            Effect::Satisfied
        } else {
            Effect::Appended
        }
    }

    pub fn satisfied(&self, seen: &[Seen]) -> bool {
        match self {
            Condition::Signals(root) => root.satisfied(seen),
            _ => false,
        }
    }

    pub fn keys(&self) -> Vec<Box<[u8]>> {
        let mut v = Vec::new();
        if let Condition::Signals(root) = self {
            root.keys(&mut v);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Condition::OperatorOnly => w.u8(0),
            Condition::TimeoutOnly => w.u8(1),
            Condition::Signals(n) => {
                w.u8(2);
                encode_node(n, w);
            }
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Condition, DecodeError> {
        match r.u8()? {
            0 => Ok(Condition::OperatorOnly),
            1 => Ok(Condition::TimeoutOnly),
            2 => {
                let n = decode_node(r, 1)?;
                if n.size() > MAX_NODES || n.depth() > MAX_DEPTH {
                    return Err(DecodeError("resume condition too large"));
                }
                Ok(Condition::Signals(n))
            }
            _ => Err(DecodeError("unknown resume condition")),
        }
    }
}

fn encode_matcher(m: &Matcher, w: &mut Writer) {
    match m {
        Matcher::Any => w.u8(0),
        Matcher::Name(n) => {
            w.u8(1);
            w.bytes(n);
        }
    }
}

fn decode_matcher(r: &mut Reader) -> Result<Matcher, DecodeError> {
    match r.u8()? {
        0 => Ok(Matcher::Any),
        1 => Ok(Matcher::Name(r.bytes()?.into_boxed_slice())),
        _ => Err(DecodeError("unknown matcher")),
    }
}

fn encode_node(n: &Node, w: &mut Writer) {
    match n {
        Node::One { key, matcher } => {
            w.u8(0);
            w.bytes(key);
            encode_matcher(matcher, w);
        }
        Node::AllOf(m) => {
            w.u8(1);
            w.u32(m.len() as u32);
            m.iter().for_each(|c| encode_node(c, w));
        }
        Node::Count {
            n,
            kind,
            matcher,
            keys,
        } => {
            w.u8(2);
            w.u32(*n);
            w.u8(*kind as u8);
            encode_matcher(matcher, w);
            w.u32(keys.len() as u32);
            keys.iter().for_each(|k| w.bytes(k));
        }
    }
}

fn decode_node(r: &mut Reader, depth: usize) -> Result<Node, DecodeError> {
    if depth > MAX_DEPTH + 1 {
        return Err(DecodeError("resume condition nested too deep"));
    }
    match r.u8()? {
        0 => Ok(Node::One {
            key: r.bytes()?.into_boxed_slice(),
            matcher: decode_matcher(r)?,
        }),
        1 => {
            let k = r.count(5)?;
            if k == 0 || k > MAX_NODES {
                return Err(DecodeError("bad ALLOF member count"));
            }
            let mut m = Vec::with_capacity(k);
            for _ in 0..k {
                m.push(decode_node(r, depth + 1)?);
            }
            Ok(Node::AllOf(m))
        }
        2 => {
            let n = r.u32()?;
            let kind = match r.u8()? {
                0 => CountKind::Waitpoints,
                1 => CountKind::Signals,
                2 => CountKind::Sources,
                _ => return Err(DecodeError("unknown count kind")),
            };
            let matcher = decode_matcher(r)?;
            let k = r.count(4)?;
            if n == 0 || k == 0 || k > MAX_NODES {
                return Err(DecodeError("bad COUNT"));
            }
            let mut keys = Vec::with_capacity(k);
            for _ in 0..k {
                keys.push(r.bytes()?.into_boxed_slice());
            }
            Ok(Node::Count {
                n,
                kind,
                matcher,
                keys,
            })
        }
        _ => Err(DecodeError("unknown condition node")),
    }
}
