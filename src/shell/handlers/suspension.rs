//! The suspension domain's commands: FF.SUSPEND parks an attempt on
//! waitpoints, FF.WAITPOINT makes a pending one, FF.SIGNAL (with a token)
//! and FF.APPROVE (an operator's) deliver signals, FF.WAKE resumes by
//! hand, FF.CLOSEWP closes a waitpoint; the reads FF.WPTOKEN,
//! FF.WAITPOINTS, FF.SIGNALS, FF.SUSPENDED; and the node's token keys,
//! FF.ROTATESECRET and FF.SECRETS.
//!
//! Tokens are checked (and minted) by the primary only: a replicated or
//! loaded call carries what the primary decided (its ids and clock), so a
//! replica reaches the same state whatever keys it holds.

use flowfabric_core::base::errors::{CmdError, CmdResult, Code, Refused};
use flowfabric_core::base::ids::{ExecId, Uuid};
use flowfabric_core::base::state::PublicState;
use flowfabric_core::execution::requests::{
    parse_create_waitpoint, parse_deliver, parse_rotate, parse_suspend, parse_waitpoint_ref,
    parse_wake,
};
use flowfabric_core::execution::suspend::Delivered;
use flowfabric_core::partition::moves;
use flowfabric_core::partition::requests::parse_list;
use flowfabric_core::partition::Filter;
use flowfabric_core::suspension::token::message;
use flowfabric_core::suspension::{Rotated, WaitError, WaitpointState, Waits};

use crate::shell::call::{replicated, Call};
use std::ffi::CStr;

use flowfabric_core::partition::Env;

use crate::shell::effects::{env_for, pins, replicate_minted, settle, transition_cmd, Refusal};
use crate::shell::node::{now_ms, with_keyring, with_minter, with_token_keys};
use crate::shell::reply::{Pairs, Reply};
use crate::shell::{config, effects, feed, keys};

fn no_secret() -> CmdError {
    WaitError::Token(flowfabric_core::suspension::token::TokenError::NotInitialized).into()
}

/// A primary mints tokens only with a key: it refuses before changing
/// anything (a replica replays what the primary decided).
fn secret_ready(call: &Call) -> CmdResult<()> {
    if !replicated(call.ctx) && with_token_keys(|k| k.current().is_none()) {
        return Err(no_secret());
    }
    Ok(())
}

/// The token of waitpoint `wp` under the current key (empty when there
/// is none: only a replica's discarded reply).
fn token(id: &ExecId, wp: &Uuid, created_at: u64) -> Vec<u8> {
    let msg = message(id, *wp, created_at);
    with_token_keys(|k| k.mint(&msg))
        .map(String::into_bytes)
        .unwrap_or_default()
}

/// Replicates the call with what the primary decided: a minted id
/// (`name uuid`) unless the call named one, then `AT now` unless the call
/// carried its time, then the reclaim limit when the step consulted it.
fn replicate_decided(
    call: &Call,
    name: &CStr,
    minted: Option<(&CStr, Uuid)>,
    at: Option<u64>,
    now: u64,
    env: Option<&Env>,
) {
    let mut p = pins(at, now, &[]);
    if let Some(env) = env {
        p = p.with_max_reclaims(env);
    }
    let text = minted.map(|(k, id)| (k, id.text()));
    replicate_minted(call, name, text.as_ref().map(|(k, t)| (*k, &t[..])), &p);
}

