//! Process-wide state of the module, each a static behind an accessor:
//! the claim board, the id minter, lane names, the partition key names,
//! cluster mode, the worker registry and its lease index, paused lanes,
//! partitions being imported, the parsed worker capability sets. Valkey
//! runs module code on one thread; the locks are uncontended and only make
//! the statics sound.

use std::cell::UnsafeCell;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use flowfabric_core::streams::Event;

use ahash::RandomState;
use flowfabric_core::base::caps::{CapSet, CapsError};
use flowfabric_core::base::ids::{acl_name, index_key, Minter};
use flowfabric_core::claims::ClaimBoard;
use flowfabric_core::streams::keys::events_key;
use flowfabric_core::suspension::Keyring;
use flowfabric_core::workers::{Registry, WorkerLeases};
use redis_module::raw;

use crate::shell::config;

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

/// The server's handle of a blocked client.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(pub *mut raw::RedisModuleBlockedClient);
// SAFETY: handles are only used on the server's main thread.
unsafe impl Send for Handle {}

/// What the shell keeps about a blocked claimer besides where it waits
/// (which the board keeps): its client and what its claim will be.
pub struct Blocked {
    pub handle: Handle,
    /// Its ACL user, for the key permissions of a hand-off (`None`:
    /// unchecked, as for the primary's stream).
    pub user: Option<Box<[u8]>>,
    pub worker_id: Box<[u8]>,
    pub worker_instance_id: Box<[u8]>,
    pub lease_ms: u64,
}

static BOARD: SpinLock<Option<ClaimBoard<Blocked>>> = SpinLock::new(None);
static MINTER: SpinLock<Option<Minter>> = SpinLock::new(None);

/// Runs `f` with the node's claim board (claim hints and blocked claimers).
pub fn with_board<R>(f: impl FnOnce(&mut ClaimBoard<Blocked>) -> R) -> R {
    BOARD.with(|h| f(h.get_or_insert_with(ClaimBoard::default)))
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
    // SAFETY: a function pointer the server filled in at load.
    let ms = unsafe { raw::RedisModule_Milliseconds.map_or(0, |f| f()) };
    u64::try_from(ms).unwrap_or(0)
}

/// Strings the module makes once at load and never frees: the partition
/// index and events key names, the partitions' ACL names (the partition count cannot change after),
/// and the stream field names, so hot paths use them without building
/// them. Set once, then only read, so reading takes no lock.
pub struct Strings(Vec<*mut raw::RedisModuleString>);
// SAFETY: the strings are created at load, never freed or changed, and the
// server only touches them from its main thread.
unsafe impl Send for Strings {}
unsafe impl Sync for Strings {}

impl Strings {
    fn make(texts: impl Iterator<Item = String>) -> Strings {
        Strings(
            texts
                .map(|k| {
                    // SAFETY: a function pointer the server filled in at
                    // load; a string with no context is the module's until
                    // freed (never: they live as long as the module).
                    unsafe {
                        raw::RedisModule_CreateString.map_or(std::ptr::null_mut(), |f| {
                            f(std::ptr::null_mut(), k.as_ptr().cast(), k.len())
                        })
                    }
                })
                .collect(),
        )
    }

    fn get(cell: &OnceLock<Strings>, i: usize) -> Option<*mut raw::RedisModuleString> {
        cell.get()
            .map_or(&[][..], |k| &k.0)
            .get(i)
            .copied()
            .filter(|k| !k.is_null())
    }
}

static INDEX_KEYS: OnceLock<Strings> = OnceLock::new();
static EVENTS_KEYS: OnceLock<Strings> = OnceLock::new();
static NAMES: OnceLock<Strings> = OnceLock::new();
static ACL_NAMES: OnceLock<Strings> = OnceLock::new();

