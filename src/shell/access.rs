//! ACL key permissions for claims (and the node-wide FF.SCAN and bulk
//! commands, which name no key either). FF.CLAIM names no key (it picks among
//! the node's partitions), so the server's own key check never sees what
//! a claim opens; the claim asks instead. A partition's ACL name is
//! `{fp:N}:` (`ids::acl_name`), the prefix of every execution id in it,
//! which is the argument every keyed command declares: one pattern
//! (`~{fp:1}*`) governs claims and keyed commands alike. A claim reads
//! (the payload) and writes the partition, so it needs both.
//!
//! The user is looked up at most once per claim, and only when there is
//! a candidate to check; answers are kept for the rest of the claim. A
//! blocked claimer's user name is recorded when it blocks and looked up
//! again at hand-off, so the rules in force then apply. Not checked: the
//! primary's stream and the AOF (the primary decided those claims) and
//! clients without an ACL user (which may do anything).

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::{raw, Context};
use smallvec::SmallVec;

use crate::shell::call::replicated;
use crate::shell::config;
use crate::shell::node::acl_name_string;

/// What a claim needs of a partition: read (the payload goes back) and
/// write (the attempt and lease). `RM_ACLCheckKeyPermissions` takes the
/// key-spec logical flags, not RO/RW (which it refuses with EINVAL).
const CLAIM_NEEDS: c_int =
    (raw::REDISMODULE_CMD_KEY_ACCESS | raw::REDISMODULE_CMD_KEY_UPDATE) as c_int;
/// What a node-wide listing (FF.SCAN) needs of a partition: read.
const READ_NEEDS: c_int = raw::REDISMODULE_CMD_KEY_ACCESS as c_int;

/// Whose permissions a claim checks.
enum Who {
    /// No check: an internal call, or a client without an ACL user.
    Anyone,
    /// The client running the current command, not looked up yet.
    Caller(*mut raw::RedisModuleCtx),
    /// A recorded user name (a blocked claimer), not looked up yet.
    Named(Box<[u8]>),
    /// Looked up. `user` is null when there is no such user any more (or
    /// the server lacks the API): nothing is allowed.
    User {
        user: *mut raw::RedisModuleUser,
        name: Name,
    },
}

/// A user name as the server's string, freed on drop in the context it
/// was made in (null for one the module made).
struct Name {
    s: *mut raw::RedisModuleString,
    ctx: *mut raw::RedisModuleCtx,
}

impl Name {
    /// A string of the module's own (no context) holding `bytes`.
    fn of(bytes: &[u8]) -> Name {
        // SAFETY: a function pointer the server filled in at load; without
        // a context the string is ours until freed (on drop).
        let s = unsafe {
            raw::RedisModule_CreateString.map_or(std::ptr::null_mut(), |f| {
                f(std::ptr::null_mut(), bytes.as_ptr().cast(), bytes.len())
            })
        };
        Name {
            s,
            ctx: std::ptr::null_mut(),
        }
    }

    fn bytes(&self) -> &[u8] {
        if self.s.is_null() {
            return &[];
        }
        let mut len = 0usize;
        // SAFETY: a function pointer the server filled in at load; `s` is
        // live until this `Name` drops, so the bytes borrowed from it are.
        unsafe {
            match raw::RedisModule_StringPtrLen.map(|f| f(self.s, &mut len)) {
                Some(p) if !p.is_null() => std::slice::from_raw_parts(p.cast::<u8>(), len),
                _ => &[],
            }
        }
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        // SAFETY: a function pointer the server filled in at load; `s` was
        // made for this module (in `ctx`) and is freed once.
        if let (false, Some(free)) = (self.s.is_null(), unsafe { raw::RedisModule_FreeString }) {
            unsafe { free(self.ctx, self.s) };
        }
    }
}

/// The answers a claim got so far: a few in a short list, then two bits a
/// partition (asked, allowed) in a table made once, so a claim that walks
/// many refused heads asks O(1) per partition, not O(partitions).
#[derive(Default)]
struct Seen {
    few: SmallVec<[(u16, bool); 8]>,
    table: Option<Box<[u64]>>,
}

impl Seen {
    fn get(&self, p: u16) -> Option<bool> {
        match &self.table {
            Some(t) => {
                let (w, b) = Seen::slot(p);
                let word = t.get(w)?;
                (word >> b & 1 == 1).then_some(word >> (b + 1) & 1 == 1)
            }
            None => self.few.iter().find(|(q, _)| *q == p).map(|&(_, ok)| ok),
        }
    }

