//! The output stream's commands: FF.APPEND (the holder writes a frame),
//! FF.FRAMES (a range of an attempt's frames, optionally without the
//! best-effort ones) and FF.SUMMARY (the rolling summary). Tailing needs no
//! command: the stream is a real Valkey stream, read with XREAD BLOCK.

use flowfabric_core::base::errors::{CmdError, CmdResult};
use flowfabric_core::execution::requests::{parse_append, parse_frames, parse_summary, Append};
use flowfabric_core::partition::moves;
use flowfabric_core::streams::keys::stream_key;
use flowfabric_core::streams::Mode;
use smallvec::SmallVec;

use crate::shell::call::Call;
use crate::shell::effects::{env_for, pins, replicate_with, settle, Refusal};
use crate::shell::feed::{name, Name};
use crate::shell::node::now_ms;
use crate::shell::reply::Reply;
use crate::shell::streams::{self, Field, WriteError};
use crate::shell::{config, effects, keys};

fn write_error(e: WriteError) -> CmdError {
    match e {
        WriteError::WrongType => keys::wrongtype(),
        WriteError::Refused => CmdError::syntax("the server refused the stream entry"),
    }
}

/// The call's own argument string holding `part` (a slice of one of its
/// arguments), so the frame is written without copying it.
fn arg_of(call: &Call, part: &[u8]) -> Field {
    let at = call
        .args
        .iter()
        .position(|a| a.as_ptr() == part.as_ptr() && a.len() == part.len());
    match at.and_then(|i| call.argv.get(i)) {
        Some(&s) => Field::borrowed(s),
        None => Field::copy(call.ctx, part),
    }
}

/// The frame's fields: type and payload, then what the append named.
fn frame_fields(call: &Call, req: &Append, version: Option<u64>) -> SmallVec<[Field; 16]> {
    let ctx = call.ctx;
    let mut f = SmallVec::new();
    f.push(name(ctx, Name::Type));
    f.push(arg_of(call, req.frame_type));
    f.push(name(ctx, Name::Payload));
    f.push(arg_of(call, req.payload));
    if req.mode.mode != Mode::Durable {
        f.push(name(ctx, Name::Mode));
        f.push(Field::copy(ctx, req.mode.mode.as_str().as_bytes()));
    }
    for (n, v) in [
        (Name::Encoding, req.encoding),
        (Name::Correlation, req.correlation),
        (Name::Source, req.source),
    ] {
        if let Some(v) = v {
            f.push(name(ctx, n));
            f.push(arg_of(call, v));
        }
    }
    if let Some(v) = version {
        f.push(name(ctx, Name::Version));
        f.push(Field::uint(ctx, v));
    }
    f
}

/// `FF.APPEND`: replies the entry id, the attempt's frame count and the
/// summary's version (summary mode, else nil).
pub fn append(call: &Call) -> CmdResult<()> {
    let req = parse_append(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.id.partition);
    let (idx, e) = keys::exec_in(&mut key, &req.id)?;
    let stream = e
        .current_attempt()
        .map(|a| Field::copy(call.ctx, stream_key(&req.id, a.index).as_bytes()));
    // Refuse a stream name that holds another type before anything changes.
    if let Some(s) = &stream {
        streams::check_writable(call.ctx, s).map_err(write_error)?;
    }
    let env = env_for(call, now);
    let (r, moved) = moves::append(idx, e, &req, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    let mut p = pins(req.at, now, &[]);
    if r.is_err() {
        p = p.with_max_reclaims(&env);
    }
    settle(call.ctx, idx, e, moved);
    let written = match (&r, &stream) {
        (Ok((index, a)), Some(s)) => {
            let fields = frame_fields(call, &req, a.version);
            let last = e.output_mut(*index).map(|o| &mut o.last);
            streams::add(call.ctx, s, &fields, a.trim, now, last).map_err(write_error)
        }
        _ => Err(CmdError::syntax("no attempt to append to")),
    };
    if changed {
        replicate_with(call, c"FF.APPEND", &p);
        effects::drain_key(call.ctx, &mut key, &env);
    }
    let (_, appended) = r.map_err(|err| err.error())?;
    let entry = written?;
    let reply = Reply(call.ctx.ctx);
    reply.array(3);
    reply.bulk(entry.text().as_bytes());
    reply.uint(appended.frames);
    reply.opt_uint(appended.version);
    Ok(())
}

/// A best-effort frame (the filter of DURABLE_ONLY).
fn is_best_effort(fields: &[(Vec<u8>, Vec<u8>)]) -> bool {
    fields
        .iter()
        .any(|(f, v)| f == b"mode" && v == Mode::BestEffort.as_str().as_bytes())
}

/// `FF.FRAMES`: `[entries, frame count, closed reason or nil, closed at
/// or nil]`, entries shaped as XRANGE's.
pub fn frames(call: &Call) -> CmdResult<()> {
    let limits = config::limits();
    let parsed = parse_frames(call.args, &limits)?;
    let id = match &parsed {
        Some(r) => r.id,
        None => flowfabric_core::base::args::parse_exec_id(
            call.args.first().copied().unwrap_or_default(),
            &limits,
        )?,
    };
    let mut key = keys::open_partition_read(call.ctx, id.partition);
    let (_, e) = keys::exec_in(&mut key, &id)?;
    let attempt = parsed.map_or(0, |r| r.attempt);
    let out = e.output(attempt).cloned();
    drop(key);
    let entries = match parsed {
        Some(r) => {
            let name = Field::copy(call.ctx, stream_key(&id, r.attempt).as_bytes());
            let mut v =
                streams::read(call.ctx, &name, r.from, r.to, r.count).map_err(write_error)?;
            if r.durable_only {
                v.retain(|(_, f)| !is_best_effort(f));
            }
            v
        }
        None => Vec::new(),
    };
    let reply = Reply(call.ctx.ctx);
    reply.array(4);
    reply.array(entries.len());
    for (eid, fields) in &entries {
        reply.array(2);
        reply.bulk(eid.text().as_bytes());
        reply.array(fields.len() * 2);
        for (f, v) in fields {
            reply.bulk(f);
            reply.bulk(v);
        }
    }
    reply.uint(out.as_ref().map_or(0, |o| o.frames));
    match out.as_ref().and_then(|o| o.closed) {
        Some((at, reason)) => {
            reply.bulk(reason.as_str().as_bytes());
            reply.uint(at);
        }
        None => {
            reply.null();
            reply.null();
        }
    }
    Ok(())
}

/// `FF.SUMMARY`: `[document or nil, version, first applied at, last
/// updated at]`.
pub fn summary(call: &Call) -> CmdResult<()> {
    let (id, attempt) = parse_summary(call.args, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, id.partition);
    let (_, e) = keys::exec_in(&mut key, &id)?;
    let s = e.output(attempt).and_then(|o| o.summary.as_deref());
    let reply = Reply(call.ctx.ctx);
    reply.array(4);
    match s {
        Some(s) => {
            reply.bulk(s.doc.as_bytes());
            reply.uint(s.version);
            reply.uint(s.first_at);
            reply.uint(s.last_at);
        }
        None => {
            reply.null();
            reply.uint(0);
            reply.null();
            reply.null();
        }
    }
    Ok(())
}
