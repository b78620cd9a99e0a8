//! Opening the module's keys with typed errors: a key of another type is
//! WRONGTYPE, never a crash. A partition borrowed from an open key lives no
//! longer than the key (the server may free the value once the key closes).

use std::os::raw::c_int;

use flowfabric_core::base::errors::{CmdError, CmdResult, Code};
use flowfabric_core::base::ids::{index_key, ExecId};
use flowfabric_core::execution::Execution;
use flowfabric_core::partition::{Partition, PartitionIndex};
use redis_module::{raw, Context, RedisString};

use crate::shell::config;
use crate::shell::node::{self, partition_type};

pub fn wrongtype() -> CmdError {
    CmdError::new(
        Code::WrongType,
        "Operation against a key holding the wrong kind of value",
    )
}

pub fn not_found() -> CmdError {
    CmdError::new(Code::ExecutionNotFound, "no such execution")
}

/// An open key, closed on drop. The module's own handle rather than the
/// crate's, so reading a partition asks the server two questions (its
/// module type, its value) instead of four: this runs on every command.
pub struct Key(*mut raw::RedisModuleKey);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a key this module opened and has not closed.
        if let (false, Some(close)) = (self.0.is_null(), unsafe { raw::RedisModule_CloseKey }) {
            unsafe { close(self.0) };
        }
    }
}

impl Key {
    /// The server's handle (null when the server refused to open the key).
    pub fn raw(&self) -> *mut raw::RedisModuleKey {
        self.0
    }

    /// The server's type code of what the key holds.
    pub fn key_type(&self) -> c_int {
        // SAFETY: an open key (or null, checked first).
        if self.0.is_null() {
            return raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
        }
        unsafe { raw::RedisModule_KeyType.map_or(0, |f| f(self.0)) }
    }

    pub fn is_empty(&self) -> bool {
        self.key_type() == raw::REDISMODULE_KEYTYPE_EMPTY as c_int
    }

    /// Deletes whatever the key holds.
    pub fn delete(&mut self) {
        // SAFETY: an open key, opened for writing.
        if let (false, Some(del)) = (self.0.is_null(), unsafe { raw::RedisModule_DeleteKey }) {
            unsafe { del(self.0) };
        }
    }

    /// Stores a partition in the (empty) key.
    pub fn set_partition(&mut self, p: Partition) -> CmdResult<()> {
        // SAFETY: a function pointer the server filled in at load.
        let (Some(set), false) = (
            unsafe { raw::RedisModule_ModuleTypeSetValue },
            self.0.is_null(),
        ) else {
            return Err(wrongtype());
        };
        let value = Box::into_raw(Box::new(p));
        // SAFETY: an open key; on success the server owns `value` and frees
        // it through the type's free callback.
        if unsafe { set(self.0, partition_type(), value.cast()) } == raw::REDISMODULE_OK as c_int {
            return Ok(());
        }
        // SAFETY: not taken by the server: still ours, from `Box::into_raw`.
        drop(unsafe { Box::from_raw(value) });
        Err(wrongtype())
    }

    /// The partition stored under the key, if any, borrowed for as long as
    /// the key stays open.
    pub fn partition(&mut self) -> CmdResult<Option<&mut Partition>> {
        let ours = partition_type();
        // SAFETY: function pointers the server filled in at load.
        let (Some(get_type), Some(get_value)) =
            (unsafe { raw::RedisModule_ModuleTypeGetType }, unsafe {
                raw::RedisModule_ModuleTypeGetValue
            })
        else {
            return Err(wrongtype());
        };
        if self.0.is_null() {
            return Ok(None);
        }
        // Not ours when the key is empty or of another type: tell them apart.
        // SAFETY: an open key.
        if ours.is_null() || unsafe { get_type(self.0) } != ours {
            return if self.is_empty() {
                Ok(None)
            } else {
                Err(wrongtype())
            };
        }
        // SAFETY: the key holds a value of our type, which is a `Partition`
        // this module boxed; it stays valid while the key is open and the
        // borrow of `self` ends first.
        Ok(unsafe { get_value(self.0).cast::<Partition>().as_mut() })
    }
}

/// Each partition this node holds in the selected db (but not those still
/// arriving by slot migration), opened for reading: the node-wide reads
/// (FF.VERSION, FF.LANES, INFO, a retention change) cost O(partitions),
/// never O(executions).
pub fn each_partition(ctx: &Context, mut f: impl FnMut(&Partition)) {
    for p in (0..config::partitions()).filter(|&p| !node::is_importing(p)) {
        let mut key = open_partition_quiet(ctx, p);
        if let Ok(Some(part)) = key.partition() {
            f(part);
        }
    }
}

pub fn open(ctx: &Context, name: &[u8]) -> Key {
    let s: RedisString = ctx.create_string(name);
    open_arg(ctx, s.inner)
}

