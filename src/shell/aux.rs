//! Node state persisted as RDB aux data (so also in an AOF with its RDB
//! preamble): the paused lanes and the worker registry (encoded by the
//! core's `workers::NodeState`). Both are node-wide: like the claim
//! itself, they act on the partitions this node holds; in a cluster pause
//! each primary, register with each.

use std::os::raw::c_int;

use flowfabric_core::base::codec::Writer;
use flowfabric_core::workers::NodeState;
use redis_module::raw;

use crate::shell::guard::guard;
use crate::shell::node::{paused_lanes, set_paused_lanes, with_keyring, with_registry};

fn encode() -> Vec<u8> {
    let state = NodeState {
        paused: paused_lanes().into_iter().collect(),
        registry: with_registry(|r| r.clone()),
        keyring: with_keyring(|k| k.clone()),
    };
    let mut w = Writer::default();
    state.encode(&mut w);
    w.buf
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
            NodeState::decode(buf.as_ref()).map_err(|e| format!("corrupt node state in RDB: {e}"))
        },
    );
    match loaded {
        Ok(state) => {
            set_paused_lanes(state.paused);
            with_registry(|r| *r = state.registry);
            with_keyring(|k| *k = state.keyring);
            raw::REDISMODULE_OK as c_int
        }
        Err(msg) => {
            redis_module::logging::log_warning(format!("flowfabric: {msg}").replace('\0', ""));
            raw::REDISMODULE_ERR as c_int
        }
    }
}
