//! The events an execution's transitions raise on the partition's feed
//! (and as module keyspace notifications): one small entry per state
//! change, named as a BullMQ or FlowFabric user would look for it.

use std::ffi::CStr;

/// Declares the events once: the enum, their feed names, their keyspace
/// notification names (`ff.` and the feed name) and the list of names.
macro_rules! events {
    ($($(#[$doc:meta])* $v:ident => $name:literal),+ $(,)?) => {
        /// One event of the feed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Event { $($(#[$doc])* $v),+ }

        impl Event {
            /// The name in the feed's `event` field.
            pub fn as_str(self) -> &'static str {
                match self { $(Event::$v => $name),+ }
            }

            /// The keyspace notification's event name.
            pub fn notification(self) -> &'static CStr {
                match self {
                    $(Event::$v => match CStr::from_bytes_with_nul(
                        concat!("ff.", $name, "\0").as_bytes(),
                    ) {
                        Ok(c) => c,
                        Err(_) => c"ff.event",
                    }),+
                }
            }

            /// Every event name, for the documentation's check.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }
    };
}

events! {
    Submitted => "submitted",
    Claimed => "claimed",
    /// Claimed again after its lease ran out or was revoked.
    Reclaimed => "reclaimed",
    /// A suspended execution's condition was met (or an operator woke
    /// it): runnable again.
    Resumed => "resumed",
    /// Off by default (`flowfabric.events-renewals`): renewals are frequent.
    Renewed => "renewed",
    Progress => "progress",
    Completed => "completed",
    Failed => "failed",
    RetryScheduled => "retry_scheduled",
    Cancelled => "cancelled",
    Expired => "expired",
    Skipped => "skipped",
    /// The holder put it off until a time.
    Delayed => "delayed",
    Suspended => "suspended",
    LeaseExpired => "lease_expired",
    LeaseRevoked => "lease_revoked",
    /// Claimable again (a delay ran out, an operator unblocked or
    /// replayed it).
    Waiting => "waiting",
    /// An operator blocked it.
    Blocked => "blocked",
    WaitingChildren => "waiting_children",
    /// A signal reached one of its waitpoints (its outcome in the entry).
    Signal => "signal",
    TagsSet => "tags_set",
}

/// What a delivered signal did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// It satisfied the resume condition.
    Satisfied,
    /// It was recorded, the condition not yet met (or not counted by it).
    Accepted,
    /// Held for a pending waitpoint.
    Buffered,
    /// Its idempotency key was seen already.
    Duplicate,
}

impl SignalOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalOutcome::Satisfied => "satisfied",
            SignalOutcome::Accepted => "accepted",
            SignalOutcome::Buffered => "buffered",
            SignalOutcome::Duplicate => "duplicate",
        }
    }
}
