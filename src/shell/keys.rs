//! Opening the module's keys with typed errors: a key of another type is
//! WRONGTYPE, never a crash.

use std::os::raw::c_int;

use redis_module::{raw, Context, RedisString};

use crate::core::args::{CmdError, CmdResult};
use crate::core::execution::Execution;
use crate::core::ids::{index_key, ExecId};
use crate::core::index::PartitionIndex;
use crate::core::partition::Partition;
use crate::shell::globals;
use crate::shell::types::PARTITION_TYPE;

pub fn wrongtype() -> CmdError {
    CmdError("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

pub fn not_found() -> CmdError {
    CmdError::new("EXECUTION_NOT_FOUND", "no such execution")
}

/// An open key, closed on drop. The module's own handle rather than the
/// crate's, so reading a partition asks the server two questions (its
/// module type, its value) instead of four: this runs on every command.
pub struct Key(*mut raw::RedisModuleKey);

impl Drop for Key {
    fn drop(&mut self) {
        if let (false, Some(close)) = (self.0.is_null(), unsafe { raw::RedisModule_CloseKey }) {
            unsafe { close(self.0) };
        }
    }
}

impl Key {
    pub fn is_empty(&self) -> bool {
        self.0.is_null()
            || unsafe { raw::RedisModule_KeyType.map_or(0, |f| f(self.0)) }
                == raw::REDISMODULE_KEYTYPE_EMPTY as c_int
    }

    /// Deletes whatever the key holds.
    pub fn delete(&self) {
        if let (false, Some(del)) = (self.0.is_null(), unsafe { raw::RedisModule_DeleteKey }) {
            unsafe { del(self.0) };
        }
    }

    /// Stores a partition in the (empty) key.
    pub fn set_partition(&self, p: Partition) -> CmdResult<()> {
        let (Some(set), false) = (
            unsafe { raw::RedisModule_ModuleTypeSetValue },
            self.0.is_null(),
        ) else {
            return Err(wrongtype());
        };
        let value = Box::into_raw(Box::new(p));
        if unsafe { set(self.0, partition_type(), value.cast()) } == raw::REDISMODULE_OK as c_int {
            return Ok(());
        }
        // Not taken by the server: still ours to free.
        drop(unsafe { Box::from_raw(value) });
        Err(wrongtype())
    }
}

fn partition_type() -> *mut raw::RedisModuleType {
    PARTITION_TYPE
        .raw_type
        .try_borrow()
        .map_or(std::ptr::null_mut(), |t| *t)
}

pub fn open(ctx: &Context, name: &[u8]) -> Key {
    let s: RedisString = ctx.create_string(name);
    open_arg(ctx, s.inner)
}

/// Opens the key named by one of the call's own argument strings, without
/// copying the name.
pub fn open_arg(ctx: &Context, arg: *mut raw::RedisModuleString) -> Key {
    Key(raw::open_key(
        ctx.ctx,
        arg,
        raw::KeyMode::READ | raw::KeyMode::WRITE,
    ))
}

/// The partition stored under an open key, if any.
pub fn partition<'a>(key: &Key) -> CmdResult<Option<&'a mut Partition>> {
    let ours = partition_type();
    let (Some(get_type), Some(get_value)) =
        (unsafe { raw::RedisModule_ModuleTypeGetType }, unsafe {
            raw::RedisModule_ModuleTypeGetValue
        })
    else {
        return Err(wrongtype());
    };
    if key.0.is_null() {
        return Ok(None);
    }
    // Not ours when the key is empty or of another type: tell them apart.
    if ours.is_null() || unsafe { get_type(key.0) } != ours {
        return if key.is_empty() {
            Ok(None)
        } else {
            Err(wrongtype())
        };
    }
    Ok(unsafe { get_value(key.0).cast::<Partition>().as_mut() })
}

pub fn open_partition(ctx: &Context, partition: u16) -> Key {
    match globals::index_key_string(partition) {
        Some(s) => open_arg(ctx, s),
        None => open(ctx, index_key(partition).as_bytes()),
    }
}

/// Opens a partition, creating it under the configured partition count;
/// refuses one laid out for another count.
pub fn partition_or_create<'a>(
    ctx: &Context,
    partition: u16,
    partitions: u16,
) -> CmdResult<(Key, &'a mut Partition)> {
    let key = open_partition(ctx, partition);
    if key.is_empty() {
        key.set_partition(Partition::new(partition, partitions))?;
    }
    let p = self::partition(&key)?.ok_or_else(wrongtype)?;
    if p.index.partitions != partitions {
        return Err(CmdError::new(
            "PARTITION_MISMATCH",
            format!(
                "partition data was laid out for {} partitions; flowfabric.partitions is {}",
                p.index.partitions, partitions
            ),
        ));
    }
    Ok((key, p))
}

/// An execution that must exist, with its partition's index.
pub fn require_exec<'a>(
    ctx: &Context,
    id: &ExecId,
) -> CmdResult<(Key, &'a mut PartitionIndex, &'a mut Execution)> {
    let key = open_partition(ctx, id.partition);
    let (idx, e) = partition(&key)?
        .and_then(|p| p.record_mut(id.uuid))
        .ok_or_else(not_found)?;
    Ok((key, idx, e))
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
    if let Some(f) = unsafe { raw::RedisModule_SetAbsExpire } {
        unsafe { f(key, i64::try_from(expires_at_ms).unwrap_or(i64::MAX)) };
    }
    raw::close_key(key);
}
