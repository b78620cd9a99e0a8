//! Argument parsing over raw byte arguments: strict numbers, keywords, and
//! the error text a client sees. Every failure is a value, never a panic.

/// A client-facing error: an upper-case code, then a readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdError(pub String);

impl CmdError {
    pub fn new(code: &str, msg: impl std::fmt::Display) -> CmdError {
        CmdError(format!("{code} {msg}"))
    }
    pub fn syntax(msg: impl std::fmt::Display) -> CmdError {
        CmdError::new("ERR", msg)
    }
}

pub type CmdResult<T> = Result<T, CmdError>;

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
fn missing(what: &str) -> CmdError {
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

/// A keyword upper-cased on the stack, for matching without allocating.
pub struct Keyword {
    buf: [u8; 32],
    len: usize,
}

impl std::ops::Deref for Keyword {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
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