/// `FF.SUSPEND`.
pub fn suspend(call: &Call) -> CmdResult<()> {
    let req = parse_suspend(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    secret_ready(call)?;
    let sid = req
        .suspension_id
        .unwrap_or_else(|| with_minter(|m| m.uuid()));
    let mut key = keys::open_partition(call.ctx, req.id.partition);
    let (idx, e) = keys::exec_in(&mut key, &req.id)?;
    let env = env_for(call, now);
    let (r, moved) = moves::suspend(idx, e, &req, sid, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |s| !s.replayed);
    settle(call.ctx, idx, e, moved);
    if changed {
        let minted = req
            .suspension_id
            .is_none()
            .then_some((c"SUSPENSION_ID", sid));
        replicate_decided(call, c"FF.SUSPEND", minted, req.at, now, Some(&env));
        effects::drain_key(call.ctx, &mut key, &env);
    }
    let s = r.map_err(|e| e.error())?;
    let reply = Reply(call.ctx.ctx);
    reply.array(3);
    reply.bulk(if s.already_satisfied {
        b"already_satisfied"
    } else {
        b"suspended"
    });
    reply.bulk(&s.suspension.text());
    reply.array(s.waitpoints.len());
    for (wp, k, created) in &s.waitpoints {
        reply.array(3);
        reply.bulk(&wp.text());
        reply.bulk(k);
        reply.bulk(&token(&req.id, wp, *created));
    }
    Ok(())
}

/// `FF.WAITPOINT`: a pending waitpoint and its token.
pub fn create_waitpoint(call: &Call) -> CmdResult<()> {
    let req = parse_create_waitpoint(call.args, &config::limits(), call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    secret_ready(call)?;
    let wid = req
        .waitpoint_id
        .unwrap_or_else(|| with_minter(|m| m.uuid()));
    let mut key = keys::open_partition(call.ctx, req.id.partition);
    let (idx, e) = keys::exec_in(&mut key, &req.id)?;
    let env = env_for(call, now);
    let (r, moved) = moves::create_waitpoint(idx, e, &req, wid, &env);
    let changed = r.as_ref().map_or_else(Refusal::changed, |_| true);
    settle(call.ctx, idx, e, moved);
    if changed {
        let minted = req.waitpoint_id.is_none().then_some((c"WAITPOINT_ID", wid));
        replicate_decided(call, c"FF.WAITPOINT", minted, req.at, now, Some(&env));
        effects::drain_key(call.ctx, &mut key, &env);
    }
    let (wp, k, created) = r.map_err(|e| e.error())?;
    let reply = Reply(call.ctx.ctx);
    reply.array(3);
    reply.bulk(&wp.text());
    reply.bulk(&k);
    reply.bulk(&token(&req.id, &wp, created));
    Ok(())
}

/// `FF.SIGNAL` (with a token) and `FF.APPROVE` (an operator's, without).
fn deliver(call: &Call, approval: bool) -> CmdResult<()> {
    let req = parse_deliver(call.args, &config::limits(), call.origin(), approval)?;
    let now = req.at.unwrap_or_else(now_ms);
    let mut key = keys::open_partition(call.ctx, req.id.partition);
    let (idx, e) = keys::exec_in(&mut key, &req.id)?;
    let wp = e.waits().and_then(|w| w.waitpoint(req.waitpoint));
    match (&req.token, wp) {
        // The primary checks the token first (replicated calls carry its
        // verdict).
        (Some(t), wp) if !replicated(call.ctx) => {
            let msg = wp.map(|w| message(&req.id, w.id, w.created_at));
            with_token_keys(|k| k.verify_for(t, msg.as_ref().map(|m| &m[..]), now))
                .map_err(WaitError::Token)?;
        }
        (None, None) => return Err(WaitError::WaitpointNotFound.into()),
        _ => {}
    }
    if let Some(lane) = &req.lane {
        if lane.as_ref() != e.lane.as_bytes() {
            return Err(CmdError::new(
                Code::LaneMismatch,
                format!("lane_mismatch: the execution's lane is {}", e.lane),
            ));
        }
    }
    let signal_id = req
        .signal
        .signal_id
        .unwrap_or_else(|| with_minter(|m| m.uuid()));
    let env = env_for(call, now);
    let (r, moved) = moves::deliver(idx, e, req.waitpoint, &req.signal, signal_id, &env);
    if let Ok(d) = &r {
        feed::signal(call.ctx, idx, e, d, &req.waitpoint);
    }
    settle(call.ctx, idx, e, moved);
    // A duplicate changes nothing but its event: replicated too, so
    // replicas and the AOF raise it as well.
    if r.is_ok() {
        let minted = req
            .signal
            .signal_id
            .is_none()
            .then_some((c"SIGNAL_ID", signal_id));
        let name = if approval {
            c"FF.APPROVE"
        } else {
            c"FF.SIGNAL"
        };
        replicate_decided(call, name, minted, req.at, now, None);
        effects::drain_key(call.ctx, &mut key, &env);
    }
    let delivered = r.map_err(|e| e.error())?;
    let reply = Reply(call.ctx.ctx);
    reply.array(2);
    match delivered {
        Delivered::Accepted { signal, effect, .. } => {
            reply.bulk(&signal.text());
            reply.bulk(effect.as_str().as_bytes());
        }
        Delivered::Duplicate(first) => {
            reply.bulk(&first.text());
            reply.bulk(b"duplicate");
        }
    }
    Ok(())
}

pub fn signal(call: &Call) -> CmdResult<()> {
    deliver(call, false)
}

pub fn approve(call: &Call) -> CmdResult<()> {
    deliver(call, true)
}

/// `FF.WAKE`: an operator's resume.
pub fn wake(call: &Call) -> CmdResult<()> {
    let req = parse_wake(call.args, &config::limits(), call.origin())?;
    let state = transition_cmd(call, c"FF.WAKE", &req.id, req.at, false, |idx, e, env| {
        moves::wake(idx, e, req.resume_delay_ms, env)
    })?;
    Reply(call.ctx.ctx).bulk(state.as_str().as_bytes());
    Ok(())
}

/// `FF.CLOSEWP`.
pub fn close_waitpoint(call: &Call) -> CmdResult<()> {
    let req = parse_waitpoint_ref(call.args, &config::limits(), call.origin())?;
    let closed = transition_cmd(
        call,
        c"FF.CLOSEWP",
        &req.id,
        req.at,
        false,
        |idx, e, env| moves::close_waitpoint(idx, e, req.waitpoint, env),
    )?;
    Reply(call.ctx.ctx).bulk(if closed { b"closed" } else { b"already_closed" });
    Ok(())
}

/// `FF.WPTOKEN`: an open waitpoint's token under the current key.
pub fn waitpoint_token(call: &Call) -> CmdResult<()> {
    let req = parse_waitpoint_ref(call.args, &config::limits(), call.origin())?;
    let mut key = keys::open_partition_read(call.ctx, req.id.partition);
    let (_, e) = keys::exec_in(&mut key, &req.id)?;
    let r = Reply(call.ctx.ctx);
    let open = e
        .waits()
        .and_then(|w| w.waitpoint(req.waitpoint))
        .filter(|w| w.state != WaitpointState::Closed);
    match open {
        None => r.null(),
        Some(w) => {
            if with_token_keys(|k| k.current().is_none()) {
                return Err(no_secret());
            }
            r.bulk(&token(&req.id, &w.id, w.created_at));
        }
    }
    Ok(())
}

fn read_waits(call: &Call, f: impl FnOnce(&ExecId, &Waits, &Reply)) -> CmdResult<()> {
    let Some(first) = call.args.first() else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = flowfabric_core::base::args::parse_exec_id(first, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, id.partition);
    let (_, e) = keys::exec_in(&mut key, &id)?;
    let empty = Waits::default();
    f(&id, e.waits().unwrap_or(&empty), &Reply(call.ctx.ctx));
    Ok(())
}

/// `FF.WAITPOINTS`: the execution's waitpoints, without their tokens.
pub fn waitpoints(call: &Call) -> CmdResult<()> {
    if call.args.len() != 1 {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    read_waits(call, |id, w, r| {
        let current = w.open().map(|s| s.waitpoints.clone()).unwrap_or_default();
        r.array(w.waitpoints.len());
        for p in &w.waitpoints {
            let p2 = Pairs::start(r, 11);
            p2.bulk("waitpoint_id", &p.id.text())
                .bulk("waitpoint_key", &p.key)
                .bulk("state", p.state.as_str().as_bytes())
                .uint("created_at", p.created_at)
                .opt_uint("activated_at", p.activated_at)
                .opt_uint("expires_at", p.expires_at)
                .opt_uint("closed_at", p.closed.map(|c| c.0));
            match p.closed {
                Some((_, reason)) => p2.bulk("close_reason", reason.as_str().as_bytes()),
                None => p2.bulk("close_reason", b""),
            };
            p2.uint("current", u64::from(current.contains(&p.id)));
            let msg = message(id, p.id, p.created_at);
            let kid = with_token_keys(|k| {
                k.current()
                    .map(|c| (c.kid.to_string(), k.mint(&msg).unwrap_or_default()))
            });
            match kid {
                Some((kid, tok)) => {
                    let fp = tok
                        .rsplit(':')
                        .next()
                        .unwrap_or("")
                        .get(..16)
                        .unwrap_or("")
                        .to_string();
                    p2.bulk("token_kid", kid.as_bytes());
                    p2.bulk("token_fingerprint", fp.as_bytes());
                }
                None => {
                    p2.key("token_kid").null();
                    p2.key("token_fingerprint").null();
                }
            }
        }
    })
}

/// `FF.SIGNALS id [ALL]`: the signals that satisfied the last suspension,
/// or every signal kept.
pub fn signals(call: &Call) -> CmdResult<()> {
    let all = match call.args {
        [_] => false,
        [_, a] if a.eq_ignore_ascii_case(b"ALL") => true,
        _ => return Err(CmdError::syntax("FF.SIGNALS id [ALL]")),
    };
    read_waits(call, |_, w, r| {
        let list: Vec<_> = if all {
            w.signals.iter().collect()
        } else {
            w.satisfiers()
        };
        r.array(list.len());
        for g in list {
            let p = Pairs::start(r, 10);
            p.bulk("signal_id", &g.id.text())
                .bulk("waitpoint_id", &g.waitpoint.text())
                .bulk("signal_name", &g.name)
                .bulk("signal_category", &g.category)
                .bulk("source_type", &g.source_type)
                .bulk("source_identity", &g.source_identity)
                .bulk("correlation_id", &g.correlation);
            match &g.payload {
                Some(b) => p.bulk("payload", b),
                None => {
                    p.key("payload").null();
                    &p
                }
            };
            p.uint("accepted_at", g.accepted_at)
                .bulk("effect", g.effect.as_str().as_bytes());
        }
    })
}

/// `FF.SUSPENDED {fp:N} [CURSOR c] [COUNT n]`: suspended executions, a
/// page at a time, with when and why they suspended.
pub fn suspended(call: &Call) -> CmdResult<()> {
    let l = parse_list(call.args, &config::limits())?;
    if l.listing.filter.is_filtered() {
        return Err(CmdError::syntax("FF.SUSPENDED takes CURSOR and COUNT only"));
    }
    let mut key = keys::open_partition_read(call.ctx, l.partition);
    let r = Reply(call.ctx.ctx);
    let Some(p) = key.partition()? else {
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return Ok(());
    };
    let suspended = Filter {
        state: Some(PublicState::Suspended),
        ..Filter::default()
    };
    let (ids, next) = p.list(&suspended, l.listing.cursor, l.listing.count);
    r.array(2);
    r.bulk(next.unwrap_or(0).to_string().as_bytes());
    r.array(ids.len());
    for uuid in ids {
        let id = ExecId {
            partition: l.partition,
            uuid,
        };
        let s = p.get(uuid).and_then(|e| e.waits()).and_then(Waits::open);
        r.array(4);
        r.bulk(id.text().as_bytes());
        r.opt_uint(s.map(|s| s.created_at));
        match s {
            Some(s) => r.bulk(&s.reason),
            None => r.null(),
        }
        r.opt_uint(s.and_then(|s| s.timeout_at));
    }
    Ok(())
}

/// `FF.ROTATESECRET kid hex [GRACE ms]`.
pub fn rotate_secret(call: &Call) -> CmdResult<()> {
    let req = parse_rotate(call.args, call.origin())?;
    let now = req.at.unwrap_or_else(now_ms);
    let out = with_keyring(|k| k.rotate(&req.kid, &req.secret_hex, req.grace_ms, now))
        .map_err(|e| CmdError::new(e.code(), e.message()))?;
    let r = Reply(call.ctx.ctx);
    match out {
        Rotated::Noop => {
            r.array(2);
            r.bulk(b"noop");
            r.bulk(&req.kid);
        }
        Rotated::Rotated { previous, removed } => {
            replicate_decided(call, c"FF.ROTATESECRET", None, req.at, now, None);
            r.array(4);
            r.bulk(b"rotated");
            r.bulk(previous.as_deref().unwrap_or("").as_bytes());
            r.bulk(&req.kid);
            r.uint(removed as u64);
        }
    }
    Ok(())
}

/// `FF.SECRETS`: the current kid and the kids in grace (never secrets).
pub fn secrets(call: &Call) -> CmdResult<()> {
    if !call.args.is_empty() {
        return Err(CmdError::syntax("wrong number of arguments"));
    }
    let now = now_ms();
    let (current, grace) = with_token_keys(|k| {
        let (c, g) = k.list(now);
        (
            c.map(str::to_string),
            g.into_iter()
                .map(|(k, e)| (k.to_string(), e))
                .collect::<Vec<_>>(),
        )
    });
    let r = Reply(call.ctx.ctx);
    r.array(2);
    match current {
        Some(c) => r.bulk(c.as_bytes()),
        None => r.null(),
    }
    r.array(grace.len());
    for (kid, exp) in grace {
        r.array(2);
        r.bulk(kid.as_bytes());
        r.uint(exp);
    }
    Ok(())
}
