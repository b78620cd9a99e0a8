//! Lane controls: a paused lane is skipped by claims on this node. The set
//! is node-wide (like the claim itself, it acts on the partitions this node
//! holds; in a cluster pause each primary), replicated as the command, and
//! persisted as RDB aux data (so also in an AOF with its RDB preamble),
//! together with the worker registry.

use std::collections::BTreeSet;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::raw;

use crate::core::codec::{Reader, Writer};
use crate::shell::globals::SpinLock;

static PAUSED: SpinLock<BTreeSet<Box<str>>> = SpinLock::new(BTreeSet::new());
/// Fast path: claims skip the lock while no lane is paused.
static ANY_PAUSED: AtomicBool = AtomicBool::new(false);

fn with<R>(f: impl FnOnce(&mut BTreeSet<Box<str>>) -> R) -> R {
    PAUSED.with(|s| {
        let r = f(s);
        ANY_PAUSED.store(!s.is_empty(), Ordering::Relaxed);
        r
    })
}

/// Pauses (true) or resumes a lane; returns whether anything changed.
pub fn set_paused(lane: &str, paused: bool) -> bool {
    with(|s| {
        if paused {
            s.insert(lane.into())
        } else {
            s.remove(lane)
        }
    })
}

pub fn is_paused(lane: &str) -> bool {
    ANY_PAUSED.load(Ordering::Relaxed) && with(|s| s.contains(lane))
}

pub fn paused() -> Vec<Box<str>> {
    with(|s| s.iter().cloned().collect())
}

/// Version 2 added the worker registry after the paused lanes.
const AUX_VERSION: u8 = 2;

pub(crate) unsafe extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if when as isize != raw::REDISMODULE_AUX_BEFORE_RDB {
        return;
    }
    let mut w = Writer::default();
    w.u8(AUX_VERSION);
    let lanes = paused();
    w.u32(lanes.len() as u32);
    for l in &lanes {
        w.bytes(l.as_bytes());
    }
    crate::shell::workers::with(|r| r.encode(&mut w));
    raw::save_slice(rdb, &w.buf);
}

pub(crate) unsafe extern "C" fn aux_load(
    rdb: *mut raw::RedisModuleIO,
    _encver: c_int,
    when: c_int,
) -> c_int {
    if when as isize != raw::REDISMODULE_AUX_BEFORE_RDB {
        return raw::REDISMODULE_OK as c_int;
    }
    let Ok(buf) = raw::load_string_buffer(rdb) else {
        redis_module::logging::log_warning("flowfabric: short read loading paused lanes");
        return raw::REDISMODULE_ERR as c_int;
    };
    let decoded = (|| {
        let mut r = Reader::new(buf.as_ref());
        let version = r.u8()?;
        if version == 0 || version > AUX_VERSION {
            return Err(crate::core::codec::DecodeError(
                "unknown node-state encoding",
            ));
        }
        let mut set = BTreeSet::new();
        for _ in 0..r.count(4)? {
            set.insert(r.string()?.into_boxed_str());
        }
        let workers = if version >= 2 {
            crate::core::workers::Registry::decode(&mut r)?
        } else {
            crate::core::workers::Registry::default()
        };
        r.finish()?;
        Ok((set, workers))
    })();
    match decoded {
        Ok((set, workers)) => {
            with(|s| *s = set);
            crate::shell::workers::with(|r| *r = workers);
            raw::REDISMODULE_OK as c_int
        }
        Err(e) => {
            redis_module::logging::log_warning(format!(
                "flowfabric: corrupt paused lanes in RDB: {e}"
            ));
            raw::REDISMODULE_ERR as c_int
        }
    }
}
