//! The reference's state vector: seven dimensions plus the derived public
//! state. Each enum is stored as one byte; `from_u8` rejects unknown bytes so
//! a corrupt record fails to load instead of carrying garbage.

macro_rules! byte_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $byte:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant = $byte),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn from_u8(b: u8) -> Option<Self> {
                match b { $($byte => Some($name::$variant),)+ _ => None }
            }
            pub fn parse(s: &[u8]) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($text.as_bytes()) { return Some($name::$variant); })+
                None
            }
        }
    };
}

/// For the other domains' one-byte enums (waitpoint states, close
/// reasons, timeout behaviours).
pub(crate) use byte_enum;

byte_enum!(LifecyclePhase {
    Submitted = 0 => "submitted",
    Runnable = 1 => "runnable",
    Active = 2 => "active",
    Suspended = 3 => "suspended",
    Terminal = 4 => "terminal",
});

byte_enum!(OwnershipState {
    Unowned = 0 => "unowned",
    Leased = 1 => "leased",
    LeaseExpiredReclaimable = 2 => "lease_expired_reclaimable",
    LeaseRevoked = 3 => "lease_revoked",
});

byte_enum!(EligibilityState {
    EligibleNow = 0 => "eligible_now",
    NotEligibleUntilTime = 1 => "not_eligible_until_time",
    BlockedByDependencies = 2 => "blocked_by_dependencies",
    BlockedByBudget = 3 => "blocked_by_budget",
    BlockedByQuota = 4 => "blocked_by_quota",
    BlockedByRoute = 5 => "blocked_by_route",
    BlockedByLaneState = 6 => "blocked_by_lane_state",
    BlockedByOperator = 7 => "blocked_by_operator",
    NotApplicable = 8 => "not_applicable",
});

byte_enum!(BlockingReason {
    None = 0 => "none",
    WaitingForWorker = 1 => "waiting_for_worker",
    WaitingForRetryBackoff = 2 => "waiting_for_retry_backoff",
    WaitingForResumeDelay = 3 => "waiting_for_resume_delay",
    WaitingForDelay = 4 => "waiting_for_delay",
    WaitingForSignal = 5 => "waiting_for_signal",
    WaitingForApproval = 6 => "waiting_for_approval",
    WaitingForCallback = 7 => "waiting_for_callback",
    WaitingForToolResult = 8 => "waiting_for_tool_result",
    WaitingForChildren = 9 => "waiting_for_children",
    WaitingForBudget = 10 => "waiting_for_budget",
    WaitingForQuota = 11 => "waiting_for_quota",
    WaitingForCapableWorker = 12 => "waiting_for_capable_worker",
    WaitingForLocalityMatch = 13 => "waiting_for_locality_match",
    PausedByOperator = 14 => "paused_by_operator",
    PausedByPolicy = 15 => "paused_by_policy",
    PausedByFlowCancel = 16 => "paused_by_flow_cancel",
});

byte_enum!(TerminalOutcome {
    None = 0 => "none",
    Success = 1 => "success",
    Failed = 2 => "failed",
    Cancelled = 3 => "cancelled",
    Expired = 4 => "expired",
    Skipped = 5 => "skipped",
});

byte_enum!(AttemptState {
    None = 0 => "none",
    PendingFirstAttempt = 1 => "pending_first_attempt",
    RunningAttempt = 2 => "running_attempt",
    AttemptInterrupted = 3 => "attempt_interrupted",
    PendingRetryAttempt = 4 => "pending_retry_attempt",
    PendingReplayAttempt = 5 => "pending_replay_attempt",
    AttemptTerminal = 6 => "attempt_terminal",
});

byte_enum!(PublicState {
    Waiting = 0 => "waiting",
    Delayed = 1 => "delayed",
    RateLimited = 2 => "rate_limited",
    WaitingChildren = 3 => "waiting_children",
    Active = 4 => "active",
    Suspended = 5 => "suspended",
    Resumable = 6 => "resumable",
    Completed = 7 => "completed",
    Failed = 8 => "failed",
    Cancelled = 9 => "cancelled",
    Expired = 10 => "expired",
    Skipped = 11 => "skipped",
});

/// Counts per public state, indexed by its byte.
pub type StateCounts = [u64; PublicState::COUNT];

impl PublicState {
    /// How many public states there are (their bytes are 0..COUNT).
    pub const COUNT: usize = 12;

    /// The name of the state whose byte is `i`.
    pub fn name_of(i: usize) -> &'static str {
        u8::try_from(i)
            .ok()
            .and_then(PublicState::from_u8)
            .map_or("unknown", PublicState::as_str)
    }
}

byte_enum!(AttemptType {
    Initial = 0 => "initial",
    Retry = 1 => "retry",
    Reclaim = 2 => "reclaim",
    Replay = 3 => "replay",
    Fallback = 4 => "fallback",
});

byte_enum!(AttemptLifecycle {
    Created = 0 => "created",
    Started = 1 => "started",
    Suspended = 2 => "suspended",
    EndedSuccess = 3 => "ended_success",
    EndedFailure = 4 => "ended_failure",
    EndedCancelled = 5 => "ended_cancelled",
    InterruptedReclaimed = 6 => "interrupted_reclaimed",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_names_round_trip() {
        for b in 0..=20u8 {
            if let Some(s) = BlockingReason::from_u8(b) {
                assert_eq!(s as u8, b);
                assert_eq!(BlockingReason::parse(s.as_str().as_bytes()), Some(s));
            }
        }
        assert_eq!(PublicState::from_u8(PublicState::COUNT as u8), None);
        assert_eq!(PublicState::name_of(PublicState::COUNT - 1), "skipped");
        assert_eq!(PublicState::parse(b"WAITING"), Some(PublicState::Waiting));
    }
}
