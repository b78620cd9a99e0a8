//! Writing the real Valkey streams that hold attempt frames and the event
//! feed. Every node that runs a transition (the primary, its replicas, an
//! AOF replay) writes the same entries itself: ids come from the
//! transition's pinned time and the stream's last entry
//! (`EntryId::next_after`), trims are exact (`entry::trim_due`), so the
//! entries match without replicating them (no XADD in the replication
//! stream or the AOF), and readers blocked on a replica wake too.

use std::os::raw::{c_int, c_longlong};

use flowfabric_core::streams::entry::trim_due;
use flowfabric_core::streams::{EntryId, Trim};
use redis_module::{raw, Context, RedisValue};

use crate::shell::keys::{self, Key};
use smallvec::SmallVec;

/// Why an entry was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The key holds another type.
    WrongType,
    /// The server refused (the stream is at its last id, or too large).
    Refused,
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

    /// The string's bytes, copied.
    pub fn bytes(&self) -> Vec<u8> {
        let mut len = 0;
        // SAFETY: a live string; the pointer is valid for `len` bytes.
        let p = unsafe {
            raw::RedisModule_StringPtrLen.map_or(std::ptr::null(), |f| f(self.s, &mut len))
        };
        if p.is_null() {
            return Vec::new();
        }
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec()
    }
}

/// Opens `name` for writing: empty, or a stream (closing the key wakes
/// blocked readers).
fn open(ctx: &Context, name: *mut raw::RedisModuleString) -> Result<Key, WriteError> {
    let k = keys::open_arg(ctx, name);
    if k.raw().is_null() {
        return Err(WriteError::Refused);
    }
    match k.key_type() {
        t if t == raw::REDISMODULE_KEYTYPE_EMPTY as c_int
            || t == raw::REDISMODULE_KEYTYPE_STREAM as c_int =>
        {
            Ok(k)
        }
        _ => Err(WriteError::WrongType),
    }
}

/// A stream iterator on an open key, stopped on drop.
struct Iter<'k>(&'k Key);

impl<'k> Iter<'k> {
    /// Starts at `from` (reverse: from the end) up to `to`; None when the
    /// server refuses (an empty key).
    fn start(
        key: &'k Key,
        reverse: bool,
        from: Option<EntryId>,
        to: Option<EntryId>,
    ) -> Option<Iter<'k>> {
        let id = |e: EntryId| raw::RedisModuleStreamID {
            ms: e.ms,
            seq: e.seq,
        };
        let (mut start, mut end) = (from.map(id), to.map(id));
        let ptr = |x: &mut Option<raw::RedisModuleStreamID>| {
            x.as_mut().map_or(std::ptr::null_mut(), |v| v as *mut _)
        };
        let flags = if reverse {
            raw::REDISMODULE_STREAM_ITERATOR_REVERSE as c_int
        } else {
            0
        };
        // SAFETY: a function pointer the server filled in at load; `key` is
        // open; the bounds live for the call.
        let ok = unsafe {
            raw::RedisModule_StreamIteratorStart.is_some_and(|f| {
                f(key.raw(), flags, ptr(&mut start), ptr(&mut end)) == raw::REDISMODULE_OK as c_int
            })
        };
        ok.then_some(Iter(key))
    }

    /// The next entry's id and its field count.
    fn next_id(&mut self) -> Option<EntryId> {
        let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
        let mut n: std::os::raw::c_long = 0;
        // SAFETY: the iterator started on this key.
        let got = unsafe {
            raw::RedisModule_StreamIteratorNextID
                .is_some_and(|f| f(self.0.raw(), &mut id, &mut n) == raw::REDISMODULE_OK as c_int)
        };
        got.then_some(EntryId {
            ms: id.ms,
            seq: id.seq,
        })
    }

    /// The current entry's next field and value, as bytes.
    fn next_field(&mut self, ctx: &Context) -> Option<(Vec<u8>, Vec<u8>)> {
        let (mut f, mut v) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: as above; the strings are ours to free (no automatic
        // memory), which `Field` does.
        let got = unsafe {
            raw::RedisModule_StreamIteratorNextField
                .is_some_and(|g| g(self.0.raw(), &mut f, &mut v) == raw::REDISMODULE_OK as c_int)
        };
        if !got {
            return None;
        }
        let (f, v) = (Field::owned(ctx, f), Field::owned(ctx, v));
        Some((f.bytes(), v.bytes()))
    }
}

impl Drop for Iter<'_> {
    fn drop(&mut self) {
        // SAFETY: the iterator this value started.
        if let Some(stop) = unsafe { raw::RedisModule_StreamIteratorStop } {
            unsafe { stop(self.0.raw()) };
        }
    }
}

/// An entry: its id and its fields and values.
pub type Entry = (EntryId, Vec<(Vec<u8>, Vec<u8>)>);

/// Up to `count` entries of the stream `name` from `from` to `to`
/// (inclusive); none when the key is empty.
pub fn read(
    ctx: &Context,
    name: &Field,
    from: EntryId,
    to: EntryId,
    count: u64,
) -> Result<Vec<Entry>, WriteError> {
    let key = keys::open_arg_read(ctx, name.ptr());
    match key.key_type() {
        t if t == raw::REDISMODULE_KEYTYPE_EMPTY as c_int => return Ok(Vec::new()),
        t if t != raw::REDISMODULE_KEYTYPE_STREAM as c_int => return Err(WriteError::WrongType),
        _ => {}
    }
    let Some(mut it) = Iter::start(&key, false, Some(from), Some(to)) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let Some(id) = it.next_id() else {
            break;
        };
        let mut fields = Vec::new();
        while let Some(fv) = it.next_field(ctx) {
            fields.push(fv);
        }
        out.push((id, fields));
    }
    Ok(out)
}

