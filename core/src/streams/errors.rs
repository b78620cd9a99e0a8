//! Why a frame append was refused, with the reference's error names.

use crate::base::errors::{Code, Refused};
use crate::base::limits::{
    ATTEMPT_FRAMES_MAX, ATTEMPT_FRAME_BYTES_MAX, FRAME_PAYLOAD_MAX, SUMMARY_BYTES_MAX,
};
use crate::streams::merge_patch::PatchError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The caller does not hold the attempt's live lease (stale, revoked,
    /// expired, another attempt).
    StaleOwner,
    /// The attempt has ended (or the execution is not running).
    Closed,
    /// The frame's payload is larger than a frame may be.
    FrameTooLarge,
    /// The attempt's kept frames or bytes are at their limit.
    AttemptFull,
    /// The merged summary would be larger than its limit.
    SummaryFull,
    Patch(PatchError),
}

impl Refused for StreamError {
    fn code(&self) -> Code {
        match self {
            StreamError::StaleOwner => Code::StaleOwnerCannotAppend,
            StreamError::Closed => Code::StreamClosed,
            StreamError::FrameTooLarge | StreamError::AttemptFull | StreamError::SummaryFull => {
                Code::RetentionLimitExceeded
            }
            StreamError::Patch(_) => Code::InvalidInput,
        }
    }

    fn message(&self) -> String {
        match self {
            StreamError::StaleOwner => {
                "the caller does not hold this attempt's live lease".into()
            }
            StreamError::Closed => "the attempt's output stream is closed".into(),
            StreamError::FrameTooLarge => {
                format!("a frame's payload is at most {FRAME_PAYLOAD_MAX} bytes")
            }
            StreamError::AttemptFull => format!(
                "an attempt keeps at most {ATTEMPT_FRAMES_MAX} untrimmed frames and {ATTEMPT_FRAME_BYTES_MAX} bytes"
            ),
            StreamError::SummaryFull => {
                format!("the summary document would exceed {SUMMARY_BYTES_MAX} bytes")
            }
            StreamError::Patch(p) => p.message().into(),
        }
    }

    fn codes() -> &'static [Code] {
        &[
            Code::StaleOwnerCannotAppend,
            Code::StreamClosed,
            Code::RetentionLimitExceeded,
            Code::InvalidInput,
        ]
    }
}
