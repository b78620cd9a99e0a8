//! libflowfabric: FlowFabric's durable execution engine as a Valkey module.
//!
//! The functional core is its own crate (`flowfabric-core`, in `core/`:
//! plain Rust, built and unit-tested without a server); `shell` is the thin
//! layer of command handlers and server callbacks around it.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod shell;

use redis_module::configuration::ConfigurationFlags;
// `AclCategory` is named (unqualified) inside `redis_module!`.
use redis_module::{redis_module, AclCategory, Context, RedisString, Status};

use shell::persistence::PARTITION_TYPE;
use shell::{config, guard, node, registration, schedule, timer};

/// Inside Valkey every allocation goes through the server's allocator, so
/// `used_memory` and MEMORY USAGE see it; unit tests run without a server.
#[cfg(not(test))]
type Allocator = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const ALLOCATOR: Allocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type Allocator = std::alloc::System;
#[cfg(test)]
const ALLOCATOR: Allocator = std::alloc::System;

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    guard::install_panic_hook();
    // Load errors are reported, not aborted on; atomic slot migration is
    // handled (see shell::migration).
    // SAFETY: a function pointer the server filled in at load.
    if let Some(set) = unsafe { redis_module::raw::RedisModule_SetModuleOptions } {
        let io = redis_module::raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as std::os::raw::c_int;
        // SAFETY: `ctx` is the load context.
        unsafe {
            set(
                ctx.ctx,
                io | shell::migration::OPTION_HANDLE_ATOMIC_SLOT_MIGRATION,
            )
        };
    }
    if let Err(e) = registration::register_all(ctx) {
        ctx.log_warning(&format!("flowfabric: {}", e.replace('\0', "")));
        return Status::Err;
    }
    // The data type is registered before `init` runs.
    let partition_type = PARTITION_TYPE.raw_type.try_borrow().map(|t| *t);
    node::set_partition_type(partition_type.unwrap_or(std::ptr::null_mut()));
    node::init_strings(config::partitions(), shell::feed::names());
    node::init_cluster_mode(ctx);
    shell::access::init();
    shell::events::init(ctx);
    shell::info::init(ctx);
    shell::migration::init(ctx);
    config::init_databases(ctx);
    schedule::init(timer::on_timer);
    Status::Ok
}

redis_module! {
    name: "flowfabric",
    version: 1,
    allocator: (Allocator, ALLOCATOR),
    data_types: [PARTITION_TYPE],
    // Every FF.* command is in `@flowfabric` (its spec lists it), so one
    // ACL rule grants or denies the whole module.
    acl_categories: ["flowfabric",],
    init: init,
    configurations: [
        i64: [
            ["partitions", &config::PARTITIONS, 256, 1, 16384, ConfigurationFlags::IMMUTABLE, None],
            ["lease-ms", &config::LEASE_MS, 30_000, 1, 604_800_000, ConfigurationFlags::DEFAULT, None],
            ["retention-ms", &config::RETENTION_MS, 86_400_000, 0, i64::MAX, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_retention_changed))],
            ["max-reclaims", &config::MAX_RECLAIMS, 100, 0, 1_000_000, ConfigurationFlags::DEFAULT, None],
            ["max-payload-bytes", &config::MAX_PAYLOAD_BYTES, 16_777_216, 0, 536_870_912, ConfigurationFlags::MEMORY, None],
            ["events-maxlen", &config::EVENTS_MAXLEN, config::EVENTS_MAXLEN_DEFAULT, 1, 100_000_000, ConfigurationFlags::DEFAULT, None],
        ],
        string: [
            ["waitpoint-secret", &config::WAITPOINT_SECRET, "", ConfigurationFlags::SENSITIVE, None],
        ],
        bool: [
            ["events", &config::EVENTS, true, ConfigurationFlags::DEFAULT, None],
            ["events-renewals", &config::EVENTS_RENEWALS, false, ConfigurationFlags::DEFAULT, None],
        ],
        enum: [],
        module_args_as_configuration: true,
    ]
}
