//! One call of a module command as the handlers see it: its arguments as
//! bytes and as the server's strings, where it came from, and the values
//! the primary pinned.

use std::mem::MaybeUninit;
use std::os::raw::c_int;

use flowfabric_core::base::args::{lane_str, AskOrigin, Origin};
use flowfabric_core::base::errors::{CmdError, CmdResult};
use redis_module::{raw, Context, ContextFlags};

/// One call of a command: its arguments (without the command name) as
/// bytes, and the same arguments as the server's strings, so keys can be
/// opened and commands replicated without copying them.
pub struct Call<'a> {
    pub ctx: &'a Context,
    pub args: &'a [&'a [u8]],
    pub argv: &'a [*mut raw::RedisModuleString],
    /// The reclaim limit the primary pinned (`... MAX_RECLAIMS n` at the
    /// end of a replicated call, taken off `args` and `argv`): a transition
    /// that may fail an execution for running out of reclaims decides with
    /// the primary's setting, not the replica's.
    pub max_reclaims: Option<u32>,
    /// The feed settings the primary pinned (`... FEED n`, last), when
    /// they were not the defaults.
    pub feed: Option<u64>,
    /// Where the call came from, asked only when a pinned value appears.
    pub asker: Asker<'a>,
}

/// Takes a trailing `name n` pin off a replicated call. A client may not
/// send it: its parser then refuses the unknown option.
fn split_pin<'a, T>(
    ctx: &Context,
    name: &[u8],
    args: &'a [&'a [u8]],
    argv: &'a [T],
) -> (&'a [&'a [u8]], &'a [T], Option<u64>) {
    if let [rest @ .., key, n] = args {
        if key.eq_ignore_ascii_case(name) && replicated(ctx) {
            let n = std::str::from_utf8(n)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(n) = n {
                let argv = argv.get(..rest.len()).unwrap_or(argv);
                return (rest, argv, Some(n));
            }
        }
    }
    (args, argv, None)
}

/// The pinned values a replicated call ends with: `[MAX_RECLAIMS n]
/// [FEED n]`, taken off its arguments.
pub struct Trailing<'a, T> {
    pub args: &'a [&'a [u8]],
    pub argv: &'a [T],
    pub max_reclaims: Option<u32>,
    pub feed: Option<u64>,
}

pub fn split_trailing<'a, T>(
    ctx: &Context,
    args: &'a [&'a [u8]],
    argv: &'a [T],
) -> Trailing<'a, T> {
    let (args, argv, feed) = split_pin(ctx, b"FEED", args, argv);
    let (args, argv, max) = split_pin(ctx, b"MAX_RECLAIMS", args, argv);
    Trailing {
        args,
        argv,
        max_reclaims: max.and_then(|m| u32::try_from(m).ok()),
        feed,
    }
}

/// Runs `f` with the call's arguments as byte slices borrowed from the
/// server. Up to 16 arguments (every hot command) are converted into a
/// stack buffer, one call of the server's function each: this runs on every
/// command, so it avoids a growable vector's checks and moves.
///
/// # Safety
/// `argv` must be the server's argument vector of `argc` strings.
#[inline(always)]
pub unsafe fn with_args<R>(
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    f: impl FnOnce(&[&[u8]]) -> R,
) -> R {
    // SAFETY: the caller's contract.
    let strings = unsafe { raw_strings(argv, argc) };
    // SAFETY: a function pointer the server filled in at load.
    let Some(ptr_len) = (unsafe { raw::RedisModule_StringPtrLen }) else {
        return f(&[]);
    };
    let bytes = |s: *mut raw::RedisModuleString| -> &[u8] {
        let mut len = 0;
        // SAFETY: `s` is one of the server's argument strings.
        let p = unsafe { ptr_len(s, &mut len) };
        if p.is_null() {
            &[]
        } else {
            // SAFETY: the server's string buffer, `len` bytes, alive and
            // unchanged for the command.
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
        }
    };
    const STACK: usize = 16;
    if strings.len() > STACK {
        let v: Vec<&[u8]> = strings.iter().map(|&s| bytes(s)).collect();
        return f(&v);
    }
    let mut buf = [const { MaybeUninit::<&[u8]>::uninit() }; STACK];
    for (slot, &s) in buf.iter_mut().zip(strings) {
        slot.write(bytes(s));
    }
    // SAFETY: the first `strings.len()` slots (at most `STACK`) were
    // written just above.
    let done = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<&[u8]>(), strings.len()) };
    f(done)
}

/// The server's argument strings.
///
/// # Safety
/// `argv` must be the server's argument vector of `argc` strings.
pub unsafe fn raw_strings<'a>(
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> &'a [*mut raw::RedisModuleString] {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: the caller's contract: `argc` strings at `argv`.
    unsafe { std::slice::from_raw_parts(argv, n) }
}

/// Only the primary's stream (or a slot import's) and the AOF may carry
/// pinned values.
pub fn replicated(ctx: &Context) -> bool {
    let f = ctx.get_flags();
    f.contains(ContextFlags::REPLICATED) || f.contains(ContextFlags::LOADING)
}

/// Refuses an internal command (`name`) unless the primary or the AOF sent it.
pub fn internal_only(ctx: &Context, name: &str) -> CmdResult<()> {
    if replicated(ctx) {
        return Ok(());
    }
    Err(CmdError::syntax(format!(
        "{name} is internal: only the primary and the AOF send it"
    )))
}

/// Asks the server where the call came from, only when a pinned value
/// appears (asking costs a flags lookup).
pub struct Asker<'a>(pub &'a Context);

impl AskOrigin for Asker<'_> {
    fn is_replicated(&self) -> bool {
        replicated(self.0)
    }
}

impl Call<'_> {
    /// The call's origin, asked of the server only if a pinned value
    /// appears.
    pub fn origin(&self) -> Origin<'_> {
        Origin::Ask(&self.asker)
    }
}

/// The db the call (or callback) runs in.
pub fn db(ctx: &Context) -> c_int {
    // SAFETY: `ctx` is the live context of the current callback.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.ctx)) }
}

/// Selects `db` in `ctx` (a command's client keeps it: callers restore);
/// false when the server refuses (no such db).
pub fn select_db(ctx: &Context, db: c_int) -> bool {
    // SAFETY: a function pointer the server filled in at load.
    let Some(select) = (unsafe { raw::RedisModule_SelectDb }) else {
        return false;
    };
    // SAFETY: `ctx` is the live context of the current callback.
    unsafe { select(ctx.ctx, db) == raw::REDISMODULE_OK as c_int }
}

/// The one lane argument of a lane command.
pub fn lane_arg<'a>(call: &Call<'a>) -> CmdResult<&'a str> {
    let [lane] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    lane_str(lane)
}
