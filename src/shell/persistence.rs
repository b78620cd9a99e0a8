//! The partition data type and its persistence callbacks. One encoding
//! (`partition::codec`: a header, then each record, every item tagged with
//! its kind) serves the RDB, the AOF rewrite (one FF.LOADREC per item) and
//! DEBUG DIGEST. Every callback runs under the panic guard.

use std::os::raw::{c_int, c_void};

use flowfabric_core::partition::codec::Layout;
use flowfabric_core::partition::Partition;
use redis_module::{native_types::RedisType, raw};

use crate::shell::guard::guard;
use crate::shell::{aux, config, effects, schedule};

/// Encoding version passed to the server (and shown by FF.VERSION).
/// 3 tags each item with its kind; 2 (0.2 and 0.3) wrote them untagged and
/// still loads. 1 was the layout with one key per execution (pre-release
/// builds); it is refused with a message.
pub const ENCVER: i32 = 3;

const fn methods() -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(partition_load),
        rdb_save: Some(partition_save),
        aof_rewrite: Some(partition_rewrite),
        mem_usage: Some(partition_mem),
        digest: Some(partition_digest),
        free: Some(partition_free),
        aux_load: Some(aux::aux_load),
        aux_save: Some(aux::aux_save),
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
pub static PARTITION_TYPE: RedisType = RedisType::new("ffpartidx", ENCVER, methods());

fn log_warning(msg: &str) {
    // Messages here are our own text: no client bytes.
    redis_module::logging::log_warning(msg.replace('\0', ""));
}

fn load_buffer(rdb: *mut raw::RedisModuleIO) -> Result<Vec<u8>, String> {
    raw::load_string_buffer(rdb)
        .map(|b| b.as_ref().to_vec())
        .map_err(|_| "short read loading a partition from RDB".to_string())
}

unsafe extern "C" fn partition_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    let loaded = guard("loading a partition", Err("internal error".into()), || {
        let Some(layout) = Layout::of_encoding(encver) else {
            return Err(format!(
                "this RDB holds partition data of encoding {encver}, which this build does not read (builds before 0.2 kept one key per execution); refusing to load"
            ));
        };
        load_partition(rdb, layout)
    });
    match loaded {
        Ok(p) => {
            // SAFETY: `rdb` is the server's IO handle for this load.
            let db = unsafe { raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(rdb)) };
            guard("entering a loaded partition", (), || {
                effects::register_hints(db, &p.index);
                effects::leases_loaded(db, p.iter());
                schedule::record_loaded(db, &p.index);
            });
            Box::into_raw(Box::new(p)).cast()
        }
        Err(msg) => {
            log_warning(&format!("flowfabric: {msg}"));
            std::ptr::null_mut()
        }
    }
}

fn load_partition(rdb: *mut raw::RedisModuleIO, layout: Layout) -> Result<Partition, String> {
    let head = load_buffer(rdb)?;
    let (mut p, count) = Partition::load_header(layout, &head)
        .map_err(|e| format!("corrupt partition in RDB: {e}"))?;
    if p.index.partitions != config::partitions() {
        return Err(format!(
            "RDB holds data laid out for {} partitions but flowfabric.partitions is {}; refusing to load",
            p.index.partitions,
            config::partitions()
        ));
    }
    for _ in 0..count {
        let item = load_buffer(rdb)?;
        p.load_next(layout, &item)
            .map_err(|e| format!("corrupt execution record in RDB: {e}"))?;
    }
    Ok(p)
}

/// Each item as its own buffer.
unsafe extern "C" fn partition_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: the server passes a value of this type: a boxed `Partition`.
    let Some(p) = (unsafe { value.cast::<Partition>().as_ref() }) else {
        return;
    };
    guard("saving a partition", (), || {
        p.for_each_item(|item| raw::save_slice(rdb, item));
    });
}

/// One FF.LOADREC per item.
unsafe extern "C" fn partition_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: as in `partition_save`.
    let Some(p) = (unsafe { value.cast::<Partition>().as_ref() }) else {
        return;
    };
    // SAFETY: a function pointer the server filled in at load.
    let Some(emit) = (unsafe { raw::RedisModule_EmitAOF }) else {
        return;
    };
    guard("rewriting a partition", (), || {
        p.for_each_item(|item| {
            // SAFETY: "s" takes the key string the server passed, "b" a
            // pointer and length alive for the call.
            unsafe {
                emit(
                    aof,
                    c"FF.LOADREC".as_ptr(),
                    c"sb".as_ptr(),
                    key,
                    item.as_ptr(),
                    item.len(),
                )
            };
        });
    });
}

unsafe extern "C" fn partition_mem(value: *const c_void) -> usize {
    // SAFETY: as in `partition_save`.
    let p = unsafe { value.cast::<Partition>().as_ref() };
    guard("sizing a partition", 0, || {
        p.map_or(0, Partition::mem_usage)
    })
}

/// The index is derived from the records, so the records (and the queue
/// sequence) are what must agree between a primary and its replicas.
unsafe extern "C" fn partition_digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    // SAFETY: as in `partition_save`.
    let Some(p) = (unsafe { value.cast::<Partition>().as_ref() }) else {
        return;
    };
    // SAFETY: function pointers the server filled in at load.
    let (Some(add), Some(end)) = (unsafe { raw::RedisModule_DigestAddStringBuffer }, unsafe {
        raw::RedisModule_DigestEndSequence
    }) else {
        return;
    };
    guard("digesting a partition", (), || {
        p.for_each_item(|item| {
            // SAFETY: `md` is the digest the server passed; the buffer is
            // alive for the call and only read.
            unsafe { add(md, item.as_ptr().cast_mut().cast(), item.len()) };
        });
        // SAFETY: as above.
        unsafe { end(md) };
    });
}

/// Large partitions are freed off the main thread (lazyfree).
unsafe extern "C" fn partition_free_effort(
    _key: *mut raw::RedisModuleString,
    value: *const c_void,
) -> usize {
    // SAFETY: as in `partition_save`.
    let p = unsafe { value.cast::<Partition>().as_ref() };
    guard("sizing a partition's free", 1, || {
        p.map_or(1, |p| p.len().max(1))
    })
}

unsafe extern "C" fn partition_free(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: the server frees each value once; it is the `Partition`
        // this module boxed.
        let p = unsafe { Box::from_raw(value.cast::<Partition>()) };
        guard("freeing a partition", (), || drop(p));
    }
}
