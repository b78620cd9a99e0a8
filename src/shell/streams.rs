//! Writing the real Valkey streams that hold attempt frames and the event
//! feed. The node that makes a transition first (a primary's command or
//! timer) writes the entries and replicates them as plain `XADD` with the
//! entry id it got (and `XTRIM ... MAXLEN = n` when it trimmed), so
//! replicas and the AOF hold exactly its entries whatever their own clock
//! or configuration; a replicated or loaded FF command writes no entry.
//! Trimming is approximate (whole stream nodes, as `MAXLEN ~`) on the
//! writer and exact to the resulting length on replicas: the same entries.

use std::os::raw::{c_int, c_longlong};

use flowfabric_core::streams::Trim;
use redis_module::{raw, Context};

use crate::shell::call::replicated;

/// A stream entry's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub fn text(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

/// Why an entry was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The key holds another type.
    WrongType,
    /// The server refused (the stream is at its last id, or too large).
    Refused,
}

/// True when this call (or callback) writes stream entries itself: not a
/// replica's or the AOF's replay, which receive the writer's `XADD`s.
pub fn writes_entries(ctx: &Context) -> bool {
    !replicated(ctx)
}

/// A field name or value as the server's string, freed on drop unless it
/// is borrowed (a call argument or a cached name).
pub struct Field {
    s: *mut raw::RedisModuleString,
    owned: bool,
    ctx: *mut raw::RedisModuleCtx,
}

impl Drop for Field {
    fn drop(&mut self) {
        if self.owned && !self.s.is_null() {
            // SAFETY: a string this module created in `ctx` and still owns.
            if let Some(free) = unsafe { raw::RedisModule_FreeString } {
                unsafe { free(self.ctx, self.s) };
            }
        }
    }
}

impl Field {
    /// A copy of `bytes`.
    pub fn copy(ctx: &Context, bytes: &[u8]) -> Field {
        // SAFETY: a function pointer the server filled in at load; the
        // server copies `bytes`.
        let s = unsafe {
            raw::RedisModule_CreateString.map_or(std::ptr::null_mut(), |f| {
                f(ctx.ctx, bytes.as_ptr().cast(), bytes.len())
            })
        };
        Field {
            s,
            owned: true,
            ctx: ctx.ctx,
        }
    }

    /// A string the server handed over to free (an iterator's field).
    pub fn owned(ctx: &Context, s: *mut raw::RedisModuleString) -> Field {
        Field {
            s,
            owned: true,
            ctx: ctx.ctx,
        }
    }

    /// A string that outlives the write (a call argument, a cached name).
    pub fn borrowed(s: *mut raw::RedisModuleString) -> Field {
        Field {
            s,
            owned: false,
            ctx: std::ptr::null_mut(),
        }
    }

    pub fn uint(ctx: &Context, v: u64) -> Field {
        Field::copy(ctx, v.to_string().as_bytes())
    }

    pub fn ptr(&self) -> *mut raw::RedisModuleString {
        self.s
    }
}

/// An open stream key, closed on drop (closing wakes blocked readers).
struct StreamKey(*mut raw::RedisModuleKey);

impl Drop for StreamKey {
    fn drop(&mut self) {
        // SAFETY: a key this module opened and has not closed.
        if let (false, Some(close)) = (self.0.is_null(), unsafe { raw::RedisModule_CloseKey }) {
            unsafe { close(self.0) };
        }
    }
}

fn open(ctx: &Context, name: *mut raw::RedisModuleString) -> Result<StreamKey, WriteError> {
    let k = StreamKey(raw::open_key(
        ctx.ctx,
        name,
        raw::KeyMode::READ | raw::KeyMode::WRITE,
    ));
    if k.0.is_null() {
        return Err(WriteError::Refused);
    }
    // SAFETY: an open key.
    let t = unsafe { raw::RedisModule_KeyType.map_or(0, |f| f(k.0)) };
    if t != raw::REDISMODULE_KEYTYPE_EMPTY as c_int && t != raw::REDISMODULE_KEYTYPE_STREAM as c_int
    {
        return Err(WriteError::WrongType);
    }
    Ok(k)
}

/// Checks that `name` is empty or a stream, so a command can refuse before
/// it changes anything.
pub fn check_writable(ctx: &Context, name: &Field) -> Result<(), WriteError> {
    open(ctx, name.ptr()).map(drop)
}