/// Makes the cached strings; `names` are the stream field names.
pub fn init_strings(partitions: u16, names: impl Iterator<Item = String>) {
    // Loaded once per process: a second set cannot happen and is ignored.
    let _ = INDEX_KEYS.set(Strings::make((0..partitions).map(index_key)));
    let _ = EVENTS_KEYS.set(Strings::make((0..partitions).map(events_key)));
    let _ = NAMES.set(Strings::make(names));
    let _ = ACL_NAMES.set(Strings::make((0..partitions).map(acl_name)));
}

/// The cached ACL name of partition `p` (`{fp:N}:`, see `access`).
pub fn acl_name_string(p: u16) -> Option<*mut raw::RedisModuleString> {
    Strings::get(&ACL_NAMES, usize::from(p))
}

/// The cached key name of partition `p`'s index, if the cache covers it.
pub fn index_key_string(p: u16) -> Option<*mut raw::RedisModuleString> {
    Strings::get(&INDEX_KEYS, usize::from(p))
}

/// The cached key name of partition `p`'s events stream.
pub fn events_key_string(p: u16) -> Option<*mut raw::RedisModuleString> {
    Strings::get(&EVENTS_KEYS, usize::from(p))
}

/// The cached stream field name `i` (of the names given at load).
pub fn name_string(i: usize) -> Option<*mut raw::RedisModuleString> {
    Strings::get(&NAMES, i)
}

/// The partition data type as the server registered it, set once at load
/// (key opening compares a key's type with it on every command).
static PARTITION_TYPE: AtomicPtr<raw::RedisModuleType> = AtomicPtr::new(std::ptr::null_mut());

pub fn set_partition_type(t: *mut raw::RedisModuleType) {
    PARTITION_TYPE.store(t, Ordering::Relaxed);
}

/// The registered partition data type (null before load).
pub fn partition_type() -> *mut raw::RedisModuleType {
    PARTITION_TYPE.load(Ordering::Relaxed)
}

/// Cluster mode is fixed when the server starts; read once at load.
static CLUSTER: AtomicBool = AtomicBool::new(false);

pub fn init_cluster_mode(ctx: &redis_module::Context) {
    // SAFETY: `ctx` is the load context.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) } as u32;
    CLUSTER.store(
        flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0,
        Ordering::Relaxed,
    );
}

pub fn cluster_mode() -> bool {
    CLUSTER.load(Ordering::Relaxed)
}

/// Worker capability sets by the bytes a claim sent: a worker sends the
/// same CAPS on every claim, and turning a long unsorted list into its
/// canonical set means a sort. Bounded: emptied when full.
struct WorkerCaps {
    sets: std::collections::HashMap<Box<[u8]>, CapSet, RandomState>,
}

const WORKER_CAPS_MAX: usize = 1024;
/// Shorter lists parse faster than they hash.
const WORKER_CAPS_MIN_BYTES: usize = 64;

static WORKER_CAPS: SpinLock<Option<WorkerCaps>> = SpinLock::new(None);

/// The canonical set of a claim's CAPS bytes.
pub fn worker_caps(csv: &[u8]) -> Result<CapSet, CapsError> {
    if csv.len() < WORKER_CAPS_MIN_BYTES {
        return CapSet::parse_worker(csv);
    }
    if let Some(c) = WORKER_CAPS.with(|w| w.as_ref().and_then(|w| w.sets.get(csv).cloned())) {
        return Ok(c);
    }
    let c = CapSet::parse_worker(csv)?;
    WORKER_CAPS.with(|w| {
        let w = w.get_or_insert_with(|| WorkerCaps {
            sets: std::collections::HashMap::default(),
        });
        if w.sets.len() >= WORKER_CAPS_MAX {
            w.sets.clear();
        }
        w.sets.insert(csv.into(), c.clone());
    });
    Ok(c)
}

static REGISTRY: SpinLock<Option<Registry>> = SpinLock::new(None);
static LEASES: SpinLock<Option<WorkerLeases>> = SpinLock::new(None);

