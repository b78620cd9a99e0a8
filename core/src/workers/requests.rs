//! The workers domain's requests: registration and the pinned time its
//! commands carry at the end.

use crate::base::args::{check_worker, lane_str, options, parse_u64, Args, Origin};
use crate::base::caps::CapSet;
use crate::base::errors::{CmdError, CmdResult, Code};
use crate::base::limits::{LANES_MAX, TIME_MAX_MS, WORKER_TTL_MAX_MS};

/// Splits off the trailing pinned `AT ms` the worker commands carry (only
/// from the primary or the AOF).
pub fn split_pinned_at<'a>(
    args: &'a [&'a [u8]],
    origin: Origin,
) -> CmdResult<(&'a [&'a [u8]], Option<u64>)> {
    match args {
        [rest @ .., at, t] if at.eq_ignore_ascii_case(b"AT") => {
            if !origin.is_replicated() {
                return Err(CmdError::syntax("AT is reserved for replication and AOF"));
            }
            Ok((rest, Some(parse_u64(t, "AT", TIME_MAX_MS)?)))
        }
        _ => Ok((args, None)),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register<'a> {
    pub instance: &'a [u8],
    pub worker_id: &'a [u8],
    pub ttl_ms: u64,
    pub caps: CapSet,
    pub lanes: Vec<Box<str>>,
}

/// `FF.REGISTER instance worker_id ttl_ms [CAPS csv] [LANES n lane ...]`
/// (after `split_pinned_at`).
pub fn parse_register<'a>(args: &'a [&'a [u8]]) -> CmdResult<Register<'a>> {
    let mut a = Args::new(args);
    let instance = check_worker(a.next("worker instance id")?, "worker instance id")?;
    let worker_id = check_worker(a.next("worker id")?, "worker id")?;
    let ttl_ms = a.next_u64("ttl", WORKER_TTL_MAX_MS)?;
    if ttl_ms == 0 {
        return Err(CmdError::syntax("ttl must be at least 1 ms"));
    }
    let mut r = Register {
        instance,
        worker_id,
        ttl_ms,
        caps: CapSet::empty(),
        lanes: Vec::new(),
    };
    // The pinned time was split off before (`split_pinned_at`).
    let mut never = None;
    options(&mut a, Origin::Client, &mut never, |k, a| {
        match k {
            b"CAPS" => {
                r.caps = CapSet::parse_worker(a.next("CAPS")?).map_err(|e| {
                    CmdError::new(Code::InvalidCapabilities, format!("worker:{}", e.detail()))
                })?
            }
            b"LANES" => {
                let n = a.next_u64("numlanes", LANES_MAX)?;
                for _ in 0..n {
                    r.lanes.push(lane_str(a.next("lane")?)?.into());
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::split;

    #[test]
    fn worker_registration() {
        let words = split("i w 500 CAPS gpu,cuda LANES 2 a b AT 7");
        let (rest, at) = split_pinned_at(&words, Origin::Replicated).unwrap();
        assert_eq!(at, Some(7));
        let r = parse_register(rest).unwrap();
        assert_eq!(
            (r.instance, r.worker_id, r.ttl_ms),
            (&b"i"[..], &b"w"[..], 500)
        );
        assert_eq!(r.lanes, vec![Box::from("a"), Box::from("b")]);
        assert!(split_pinned_at(&words, Origin::Client).is_err());
        for bad in ["i w 0", "i w 10 LANES 2 a", "i w 10 BOGUS", " w 10"] {
            assert!(parse_register(&split(bad)).is_err(), "{bad}");
        }
    }
}
