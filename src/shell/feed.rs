//! The event feed and the frames a transition leaves in output streams:
//! after every transition (command, timer, hand-off) the event it raised
//! goes to its partition's events stream (`ff:events:{fp:N}`, capped at
//! `flowfabric.events-maxlen`) and out as a module keyspace notification;
//! an attempt that ended gets a closing frame in its stream, and one that
//! suspended a marker, so blocked readers wake at once. Only the node that
//! made the transition writes (see `streams`).

use std::sync::atomic::Ordering;

use flowfabric_core::base::ids::Uuid;
use flowfabric_core::execution::suspend::Delivered;
use flowfabric_core::execution::Execution;
use flowfabric_core::partition::Moved;
use flowfabric_core::streams::keys::stream_key;
use flowfabric_core::streams::{CloseReason, Event, SignalOutcome, Trim};
use flowfabric_core::suspension::Effect;
use redis_module::{raw, Context};

use crate::shell::config;
use crate::shell::node::{events_key_string, name_string};
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
    At => "at",
    Worker => "worker",
    Until => "until",
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
}

/// Every cached string, field names then event names, made at load.
pub fn names() -> impl Iterator<Item = &'static str> {
    FIELD_NAMES.iter().chain(Event::NAMES).copied()
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

/// After a transition of `e`: its event on the feed, and the frame that
/// closes (or marks suspended) its attempt's stream.
pub fn after_transition(ctx: &Context, e: &Execution, moved: &Moved) {
    if moved.event.is_none() || !streams::writes_entries(ctx) {
        return;
    }
    if let Some((attempt, reason)) = moved.closed {
        close_stream(ctx, e, attempt, reason);
    }
    if let Some(ev) = moved.event {
        if ev == Event::Suspended {
            mark_suspended(ctx, e);
        }
        raise(ctx, e, ev, Vec::new());
    }
}

/// Appends `ev` for `e` to its partition's feed with the event's own
/// fields after the common ones, and notifies keyspace subscribers.
pub fn raise(ctx: &Context, e: &Execution, ev: Event, extra: Vec<Field>) {
    if !config::EVENTS.load(Ordering::Relaxed)
        || (ev == Event::Renewed && !config::EVENTS_RENEWALS.load(Ordering::Relaxed))
        || !streams::writes_entries(ctx)
    {
        return;
    }
    let id = e.id.text();
    let id = Field::copy(ctx, id.as_bytes());
    notify(ctx, ev, &id);
    let Some(key) = events_key_string(e.id.partition)
        .map(Field::borrowed)
        .or_else(|| {
            let k = flowfabric_core::streams::keys::events_key(e.id.partition);
            Some(Field::copy(ctx, k.as_bytes()))
        })
    else {
        return;
    };
    let mut f: Vec<Field> = Vec::with_capacity(12 + extra.len());
    f.push(name(ctx, Name::Event));
    f.push(event_name(ctx, ev));
    f.push(name(ctx, Name::Id));
    f.push(id);
    f.push(name(ctx, Name::Lane));
    f.push(Field::copy(ctx, e.lane.as_bytes()));
    if let Some(a) = e.current_attempt() {
        f.push(name(ctx, Name::Attempt));
        f.push(Field::uint(ctx, u64::from(a.index)));
    }
    f.push(name(ctx, Name::At));
    f.push(Field::uint(ctx, e.last_mutation_at));
    match ev {
        Event::Claimed | Event::Reclaimed => {
            if let Some(a) = e.current_attempt() {
                f.push(name(ctx, Name::Worker));
                f.push(Field::copy(ctx, a.worker.instance()));
            }
        }
        Event::Delayed | Event::RetryScheduled => {
            if let Some(t) = e.delay_until() {
                f.push(name(ctx, Name::Until));
                f.push(Field::uint(ctx, t));
            }
        }
        _ => {}
    }
    f.extend(extra);
    let maxlen = u64::try_from(config::EVENTS_MAXLEN.load(Ordering::Relaxed)).unwrap_or(1);
    // A key of another type under the feed's name: the event is dropped
    // (the transition itself stands).
    let _ = streams::add(
        ctx,
        &key,
        &f,
        Trim::To {
            maxlen,
            min_ms: None,
        },
    );
}

/// Raises `ev` when a step that leaves the state vector alone (renew,
/// progress, tags) succeeded; `extra` builds its own fields.
pub fn on_ok<T, E>(
    ctx: &Context,
    e: &Execution,
    ev: Event,
    r: &Result<T, E>,
    extra: impl FnOnce() -> Vec<Field>,
) {
    if r.is_ok() {
        raise(ctx, e, ev, extra());
    }
}

/// A delivered signal's event: its outcome, signal id and waitpoint.
pub fn signal(ctx: &Context, e: &Execution, d: &Delivered, waitpoint: &Uuid) {
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
    raise(ctx, e, Event::Signal, extra);
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
    let _ = streams::add(ctx, &key, fields, Trim::Keep);
}

/// Deletes the streams of a record being removed (retention).
pub fn drop_streams(ctx: &Context, e: &Execution) {
    if e.outputs().is_empty() || !streams::writes_entries(ctx) {
        return;
    }
    for o in e.outputs() {
        let key = Field::copy(ctx, stream_key(&e.id, o.attempt).as_bytes());
        streams::delete(ctx, &key);
    }
}