/// Opens the key named by one of the call's own argument strings, without
/// copying the name.
pub fn open_arg(ctx: &Context, arg: *mut raw::RedisModuleString) -> Key {
    open_mode(ctx, arg, READ_WRITE)
}

/// Opens the key named by `arg` for reading only.
pub fn open_arg_read(ctx: &Context, arg: *mut raw::RedisModuleString) -> Key {
    open_mode(ctx, arg, raw::REDISMODULE_READ as c_int)
}

const READ_WRITE: c_int = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int;

/// Opens a partition's key for a read-only command. Not for writing: a
/// key opened for writing is signalled modified when it closes (WATCH
/// aborts, client tracking invalidates), which a read must not do.
pub fn open_partition_read(ctx: &Context, partition: u16) -> Key {
    open_partition_mode(ctx, partition, raw::REDISMODULE_READ as c_int)
}

/// Opens a partition's key for a node-wide read (counts, INFO, FF.SCAN's
/// walk): read only, and without touching its LRU/LFU or the keyspace
/// hit and miss counters, which a walk over every partition would skew.
pub fn open_partition_quiet(ctx: &Context, partition: u16) -> Key {
    open_partition_mode(ctx, partition, QUIET_READ)
}

/// Read only, touching no LRU/LFU and no keyspace hit/miss counters.
const QUIET_READ: c_int = (raw::REDISMODULE_READ
    | raw::REDISMODULE_OPEN_KEY_NOTOUCH
    | raw::REDISMODULE_OPEN_KEY_NOSTATS) as c_int;

/// Opens the key named by `arg` for a node-wide read, as
/// `open_partition_quiet` opens a partition (INFO's feed lengths).
pub fn open_arg_quiet(ctx: &Context, arg: *mut raw::RedisModuleString) -> Key {
    open_mode(ctx, arg, QUIET_READ)
}

fn open_partition_mode(ctx: &Context, partition: u16, mode: c_int) -> Key {
    match node::index_key_string(partition) {
        Some(s) => open_mode(ctx, s, mode),
        None => {
            let owned = ctx.create_string(index_key(partition).as_bytes());
            open_mode(ctx, owned.inner, mode)
        }
    }
}

fn open_mode(ctx: &Context, name: *mut raw::RedisModuleString, mode: c_int) -> Key {
    // SAFETY: a function pointer the server filled in at load; `name` is
    // alive for the call (the server keeps its own reference).
    Key(unsafe {
        raw::RedisModule_OpenKey.map_or(std::ptr::null_mut(), |f| f(ctx.ctx, name, mode))
    }
    .cast())
}

/// Opens a partition's key for a command that may write it.
pub fn open_partition(ctx: &Context, partition: u16) -> Key {
    open_partition_mode(ctx, partition, READ_WRITE)
}

/// The partition under `key`, created under the configured partition count
/// if the key is empty; one laid out for another count is refused.
pub fn partition_or_create(
    key: &mut Key,
    partition: u16,
    partitions: u16,
) -> CmdResult<&mut Partition> {
    if key.is_empty() {
        key.set_partition(Partition::new(partition, partitions))?;
    }
    let p = key.partition()?.ok_or_else(wrongtype)?;
    if p.index.partitions != partitions {
        return Err(CmdError::new(
            Code::PartitionMismatch,
            format!(
                "partition data was laid out for {} partitions; flowfabric.partitions is {}",
                p.index.partitions, partitions
            ),
        ));
    }
    Ok(p)
}

/// An execution that must exist in the partition under `key`, with the
/// partition's index.
pub fn exec_in<'k>(
    key: &'k mut Key,
    id: &ExecId,
) -> CmdResult<(&'k mut PartitionIndex, &'k mut Execution)> {
    key.partition()?
        .and_then(|p| p.record_mut(id.uuid))
        .ok_or_else(not_found)
}

/// A plain string value, if the key holds one.
pub fn read_string(ctx: &Context, name: &[u8]) -> Option<Vec<u8>> {
    let s: RedisString = ctx.create_string(name);
    let key = ctx.open_key(&s);
    key.read().ok().flatten().map(<[u8]>::to_vec)
}

/// Writes a string that expires at an absolute time, so a replica or an
/// AOF replay given the same time sets the same expiry.
pub fn write_expiring_string(ctx: &Context, name: &[u8], value: &[u8], expires_at_ms: u64) {
    let k: RedisString = ctx.create_string(name);
    let v: RedisString = ctx.create_string(value);
    let key = raw::open_key(ctx.ctx, k.inner, raw::KeyMode::READ | raw::KeyMode::WRITE);
    if key.is_null() {
        return;
    }
    raw::string_set(key, v.inner);
    // SAFETY: `key` is open for writing; closed just below.
    if let Some(f) = unsafe { raw::RedisModule_SetAbsExpire } {
        unsafe { f(key, i64::try_from(expires_at_ms).unwrap_or(i64::MAX)) };
    }
    raw::close_key(key);
}
