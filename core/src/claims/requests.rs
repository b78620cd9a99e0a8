//! The claims domain's requests: FF.CLAIM.

use smallvec::SmallVec;

use crate::base::args::{check_worker, lane_str, options, Args, Origin};
use crate::base::caps::{CapSet, CapsError};
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::limits::{Limits, LANES_MAX, TIME_MAX_MS};
use crate::execution::requests::parse_lease;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    pub worker_id: &'a [u8],
    pub worker_instance_id: &'a [u8],
    pub lanes: SmallVec<[&'a str; 4]>,
    pub caps: CapSet,
    pub lease_ms: u64,
    /// `None`: do not block; `Some(0)`: block until work arrives.
    pub block_ms: Option<u64>,
}

/// `FF.CLAIM worker instance numlanes lane [lane ...] [CAPS csv] [LEASE ms] [BLOCK ms]`.
#[cfg(test)]
pub fn parse_claim<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<Claim<'a>> {
    parse_claim_with(args, limits, CapSet::parse_worker)
}

/// `FF.CLAIM ...`, with `worker_caps` turning the CAPS bytes into a set
/// (the shell remembers the sets its workers send).
pub fn parse_claim_with<'a>(
    args: &'a [&'a [u8]],
    limits: &Limits,
    worker_caps: impl FnOnce(&[u8]) -> Result<CapSet, CapsError>,
) -> CmdResult<Claim<'a>> {
    let mut a = Args::new(args);
    let worker_id = check_worker(a.next("worker id")?, "worker id")?;
    let worker_instance_id = check_worker(a.next("worker instance id")?, "worker instance id")?;
    let n = a.next_u64("numlanes", LANES_MAX)?;
    if n == 0 {
        return Err(CmdError::syntax("numlanes must be at least 1"));
    }
    let mut lanes = SmallVec::new();
    for _ in 0..n {
        let l = lane_str(a.next("lane")?)?;
        if !lanes.contains(&l) {
            lanes.push(l);
        }
    }
    let (mut caps, mut lease_ms, mut block_ms) = (None, limits.default_lease_ms, None);
    // A claim is decided on the primary and replicated as FF.ACQUIRE: it
    // never carries pinned values.
    let mut never = None;
    options(&mut a, Origin::Client, &mut never, |k, a| {
        match k {
            b"CAPS" => caps = Some(a.next("CAPS")?),
            b"LEASE" => lease_ms = parse_lease(a.next("LEASE")?)?,
            b"BLOCK" => block_ms = Some(a.next_u64("BLOCK", TIME_MAX_MS)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let caps = match caps {
        Some(csv) => worker_caps(csv).map_err(|e| {
            CmdError::new(Code::InvalidCapabilities, format!("worker:{}", e.detail()))
        })?,
        None => CapSet::empty(),
    };
    Ok(Claim {
        worker_id,
        worker_instance_id,
        lanes,
        caps,
        lease_ms,
        block_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::{split, L};

    #[test]
    fn claim_options() {
        let words = split("w i 2 a b CAPS gpu LEASE 100 BLOCK 0");
        let c = parse_claim(&words, &L).unwrap();
        assert_eq!(c.lanes.len(), 2);
        assert_eq!(c.block_ms, Some(0));
        for bad in [
            "w i 0",
            "w i 2 a",
            "w i 1 a LEASE 0",
            "w i 1 a BLOCK -1",
            "w i 65 a",
            "w i 1 a AT 5",
        ] {
            assert!(parse_claim(&split(bad), &L).is_err(), "{bad}");
        }
    }
}