/// Appends one entry of `fields` (name, value, name, value, ...) to the
/// stream `name`, trims it as `trim` says, and replicates both.
pub fn add(
    ctx: &Context,
    name: &Field,
    fields: &[Field],
    trim: Trim,
) -> Result<EntryId, WriteError> {
    let name = name.ptr();
    let fields: Vec<*mut raw::RedisModuleString> = fields.iter().map(Field::ptr).collect();
    let key = open(ctx, name)?;
    let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
    let pairs = c_longlong::try_from(fields.len() / 2).unwrap_or(0);
    // SAFETY: function pointers the server filled in at load; `key` is
    // open for writing and `fields` holds `2 * pairs` live strings, which
    // the server copies.
    let added = unsafe {
        raw::RedisModule_StreamAdd.map_or(raw::REDISMODULE_ERR as c_int, |f| {
            f(
                key.0,
                raw::REDISMODULE_STREAM_ADD_AUTOID as c_int,
                &mut id,
                fields.as_ptr().cast_mut(),
                pairs,
            )
        })
    };
    if added != raw::REDISMODULE_OK as c_int {
        return Err(WriteError::Refused);
    }
    let entry = EntryId {
        ms: id.ms,
        seq: id.seq,
    };
    let trimmed = match trim {
        Trim::Keep => false,
        Trim::To { maxlen, min_ms } => trim_to(&key, maxlen, min_ms),
    };
    let len = if trimmed {
        // SAFETY: an open key.
        unsafe { raw::RedisModule_ValueLength.map_or(0, |f| f(key.0)) }
    } else {
        0
    };
    drop(key);
    replicate_add(ctx, name, entry, &fields);
    if trimmed {
        replicate_trim(ctx, name, len);
    }
    Ok(entry)
}

/// Trims whole stream nodes beyond `maxlen` entries, and (with `min_ms`)
/// entries older than that time; true when anything went.
fn trim_to(key: &StreamKey, maxlen: u64, min_ms: Option<u64>) -> bool {
    let approx = raw::REDISMODULE_STREAM_TRIM_APPROX as c_int;
    let maxlen = c_longlong::try_from(maxlen).unwrap_or(c_longlong::MAX);
    // SAFETY: function pointers the server filled in at load; `key` is a
    // stream open for writing.
    let mut n =
        unsafe { raw::RedisModule_StreamTrimByLength.map_or(0, |f| f(key.0, approx, maxlen)) };
    if let Some(ms) = min_ms {
        let mut min = raw::RedisModuleStreamID { ms, seq: 0 };
        // SAFETY: as above; `min` lives for the call.
        n += unsafe { raw::RedisModule_StreamTrimByID.map_or(0, |f| f(key.0, approx, &mut min)) };
    }
    n > 0
}

fn replicate_add(
    ctx: &Context,
    name: *mut raw::RedisModuleString,
    id: EntryId,
    fields: &[*mut raw::RedisModuleString],
) {
    // SAFETY: a function pointer the server filled in at load.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let id = id.text();
    // SAFETY: "s" a live string, "b" pointer and length, "v" the field
    // strings and their count; the server copies what it keeps.
    unsafe {
        f(
            ctx.ctx,
            c"XADD".as_ptr(),
            c"sbv".as_ptr(),
            name,
            id.as_ptr(),
            id.len(),
            fields.as_ptr(),
            fields.len(),
        )
    };
}

fn replicate_trim(ctx: &Context, name: *mut raw::RedisModuleString, len: usize) {
    // SAFETY: a function pointer the server filled in at load.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let len = c_longlong::try_from(len).unwrap_or(c_longlong::MAX);
    // SAFETY: "s" a live string, "c" NUL-terminated names, "l" a long long.
    unsafe {
        f(
            ctx.ctx,
            c"XTRIM".as_ptr(),
            c"sccl".as_ptr(),
            name,
            c"MAXLEN".as_ptr(),
            c"=".as_ptr(),
            len,
        )
    };
}

/// Deletes the stream `name` (an execution's, at retention) and
/// replicates the delete; a key of another type is left alone.
pub fn delete(ctx: &Context, name: &Field) {
    let name = name.ptr();
    let Ok(key) = open(ctx, name) else {
        return;
    };
    // SAFETY: an open key.
    let empty = unsafe { raw::RedisModule_KeyType.map_or(0, |f| f(key.0)) }
        == raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
    if empty {
        return;
    }
    // SAFETY: a function pointer the server filled in at load; an open key.
    if let Some(del) = unsafe { raw::RedisModule_DeleteKey } {
        unsafe { del(key.0) };
    }
    drop(key);
    // SAFETY: a function pointer the server filled in at load; "s" a live
    // string.
    if let Some(f) = unsafe { raw::RedisModule_Replicate } {
        unsafe { f(ctx.ctx, c"DEL".as_ptr(), c"s".as_ptr(), name) };
    }
}
