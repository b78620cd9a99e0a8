//! Argument parsing over raw byte arguments: strict numbers, keywords, the
//! one options loop every command's parser uses, and the validators they
//! share. Every failure is a value, never a panic.

use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::{ExecId, Uuid};
use crate::base::limits::{Limits, LANE_MAX_BYTES, NAME_MAX_BYTES, TIME_MAX_MS};

/// Shows a client-supplied name in an error without echoing its bytes.
pub fn describe(arg: &[u8]) -> String {
    if arg.len() <= 32
        && arg
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        String::from_utf8_lossy(arg).into_owned()
    } else {
        format!("<{} bytes>", arg.len())
    }
}

/// Parses a non-negative decimal integer that fits in `u64` and is at most
/// `max`. No sign, no spaces, no leading `+`.
pub fn parse_u64(arg: &[u8], what: &str, max: u64) -> CmdResult<u64> {
    let err = || CmdError::syntax(format!("{what} must be an integer from 0 to {max}"));
    if arg.is_empty() || arg.len() > 20 {
        return Err(err());
    }
    let mut v: u64 = 0;
    for &c in arg {
        if !c.is_ascii_digit() {
            return Err(err());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(err)?;
    }
    if v > max {
        return Err(err());
    }
    Ok(v)
}

/// Parses a signed decimal integer that fits in `i64`.
pub fn parse_i64(arg: &[u8], what: &str) -> CmdResult<i64> {
    let err = || CmdError::syntax(format!("{what} must be an integer"));
    let (neg, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(err());
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(err());
        }
        let d = i64::from(c - b'0');
        v = v
            .checked_mul(10)
            .and_then(|v| {
                if neg {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or_else(err)?;
    }
    Ok(v)
}

/// Parses a decimal like `2` or `1.5` into thousandths.
pub fn parse_milli(arg: &[u8], what: &str, max_milli: u64) -> CmdResult<u64> {
    let err = || {
        CmdError::syntax(format!(
            "{what} must be a decimal number with up to 3 decimals"
        ))
    };
    let (int, frac) = match arg.iter().position(|&c| c == b'.') {
        Some(p) => (
            arg.get(..p).unwrap_or_default(),
            arg.get(p + 1..).unwrap_or_default(),
        ),
        None => (arg, &b""[..]),
    };
    if frac.len() > 3 || (int.is_empty() && frac.is_empty()) {
        return Err(err());
    }
    let i = if int.is_empty() {
        0
    } else {
        parse_u64(int, what, u64::MAX / 1000).map_err(|_| err())?
    };
    let mut f = 0u64;
    for k in 0..3 {
        let d = match frac.get(k) {
            Some(c) if c.is_ascii_digit() => u64::from(c - b'0'),
            Some(_) => return Err(err()),
            None => 0,
        };
        f = f * 10 + d;
    }
    let v = i * 1000 + f;
    if v > max_milli {
        return Err(err());
    }
    Ok(v)
}

#[cold]
pub fn missing(what: &str) -> CmdError {
    CmdError::syntax(format!("missing {what}"))
}

/// A cursor over a command's arguments.
pub struct Args<'a> {
    args: &'a [&'a [u8]],
    pos: usize,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [&'a [u8]]) -> Args<'a> {
        Args { args, pos: 0 }
    }
    #[inline]
    pub fn next(&mut self, what: &str) -> CmdResult<&'a [u8]> {
        match self.args.get(self.pos) {
            Some(a) => {
                self.pos += 1;
                Ok(a)
            }
            None => Err(missing(what)),
        }
    }
    pub fn next_u64(&mut self, what: &str, max: u64) -> CmdResult<u64> {
        parse_u64(self.next(what)?, what, max)
    }
    pub fn peek(&self) -> Option<&'a [u8]> {
        self.args.get(self.pos).copied()
    }
    /// How many arguments have been read.
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn is_done(&self) -> bool {
        self.pos >= self.args.len()
    }
}

/// Where the command came from: only the primary's replication stream and
/// the AOF may pin the clock with `AT`. `Ask` finds out only when a pinned
/// value appears, since asking costs the server a flags lookup.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    Client,
    Replicated,
    Ask(&'a dyn AskOrigin),
}

/// What can say whether the current command came from replication or AOF.
pub trait AskOrigin {
    fn is_replicated(&self) -> bool;
}

impl Origin<'_> {
    pub fn is_replicated(self) -> bool {
        match self {
            Origin::Client => false,
            Origin::Replicated => true,
            Origin::Ask(a) => a.is_replicated(),
        }
    }
}

/// Reads a value only the primary or the AOF may send (`AT`, `RETRY_AT`).
pub fn pinned(a: &mut Args, origin: Origin, what: &str, into: &mut Option<u64>) -> CmdResult<()> {
    if !origin.is_replicated() {
        return Err(CmdError::syntax(format!(
            "{what} is reserved for replication and AOF"
        )));
    }
    *into = Some(a.next_u64(what, TIME_MAX_MS)?);
    Ok(())
}

#[cold]
pub fn unknown(arg: &[u8]) -> CmdError {
    CmdError::syntax(format!("unknown option {}", describe(arg)))
}

