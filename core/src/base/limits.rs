//! Limits: the bounds every request is held to (the reference's, where it
//! has them), and those that come from module configuration.

pub const LANE_MAX_BYTES: usize = 64;
pub const NAME_MAX_BYTES: usize = 256;
pub const TAG_VALUE_MAX_BYTES: usize = 4096;
pub const TAGS_MAX: usize = 64;
/// Lanes one claim (or a worker's registration) may name: a claim looks
/// each one up, so the bound keeps a claim's cost bounded.
pub const LANES_MAX: u64 = 64;
pub const LEASE_MAX_MS: u64 = 7 * 24 * 3600 * 1000;
/// Times are unix ms; this is far past any real one and keeps sums safe.
pub const TIME_MAX_MS: u64 = i64::MAX as u64 / 2;
pub const TTL_MAX_MS: u64 = 365 * 24 * 3600 * 1000;
pub const MAX_RETRIES_MAX: u64 = 10_000;
/// Priorities are clamped to 0..=PRIORITY_MAX, as in the reference.
pub const PRIORITY_MAX: i64 = 9000;
/// The most executions one FF.LIST page returns.
pub const LIST_COUNT_MAX: u64 = 10_000;
/// The longest heartbeat lapse a worker may register with.
pub const WORKER_TTL_MAX_MS: u64 = 7 * 24 * 3600 * 1000;
/// How many times an execution may be replayed, as in the reference.
pub const MAX_REPLAYS: u32 = 10;

/// The most waitpoints one suspension (or one execution's pending ones)
/// may hold.
pub const WAITPOINTS_MAX: usize = 16;
/// The largest signal payload: signals are small decisions and callback
/// bodies, not data (the reference's `payload_too_large`).
pub const SIGNAL_PAYLOAD_MAX: usize = 64 * 1024;
/// Signals one suspension may receive (the reference's default cap).
pub const SIGNALS_MAX: usize = 10_000;
/// How long a signal's idempotency key holds by default: a day.
pub const DEDUP_TTL_MS: u64 = 86_400_000;
/// A pending waitpoint's life when FF.WAITPOINT names none: a day.
pub const PENDING_TTL_MS: u64 = 86_400_000;

/// Limits that come from module configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub partitions: u16,
    pub max_payload_bytes: usize,
    pub default_lease_ms: u64,
    /// How long terminal executions are kept (0: forever).
    pub retention_ms: u64,
    /// How many times a lease may run out before the execution fails.
    pub max_reclaims: u32,
}

/// The largest frame payload (the reference's `max_payload_bytes`).
pub const FRAME_PAYLOAD_MAX: usize = 64 * 1024;
/// Frames and payload bytes one attempt's stream keeps untrimmed (its
/// durable frames): beyond them appends get RETENTION_LIMIT_EXCEEDED.
pub const ATTEMPT_FRAMES_MAX: u64 = 100_000;
pub const ATTEMPT_FRAME_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The largest rolling summary document.
pub const SUMMARY_BYTES_MAX: usize = 64 * 1024;
/// Entries a summary-only stream keeps (the reference's live-tail window).
pub const SUMMARY_WINDOW: u64 = 64;
/// Entries a best-effort stream keeps when the append names no MAXLEN, and
/// the most it may name (the reference's adaptive floor and ceiling).
pub const BEST_EFFORT_MAXLEN: u64 = 1024;
pub const BEST_EFFORT_MAXLEN_MIN: u64 = 64;
pub const BEST_EFFORT_MAXLEN_MAX: u64 = 16_384;
/// The most frames one FF.FRAMES call returns (the reference's hard cap).
pub const FRAMES_COUNT_MAX: u64 = 10_000;
