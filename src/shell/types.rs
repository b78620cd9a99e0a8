//! The native data type and its persistence callbacks. One codec
//! (core::codec) serves RDB, AOF rewrite (as FF.LOADREC) and DEBUG DIGEST.

use std::os::raw::{c_int, c_void};

use redis_module::{native_types::RedisType, raw};

use crate::core::codec::Writer;
use crate::core::index::PartitionIndex;
use crate::core::partition::Partition;
use crate::shell::{config, globals, lanes};

/// FF.LOADREC tags: a partition's header (which empties it), then each of
/// its execution records.
pub const TAG_PARTITION: u8 = b'P';
pub const TAG_EXEC: u8 = b'E';

/// Encoding version passed to the server (and shown by FF.VERSION).
/// Version 1 was the layout with one key per execution (pre-release
/// builds); it is refused with a message.
pub const ENCVER: i32 = 2;

const fn methods(
    rdb_load: raw::RedisModuleTypeLoadFunc,
    rdb_save: raw::RedisModuleTypeSaveFunc,
    aof_rewrite: raw::RedisModuleTypeRewriteFunc,
    mem_usage: raw::RedisModuleTypeMemUsageFunc,
    digest: raw::RedisModuleTypeDigestFunc,
    free: raw::RedisModuleTypeFreeFunc,
) -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load,
        rdb_save,
        aof_rewrite,
        mem_usage,
        digest,
        free,
        aux_load: Some(lanes::aux_load),
        aux_save: Some(lanes::aux_save),
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as i32,
        free_effort: Some(partition_free_effort),
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

/// One value per partition: its executions and their index.
pub static PARTITION_TYPE: RedisType = RedisType::new(
    "ffpartidx",
    ENCVER,
    methods(
        Some(partition_load),
        Some(partition_save),
        Some(partition_rewrite),
        Some(partition_mem),
        Some(partition_digest),
        Some(partition_free),
    ),
);

fn log_warning(msg: &str) {
    // Messages here are our own static text: no client bytes, no NUL.
    redis_module::logging::log_warning(msg);
}

fn load_buffer(rdb: *mut raw::RedisModuleIO) -> Option<Vec<u8>> {
    match raw::load_string_buffer(rdb) {
        Ok(b) => Some(b.as_ref().to_vec()),
        Err(_) => {
            log_warning("flowfabric: short read loading a partition from RDB");
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

unsafe extern "C" fn partition_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCVER {
        log_warning(
            "flowfabric: this RDB holds partition data of another encoding (builds before 0.2 kept one key per execution); refusing to load",
        );
        return std::ptr::null_mut();
    }
    match load_partition(rdb) {
        Ok(p) => {
            let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(rdb));
            register_hints(db, &p.index);
            crate::shell::workers::leases_loaded(db, p.iter());
            crate::shell::timer::record_loaded(db, &p.index);
            Box::into_raw(Box::new(p)).cast()
        }
        Err(msg) => {
            log_warning(&format!("flowfabric: {msg}"));
            std::ptr::null_mut()
        }
    }
}

fn load_partition(rdb: *mut raw::RedisModuleIO) -> Result<Partition, String> {
    let short = || "short read loading a partition from RDB".to_string();
    let head = load_buffer(rdb).ok_or_else(short)?;
    let (mut p, count) =
        Partition::decode_header(&head).map_err(|e| format!("corrupt partition in RDB: {e}"))?;
    if p.index.partitions != config::partitions() {
        return Err(format!(
            "RDB holds data laid out for {} partitions but flowfabric.partitions is {}; refusing to load",
            p.index.partitions,
            config::partitions()
        ));
    }
    for _ in 0..count {
        let rec = load_buffer(rdb).ok_or_else(short)?;
        p.load_record(&rec)
            .map_err(|e| format!("corrupt execution record in RDB: {e}"))?;
    }
    Ok(p)
}

/// Makes a loaded index's queue heads claimable; work a blocked claimer
/// can take (a partition arriving by slot migration) is noted for the
/// timer to hand out, as loading runs outside any command.
pub fn register_hints(db: c_int, idx: &PartitionIndex) {
    if crate::shell::migration::is_importing(idx.partition) {
        return;
    }
    let mut wanted = false;
    globals::with_board(|h| {
        for (lane, caps, head) in idx.heads() {
            if h.set_head(db, lane, caps, idx.partition, Some(head)) {
                crate::shell::blocking::note_wanted(db, lane, caps);
                wanted = true;
            }
        }
    });
    if wanted {
        crate::shell::timer::request_soon();
    }
}

/// Header, then each record on its own: no buffer the size of the
/// partition.
unsafe extern "C" fn partition_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    let Some(p) = value.cast::<Partition>().as_ref() else {
        return;
    };
    let mut w = Writer::default();
    p.encode_header(&mut w);
    raw::save_slice(rdb, &w.buf);
    for e in p.iter() {
        w.buf.clear();
        e.encode(&mut w);
        raw::save_slice(rdb, &w.buf);
    }
}

/// The header as one FF.LOADREC, then one per record.
unsafe extern "C" fn partition_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let Some(p) = value.cast::<Partition>().as_ref() else {
        return;
    };
    emit_loadrec(aof, key, &tagged(TAG_PARTITION, |w| p.encode_header(w)));
    for e in p.iter() {
        emit_loadrec(aof, key, &tagged(TAG_EXEC, |w| e.encode(w)));
    }
}

unsafe extern "C" fn partition_mem(value: *const c_void) -> usize {
    value
        .cast::<Partition>()
        .as_ref()
        .map_or(0, Partition::mem_usage)
}

/// The index is derived from the records, so the records (and the queue
/// sequence) are what must agree between a primary and its replicas.
unsafe extern "C" fn partition_digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let Some(p) = value.cast::<Partition>().as_ref() else {
        return;
    };
    let mut w = Writer::default();
    p.encode(&mut w);
    digest_add(md, &w.buf);
}

/// Large partitions are freed off the main thread (lazyfree).
unsafe extern "C" fn partition_free_effort(
    _key: *mut raw::RedisModuleString,
    value: *const c_void,
) -> usize {
    value
        .cast::<Partition>()
        .as_ref()
        .map_or(1, |p| p.len().max(1))
}

unsafe extern "C" fn partition_free(value: *mut c_void) {
    if !value.is_null() {
        drop(Box::from_raw(value.cast::<Partition>()));
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
