//! Process-wide state of the module. Valkey runs commands on one thread;
//! the locks are uncontended and only make the statics sound.

use std::cell::UnsafeCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ahash::RandomState;

use redis_module::raw;

use crate::core::hints::ClaimHints;
use crate::core::ids::{index_key, Minter};

/// A value behind a spin lock. Everything that reaches these statics runs
/// on the server's main thread, so the lock is never contended and is
/// there to make the static sound: another thread would wait, not race.
/// A `Mutex` costs several times more on every command (it also tracks
/// poisoning, which cannot matter here: a panic takes the server down).
/// Not reentrant: `f` must not take the same lock.
pub struct SpinLock<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `with` hands out the value only while holding `busy`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        /// Releases on the way out, also if `f` unwinds.
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.busy);
        // SAFETY: `busy` is ours until `_unlock` drops.
        f(unsafe { &mut *self.value.get() })
    }
}

static HINTS: SpinLock<Option<ClaimHints>> = SpinLock::new(None);
static MINTER: SpinLock<Option<Minter>> = SpinLock::new(None);

/// Runs `f` with the node's claim hints.
pub fn with_hints<R>(f: impl FnOnce(&mut ClaimHints) -> R) -> R {
    HINTS.with(|h| f(h.get_or_insert_with(ClaimHints::default)))
}

/// Runs `f` with the id minter, seeding it on first use.
pub fn with_minter<R>(f: impl FnOnce(&mut Minter) -> R) -> R {
    MINTER.with(|m| f(m.get_or_insert_with(|| Minter::new(seed()))))
}

fn seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let pid = u64::from(std::process::id());
    if from_os {
        u64::from_le_bytes(b) ^ t
    } else {
        t ^ (pid << 32)
    }
}

/// Lane names, shared by every execution on the lane: one allocation per
/// lane instead of one per execution (a malloc per submit, 32 bytes per
/// record). Names no execution holds any more are swept when the set has
/// doubled since the last sweep.
#[derive(Default)]
struct LaneNames {
    names: HashSet<Arc<str>, RandomState>,
    sweep_at: usize,
}

static LANE_NAMES: SpinLock<Option<LaneNames>> = SpinLock::new(None);

/// The shared name of `lane`.
pub fn lane_name(lane: &str) -> Arc<str> {
    LANE_NAMES.with(|g| {
        let l = g.get_or_insert_with(LaneNames::default);
        if let Some(name) = l.names.get(lane) {
            return name.clone();
        }
        if l.names.len() >= l.sweep_at {
            l.names.retain(|n| Arc::strong_count(n) > 1);
            l.sweep_at = l.names.len().saturating_mul(2).max(64);
        }
        let name: Arc<str> = Arc::from(lane);
        l.names.insert(name.clone());
        name
    })
}

/// Wall clock in ms as the server sees it.
pub fn now_ms() -> u64 {
    let ms = unsafe { raw::RedisModule_Milliseconds.map_or(0, |f| f()) };
    u64::try_from(ms).unwrap_or(0)
}

/// The partition index key names, created once at load (the partition
/// count cannot change after): claims open them and blocked claims wait on
/// them. Set once, then only read, so reading takes no lock.
pub struct ReadyKeys(Vec<*mut raw::RedisModuleString>);
// SAFETY: the strings are created at load, never freed or changed, and the
// server only touches them from its main thread.
unsafe impl Send for ReadyKeys {}
unsafe impl Sync for ReadyKeys {}

static READY_KEYS: OnceLock<ReadyKeys> = OnceLock::new();

pub fn init_ready_keys(partitions: u16) {
    let mut keys = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let k = index_key(p);
        let s = unsafe {
            raw::RedisModule_CreateString.map_or(std::ptr::null_mut(), |f| {
                f(std::ptr::null_mut(), k.as_ptr().cast(), k.len())
            })
        };
        keys.push(s);
    }
    // Loaded once per process: a second set cannot happen and is ignored.
    let _ = READY_KEYS.set(ReadyKeys(keys));
}

pub fn ready_keys() -> &'static [*mut raw::RedisModuleString] {
    READY_KEYS.get().map_or(&[], |k| &k.0)
}

/// The cached key name of partition `p`'s index, if the cache covers it.
pub fn index_key_string(p: u16) -> Option<*mut raw::RedisModuleString> {
    ready_keys()
        .get(usize::from(p))
        .copied()
        .filter(|k| !k.is_null())
}

/// Cluster mode is fixed when the server starts; read once at load.
static CLUSTER: AtomicBool = AtomicBool::new(false);

pub fn init_cluster_mode(ctx: &redis_module::Context) {
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) } as u32;
    CLUSTER.store(
        flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0,
        Ordering::Relaxed,
    );
}

pub fn cluster_mode() -> bool {
    CLUSTER.load(Ordering::Relaxed)
}
