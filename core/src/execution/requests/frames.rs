//! The output stream's requests: the holder's FF.APPEND, and the reads
//! FF.FRAMES and FF.SUMMARY.

use super::exec_and_fence;
use crate::base::args::{options, parse_exec_id, Args, Origin};
use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::ExecId;
use crate::base::limits::{
    Limits, BEST_EFFORT_MAXLEN_MAX, BEST_EFFORT_MAXLEN_MIN, FRAMES_COUNT_MAX, NAME_MAX_BYTES,
    TTL_MAX_MS,
};
use crate::execution::attempt::Fence;
use crate::streams::{EntryId, FrameMode, Mode};

/// `FF.APPEND id lease epoch attempt type payload [MODE m] [MAXLEN n]
/// [TTL ms] [ENCODING e] [CORRELATION c] [SOURCE s]`. The frame's text
/// parts are borrowed: the shell writes them into the stream as they came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append<'a> {
    pub id: ExecId,
    pub fence: Fence,
    pub frame_type: &'a [u8],
    pub payload: &'a [u8],
    pub mode: FrameMode,
    pub encoding: Option<&'a [u8]>,
    pub correlation: Option<&'a [u8]>,
    pub source: Option<&'a [u8]>,
    pub at: Option<u64>,
}

/// A short name: 1 to `NAME_MAX_BYTES` bytes.
fn short<'a>(a: &mut Args<'a>, what: &str) -> CmdResult<&'a [u8]> {
    let v = a.next(what)?;
    if v.is_empty() || v.len() > NAME_MAX_BYTES {
        return Err(CmdError::syntax(format!(
            "{what} must be 1 to {NAME_MAX_BYTES} bytes"
        )));
    }
    Ok(v)
}

