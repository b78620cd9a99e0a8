//! Registers every command from its `commands/<name>.json`: the same file
//! gives the server its flags, arity, key specs, arguments and ACL
//! categories (so COMMAND DOCS and cluster routing come from it), and the
//! README table is generated from it.

use std::ffi::{c_char, CString};
use std::os::raw::c_int;

use redis_module::{raw, Context};
use serde_json::Value;
use std::mem::MaybeUninit;

use crate::core::args::CmdResult;
use crate::shell::{blocking, handlers, workers};

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
}

/// Takes a trailing `MAX_RECLAIMS n` off a replicated call. A client may
/// not send it: its parser then refuses the unknown option.
fn split_max_reclaims<'a, T>(
    ctx: &Context,
    args: &'a [&'a [u8]],
    argv: &'a [T],
) -> (&'a [&'a [u8]], &'a [T], Option<u32>) {
    if let [rest @ .., key, n] = args {
        if key.eq_ignore_ascii_case(b"MAX_RECLAIMS") && handlers::replicated(ctx) {
            let n = std::str::from_utf8(n)
                .ok()
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(n) = n {
                let argv = argv.get(..rest.len()).unwrap_or(argv);
                return (rest, argv, Some(n));
            }
        }
    }
    (args, argv, None)
}

type Handler = fn(&Call) -> CmdResult<()>;
type RawCommand = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *mut *mut raw::RedisModuleString,
    c_int,
) -> c_int;

pub struct CommandEntry {
    pub json: &'static str,
    pub func: RawCommand,
}

macro_rules! entry {
    ($file:literal, $handler:path) => {{
        unsafe extern "C" fn wrapper(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            dispatch(ctx, argv, argc, $handler)
        }
        CommandEntry {
            json: include_str!(concat!("../../commands/", $file)),
            func: wrapper,
        }
    }};
}

pub static COMMANDS: &[CommandEntry] = &[
    entry!("ff.submit.json", handlers::submit),
    entry!("ff.claim.json", handlers::claim),
    entry!("ff.renew.json", handlers::renew),
    entry!("ff.complete.json", handlers::complete),
    entry!("ff.fail.json", handlers::fail),
    entry!("ff.cancel.json", handlers::cancel),
    entry!("ff.delay.json", handlers::delay),
    entry!("ff.revoke.json", handlers::revoke),
    entry!("ff.waitchildren.json", handlers::wait_children),
    entry!("ff.priority.json", handlers::priority),
    entry!("ff.progress.json", handlers::progress),
    entry!("ff.settags.json", handlers::set_tags),
    entry!("ff.gettags.json", handlers::get_tags),
    entry!("ff.replay.json", handlers::replay),
    entry!("ff.block.json", handlers::block),
    entry!("ff.unblock.json", handlers::unblock),
    entry!("ff.pause.json", handlers::pause),
    entry!("ff.resume.json", handlers::resume),
    entry!("ff.paused.json", handlers::paused),
    entry!("ff.list.json", handlers::list),
    entry!("ff.lanes.json", handlers::lanes_cmd),
    entry!("ff.leases.json", workers::leases),
    entry!("ff.register.json", workers::register),
    entry!("ff.heartbeat.json", workers::heartbeat),
    entry!("ff.markdead.json", workers::mark_dead),
    entry!("ff.workers.json", workers::list),
    entry!("ff.get.json", handlers::get),
    entry!("ff.result.json", handlers::result),
    entry!("ff.payload.json", handlers::payload),
    entry!("ff.version.json", handlers::version),
    entry!("ff.partition.json", handlers::partition),
    entry!("ff.acquire.json", handlers::acquire),
    entry!("ff.loadrec.json", handlers::loadrec),
    entry!("ff.due.json", handlers::due),
];

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
    let strings = unsafe { raw_strings(argv, argc) };
    let Some(ptr_len) = (unsafe { raw::RedisModule_StringPtrLen }) else {
        return f(&[]);
    };
    let bytes = |s: *mut raw::RedisModuleString| -> &[u8] {
        let mut len = 0;
        let p = unsafe { ptr_len(s, &mut len) };
        if p.is_null() {
            &[]
        } else {
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
    // The first `strings.len()` slots were written just above.
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
    unsafe { std::slice::from_raw_parts(argv, n) }
}

/// Runs a handler; an error becomes the error reply, and a panic (a bug)
/// becomes an error reply instead of taking the server down.
fn dispatch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    h: Handler,
) -> c_int {
    let context = Context::new(ctx);
    let strings = unsafe { raw_strings(argv, argc) };
    unsafe {
        with_args(argv, argc, |args| {
            let (args, argv, max_reclaims) = split_max_reclaims(
                &context,
                args.get(1..).unwrap_or(&[]),
                strings.get(1..).unwrap_or(&[]),
            );
            let call = Call {
                ctx: &context,
                args,
                argv,
                max_reclaims,
            };
            run(&context, &call, h)
        })
    }
}

