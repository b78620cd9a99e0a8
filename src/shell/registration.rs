//! Registers every command from its `commands/<name>.json`: the same file
//! gives the server its flags, arity, key specs, arguments, tips and ACL
//! categories (so COMMAND DOCS and cluster routing come from it), and the
//! README table is generated from it.

use std::ffi::{c_char, CString};
use std::os::raw::c_int;

use redis_module::{raw, Context};
use serde_json::Value;

use crate::shell::command_table::{CommandEntry, COMMANDS};

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

/// The tips Valkey's own command files use (see the command-tips page);
/// a spec naming another is refused at load, like an unknown flag.
const KNOWN_TIPS: &[&str] = &[
    "NONDETERMINISTIC_OUTPUT",
    "NONDETERMINISTIC_OUTPUT_ORDER",
    "REQUEST_POLICY:ALL_NODES",
    "REQUEST_POLICY:ALL_SHARDS",
    "REQUEST_POLICY:MULTI_SHARD",
    "REQUEST_POLICY:SPECIAL",
    "RESPONSE_POLICY:ONE_SUCCEEDED",
    "RESPONSE_POLICY:ALL_SUCCEEDED",
    "RESPONSE_POLICY:AGG_LOGICAL_AND",
    "RESPONSE_POLICY:AGG_LOGICAL_OR",
    "RESPONSE_POLICY:AGG_MIN",
    "RESPONSE_POLICY:AGG_MAX",
    "RESPONSE_POLICY:AGG_SUM",
    "RESPONSE_POLICY:SPECIAL",
];

