//! The event feed and the frames a transition leaves in output streams:
//! after every transition (command, timer, hand-off) the event it raised
//! goes to its partition's events stream (`ff:events:{fp:N}`, capped at
//! `flowfabric.events-maxlen`) and out as a module keyspace notification;
//! an attempt that ended gets a closing frame in its stream, and one that
//! suspended a marker, so blocked readers wake at once. Every node that
//! runs the transition writes them (see `streams`), following the feed
//! settings the primary pinned in the call when they are not the defaults.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use flowfabric_core::base::ids::Uuid;
use flowfabric_core::execution::suspend::Delivered;
use flowfabric_core::execution::Execution;
use flowfabric_core::partition::{Moved, PartitionIndex};
use flowfabric_core::streams::keys::{events_key, stream_key};
use flowfabric_core::streams::settings::FeedSettings;
use flowfabric_core::streams::{CloseReason, Event, SignalOutcome, Trim};
use flowfabric_core::suspension::Effect;
use redis_module::{raw, Context};
use smallvec::SmallVec;

use crate::shell::call::replicated;
use crate::shell::config;
use crate::shell::node::{self, events_key_string, name_string};
use crate::shell::streams::{self, Field};

/// Declares the cached field names: `Name::X` indexes `NAMES`, and the
/// event names follow them (see `event_name`).
macro_rules! names {
    ($($v:ident => $text:literal),+ $(,)?) => {
        #[derive(Clone, Copy, Debug)]
        #[repr(usize)]
        pub enum Name { $($v),+ }
        const FIELD_NAMES: &[&str] = &[$($text),+];
    };
}

names! {
    Event => "event",
    Id => "id",
    Lane => "lane",
    Attempt => "attempt",
    Detail => "detail",
    Empty => "",
    Pct => "pct",
    Outcome => "outcome",
    Signal => "signal",
    Waitpoint => "waitpoint",
    Count => "count",
    Type => "type",
    Payload => "payload",
    Mode => "mode",
    Encoding => "encoding",
    Correlation => "correlation",
    Source => "source",
    Version => "version",
    Closed => "closed",
    Frames => "frames",
    Suspended => "suspended",
    Category => "category",
}

/// Attempt indexes cached as strings.
const SMALL_INTS: u32 = 64;

/// Every cached string, made at load: field names, event names, then the
/// numbers below `SMALL_INTS`.
pub fn names() -> impl Iterator<Item = String> {
    FIELD_NAMES
        .iter()
        .chain(Event::NAMES)
        .map(|s| s.to_string())
        .chain((0..SMALL_INTS).map(|n| n.to_string()))
}

/// A small number as a string, from the cache when it holds it.
fn small_int(ctx: &Context, n: u32) -> Field {
    let i = FIELD_NAMES.len() + Event::NAMES.len() + n as usize;
    match (n < SMALL_INTS).then(|| name_string(i)).flatten() {
        Some(s) => Field::borrowed(s),
        None => Field::uint(ctx, u64::from(n)),
    }
}

/// A field name, borrowed from the cache.
pub fn name(ctx: &Context, n: Name) -> Field {
    let i = n as usize;
    match name_string(i) {
        Some(s) => Field::borrowed(s),
        None => Field::copy(ctx, FIELD_NAMES.get(i).unwrap_or(&"").as_bytes()),
    }
}

fn event_name(ctx: &Context, ev: Event) -> Field {
    match name_string(FIELD_NAMES.len() + ev as usize) {
        Some(s) => Field::borrowed(s),
        None => Field::copy(ctx, ev.as_str().as_bytes()),
    }
}

// ---- the feed's settings -------------------------------------------------

/// The node's own feed settings.
fn node_settings() -> FeedSettings {
    FeedSettings {
        on: config::EVENTS.load(Ordering::Relaxed),
        maxlen: u64::try_from(config::EVENTS_MAXLEN.load(Ordering::Relaxed))
            .unwrap_or(1)
            .max(1),
        renewals: config::EVENTS_RENEWALS.load(Ordering::Relaxed),
    }
}

/// The `FEED` pin of the call being run (u64::MAX: none).
static PINNED: AtomicU64 = AtomicU64::new(u64::MAX);
/// Within a call (or a timer firing): whether it was replicated, once
/// asked (0 not asked, 1 no, 2 yes); outside one, always asked.
static ORIGIN: AtomicU8 = AtomicU8::new(0);
static SCOPED: AtomicBool = AtomicBool::new(false);

