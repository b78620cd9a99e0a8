//! Module configuration (`flowfabric.*`), declared in valkey.conf.example.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use flowfabric_core::base::limits::Limits;
use flowfabric_core::suspension::Keyring;
use redis_module::configuration::{ConfigurationContext, ConfigurationValue};
use redis_module::{RedisError, RedisString};
use std::sync::Mutex;

/// Number of flow partitions. Immutable after load: data is laid out by it,
/// and each partition index records the count it was created under.
pub static PARTITIONS: AtomicI64 = AtomicI64::new(256);
/// Lease length when a claim or renew names none.
pub static LEASE_MS: AtomicI64 = AtomicI64::new(30_000);
/// Largest payload or result accepted.
pub static MAX_PAYLOAD_BYTES: AtomicI64 = AtomicI64::new(16 * 1024 * 1024);

/// How long terminal executions are kept before removal (0: forever).
pub static RETENTION_MS: AtomicI64 = AtomicI64::new(86_400_000);
/// How many times a lease may run out before the execution fails.
pub static MAX_RECLAIMS: AtomicI64 = AtomicI64::new(100);

/// The event feed: on by default; off for the last microsecond.
pub static EVENTS: AtomicBool = AtomicBool::new(true);
/// Renewals on the feed: off by default (they are frequent).
pub static EVENTS_RENEWALS: AtomicBool = AtomicBool::new(false);
/// About how many entries a partition's events stream keeps.
pub const EVENTS_MAXLEN_DEFAULT: i64 =
    flowfabric_core::streams::settings::EVENTS_MAXLEN_DEFAULT as i64;
pub static EVENTS_MAXLEN: AtomicI64 = AtomicI64::new(EVENTS_MAXLEN_DEFAULT);

/// The server's `databases`, read at load (it cannot change after).
pub static DATABASES: AtomicI64 = AtomicI64::new(16);

pub fn databases() -> i32 {
    i32::try_from(DATABASES.load(Ordering::Relaxed))
        .unwrap_or(16)
        .max(1)
}

/// Reads `databases` from the server's configuration.
pub fn init_databases(ctx: &redis_module::Context) {
    let reply = ctx.call("CONFIG", &["GET", "databases"]);
    if let Ok(redis_module::RedisValue::Array(v)) = reply {
        if let Some(
            redis_module::RedisValue::SimpleString(n) | redis_module::RedisValue::BulkString(n),
        ) = v.get(1)
        {
            if let Ok(n) = n.parse::<i64>() {
                DATABASES.store(n, Ordering::Relaxed);
            }
        }
    }
}

/// Set when `flowfabric.retention-ms` changes: the executions already
/// finished fall due by the new setting, so the next cron tick records
/// every partition's due time again (see `schedule::rearm`).
pub static RETENTION_CHANGED: AtomicBool = AtomicBool::new(false);

pub fn on_retention_changed(_: &ConfigurationContext, _: &str, _: &'static AtomicI64) {
    RETENTION_CHANGED.store(true, Ordering::Relaxed);
}

pub fn retention_ms() -> u64 {
    u64::try_from(RETENTION_MS.load(Ordering::Relaxed)).unwrap_or(0)
}

pub fn partitions() -> u16 {
    u16::try_from(PARTITIONS.load(Ordering::Relaxed))
        .unwrap_or(256)
        .max(1)
}

pub fn limits() -> Limits {
    Limits {
        partitions: partitions(),
        max_payload_bytes: usize::try_from(MAX_PAYLOAD_BYTES.load(Ordering::Relaxed)).unwrap_or(0),
        default_lease_ms: u64::try_from(LEASE_MS.load(Ordering::Relaxed)).unwrap_or(30_000),
        retention_ms: retention_ms(),
        max_reclaims: u32::try_from(MAX_RECLAIMS.load(Ordering::Relaxed)).unwrap_or(100),
    }
}

/// `flowfabric.waitpoint-secret`: a waitpoint key (`kid:hex`) set at
/// start-up, used while no key was set with FF.ROTATESECRET. Never shown:
/// CONFIG GET answers an empty string.
pub struct WaitpointSecret;

pub static WAITPOINT_SECRET: WaitpointSecret = WaitpointSecret;

static CONFIG_RING: Mutex<Option<Keyring>> = Mutex::new(None);

/// Runs `f` with the key ring slot of the module config (a poisoned lock
/// still holds a valid ring: nothing panics while it is held).
fn with_slot<R>(f: impl FnOnce(&mut Option<Keyring>) -> R) -> R {
    let mut g = CONFIG_RING.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut g)
}

/// Runs `f` with the key from the module config, if one is set.
pub fn with_config_ring<R>(f: impl FnOnce(Option<&Keyring>) -> R) -> R {
    with_slot(|r| f(r.as_ref()))
}

impl ConfigurationValue<RedisString> for WaitpointSecret {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        RedisString::create(None, "")
    }

    fn set(&self, _ctx: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let v = val.as_slice();
        if v.is_empty() {
            with_slot(|r| *r = None);
            return Ok(());
        }
        let colon = v.iter().position(|&b| b == b':');
        let (kid, hex) = match colon {
            Some(i) => (
                v.get(..i).unwrap_or_default(),
                v.get(i + 1..).unwrap_or_default(),
            ),
            None => (&b"default"[..], v),
        };
        let mut ring = Keyring::default();
        ring.rotate(kid, hex, 0, 0).map_err(|e| {
            RedisError::String(format!(
                "flowfabric.waitpoint-secret must be [kid:]hex: {}",
                flowfabric_core::base::errors::Refused::message(&e)
            ))
        })?;
        with_slot(|r| *r = Some(ring));
        Ok(())
    }
}
