//! The execution domain's reads: FF.GET (the whole execution as
//! field/value pairs), FF.GETTAGS, FF.RESULT and FF.PAYLOAD.

use flowfabric_core::base::args::parse_exec_id;
use flowfabric_core::base::errors::{CmdError, CmdResult};
use flowfabric_core::base::ids::ExecId;
use flowfabric_core::execution::{Backoff, Execution};
use flowfabric_core::streams::keys::stream_key;

use crate::shell::call::Call;
use crate::shell::reply::{Pairs, Reply};
use crate::shell::{config, keys};

/// Runs `f` with the execution the call's one argument names.
fn read_exec(call: &Call, f: impl FnOnce(&Execution, &Reply)) -> CmdResult<()> {
    let [id] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = parse_exec_id(id, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, id.partition);
    let (_, e) = keys::exec_in(&mut key, &id)?;
    f(e, &Reply(call.ctx.ctx));
    Ok(())
}

pub fn get(call: &Call) -> CmdResult<()> {
    let [id] = call.args else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = parse_exec_id(id, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, id.partition);
    let p = key.partition()?.ok_or_else(keys::not_found)?;
    let flow = p.flow_of(id.uuid).map(|uuid| ExecId {
        partition: id.partition,
        uuid,
    });
    let e = p.get(id.uuid).ok_or_else(keys::not_found)?;
    reply_execution(&Reply(call.ctx.ctx), e, flow);
    Ok(())
}

pub fn result(call: &Call) -> CmdResult<()> {
    read_exec(call, |e, r| match &e.result {
        Some(b) => r.bulk(b),
        None => r.null(),
    })
}

pub fn payload(call: &Call) -> CmdResult<()> {
    read_exec(call, |e, r| r.bulk(&e.payload))
}

/// `FF.GETTAGS id [key ...]`: every tag, or the values of the keys asked.
pub fn get_tags(call: &Call) -> CmdResult<()> {
    let Some((id, wanted)) = call.args.split_first() else {
        return Err(CmdError::syntax("wrong number of arguments"));
    };
    let id = parse_exec_id(id, &config::limits())?;
    let mut key = keys::open_partition_read(call.ctx, id.partition);
    let (_, e) = keys::exec_in(&mut key, &id)?;
    let r = Reply(call.ctx.ctx);
    if wanted.is_empty() {
        r.map(e.tags().len());
        for (k, v) in e.tags() {
            r.bulk(k);
            r.bulk(v);
        }
    } else {
        r.array(wanted.len());
        for w in wanted {
            match e.tags().iter().find(|(k, _)| k.as_ref() == *w) {
                Some((_, v)) => r.bulk(v),
                None => r.null(),
            }
        }
    }
    Ok(())
}

/// FF.GET's reply.
const FIELDS: usize = 47;

