//! Why a transition on an execution was refused, each with its error code
//! (the codes are defined once, in `base::errors`).

use crate::base::errors::{Code, Refused};
use crate::base::ids::Uuid;
use crate::base::state::{LifecyclePhase, TerminalOutcome};

/// Why a holder's fenced call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseError {
    /// Carries what a caller needs to recognise a replay of a terminal
    /// operation whose reply was lost.
    NotActive {
        terminal: TerminalOutcome,
        lease_epoch: u64,
        lifecycle: LifecyclePhase,
        attempt_id: Option<Uuid>,
    },
    Revoked,
    Expired,
    Stale,
}

impl Refused for LeaseError {
    fn code(&self) -> Code {
        match self {
            LeaseError::NotActive { .. } => Code::ExecutionNotActive,
            LeaseError::Revoked => Code::LeaseRevoked,
            LeaseError::Expired => Code::LeaseExpired,
            LeaseError::Stale => Code::StaleLease,
        }
    }

    fn message(&self) -> String {
        match self {
            LeaseError::NotActive {
                terminal,
                lease_epoch,
                lifecycle,
                attempt_id,
            } => format!(
                "terminal_outcome={} lease_epoch={} lifecycle_phase={} attempt_id={}",
                terminal.as_str(),
                lease_epoch,
                lifecycle.as_str(),
                attempt_id.map(|a| a.to_string()).unwrap_or_default()
            ),
            LeaseError::Revoked => "the lease was revoked".into(),
            LeaseError::Expired => "the lease expired before this call".into(),
            LeaseError::Stale => "the lease fence does not match the current lease".into(),
        }
    }

    fn codes() -> &'static [Code] {
        &[
            Code::ExecutionNotActive,
            Code::LeaseRevoked,
            Code::LeaseExpired,
            Code::StaleLease,
        ]
    }
}

/// Why an operator's revoke was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeError {
    NoActiveLease,
    Stale,
}

impl Refused for RevokeError {
    fn code(&self) -> Code {
        match self {
            RevokeError::NoActiveLease => Code::NoActiveLease,
            RevokeError::Stale => Code::StaleLease,
        }
    }

    fn message(&self) -> String {
        match self {
            RevokeError::NoActiveLease => "the execution holds no live lease",
            RevokeError::Stale => "the lease named is not the current lease",
        }
        .into()
    }

    fn codes() -> &'static [Code] {
        &[Code::NoActiveLease, Code::StaleLease]
    }
}

/// Why an operator transition (priority, tags, replay, block) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    /// A priority change on an execution that is not waiting.
    NotWaiting,
    TooManyTags,
    NotTerminal,
    MaxReplays,
    /// A block on an execution that is neither waiting nor delayed.
    NotEligible,
    NotBlocked,
}

impl Refused for OpError {
    fn code(&self) -> Code {
        match self {
            OpError::NotWaiting => Code::ExecutionNotEligible,
            OpError::TooManyTags => Code::InvalidInput,
            OpError::NotTerminal => Code::ExecutionNotTerminal,
            OpError::MaxReplays => Code::MaxReplaysExhausted,
            OpError::NotEligible => Code::ExecutionNotEligible,
            OpError::NotBlocked => Code::ExecutionNotBlocked,
        }
    }

    fn message(&self) -> String {
        match self {
            OpError::NotWaiting => "only a waiting execution can change priority",
            OpError::TooManyTags => "an execution has at most 64 tags",
            OpError::NotTerminal => "only a terminal execution can be replayed",
            OpError::MaxReplays => "the execution was replayed as often as allowed",
            OpError::NotEligible => "only a waiting or delayed execution can be blocked",
            OpError::NotBlocked => "the execution is not blocked by an operator",
        }
        .into()
    }

    fn codes() -> &'static [Code] {
        &[
            Code::InvalidInput,
            Code::ExecutionNotTerminal,
            Code::MaxReplaysExhausted,
            Code::ExecutionNotEligible,
            Code::ExecutionNotBlocked,
        ]
    }
}

/// Why a claim could not start an attempt on the execution it chose (the
/// index said it was claimable: only a replayed FF.ACQUIRE can see these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimError {
    NotLeaseable,
    LeaseConflict,
}

impl Refused for ClaimError {
    fn code(&self) -> Code {
        match self {
            ClaimError::NotLeaseable => Code::ExecutionNotLeaseable,
            ClaimError::LeaseConflict => Code::LeaseConflict,
        }
    }

    fn message(&self) -> String {
        match self {
            ClaimError::NotLeaseable => "the execution is not eligible",
            ClaimError::LeaseConflict => "the execution is already leased",
        }
        .into()
    }

    fn codes() -> &'static [Code] {
        &[Code::ExecutionNotLeaseable, Code::LeaseConflict]
    }
}

/// What a lease running out did to an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    Unchanged,
    Reclaimable,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type's `codes` lists exactly the codes its values carry (the
    /// match below stops compiling when a variant is added).
    #[test]
    fn codes_list_every_variant() {
        fn all<E: Refused>(values: &[E]) {
            let mut got: Vec<Code> = values.iter().map(Refused::code).collect();
            got.sort();
            got.dedup();
            let mut want = E::codes().to_vec();
            want.sort();
            assert_eq!(got, want);
        }
        let lease = |e: &LeaseError| match e {
            LeaseError::NotActive { .. }
            | LeaseError::Revoked
            | LeaseError::Expired
            | LeaseError::Stale => (),
        };
        let v = [
            LeaseError::NotActive {
                terminal: TerminalOutcome::None,
                lease_epoch: 0,
                lifecycle: LifecyclePhase::Active,
                attempt_id: None,
            },
            LeaseError::Revoked,
            LeaseError::Expired,
            LeaseError::Stale,
        ];
        v.iter().for_each(lease);
        all(&v);
        let revoke = |e: &RevokeError| match e {
            RevokeError::NoActiveLease | RevokeError::Stale => (),
        };
        let v = [RevokeError::NoActiveLease, RevokeError::Stale];
        v.iter().for_each(revoke);
        all(&v);
        let op = |e: &OpError| match e {
            OpError::NotWaiting
            | OpError::TooManyTags
            | OpError::NotTerminal
            | OpError::MaxReplays
            | OpError::NotEligible
            | OpError::NotBlocked => (),
        };
        let v = [
            OpError::NotWaiting,
            OpError::TooManyTags,
            OpError::NotTerminal,
            OpError::MaxReplays,
            OpError::NotEligible,
            OpError::NotBlocked,
        ];
        v.iter().for_each(op);
        all(&v);
        let claim = |e: &ClaimError| match e {
            ClaimError::NotLeaseable | ClaimError::LeaseConflict => (),
        };
        let v = [ClaimError::NotLeaseable, ClaimError::LeaseConflict];
        v.iter().for_each(claim);
        all(&v);
    }
}
