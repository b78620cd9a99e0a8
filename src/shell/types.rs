//! The two native data types and their persistence callbacks. One codec
//! (core::codec) serves RDB, AOF rewrite (as FF.LOADREC) and DEBUG DIGEST.

use std::os::raw::{c_int, c_void};

use redis_module::{native_types::RedisType, raw};

use crate::core::codec::Writer;
use crate::core::execution::Execution;
use crate::core::index::PartitionIndex;
use crate::shell::{config, globals, lanes};

pub const TAG_EXEC: u8 = b'E';
pub const TAG_INDEX: u8 = b'I';

/// Encoding version passed to the server; bump with a new `ENCODING` in the
/// core codec, keeping older versions loadable.
const ENCVER: i32 = 1;

const fn methods(
    rdb_load: raw::RedisModuleTypeLoadFunc,
    rdb_save: raw::RedisModuleTypeSaveFunc,
    aof_rewrite: raw::RedisModuleTypeRewriteFunc,
    mem_usage: raw::RedisModuleTypeMemUsageFunc,
    digest: raw::RedisModuleTypeDigestFunc,
    free: raw::RedisModuleTypeFreeFunc,
    aux: bool,
) -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load,
        rdb_save,
        aof_rewrite,
        mem_usage,
        digest,
        free,
        aux_load: if aux { Some(lanes::aux_load) } else { None },
        aux_save: if aux { Some(lanes::aux_save) } else { None },
        aux_save_triggers: if aux {
            raw::REDISMODULE_AUX_BEFORE_RDB as i32
        } else {
            0
        },
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    }
}

pub static EXEC_TYPE: RedisType = RedisType::new(
    "ffexecrec",
    ENCVER,
    methods(
        Some(exec_load),
        Some(exec_save),
        Some(exec_rewrite),
        Some(exec_mem),
        Some(exec_digest),
        Some(exec_free),
        false,
    ),
);

pub static INDEX_TYPE: RedisType = RedisType::new(
    "ffpartidx",
    ENCVER,
    methods(
        Some(index_load),
        Some(index_save),
        Some(index_rewrite),
        Some(index_mem),
        Some(index_digest),
        Some(index_free),
        true,
    ),
);

fn log_warning(msg: &str) {
    // Messages here are our own static text: no client bytes, no NUL.
    redis_module::logging::log_warning(msg);
}

fn load_buffer(rdb: *mut raw::RedisModuleIO, encver: c_int) -> Option<Vec<u8>> {
    if encver != ENCVER {
        log_warning("flowfabric: unknown record encoding version in RDB; refusing to load");
        return None;
    }
    match raw::load_string_buffer(rdb) {
        Ok(b) => Some(b.as_ref().to_vec()),
        Err(_) => {
            log_warning("flowfabric: short read loading a record from RDB");
            None
        }
    }
}

/// Encodes a record with its type tag, as FF.LOADREC expects it.
pub fn tagged(tag: u8, encode: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::with_capacity(256);
    w.u8(tag);
    encode(&mut w);
    w.buf
}

unsafe extern "C" fn exec_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    let Some(buf) = load_buffer(rdb, encver) else {
        return std::ptr::null_mut();
    };
    match Execution::decode(&buf) {
        Ok(e) => Box::into_raw(Box::new(e)).cast(),
        Err(err) => {
            log_warning(&format!(
                "flowfabric: corrupt execution record in RDB: {err}"
            ));
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn exec_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    let Some(e) = value.cast::<Execution>().as_ref() else {
        return;
    };
    let mut w = Writer::with_capacity(e.payload.len() + 256);
    e.encode(&mut w);
    raw::save_slice(rdb, &w.buf);
}

unsafe extern "C" fn exec_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let Some(e) = value.cast::<Execution>().as_ref() else {
        return;
    };
    emit_loadrec(aof, key, &tagged(TAG_EXEC, |w| e.encode(w)));
}

unsafe extern "C" fn exec_mem(value: *const c_void) -> usize {
    value
        .cast::<Execution>()
        .as_ref()
        .map_or(0, Execution::mem_usage)
}

unsafe extern "C" fn exec_digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let Some(e) = value.cast::<Execution>().as_ref() else {
        return;
    };
    let mut w = Writer::default();
    e.encode(&mut w);
    digest_add(md, &w.buf);
}

unsafe extern "C" fn exec_free(value: *mut c_void) {
    if !value.is_null() {
        drop(Box::from_raw(value.cast::<Execution>()));
    }
}

unsafe extern "C" fn index_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    let Some(buf) = load_buffer(rdb, encver) else {
        return std::ptr::null_mut();
    };
    match PartitionIndex::decode(&buf) {
        Ok(idx) => {
            if idx.partitions != config::partitions() {
                log_warning(&format!(
                    "flowfabric: RDB holds data laid out for {} partitions but flowfabric.partitions is {}; refusing to load",
                    idx.partitions,
                    config::partitions()
                ));
                return std::ptr::null_mut();
            }
            let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(rdb));
            register_hints(db, &idx);
            crate::shell::timer::record_loaded(db, &idx);
            Box::into_raw(Box::new(idx)).cast()
        }
        Err(err) => {
            log_warning(&format!(
                "flowfabric: corrupt partition index in RDB: {err}"
            ));
            std::ptr::null_mut()
        }
    }
}

/// Makes a loaded index's queue heads claimable.
pub fn register_hints(db: c_int, idx: &PartitionIndex) {
    globals::with_hints(|h| {
        for (lane, caps, head) in idx.heads() {
            h.set(db, lane, caps, idx.partition, Some(head));
        }
    });
}

unsafe extern "C" fn index_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    let Some(idx) = value.cast::<PartitionIndex>().as_ref() else {
        return;
    };
    let mut w = Writer::default();
    idx.encode(&mut w);
    raw::save_slice(rdb, &w.buf);
}

unsafe extern "C" fn index_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let Some(idx) = value.cast::<PartitionIndex>().as_ref() else {
        return;
    };
    emit_loadrec(aof, key, &tagged(TAG_INDEX, |w| idx.encode(w)));
}

unsafe extern "C" fn index_mem(value: *const c_void) -> usize {
    value
        .cast::<PartitionIndex>()
        .as_ref()
        .map_or(0, PartitionIndex::mem_usage)
}

unsafe extern "C" fn index_digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let Some(idx) = value.cast::<PartitionIndex>().as_ref() else {
        return;
    };
    let mut w = Writer::default();
    idx.encode(&mut w);
    digest_add(md, &w.buf);
}

unsafe extern "C" fn index_free(value: *mut c_void) {
    if !value.is_null() {
        drop(Box::from_raw(value.cast::<PartitionIndex>()));
    }
}

unsafe fn emit_loadrec(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    blob: &[u8],
) {
    if let Some(emit) = raw::RedisModule_EmitAOF {
        emit(
            aof,
            c"FF.LOADREC".as_ptr(),
            c"sb".as_ptr(),
            key,
            blob.as_ptr(),
            blob.len(),
        );
    }
}

unsafe fn digest_add(md: *mut raw::RedisModuleDigest, buf: &[u8]) {
    if let Some(add) = raw::RedisModule_DigestAddStringBuffer {
        add(md, buf.as_ptr().cast_mut().cast(), buf.len());
    }
    if let Some(end) = raw::RedisModule_DigestEndSequence {
        end(md);
    }
}
