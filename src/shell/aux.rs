//! Node state persisted as RDB aux data (so also in an AOF with its RDB
//! preamble): the paused lanes and the worker registry. Both are node-wide
//! (like the claim itself, they act on the partitions this node holds; in
//! a cluster pause each primary, register with each).

use std::collections::BTreeSet;
use std::os::raw::c_int;

use flowfabric_core::base::codec::{DecodeError, Reader, Writer};
use flowfabric_core::workers::Registry;
use redis_module::raw;

use crate::shell::guard::guard;
use crate::shell::node::{paused_lanes, set_paused_lanes, with_registry};

/// Version 2 added the worker registry after the paused lanes.
const AUX_VERSION: u8 = 2;

fn encode() -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(AUX_VERSION);
    let lanes = paused_lanes();
    w.u32(u32::try_from(lanes.len()).unwrap_or(u32::MAX));
    for l in &lanes {
        w.bytes(l.as_bytes());
    }
    with_registry(|r| r.encode(&mut w));
    w.buf
}

fn decode(buf: &[u8]) -> Result<(BTreeSet<Box<str>>, Registry), DecodeError> {
    let mut r = Reader::new(buf);
    let version = r.u8()?;
    if version == 0 || version > AUX_VERSION {
        return Err(DecodeError("unknown node-state encoding"));
    }
    let mut set = BTreeSet::new();
    for _ in 0..r.count(4)? {
        set.insert(r.string()?.into_boxed_str());
    }
    let workers = if version >= 2 {
        Registry::decode(&mut r)?
    } else {
        Registry::default()
    };
    r.finish()?;
    Ok((set, workers))
}

pub(crate) unsafe extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if when as isize != raw::REDISMODULE_AUX_BEFORE_RDB {
        return;
    }
    guard("saving node state", (), || raw::save_slice(rdb, &encode()));
}

pub(crate) unsafe extern "C" fn aux_load(
    rdb: *mut raw::RedisModuleIO,
    _encver: c_int,
    when: c_int,
) -> c_int {
    if when as isize != raw::REDISMODULE_AUX_BEFORE_RDB {
        return raw::REDISMODULE_OK as c_int;
    }
    let loaded = guard(
        "loading node state",
        Err("internal error".to_string()),
        || {
            let buf = raw::load_string_buffer(rdb)
                .map_err(|_| "short read loading node state".to_string())?;
            decode(buf.as_ref()).map_err(|e| format!("corrupt node state in RDB: {e}"))
        },
    );
    match loaded {
        Ok((set, workers)) => {
            set_paused_lanes(set);
            with_registry(|r| *r = workers);
            raw::REDISMODULE_OK as c_int
        }
        Err(msg) => {
            redis_module::logging::log_warning(format!("flowfabric: {msg}").replace('\0', ""));
            raw::REDISMODULE_ERR as c_int
        }
    }
}