/// Checks that `name` is empty or a stream, so a command can refuse before
/// it changes anything.
pub fn check_writable(ctx: &Context, name: &Field) -> Result<(), WriteError> {
    open(ctx, name.ptr()).map(drop)
}

/// The id of the stream's last entry, if it has one.
fn last_entry(key: &Key) -> Option<EntryId> {
    Iter::start(key, true, None, None)?.next_id()
}

/// The stream's last generated id (past its last entry when a client
/// deleted its tail or moved its id), asked of XINFO: the rare path.
fn last_generated(ctx: &Context, name: &Field) -> Option<EntryId> {
    let text = String::from_utf8(name.bytes()).ok()?;
    let Ok(RedisValue::Array(v)) = ctx.call("XINFO", &["STREAM", text.as_str()]) else {
        return None;
    };
    let as_text = |x: &RedisValue| match x {
        RedisValue::SimpleString(s) => Some(s.clone()),
        RedisValue::BulkString(s) => Some(s.clone()),
        RedisValue::StringBuffer(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    };
    let mut it = v.iter();
    while let (Some(k), Some(val)) = (it.next(), it.next()) {
        if as_text(k).as_deref() == Some("last-generated-id") {
            let t = as_text(val)?;
            let (ms, seq) = t.split_once('-')?;
            return Some(EntryId {
                ms: ms.parse().ok()?,
                seq: seq.parse().ok()?,
            });
        }
    }
    None
}

/// Adds the entry under `id`; the OS error code on a refusal.
fn stream_add(key: &Key, id: EntryId, fields: &[*mut raw::RedisModuleString]) -> Result<(), i32> {
    let mut sid = raw::RedisModuleStreamID {
        ms: id.ms,
        seq: id.seq,
    };
    let pairs = c_longlong::try_from(fields.len() / 2).unwrap_or(0);
    // SAFETY: a function pointer the server filled in at load; `key` is
    // open for writing and `fields` holds `2 * pairs` live strings, which
    // the server copies.
    let added = unsafe {
        raw::RedisModule_StreamAdd.map_or(raw::REDISMODULE_ERR as c_int, |f| {
            f(key.raw(), 0, &mut sid, fields.as_ptr().cast_mut(), pairs)
        })
    };
    if added == raw::REDISMODULE_OK as c_int {
        return Ok(());
    }
    Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `EDOM`: the id is not past the stream's last id.
const EDOM: i32 = 33;

/// Appends one entry of `fields` (name, value, name, value, ...) to the
/// stream `name` at time `now` (the transition's, pinned), then trims it
/// as `trim` says. Every node computes the same id and trim: after `last`
/// (the id the module gave the stream's previous entry, kept in replicated
/// state, updated here) when it has one, else after the stream's last
/// entry; past the stream's last id when a client moved it.
pub fn add(
    ctx: &Context,
    name: &Field,
    fields: &[Field],
    trim: Trim,
    now: u64,
    last: Option<&mut Option<EntryId>>,
) -> Result<EntryId, WriteError> {
    let fields: SmallVec<[*mut raw::RedisModuleString; 16]> =
        fields.iter().map(Field::ptr).collect();
    let key = open(ctx, name.ptr())?;
    let hint = last.as_ref().and_then(|l| **l);
    let next = |after: Option<EntryId>| EntryId::next_after(after, now).ok_or(WriteError::Refused);
    let mut id = next(hint.or_else(|| last_entry(&key)))?;
    let mut added = stream_add(&key, id, &fields);
    if added == Err(EDOM) && hint.is_some() {
        id = next(last_entry(&key))?;
        added = stream_add(&key, id, &fields);
    }
    if added == Err(EDOM) {
        id = next(Some(last_generated(ctx, name).ok_or(WriteError::Refused)?))?;
        added = stream_add(&key, id, &fields);
    }
    added.map_err(|_| WriteError::Refused)?;
    if let Some(l) = last {
        *l = Some(id);
    }
    if let Trim::To { maxlen, min_ms } = trim {
        trim_exact(&key, maxlen, min_ms);
    }
    Ok(id)
}

/// Drops entries older than `min_ms`, then trims back to `maxlen` entries
/// once the stream has grown past it by the slack: exact trims, so every
/// node keeps the same entries however the server laid them out.
fn trim_exact(key: &Key, maxlen: u64, min_ms: Option<u64>) {
    if let Some(ms) = min_ms {
        let mut min = raw::RedisModuleStreamID { ms, seq: 0 };
        // SAFETY: a function pointer the server filled in at load; `key`
        // is a stream open for writing; `min` lives for the call.
        unsafe {
            if let Some(f) = raw::RedisModule_StreamTrimByID {
                f(key.raw(), 0, &mut min);
            }
        }
    }
    // SAFETY: as above.
    let len = unsafe { raw::RedisModule_ValueLength.map_or(0, |f| f(key.raw())) } as u64;
    if let Some(to) = trim_due(len, maxlen) {
        let to = c_longlong::try_from(to).unwrap_or(c_longlong::MAX);
        // SAFETY: as above.
        unsafe {
            if let Some(f) = raw::RedisModule_StreamTrimByLength {
                f(key.raw(), 0, to);
            }
        }
    }
}

/// Deletes the stream `name` (an execution's, at retention); a key of
/// another type is left alone.
pub fn delete(ctx: &Context, name: &Field) {
    if let Ok(mut key) = open(ctx, name.ptr()) {
        key.delete();
    }
}
