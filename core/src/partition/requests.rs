//! The partition domain's requests: listings and the timer's replicated
//! batches.

use crate::base::args::{lane_str, options, parse_u64, Args, Origin};
use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::SubmitTarget;
use crate::base::limits::{Limits, LIST_COUNT_MAX, TIME_MAX_MS};
use crate::base::state::PublicState;

/// Where a listing resumes: the admission sequence of the next record to
/// read (0, the start, for the first page).
pub type ListCursor = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List<'a> {
    pub partition: u16,
    pub state: Option<PublicState>,
    pub lane: Option<&'a str>,
    pub cursor: ListCursor,
    pub count: usize,
}

/// `FF.LIST {fp:N} [STATE state] [LANE lane] [CURSOR cursor] [COUNT n]`.
pub fn parse_list<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<List<'a>> {
    let mut a = Args::new(args);
    let partition = match SubmitTarget::parse(a.next("partition")?, limits.partitions) {
        Some(SubmitTarget::Partition(p)) => p,
        _ => return Err(CmdError::syntax("partition must be {fp:N}")),
    };
    let mut l = List {
        partition,
        state: None,
        lane: None,
        cursor: 0,
        count: 100,
    };
    // A listing is a read: no pinned values.
    let mut never = None;
    options(&mut a, Origin::Client, &mut never, |k, a| {
        match k {
            b"STATE" => {
                let s = PublicState::parse(a.next("STATE")?);
                l.state = Some(s.ok_or_else(|| CmdError::syntax("unknown STATE"))?);
            }
            b"LANE" => l.lane = Some(lane_str(a.next("LANE")?)?),
            b"CURSOR" => l.cursor = a.next_u64("CURSOR", u64::MAX)?,
            b"COUNT" => {
                let n = a.next_u64("COUNT", LIST_COUNT_MAX)?;
                if n == 0 {
                    return Err(CmdError::syntax("COUNT must be from 1 to 10000"));
                }
                l.count = usize::try_from(n).unwrap_or(100);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(l)
}

/// One batch of the node timer, with every setting it depends on pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueBatch {
    pub partition: u16,
    pub at: u64,
    pub count: usize,
    pub retention_ms: u64,
    pub max_reclaims: u32,
}

/// `FF.DUE partition at count retention_ms max_reclaims`.
/// The partition is named by its key (`ff:idx:{fp:N}`), so the command is
/// routed with its slot (atomic slot migration forwards keyed commands
/// only); an AOF written before names it by number, still accepted.
pub fn parse_due(args: &[&[u8]], limits: &Limits) -> CmdResult<DueBatch> {
    let mut a = Args::new(args);
    let first = a.next("partition")?;
    let p = match partition_of_key(first, limits.partitions) {
        Some(p) => p,
        None => {
            let max = u64::from(limits.partitions.saturating_sub(1));
            u16::try_from(parse_u64(first, "partition", max)?).unwrap_or(0)
        }
    };
    let b = DueBatch {
        partition: p,
        at: a.next_u64("at", TIME_MAX_MS)?,
        count: usize::try_from(a.next_u64("count", 1_000_000)?).unwrap_or(0),
        retention_ms: a.next_u64("retention", i64::MAX as u64)?,
        max_reclaims: u32::try_from(a.next_u64("max reclaims", 1_000_000)?).unwrap_or(0),
    };
    if !a.is_done() {
        return Err(CmdError::syntax("too many arguments"));
    }
    Ok(b)
}

/// The partition whose index key is `key` (`ff:idx:{fp:N}`, N below
/// `partitions`, without leading zeros).
pub fn partition_of_key(key: &[u8], partitions: u16) -> Option<u16> {
    let n = key.strip_prefix(b"ff:idx:{fp:")?.strip_suffix(b"}")?;
    let canonical = match n {
        [] => false,
        [b'0', _, ..] => false,
        _ => n.len() <= 5 && n.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    let v: u32 = std::str::from_utf8(n).ok()?.parse().ok()?;
    u16::try_from(v).ok().filter(|&p| p < partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::{split, L};

    #[test]
    fn due_names_its_partition_by_key_or_number() {
        assert_eq!(partition_of_key(b"ff:idx:{fp:7}", 256), Some(7));
        assert_eq!(partition_of_key(b"ff:idx:{fp:255}", 256), Some(255));
        assert_eq!(partition_of_key(b"ff:idx:{fp:0}", 256), Some(0));
        for bad in [
            "ff:idx:{fp:256}",
            "ff:idx:{fp:07}",
            "ff:idx:{fp:}",
            "ff:idx:{fp:1}x",
            "{fp:1}",
        ] {
            assert_eq!(partition_of_key(bad.as_bytes(), 256), None, "{bad}");
        }
        let new = split("ff:idx:{fp:3} 100 5 0 10");
        assert_eq!(parse_due(&new, &L).unwrap().partition, 3);
        let old = split("3 100 5 0 10");
        assert_eq!(parse_due(&old, &L).unwrap(), parse_due(&new, &L).unwrap());
        assert!(parse_due(&split("ff:idx:{fp:999} 100 5 0 10"), &L).is_err());
    }

    #[test]
    fn list_options() {
        let words = split("{fp:3} STATE delayed LANE q CURSOR 9 COUNT 5");
        let l = parse_list(&words, &L).unwrap();
        assert_eq!(
            (l.partition, l.lane, l.cursor, l.count),
            (3, Some("q"), 9, 5)
        );
        for bad in ["{fp:3} COUNT 0", "{fp:3} STATE nope", "q", "{fp:3} AT 5"] {
            assert!(parse_list(&split(bad), &L).is_err(), "{bad}");
        }
    }
}