pub fn parse_append<'a>(
    args: &'a [&'a [u8]],
    limits: &Limits,
    origin: Origin,
) -> CmdResult<Append<'a>> {
    let (mut a, id, fence) = exec_and_fence(args, limits)?;
    let frame_type = short(&mut a, "frame type")?;
    let payload = a.next("payload")?;
    let mut mode = FrameMode {
        mode: Mode::Durable,
        maxlen: None,
        ttl_ms: None,
    };
    let (mut encoding, mut correlation, mut source, mut at) = (None, None, None, None);
    options(&mut a, origin, &mut at, |k, a| {
        match k {
            b"MODE" => {
                let m = a.next("MODE")?;
                mode.mode = match m.to_ascii_lowercase().as_slice() {
                    b"durable" => Mode::Durable,
                    b"summary" => Mode::Summary,
                    b"best_effort" | b"best-effort" => Mode::BestEffort,
                    _ => {
                        return Err(CmdError::syntax(
                            "MODE must be durable, summary or best_effort",
                        ))
                    }
                };
            }
            b"MAXLEN" => {
                let n = a.next_u64("MAXLEN", BEST_EFFORT_MAXLEN_MAX)?;
                if n < BEST_EFFORT_MAXLEN_MIN {
                    return Err(CmdError::syntax(format!(
                        "MAXLEN must be {BEST_EFFORT_MAXLEN_MIN} to {BEST_EFFORT_MAXLEN_MAX}"
                    )));
                }
                mode.maxlen = Some(n);
            }
            b"TTL" => {
                let t = a.next_u64("TTL", TTL_MAX_MS)?;
                if t == 0 {
                    return Err(CmdError::syntax("TTL must be at least 1 ms"));
                }
                mode.ttl_ms = Some(t);
            }
            b"ENCODING" => encoding = Some(short(a, "ENCODING")?),
            b"CORRELATION" => correlation = Some(short(a, "CORRELATION")?),
            b"SOURCE" => source = Some(short(a, "SOURCE")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if mode.mode != Mode::BestEffort && (mode.maxlen.is_some() || mode.ttl_ms.is_some()) {
        return Err(CmdError::syntax(
            "MAXLEN and TTL apply to MODE best_effort only",
        ));
    }
    Ok(Append {
        id,
        fence,
        frame_type,
        payload,
        mode,
        encoding,
        correlation,
        source,
        at,
    })
}

/// A stream entry id bound of FF.FRAMES (`-`, `+`, `ms` or `ms-seq`, and
/// `(` before it for an exclusive bound), as the inclusive id it means.
pub type Bound = EntryId;

/// `FF.FRAMES id attempt [FROM id] [TO id] [COUNT n] [DURABLE_ONLY]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadFrames {
    pub id: ExecId,
    pub attempt: u32,
    /// Inclusive bounds (an exclusive one is moved by one).
    pub from: Bound,
    pub to: Bound,
    pub count: u64,
    pub durable_only: bool,
}

/// Frames one FF.FRAMES returns when it names no COUNT.
pub const FRAMES_COUNT_DEFAULT: u64 = 100;

fn parse_bound(arg: &[u8], low: bool) -> CmdResult<Option<Bound>> {
    let bad = || CmdError::syntax("a stream id is -, +, ms or ms-seq, optionally after (");
    match arg {
        b"-" => return Ok(Some(Bound { ms: 0, seq: 0 })),
        b"+" => {
            return Ok(Some(Bound {
                ms: u64::MAX,
                seq: u64::MAX,
            }))
        }
        _ => {}
    }
    let (exclusive, body) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    let text = std::str::from_utf8(body).map_err(|_| bad())?;
    let (ms, seq) = match text.split_once('-') {
        Some((m, s)) => (
            m.parse::<u64>().map_err(|_| bad())?,
            Some(s.parse::<u64>().map_err(|_| bad())?),
        ),
        None => (text.parse::<u64>().map_err(|_| bad())?, None),
    };
    let b = Bound {
        ms,
        seq: seq.unwrap_or(if low { 0 } else { u64::MAX }),
    };
    if !exclusive {
        return Ok(Some(b));
    }
    // An exclusive bound is the next id inward; none when there is none.
    let inward = if low {
        match b.seq.checked_add(1) {
            Some(seq) => Some(Bound { ms: b.ms, seq }),
            None => b.ms.checked_add(1).map(|ms| Bound { ms, seq: 0 }),
        }
    } else {
        match b.seq.checked_sub(1) {
            Some(seq) => Some(Bound { ms: b.ms, seq }),
            None => b.ms.checked_sub(1).map(|ms| Bound { ms, seq: u64::MAX }),
        }
    };
    Ok(inward)
}

/// The attempt index argument.
fn attempt_index(a: &mut Args) -> CmdResult<u32> {
    let n = a.next_u64("attempt index", u64::from(u32::MAX))?;
    u32::try_from(n).map_err(|_| CmdError::syntax("attempt index out of range"))
}

/// Parses FF.FRAMES; `None` when a bound leaves nothing to read.
pub fn parse_frames(args: &[&[u8]], limits: &Limits) -> CmdResult<Option<ReadFrames>> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let attempt = attempt_index(&mut a)?;
    let mut r = ReadFrames {
        id,
        attempt,
        from: Bound { ms: 0, seq: 0 },
        to: Bound {
            ms: u64::MAX,
            seq: u64::MAX,
        },
        count: FRAMES_COUNT_DEFAULT,
        durable_only: false,
    };
    let mut empty = false;
    let mut at = None;
    options(&mut a, Origin::Client, &mut at, |k, a| {
        match k {
            b"FROM" => match parse_bound(a.next("FROM")?, true)? {
                Some(b) => r.from = b,
                None => empty = true,
            },
            b"TO" => match parse_bound(a.next("TO")?, false)? {
                Some(b) => r.to = b,
                None => empty = true,
            },
            b"COUNT" => {
                let n = a.next_u64("COUNT", FRAMES_COUNT_MAX)?;
                if n == 0 {
                    return Err(CmdError::syntax(format!(
                        "COUNT must be 1 to {FRAMES_COUNT_MAX}"
                    )));
                }
                r.count = n;
            }
            b"DURABLE_ONLY" => r.durable_only = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((!empty).then_some(r))
}

/// `FF.SUMMARY id attempt`.
pub fn parse_summary(args: &[&[u8]], limits: &Limits) -> CmdResult<(ExecId, u32)> {
    let mut a = Args::new(args);
    let id = parse_exec_id(a.next("execution id")?, limits)?;
    let attempt = attempt_index(&mut a)?;
    if let Some(x) = a.peek() {
        return Err(crate::base::args::unknown(x));
    }
    Ok((id, attempt))
}