/// The spec's `command_tips` as the server takes them: lowercase and
/// space-separated (`request_policy:all_shards ...`), so cluster clients
/// reading COMMAND INFO know to fan a node-local command out.
fn command_tips(spec: &Value) -> Result<String, String> {
    let mut out = Vec::new();
    for tip in spec
        .get("command_tips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let tip = tip.as_str().unwrap_or_default();
        if !KNOWN_TIPS.contains(&tip) {
            return Err(format!("unknown command tip {tip}"));
        }
        out.push(tip.to_ascii_lowercase());
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
    // The server refuses the whole module otherwise (moduleValidateCommandInfo).
    if (bits & 0b1111).count_ones() != 1 {
        return Err("a key spec needs exactly one of RO, RW, OW, RM".into());
    }
    if (bits & 0b1110_0000).count_ones() > 1 {
        return Err("a key spec's INSERT, UPDATE and DELETE are mutually exclusive".into());
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
        // SAFETY: a plain C struct, for which all zeroes is "unset".
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
    // SAFETY: the all-zero entry ends the list, as the server expects.
    out.push(unsafe { std::mem::zeroed() });
    Ok(Box::leak(out.into_boxed_slice()).as_mut_ptr())
}

fn args(list: &[Value]) -> Result<*mut raw::RedisModuleCommandArg, String> {
    let mut out: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(list.len() + 1);
    for a in list {
        // SAFETY: a plain C struct, for which all zeroes is "unset".
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
    // SAFETY: the all-zero entry ends the list, as the server expects.
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
    // SAFETY: function pointers the server filled in at load (so below).
    let create = unsafe { raw::RedisModule_CreateCommand }.ok_or("no CreateCommand")?;
    // SAFETY: `ctx` is the load context; the names are NUL-terminated and
    // the server copies them; `e.func` is this module's entry point.
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
    // SAFETY: a function pointer the server filled in at load.
    let get = unsafe { raw::RedisModule_GetCommand }.ok_or("no GetCommand")?;
    // SAFETY: as above.
    let cmd = unsafe { get(ctx.ctx, cname.as_ptr()) };
    if cmd.is_null() {
        return Err(format!("could not get {name}"));
    }
    let no_args = Vec::new();
    let tips = command_tips(&spec)?;
    let info = Box::leak(Box::new(raw::RedisModuleCommandInfo {
        version: &INFO_VERSION,
        summary: opt_cstr(&spec, "summary"),
        complexity: opt_cstr(&spec, "complexity"),
        since: opt_cstr(&spec, "since"),
        history: std::ptr::null_mut(),
        tips: if tips.is_empty() {
            std::ptr::null()
        } else {
            cstr(&tips)
        },
        arity: int(&spec, &["arity"]),
        key_specs: key_specs(&spec)?,
        args: args(
            spec.get("arguments")
                .and_then(Value::as_array)
                .unwrap_or(&no_args),
        )?,
    }));
    // SAFETY: a function pointer the server filled in at load.
    let set_info = unsafe { raw::RedisModule_SetCommandInfo }.ok_or("no SetCommandInfo")?;
    // SAFETY: `cmd` was just created; `info` and all it points to are
    // leaked, so they outlive the registration.
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
    // SAFETY: a function pointer the server filled in at load.
    if let Some(set_cats) = unsafe { raw::RedisModule_SetCommandACLCategories } {
        let c = CString::new(cats.join(" ")).map_err(|_| "bad ACL categories")?;
        // SAFETY: `cmd` was just created; the server copies the names.
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
    use crate::shell::command_table::FENCE;

    /// Each spec's `errors` lists exactly the codes its handler can reply
    /// with (as declared beside it in `COMMANDS`).
    #[test]
    fn specs_list_the_codes_their_handlers_reply_with() {
        let mut wrong = Vec::new();
        for e in COMMANDS {
            let (name, spec) = parse(e.json).unwrap();
            let mut listed: Vec<&str> = spec["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["code"].as_str().unwrap())
                .collect();
            listed.sort_unstable();
            listed.dedup();
            let mut declared: Vec<&str> = e
                .errors
                .iter()
                .flat_map(|g| g.iter())
                .map(|c| c.as_str())
                .collect();
            declared.sort_unstable();
            declared.dedup();
            if listed != declared {
                wrong.push(format!("{name}: spec {listed:?}, handler {declared:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// The shared lists are what the error types they stand for carry.
    #[test]
    fn shared_lists_match_the_error_types() {
        use flowfabric_core::base::errors::Refused;
        use flowfabric_core::execution::LeaseError;
        let mut fence = FENCE.to_vec();
        fence.sort();
        let mut lease = LeaseError::codes().to_vec();
        lease.sort();
        assert_eq!(fence, lease);
    }

    #[test]
    fn every_command_file_parses_with_known_flags() {
        for e in COMMANDS {
            let (name, spec) = parse(e.json).unwrap();
            assert!(name.starts_with("FF."), "{name}");
            command_flags(&spec).unwrap();
            command_tips(&spec).unwrap();
            for ks in spec["key_specs"].as_array().unwrap() {
                key_spec_flags(ks).unwrap();
            }
            assert!(spec["arity"].is_i64());
            assert!(spec["summary"].is_string());
        }
    }

    /// One ACL rule (`+@flowfabric` / `-@flowfabric`) covers the module.
    #[test]
    fn every_command_is_in_the_module_category() {
        for e in COMMANDS {
            let (name, spec) = parse(e.json).unwrap();
            let cats = spec["acl_categories"].as_array().unwrap();
            assert!(cats.iter().any(|c| c == "FLOWFABRIC"), "{name}");
        }
    }

    /// A keyless command acts on the node it reaches, so its spec says how a
    /// cluster client routes it: to every primary, or (FF.CLAIM: a worker
    /// claims on each primary itself; FF.PARTITION: any node answers the
    /// same) nowhere in particular.
    #[test]
    fn keyless_commands_say_how_to_route_them() {
        for e in COMMANDS {
            let (name, spec) = parse(e.json).unwrap();
            let keyless = spec["key_specs"].as_array().unwrap().is_empty();
            if !keyless || matches!(name.as_str(), "FF.CLAIM" | "FF.PARTITION") {
                continue;
            }
            let tips = command_tips(&spec).unwrap();
            // A node-wide cursor (FF.SCAN, the bulk commands) is paged on
            // each primary by the client itself: special, as SCAN is.
            let policy = if matches!(name.as_str(), "FF.SCAN" | "FF.BULKCANCEL" | "FF.BULKREPLAY") {
                "request_policy:special"
            } else {
                "request_policy:all_shards"
            };
            assert!(tips.contains(policy), "{name}: {tips}");
        }
    }
}