/// A call (or a timer firing) in progress, for the feed's settings; ends
/// when dropped.
pub struct Scope(());

/// Starts a call (or a timer firing, with no pin): its `FEED` pin.
pub fn scope(pin: Option<u64>) -> Scope {
    PINNED.store(pin.unwrap_or(u64::MAX), Ordering::Relaxed);
    ORIGIN.store(0, Ordering::Relaxed);
    SCOPED.store(true, Ordering::Relaxed);
    Scope(())
}

impl Drop for Scope {
    fn drop(&mut self) {
        PINNED.store(u64::MAX, Ordering::Relaxed);
        ORIGIN.store(0, Ordering::Relaxed);
        SCOPED.store(false, Ordering::Relaxed);
    }
}

/// Whether the running call came from the primary or the AOF, asked of
/// the server once per call (asking costs a flags lookup).
fn replayed(ctx: &Context) -> bool {
    match ORIGIN.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let r = replicated(ctx);
            if SCOPED.load(Ordering::Relaxed) {
                ORIGIN.store(if r { 2 } else { 1 }, Ordering::Relaxed);
            }
            r
        }
    }
}

/// The settings in effect: the call's pin; else the defaults for a call
/// the primary or the AOF sent (it pins any others); else the node's.
pub fn effective(ctx: &Context) -> FeedSettings {
    let pinned = PINNED.load(Ordering::Relaxed);
    if pinned != u64::MAX {
        return FeedSettings::from_code(pinned);
    }
    let node = node_settings();
    if node == FeedSettings::DEFAULT || replayed(ctx) {
        return FeedSettings::DEFAULT;
    }
    node
}

/// The `FEED` pin a replicated call carries: the settings in effect, when
/// they are not the defaults.
pub fn pin(ctx: &Context) -> Option<u64> {
    let e = effective(ctx);
    (e != FeedSettings::DEFAULT).then(|| e.code())
}

// ---- entries ---------------------------------------------------------------

/// After a transition of `e`: its event on the feed, and the frame that
/// closes (or marks suspended) its attempt's stream.
pub fn after_transition(ctx: &Context, idx: &mut PartitionIndex, e: &Execution, moved: &Moved) {
    let Some(ev) = moved.event else {
        return;
    };
    if let Some((attempt, reason)) = moved.closed {
        close_stream(ctx, e, attempt, reason);
    }
    if ev == Event::Suspended {
        mark_suspended(ctx, e);
    }
    raise(ctx, idx, e, ev, Vec::new());
}

/// Appends `ev` for `e` to its partition's feed with the event's own
/// fields after the common ones, and notifies keyspace subscribers.
pub fn raise(ctx: &Context, idx: &mut PartitionIndex, e: &Execution, ev: Event, extra: Vec<Field>) {
    node::count_event(ev);
    let cfg = effective(ctx);
    if !cfg.on || (ev == Event::Renewed && !cfg.renewals) {
        return;
    }
    let id = e.id.text();
    let id = Field::copy(ctx, id.as_bytes());
    notify(ctx, ev, &id);
    let key = events_key_string(e.id.partition)
        .map(Field::borrowed)
        .unwrap_or_else(|| Field::copy(ctx, events_key(e.id.partition).as_bytes()));
    // Every entry has the same five fields, so the stream stores their
    // names once per node of entries (its master entry), not per entry.
    // The event's time is its entry id (the transition's pinned time).
    let detail = match ev {
        Event::Claimed | Event::Reclaimed => e
            .current_attempt()
            .map(|a| Field::copy(ctx, a.worker.instance())),
        Event::Delayed | Event::RetryScheduled => e.delay_until().map(|t| Field::uint(ctx, t)),
        _ => None,
    };
    let mut f: SmallVec<[Field; 16]> = SmallVec::new();
    f.push(name(ctx, Name::Event));
    f.push(event_name(ctx, ev));
    f.push(name(ctx, Name::Id));
    f.push(id);
    f.push(name(ctx, Name::Lane));
    f.push(Field::copy(ctx, e.lane.as_bytes()));
    f.push(name(ctx, Name::Attempt));
    f.push(match e.current_attempt() {
        Some(a) => small_int(ctx, a.index),
        None => name(ctx, Name::Empty),
    });
    f.push(name(ctx, Name::Detail));
    f.push(detail.unwrap_or_else(|| name(ctx, Name::Empty)));
    f.extend(extra);
    // A failure the holder classified names its category.
    if let (Event::Failed | Event::RetryScheduled, Some(x)) = (ev, e.failure()) {
        if !x.category.is_empty() {
            f.push(name(ctx, Name::Category));
            f.push(Field::copy(ctx, &x.category));
        }
    }
    // A key of another type under the feed's name: the event is dropped
    // on every node alike (the transition itself stands).
    let _ = streams::add(
        ctx,
        &key,
        &f,
        Trim::To {
            maxlen: cfg.maxlen,
            min_ms: None,
        },
        e.last_mutation_at,
        Some(&mut idx.events_last),
    );
}