fn reply_execution(r: &Reply, e: &Execution, flow: Option<ExecId>) {
    let attempt = e.current_attempt();
    let lease = e.lease.as_ref();
    let progress = e.extra.as_ref().and_then(|x| x.progress.as_ref());
    let p = Pairs::start(r, FIELDS);
    p.bulk("execution_id", e.id.key().as_bytes())
        .bulk("namespace", e.namespace())
        .bulk("lane", e.lane.as_bytes())
        .bulk("kind", e.kind())
        .uint("priority", u64::from(e.priority))
        .bulk("public_state", e.public.as_str().as_bytes())
        .bulk("lifecycle_phase", e.lifecycle.as_str().as_bytes())
        .bulk("ownership_state", e.ownership.as_str().as_bytes())
        .bulk("eligibility_state", e.eligibility.as_str().as_bytes())
        .bulk("blocking_reason", e.blocking.as_str().as_bytes())
        .bulk("blocking_detail", e.blocking_detail().as_bytes())
        .bulk("terminal_outcome", e.terminal.as_str().as_bytes())
        .bulk("attempt_state", e.attempt_state.as_str().as_bytes())
        .bulk("required_capabilities", e.caps.as_str().as_bytes())
        .bulk("retry_policy", retry_text(e).as_bytes())
        .uint("created_at", e.created_at)
        .opt_uint("started_at", e.started_at)
        .opt_uint("completed_at", e.completed_at)
        .uint("last_transition_at", e.last_transition_at)
        .uint("last_mutation_at", e.last_mutation_at)
        .opt_uint("delay_until", e.delay_until())
        .opt_uint("deadline_at", e.deadline_at())
        .uint("total_attempt_count", e.attempts.len() as u64)
        .uint("retry_count", u64::from(e.retry_count))
        .uint("replay_count", u64::from(e.replay_count))
        .uint("lease_reclaim_count", u64::from(e.reclaim_count))
        .opt_uint("current_attempt_index", attempt.map(|a| u64::from(a.index)))
        .bulk(
            "current_attempt_id",
            attempt
                .map(|a| a.attempt_id.to_string())
                .unwrap_or_default()
                .as_bytes(),
        )
        .bulk(
            "current_lease_id",
            lease
                .map(|l| l.lease_id.to_string())
                .unwrap_or_default()
                .as_bytes(),
        )
        .uint("current_lease_epoch", e.lease_epoch)
        .bulk(
            "stream_key",
            attempt
                .map(|a| stream_key(&e.id, a.index))
                .unwrap_or_default()
                .as_bytes(),
        )
        .uint(
            "frame_count",
            attempt
                .and_then(|a| e.output(a.index))
                .map_or(0, |o| o.frames),
        )
        .bulk(
            "current_worker_id",
            lease.and(attempt).map_or(&b""[..], |a| a.worker.id()),
        )
        .opt_uint("lease_expires_at", lease.map(|l| l.expires_at))
        .opt_uint("lease_last_renewed_at", lease.map(|l| l.last_renewed_at))
        .opt_uint("lease_renewal_deadline", lease.map(|l| l.renewal_deadline))
        .uint("payload_bytes", e.payload.len() as u64)
        .bulk("reason", e.reason().unwrap_or_default())
        .opt_uint("progress_pct", progress.map(|p| u64::from(p.pct)))
        .bulk(
            "progress_message",
            progress.map_or(&b""[..], |p| &p.message),
        );
    // The open suspension and its primary waitpoint, as the reference's
    // core fields name them.
    let open = e.waits().and_then(|w| w.open());
    let text =
        |u: Option<flowfabric_core::base::ids::Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    p.bulk("current_suspension_id", text(open.map(|s| s.id)).as_bytes())
        .bulk(
            "current_waitpoint_id",
            text(open.and_then(|s| s.waitpoints.first().copied())).as_bytes(),
        )
        .bulk(
            "flow_id",
            flow.map(|f| f.text().as_bytes().to_vec())
                .unwrap_or_default()
                .as_slice(),
        )
        // New flat fields go last, so the earlier ones keep their places.
        .bulk(
            "failure_category",
            e.failure().map_or(&b""[..], |f| &f.category),
        )
        .uint(
            "non_retryable",
            u64::from(e.failure().is_some_and(|f| f.non_retryable)),
        );
    let r = p.key("tags");
    r.map(e.tags().len());
    for (k, v) in e.tags() {
        r.bulk(k);
        r.bulk(v);
    }
    let r = p.key("attempts");
    r.array(e.attempts.len());
    for a in &e.attempts {
        Pairs::start(r, 9)
            .uint("attempt_index", u64::from(a.index))
            .bulk("attempt_id", a.attempt_id.to_string().as_bytes())
            .bulk("attempt_type", a.attempt_type.as_str().as_bytes())
            .bulk("attempt_state", a.state.as_str().as_bytes())
            .uint("started_at", a.started_at)
            .opt_uint("ended_at", a.ended_at)
            .uint("lease_epoch", a.lease_epoch)
            .bulk("worker_id", a.worker.id())
            .bulk("worker_instance_id", a.worker.instance());
    }
}

fn retry_text(e: &Execution) -> String {
    match e.retry() {
        None => String::new(),
        Some(r) => match r.backoff {
            Backoff::Fixed { delay_ms } => format!("max_retries={} backoff=fixed delay_ms={delay_ms}", r.max_retries),
            Backoff::Exponential { initial_ms, max_ms, multiplier_milli, jitter } => format!(
                "max_retries={} backoff=exponential initial_ms={initial_ms} max_ms={max_ms} multiplier={}.{:03} jitter={jitter}",
                r.max_retries,
                multiplier_milli / 1000,
                multiplier_milli % 1000
            ),
        },
    }
}
