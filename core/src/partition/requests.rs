//! The partition domain's requests: listings and the timer's replicated
//! batches.

use crate::base::args::{lane_str, options, parse_u64, Args, Origin};
use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::SubmitTarget;
use crate::base::limits::{Limits, LIST_COUNT_MAX, TIME_MAX_MS};
use crate::base::state::PublicState;
use crate::execution::requests::parse_reason;
use crate::partition::listing::{Filter, NodeCursor};

/// Where a listing resumes: the admission sequence of the next record to
/// read (0, the start, for the first page).
pub type ListCursor = u64;

/// A listing's filter, cursor and page size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing<'a> {
    pub filter: Filter<'a>,
    pub cursor: u64,
    pub count: usize,
}

/// `FF.LIST {fp:N} [listing options]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List<'a> {
    pub partition: u16,
    pub listing: Listing<'a>,
}

/// Reads `[STATE state] [LANE lane] [RECLAIMABLE] [CURSOR cursor] [COUNT
/// n]` (COUNT from 1 to `max`, 100 by default), handing other options to
/// `more`. Listings and bulk calls are never replicated themselves: no
/// pinned values.
fn listing_options<'a>(
    a: &mut Args<'a>,
    max: u64,
    mut more: impl FnMut(&[u8], &mut Args<'a>) -> CmdResult<bool>,
) -> CmdResult<Listing<'a>> {
    let mut never = None;
    let mut l = Listing {
        filter: Filter::default(),
        cursor: 0,
        count: usize::try_from(max.min(100)).unwrap_or(100),
    };
    options(a, Origin::Client, &mut never, |k, a| {
        match k {
            b"STATE" => {
                let s = PublicState::parse(a.next("STATE")?);
                l.filter.state = Some(s.ok_or_else(|| CmdError::syntax("unknown STATE"))?);
            }
            b"LANE" => l.filter.lane = Some(lane_str(a.next("LANE")?)?),
            b"RECLAIMABLE" => l.filter.reclaimable = true,
            b"CURSOR" => l.cursor = a.next_u64("CURSOR", u64::MAX)?,
            b"COUNT" => {
                let n = a.next_u64("COUNT", max)?;
                if n == 0 {
                    return Err(CmdError::syntax(format!("COUNT must be from 1 to {max}")));
                }
                l.count = usize::try_from(n).unwrap_or(100);
            }
            _ => return more(k, a),
        }
        Ok(true)
    })?;
    Ok(l)
}

/// `FF.LIST {fp:N} [STATE state] [LANE lane] [RECLAIMABLE] [CURSOR cursor]
/// [COUNT n]`.
pub fn parse_list<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<List<'a>> {
    let mut a = Args::new(args);
    let partition = match SubmitTarget::parse(a.next("partition")?, limits.partitions) {
        Some(SubmitTarget::Partition(p)) => p,
        _ => return Err(CmdError::syntax("partition must be {fp:N}")),
    };
    let listing = listing_options(&mut a, LIST_COUNT_MAX, |_, _| Ok(false))?;
    Ok(List { partition, listing })
}

/// `FF.SCAN [STATE state] [LANE lane] [RECLAIMABLE] [CURSOR cursor] [COUNT
/// n]`: a node-wide listing, its cursor a `NodeCursor`.
pub fn parse_scan<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<Listing<'a>> {
    let l = listing_options(&mut Args::new(args), LIST_COUNT_MAX, |_, _| Ok(false))?;
    node_cursor(l.cursor, limits)?;
    Ok(l)
}

fn node_cursor(n: u64, limits: &Limits) -> CmdResult<NodeCursor> {
    NodeCursor::decode(n, limits.partitions)
        .ok_or_else(|| CmdError::syntax("CURSOR is not one this node handed out"))
}

/// The most executions one bulk call acts on: each is a transition (and a
/// replicated command), so a call stays within milliseconds.
pub const BULK_COUNT_MAX: u64 = 1000;

/// `FF.BULKCANCEL` / `FF.BULKREPLAY STATE state [LANE lane] [RECLAIMABLE]
/// [CURSOR cursor] [COUNT n] [REASON text]`: a node-wide page of matches,
/// each cancelled or replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bulk<'a> {
    pub listing: Listing<'a>,
    pub cursor: NodeCursor,
    pub reason: Option<Box<[u8]>>,
}

/// `with_reason`: whether REASON is taken (a cancel's; a replay has none).
pub fn parse_bulk<'a>(
    args: &'a [&'a [u8]],
    limits: &Limits,
    with_reason: bool,
) -> CmdResult<Bulk<'a>> {
    let mut a = Args::new(args);
    let mut reason = None;
    // Never replicated itself: each execution it acts on is, as the
    // single command, with its own pinned time.
    let listing = listing_options(&mut a, BULK_COUNT_MAX, |k, a| {
        if k != b"REASON" || !with_reason {
            return Ok(false);
        }
        reason = Some(parse_reason(a, limits)?);
        Ok(true)
    })?;
    if listing.filter.state.is_none() {
        return Err(CmdError::syntax("a bulk operation needs STATE"));
    }
    let cursor = node_cursor(listing.cursor, limits)?;
    Ok(Bulk {
        listing,
        cursor,
        reason,
    })
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
        let (f, c) = (&l.listing.filter, &l.listing);
        assert_eq!(
            (l.partition, f.lane, f.reclaimable, c.cursor, c.count),
            (3, Some("q"), false, 9, 5)
        );
        let words = split("{fp:3} RECLAIMABLE");
        let l = parse_list(&words, &L).unwrap();
        assert!(l.listing.filter.reclaimable && l.listing.filter.is_filtered());
        for bad in ["{fp:3} COUNT 0", "{fp:3} STATE nope", "q", "{fp:3} AT 5"] {
            assert!(parse_list(&split(bad), &L).is_err(), "{bad}");
        }
    }

    #[test]
    fn scan_and_bulk_options() {
        let words = split("STATE failed LANE q COUNT 7");
        let s = parse_scan(&words, &L).unwrap();
        assert_eq!(
            (s.filter.state, s.filter.lane, s.count),
            (Some(PublicState::Failed), Some("q"), 7)
        );
        assert_eq!(parse_scan(&[], &L).unwrap().count, 100);
        // A cursor naming a partition beyond the node's count.
        let far = (300u64 << 48).to_string();
        for bad in ["COUNT 0", "COUNT 10001", "STATE nope", "AT 5", "x"] {
            assert!(parse_scan(&split(bad), &L).is_err(), "{bad}");
        }
        assert!(parse_scan(&split(&format!("CURSOR {far}")), &L).is_err());
        let words = split("STATE failed COUNT 1000 REASON r");
        let b = parse_bulk(&words, &L, true).unwrap();
        assert_eq!(
            (b.listing.count, b.reason.as_deref()),
            (1000, Some(&b"r"[..]))
        );
        assert_eq!(b.cursor, NodeCursor::default());
        assert!(parse_bulk(&split("STATE failed REASON r"), &L, false).is_err());
        for bad in [
            "LANE q",
            "STATE failed COUNT 1001",
            "STATE failed AT 5",
            "STATE failed REASON",
        ] {
            assert!(parse_bulk(&split(bad), &L, true).is_err(), "{bad}");
        }
    }
}