/// Raises `ev` when a step that leaves the state vector alone (renew,
/// progress, tags) succeeded; `extra` builds its own fields.
pub fn on_ok<T, E>(
    ctx: &Context,
    idx: &mut PartitionIndex,
    e: &Execution,
    ev: Event,
    r: &Result<T, E>,
    extra: impl FnOnce() -> Vec<Field>,
) {
    if r.is_ok() {
        raise(ctx, idx, e, ev, extra());
    }
}

/// A delivered signal's event: its outcome, signal id and waitpoint.
pub fn signal(
    ctx: &Context,
    idx: &mut PartitionIndex,
    e: &Execution,
    d: &Delivered,
    waitpoint: &Uuid,
) {
    let (outcome, signal) = match d {
        Delivered::Accepted { signal, effect, .. } => (
            match effect {
                Effect::Satisfied => SignalOutcome::Satisfied,
                Effect::Buffered => SignalOutcome::Buffered,
                _ => SignalOutcome::Accepted,
            },
            signal,
        ),
        Delivered::Duplicate(first) => (SignalOutcome::Duplicate, first),
    };
    let extra = vec![
        name(ctx, Name::Outcome),
        Field::copy(ctx, outcome.as_str().as_bytes()),
        name(ctx, Name::Signal),
        Field::copy(ctx, &signal.text()),
        name(ctx, Name::Waitpoint),
        Field::copy(ctx, &waitpoint.text()),
    ];
    raise(ctx, idx, e, Event::Signal, extra);
}

/// A module keyspace notification (`ff.<event>` on the execution id),
/// built only when the server has the module class enabled.
fn notify(ctx: &Context, ev: Event, id: &Field) {
    let module = raw::REDISMODULE_NOTIFY_MODULE;
    // SAFETY: function pointers the server filled in at load.
    let on = unsafe { raw::RedisModule_GetNotifyKeyspaceEvents.map_or(0, |f| f()) };
    if on & module == 0 {
        return;
    }
    // SAFETY: `ctx` is live; the name is NUL-terminated and `id` a live
    // string.
    if let Some(f) = unsafe { raw::RedisModule_NotifyKeyspaceEvent } {
        unsafe { f(ctx.ctx, module, ev.notification().as_ptr(), id.ptr()) };
    }
}

/// Writes the closing frame (`closed <reason> frames <n>`) of `attempt`.
fn close_stream(ctx: &Context, e: &Execution, attempt: u32, reason: CloseReason) {
    let frames = e.output(attempt).map_or(0, |o| o.frames);
    let fields = [
        name(ctx, Name::Closed),
        Field::copy(ctx, reason.as_str().as_bytes()),
        name(ctx, Name::Frames),
        Field::uint(ctx, frames),
    ];
    write_marker(ctx, e, attempt, &fields);
}

/// Writes `suspended <reason>` into the current attempt's open stream: the
/// attempt may resume and append again (a resumed claim continues it).
fn mark_suspended(ctx: &Context, e: &Execution) {
    let Some(a) = e.current_attempt() else {
        return;
    };
    if e.output(a.index).is_none_or(|o| o.closed.is_some()) {
        return;
    }
    let fields = [
        name(ctx, Name::Suspended),
        Field::copy(ctx, e.blocking.as_str().as_bytes()),
    ];
    write_marker(ctx, e, a.index, &fields);
}

fn write_marker(ctx: &Context, e: &Execution, attempt: u32, fields: &[Field]) {
    let key = Field::copy(ctx, stream_key(&e.id, attempt).as_bytes());
    let _ = streams::add(ctx, &key, fields, Trim::Keep, e.last_mutation_at, None);
}

/// Deletes the streams of a record being removed (retention).
pub fn drop_streams(ctx: &Context, e: &Execution) {
    for o in e.outputs() {
        let key = Field::copy(ctx, stream_key(&e.id, o.attempt).as_bytes());
        streams::delete(ctx, &key);
    }
}
