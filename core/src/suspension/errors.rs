//! Why a suspension, waitpoint or signal request was refused.

use crate::base::errors::{Code, Refused};
use crate::suspension::token::{KeyError, TokenError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitError {
    NotSuspended,
    TargetNotSignalable,
    WaitpointNotFound,
    WaitpointClosed,
    WaitpointNotPending,
    WaitpointAlreadyExists,
    PendingExpired,
    WrongAttempt,
    KeyMismatch(String),
    TimeoutOnlyWithoutDeadline,
    TimeoutInPast,
    SignalLimit(usize),
    TooManyWaitpoints(usize),
    Token(TokenError),
}

impl Refused for WaitError {
    fn code(&self) -> Code {
        match self {
            WaitError::NotSuspended => Code::ExecutionNotSuspended,
            WaitError::TargetNotSignalable => Code::TargetNotSignalable,
            WaitError::WaitpointNotFound => Code::WaitpointNotFound,
            WaitError::WaitpointClosed => Code::WaitpointClosed,
            WaitError::WaitpointNotPending => Code::WaitpointNotPending,
            WaitError::WaitpointAlreadyExists => Code::WaitpointAlreadyExists,
            WaitError::PendingExpired => Code::PendingWaitpointExpired,
            WaitError::WrongAttempt => Code::InvalidWaitpointForExecution,
            WaitError::KeyMismatch(_) => Code::WaitpointKeyMismatch,
            WaitError::TimeoutOnlyWithoutDeadline => Code::TimeoutOnlyWithoutDeadline,
            WaitError::TimeoutInPast => Code::TimeoutAtInPast,
            WaitError::SignalLimit(_) => Code::SignalLimitExceeded,
            WaitError::TooManyWaitpoints(_) => Code::InvalidInput,
            WaitError::Token(t) => match t {
                TokenError::Missing => Code::MissingToken,
                TokenError::Invalid => Code::InvalidToken,
                TokenError::Expired => Code::TokenExpired,
                TokenError::NotInitialized => Code::HmacSecretNotInitialized,
            },
        }
    }

    fn message(&self) -> String {
        match self {
            WaitError::NotSuspended => "the execution has no open suspension".into(),
            WaitError::TargetNotSignalable => "the execution has ended".into(),
            WaitError::WaitpointNotFound => "no such waitpoint on this execution".into(),
            WaitError::WaitpointClosed => "the waitpoint is closed".into(),
            WaitError::WaitpointNotPending => "the waitpoint is not pending".into(),
            WaitError::WaitpointAlreadyExists => {
                "an open waitpoint has this id or key already".into()
            }
            WaitError::PendingExpired => "the pending waitpoint has expired".into(),
            WaitError::WrongAttempt => "the waitpoint was made for another attempt".into(),
            WaitError::KeyMismatch(m) => m.clone(),
            WaitError::TimeoutOnlyWithoutDeadline => {
                "TIMEOUT_ONLY needs a TIMEOUT or TIMEOUT_AT".into()
            }
            WaitError::TimeoutInPast => "TIMEOUT_AT is more than 10 minutes in the past".into(),
            WaitError::SignalLimit(n) => format!("the suspension holds {n} signals already"),
            WaitError::TooManyWaitpoints(n) => format!("at most {n} open waitpoints"),
            WaitError::Token(t) => match t {
                TokenError::Missing => "a waitpoint token is required".into(),
                TokenError::Invalid => "the token does not open this waitpoint".into(),
                TokenError::Expired => "the token's key is past its grace".into(),
                TokenError::NotInitialized => {
                    "no waitpoint secret is set (FF.ROTATESECRET, or flowfabric.waitpoint-secret)"
                        .into()
                }
            },
        }
    }

    fn codes() -> &'static [Code] {
        &[
            Code::ExecutionNotSuspended,
            Code::TargetNotSignalable,
            Code::WaitpointNotFound,
            Code::WaitpointClosed,
            Code::WaitpointNotPending,
            Code::WaitpointAlreadyExists,
            Code::PendingWaitpointExpired,
            Code::InvalidWaitpointForExecution,
            Code::WaitpointKeyMismatch,
            Code::TimeoutOnlyWithoutDeadline,
            Code::TimeoutAtInPast,
            Code::SignalLimitExceeded,
            Code::InvalidInput,
            Code::MissingToken,
            Code::InvalidToken,
            Code::TokenExpired,
            Code::HmacSecretNotInitialized,
        ]
    }
}

impl Refused for KeyError {
    fn code(&self) -> Code {
        match self {
            KeyError::InvalidKid => Code::InvalidKid,
            KeyError::InvalidSecretHex => Code::InvalidSecretHex,
            KeyError::InvalidGrace => Code::InvalidGraceMs,
            KeyError::Conflict(_) => Code::RotationConflict,
            KeyError::Full => Code::InvalidInput,
        }
    }

    fn message(&self) -> String {
        match self {
            KeyError::InvalidKid => "a kid is 1 to 64 of A-Z a-z 0-9 _ - . (no ':')".into(),
            KeyError::InvalidSecretHex => "the secret must be 32 to 512 hex digits".into(),
            KeyError::InvalidGrace => "GRACE must be 0 to 2^53-1 ms".into(),
            KeyError::Conflict(k) => format!("{k} is in use with another secret"),
            KeyError::Full => "too many keys still in grace".into(),
        }
    }

    fn codes() -> &'static [Code] {
        &[
            Code::InvalidKid,
            Code::InvalidSecretHex,
            Code::InvalidGraceMs,
            Code::RotationConflict,
            Code::InvalidInput,
        ]
    }
}
