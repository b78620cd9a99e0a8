//! Times in requests: an absolute time (unix ms) or a span from the
//! command's own time, and how options of either kind are read. A relative
//! time becomes absolute from the command's pinned `AT` (the primary's
//! clock when it ran), so a replica and an AOF replay compute the same
//! value from the same arguments.

use crate::base::args::{Args, Origin};
use crate::base::errors::{CmdError, CmdResult};
use crate::base::limits::{TIME_MAX_MS, TTL_MAX_MS};

/// The smallest absolute time a client may send: 10^11 ms is March 1973.
/// Anything smaller is almost surely seconds (or a span) by mistake.
pub const CLIENT_TIME_MIN_MS: u64 = 100_000_000_000;

/// When something falls due: at a time, or a span after the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Unix ms.
    At(u64),
    /// Milliseconds after the command's time.
    In(u64),
}

impl When {
    /// The absolute time, counting a span from `now` (the command's
    /// pinned time).
    pub fn resolve(self, now: u64) -> u64 {
        match self {
            When::At(t) => t,
            When::In(ms) => now.saturating_add(ms).min(TIME_MAX_MS),
        }
    }
}

/// Reads an absolute time, unix ms. From a client a value below
/// `CLIENT_TIME_MIN_MS` is refused as likely seconds; the primary's
/// replication stream and the AOF may carry any (files written before the
/// check still load).
pub fn absolute(a: &mut Args, origin: Origin, what: &str) -> CmdResult<u64> {
    let t = a.next_u64(what, TIME_MAX_MS)?;
    check_absolute(t, origin, what)?;
    Ok(t)
}

/// Refuses a client's absolute time that looks like seconds (see
/// `absolute`).
pub fn check_absolute(t: u64, origin: Origin, what: &str) -> CmdResult<()> {
    // Asking the origin costs a flags lookup: only for a suspect value.
    if t < CLIENT_TIME_MIN_MS && !origin.is_replicated() {
        return Err(CmdError::syntax(format!(
            "{what} {t} is before March 1973: times are milliseconds since the epoch (unix ms), not seconds"
        )));
    }
    Ok(())
}

/// Reads a span in ms (at most `TTL_MAX_MS`, a year).
pub fn span(a: &mut Args, what: &str) -> CmdResult<u64> {
    a.next_u64(what, TTL_MAX_MS)
}

/// One of a pair of options naming the same time, absolute (`abs`) or
/// relative (`rel`): reads the option `k` into `slot` if it is one of the
/// pair (true), refusing the pair's other one when a client gave it
/// before. The same option twice keeps the last, as every option does.
pub fn pair(
    k: &[u8],
    a: &mut Args,
    origin: Origin,
    (abs, rel): (&str, &str),
    slot: &mut Option<When>,
) -> CmdResult<bool> {
    let w = if k == abs.as_bytes() {
        When::At(absolute(a, origin, abs)?)
    } else if k == rel.as_bytes() {
        When::In(span(a, rel)?)
    } else {
        return Ok(false);
    };
    match (*slot, w) {
        // Before this check a replicated or AOF command could carry both
        // (the last won): it still loads as it did.
        (Some(When::At(_)), When::In(_)) | (Some(When::In(_)), When::At(_))
            if !origin.is_replicated() =>
        {
            Err(CmdError::syntax(format!(
                "{abs} and {rel} name the same time: give one of them"
            )))
        }
        _ => {
            *slot = Some(w);
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::split;

    fn read(line: &str, origin: Origin) -> CmdResult<Option<When>> {
        let v = split(line);
        let mut a = Args::new(&v);
        let mut slot = None;
        while let Some(k) = a.peek() {
            a.next("option")?;
            if !pair(k, &mut a, origin, ("UNTIL", "FOR"), &mut slot)? {
                return Err(CmdError::syntax("unknown"));
            }
        }
        Ok(slot)
    }

    #[test]
    fn pairs_and_seconds() {
        let c = Origin::Client;
        assert_eq!(
            read("UNTIL 1700000000000", c),
            Ok(Some(When::At(1_700_000_000_000)))
        );
        assert_eq!(read("FOR 5", c), Ok(Some(When::In(5))));
        assert_eq!(read("FOR 0", c), Ok(Some(When::In(0))));
        // The same option twice: the last.
        assert_eq!(read("FOR 5 FOR 7", c), Ok(Some(When::In(7))));
        for bad in [
            "UNTIL 1700000000",
            "UNTIL 0",
            "UNTIL 99999999999",
            "FOR 5 UNTIL 1700000000000",
            "UNTIL 1700000000000 FOR 5",
            "FOR -1",
            "FOR 31536000001",
            "UNTIL",
        ] {
            let e = read(bad, c).unwrap_err();
            assert_eq!(e.code, crate::base::errors::Code::Err, "{bad}");
        }
        let e = read("UNTIL 1700000000", c).unwrap_err();
        assert!(e.message.contains("milliseconds since the epoch"), "{e}");
        assert_eq!(
            read("UNTIL 100000000000", c),
            Ok(Some(When::At(CLIENT_TIME_MIN_MS)))
        );
        // The primary's stream and the AOF may carry any time.
        assert_eq!(read("UNTIL 1", Origin::Replicated), Ok(Some(When::At(1))));
        // ...and both of a pair, as commands written before the check did:
        // the last wins.
        let r = Origin::Replicated;
        assert_eq!(
            read("FOR 5 UNTIL 1700000000000", r),
            Ok(Some(When::At(1_700_000_000_000)))
        );
        assert_eq!(read("UNTIL 1700000000000 FOR 5", r), Ok(Some(When::In(5))));
    }

    #[test]
    fn resolving() {
        assert_eq!(When::At(7).resolve(100), 7);
        assert_eq!(When::In(7).resolve(100), 107);
        assert_eq!(When::In(u64::MAX).resolve(u64::MAX), TIME_MAX_MS);
    }
}