/// The options loop every parser shares: reads `KEYWORD [values]` options
/// to the end of the arguments, taking the pinned `AT` itself and handing
/// every other keyword to `on`, which reads that option's values and
/// returns false for a keyword the command does not take.
pub fn options<'a>(
    a: &mut Args<'a>,
    origin: Origin,
    at: &mut Option<u64>,
    mut on: impl FnMut(&[u8], &mut Args<'a>) -> CmdResult<bool>,
) -> CmdResult<()> {
    while let Some(opt) = a.peek() {
        a.next("option")?;
        match keyword(opt) {
            Some(k) if &*k == b"AT" => pinned(a, origin, "AT", at)?,
            Some(k) if on(&k, a)? => {}
            _ => return Err(unknown(opt)),
        }
    }
    Ok(())
}

/// A lane name: 1 to 64 printable ASCII bytes.
pub fn lane_str(lane: &[u8]) -> CmdResult<&str> {
    let err = || {
        CmdError::syntax(format!(
            "lane must be 1 to {LANE_MAX_BYTES} printable ASCII bytes"
        ))
    };
    if lane.is_empty()
        || lane.len() > LANE_MAX_BYTES
        || !lane.iter().all(|b| (0x20..=0x7e).contains(b))
    {
        return Err(err());
    }
    std::str::from_utf8(lane).map_err(|_| err())
}

/// A namespace or kind: at most 256 bytes.
pub fn check_name(v: &[u8], what: &str) -> CmdResult<Box<[u8]>> {
    if v.len() > NAME_MAX_BYTES {
        return Err(CmdError::syntax(format!(
            "{what} is longer than {NAME_MAX_BYTES} bytes"
        )));
    }
    Ok(v.into())
}

/// A tag key is `<caller>.<field>`: a lowercase name, a dot, then at least
/// one character that is not a dot (the reference's rule).
pub fn valid_tag_key(k: &[u8]) -> bool {
    let Some(dot) = k.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (caller, rest) = k.split_at(dot);
    let first_ok = caller.first().is_some_and(u8::is_ascii_lowercase);
    let caller_ok = caller
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    let after_ok = rest.get(1).is_some_and(|&c| c != b'.');
    first_ok && caller_ok && after_ok && k.len() <= NAME_MAX_BYTES
}

/// A worker or instance id: 1 to 256 bytes without control bytes.
pub fn check_worker<'a>(v: &'a [u8], what: &str) -> CmdResult<&'a [u8]> {
    if v.is_empty() || v.len() > NAME_MAX_BYTES || v.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(CmdError::syntax(format!(
            "{what} must be 1 to {NAME_MAX_BYTES} bytes without control bytes"
        )));
    }
    Ok(v)
}

pub fn parse_exec_id(arg: &[u8], limits: &Limits) -> CmdResult<ExecId> {
    ExecId::parse(arg, limits.partitions).ok_or_else(|| {
        CmdError::syntax(format!(
            "execution id must be {{fp:N}}:<uuid> with N below {}",
            limits.partitions
        ))
    })
}

pub fn parse_uuid(arg: &[u8], what: &str) -> CmdResult<Uuid> {
    Uuid::parse(arg).ok_or_else(|| CmdError::syntax(format!("{what} must be a UUID")))
}

/// A keyword upper-cased on the stack, for matching without allocating
/// (as bytes: matching byte strings skips a UTF-8 check per option).
pub struct Keyword {
    buf: [u8; 32],
    len: usize,
}

impl std::ops::Deref for Keyword {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Upper-cases a keyword for matching; unknown keywords are reported by
/// the caller without echoing them.
pub fn keyword(arg: &[u8]) -> Option<Keyword> {
    if arg.len() > 32
        || !arg
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return None;
    }
    let mut k = Keyword {
        buf: [0; 32],
        len: arg.len(),
    };
    for (d, s) in k.buf.iter_mut().zip(arg) {
        *d = s.to_ascii_uppercase();
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0", "n", 10), Ok(0));
        assert_eq!(parse_u64(b"10", "n", 10), Ok(10));
        assert!(parse_u64(b"11", "n", 10).is_err());
        assert!(parse_u64(b"-1", "n", 10).is_err());
        assert!(parse_u64(b"+1", "n", 10).is_err());
        assert!(parse_u64(b"1 ", "n", 10).is_err());
        assert!(parse_u64(b"99999999999999999999999", "n", u64::MAX).is_err());
        assert!(parse_u64(b"18446744073709551616", "n", u64::MAX).is_err());
        assert_eq!(
            parse_u64(b"18446744073709551615", "n", u64::MAX),
            Ok(u64::MAX)
        );
        assert_eq!(parse_i64(b"-5", "n"), Ok(-5));
        assert_eq!(parse_i64(b"-9223372036854775808", "n"), Ok(i64::MIN));
        assert!(parse_i64(b"9223372036854775808", "n").is_err());
        assert!(parse_i64(b"-", "n").is_err());
        assert!(parse_i64(b"1e3", "n").is_err());
        assert_eq!(parse_milli(b"2", "m", 100_000), Ok(2000));
        assert_eq!(parse_milli(b"1.5", "m", 100_000), Ok(1500));
        assert_eq!(parse_milli(b".25", "m", 100_000), Ok(250));
        assert!(parse_milli(b"1.2345", "m", 100_000).is_err());
        assert!(parse_milli(b"1.x", "m", 100_000).is_err());
        assert!(parse_milli(b".", "m", 100_000).is_err());
        assert!(parse_milli(b"1000", "m", 100_000).is_err());
    }
}