fn run(context: &Context, call: &Call, h: Handler) -> c_int {
    // The command first, then the hand-offs its transitions made possible
    // (so what they replicate follows the command's own replication).
    let step = || {
        let r = h(call);
        blocking::flush(context);
        r
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            context.reply_error_string(&e.0);
        }
        Err(_) => {
            context.reply_error_string(
                "ERR internal error in flowfabric (a bug); nothing was changed by the failed step",
            );
        }
    }
    raw::REDISMODULE_OK as c_int
}

/// The layout version of the command-info structs this module passes.
static INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

/// Leaked C strings: command info must outlive the module's registration.
fn cstr(s: &str) -> *const c_char {
    match CString::new(s) {
        Ok(c) => c.into_raw(),
        Err(_) => c"".as_ptr(),
    }
}

fn opt_cstr(v: &Value, field: &str) -> *const c_char {
    v.get(field)
        .and_then(Value::as_str)
        .map_or(std::ptr::null(), cstr)
}

fn command_flags(spec: &Value) -> Result<String, String> {
    let mut out = Vec::new();
    for f in spec
        .get("command_flags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = f.as_str().unwrap_or_default();
        out.push(match f {
            "WRITE" => "write",
            "READONLY" => "readonly",
            "DENYOOM" => "deny-oom",
            "FAST" => "fast",
            "ADMIN" => "admin",
            "NOSCRIPT" => "deny-script",
            "LOADING" => "allow-loading",
            "STALE" => "allow-stale",
            "NO_MANDATORY_KEYS" => "no-mandatory-keys",
            "BLOCKING" => "blocking",
            other => return Err(format!("unknown command flag {other}")),
        });
    }
    Ok(out.join(" "))
}

fn key_spec_flags(ks: &Value) -> Result<u64, String> {
    let mut bits = 0u64;
    for f in ks
        .get("flags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        bits |= match f.as_str().unwrap_or_default() {
            "RO" => 1 << 0,
            "RW" => 1 << 1,
            "OW" => 1 << 2,
            "RM" => 1 << 3,
            "ACCESS" => 1 << 4,
            "UPDATE" => 1 << 5,
            "INSERT" => 1 << 6,
            "DELETE" => 1 << 7,
            "NOT_KEY" => 1 << 8,
            "INCOMPLETE" => 1 << 9,
            "VARIABLE_FLAGS" => 1 << 10,
            other => return Err(format!("unknown key spec flag {other}")),
        };
    }
    Ok(bits)
}

fn int(v: &Value, path: &[&str]) -> c_int {
    let mut cur = v;
    for p in path {
        cur = match cur.get(p) {
            Some(x) => x,
            None => return 0,
        };
    }
    cur.as_i64()
        .and_then(|x| c_int::try_from(x).ok())
        .unwrap_or(0)
}

