//! The command table: each command's spec file (`commands/<name>.json`),
//! its handler, and the error codes the handler can reply with (a test
//! holds each spec's `errors` to them). `registration` turns it into the
//! server's commands.

use flowfabric_core::base::errors::Code;
use redis_module::raw;
use std::os::raw::c_int;

use crate::shell::dispatch;
use crate::shell::handlers::{
    claims, dead_letter, execution, execution_reads, flows, node, partition, streams, suspension,
    workers,
};

/// The server's entry point of a command.
pub type RawCommand = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *mut *mut raw::RedisModuleString,
    c_int,
) -> c_int;

/// A command: its spec, its entry point, and the error codes its handler
/// can reply with (a test holds the spec's `errors` to them).
pub struct CommandEntry {
    pub json: &'static str,
    pub func: RawCommand,
    pub errors: &'static [&'static [Code]],
}

macro_rules! entry {
    ($file:literal, $handler:path, $errors:expr) => {{
        unsafe extern "C" fn wrapper(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            // SAFETY: the server calls with its argument vector.
            unsafe { dispatch::command(ctx, argv, argc, $handler) }
        }
        CommandEntry {
            json: include_str!(concat!("../../commands/", $file)),
            func: wrapper,
            errors: $errors,
        }
    }};
}

use Code as C;

/// What opening an execution can reply: no such execution, or its
/// partition key holds another type.
const OPEN: &[Code] = &[C::Err, C::ExecutionNotFound, C::WrongType];
/// What a write naming a flow can reply: malformed, not there, cancelled,
/// an execution outside its partition.
const FLOW: &[Code] = &[
    C::Err,
    C::WrongType,
    C::FlowNotFound,
    C::FlowAlreadyTerminal,
    C::PartitionMismatch,
];
/// What a holder's fenced call can reply besides `OPEN`.
pub(crate) const FENCE: &[Code] = &[
    C::ExecutionNotActive,
    C::LeaseRevoked,
    C::LeaseExpired,
    C::StaleLease,
];