/// Runs `f` with the node's worker registry.
pub fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|r| f(r.get_or_insert_with(Registry::default)))
}

static KEYRING: SpinLock<Option<Keyring>> = SpinLock::new(None);

/// Runs `f` with the node's waitpoint token keys.
pub fn with_keyring<R>(f: impl FnOnce(&mut Keyring) -> R) -> R {
    KEYRING.with(|k| f(k.get_or_insert_with(Keyring::default)))
}

/// Runs `f` with the keys that mint and check tokens: the node's ring, or
/// while it has no current key, the one `flowfabric.waitpoint-secret` set.
pub fn with_token_keys<R>(f: impl FnOnce(&Keyring) -> R) -> R {
    KEYRING.with(|k| {
        let ring = k.get_or_insert_with(Keyring::default);
        if ring.current().is_some() {
            return f(ring);
        }
        crate::shell::config::with_config_ring(|c| f(c.unwrap_or(ring)))
    })
}

/// Runs `f` with the node's per-worker lease index.
pub fn with_leases<R>(f: impl FnOnce(&mut WorkerLeases) -> R) -> R {
    LEASES.with(|l| f(l.get_or_insert_with(WorkerLeases::default)))
}

/// Lanes paused on this node: claims skip them.
static PAUSED: SpinLock<BTreeSet<Box<str>>> = SpinLock::new(BTreeSet::new());
/// Fast path: claims skip the lock while no lane is paused.
static ANY_PAUSED: AtomicBool = AtomicBool::new(false);

fn with_paused<R>(f: impl FnOnce(&mut BTreeSet<Box<str>>) -> R) -> R {
    PAUSED.with(|s| {
        let r = f(s);
        ANY_PAUSED.store(!s.is_empty(), Ordering::Relaxed);
        r
    })
}

/// Pauses (true) or resumes a lane; returns whether anything changed.
pub fn set_paused(lane: &str, paused: bool) -> bool {
    with_paused(|s| {
        if paused {
            s.insert(lane.into())
        } else {
            s.remove(lane)
        }
    })
}

pub fn is_paused(lane: &str) -> bool {
    ANY_PAUSED.load(Ordering::Relaxed) && with_paused(|s| s.contains(lane))
}

pub fn paused_lanes() -> Vec<Box<str>> {
    with_paused(|s| s.iter().cloned().collect())
}

/// Replaces the paused lanes (a load).
pub fn set_paused_lanes(lanes: BTreeSet<Box<str>>) {
    with_paused(|s| *s = lanes);
}

/// Partitions whose slot is importing, by partition.
static IMPORTING: SpinLock<Vec<bool>> = SpinLock::new(Vec::new());
static ANY_IMPORTING: AtomicBool = AtomicBool::new(false);

/// True while partition `p`'s slot is being imported (one atomic load when
/// nothing is).
pub fn is_importing(p: u16) -> bool {
    ANY_IMPORTING.load(Ordering::Relaxed)
        && IMPORTING.with(|v| v.get(usize::from(p)).copied().unwrap_or(false))
}

pub fn set_importing(parts: &[u16], on: bool) {
    IMPORTING.with(|v| {
        if v.len() < usize::from(config::partitions()) {
            v.resize(usize::from(config::partitions()), false);
        }
        for &p in parts {
            if let Some(x) = v.get_mut(usize::from(p)) {
                *x = on;
            }
        }
        ANY_IMPORTING.store(v.iter().any(|&x| x), Ordering::Relaxed);
    });
}

/// Events raised on this node since it started, by kind (whether or not
/// the feed records them), at the event's place in `Event::NAMES`: INFO's
/// counters.
pub static EVENTS_RAISED: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

/// Counts an event of `ev`'s kind (every transition that raises one).
pub fn count_event(ev: Event) {
    if let Some(c) = EVENTS_RAISED.get(ev as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}
