//! One batch of the node timer on one partition: what the primary's firing
//! does and replicates as `FF.DUE`, and what a replica or the AOF replays
//! from it, exactly the same steps given the same state and pinned values.

use std::os::raw::c_int;
use std::time::Instant;

use flowfabric_core::base::ids::index_key;
use flowfabric_core::partition::moves::on_due;
use flowfabric_core::partition::requests::DueBatch;
use flowfabric_core::partition::{DueEffect, Env};
use redis_module::{raw, Context};

use crate::shell::node::is_importing;
use std::ffi::CStr;

use crate::shell::effects::replicate_pinned;
use crate::shell::{effects, feed, keys, schedule};

/// Handles up to `b.count` due entries of one partition at time `b.at`.
///
/// The primary also passes the time its firing must end by; it stops early
/// then and replicates the count it actually handled.
pub fn run(ctx: &Context, db: c_int, b: &DueBatch, until: Option<Instant>) -> Ran {
    if until.is_some() && is_importing(b.partition) {
        // The source's timer runs an importing partition (its batches reach
        // this node as FF.DUE, with no deadline).
        schedule::forget(db, b.partition);
        return Ran {
            n: 0,
            flows_moved: false,
        };
    }
    let mut key = keys::open_partition(ctx, b.partition);
    let Ok(Some(part)) = key.partition() else {
        schedule::forget(db, b.partition);
        return Ran {
            n: 0,
            flows_moved: false,
        };
    };
    let env = Env {
        now: b.at,
        retention_ms: b.retention_ms,
        max_reclaims: b.max_reclaims,
    };
    let mut n = 0;
    while n < b.count {
        // The clock is read before every entry (about 20 ns): an entry
        // costs about a microsecond, but many times that when its pages are
        // copied on write under a background save's or rewrite's fork.
        if until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let Some((kind, _, uuid)) = part.index.pop_due(b.at, b.retention_ms) else {
            break;
        };
        n += 1;
        let Some((idx, e)) = part.record_mut(uuid) else {
            continue;
        };
        match on_due(idx, e, kind, &env) {
            DueEffect::Nothing => {}
            DueEffect::Changed(moved) => effects::after_move(ctx, db, idx, e, moved),
            DueEffect::Remove => {
                let mut on_move =
                    |idx: &mut _, e: &_, moved| effects::after_move(ctx, db, idx, e, moved);
                if let Some(gone) = part.remove_finished(uuid, &env, &mut on_move) {
                    feed::drop_streams(ctx, &gone);
                }
            }
        }
    }
    // The rest of the batch goes to flow work left over (the primary
    // stops at its time bound; the count it replicates covers both).
    // (Members the batch moved that a flow holds or releases are settled
    // even with no count left.)
    let mut stop = || until.is_some_and(|t| Instant::now() >= t);
    let mut flows_moved = false;
    n += part.run_flow_work(&env, b.count - n, &mut stop, &mut |idx, e, moved| {
        flows_moved = true;
        effects::after_move(ctx, db, idx, e, moved)
    });
    schedule::note_due(ctx, db, &part.index);
    Ran { n, flows_moved }
}

/// What a batch did: the count it handled (due entries and flow work
/// units, what a replica is told), and whether flow work moved a record,
/// which with a count of 0 (members settled outside the budget) must be
/// replicated all the same.
pub struct Ran {
    pub n: usize,
    pub flows_moved: bool,
}

impl Ran {
    pub fn changed(&self) -> bool {
        self.n > 0 || self.flows_moved
    }
}

/// Replicates a batch the primary ran, its partition named by key so the
/// command carries the partition's slot.
pub fn replicate(ctx: &Context, b: &DueBatch) {
    // SAFETY: a function pointer the server filled in at load.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let v = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    let key = index_key(b.partition);
    let feed = effects::feed_pin(ctx);
    let pins: &[(&CStr, u64)] = feed.as_ref().map_or(&[], |p| &p[..]);
    let (ctx, name) = (ctx.ctx, c"FF.DUE".as_ptr());
    replicate_pinned!(
        f,
        ctx,
        name,
        pins,
        "bllll",
        key.as_ptr(),
        key.len(),
        v(b.at),
        v(b.count as u64),
        v(b.retention_ms),
        i64::from(b.max_reclaims)
    );
}
