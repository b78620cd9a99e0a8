//! Every error code a command replies with, defined once. A reply is the
//! code, a space, then a readable message; the codes are the reference's
//! error names in upper case. Each command's `commands/<name>.json` lists
//! the codes it can return, and a test holds that list to the handler's.

use std::fmt;

macro_rules! codes {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// An error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),+ }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The code as the client sees it.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text),+ }
            }
        }
    };
}

codes! {
    Err => "ERR",
    WrongType => "WRONGTYPE",
    ExecutionNotFound => "EXECUTION_NOT_FOUND",
    ExecutionNotActive => "EXECUTION_NOT_ACTIVE",
    ExecutionNotLeaseable => "EXECUTION_NOT_LEASEABLE",
    ExecutionNotEligible => "EXECUTION_NOT_ELIGIBLE",
    ExecutionNotTerminal => "EXECUTION_NOT_TERMINAL",
    ExecutionNotBlocked => "EXECUTION_NOT_BLOCKED",
    LeaseConflict => "LEASE_CONFLICT",
    StaleLease => "STALE_LEASE",
    LeaseExpired => "LEASE_EXPIRED",
    LeaseRevoked => "LEASE_REVOKED",
    NoActiveLease => "NO_ACTIVE_LEASE",
    MaxReplaysExhausted => "MAX_REPLAYS_EXHAUSTED",
    InvalidInput => "INVALID_INPUT",
    InvalidCapabilities => "INVALID_CAPABILITIES",
    InvalidTagKey => "INVALID_TAG_KEY",
    PartitionMismatch => "PARTITION_MISMATCH",
    WorkerNotFound => "WORKER_NOT_FOUND",
    WorkerDead => "WORKER_DEAD",
    ExecutionNotSuspended => "EXECUTION_NOT_SUSPENDED",
    HmacSecretNotInitialized => "HMAC_SECRET_NOT_INITIALIZED",
    MissingToken => "MISSING_TOKEN",
    InvalidToken => "INVALID_TOKEN",
    TokenExpired => "TOKEN_EXPIRED",
    WaitpointNotFound => "WAITPOINT_NOT_FOUND",
    WaitpointClosed => "WAITPOINT_CLOSED",
    WaitpointNotPending => "WAITPOINT_NOT_PENDING",
    WaitpointAlreadyExists => "WAITPOINT_ALREADY_EXISTS",
    PendingWaitpointExpired => "PENDING_WAITPOINT_EXPIRED",
    InvalidWaitpointForExecution => "INVALID_WAITPOINT_FOR_EXECUTION",
    InvalidResumeCondition => "INVALID_RESUME_CONDITION",
    WaitpointKeyMismatch => "WAITPOINT_KEY_MISMATCH",
    TimeoutOnlyWithoutDeadline => "TIMEOUT_ONLY_WITHOUT_DEADLINE",
    TimeoutAtInPast => "TIMEOUT_AT_IN_PAST",
    TargetNotSignalable => "TARGET_NOT_SIGNALABLE",
    SignalLimitExceeded => "SIGNAL_LIMIT_EXCEEDED",
    PayloadTooLarge => "PAYLOAD_TOO_LARGE",
    LaneMismatch => "LANE_MISMATCH",
    InvalidKid => "INVALID_KID",
    InvalidSecretHex => "INVALID_SECRET_HEX",
    InvalidGraceMs => "INVALID_GRACE_MS",
    RotationConflict => "ROTATION_CONFLICT",
    StaleOwnerCannotAppend => "STALE_OWNER_CANNOT_APPEND",
    StreamClosed => "STREAM_CLOSED",
    RetentionLimitExceeded => "RETENTION_LIMIT_EXCEEDED",
    FlowNotFound => "FLOW_NOT_FOUND",
    FlowAlreadyTerminal => "FLOW_ALREADY_TERMINAL",
    AlreadyMemberOfDifferentFlow => "ALREADY_MEMBER_OF_DIFFERENT_FLOW",
    SelfReferencingEdge => "SELF_REFERENCING_EDGE",
    StaleGraphRevision => "STALE_GRAPH_REVISION",
    ExecutionNotInFlow => "EXECUTION_NOT_IN_FLOW",
    CycleDetected => "CYCLE_DETECTED",
    DependencyAlreadyExists => "DEPENDENCY_ALREADY_EXISTS",
    GroupAlreadyTerminal => "GROUP_ALREADY_TERMINAL",
    FlowLimitExceeded => "FLOW_LIMIT_EXCEEDED",
    // Sent by the server itself to a blocked claim (CLIENT UNBLOCK ...
    // ERROR, or the node turning replica); listed so specs can name it.
    Unblocked => "UNBLOCKED",
}

/// A client-facing error: a code and a readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdError {
    pub code: Code,
    pub message: String,
}

impl CmdError {
    pub fn new(code: Code, message: impl fmt::Display) -> CmdError {
        CmdError {
            code,
            message: message.to_string(),
        }
    }

    /// A malformed request: the server's usual `ERR`.
    pub fn syntax(message: impl fmt::Display) -> CmdError {
        CmdError::new(Code::Err, message)
    }

    /// The reply text: code, space, message.
    pub fn reply(&self) -> String {
        format!("{} {}", self.code.as_str(), self.message)
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_str(), self.message)
    }
}

pub type CmdResult<T> = Result<T, CmdError>;

/// A domain error that knows its code: what a refused transition replies.
pub trait Refused {
    fn code(&self) -> Code;
    fn message(&self) -> String;
    /// Every code values of this type can carry (for the specs' check).
    fn codes() -> &'static [Code]
    where
        Self: Sized;
}

impl<E: Refused> From<E> for CmdError {
    fn from(e: E) -> CmdError {
        CmdError::new(e.code(), e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
        assert_eq!(CmdError::syntax("bad").reply(), "ERR bad");
    }
}