pub static COMMANDS: &[CommandEntry] = &[
    entry!(
        "ff.submit.json",
        execution::submit,
        &[
            &[
                C::Err,
                C::InvalidCapabilities,
                C::WrongType,
                C::PartitionMismatch
            ],
            &[
                C::FlowNotFound,
                C::FlowAlreadyTerminal,
                C::FlowLimitExceeded,
                C::ExecutionNotInFlow,
                C::SelfReferencingEdge,
                C::DependencyAlreadyExists,
                C::InvalidInput
            ]
        ]
    ),
    entry!(
        "ff.claim.json",
        claims::claim,
        &[&[C::Err, C::InvalidCapabilities, C::Unblocked]]
    ),
    entry!("ff.renew.json", execution::renew, &[OPEN, FENCE]),
    entry!("ff.complete.json", execution::complete, &[OPEN, FENCE]),
    entry!("ff.fail.json", execution::fail, &[OPEN, FENCE]),
    entry!("ff.cancel.json", execution::cancel, &[OPEN, FENCE]),
    entry!("ff.delay.json", execution::delay, &[OPEN, FENCE]),
    entry!(
        "ff.revoke.json",
        execution::revoke,
        &[OPEN, &[C::NoActiveLease, C::StaleLease]]
    ),
    entry!(
        "ff.waitchildren.json",
        execution::wait_children,
        &[OPEN, FENCE]
    ),
    entry!(
        "ff.priority.json",
        execution::priority,
        &[OPEN, &[C::ExecutionNotEligible]]
    ),
    entry!("ff.progress.json", execution::progress, &[OPEN, FENCE]),
    entry!(
        "ff.settags.json",
        execution::set_tags,
        &[OPEN, &[C::InvalidTagKey, C::InvalidInput]]
    ),
    entry!("ff.gettags.json", execution_reads::get_tags, &[OPEN]),
    entry!(
        "ff.replay.json",
        execution::replay,
        &[OPEN, &[C::ExecutionNotTerminal, C::MaxReplaysExhausted]]
    ),
    entry!(
        "ff.block.json",
        execution::block,
        &[OPEN, &[C::ExecutionNotEligible]]
    ),
    entry!(
        "ff.unblock.json",
        execution::unblock,
        &[OPEN, &[C::ExecutionNotBlocked]]
    ),
    entry!(
        "ff.suspend.json",
        suspension::suspend,
        &[
            OPEN,
            FENCE,
            &[
                C::InvalidInput,
                C::InvalidResumeCondition,
                C::WaitpointNotFound,
                C::WaitpointNotPending,
                C::PendingWaitpointExpired,
                C::InvalidWaitpointForExecution,
                C::WaitpointKeyMismatch,
                C::WaitpointAlreadyExists,
                C::TimeoutOnlyWithoutDeadline,
                C::TimeoutAtInPast,
                C::HmacSecretNotInitialized
            ]
        ]
    ),
    entry!(
        "ff.waitpoint.json",
        suspension::create_waitpoint,
        &[
            OPEN,
            FENCE,
            &[
                C::InvalidInput,
                C::WaitpointAlreadyExists,
                C::PendingWaitpointExpired,
                C::HmacSecretNotInitialized
            ]
        ]
    ),
    entry!(
        "ff.signal.json",
        suspension::signal,
        &[
            OPEN,
            &[
                C::MissingToken,
                C::InvalidToken,
                C::TokenExpired,
                C::HmacSecretNotInitialized,
                C::TargetNotSignalable,
                C::WaitpointClosed,
                C::SignalLimitExceeded,
                C::PayloadTooLarge
            ]
        ]
    ),
    entry!(
        "ff.approve.json",
        suspension::approve,
        &[
            OPEN,
            &[
                C::WaitpointNotFound,
                C::LaneMismatch,
                C::TargetNotSignalable,
                C::WaitpointClosed,
                C::SignalLimitExceeded
            ]
        ]
    ),
    entry!(
        "ff.wake.json",
        suspension::wake,
        &[OPEN, &[C::ExecutionNotSuspended]]
    ),
    entry!(
        "ff.closewp.json",
        suspension::close_waitpoint,
        &[OPEN, &[C::WaitpointNotFound]]
    ),
    entry!(
        "ff.wptoken.json",
        suspension::waitpoint_token,
        &[OPEN, &[C::HmacSecretNotInitialized]]
    ),
    entry!("ff.waitpoints.json", suspension::waitpoints, &[OPEN]),
    entry!("ff.signals.json", suspension::signals, &[OPEN]),
    entry!(
        "ff.suspended.json",
        suspension::suspended,
        &[&[C::Err, C::WrongType]]
    ),
    entry!(
        "ff.rotatesecret.json",
        suspension::rotate_secret,
        &[&[
            C::Err,
            C::InvalidKid,
            C::InvalidSecretHex,
            C::InvalidGraceMs,
            C::RotationConflict,
            C::InvalidInput
        ]]
    ),
    entry!("ff.secrets.json", suspension::secrets, &[&[C::Err]]),
    entry!(
        "ff.append.json",
        streams::append,
        &[
            OPEN,
            &[
                C::StaleOwnerCannotAppend,
                C::StreamClosed,
                C::RetentionLimitExceeded,
                C::InvalidInput
            ]
        ]
    ),
    entry!("ff.frames.json", streams::frames, &[OPEN]),
    entry!("ff.summary.json", streams::summary, &[OPEN]),
    entry!("ff.pause.json", node::pause, &[&[C::Err]]),
    entry!("ff.resume.json", node::resume, &[&[C::Err]]),
    entry!("ff.paused.json", node::paused, &[]),
    entry!("ff.list.json", partition::list, &[&[C::Err, C::WrongType]]),
    entry!("ff.scan.json", dead_letter::scan, &[&[C::Err]]),
    entry!("ff.bulkcancel.json", dead_letter::bulk_cancel, &[&[C::Err]]),
    entry!("ff.bulkreplay.json", dead_letter::bulk_replay, &[&[C::Err]]),
    entry!(
        "ff.delete.json",
        dead_letter::delete,
        &[OPEN, &[C::ExecutionNotTerminal]]
    ),
    entry!("ff.lanes.json", partition::lanes, &[&[C::Err]]),
    entry!("ff.leases.json", workers::leases, &[&[C::Err]]),
    entry!(
        "ff.register.json",
        workers::register,
        &[&[C::Err, C::InvalidCapabilities]]
    ),
    entry!(
        "ff.heartbeat.json",
        workers::heartbeat,
        &[&[C::Err, C::WorkerNotFound, C::WorkerDead]]
    ),
    entry!(
        "ff.markdead.json",
        workers::mark_dead,
        &[&[C::Err, C::WorkerNotFound]]
    ),
    entry!("ff.workers.json", workers::list, &[&[C::Err]]),
    entry!(
        "ff.flowcreate.json",
        flows::create,
        &[&[C::Err, C::WrongType, C::PartitionMismatch]]
    ),
    entry!(
        "ff.flowadd.json",
        flows::add,
        &[
            FLOW,
            &[
                C::ExecutionNotFound,
                C::AlreadyMemberOfDifferentFlow,
                C::FlowLimitExceeded
            ]
        ]
    ),
    entry!(
        "ff.edge.json",
        flows::edge,
        &[
            FLOW,
            &[
                C::SelfReferencingEdge,
                C::StaleGraphRevision,
                C::ExecutionNotInFlow,
                C::ExecutionNotFound,
                C::CycleDetected,
                C::DependencyAlreadyExists,
                C::GroupAlreadyTerminal,
                C::FlowLimitExceeded,
                C::InvalidInput
            ]
        ]
    ),
    entry!(
        "ff.edgepolicy.json",
        flows::policy,
        &[FLOW, &[C::ExecutionNotInFlow, C::InvalidInput]]
    ),
    entry!(
        "ff.flowsettags.json",
        flows::set_tags,
        &[
            &[C::Err, C::WrongType, C::FlowNotFound],
            &[C::InvalidTagKey, C::InvalidInput, C::FlowLimitExceeded]
        ]
    ),
    entry!(
        "ff.cancelflow.json",
        flows::cancel,
        &[&[C::Err, C::WrongType, C::FlowNotFound, C::InvalidInput]]
    ),
    entry!("ff.flowget.json", flows::get, &[&[C::Err, C::WrongType]]),
    entry!("ff.flows.json", flows::list, &[&[C::Err, C::WrongType]]),
    entry!(
        "ff.edgeget.json",
        flows::edge_get,
        &[&[C::Err, C::WrongType]]
    ),
    entry!(
        "ff.edges.json",
        flows::edges,
        &[&[C::Err, C::WrongType, C::PartitionMismatch]]
    ),
    entry!(
        "ff.edgegroup.json",
        flows::group,
        &[&[C::Err, C::WrongType, C::PartitionMismatch]]
    ),
    entry!("ff.get.json", execution_reads::get, &[OPEN]),
    entry!("ff.result.json", execution_reads::result, &[OPEN]),
    entry!("ff.payload.json", execution_reads::payload, &[OPEN]),
    entry!("ff.version.json", node::version, &[]),
    entry!("ff.partition.json", partition::partition, &[&[C::Err]]),
    entry!(
        "ff.acquire.json",
        claims::acquire,
        &[OPEN, &[C::ExecutionNotLeaseable, C::LeaseConflict]]
    ),
    entry!(
        "ff.loadrec.json",
        partition::loadrec,
        &[&[C::Err, C::WrongType, C::PartitionMismatch]]
    ),
    entry!("ff.due.json", partition::due, &[&[C::Err]]),
];