    fn put(&mut self, p: u16, ok: bool) {
        if self.table.is_none() && self.few.len() < self.few.inline_size() {
            self.few.push((p, ok));
            return;
        }
        let few = std::mem::take(&mut self.few);
        let table = self.table.get_or_insert_with(|| {
            // 32 partitions a word.
            vec![0u64; usize::from(config::partitions()) / 32 + 1].into_boxed_slice()
        });
        for (q, ok) in few.into_iter().chain(std::iter::once((p, ok))) {
            let (w, b) = Seen::slot(q);
            if let Some(word) = table.get_mut(w) {
                *word |= (1 | u64::from(ok) << 1) << b;
            }
        }
    }

    /// The word and bit of a partition's two bits.
    fn slot(p: u16) -> (usize, u32) {
        (usize::from(p) / 32, u32::from(p) % 32 * 2)
    }
}

/// One claim's view of the caller's key permissions, with the answers it
/// got so far.
pub struct Access {
    who: Who,
    /// (partition, allowed), for this claim only: rules may change between
    /// claims.
    seen: Seen,
    refused: bool,
    /// The key permissions asked of each partition.
    needs: c_int,
    /// Whether answers are kept (a claim may ask about a partition again;
    /// a node-wide walk asks about each once).
    remember: bool,
}

impl Access {
    /// The permissions of the client behind `ctx` (nothing is asked of the
    /// server until a partition is).
    pub fn caller(ctx: &Context) -> Access {
        Access::of(Who::Caller(ctx.ctx))
    }

    /// The permissions of the user named `name` (`None`: unchecked), for
    /// a hand-off to a blocked claimer.
    pub fn named(name: Option<&[u8]>) -> Access {
        Access::of(name.map_or(Who::Anyone, |n| Who::Named(n.into())))
    }

    fn of(who: Who) -> Access {
        Access {
            who,
            seen: Seen::default(),
            refused: false,
            needs: CLAIM_NEEDS,
            remember: true,
        }
    }

    /// For a walk over the node's partitions, each asked about once: no
    /// answers kept.
    pub fn walking(mut self) -> Access {
        self.remember = false;
        self
    }

    /// The same caller asked for read permission only (a listing).
    pub fn reading(mut self) -> Access {
        self.needs = READ_NEEDS;
        self
    }

    /// Whether the claim may take work from partition `p`.
    pub fn allows(&mut self, p: u16) -> bool {
        if let Some(ok) = self.seen.get(p) {
            return ok;
        }
        self.resolve();
        let ok = match &self.who {
            Who::Anyone => true,
            Who::User { user, .. } => check(*user, p, self.needs),
            Who::Caller(_) | Who::Named(_) => false,
        };
        if self.remember {
            self.seen.put(p, ok);
        }
        self.refused |= !ok;
        ok
    }

    /// Whether some partition with work was refused (a claim that found
    /// nothing may still have had work it may not take).
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// The user name to record for a claimer that blocks (`None`: its
    /// hand-offs are not checked).
    pub fn user_name(&mut self) -> Option<Box<[u8]>> {
        self.resolve();
        match &self.who {
            Who::User { name, .. } => Some(name.bytes().into()),
            _ => None,
        }
    }

    /// Looks the user up, once.
    fn resolve(&mut self) {
        let who = std::mem::replace(&mut self.who, Who::Anyone);
        self.who = match who {
            Who::Caller(ctx) => caller_name(ctx).map_or(Who::Anyone, lookup),
            Who::Named(bytes) => lookup(Name::of(&bytes)),
            done => done,
        };
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        if let Who::User { user, .. } = self.who {
            // SAFETY: a function pointer the server filled in at load;
            // `user` came from GetModuleUserFromUserName and is freed once.
            if let (false, Some(free)) =
                (user.is_null(), unsafe { raw::RedisModule_FreeModuleUser })
            {
                unsafe { free(user) };
            }
        }
    }
}

