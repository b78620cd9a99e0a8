//! Opening the module's keys with typed errors: a key of another type is
//! WRONGTYPE, never a crash.

use redis_module::key::RedisKeyWritable;
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

pub fn open(ctx: &Context, name: &[u8]) -> RedisKeyWritable {
    let s: RedisString = ctx.create_string(name);
    ctx.open_key_writable(&s)
}

/// Opens the key named by one of the call's own argument strings, without
/// copying the name.
pub fn open_arg(ctx: &Context, arg: *mut raw::RedisModuleString) -> RedisKeyWritable {
    let s = RedisString::new(None, arg);
    ctx.open_key_writable(&s)
}

/// The partition stored under an open key, if any.
pub fn partition<'a>(key: &RedisKeyWritable) -> CmdResult<Option<&'a mut Partition>> {
    if key.is_empty() {
        return Ok(None);
    }
    key.get_value::<Partition>(&PARTITION_TYPE)
        .map_err(|_| wrongtype())
}

pub fn open_partition(ctx: &Context, partition: u16) -> RedisKeyWritable {
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
) -> CmdResult<(RedisKeyWritable, &'a mut Partition)> {
    let key = open_partition(ctx, partition);
    if key.is_empty() {
        key.set_value(&PARTITION_TYPE, Partition::new(partition, partitions))
            .map_err(|_| wrongtype())?;
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
) -> CmdResult<(RedisKeyWritable, &'a mut PartitionIndex, &'a mut Execution)> {
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