fn key_specs(spec: &Value) -> Result<*mut raw::RedisModuleCommandKeySpec, String> {
    let list = spec
        .get("key_specs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<raw::RedisModuleCommandKeySpec> = Vec::with_capacity(list.len() + 1);
    for ks in &list {
        let mut k: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
        k.notes = opt_cstr(ks, "notes");
        k.flags = key_spec_flags(ks)?;
        if ks.pointer("/begin_search/index").is_some() {
            k.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
            k.bs.index.pos = int(ks, &["begin_search", "index", "pos"]);
        } else {
            return Err("key spec needs begin_search.index".into());
        }
        if ks.pointer("/find_keys/range").is_some() {
            k.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
            k.fk.range.lastkey = int(ks, &["find_keys", "range", "lastkey"]);
            k.fk.range.keystep = int(ks, &["find_keys", "range", "step"]);
            k.fk.range.limit = int(ks, &["find_keys", "range", "limit"]);
        } else {
            return Err("key spec needs find_keys.range".into());
        }
        out.push(k);
    }
    out.push(unsafe { std::mem::zeroed() });
    Ok(Box::leak(out.into_boxed_slice()).as_mut_ptr())
}

fn args(list: &[Value]) -> Result<*mut raw::RedisModuleCommandArg, String> {
    let mut out: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(list.len() + 1);
    for a in list {
        let mut r: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
        r.name = opt_cstr(a, "name");
        r.token = opt_cstr(a, "token");
        r.summary = opt_cstr(a, "summary");
        r.key_spec_index = a
            .get("key_spec_index")
            .and_then(Value::as_i64)
            .map_or(-1, |x| x as c_int);
        r.type_ = match a.get("type").and_then(Value::as_str).unwrap_or_default() {
            "string" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            "integer" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            "double" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_DOUBLE,
            "key" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            "pattern" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PATTERN,
            "unix-time" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_UNIX_TIME,
            "pure-token" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            "oneof" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
            "block" => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            other => return Err(format!("unknown argument type {other}")),
        };
        let flag = |f: &str| a.get(f).and_then(Value::as_bool).unwrap_or(false);
        r.flags = (if flag("optional") { 1 } else { 0 })
            | (if flag("multiple") { 2 } else { 0 })
            | (if flag("multiple_token") { 4 } else { 0 });
        if let Some(sub) = a.get("arguments").and_then(Value::as_array) {
            r.subargs = args(sub)?;
        }
        out.push(r);
    }
    out.push(unsafe { std::mem::zeroed() });
    Ok(Box::leak(out.into_boxed_slice()).as_mut_ptr())
}

/// Parses a command file: its single top-level key is the command name.
pub fn parse(json: &str) -> Result<(String, Value), String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("bad command JSON: {e}"))?;
    let obj = v.as_object().ok_or("command JSON must be an object")?;
    let (name, spec) = obj.iter().next().ok_or("command JSON is empty")?;
    Ok((name.clone(), spec.clone()))
}

fn register_one(ctx: &Context, e: &CommandEntry) -> Result<(), String> {
    let (name, spec) = parse(e.json)?;
    let cname = CString::new(name.as_str()).map_err(|_| "bad name")?;
    let flags = CString::new(command_flags(&spec)?).map_err(|_| "bad flags")?;
    let create = unsafe { raw::RedisModule_CreateCommand }.ok_or("no CreateCommand")?;
    if unsafe {
        create(
            ctx.ctx,
            cname.as_ptr(),
            Some(e.func),
            flags.as_ptr(),
            0,
            0,
            0,
        )
    } != raw::REDISMODULE_OK as c_int
    {
        return Err(format!("could not create {name}"));
    }
    let get = unsafe { raw::RedisModule_GetCommand }.ok_or("no GetCommand")?;
    let cmd = unsafe { get(ctx.ctx, cname.as_ptr()) };
    if cmd.is_null() {
        return Err(format!("could not get {name}"));
    }
    let no_args = Vec::new();
    let info = Box::leak(Box::new(raw::RedisModuleCommandInfo {
        version: &INFO_VERSION,
        summary: opt_cstr(&spec, "summary"),
        complexity: opt_cstr(&spec, "complexity"),
        since: opt_cstr(&spec, "since"),
        history: std::ptr::null_mut(),
        tips: std::ptr::null(),
        arity: int(&spec, &["arity"]),
        key_specs: key_specs(&spec)?,
        args: args(
            spec.get("arguments")
                .and_then(Value::as_array)
                .unwrap_or(&no_args),
        )?,
    }));
    let set_info = unsafe { raw::RedisModule_SetCommandInfo }.ok_or("no SetCommandInfo")?;
    if unsafe { set_info(cmd, info) } != raw::REDISMODULE_OK as c_int {
        return Err(format!("the server rejected the command info of {name}"));
    }
    let cats: Vec<String> = spec
        .get("acl_categories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_ascii_lowercase))
        .collect();
    if let Some(set_cats) = unsafe { raw::RedisModule_SetCommandACLCategories } {
        let c = CString::new(cats.join(" ")).map_err(|_| "bad ACL categories")?;
        if unsafe { set_cats(cmd, c.as_ptr()) } != raw::REDISMODULE_OK as c_int {
            return Err(format!("the server rejected the ACL categories of {name}"));
        }
    }
    Ok(())
}

pub fn register_all(ctx: &Context) -> Result<(), String> {
    for e in COMMANDS {
        register_one(ctx, e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_file_parses_with_known_flags() {
        for e in COMMANDS {
            let (name, spec) = parse(e.json).unwrap();
            assert!(name.starts_with("FF."), "{name}");
            command_flags(&spec).unwrap();
            for ks in spec["key_specs"].as_array().unwrap() {
                key_spec_flags(ks).unwrap();
            }
            assert!(spec["arity"].is_i64());
            assert!(spec["summary"].is_string());
        }
    }
}