/// Whether `user` may read and write partition `p`'s ACL name.
fn check(user: *mut raw::RedisModuleUser, p: u16, needs: c_int) -> bool {
    // SAFETY: a function pointer the server filled in at load.
    let (false, Some(key), Some(f)) = (user.is_null(), acl_name_string(p), unsafe {
        raw::RedisModule_ACLCheckKeyPermissions
    }) else {
        return false;
    };
    // SAFETY: `user` is live for this claim (looked up in it); `key` is a
    // string the module keeps for its lifetime.
    unsafe { f(user, key, needs) == raw::REDISMODULE_OK as c_int }
}

/// Finds the user called `name` (a null user when there is none any more:
/// nothing allowed).
fn lookup(name: Name) -> Who {
    // SAFETY: a function pointer the server filled in at load; the lookup
    // does not keep the string.
    let user = match (name.s.is_null(), unsafe {
        raw::RedisModule_GetModuleUserFromUserName
    }) {
        (false, Some(find)) => unsafe { find(name.s) },
        _ => std::ptr::null_mut(),
    };
    Who::User { user, name }
}

/// Whether GetCurrentUserName answers null for a client without a user
/// (valkey-io/valkey#1885; seen on 9.1.2 from a timer's client) instead of
/// dereferencing it. Set at load from the server version.
static CURRENT_USER_IS_SAFE: AtomicBool = AtomicBool::new(false);

/// At load: Valkey 9 on has the fix. Older servers take the longer way
/// (`caller_name`), which costs a client lookup per claim.
pub fn init() {
    // SAFETY: a function pointer the server filled in at load.
    let version = unsafe { raw::RedisModule_GetServerVersion.map_or(0, |f| f()) };
    CURRENT_USER_IS_SAFE.store(version >= 0x09_00_00, Ordering::Relaxed);
}

/// The ACL user name of the client running the command in `ctx`; `None`
/// when it is not to be checked (the primary's stream, the AOF, a client
/// without a user).
fn caller_name(ctx: *mut raw::RedisModuleCtx) -> Option<Name> {
    if replicated(&Context::new(ctx)) {
        return None;
    }
    if CURRENT_USER_IS_SAFE.load(Ordering::Relaxed) {
        return current_user_name(ctx);
    }
    // SAFETY: function pointers the server filled in at load.
    let (Some(id), Some(by_id)) = (unsafe { raw::RedisModule_GetClientId }, unsafe {
        raw::RedisModule_GetClientUserNameById
    }) else {
        // Cannot tell who it is: a null name, so nothing is allowed.
        return Some(Name {
            s: std::ptr::null_mut(),
            ctx,
        });
    };
    // By id: unlike GetCurrentUserName there, it never dereferences a
    // missing user.
    // SAFETY: `ctx` is the live context of the current command.
    let s = unsafe { by_id(ctx, id(ctx)) };
    if !s.is_null() {
        return Some(Name { s, ctx });
    }
    // Null: not a connection (ENOENT), or a client without an ACL user
    // (ENOTSUP), which may do anything. Of the clients that are not
    // connections a script's carries its caller's user, but a script a
    // module runs through RM_Call may have none, and on these servers
    // GetCurrentUserName would then crash: a script's claim is refused
    // every partition here (a module's own call, which the server does
    // not check either, is not checked).
    let not_found = std::io::Error::last_os_error().kind() == std::io::ErrorKind::NotFound;
    // SAFETY: a function pointer the server filled in at load.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx)) };
    let script = (flags as u32) & raw::REDISMODULE_CTX_FLAGS_LUA != 0;
    (not_found && script).then_some(Name {
        s: std::ptr::null_mut(),
        ctx,
    })
}

/// GetCurrentUserName: null when the client has no user (nothing to
/// check), on a server that has the fix.
fn current_user_name(ctx: *mut raw::RedisModuleCtx) -> Option<Name> {
    // SAFETY: a function pointer the server filled in at load; `ctx` is
    // the live context of the current command.
    let s = unsafe { raw::RedisModule_GetCurrentUserName.map(|f| f(ctx)) }?;
    (!s.is_null()).then_some(Name { s, ctx })
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn answers_are_kept_past_the_short_list() {
        let mut seen = Seen::default();
        for p in 0..200u16 {
            assert_eq!(seen.get(p), None);
            seen.put(p, p % 3 == 0);
        }
        for p in 0..200u16 {
            assert_eq!(seen.get(p), Some(p % 3 == 0), "{p}");
        }
        assert_eq!(seen.get(201), None);
        assert!(seen.table.is_some() && seen.few.is_empty());
    }
}
